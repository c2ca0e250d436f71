"""AssembleNet on a GPU: training clips/s and model FLOP utilisation, inference clips/s and peak memory, and the
representation flow (eager and compiled) checked against the CPU layer. One short run answers it all.

    python benchmarks/gpu_speed.py --json gpu_speed.json          # on a CUDA machine, well under 8 minutes
    python benchmarks/gpu_speed.py --device cpu --tiny            # smoke run anywhere (the test suite runs it)

MFU is the model's training FLOPs (3x the forward FLOPs that ``summarize_model`` counts, the usual estimate)
per second over the best bf16 matmul throughput measured on the same device in the same run (not a datasheet
figure). The training stages time the trainer's own step (``Trainer.train_step``: bf16 autocast with fp32
master weights, channels-last-3d weights and inputs, uint8 clips scaled on the device, the on-device loss
window), with and without ``train.compile``, on a batch already on the device: a figure here is a training
figure without the input pipeline (``benchmarks/gpu_check.py`` measures the whole loop against it). Inference
uses the folded-BatchNorm model converted to bf16. Every stage respects a wall-clock budget: when the budget is
spent the remaining stages are skipped and reported as such.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from functools import partial
from pathlib import Path
from typing import Callable

import torch

from _common import model_benchmark_parser
from assemblenet import runtime
from assemblenet.argtypes import positive_int
from assemblenet.data import collate
from assemblenet.data.memory import InMemoryClips
from assemblenet.engine.config import load_config
from assemblenet.engine.modeling import prepare_for_inference, set_train_mode, to_channels_last
from assemblenet.engine.trainer import Trainer
from assemblenet.fileio import atomic_write_json
from assemblenet.models import RepresentationFlow, create_model
from assemblenet.models.summary import summarize_model
from assemblenet.runtime import time_calls

TINY_MODEL = dict(name="assemblenet50_searchable", depth=26, width_multiplier=0.125, flow_iterations=2)


class Budget:
    """Seconds left of the run's wall-clock budget."""

    def __init__(self, seconds: float) -> None:
        self.deadline = time.perf_counter() + seconds

    def left(self) -> float:
        return self.deadline - time.perf_counter()


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], object], device: torch.device, *, repeats: int, warmup: int) -> dict[str, float]:
    return time_calls(fn, repeats=repeats, warmup=warmup, synchronize=lambda: synchronize(device))


def matmul_peak(device: torch.device, *, tiny: bool) -> dict[str, float]:
    """Best bf16 matmul TFLOP/s over a few square sizes (the MFU denominator)."""
    best = {}
    for n in ((256, 512) if tiny else (4096, 8192, 16384)):
        a = torch.randn(n, n, device=device, dtype=torch.bfloat16)
        b = torch.randn(n, n, device=device, dtype=torch.bfloat16)
        stats = timed(partial(torch.mm, a, b), device, repeats=3 if tiny else 10, warmup=1 if tiny else 3)
        best[str(n)] = 2 * n ** 3 / stats["min_s"] / 1e12
        del a, b
    return {"per_size_tflops": best, "peak_tflops": max(best.values())}


def build_model(args: argparse.Namespace) -> torch.nn.Module:
    if args.tiny:
        spec = dict(TINY_MODEL)
        return create_model(spec.pop("name"), num_classes=args.num_classes, **spec)
    return create_model(args.model, num_classes=args.num_classes)


def benchmark_trainer(args: argparse.Namespace, device: torch.device, *, compiled: bool, clips: int | None = None,
                      log_every: int = 10**6, max_steps: int = 10**6) -> Trainer:
    """The engine's trainer for the benchmark model on ``clips`` in-memory uint8 clips (bf16 autocast, SGD,
    nothing written)."""
    model = dict(TINY_MODEL) if args.tiny else {"name": args.model}
    cfg = load_config({
        "seed": 0, "model": model,
        "data": {"num_frames": args.frames, "crop_size": args.size, "batch_size": args.batch, "num_workers": 0},
        "optim": {"lr": 1e-3, "reference_batch_size": args.batch, "max_steps": max_steps, "warmup_steps": 0},
        "train": {"device": str(device), "amp": "bf16", "compile": compiled, "log_every_steps": log_every,
                  "eval_every_epochs": 0, "progress": False},
        "eval": {"num_clips": 1, "num_crops": 1, "batch_size": args.batch},
        "output": {"dir": None, "tensorboard": False},
    })
    data = InMemoryClips(num_clips=clips or args.batch, num_classes=args.num_classes, frames=args.frames,
                         size=args.size)
    return Trainer(cfg, train_dataset=data, val_dataset=data, progress=False)


