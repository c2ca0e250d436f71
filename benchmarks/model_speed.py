"""Time AssembleNet on the CPU against this machine's own measured ceilings.

For each clip shape: the representation-flow layer, the eager fp32 forward (as ``create_model`` returns it), the
forward as ``predict``/``evaluate`` run it (BatchNorm folded), the same in bf16 (weights converted) and under bf16
autocast, optionally torch.compile, and optionally a training step (forward, backward, SGD) in fp32 and under bf16
autocast. Each figure is the median (and min) of ``--repeats`` runs after ``--warmup`` runs.

The same run measures this machine's ceilings: the best GFLOP/s of oneDNN matmuls and convolutions in fp32 and
bf16, on shapes large enough to reach peak, best of ``--ceiling-repeats`` calls, measured before and after the
model timings (both are reported; the higher is used). Every model time is also given as achieved FLOP/s over
that ceiling, a fraction that carries across machines; a figure above its ceiling is flagged as a measurement
error, never printed as a share above 100%. Stored reference figures (the official TensorFlow code) are printed
with the machine they were measured on; a verdict against them is drawn only when that machine is this one.

    python benchmarks/model_speed.py                                  # asn50, 157 classes: 32x224 and 16x112
    python benchmarks/model_speed.py --frames 16 --size 112 --train   # + training clips/s, batch 8
    python benchmarks/model_speed.py --flow-only --frames 32 --size 224
    python benchmarks/model_speed.py --ceilings-only
    python benchmarks/model_speed.py --profile --frames 16 --size 112  # top ops, to explain a missed target
    python benchmarks/model_speed.py --json benchmarks/results/model_speed.json --readme  # + its README section
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import subprocess
import sys
import time
from functools import partial
from pathlib import Path
from typing import Callable

import torch

from assemblenet import runtime
from assemblenet.argtypes import positive_int
from assemblenet.engine.modeling import prepare_for_inference
from assemblenet.fileio import atomic_write_json
from assemblenet.models import create_model
from assemblenet.models.summary import summarize_model
from assemblenet.runtime import time_calls

# The official TF code (Model Garden AssembleNet, graph mode), asn50, 157 classes, batch 1, fp32, 2 threads:
# figures from issue 10, measured by its author alternately with this project's code in one session.
TF_REFERENCE = {
    "machine": "Intel Xeon with AVX-512-BF16 and AMX, 2 CPUs (issue 10's machine)",
    "signature": None,  # its exact signature was not recorded, so no run can claim to be on that machine
    "forward_s": {(32, 224): 3.52, (16, 112): 0.60},
    "flow_s": {(32, 224): 1.48},
}
README = Path(__file__).with_name("README.md")
# Issue 10's targets, as ratios to TF on the same machine.
TARGETS = {"flow (fused)": 0.2, "forward fp32 (eager)": 0.75, "forward bf16": 0.4}


def time_runs(fn: Callable[[], object], *, repeats: int, warmup: int) -> dict[str, float]:
    """Median and min wall time of ``repeats`` calls after ``warmup`` untimed ones, and the median process CPU
    time per thread (on a shared machine it estimates the time alone; spinning threads inflate it)."""
    return time_calls(fn, repeats=repeats, warmup=warmup, threads=torch.get_num_threads())


# -- ceilings -------------------------------------------------------------------------------------------------
# Shapes large enough that each kernel reaches this machine's peak (a small one measures call overheads and
# thread start-up, and understates the ceiling): about 0.1-1 s per call on 2 AVX-512 cores. Non-native bf16
# runs reference kernels whose throughput does not grow with size (0.3 GFLOP/s for a matmul), so it gets the
# small shapes, timed once.
CEILING_SHAPES = {
    "full": {"matmul": 4096, "conv 1x1x1": (512, 8, 56), "conv 3x3": (256, 16, 56)},
    "small": {"matmul": 256, "conv 1x1x1": (64, 2, 14), "conv 3x3": (32, 2, 14)},
}
CEILING_KERNELS = ("matmul", "conv 1x1x1", "conv 3x3")


def ceiling_kernels(shapes: dict) -> dict[str, tuple[Callable, Callable, float]]:
    """``name -> (make(dtype) -> operands, run(*operands), FLOPs)``: a square matmul and the two convolution
    shapes that dominate AssembleNet (a pointwise 1x1x1 conv3d and a 3x3 spatial conv, channels-last, as the
    model runs them)."""
    n = shapes["matmul"]
    c1, t1, hw1 = shapes["conv 1x1x1"]
    c3, t3, hw3 = shapes["conv 3x3"]
    return {
        "matmul": (lambda dt: (torch.randn(n, n, dtype=dt), torch.randn(n, n, dtype=dt)),
                   lambda a, b: torch.mm(a, b), 2 * n ** 3),
        "conv 1x1x1": (lambda dt: (torch.randn(1, c1, t1, hw1, hw1, dtype=dt).contiguous(
                           memory_format=torch.channels_last_3d), torch.randn(c1, c1, 1, 1, 1, dtype=dt)),
                       lambda x, w: torch.nn.functional.conv3d(x, w), 2 * c1 * c1 * t1 * hw1 * hw1),
        "conv 3x3": (lambda dt: (torch.randn(t3, c3, hw3, hw3, dtype=dt).contiguous(
                         memory_format=torch.channels_last), torch.randn(c3, c3, 3, 3, dtype=dt)),
                     lambda x, w: torch.nn.functional.conv2d(x, w, padding=1), 2 * c3 * c3 * 9 * t3 * hw3 * hw3),
    }


def measure_ceilings(*, repeats: int = 5, tiny: bool = False, native_bf16: bool = True,
                     timer: Callable[..., dict] = time_runs) -> dict[str, dict]:
    """GFLOP/s per dtype and kernel from the best (``min_s``) of ``repeats`` timed calls, and the peak over
    kernels. ``timer(fn, repeats=, warmup=)`` returns :func:`time_runs`' statistics (a test passes fake ones)."""
    ceilings: dict[str, dict] = {}
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        slow = dtype == torch.bfloat16 and not native_bf16  # reference kernels: one timed run is plenty
        kernels = ceiling_kernels(CEILING_SHAPES["small" if tiny or slow else "full"])
        row: dict = {}
        with torch.inference_mode():
            for kernel, (make, run, flops) in kernels.items():
                a, b = make(dtype)
                stats = timer(lambda: run(a, b), repeats=1 if slow else repeats, warmup=0 if slow else 1)
                row[kernel] = flops / stats["min_s"] / 1e9
        row["peak"] = max(row[kernel] for kernel in CEILING_KERNELS)
        row["native"] = True if name == "fp32" else native_bf16
        ceilings[name] = row
    return ceilings


