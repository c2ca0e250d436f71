"""Speed of the representation-flow layer and of precomputed TV-L1 flow, on this machine.

Layer (``assemblenet.models.RepresentationFlow``), fp32, ``--threads`` threads, median of ``--repeats`` after
a warm-up:

- 32x224x224, batch 1, 40 iterations (31 frame pairs), inference: reference vs fused (compiled kernel) vs the
  fused path's PyTorch fallback (used where the kernel is not built), against the memory-bandwidth floor;
- 8x32x32, batch 8, 10 iterations (56 pairs), the training-time case: inference, and a training step of the
  layer with trainable hyper-parameters (forward + backward).

The floor: the fused kernel must at least read 10 and write 6 fp32 fields per pixel and iteration (image
gradient x/y, |gradient|^2, frame difference, flow x/y, four duals), 64 bytes. It is divided by the bandwidth of
a streaming triad (``a = b + s * c`` in torch, 12 bytes per element) measured in the same run at two working
sets: one frame pair per thread (what the kernel keeps in cache; at least 1 MB, below which torch's per-call
overhead limits the triad) and the whole problem (at least 256 MB: main memory).

Precompute: pairs/s of each ``assemblenet flow`` method on the frames of a 340x256 video (decoding excluded):
OpenCV TV-L1 in one process with one thread (the former default), OpenCV TV-L1 and Farneback on every core
(one process per core), and tvl1-torch with every core as threads of one process and as one single-threaded
process per core (what ``assemblenet flow`` does by default).

    python benchmarks/flow_speed.py                         # everything, JSON to results/flow_speed.json
    python benchmarks/flow_speed.py --skip-precompute --repeats 7
    python benchmarks/flow_speed.py --skip-layer --opencv-pairs 2
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from assemblenet.models.rep_flow import RepresentationFlow  # noqa: E402
from assemblenet.models.rep_flow_kernel import kernel_status  # noqa: E402
from assemblenet.runtime import time_calls  # noqa: E402

DEFAULT_VIDEO = ROOT / "tests" / "fixtures" / "videos" / "kinetics_armwrestling_340x256.mp4"
BYTES_PER_PIXEL_ITERATION = 16 * 4  # 10 fields read, 6 written, fp32


def timed(fn, repeats: int) -> dict:
    """Median and min wall time (and median process CPU time) of ``fn`` after one warm-up call."""
    return time_calls(fn, repeats=repeats, warmup=1)


def triad_bandwidth(working_set_bytes: int, repeats: int) -> float:
    """GB/s of a = b + 0.5 c on three fp32 arrays that together hold ``working_set_bytes``."""
    n = max(1024, working_set_bytes // 12)
    a, b, c = torch.empty(n), torch.rand(n), torch.rand(n)
    inner = max(1, int(2e8 // (12 * n)))  # ~200 MB of traffic per timing

    def run():
        for _ in range(inner):
            torch.add(b, c, alpha=0.5, out=a)

    best = timed(run, repeats)["min_s"]
    return 12 * n * inner / best / 1e9


def layer_figures(frames: int, size: int, batch: int, iterations: int, repeats: int, threads: int,
                  with_training: bool) -> dict:
    pairs = batch * (frames - 1)
    clip = torch.rand(batch, 3, frames, size, size, generator=torch.Generator().manual_seed(0))
    result: dict = {"clip": f"{frames}x{size}x{size}", "batch": batch, "iterations": iterations, "pairs": pairs}
    layers = {"reference": RepresentationFlow(num_iterations=iterations, implementation="reference"),
              "fused": RepresentationFlow(num_iterations=iterations)}
    with torch.no_grad():
        for name, layer in layers.items():
            result[f"{name}_inference"] = timed(lambda: layer(clip), repeats)
        # the fused path without the compiled kernel (a fresh clone, no compiler): in-place PyTorch ops
        import assemblenet.models.rep_flow as rep_flow

        available = rep_flow.kernel_available
        rep_flow.kernel_available = lambda: False
        try:
            result["fused_fallback_inference"] = timed(lambda: layers["fused"](clip), repeats)
        finally:
            rep_flow.kernel_available = available
    if with_training:
        for name in ("reference", "fused"):
            layer = RepresentationFlow(num_iterations=iterations, trainable=True, implementation=name)

            def step():
                layer.zero_grad()
                layer(clip).square().mean().backward()

            result[f"{name}_train_step"] = timed(step, repeats)
    # memory-bandwidth floor of the fused kernel
    pixels = size * size
    traffic = pairs * pixels * iterations * BYTES_PER_PIXEL_ITERATION
    pair_working_set = 10 * pixels * 4
    # at least 1 MB: below that torch's per-call overhead, not bandwidth, limits the triad
    cache_bw = triad_bandwidth(max(min(pairs, threads) * pair_working_set, 1 << 20), repeats)
    memory_bw = triad_bandwidth(max(pairs * pair_working_set, 256 << 20), max(3, repeats // 2))
    result["floor"] = {"traffic_GB": traffic / 1e9, "triad_GBps_pair_working_set": cache_bw,
                       "triad_GBps_main_memory": memory_bw, "floor_s_in_cache": traffic / cache_bw / 1e9,
                       "floor_s_from_memory": traffic / memory_bw / 1e9}
    fused = result["fused_inference"]["median_s"]
    result["fused_over_floor_in_cache"] = fused / result["floor"]["floor_s_in_cache"]
    result["fused_speedup_over_reference"] = result["reference_inference"]["median_s"] / fused
    return result


# -- precompute ----------------------------------------------------------------------------------------------
def _video_grey(path: Path, count: int) -> np.ndarray:
    from assemblenet.data.decode import open_video
    from assemblenet.data.flow import _gray

    with open_video(path) as reader:
        grey = [_gray(frame) for _, frame in zip(range(count), reader.iter_frames())]
    return np.stack(grey)


def _flow_chunk(method: str, grey: np.ndarray, threads: int) -> tuple[int, float]:
    """Flow of a chunk of frames: (pairs, CPU seconds this process spent)."""
    import cv2

    from assemblenet.data.flow import FlowEstimator

    cv2.setNumThreads(1)
    torch.set_num_threads(threads)
    start = time.process_time()
    pairs = len(FlowEstimator(method).video(list(grey)))
    return pairs, time.process_time() - start


def pairs_per_second(method: str, grey: np.ndarray, *, processes: int, threads: int, repeats: int) -> dict:
    """Pairs/s computing the flow of ``grey`` [N, H, W], split over ``processes`` processes."""
    pairs = len(grey) - 1
    cpu_seconds: list[float] = []
    if processes == 1:
        previous = torch.get_num_threads()
        try:
            figures = timed(lambda: cpu_seconds.append(_flow_chunk(method, grey, threads)[1]), repeats)
        finally:
            torch.set_num_threads(previous)
    else:
        bounds = np.linspace(0, pairs, processes + 1).astype(int)
        chunks = [grey[bounds[i]:bounds[i + 1] + 1] for i in range(processes)]
        with ProcessPoolExecutor(max_workers=processes) as pool:
            def run():
                results = list(pool.map(_flow_chunk, [method] * processes, chunks, [threads] * processes))
                assert sum(count for count, _ in results) == pairs
                cpu_seconds.append(sum(cpu for _, cpu in results))

            figures = timed(run, repeats)  # the warm-up call also starts the workers
    figures["pairs"] = pairs
    figures["pairs_per_s"] = pairs / figures["median_s"]
    # CPU seconds of all processes and threads: with other jobs on the machine, pairs per CPU second times
    # the cores estimates the quiet-machine rate (it also counts OpenMP spin-waiting, so it errs low)
    figures["pairs_per_cpu_s"] = pairs / statistics.median(cpu_seconds[1:] or cpu_seconds)
    figures["processes"], figures["threads"] = processes, threads
    return figures


def precompute_figures(video: Path, cores: int, opencv_pairs: int, torch_pairs: int, repeats: int) -> dict:
    grey = _video_grey(video, max(opencv_pairs * cores, torch_pairs) + 1)
    result: dict = {"video": video.name, "size": f"{grey.shape[2]}x{grey.shape[1]}"}
    few = grey[:opencv_pairs + 1]
    result["tvl1 (OpenCV), 1 process x 1 thread"] = pairs_per_second("tvl1", few, processes=1, threads=1,
                                                                      repeats=1)
    if cores > 1:
        result[f"tvl1 (OpenCV), {cores} processes"] = pairs_per_second(
            "tvl1", grey[:opencv_pairs * cores + 1], processes=cores, threads=1, repeats=1)
    result[f"farneback (OpenCV), {cores} processes"] = pairs_per_second(
        "farneback", grey[:torch_pairs + 1], processes=cores, threads=1, repeats=repeats)
    result[f"tvl1-torch, 1 process x {cores} threads"] = pairs_per_second(
        "tvl1-torch", grey[:torch_pairs + 1], processes=1, threads=cores, repeats=repeats)
    if cores > 1:
        result[f"tvl1-torch, {cores} processes x 1 thread"] = pairs_per_second(
            "tvl1-torch", grey[:torch_pairs + 1], processes=cores, threads=1, repeats=repeats)
    baseline = result["tvl1 (OpenCV), 1 process x 1 thread"]["pairs_per_s"]
    for figures in list(result.values()):
        if isinstance(figures, dict):
            figures["vs_opencv_tvl1_one_worker"] = figures["pairs_per_s"] / baseline
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--skip-layer", action="store_true")
    parser.add_argument("--skip-precompute", action="store_true")
    parser.add_argument("--video", type=Path, default=DEFAULT_VIDEO, help="a 340x256 video for the precompute")
    parser.add_argument("--opencv-pairs", type=int, default=3, help="pairs per process for OpenCV TV-L1 (slow)")
    parser.add_argument("--torch-pairs", type=int, default=16, help="pairs for the other methods")
    parser.add_argument("--json", type=Path, default=ROOT / "results" / "flow_speed.json")
    parser.add_argument("--no-malloc-tuning", action="store_true", help="glibc defaults (page faults on big tensors)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    malloc_tuning = False
    if not args.no_malloc_tuning:
        from assemblenet.runtime import keep_freed_memory

        malloc_tuning = keep_freed_memory()  # as the trainer and CLI do
    report: dict = {
        "machine": {"cpu": _cpu_name(), "cores": os.cpu_count(), "threads": args.threads,
                    "python": platform.python_version(), "torch": torch.__version__,
                    "load_average_start": os.getloadavg(), "keep_freed_memory": malloc_tuning},
        "flow_kernel": kernel_status(),
    }
    print(f"# {report['machine']['cpu']}, {os.cpu_count()} cores, {args.threads} threads, torch {torch.__version__}, "
          f"kernel: {report['flow_kernel']}, load average {report['machine']['load_average_start'][0]:.2f}")
    if not args.skip_layer:
        report["layer"] = [
            layer_figures(32, 224, 1, 40, args.repeats, args.threads, with_training=False),
            layer_figures(8, 32, 8, 10, max(args.repeats, 10), args.threads, with_training=True),
        ]
        for entry in report["layer"]:
            print(f"\nrepresentation flow {entry['clip']}, batch {entry['batch']}, {entry['iterations']} iterations "
                  f"({entry['pairs']} pairs)")
            for key, figures in entry.items():
                if isinstance(figures, dict) and "median_s" in figures:
                    print(f"  {key:28s} median {figures['median_s'] * 1e3:9.2f} ms  "
                          f"min {figures['min_s'] * 1e3:9.2f} ms"
                          f"  cpu/thread {figures['cpu_s'] / args.threads * 1e3:9.2f} ms")
            floor = entry["floor"]
            print(f"  floor: {floor['traffic_GB']:.2f} GB of traffic; triad {floor['triad_GBps_pair_working_set']:.1f} "
                  f"GB/s (pair per thread) -> {floor['floor_s_in_cache'] * 1e3:.1f} ms, "
                  f"{floor['triad_GBps_main_memory']:.1f} GB/s (main memory) -> "
                  f"{floor['floor_s_from_memory'] * 1e3:.1f} ms;"
                  f" fused = {entry['fused_over_floor_in_cache']:.1f}x the in-cache floor, "
                  f"{entry['fused_speedup_over_reference']:.1f}x faster than the reference")
    if not args.skip_precompute:
        report["precompute"] = precompute_figures(args.video, os.cpu_count() or 1, args.opencv_pairs,
                                                  args.torch_pairs, max(1, args.repeats // 2))
        precompute = report["precompute"]
        print(f"\nprecomputed flow, {precompute['video']} ({precompute['size']}), decoding excluded")
        for key, figures in report["precompute"].items():
            if isinstance(figures, dict):
                print(f"  {key:40s} {figures['pairs_per_s']:8.3f} pairs/s  "
                      f"({figures['vs_opencv_tvl1_one_worker']:.1f}x "
                      f"OpenCV TV-L1 with one worker; {figures['pairs_per_cpu_s']:.3f} pairs per CPU second; "
                      f"{figures['pairs']} pairs)")
    report["machine"]["load_average_end"] = os.getloadavg()
    print(f"\n# load average at the end {report['machine']['load_average_end'][0]:.2f}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2))
    print(f"wrote {args.json}")


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


if __name__ == "__main__":
    main()