def resident_batch(trainer: Trainer, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    clip, target, _ = collate([trainer.train_dataset[i] for i in range(trainer.cfg.data.batch_size)])
    return clip.to(device), target.to(device)


def train_stage(args: argparse.Namespace, device: torch.device, *, compiled: bool, flops_per_clip: float,
                peak_tflops: float, window: int = 1, budget: Budget | None = None) -> dict:
    """The trainer's step alone (model, loss, backward, optimiser, loss window) on a batch already on the
    device: what the model can do, the reference the whole training loop is measured against.

    ``args.steps`` timings of ``window`` back-to-back steps each, the device synchronised at the end of each
    (as the training loop's log points synchronise it); a timing is its time over ``window``. With ``budget``,
    no timing starts once it is spent (the first, compiling step cannot be cut short here)."""
    torch.manual_seed(0)
    trainer = benchmark_trainer(args, device, compiled=compiled)
    set_train_mode(trainer.prepare_training(), frozen_bn=False)
    clip, target = resident_batch(trainer, device)

    def step() -> None:
        trainer.train_step(clip, target)

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    step()  # compiles when compiled
    synchronize(device)
    first_step_s = time.perf_counter() - start
    step()  # warm-up (cuDNN's autotuning of the backward's shapes, compiled graphs' second call)
    synchronize(device)
    per_step: list[float] = []
    for _ in range(args.steps):
        if budget is not None and budget.left() <= 0:
            break
        start = time.perf_counter()
        for _ in range(window):
            step()
        synchronize(device)
        per_step.append((time.perf_counter() - start) / window)
    stage = "trainer step bf16 autocast" + (" + torch.compile" if compiled else "")
    if not per_step:
        return {"stage": stage, "error": "the budget ran out before a timed step", "first_step_s": first_step_s}
    median = statistics.median(per_step)
    clips_per_s = args.batch / median
    row = {"stage": stage, "median_s": median, "min_s": min(per_step), "repeats": len(per_step),
           "steps_per_timing": window, "first_step_s": first_step_s, "clips_per_s": clips_per_s,
           "batch": args.batch, "achieved_tflops": 3 * flops_per_clip * clips_per_s / 1e12}
    row["mfu"] = row["achieved_tflops"] / peak_tflops
    if device.type == "cuda":
        row["peak_memory_gib"] = torch.cuda.max_memory_allocated(device) / 2 ** 30
    return row


def inference_stage(args: argparse.Namespace, device: torch.device, *, flops_per_clip: float,
                    peak_tflops: float) -> dict:
    torch.manual_seed(0)
    model = prepare_for_inference(build_model(args), device=device, precision="bf16")
    model = to_channels_last(model)
    clip = torch.rand(args.batch, 3, args.frames, args.size, args.size, device=device, dtype=torch.bfloat16)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    with torch.inference_mode():
        stats = timed(lambda: model(clip), device, repeats=args.steps, warmup=2)
    clips_per_s = args.batch / stats["median_s"]
    row = {"stage": "inference bf16 (BN folded)", **stats, "clips_per_s": clips_per_s,
           "achieved_tflops": flops_per_clip * clips_per_s / 1e12}
    row["mfu"] = row["achieved_tflops"] / peak_tflops
    if device.type == "cuda":
        row["peak_memory_gib"] = torch.cuda.max_memory_allocated(device) / 2 ** 30
    return row


def flow_stage(args: argparse.Namespace, device: torch.device, *, compiled: bool) -> dict:
    """The representation flow on ``device`` (eager or compiled), timed at the benchmark clip and checked
    against the CPU layer on a smaller clip."""
    iterations = TINY_MODEL["flow_iterations"] if args.tiny else 40
    layer = RepresentationFlow(num_iterations=iterations).to(device)
    run = torch.compile(layer) if compiled else layer
    torch.manual_seed(0)
    check = torch.rand(2, 3, 8, 64, 64)
    with torch.inference_mode():
        expected = RepresentationFlow(num_iterations=iterations)(check)
        got = run(check.to(device)).float().cpu()
    max_abs_diff = float((got - expected).abs().max())
    clip = torch.rand(args.batch, 3, args.frames, args.size, args.size, device=device)
    with torch.inference_mode():
        start = time.perf_counter()
        run(clip)
        synchronize(device)
        first_call_s = time.perf_counter() - start
        stats = timed(lambda: run(clip), device, repeats=args.steps, warmup=1)
    return {"stage": "representation flow" + (" (torch.compile)" if compiled else " (eager)"), **stats,
            "first_call_s": first_call_s, "clips_per_s": args.batch / stats["median_s"],
            "max_abs_diff_vs_cpu": max_abs_diff, "iterations": iterations}


def main(argv: list[str] | None = None) -> int:
    parser = model_benchmark_parser(__doc__, device_help="cuda, cuda:N or cpu")
    parser.add_argument("--steps", type=positive_int, default=10, help="timed steps per stage")
    parser.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                        help="also run the torch.compile stages (default: on for CUDA, off for CPU)")
    parser.add_argument("--budget-s", type=float, default=450.0, help="wall-clock budget; later stages are skipped")
    parser.add_argument("--tiny", action="store_true", help="tiny model and clip (a smoke run)")
    parser.add_argument("--json", type=Path, default=None, help="write the results to this JSON file")
    args = parser.parse_args(argv)
    if args.tiny:
        args.batch, args.frames, args.size, args.steps = min(args.batch, 2), 4, 32, min(args.steps, 2)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("gpu_speed: CUDA is not available on this machine; pass --device cpu for a smoke run", file=sys.stderr)
        return 2
    compile_stages = args.compile if args.compile is not None else device.type == "cuda"
    budget = Budget(args.budget_s)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        name = torch.cuda.get_device_name(device)
    else:
        runtime.keep_freed_memory()
        name = runtime.machine_info()["signature"]
    print(f"device: {name}; torch {torch.__version__}; clip {args.batch}x3x{args.frames}x{args.size}x{args.size}",
          flush=True)

    peak = matmul_peak(device, tiny=args.tiny)
    print(f"bf16 matmul peak: {peak['peak_tflops']:.1f} TFLOP/s ({peak['per_size_tflops']})", flush=True)
    flops_per_clip = summarize_model(build_model(args), frames=args.frames, size=args.size).total_flops
    stages: list[dict] = []
    skipped: list[str] = []
    plan: list[tuple[str, Callable[[], dict]]] = [
        ("train", lambda: train_stage(args, device, compiled=False, flops_per_clip=flops_per_clip,
                                      peak_tflops=peak["peak_tflops"])),
        ("inference", lambda: inference_stage(args, device, flops_per_clip=flops_per_clip,
                                              peak_tflops=peak["peak_tflops"])),
        ("flow eager", lambda: flow_stage(args, device, compiled=False)),
    ]
    if compile_stages:
        plan += [("flow compiled", lambda: flow_stage(args, device, compiled=True)),
                 ("train compiled", lambda: train_stage(args, device, compiled=True, flops_per_clip=flops_per_clip,
                                                        peak_tflops=peak["peak_tflops"]))]
    for name_, run in plan:
        if budget.left() <= 0:
            skipped.append(name_)
            print(f"  {name_}: skipped (budget of {args.budget_s:.0f} s spent)", flush=True)
            continue
        try:
            row = run()
        except Exception as error:  # noqa: BLE001 - a failed stage (e.g. a compile error) is a result, not the end
            row = {"stage": name_, "error": f"{type(error).__name__}: {error}"}
        stages.append(row)
        print("  " + json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()}),
              flush=True)
        if device.type == "cuda":
            torch.cuda.empty_cache()
    payload = {"command": "python benchmarks/gpu_speed.py " + " ".join(sys.argv[1:] if argv is None else argv),
               "device": name, "torch": torch.__version__, "batch": args.batch, "frames": args.frames,
               "size": args.size, "model": TINY_MODEL if args.tiny else args.model,
               "gflop_per_clip_forward": flops_per_clip / 1e9, "bf16_matmul_peak": peak, "stages": stages,
               "skipped": skipped, "budget_s": args.budget_s, "wall_s": args.budget_s - budget.left(),
               "mfu_target": 0.35}
    if args.json:
        atomic_write_json(args.json, payload)
        print(f"results written to {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