def best_ceilings(before: dict, after: dict) -> dict:
    """Per dtype and kernel, the better of the measurements taken before and after the model timings: load from
    other work only ever lowers a ceiling, so the higher one is the nearer to the machine's own."""
    best = {}
    for dtype, row in before.items():
        merged = {kernel: max(row[kernel], after[dtype][kernel]) for kernel in CEILING_KERNELS}
        merged["peak"] = max(merged.values())
        merged["native"] = row["native"]
        best[dtype] = merged
    return best


def judge_against_ceilings(rows: list[dict], ceilings: dict) -> None:
    """Give each row with a FLOP figure its fraction of its dtype's ceiling. A figure above the ceiling is
    impossible, so it is flagged as a measurement error (the ceiling was measured low, or the load changed
    between the two), and no fraction is given."""
    for row in rows:
        row.pop("above_ceiling", None)
        achieved, peak = row.get("achieved_gflops"), ceilings[row["dtype"]]["peak"]
        row["ceiling_gflops"] = peak
        if not achieved:
            row["ceiling_fraction"] = None
        elif achieved > peak:
            row["ceiling_fraction"] = None
            row["above_ceiling"] = True
        else:
            row["ceiling_fraction"] = achieved / peak


# -- model cases ----------------------------------------------------------------------------------------------
def run_case(args: argparse.Namespace, *, frames: int, size: int, native_bf16: bool, this_machine: str
             ) -> list[dict]:
    torch.manual_seed(0)
    clip = torch.rand(args.batch, 3, frames, size, size)
    model = create_model(args.model, num_classes=args.num_classes).eval()
    summary = summarize_model(model, frames=frames, size=size, batch=args.batch)
    reference_ok = args.model == "assemblenet50" and args.batch == 1
    tf_run = measure_tf(args, frames=frames, size=size) if args.tf_python and reference_ok else None
    if tf_run is not None:  # side by side, this run, this machine
        tf_forward, tf_flow = tf_run["forward"]["median_s"], tf_run["flow"]["median_s"]
        tf_machine, same_machine = f"this machine, this run (TF {tf_run['tensorflow']})", True
    else:
        reference_ok = reference_ok and args.num_classes == 157
        tf_forward = TF_REFERENCE["forward_s"].get((frames, size)) if reference_ok else None
        tf_flow = TF_REFERENCE["flow_s"].get((frames, size)) if args.batch == 1 else None
        tf_machine, same_machine = TF_REFERENCE["machine"], TF_REFERENCE["signature"] == this_machine
    results: list[dict] = []

    def record(what: str, stats: dict, *, flops: float, dtype: str, tf_seconds: float | None = None,
               target: float | None = None, clips: int | None = None, **extra) -> None:
        row = {"what": what, "frames": frames, "size": size, "batch": args.batch, **stats, **extra,
               "gflop": flops / 1e9, "dtype": dtype}
        # The FLOP counter counts convolutions and matmuls only: the flow layer (elementwise, memory-bound)
        # has no FLOP figure and is judged against TF and the memory floor (benchmarks/flow_speed.py) instead.
        achieved = flops / stats["median_s"] / 1e9 if flops else None
        row["achieved_gflops"] = achieved  # its share of the ceiling is judged at the end (judge_against_ceilings)
        if clips:
            row["clips_per_s"] = clips / stats["median_s"]
        if tf_seconds is not None:
            row.update(tf_seconds=tf_seconds, tf_machine=tf_machine,
                       ratio_to_tf=stats["median_s"] / tf_seconds, target_ratio=target)
            row["meets_target"] = (row["ratio_to_tf"] <= target) if same_machine and target else None
        results.append(row)
        share = f", {achieved:.1f} GFLOP/s {dtype}" if achieved else ""
        print(f"  {what:<30} {frames}x{size}: median {stats['median_s']:.3f} s, min {stats['min_s']:.3f} s{share}",
              flush=True)

    # partial binds the model now: a lambda would close over names that are deleted below to free memory.
    timing = dict(repeats=args.repeats, warmup=args.warmup)
    if model.flow_layer is not None:
        with torch.inference_mode():
            stats = time_runs(partial(model.flow_layer, clip), **timing)
        record("flow layer", stats, flops=summary.flow_flops, dtype="fp32", tf_seconds=tf_flow,
               target=TARGETS["flow (fused)"])
        if args.profile:
            _profile(partial(model.flow_layer, clip), title=f"flow layer {frames}x{size}")
    if args.flow_only:
        return results

    flops = summary.total_flops
    with torch.inference_mode():
        stats = time_runs(partial(model, clip), **timing)
    record("forward fp32 (eager)", stats, flops=flops, dtype="fp32", tf_seconds=tf_forward,
           target=TARGETS["forward fp32 (eager)"])
    if args.profile:
        _profile(partial(model, clip), title=f"eager forward {frames}x{size}")

    folded = prepare_for_inference(copy.deepcopy(model))
    with torch.inference_mode():
        stats = time_runs(partial(folded, clip), **timing)
    record("forward fp32 (BN folded)", stats, flops=flops, dtype="fp32", tf_seconds=tf_forward,
           target=TARGETS["forward fp32 (eager)"])
    del folded

    if args.bf16:
        bf16_timing = timing if native_bf16 else dict(repeats=1, warmup=0)  # slow fallback kernels
        converted = prepare_for_inference(copy.deepcopy(model), precision="bf16")
        clip_bf16 = clip.bfloat16()
        with torch.inference_mode():
            stats = time_runs(partial(converted, clip_bf16), **bf16_timing)
        record("forward bf16 (converted)", stats, flops=flops, dtype="bf16", tf_seconds=tf_forward,
               target=TARGETS["forward bf16"])
        del converted
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
            stats = time_runs(partial(model, clip), **bf16_timing)
        record("forward bf16 (autocast)", stats, flops=flops, dtype="bf16", tf_seconds=tf_forward,
               target=TARGETS["forward bf16"])

    if args.compile:
        compiled = torch.compile(prepare_for_inference(copy.deepcopy(model)))
        start = time.perf_counter()
        with torch.inference_mode():
            compiled(clip)  # the first call compiles
        compile_seconds = time.perf_counter() - start
        with torch.inference_mode():
            stats = time_runs(partial(compiled, clip), **timing)
        record("forward fp32 (torch.compile)", stats, flops=flops, dtype="fp32", compile_s=compile_seconds)
        del compiled
    del model

    if args.train:
        results.extend(run_training_case(args, frames=frames, size=size, native_bf16=native_bf16))
    return results


