"""Data loader speed: clips/s for decode + sample + transform, and how it compares with a tiny model's training.

Measures, on this machine:

1. Random access inside each real test video: seek-based sampling (what the loader does), decoding from the
   start up to the clip, and decoding the whole file then picking the clip's frames.
2. The full pipeline (``KineticsCsvDataset`` + ``DataLoader`` with ``collate``) in training mode with 0, 1 and 2
   worker processes, on the synthetic benchmark and on the real test videos, with seeking on and off.
3. Whole epochs of the synthetic set through one DataLoader built as the trainer builds it (persistent workers,
   so each worker's video-index cache survives from one epoch to the next), with 0, 1 and 2 workers.
4. Training clips/s of a tiny AssembleNet (``create_model("assemblenet50_searchable", depth=26,
   width_multiplier=0.125)``) on the same clip size, and the ratio loader clips/s / model clips/s. Skipped
   with a note if ``assemblenet.create_model`` is unavailable.

Usage:
    python benchmarks/loader_speed.py                      # print the tables
    python benchmarks/loader_speed.py --write-readme       # also update "## Data loader" in benchmarks/README.md
    python benchmarks/loader_speed.py --epochs-only        # only the epochs table (3), on the synthetic set

Numbers depend on the machine and on whatever else runs on it; the README records where they were taken.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from _common import loader_clips_per_second, render_saved

REPO = Path(__file__).resolve().parents[1]
REAL_VIDEO_DIRS = (REPO / "tests" / "fixtures" / "videos", REPO.parent / "shared" / "testdata" / "videos")
README = Path(__file__).resolve().parent / "README.md"


def real_video_dir() -> Path:
    for folder in REAL_VIDEO_DIRS:
        if folder.is_dir() and any(folder.glob("*.mp4")):
            return folder
    raise SystemExit("no real test videos found (tests/fixtures/videos)")


def time_reader_modes(video_dir: Path, *, num_frames: int, stride: int, clips: int, short_side: int,
                      seed: int = 0) -> list[dict]:
    """clips/s of one clip read three ways, per real video."""
    from assemblenet.data.decode import VideoReader
    from assemblenet.data.sampling import ClipSampling, random_clip

    sampling = ClipSampling(num_frames=num_frames, stride=stride)
    rows = []
    for path in sorted(p for p in video_dir.iterdir() if p.suffix in (".mp4", ".avi")):
        rng = np.random.default_rng(seed)
        with VideoReader(path) as reader:
            starts = [random_clip(reader.num_frames, sampling, rng) for _ in range(clips)]
            row = {"video": path.name, "frames": reader.num_frames, "size": f"{reader.width}x{reader.height}",
                   "keyframes": len(reader.index.keyframes), "seekable": reader.can_seek}
            for mode in ("seek", "from_start", "whole_file"):
                begin = time.perf_counter()
                for indices in starts:
                    if mode == "seek":
                        reader.get_frames(indices, short_side=short_side)
                    elif mode == "from_start":
                        reader.get_frames(indices, seek=False, short_side=short_side)
                    else:
                        reader.read_all(short_side=short_side)[indices]
                row[mode] = clips / (time.perf_counter() - begin)
        rows.append(row)
    return rows


def time_epochs(dataset, *, workers: int, batch_size: int, epochs: int) -> list[float]:
    """clips/s of each whole epoch through one DataLoader, built once as the trainer builds it
    (``persistent_workers`` when ``workers > 0``). The first epoch includes the worker start-up and fills each
    worker's index cache; later epochs find it filled."""
    from assemblenet.data import collate
    from assemblenet.data.decode import INDEX_CACHE

    INDEX_CACHE.clear()  # the main process (0 workers) starts as cold as fresh workers
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=workers,
                                         collate_fn=collate, persistent_workers=workers > 0, drop_last=True,
                                         generator=torch.Generator().manual_seed(0))
    rates = []
    for _ in range(epochs):
        begin = time.perf_counter()
        count = sum(clips.shape[0] for clips, _, _ in loader)
        rates.append(count / (time.perf_counter() - begin))
    del loader
    return rates


