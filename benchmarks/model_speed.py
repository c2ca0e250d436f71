"""Time AssembleNet on the CPU: forward, forward + backward, the representation-flow layer, with and without
torch.compile, and compare with the official TensorFlow implementation measured on the same 2-core machine.

    python benchmarks/model_speed.py                                  # asn50, 157 classes, 32x224 and 16x112
    python benchmarks/model_speed.py --frames 16 --size 112 --backward --compile
    python benchmarks/model_speed.py --no-malloc-tuning               # show the glibc page-fault cost
    python benchmarks/model_speed.py --profile                        # top ops, to explain a missed target
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from assemblenet import runtime
from assemblenet.models import create_model, fold_batch_norm

# Official TF (Model Garden) on this 2-core machine: asn50, 157 classes, batch 1, fp32, graph mode.
TF_FORWARD_SECONDS = {(32, 224): 4.4, (16, 112): 0.58}
TF_FLOW_SECONDS = {(32, 224): 1.5}
TARGET_FORWARD_RATIO = 0.8
TARGET_FLOW_RATIO = 0.5


def timed(fn, *, repeats: int, warmup: int = 1) -> dict[str, float]:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return {"median": statistics.median(times), "min": min(times), "repeats": repeats}


def run_case(args: argparse.Namespace, frames: int, size: int) -> list[dict]:
    torch.manual_seed(0)
    clip = torch.rand(args.batch, 3, frames, size, size)
    results = []

    def record(kind: str, stats: dict, reference: float | None, target: float | None, **extra) -> None:
        row = {"kind": kind, "frames": frames, "size": size, "batch": args.batch, **stats, **extra}
        if reference is not None:
            row["tf_seconds"] = reference
            row["ratio_to_tf"] = stats["median"] / reference
            row["target_ratio"] = target
        results.append(row)

    model = create_model(args.model, num_classes=args.num_classes).eval()
    if model.flow_layer is not None:
        with torch.inference_mode():
            stats = timed(lambda: model.flow_layer(clip), repeats=args.repeats)
        record("flow layer", stats, TF_FLOW_SECONDS.get((frames, size)), TARGET_FLOW_RATIO)
    if args.flow_only:
        return results

    with torch.inference_mode():
        stats = timed(lambda: model(clip), repeats=args.repeats)
    record("forward (eager)", stats, TF_FORWARD_SECONDS.get((frames, size)), TARGET_FORWARD_RATIO)

    if args.fold_bn:
        folded = fold_batch_norm(create_model(args.model, num_classes=args.num_classes).eval())
        with torch.inference_mode():
            stats = timed(lambda: folded(clip), repeats=args.repeats)
        record("forward (eager, BN folded)", stats, TF_FORWARD_SECONDS.get((frames, size)), TARGET_FORWARD_RATIO)

    if args.compile:
        compiled = torch.compile(create_model(args.model, num_classes=args.num_classes).eval())
        start = time.perf_counter()
        with torch.inference_mode():
            compiled(clip)
        compile_seconds = time.perf_counter() - start
        with torch.inference_mode():
            stats = timed(lambda: compiled(clip), repeats=args.repeats, warmup=0)
        record("forward (torch.compile)", stats, TF_FORWARD_SECONDS.get((frames, size)), TARGET_FORWARD_RATIO,
               compile_seconds=compile_seconds)

    if args.backward:
        train_model = create_model(args.model, num_classes=args.num_classes).train()
        targets = torch.zeros(args.batch, dtype=torch.long)

        def step():
            train_model.zero_grad(set_to_none=True)
            loss = torch.nn.functional.cross_entropy(train_model(clip), targets)
            loss.backward()

        record("forward + backward (eager)", timed(step, repeats=args.repeats), None, None)

    if args.profile:
        from torch.profiler import ProfilerActivity, profile

        with torch.inference_mode(), profile(activities=[ProfilerActivity.CPU]) as prof:
            model(clip)
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="assemblenet50")
    parser.add_argument("--num-classes", type=int, default=157)
    parser.add_argument("--frames", type=int, nargs="*", default=None,
                        help="clip lengths; default 32 and 16, paired with --size 224 and 112")
    parser.add_argument("--size", type=int, nargs="*", default=None)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile (slow to compile)")
    parser.add_argument("--backward", action="store_true", help="also time forward + backward in train mode")
    parser.add_argument("--fold-bn", action="store_true", help="also time inference with BatchNorm folded")
    parser.add_argument("--flow-only", action="store_true", help="time only the representation-flow layer")
    parser.add_argument("--no-malloc-tuning", action="store_true",
                        help="leave glibc malloc at its defaults (see assemblenet.runtime)")
    parser.add_argument("--profile", action="store_true", help="print the top ops of one eager forward")
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    args = parser.parse_args()

    if not args.no_malloc_tuning:
        runtime.keep_freed_memory()
    if args.threads:
        torch.set_num_threads(args.threads)
    frames = args.frames or [32, 16]
    sizes = args.size or ([224, 112] if args.frames is None else [224] * len(frames))
    if len(sizes) != len(frames):
        parser.error("give as many --size values as --frames values")

    results = []
    for t, s in zip(frames, sizes):
        results.extend(run_case(args, t, s))

    print(f"\n{args.model}, {args.num_classes} classes, batch {args.batch}, fp32, {torch.get_num_threads()} threads, "
          f"malloc tuning {'off' if args.no_malloc_tuning else 'on'}, torch {torch.__version__}")
    print(f"{'what':<30} {'T x S':>9} {'median s':>9} {'min s':>8} {'TF s':>6} {'ratio':>6} {'target':>7}")
    for row in results:
        ratio = f"{row['ratio_to_tf']:.2f}" if "ratio_to_tf" in row else "-"
        target = f"<={row['target_ratio']}" if "target_ratio" in row else "-"
        tf = f"{row['tf_seconds']:.2f}" if "tf_seconds" in row else "-"
        extra = f"  (compile {row['compile_seconds']:.0f} s)" if "compile_seconds" in row else ""
        print(f"{row['kind']:<30} {row['frames']:>3}x{row['size']:<5} {row['median']:>9.3f} {row['min']:>8.3f} "
              f"{tf:>6} {ratio:>6} {target:>7}{extra}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"args": vars(args) | {"json": str(args.json)}, "results": results},
                                        indent=1, default=str))


if __name__ == "__main__":
    main()