def run_training_case(args: argparse.Namespace, *, frames: int, size: int, native_bf16: bool) -> list[dict]:
    """Clips/s of a training step (forward, backward, SGD step) at batch ``--train-batch``, fp32 and under bf16
    autocast. Training FLOPs are taken as 3x the forward's (backward = 2x forward), the usual estimate."""
    torch.manual_seed(0)
    batch = args.train_batch
    clip = torch.rand(batch, 3, frames, size, size)
    labels = torch.randint(0, args.num_classes, (batch,))
    model = create_model(args.model, num_classes=args.num_classes).train()
    flops = 3 * summarize_model(model, frames=frames, size=size, batch=batch).total_flops
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    rows = []
    for dtype in ("fp32", "bf16"):
        if dtype == "bf16" and not args.bf16:
            continue

        def step() -> None:
            optimizer.zero_grad(set_to_none=True)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == "bf16"):
                loss = torch.nn.functional.cross_entropy(model(clip), labels)
            loss.backward()
            optimizer.step()

        native = dtype == "fp32" or native_bf16
        stats = time_runs(step, repeats=args.repeats if native else 1, warmup=args.warmup if native else 0)
        achieved = flops / stats["median_s"] / 1e9
        row = {"what": f"train step {dtype}" + (" (autocast)" if dtype == "bf16" else ""), "frames": frames,
               "size": size, "batch": batch, **stats, "gflop": flops / 1e9, "dtype": dtype,
               "achieved_gflops": achieved, "clips_per_s": batch / stats["median_s"]}
        rows.append(row)
        print(f"  {row['what']:<30} {frames}x{size} batch {batch}: {row['clips_per_s']:.2f} clips/s, "
              f"{achieved:.1f} GFLOP/s {dtype}", flush=True)
    return rows


