"""One command that proves the GPU path: the GPU tests, a torchrun training with evaluate and predict, and the
training loop's speed against the model's own, with the MFU. It writes JSON and a markdown table.

    python benchmarks/gpu_check.py                          # on a CUDA machine: at most --budget-s (480 s)
    python benchmarks/gpu_check.py --device cpu --tiny      # the same stages on the CPU in under 2 minutes

Stages, in order; each checks the wall-clock budget before it starts, and the long ones inside as well:

1. ``pytest -m cuda`` (tests/engine/test_cuda.py) on the device: fp32 forward and backward against the CPU with
   TF32 off, the flow layer against the CPU kernel, 30 bf16 training steps whose loss falls, checkpoints moved
   between the device and the CPU.
2. ``torchrun --nproc_per_node 1`` of ``assemblenet train`` on generated frame-folder videos (no video decoder
   needed), then ``assemblenet evaluate`` and ``assemblenet predict`` on the trained weights.
3. Throughput at the benchmark clip (default AssembleNet-50, 8 x 32x224x224, bf16): the whole training loop
   (``Trainer.fit`` over in-memory uint8 clips: loader, pinned copy, step, logging) against the trainer's step
   alone on a batch already on the device (``benchmarks/gpu_speed.py``'s figure), eager and compiled.
4. MFU: 3 x forward FLOPs per clip x clips/s over the bf16 matmul peak measured in this run.

Targets (issue 17): every GPU test passes; loop clips/s >= 0.9 x step clips/s; MFU >= 40% in bf16 with or
without compile, whichever is faster. On a machine without the project's pure-Python dependencies (tqdm, PyYAML,
tensorboard), ``--wheels DIR`` installs them offline first (``pip download --no-deps -d DIR tqdm pyyaml ...``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from assemblenet.argtypes import positive_int  # argparse only: nothing that --wheels might install

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
TARGETS = {"loop_over_step": 0.9, "mfu": 0.40}


class Budget:
    """Seconds left of the run's wall-clock budget."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.deadline = time.perf_counter() + seconds

    def left(self) -> float:
        return self.deadline - time.perf_counter()


def install_wheels(folder: Path) -> None:
    wheels = sorted(str(p) for p in folder.glob("*.whl"))
    if wheels:
        subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-q", *wheels], check=True)


def run_command(command: list[str], *, budget: Budget, env: dict[str, str] | None = None,
                cwd: Path | None = None) -> dict[str, Any]:
    """Run a subprocess within the budget left; the row says how it ended and keeps the output's tail."""
    start = time.perf_counter()
    timeout = max(1.0, budget.left())
    try:
        done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout)
        rc, out = done.returncode, done.stdout + done.stderr
    except subprocess.TimeoutExpired as expired:
        rc, out = None, f"timed out after {timeout:.0f} s (budget): " + str(expired.stdout or "")[-2000:]
    return {"command": " ".join(command), "returncode": rc, "seconds": time.perf_counter() - start,
            "output_tail": out[-1500:]}


# -- stage 1 ------------------------------------------------------------------------------------------------
def gpu_tests(args: argparse.Namespace, budget: Budget) -> dict[str, Any]:
    env = {**os.environ, "ASSEMBLENET_TEST_DEVICE": args.device, "PYTHONPATH": _pythonpath()}
    row = run_command([sys.executable, "-m", "pytest", "-q", "-m", "cuda", "-p", "no:cacheprovider",
                       "tests/engine/test_cuda.py"], budget=budget, env=env, cwd=REPO)
    summary = [line for line in row["output_tail"].splitlines() if " passed" in line or " failed" in line
               or " skipped" in line]
    row["summary"] = summary[-1] if summary else ""
    row["ok"] = row["returncode"] == 0 and " passed" in row["summary"] and " failed" not in row["summary"]
    return row


