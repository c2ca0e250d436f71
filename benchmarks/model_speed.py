"""Time AssembleNet on the CPU and compare with the official TensorFlow implementation on the same machine.

Measures, for each clip shape: the representation-flow layer alone, the eager forward pass (eval,
inference_mode), optionally forward + backward (train mode, loss.backward() only, no optimizer), the
forward with BatchNorm folded, and torch.compile (compile time reported apart from the steady state).
Each figure is the median (and min) of --repeats runs after --warmup runs; the ratio to TF uses the median.
"CPU s/thr" (process CPU time / threads) estimates the time on a quiet machine when others share the CPU.

    python benchmarks/model_speed.py                                 # asn50, 157 classes: 32x224 and 16x112
    python benchmarks/model_speed.py --frames 16 --size 112 --backward --compile
    python benchmarks/model_speed.py --flow-only --frames 32 --size 224
    python benchmarks/model_speed.py --no-malloc-tuning              # the glibc page-fault cost, for contrast
    python benchmarks/model_speed.py --profile --frames 16 --size 112  # top ops, to explain a missed target
    python benchmarks/model_speed.py --json results/model_speed.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Callable

import torch

from assemblenet.cli.arguments import positive_int
from assemblenet import runtime
from assemblenet.models import create_model, fold_batch_norm

# Official TF (Model Garden) on this 2-core machine: asn50, 157 classes, batch 1, fp32, graph mode.
TF_FORWARD_SECONDS = {(32, 224): 4.4, (16, 112): 0.58}
TF_FLOW_SECONDS = {(32, 224): 1.5}
TARGET_FORWARD_RATIO = 0.8
TARGET_FLOW_RATIO = 0.5


def time_runs(fn: Callable[[], object], *, repeats: int, warmup: int) -> dict[str, float]:
    """Median and min wall time of ``repeats`` calls after ``warmup`` untimed ones.

    Also the median process CPU time per call divided by the thread count: on a machine shared with other
    jobs it estimates the wall time this work would take alone (roughly: spinning threads inflate it).
    """
    for _ in range(warmup):
        fn()
    wall, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return {"median_s": statistics.median(wall), "min_s": min(wall),
            "cpu_per_thread_s": statistics.median(cpu) / torch.get_num_threads(), "repeats": repeats,
            "warmup": warmup}


def run_case(args: argparse.Namespace, *, frames: int, size: int) -> list[dict]:
    torch.manual_seed(0)
    clip = torch.rand(args.batch, 3, frames, size, size)
    reference_ok = args.model.startswith("assemblenet50") and args.num_classes == 157 and args.batch == 1
    tf_forward = TF_FORWARD_SECONDS.get((frames, size)) if reference_ok else None
    tf_flow = TF_FLOW_SECONDS.get((frames, size)) if args.batch == 1 else None
    results: list[dict] = []

    def record(what: str, stats: dict, *, tf_seconds: float | None, target: float | None, **extra) -> None:
        row = {"what": what, "frames": frames, "size": size, "batch": args.batch, **stats, **extra}
        if tf_seconds is not None:
            row.update(tf_seconds=tf_seconds, ratio_to_tf=stats["median_s"] / tf_seconds, target_ratio=target)
            row["meets_target"] = row["ratio_to_tf"] <= target
        results.append(row)
        print(f"  {what:<28} {frames}x{size}: median {stats['median_s']:.3f} s, min {stats['min_s']:.3f} s",
              flush=True)

    def build() -> torch.nn.Module:
        return create_model(args.model, num_classes=args.num_classes)

    model = build().eval()
    if model.flow_layer is not None:
        with torch.inference_mode():
            stats = time_runs(lambda: model.flow_layer(clip), repeats=args.repeats, warmup=args.warmup)
        record("flow layer", stats, tf_seconds=tf_flow, target=TARGET_FLOW_RATIO)
    if args.flow_only:
        if args.profile and model.flow_layer is not None:
            _profile(lambda: model.flow_layer(clip), title=f"flow layer {frames}x{size}")
        return results

    with torch.inference_mode():
        stats = time_runs(lambda: model(clip), repeats=args.repeats, warmup=args.warmup)
    record("forward (eager)", stats, tf_seconds=tf_forward, target=TARGET_FORWARD_RATIO)
    if args.profile:
        _profile(lambda: model(clip), title=f"eager forward {frames}x{size}")

    if args.fold_bn:
        folded = fold_batch_norm(build().eval())
        with torch.inference_mode():
            stats = time_runs(lambda: folded(clip), repeats=args.repeats, warmup=args.warmup)
        record("forward (eager, BN folded)", stats, tf_seconds=tf_forward, target=TARGET_FORWARD_RATIO)
        del folded

    if args.compile:
        compiled = torch.compile(build().eval())
        start = time.perf_counter()
        with torch.inference_mode():
            compiled(clip)  # the first call compiles
        compile_seconds = time.perf_counter() - start
        with torch.inference_mode():
            stats = time_runs(lambda: compiled(clip), repeats=args.repeats, warmup=args.warmup)
        record("forward (torch.compile)", stats, tf_seconds=tf_forward, target=TARGET_FORWARD_RATIO,
               compile_s=compile_seconds)
        del compiled
    del model

    if args.backward:
        train_model = build().train()
        labels = torch.zeros(args.batch, dtype=torch.long)

        def step() -> None:
            train_model.zero_grad(set_to_none=True)
            loss = torch.nn.functional.cross_entropy(train_model(clip), labels)
            loss.backward()

        record("forward + backward (eager)", time_runs(step, repeats=args.repeats, warmup=args.warmup),
               tf_seconds=None, target=None)
    return results


def _profile(fn: Callable[[], object], *, title: str) -> None:
    from torch.profiler import ProfilerActivity, profile

    with torch.inference_mode(), profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    print(f"\nprofile: {title} (top ops by self CPU time)")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15))


def format_table(results: list[dict]) -> str:
    lines = [f"{'what':<28} {'T x S':>8} {'median s':>9} {'min s':>8} {'CPU s/thr':>9} {'TF s':>6} {'ratio':>6} "
             f"{'target':>7} {'met':>4}"]
    for row in results:
        if "tf_seconds" in row:
            tf, ratio = f"{row['tf_seconds']:.2f}", f"{row['ratio_to_tf']:.2f}"
            target, met = f"<={row['target_ratio']}", "yes" if row["meets_target"] else "NO"
        else:
            tf = ratio = target = met = "-"
        extra = f"  (compile {row['compile_s']:.1f} s)" if "compile_s" in row else ""
        lines.append(f"{row['what']:<28} {row['frames']:>3}x{row['size']:<4} {row['median_s']:>9.3f} "
                     f"{row['min_s']:>8.3f} {row['cpu_per_thread_s']:>9.3f} {tf:>6} {ratio:>6} {target:>7} "
                     f"{met:>4}{extra}")
    return "\n".join(lines)


def _write_json_atomically(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(payload, handle, indent=1)
            handle.write("\n")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="assemblenet50")
    parser.add_argument("--num-classes", type=positive_int, default=157)
    parser.add_argument("--frames", type=positive_int, nargs="+", default=None,
                        help="clip lengths (default: 32 and 16, with --size 224 and 112)")
    parser.add_argument("--size", type=positive_int, nargs="+", default=None,
                        help="frame sizes, one per --frames value (a single value applies to all)")
    parser.add_argument("--batch", type=positive_int, default=1)
    parser.add_argument("--repeats", type=positive_int, default=3)
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs before timing (default 1)")
    parser.add_argument("--threads", type=positive_int, default=None, help="torch threads (default: all cores)")
    parser.add_argument("--compile", action=argparse.BooleanOptionalAction, default=False,
                        help="also time torch.compile (compiling takes minutes on 2 cores)")
    parser.add_argument("--backward", action="store_true", help="also time forward + backward in train mode")
    parser.add_argument("--fold-bn", action="store_true", help="also time inference with BatchNorm folded")
    parser.add_argument("--flow-only", action="store_true", help="time only the representation-flow layer")
    parser.add_argument("--no-malloc-tuning", action="store_true",
                        help="leave glibc malloc at its defaults (see assemblenet.runtime)")
    parser.add_argument("--profile", action="store_true", help="print the top ops of one eager forward")
    parser.add_argument("--json", type=Path, default=None, help="also write the results to this JSON file")
    args = parser.parse_args(argv)

    from assemblenet.models import list_models

    if args.model not in list_models():
        parser.error(f"unknown model {args.model!r}; available: {', '.join(list_models())}")
    if args.warmup < 0:
        parser.error("--warmup must be >= 0")
    frames = args.frames or [32, 16]
    sizes = args.size or ([224, 112] if args.frames is None else [224])
    if len(sizes) == 1:
        sizes = sizes * len(frames)
    if len(sizes) != len(frames):
        parser.error("give one --size value, or as many as --frames values")
    if min(frames) < 2:
        parser.error("--frames must be at least 2 (the flow layer needs frame pairs)")

    malloc_tuned = False if args.no_malloc_tuning else runtime.keep_freed_memory()
    if args.threads:
        torch.set_num_threads(args.threads)
    load_before = os.getloadavg()
    header = (f"{args.model}, {args.num_classes} classes, batch {args.batch}, fp32, {torch.get_num_threads()} "
              f"threads, malloc tuning {'on' if malloc_tuned else 'off'}, torch {torch.__version__}, "
              f"{platform.machine()} {os.cpu_count()} CPUs, load average {load_before[0]:.1f} at start")
    print(header, flush=True)

    results = []
    for t, s in zip(frames, sizes):
        results.extend(run_case(args, frames=t, size=s))
    load_after = os.getloadavg()
    print(f"\n{header}\nload average {load_after[0]:.1f} at the end "
          f"(anything well above 0 means other work shared the CPU and the times are inflated)")
    print(format_table(results))
    if args.json:
        payload = {
            "model": args.model, "num_classes": args.num_classes, "batch": args.batch,
            "threads": torch.get_num_threads(), "malloc_tuning": malloc_tuned, "torch": torch.__version__,
            "cpus": os.cpu_count(), "load_average": {"start": load_before[0], "end": load_after[0]},
            "repeats": args.repeats, "warmup": args.warmup, "results": results,
        }
        _write_json_atomically(args.json, payload)
        print(f"results written to {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