def measure_tf(args: argparse.Namespace, *, frames: int, size: int) -> dict:
    """The official TF model's times at this clip shape, from ``benchmarks/tf_speed.py`` run with
    ``--tf-python`` (an environment with tensorflow-cpu and tf-models-official), on the same threads."""
    command = [args.tf_python, str(Path(__file__).with_name("tf_speed.py")), "--frames", str(frames), "--size",
               str(size), "--num-classes", str(args.num_classes), "--repeats", str(args.repeats), "--warmup",
               str(max(1, args.warmup)), "--threads", str(torch.get_num_threads())]
    print(f"  official TF (Model Garden) {frames}x{size} ...", flush=True)
    env = dict(os.environ)
    if args.tf_pythonpath:
        env["PYTHONPATH"] = args.tf_pythonpath
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise SystemExit(f"model_speed: {' '.join(command)} failed:\n{done.stderr[-2000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"  official TF forward {result['forward']['median_s']:.3f} s, flow layer {result['flow']['median_s']:.3f} s",
          flush=True)
    return result


def _profile(fn: Callable[[], object], *, title: str) -> None:
    from torch.profiler import ProfilerActivity, profile

    with torch.inference_mode(), profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    print(f"\nprofile: {title} (top ops by self CPU time)")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15))


# -- output ---------------------------------------------------------------------------------------------------
ABOVE_CEILING = "error**"
ABOVE_CEILING_NOTE = ("** above this run's measured ceiling: a measurement error (the ceiling was measured low, or "
                      "other work changed the load between the ceiling and the model timings); no fraction is given.")


def format_ceilings(before: dict, after: dict, used: dict) -> str:
    lines = ["ceiling (GFLOP/s)       matmul  conv 1x1x1  conv 3x3    peak  native"]
    for dtype, row in used.items():
        for label, source in (("before", before[dtype]), ("after", after[dtype]), ("used (max)", row)):
            lines.append(f"{dtype + ' ' + label:<22} {source['matmul']:>7.1f} {source['conv 1x1x1']:>11.1f} "
                         f"{source['conv 3x3']:>9.1f} {source['peak']:>7.1f}  {'yes' if row['native'] else 'no'}")
    return "\n".join(lines)


def format_share(row: dict) -> str:
    if row.get("above_ceiling"):
        return ABOVE_CEILING
    return f"{row['ceiling_fraction']:.1%}" if row.get("ceiling_fraction") else "-"