def epochs_markdown(epochs: dict) -> list[str]:
    lines = ["### Whole epochs through the training loader", "",
             f"The synthetic training set ({epochs['videos']} videos, {epochs['clip']}), batches of "
             f"{epochs['batch_size']}, one DataLoader for all epochs with persistent workers, as the trainer "
             "builds it. clips/s per epoch; epoch 1 includes starting the workers and filling their video-index "
             "caches, which later epochs reuse.", "",
             "| workers | " + " | ".join(f"epoch {e + 1}" for e in range(epochs["epochs"])) + " |",
             "|---:|" + "---:|" * epochs["epochs"]]
    for workers, rates in epochs["rates"].items():
        lines.append(f"| {workers} | " + " | ".join(f"{r:.1f}" for r in rates) + " |")
    return lines + [""]


def model_clips_per_second(*, num_classes: int, batch_size: int, num_frames: int, size: int, steps: int,
                           threads: int) -> tuple[float | None, str]:
    try:
        from assemblenet import create_model
    except (ImportError, AttributeError) as exc:
        return None, f"assemblenet.create_model unavailable ({exc})"
    torch.set_num_threads(threads)
    kwargs = dict(num_classes=num_classes, depth=26, width_multiplier=0.125)
    model = create_model("assemblenet50_searchable", **kwargs)
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    clips = torch.rand(batch_size, 3, num_frames, size, size)
    targets = torch.randint(0, num_classes, (batch_size,))

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(model(clips), targets)
        loss.backward()
        optimizer.step()

    step()  # warm-up
    begin = time.perf_counter()
    for _ in range(steps):
        step()
    rate = steps * batch_size / (time.perf_counter() - begin)
    config = (f'create_model("assemblenet50_searchable", num_classes={num_classes}, depth=26, '
              f'width_multiplier=0.125), batch {batch_size}, {num_frames}x{size}x{size}, SGD, {threads} threads')
    return rate, config


def make_real_list(video_dir: Path, folder: Path, repeats: int) -> Path:
    from assemblenet.data.annotations import write_video_list

    videos = sorted(p for p in video_dir.iterdir() if p.suffix in (".mp4", ".avi"))
    rows = [(str(p), p.stem) for _ in range(repeats) for p in videos]
    path = folder / "real.csv"
    write_video_list(path, rows)
    return path


