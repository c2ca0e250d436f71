"""Video decoding speed per core: the decoder's ceiling, decord (the peer), our reader and our training pipeline.

Generates its own files (nothing to download):

- ``340x256``: Kinetics/Charades-like, 30 fps, 10 s, libx264 with its default GOP (250), CRF 23;
- ``1280x720``: YouTube-like, 30 fps, 10 s, GOP 250, CRF 23 (exercises resizing);
- ``340x256 prepared``: the 340x256 files after ``assemblenet prepare-videos`` (short side 256, a keyframe every
  16 frames), when that command is available.

Measured side by side in one run, one process, ``torch.set_num_threads(1)``, FFmpeg decoder threads 1:

- **ceiling**: PyAV sequential decode of whole files, without and with conversion to rgb24 (frames/s). A clip
  whose decoding must start at the keyframe before its first frame costs ``decoded / decode_fps +
  T x convert_cost``; the *ceiling clips/s* of a clip set is the inverse of the mean of that cost;
- **decord**: ``decord.VideoReader(path, num_threads=1).get_batch(indices)`` for the same clips (opened per clip,
  as MMAction2/VideoMAE do), decode only, no crop. Skipped, saying so, when decord is not installed
  (``pip install decord``; never a runtime dependency of assemblenet);
- **reader**: ``assemblenet.data.VideoReader(path).get_frames(indices)`` for the same clips (full-size RGB);
- **reader + crop**: the same with the training crop (random resized crop to 224) done by the reader, if the
  reader supports it;
- **pipeline**: the training dataset (random clip of 32 frames at stride 2, random resized crop to 224, flip)
  through a ``DataLoader`` with ``collate``, batches of 8, 0 workers (one core) and ``--workers N``.

Each figure is reported in clips/s, as a fraction of the ceiling for the same kind of clip, and as the cores one
GPU would need at ``--gpu-clips-per-s`` (250: AssembleNet-50 at 32x224 on an H200 at 40% of bf16 peak).

Usage:
    python benchmarks/decode_speed.py --json benchmarks/results/decode_speed.json --write-readme
    python benchmarks/decode_speed.py --tiny                 # a smoke run (the test suite uses it)
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from _common import loader_clips_per_second, render_saved

README = Path(__file__).resolve().parent / "README.md"


# -- the files ------------------------------------------------------------------------------------------------
def _texture(height: int, width: int, seed: int) -> np.ndarray:
    import cv2

    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (height // 8 + 2, width // 8 + 2, 3), dtype=np.uint8)
    texture = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    return cv2.GaussianBlur(texture, (0, 0), 2)


def make_video(path: Path, width: int, height: int, *, seconds: float = 10.0, fps: int = 30, gop: int = 250,
               crf: int = 23, seed: int = 0) -> Path:
    """A panning textured scene with three moving blocks, encoded by libx264 (default preset) at ``crf``."""
    import av

    texture = _texture(height + 64, width + 4 * int(seconds * fps) + 8, seed)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.gop_size = gop
        stream.options = {"crf": str(crf)}
        for t in range(int(seconds * fps)):
            y0 = int(32 + 24 * np.sin(t / 40))
            image = texture[y0:y0 + height, 2 * t:2 * t + width].copy()
            size = max(2, height // 8)
            for k in range(3):
                cy = int(height / 2 + height / 3 * np.sin(t / 15 + 2 * k))
                cx = int(width / 2 + width / 3 * np.cos(t / 20 + k))
                image[max(0, cy - size):cy + size, max(0, cx - size):cx + size] = (60 * k + 50, 200 - 50 * k, 120)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


# -- the measurements -------------------------------------------------------------------------------------------
def decode_ceiling(paths: list[Path], *, convert: bool, threads: int = 1) -> float:
    """frames/s of PyAV decoding whole files in order (optionally converting each frame to rgb24)."""
    import av

    frames, elapsed = 0, 0.0
    for path in paths:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stream.codec_context.thread_count = threads
            begin = time.perf_counter()
            for frame in container.decode(stream):
                if convert:
                    frame.to_ndarray(format="rgb24")
                frames += 1
            elapsed += time.perf_counter() - begin
    return frames / elapsed


def conversion_rates(path: Path, *, crop_size: int, frames: int = 64) -> dict[str, float]:
    """frames/s of turning decoded frames into RGB training crops, three ways, on the same frames: swscale's
    rgb24 at full size (PyAV ``to_ndarray``); swscale scaling straight to the crop size (``to_ndarray`` with a
    size: one libswscale call, though it cannot crop); OpenCV's I420->RGB plus a uint8 crop and resize (ours)."""
    import av
    import cv2

    from assemblenet.data.decode import crop_resize, frame_to_rgb

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.codec_context.thread_count = 1
        decoded = [frame for _, frame in zip(range(frames), container.decode(stream))]
    height, width = decoded[0].height, decoded[0].width
    region = (height // 8, width // 8, height * 3 // 4, width * 3 // 4)
    ways = {
        "swscale rgb24, full size": lambda f: f.to_ndarray(format="rgb24"),
        f"swscale rgb24 scaled to {crop_size} (no crop)":
            lambda f: f.to_ndarray(format="rgb24", width=crop_size, height=crop_size, interpolation="BILINEAR"),
        f"OpenCV I420->RGB + uint8 crop/resize to {crop_size} (ours)":
            lambda f: crop_resize(frame_to_rgb(f), region, (crop_size, crop_size)),
    }
    rates = {}
    for name, convert in ways.items():
        convert(decoded[0])
        begin = time.perf_counter()
        for frame in decoded:
            convert(frame)
        rates[name] = len(decoded) / (time.perf_counter() - begin)
    assert cv2  # OpenCV does the conversion in the last way
    return rates


def plan_clips(paths: list[Path], *, clips_per_file: int, num_frames: int, stride: int, seed: int) -> list[dict]:
    """Random training clips (as the dataset draws them) with the frames a decoder must decode for each: from
    the keyframe before the clip's first frame to its last frame."""
    from assemblenet.data.decode import VideoReader
    from assemblenet.data.sampling import ClipSampling, random_clip

    sampling = ClipSampling(num_frames=num_frames, stride=stride)
    rng = np.random.default_rng(seed)
    plan = []
    for path in paths:
        with VideoReader(path) as reader:
            keyframes = np.asarray(reader.index.keyframes)
            for _ in range(clips_per_file):
                indices = random_clip(reader.num_frames, sampling, rng)
                key = int(keyframes[keyframes <= indices.min()].max())
                plan.append({"path": path, "indices": indices.tolist(),
                             "decoded": int(indices.max()) - key + 1})
    order = np.random.default_rng(seed + 1).permutation(len(plan))  # files interleaved, as a shuffled epoch
    return [plan[i] for i in order]


def ceiling_clips_per_s(plan: list[dict], *, decode_fps: float, convert_fps: float) -> float:
    convert_cost = max(0.0, 1.0 / convert_fps - 1.0 / decode_fps)
    costs = [clip["decoded"] / decode_fps + len(clip["indices"]) * convert_cost for clip in plan]
    return 1.0 / float(np.mean(costs))


def time_clips(plan: list[dict], read) -> float:
    """clips/s of ``read(path, indices)`` over the plan (the first clip, a warm-up, is not timed)."""
    read(plan[0]["path"], plan[0]["indices"])
    begin = time.perf_counter()
    for clip in plan:
        read(clip["path"], clip["indices"])
    return len(plan) / (time.perf_counter() - begin)


def read_decord(path: Path, indices: list[int]) -> np.ndarray:
    import decord

    reader = decord.VideoReader(str(path), ctx=decord.cpu(0), num_threads=1)
    return reader.get_batch(indices).asnumpy()


def read_ours(path: Path, indices: list[int]) -> np.ndarray:
    from assemblenet.data.decode import VideoReader

    with VideoReader(path) as reader:
        return reader.get_frames(indices)


def reader_crop_function(crop_size: int, seed: int):
    """Our reader with the training crop done while converting, when the reader supports it (else None)."""
    from assemblenet.data.decode import VideoReader
    from assemblenet.data.transforms import RandomResizedCrop

    if "region" not in VideoReader.get_frames.__code__.co_varnames:
        return None
    rng = np.random.default_rng(seed)
    crop = RandomResizedCrop(crop_size)

    def read(path: Path, indices: list[int]) -> np.ndarray:
        with VideoReader(path) as reader:  # the box is drawn once the first frame gives the size
            return reader.get_frames(indices, region=lambda height, width: crop.box(height, width, rng),
                                     size=(crop_size, crop_size))
    return read


def pipeline_dataset(paths: list[Path], *, num_frames: int, stride: int, crop_size: int, repeats: int = 64,
                     **options):
    """The training dataset over ``paths``, each listed ``repeats`` times so that an epoch outlasts the timed
    batches (a new epoch would restart the loader's workers inside the measurement)."""
    from assemblenet.data import ClassList, ClipSampling, ClipViews, VideoDataset, VideoItem

    items = [VideoItem(path=str(p), labels=(i % 2,), video_id=f"{p.stem}_{r}", key=p.stem)
             for r in range(repeats) for i, p in enumerate(paths)]
    return VideoDataset(items, classes=ClassList.from_names(["a", "b"]),
                        sampling=ClipSampling(num_frames=num_frames, stride=stride),
                        views=ClipViews(crop_size=crop_size, mode="train"), **options)


def prepare_function():
    try:
        from assemblenet.data.prepare import prepare_videos
    except ImportError:
        return None
    return prepare_videos


def measure_kind(name: str, paths: list[Path], args: argparse.Namespace, *, clips_per_file: int,
                 batches: int) -> dict:
    print(f"[{name}] ceiling ...", file=sys.stderr)
    decode_fps = decode_ceiling(paths, convert=False)
    convert_fps = decode_ceiling(paths, convert=True)
    plan = plan_clips(paths, clips_per_file=clips_per_file, num_frames=args.frames, stride=args.stride,
                      seed=args.seed)
    ceiling = ceiling_clips_per_s(plan, decode_fps=decode_fps, convert_fps=convert_fps)
    size = describe_file(paths[0])
    rows = {}
    try:
        import decord  # noqa: F401
        print(f"[{name}] decord ...", file=sys.stderr)
        rows["decord get_batch (decode only)"] = time_clips(plan, read_decord)
        decord_note = None
    except ImportError:
        decord_note = "decord not installed (pip install decord): row skipped"
        print(decord_note, file=sys.stderr)
    print(f"[{name}] our reader ...", file=sys.stderr)
    rows["our reader (full-size RGB)"] = time_clips(plan, read_ours)
    cropped = reader_crop_function(args.crop, args.seed)
    if cropped is not None:
        rows[f"our reader + crop {args.crop} (uint8)"] = time_clips(plan, cropped)
    dataset = pipeline_dataset(paths, num_frames=args.frames, stride=args.stride, crop_size=args.crop)
    print(f"[{name}] pipeline, 0 workers ...", file=sys.stderr)
    pipeline = {"0": loader_clips_per_second(dataset, workers=0, batch_size=args.batch_size, batches=batches)}
    if args.workers > 0:
        print(f"[{name}] pipeline, {args.workers} workers ...", file=sys.stderr)
        pipeline[str(args.workers)] = loader_clips_per_second(dataset, workers=args.workers, batch_size=args.batch_size,
                                                    batches=batches)
    rows["our training pipeline, 0 workers"] = pipeline["0"]
    per_core = {"0": pipeline["0"]}
    if args.workers > 0:
        rows[f"our training pipeline, {args.workers} workers (total)"] = pipeline[str(args.workers)]
        per_core[str(args.workers)] = pipeline[str(args.workers)] / args.workers
    mean_decoded = float(np.mean([clip["decoded"] for clip in plan]))
    try:
        conversions = conversion_rates(paths[0], crop_size=args.crop)
    except ImportError:  # a reader without frame_to_rgb (the baseline)
        conversions = {}
    return {"kind": name, "files": len(paths), "size": size, "bytes": sum(p.stat().st_size for p in paths),
            "decode_fps": decode_fps, "convert_fps": convert_fps, "clips": len(plan),
            "mean_decoded_frames_per_clip": mean_decoded, "ceiling_clips_per_s": ceiling,
            "rows": rows, "pipeline_per_core": per_core, "decord_note": decord_note, "conversions": conversions}


def describe_file(path: Path) -> str:
    """'WxH, fps, frames, keyframes' of a video file."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        keys = sum(1 for packet in container.demux(stream) if packet.is_keyframe and packet.size)
        return (f"{stream.codec_context.width}x{stream.codec_context.height}, {float(stream.average_rate):.0f} fps, "
                f"{stream.frames} frames, {keys} keyframes")


def markdown(results: dict) -> str:
    params = results["params"]
    gpu = params["gpu_clips_per_s"]
    lines = ["## Video decoding", "",
             f"Measured by `{results['command']}` on {results['machine']['signature']} (torch "
             f"{results['machine']['torch']}, PyAV {results['av']}, decord {results.get('decord') or 'absent'})"
             + (f"; {results['note']}." if results.get("note") else "."), "",
             f"One process, one core (`torch.set_num_threads(1)`, FFmpeg threads 1); training clips of "
             f"{params['frames']} frames at stride {params['stride']}, random resized crop to {params['crop']}, "
             f"batches of {params['batch_size']}. *ceiling*: PyAV sequential decode rate, applied to each clip's "
             "decode cost (from the keyframe before the clip to its last frame, plus converting its frames); "
             f"*cores/GPU*: cores needed for {gpu} clips/s (one H200 training AssembleNet-50 at 32x224).", ""]
    for kind in results["kinds"]:
        lines += [f"### {kind['kind']}: {kind['size']}, {kind['files']} files, {kind['bytes'] / 1e6:.1f} MB", "",
                  f"Decode ceiling: {kind['decode_fps']:.0f} frames/s without conversion, {kind['convert_fps']:.0f} "
                  f"with rgb24; a clip costs {kind['mean_decoded_frames_per_clip']:.0f} decoded frames on average; "
                  f"ceiling {kind['ceiling_clips_per_s']:.1f} clips/s.", "",
                  "| what | clips/s | of ceiling | per core | cores/GPU |", "|---|---:|---:|---:|---:|"]
        for what, rate in kind["rows"].items():
            total = "total" in what
            workers = int(re.search(r"(\d+) workers", what).group(1)) if total else 1
            per_core = rate / workers
            lines.append(f"| {what} | {rate:.2f} | {rate / kind['ceiling_clips_per_s']:.0%} | {per_core:.2f} | "
                         f"{gpu / per_core:.0f} |")
        if kind.get("decord_note"):
            lines.append(f"\n{kind['decord_note']}.")
        if kind.get("conversions"):
            lines += ["", "Turning one decoded frame into a training crop (frames/s): " + "; ".join(
                f"{name} {rate:.0f}" for name, rate in kind["conversions"].items()) + "."]
        lines.append("")
    return "\n".join(lines) + "\n"


def update_readme(section: str) -> None:
    """Replace the "## Video decoding" section of benchmarks/README.md (up to the next "## " heading)."""
    from assemblenet.fileio import replace_markdown_section

    replace_markdown_section(README, section)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--files", type=int, default=4, help="340x256 files (720p: half as many, at least 1)")
    parser.add_argument("--clips-per-file", type=int, default=8)
    parser.add_argument("--batches", type=int, default=6, help="timed pipeline batches (720p: half)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--frames", type=int, default=32)
    parser.add_argument("--stride", type=int, default=2)
    parser.add_argument("--crop", type=int, default=224)
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers for the second pipeline row")
    parser.add_argument("--kinds", nargs="+", default=["340x256", "1280x720", "340x256 prepared"])
    parser.add_argument("--gpu-clips-per-s", type=float, default=250.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", help="keep the generated files here (default: a temporary folder)")
    parser.add_argument("--tiny", action="store_true", help="tiny files and clips (a smoke test)")
    parser.add_argument("--note", help="a remark recorded with the figures")
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--write-readme", action="store_true", help="update '## Video decoding' in README.md")
    parser.add_argument("--from-json", help="re-render saved results instead of measuring")
    args = parser.parse_args(argv)
    if args.from_json:
        render_saved(args.from_json, markdown, README if args.write_readme else None)
        return 0

    import av
    import cv2

    from assemblenet.fileio import atomic_write_json
    from assemblenet.runtime import machine_info

    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    if args.tiny:
        args.frames, args.stride, args.crop, args.batch_size = 4, 2, 32, 2
        args.clips_per_file, args.batches, args.files = 2, 1, 2
    shapes = {"340x256": (340, 256), "1280x720": (1280, 720)}
    if args.tiny:
        shapes = {"340x256": (96, 64), "1280x720": (160, 96)}
    seconds = 1.0 if args.tiny else 10.0
    try:
        import decord
        decord_version = decord.__version__
    except ImportError:
        decord_version = None
    results = {"command": "python benchmarks/decode_speed.py " + " ".join(argv if argv is not None else sys.argv[1:]),
               "machine": machine_info(), "av": av.__version__, "decord": decord_version, "note": args.note,
               "params": {"frames": args.frames, "stride": args.stride, "crop": args.crop,
                          "batch_size": args.batch_size, "workers": args.workers,
                          "gpu_clips_per_s": args.gpu_clips_per_s}, "kinds": []}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(args.workdir) if args.workdir else Path(tmp)
        made: dict[str, list[Path]] = {}
        for kind in args.kinds:
            base = kind.replace(" prepared", "")
            if base not in made:
                width, height = shapes[base]
                count = args.files if base == "340x256" else max(1, args.files // 2)
                folder = workdir / base
                folder.mkdir(parents=True, exist_ok=True)
                made[base] = []
                for i in range(count):
                    path = folder / f"video_{i:02d}.mp4"
                    if not path.is_file():
                        print(f"encoding {path} ...", file=sys.stderr)
                        make_video(path, width, height, seconds=seconds, seed=i)
                    made[base].append(path)
            paths = made[base]
            if kind.endswith("prepared"):
                prepare = prepare_function()
                if prepare is None:
                    print(f"[{kind}] skipped: assemblenet.data.prepare is not available", file=sys.stderr)
                    continue
                target = workdir / f"{base} prepared"
                shutil.rmtree(target, ignore_errors=True)  # prepared by this run's code, never a stale copy
                prepare(workdir / base, target, progress=False, workers=1)
                paths = sorted(target.glob("*.mp4"))
            small = base != "340x256"
            results["kinds"].append(measure_kind(
                kind, paths, args, clips_per_file=args.clips_per_file,
                batches=max(1, args.batches // 2) if small else args.batches))
    section = markdown(results)
    print(section)
    if args.json:
        atomic_write_json(args.json, results, indent=2)
    if args.write_readme:
        update_readme(section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