def format_table(results: list[dict]) -> str:
    lines = [f"{'what':<30} {'clip':>7} {'median s':>9} {'min s':>7} {'clips/s':>8} {'GFLOP/s':>8} {'ceiling':>8} "
             f"{'TF s':>5} {'ratio':>6} {'verdict':>8}"]
    for row in results:
        if "tf_seconds" in row:
            tf, ratio = f"{row['tf_seconds']:.2f}", f"{row['ratio_to_tf']:.2f}"
            verdict = {True: "met", False: "missed", None: "none*"}[row["meets_target"]]
        else:
            tf = ratio = verdict = "-"
        clips = f"{row['clips_per_s']:.2f}" if "clips_per_s" in row else "-"
        gflops = f"{row['achieved_gflops']:.1f}" if row["achieved_gflops"] else "-"
        extra = f"  (compile {row['compile_s']:.1f} s)" if "compile_s" in row else ""
        lines.append(f"{row['what']:<30} {row['frames']:>3}x{row['size']:<3} {row['median_s']:>9.3f} "
                     f"{row['min_s']:>7.3f} {clips:>8} {gflops:>8} {format_share(row):>8} "
                     f"{tf:>5} {ratio:>6} {verdict:>8}{extra}")
    if any(row.get("meets_target", False) is None for row in results):
        lines.append(f"* TF figures were measured on another machine ({TF_REFERENCE['machine']}): the ratio is "
                     "for information only; no verdict is drawn. Run with --tf-python to time TF here.")
    if any(row.get("above_ceiling") for row in results):
        lines.append(ABOVE_CEILING_NOTE)
    return "\n".join(lines)