def markdown(results: dict) -> str:
    lines = ["## Data loader", "",
             "Measured by `python benchmarks/loader_speed.py --write-readme` "
             f"on {results['machine']}, torch {results['torch']}, PyAV {results['av']}. Other jobs shared the "
             "CPU during the run, so treat the figures as rough; rerun the script for your machine.", ""]
    params = results["params"]
    lines += ["### Random access inside one video",
              "",
              f"clips/s for one training clip of {params['reader_frames']} frames at stride {params['reader_stride']} "
              f"(random start), decoded and converted to RGB with the short side scaled to {params['short_side']} px. "
              "*seek*: the loader's default (seek to the keyframe before the clip, verified against the packet "
              "index); *from start*: decode from frame 0 up to the clip's last frame; *whole file*: decode every "
              "frame, then pick the clip.", "",
              "| video | frames | size | keyframes | seekable | seek | from start | whole file | seek / whole |",
              "|---|---:|---|---:|---|---:|---:|---:|---:|"]
    for row in results["reader"]:
        lines.append(f"| {row['video']} | {row['frames']} | {row['size']} | {row['keyframes']} | "
                     f"{'yes' if row['seekable'] else 'no (AVI)'} | {row['seek']:.1f} | {row['from_start']:.1f} | "
                     f"{row['whole_file']:.1f} | {row['seek'] / row['whole_file']:.1f}x |")
    lines += ["", "AVI timestamps are in decode order, so AVI files are always decoded from the start (their "
              "*seek* column measures the same path as *from start*). These short test videos have only 1-4 "
              "keyframes, so seeking gains little over decoding from the start here; the gain grows with the "
              "number of keyframes before the clip (long videos, Charades' 30 s clips). Both avoid decoding and "
              "converting the frames after the clip, which *whole file* pays for.", "",
              "### Decode + sample + transform through a DataLoader", "",
              "Training mode (random clip, random resized crop, float conversion), batches of "
              f"{params['batch_size']}, clips/s after the first batch.", "",
              "| data | clip | seek | 0 workers | 1 worker | 2 workers |", "|---|---|---|---:|---:|---:|"]
    for row in results["loader"]:
        cells = " | ".join(f"{row['rates'][str(w)]:.1f}" for w in (0, 1, 2))
        lines.append(f"| {row['data']} | {row['clip']} | {row['seek']} | {cells} |")
    lines.append("")
    if "epochs" in results:
        lines += epochs_markdown(results["epochs"])
    lines += ["### Loader versus training a tiny model", ""]
    model = results["model"]
    if model["clips_per_s"] is None:
        lines.append(f"Not measured: {model['config']}.")
    else:
        rates = results["loader"][0]["rates"]
        best, single = max(rates.values()), rates["0"]
        speed = model["clips_per_s"]
        lines += [f"Tiny model: {model['config']}.", "",
                  "| synthetic loader, 0 workers (clips/s) | best worker count (clips/s) | tiny model training "
                  "(clips/s) | loader / model |",
                  "|---:|---:|---:|---:|",
                  f"| {single:.1f} | {best:.1f} | {speed:.2f} | {best / speed:.1f}x |", "",
                  f"Even in the main process (0 workers) the loader produces {single / speed:.1f}x the clips the tiny "
                  "model trains on, so data loading is not the bottleneck on the synthetic set. With two shared "
                  "cores, extra workers compete with the main process for CPU, which is why 1-2 workers add "
                  "little here (they pay off on machines with more free cores, which this run could not show)."]
    return "\n".join(lines) + "\n"


def update_readme(section: str) -> None:
    """Replace the "## Data loader" section of benchmarks/README.md (up to the next "## " heading)."""
    from assemblenet.fileio import replace_markdown_section

    replace_markdown_section(README, section)


