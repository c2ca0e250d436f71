"""AssembleNet++ against AssembleNet, side by side in one run: forward time of two presets at one clip shape,
timed alternately (A, B, A, B, ...) so that drift in the machine's speed hits both alike.

    python benchmarks/plus_speed.py                                     # plus50_rgbflow vs asn50, 32x224x224
    python benchmarks/plus_speed.py --frames 16 --size 112 --json benchmarks/results/plus_speed.json

Issue 9's target: ``assemblenet_plus50_rgbflow`` at most 1.15x ``assemblenet50`` at 32x224x224 (eager fp32, eval,
batch 1). Both are timed as ``create_model`` returns them and as ``predict`` runs them (BatchNorm folded).
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import sys
import time
from pathlib import Path

import torch

from assemblenet import runtime
from assemblenet.engine.modeling import prepare_for_inference
from assemblenet.fileio import atomic_write_json
from assemblenet.models import create_model


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs=2, default=["assemblenet50", "assemblenet_plus50_rgbflow"])
    parser.add_argument("--num-classes", type=int, default=157)
    parser.add_argument("--frames", type=int, default=32)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--target", type=float, default=1.15, help="largest allowed ratio second / first")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    runtime.keep_freed_memory()
    machine = runtime.machine_info()
    torch.manual_seed(0)
    clip = torch.rand(1, 3, args.frames, args.size, args.size)
    eager = {name: create_model(name, num_classes=args.num_classes).eval() for name in args.models}
    folded = {name: prepare_for_inference(copy.deepcopy(model)) for name, model in eager.items()}
    times: dict[str, dict[str, list[float]]] = {"eager": {n: [] for n in args.models},
                                                "bn_folded": {n: [] for n in args.models}}
    print(f"{machine['signature']}; {torch.get_num_threads()} threads; clip 1x3x{args.frames}x{args.size}x{args.size}; "
          f"load average {os.getloadavg()[0]:.1f}", flush=True)
    with torch.inference_mode():
        for form, models in (("eager", eager), ("bn_folded", folded)):
            for model in models.values():
                model(clip)  # warm-up
            for _ in range(args.repeats):
                for name, model in models.items():
                    start = time.perf_counter()
                    model(clip)
                    times[form][name].append(time.perf_counter() - start)
    result = {"command": "python benchmarks/plus_speed.py " + " ".join(sys.argv[1:] if argv is None else argv),
              "machine": machine, "frames": args.frames, "size": args.size, "target_ratio": args.target, "forms": {}}
    first, second = args.models
    for form, per_model in times.items():
        medians = {name: statistics.median(values) for name, values in per_model.items()}
        ratio = medians[second] / medians[first]
        result["forms"][form] = {"median_s": medians, "all_s": per_model, "ratio": ratio,
                                 "meets_target": ratio <= args.target}
        print(f"{form:<10} {first} {medians[first]:.3f} s, {second} {medians[second]:.3f} s: ratio {ratio:.3f} "
              f"(target <= {args.target}: {'met' if ratio <= args.target else 'missed'})", flush=True)
    result["load_average_end"] = os.getloadavg()[0]
    if args.json:
        atomic_write_json(args.json, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