# -- stage 2 ------------------------------------------------------------------------------------------------
def write_frame_videos(root: Path, *, classes: int, videos: int, frames: int, size: int, seed: int) -> None:
    """``root/<class>/<video>/img_00001.jpg ...``: a coloured square moving in a class-specific direction."""
    import cv2
    import numpy as np

    rng = np.random.default_rng(seed)
    directions = [(1, 0), (0, 1), (-1, 0), (0, -1), (1, 1), (-1, 1)]
    for c in range(classes):
        dx, dy = directions[c % len(directions)]
        colour = rng.integers(60, 255, 3)
        for v in range(videos):
            folder = root / f"class_{c}" / f"video_{v:03d}"
            folder.mkdir(parents=True, exist_ok=True)
            x0, y0 = rng.integers(size // 4, 3 * size // 4, 2)
            for t in range(frames):
                image = rng.integers(0, 40, (size, size, 3), dtype=np.uint8)
                x, y = (x0 + dx * t * 2) % size, (y0 + dy * t * 2) % size
                image[max(0, y - 4):y + 4, max(0, x - 4):x + 4] = colour
                cv2.imwrite(str(folder / f"img_{t + 1:05d}.jpg"), image)


def torchrun_stage(args: argparse.Namespace, budget: Budget, work: Path) -> dict[str, Any]:
    tiny = args.tiny
    size, frames = (32, 8) if tiny else (64, 16)
    for split, videos in (("train", 4 if tiny else 16), ("val", 2 if tiny else 4)):
        write_frame_videos(work / "data" / split, classes=3, videos=videos, frames=frames, size=size,
                           seed=0 if split == "train" else 1)
    steps = 6 if tiny else 100
    config = {
        "name": "gpu_check", "seed": 0,
        "model": {"name": "assemblenet50_searchable", "depth": 26, "width_multiplier": 0.125 if tiny else 0.25,
                  "flow_iterations": 2 if tiny else 10},
        "data": {"dataset": "folder", "train": {"root": str(work / "data" / "train")},
                 "val": {"root": str(work / "data" / "val")}, "num_frames": frames // 2, "stride": 1,
                 "crop_size": size, "batch_size": 4, "num_workers": 0 if tiny else 4},
        "optim": {"lr": 0.05, "reference_batch_size": 4, "max_steps": steps, "warmup_steps": 5},
        "train": {"device": args.device, "amp": "bf16", "log_every_steps": 5 if tiny else 20,
                  "eval_every_epochs": 0, "progress": False},
        "eval": {"num_clips": 2, "num_crops": 1, "batch_size": 8},
        "output": {"dir": str(work / "run"), "tensorboard": False},
    }
    config_path = work / "gpu_check.json"
    config_path.write_text(json.dumps(config))
    env = {**os.environ, "PYTHONPATH": _pythonpath(), "OMP_NUM_THREADS": "1"}
    cli = [sys.executable, "-m", "assemblenet.cli.main"]
    rows = {"train": run_command([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
                                  "1", "-m", "assemblenet.cli.main", "train", str(config_path), "--no-progress"],
                                 budget=budget, env=env)}
    result: dict[str, Any] = {"steps": steps, "clip": [frames // 2, size, size], "commands": rows}
    final = work / "run" / "final_metrics.json"
    if rows["train"]["returncode"] == 0 and final.is_file():
        result["final_metrics"] = json.loads(final.read_text())["metrics"]
        if budget.left() > 0:
            rows["evaluate"] = run_command(cli + ["evaluate", str(config_path), "--checkpoint", str(work / "run"),
                                                  "--out", str(work / "eval"), "--no-progress"],
                                           budget=budget, env=env)
        if budget.left() > 0:
            video = next((work / "data" / "val" / "class_0").iterdir())
            rows["predict"] = run_command(cli + ["predict", str(video), "--checkpoint",
                                                 str(work / "run" / "model.safetensors"), "--device", args.device,
                                                 "--json"], budget=budget, env=env)
    result["ok"] = all(rows.get(k, {}).get("returncode") == 0 for k in ("train", "evaluate", "predict"))
    return result


# -- stages 3 and 4 ------------------------------------------------------------------------------------------
def loop_throughput(args: argparse.Namespace, device, *, compiled: bool, flops_per_clip: float,
                    peak_tflops: float, budget: Budget) -> dict[str, Any]:
    """The whole training loop (``Trainer.fit``) over in-memory uint8 clips: clips/s over the log windows after
    the first (warm-up, cuDNN autotuning, compilation), each closed by the loop's own read of the loss."""
    import torch

    from gpu_speed import benchmark_trainer

    log_every = 2 if args.tiny else 10
    windows = 3 if args.tiny else 4
    torch.manual_seed(0)
    trainer = benchmark_trainer(args, device, compiled=compiled, clips=args.batch * 4, log_every=log_every,
                                max_steps=log_every * (windows + 1))
    stamps: list[float] = []
    read = trainer._read_loss_window

    def timed_read(steps: int) -> float:
        value = read(steps)
        stamps.append(time.perf_counter())
        if budget.left() <= 0:  # checked inside the stage: stop the loop at this log point
            trainer.total_steps = trainer.step
        return value

    trainer._read_loss_window = timed_read
    start = time.perf_counter()
    trainer.fit()
    gaps = [b - a for a, b in zip(stamps, stamps[1:])]
    if not gaps:
        return {"stage": "training loop", "error": "the budget ran out before a timed window"}
    clips_per_s = log_every * args.batch / sorted(gaps)[len(gaps) // 2]
    row = {"stage": "training loop (Trainer.fit, in-memory uint8 clips)" + (" + torch.compile" if compiled else ""),
           "clips_per_s": clips_per_s, "windows": len(gaps), "steps_per_window": log_every,
           "first_window_s": stamps[0] - start if stamps else None,
           "achieved_tflops": 3 * flops_per_clip * clips_per_s / 1e12}
    row["mfu"] = row["achieved_tflops"] / peak_tflops
    return row


def _pythonpath() -> str:
    return os.pathsep.join([str(REPO), str(REPO / "src"), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)


def _round(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, dict):
        return {k: _round(v) for k, v in value.items()}
    return value


def markdown(payload: dict[str, Any]) -> str:
    lines = [f"# GPU check: {payload['device_name']}", "",
             f"`{payload['command']}`; torch {payload['torch']}; {payload['wall_s']:.0f} s of a "
             f"{payload['budget_s']:.0f} s budget.", "", "| check | result | target | met |", "|---|---|---|---|"]
    for name, check in payload["checks"].items():
        met = {True: "yes", False: "**no**", None: "not run"}[check["met"]]
        lines.append(f"| {name} | {check['value']} | {check['target']} | {met} |")
    lines += ["", "| throughput stage | clips/s | MFU |", "|---|---|---|"]
    for row in payload["throughput"]:
        if "clips_per_s" in row:
            lines.append(f"| {row['stage']} | {row['clips_per_s']:.2f} | {row['mfu']:.1%} |")
        else:
            lines.append(f"| {row['stage']} | {row.get('error', 'skipped')} | |")
    if payload["skipped"]:
        lines += ["", "Skipped (budget): " + ", ".join(payload["skipped"])]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda", help="cuda or cpu (cpu: a smoke run of every stage)")
    parser.add_argument("--tiny", action="store_true", help="tiny model, clips and step counts")
    parser.add_argument("--model", default="assemblenet50")
    parser.add_argument("--num-classes", type=positive_int, default=157)
    parser.add_argument("--batch", type=positive_int, default=8)
    parser.add_argument("--frames", type=positive_int, default=32)
    parser.add_argument("--size", type=positive_int, default=224)
    parser.add_argument("--steps", type=positive_int, default=10, help="timed steps of the trainer-step stage")
    parser.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                        help="also the torch.compile throughput stages (default: on for CUDA, off for CPU)")
    parser.add_argument("--budget-s", type=float, default=480.0, help="wall-clock budget for the whole check")
    parser.add_argument("--json", type=Path, default=RESULTS / "gpu_check.json", help="results JSON")
    parser.add_argument("--markdown", type=Path, default=None, help="results table (default: the JSON's .md)")
    parser.add_argument("--wheels", type=Path, default=None, help="install the wheels in this folder first")
    parser.add_argument("--keep", type=Path, default=None, help="keep the generated data and runs here")
    args = parser.parse_args(argv)
    budget = Budget(args.budget_s)
    if args.wheels:
        install_wheels(args.wheels)
    sys.path.insert(0, str(Path(__file__).resolve().parent))

    import torch

    from assemblenet import runtime
    from assemblenet.fileio import atomic_write_json, atomic_write_text
    from assemblenet.models import create_model
    from assemblenet.models.summary import summarize_model
    from gpu_speed import matmul_peak, train_stage

    if args.tiny:
        args.batch, args.frames, args.size, args.steps = 2, 4, 32, 2
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("gpu_check: CUDA is not available here; --device cpu --tiny runs the stages on the CPU", file=sys.stderr)
        return 2
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        device_name = torch.cuda.get_device_name(device)
    else:
        runtime.keep_freed_memory()
        device_name = runtime.machine_info()["signature"]
    compile_stages = args.compile if args.compile is not None else device.type == "cuda"
    print(f"gpu_check on {device_name}, torch {torch.__version__}, budget {args.budget_s:.0f} s", flush=True)

    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="gpu_check_"))
    work.mkdir(parents=True, exist_ok=True)
    table = args.markdown or args.json.with_suffix(".md")
    results: dict[str, Any] = {"gpu_tests": None, "torchrun": None, "bf16_matmul_peak": None, "throughput": [],
                               "skipped": [], "gflop_per_clip_forward": None}

    def write() -> dict[str, Any]:
        """The results so far, written after every stage: a run cut short (a device time limit) keeps them."""
        payload = {"command": "python benchmarks/gpu_check.py " + " ".join(sys.argv[1:] if argv is None else argv),
                   "device": args.device, "device_name": device_name, "torch": torch.__version__,
                   "machine": runtime.machine_info(), "tiny": args.tiny,
                   "model": args.model if not args.tiny else "tiny",
                   "clip": [args.batch, 3, args.frames, args.size, args.size], **results,
                   "checks": checks(results), "targets": TARGETS, "budget_s": args.budget_s,
                   "wall_s": args.budget_s - budget.left()}
        atomic_write_json(args.json, _round(payload))
        atomic_write_text(table, markdown(payload))
        return payload

    def stage(name: str, run: Callable[[], Any]) -> Any:
        if budget.left() <= 0:
            results["skipped"].append(name)
            print(f"  {name}: skipped (budget spent)", flush=True)
            return None
        started = time.perf_counter()
        try:
            result = run()
        except Exception as error:  # noqa: BLE001 - a failed stage is a result; the check goes on
            result = {"stage": name, "error": f"{type(error).__name__}: {error}"}
        print(f"  {name} ({time.perf_counter() - started:.0f} s): "
              f"{json.dumps(_round(result) if isinstance(result, dict) else result)[:600]}", flush=True)
        return result

    results["gpu_tests"] = stage("gpu tests", lambda: gpu_tests(args, budget))
    write()
    results["torchrun"] = stage("torchrun train, evaluate, predict", lambda: torchrun_stage(args, budget, work))
    write()
    peak = results["bf16_matmul_peak"] = stage("bf16 matmul peak", lambda: matmul_peak(device, tiny=args.tiny))
    model = create_model(args.model, num_classes=args.num_classes) if not args.tiny else create_model(
        "assemblenet50_searchable", num_classes=args.num_classes, depth=26, width_multiplier=0.125, flow_iterations=2)
    flops = summarize_model(model, frames=args.frames, size=args.size).total_flops
    results["gflop_per_clip_forward"] = flops / 1e9
    del model
    peak_tflops = peak["peak_tflops"] if isinstance(peak, dict) and "peak_tflops" in peak else float("nan")
    for compiled in ([False, True] if compile_stages else [False]):
        suffix = " compiled" if compiled else ""
        for name, run in ((f"trainer step{suffix}", lambda: train_stage(args, device, compiled=compiled,
                                                                         flops_per_clip=flops,
                                                                         peak_tflops=peak_tflops)),
                          (f"training loop{suffix}", lambda: loop_throughput(args, device, compiled=compiled,
                                                                             flops_per_clip=flops,
                                                                             peak_tflops=peak_tflops,
                                                                             budget=budget))):
            row = stage(name, run)
            results["throughput"].append(row if row is not None else {"stage": name, "error": "skipped (budget)"})
            write()
            if device.type == "cuda":
                torch.cuda.empty_cache()
    payload = write()
    print(markdown(payload))
    print(f"results written to {args.json} and {table}")
    return 0


def checks(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each target against what has run so far (``met`` None: not run yet)."""
    throughput, tests, torchrun = results["throughput"], results["gpu_tests"], results["torchrun"]

    def ratio(compiled: bool) -> float | None:
        rows = [r for r in throughput if "clips_per_s" in r and ("compile" in r["stage"]) == compiled]
        step = next((r["clips_per_s"] for r in rows if r["stage"].startswith("trainer step")), None)
        loop = next((r["clips_per_s"] for r in rows if r["stage"].startswith("training loop")), None)
        return loop / step if step and loop else None

    ratios = {mode: ratio(mode == "compiled") for mode in ("eager", "compiled")}
    best_mfu = max((r["mfu"] for r in throughput if "mfu" in r and r["stage"].startswith("training loop")),
                   default=None)
    best_ratio = max((v for v in ratios.values() if v is not None), default=None)
    return {
        "GPU tests pass": {"value": (tests or {}).get("summary", "not run"), "target": "all pass",
                           "met": None if tests is None else bool(tests.get("ok"))},
        "torchrun train + evaluate + predict": {
            "value": "ran" if torchrun and torchrun.get("ok") else "failed" if torchrun else "not run",
            "target": "exit 0", "met": None if torchrun is None else bool(torchrun.get("ok"))},
        "loop / step clips/s": {"value": {k: None if v is None else round(v, 3) for k, v in ratios.items()},
                                "target": f">= {TARGETS['loop_over_step']}",
                                "met": None if best_ratio is None else best_ratio >= TARGETS["loop_over_step"]},
        "MFU of the training loop (best)": {"value": None if best_mfu is None else f"{best_mfu:.1%}",
                                            "target": f">= {TARGETS['mfu']:.0%}",
                                            "met": None if best_mfu is None else best_mfu >= TARGETS["mfu"]},
    }

if __name__ == "__main__":
    raise SystemExit(main())