def measure_epochs(synthetic: Path, args: argparse.Namespace) -> dict:
    from assemblenet.data import ClipSampling, ClipViews, build_dataset

    dataset = build_dataset("synthetic", root=synthetic, split="train", sampling=ClipSampling(num_frames=args.frames),
                            views=ClipViews(crop_size=64))
    rates = {}
    for workers in (0, 1, 2):
        print(f"epochs: {workers} workers ...", file=sys.stderr)
        rates[str(workers)] = time_epochs(dataset, workers=workers, batch_size=args.batch_size, epochs=args.epochs)
    return {"videos": len(dataset.items), "clip": f"{args.frames} frames, stride 1, crop 64", "epochs": args.epochs,
            "batch_size": args.batch_size, "rates": rates}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--synthetic", help="synthetic benchmark folder (default: generate the default set)")
    parser.add_argument("--frames", type=int, default=16, help="frames per clip")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--batches", type=int, default=12, help="timed batches per configuration")
    parser.add_argument("--reader-clips", type=int, default=12, help="clips per video for the random-access table")
    parser.add_argument("--model-steps", type=int, default=2, help="timed training steps (0 skips the model)")
    parser.add_argument("--model-batch", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2, help="torch threads for the model")
    parser.add_argument("--json", help="also write the raw results here")
    parser.add_argument("--write-readme", action="store_true", help="update benchmarks/README.md")
    parser.add_argument("--from-json", help="re-render saved --json results instead of measuring")
    parser.add_argument("--epochs", type=int, default=2, help="epochs for the whole-epoch table")
    parser.add_argument("--epochs-only", action="store_true", help="measure and print only the whole-epoch table")
    args = parser.parse_args(argv)
    if args.from_json:
        render_saved(args.from_json, markdown, README if args.write_readme else None)
        return 0

    import av

    from assemblenet.data import ClipSampling, ClipViews, KineticsCsvDataset, build_dataset
    from assemblenet.data.synthetic import make_synthetic

    torch.set_num_threads(1)
    video_dir = real_video_dir()
    results: dict = {"machine": f"{platform.machine()} Linux, {os.cpu_count()} CPU cores (shared), Python "
                                f"{platform.python_version()}",
                     "torch": torch.__version__, "av": av.__version__,
                     "params": {"reader_frames": 16, "reader_stride": 2, "short_side": 128,
                                "batch_size": args.batch_size}}
    if args.epochs_only:
        with tempfile.TemporaryDirectory() as tmp:
            synthetic = Path(args.synthetic) if args.synthetic else Path(tmp) / "synthetic"
            if not args.synthetic:
                make_synthetic(synthetic, progress=False)
            results["epochs"] = measure_epochs(synthetic, args)
        print(f"measured on {results['machine']}, torch {results['torch']}, PyAV {results['av']}")
        print("\n".join(epochs_markdown(results["epochs"])))
        return 0
    print("random access per video ...", file=sys.stderr)
    results["reader"] = time_reader_modes(video_dir, num_frames=16, stride=2, clips=args.reader_clips,
                                          short_side=128)
    with tempfile.TemporaryDirectory() as tmp:
        synthetic = Path(args.synthetic) if args.synthetic else Path(tmp) / "synthetic"
        if not args.synthetic:
            print("generating the default synthetic set ...", file=sys.stderr)
            make_synthetic(synthetic, progress=False)
        configs = [
            ("synthetic 64x64", f"{args.frames} frames, stride 1, crop 64", "on",
             lambda seek: build_dataset("synthetic", root=synthetic, split="train",
                                        sampling=ClipSampling(num_frames=args.frames), views=ClipViews(crop_size=64),
                                        seek=seek)),
            ("synthetic 64x64", f"{args.frames} frames, stride 1, crop 64", "off",
             lambda seek: build_dataset("synthetic", root=synthetic, split="train",
                                        sampling=ClipSampling(num_frames=args.frames), views=ClipViews(crop_size=64),
                                        seek=seek)),
        ]
        real_list = make_real_list(video_dir, Path(tmp), repeats=4)
        for seek in ("on", "off"):
            configs.append(("real test videos (4, 240p-1080p)",
                            f"{args.frames} frames, stride 2, short side 128, crop 112", seek,
                            lambda seek, real_list=real_list: KineticsCsvDataset(
                                real_list, sampling=ClipSampling(num_frames=args.frames, stride=2),
                                views=ClipViews(crop_size=112), decode_short_side=128, seek=seek)))
        results["loader"] = []
        for data, clip, seek, factory in configs:
            dataset = factory(None if seek == "on" else False)
            rates = {}
            for workers in (0, 1, 2):
                print(f"loader: {data}, seek {seek}, {workers} workers ...", file=sys.stderr)
                rates[str(workers)] = loader_clips_per_second(dataset, workers=workers, batch_size=args.batch_size,
                                                  batches=args.batches)
            results["loader"].append({"data": data, "clip": clip, "seek": seek, "rates": rates})
        results["epochs"] = measure_epochs(synthetic, args)
        num_classes = build_dataset("synthetic", root=synthetic, split="train").num_classes
    if args.model_steps > 0:
        print("tiny model training ...", file=sys.stderr)
        rate, config = model_clips_per_second(num_classes=num_classes, batch_size=args.model_batch,
                                              num_frames=args.frames, size=64, steps=args.model_steps,
                                              threads=args.threads)
    else:
        rate, config = None, "skipped (--model-steps 0)"
    results["model"] = {"clips_per_s": rate, "config": config}
    section = markdown(results)
    print(section)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2), encoding="utf-8")
    if args.write_readme:
        update_readme(section)
        print(f"updated {README}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