def markdown_section(record: dict) -> str:
    """The "## Model speed: latest run" section of benchmarks/README.md, from the JSON record of a run."""
    machine, load = record["machine"], record["load_average"]
    lines = ["## Model speed: latest run", "",
             f"Written by `{record['command']}` on {record['date']}.", "",
             f"Machine: {machine['signature']}; torch {machine['torch']}, CPU capability "
             f"{machine['torch_cpu_capability']}, native bf16 {'yes' if machine['native_bf16'] else 'no'}, "
             f"{record['threads']} threads, malloc tuning {'on' if record['malloc_tuning'] else 'off'}; load "
             f"average {load['start']:.1f} at the start and {load['end']:.1f} at the end. {record['model']}, "
             f"{record['num_classes']} classes, batch {record['batch']}; each figure is the median of "
             f"{record['repeats']} run(s) after {record['warmup']} warm-up run(s).", "",
             f"Ceilings (GFLOP/s, best of {record['ceiling_repeats']} calls per kernel, measured before and after "
             "the model timings; each figure is judged against the higher):", "",
             "| dtype | measured | matmul | conv 1x1x1 | conv 3x3 | peak |", "|---|---|---:|---:|---:|---:|"]
    for dtype, used in record["ceilings_gflops"].items():
        for label, row in (("before", record["ceilings_before_gflops"][dtype]),
                           ("after", record["ceilings_after_gflops"][dtype]), ("**used** (max)", used)):
            lines.append(f"| {dtype} | {label} | {row['matmul']:.1f} | {row['conv 1x1x1']:.1f} | "
                         f"{row['conv 3x3']:.1f} | {row['peak']:.1f} |")
    shapes = record["ceiling_shapes"]
    lines += ["", f"Shapes: matmul {shapes['matmul']}^3; conv 1x1x1 {shapes['conv 1x1x1'][0]} channels, "
              f"{shapes['conv 1x1x1'][1]}x{shapes['conv 1x1x1'][2]}^2; conv 3x3 {shapes['conv 3x3'][0]} channels, "
              f"{shapes['conv 3x3'][1]} frames of {shapes['conv 3x3'][2]}^2 (channels-last)"
              + ("." if machine["native_bf16"] else "; bf16, without native kernels here, gets small shapes "
                 "timed once (its reference kernels do not speed up with size)."), ""]
    if record["results"]:
        lines += ["| what | clip | median s | min s | GFLOP/s | share of the dtype's ceiling |",
                  "|---|---|---:|---:|---:|---:|"]
        for row in record["results"]:
            gflops = f"{row['achieved_gflops']:.1f}" if row["achieved_gflops"] else "-"
            lines.append(f"| {row['what']} | {row['frames']}x{row['size']}x{row['size']} | {row['median_s']:.3f} | "
                         f"{row['min_s']:.3f} | {gflops} | {format_share(row)} |")
        if any(row.get("above_ceiling") for row in record["results"]):
            lines += ["", ABOVE_CEILING_NOTE]
    return "\n".join(lines) + "\n"


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
    parser.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=True,
                        help="also time bf16 (converted and autocast); without native bf16 each is run once")
    parser.add_argument("--compile", action=argparse.BooleanOptionalAction, default=False,
                        help="also time torch.compile (compiling takes minutes on 2 cores)")
    parser.add_argument("--train", action="store_true", help="also time a training step (clips/s)")
    parser.add_argument("--train-batch", type=positive_int, default=8, help="clips per training step")
    parser.add_argument("--flow-only", action="store_true", help="time only the representation-flow layer")
    parser.add_argument("--ceilings-only", action="store_true", help="measure only the machine's ceilings")
    parser.add_argument("--ceiling-repeats", type=positive_int, default=5,
                        help="timed calls per ceiling kernel, before and after the model timings (default 5)")
    parser.add_argument("--tiny", action="store_true", help="small ceiling kernels (a smoke run)")
    parser.add_argument("--no-malloc-tuning", action="store_true",
                        help="leave glibc malloc at its defaults (see assemblenet.runtime)")
    parser.add_argument("--profile", action="store_true", help="print the top ops of the flow layer and forward")
    parser.add_argument("--tf-python", default=None,
                        help="python of an environment with tensorflow-cpu and tf-models-official: time the "
                             "official TF model side by side (benchmarks/tf_speed.py) and judge the targets")
    parser.add_argument("--tf-pythonpath", default=None,
                        help="PYTHONPATH for --tf-python (the folder holding the Model Garden assemblenet source)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results to this JSON file")
    parser.add_argument("--readme", type=Path, nargs="?", const=README, default=None,
                        help="also write the results as the '## Model speed: latest run' section of this markdown "
                             "file (default: benchmarks/README.md)")
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
    machine = runtime.machine_info()
    load_before = os.getloadavg()
    header = (f"{args.model}, {args.num_classes} classes, batch {args.batch}, {torch.get_num_threads()} threads, "
              f"malloc tuning {'on' if malloc_tuned else 'off'}, torch {torch.__version__}\n"
              f"machine: {machine['signature']}; torch CPU capability {machine['torch_cpu_capability']}, "
              f"native bf16 {'yes' if machine['native_bf16'] else 'no'}; load average {load_before[0]:.1f} at start")
    print(header, flush=True)
    ceiling_options = dict(repeats=args.ceiling_repeats, tiny=args.tiny, native_bf16=machine["native_bf16"])
    print("ceilings before the model timings ...", flush=True)
    before = measure_ceilings(**ceiling_options)
    results = []
    if not args.ceilings_only:
        for t, s in zip(frames, sizes):
            results.extend(run_case(args, frames=t, size=s, native_bf16=machine["native_bf16"],
                                    this_machine=machine["signature"]))
    print("ceilings after the model timings ...", flush=True)
    after = measure_ceilings(**ceiling_options)
    ceilings = best_ceilings(before, after)
    judge_against_ceilings(results, ceilings)
    load_after = os.getloadavg()
    print(f"\n{header}\nload average {load_after[0]:.1f} at the end "
          f"(anything well above 0 means other work shared the CPU and the times are inflated)")
    print(format_ceilings(before, after, ceilings))
    if results:
        print(format_table(results))
    record = {
        "command": "python benchmarks/model_speed.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
        "model": args.model, "num_classes": args.num_classes, "batch": args.batch,
        "threads": torch.get_num_threads(), "malloc_tuning": malloc_tuned, "machine": machine,
        "load_average": {"start": load_before[0], "end": load_after[0]}, "ceilings_gflops": ceilings,
        "ceilings_before_gflops": before, "ceilings_after_gflops": after, "ceiling_repeats": args.ceiling_repeats,
        "ceiling_shapes": CEILING_SHAPES["small" if args.tiny else "full"],
        "tf_reference": {"machine": TF_REFERENCE["machine"],
                         "forward_s": {f"{t}x{s}": v for (t, s), v in TF_REFERENCE["forward_s"].items()},
                         "flow_s": {f"{t}x{s}": v for (t, s), v in TF_REFERENCE["flow_s"].items()}},
        "targets": TARGETS, "repeats": args.repeats, "warmup": args.warmup, "results": results,
    }
    if args.json:
        atomic_write_json(args.json, record)
        print(f"results written to {args.json}")
    if args.readme:
        from assemblenet.fileio import replace_markdown_section

        replace_markdown_section(args.readme, markdown_section(record))
        print(f"section written to {args.readme}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
