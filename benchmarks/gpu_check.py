"""One command that proves the GPU path: the GPU tests, a torchrun training with evaluate and predict, and the
training loop's speed against the trainer's step, with the MFU. It needs no install and no network:

    PYTHONPATH=src python3 benchmarks/gpu_check.py                                   # the plan below, <= 360 s
    PYTHONPATH=src python3 benchmarks/gpu_check.py --stages compiled --budget-s 240  # a rerun on the warm machine
    PYTHONPATH=src python3 benchmarks/gpu_check.py --device cpu --tiny               # every stage on the CPU

Results: ``gpu_check.json`` and ``gpu_check.md`` in ``$OUT`` when ``OUT`` is set (what a lent device machine
sends back), else in ``benchmarks/results/`` (``--json`` chooses); the first line printed says where. Both are
rewritten after every stage, and while a throughput stage runs after each row it measures, so a run cut short
keeps what it measured. The last lines printed are a compact summary (a device returns only its output's tail).

The plan. Every stage runs as a child process group, killed with everything it started (torchrun's workers, the
compiler's) at its limit: the smaller of its own limit (``--limit STAGE=SECONDS``) and the budget left. Inside,
the stages check their own deadline as well (between commands, timings and log points), so a stage that runs
out of time still reports what it finished.

1. ``tests`` (75 s): ``pytest -m cuda`` (tests/engine/test_cuda.py): fp32 forward and backward against a
   float64 reference with TF32 off, the flow layer likewise, 30 bf16 training steps whose loss falls,
   checkpoints moved between the device and the CPU.
2. ``torchrun`` (100 s): ``torchrun --nproc_per_node 1`` of ``assemblenet train`` on generated frame-folder
   videos (no video decoder needed), then ``assemblenet evaluate`` and ``predict`` on the trained weights.
3. ``eager`` (90 s): the bf16 matmul peak; the trainer's step alone on a batch already on the device
   (AssembleNet-50, 8 x 32x224x224, bf16), timed in windows of 10 steps each closed by a device sync; the whole
   training loop (``Trainer.fit`` over in-memory uint8 clips: loader, pinned copy, step, the log point's loss
   read every 10 steps), its steady-state windows after the first, with the host syncs per window counted on
   CUDA.
4. ``compiled`` (what is left): the same two under ``torch.compile``; last, so that a cut-off run still has the
   eager figures, and skipped when less than ``--compile-min-s`` (90 s) is left.

Targets (issue 17): every GPU test passes; loop clips/s >= 0.9 x step clips/s; MFU (3 x forward FLOPs per clip
x clips/s over the bf16 matmul peak measured in this run) >= 40% in bf16 with or without compile. With
``--device cpu --tiny`` every stage runs on the CPU on a tiny model (no compile unless ``--compile``), without
per-stage limits. A GPU out of memory at ``--batch`` halves the batch once and says so in the row.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any, Callable

from _common import model_benchmark_parser  # argparse only: nothing that --wheels might install
from assemblenet.argtypes import positive_int

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
TARGETS = {"loop_over_step": 0.9, "mfu": 0.40}
STAGES = ("tests", "torchrun", "eager", "compiled")
# Seconds per stage in the default plan (None: what is left of the budget). They add up to 265 s of the 360 s
# budget, leaving the compiled stage at least 95 s; a stage that needs less leaves the rest to the next.
STAGE_LIMITS_S: dict[str, float | None] = {"tests": 75.0, "torchrun": 100.0, "eager": 90.0, "compiled": None}
DEFAULT_BUDGET_S = 360.0
COMPILE_MIN_S = 90.0  # an estimate: below this, compiling AssembleNet-50 is not started (a tiny model took 100 s
# on a CPU); the compiled rows' first_step_s measures it on the device
CHILD_MARGIN_S = 5.0  # a child's own deadline comes this much before its kill, to report what it finished


class Budget:
    """Seconds left of a wall-clock budget."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.deadline = time.perf_counter() + seconds

    def left(self) -> float:
        return self.deadline - time.perf_counter()


def default_json() -> Path:
    """``$OUT/gpu_check.json`` when ``OUT`` is set (the one folder a device machine sends back)."""
    out = os.environ.get("OUT")
    return Path(out) / "gpu_check.json" if out else RESULTS / "gpu_check.json"


def install_wheels(folder: Path) -> None:
    wheels = sorted(str(p) for p in folder.glob("*.whl"))
    if wheels:
        subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-q", *wheels], check=True)


# -- child processes, killed as a group at their limit ----------------------------------------------------------
_RUNNING: set[subprocess.Popen] = set()


def _kill_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _kill_children(*_: Any) -> None:
    for process in list(_RUNNING):
        _kill_group(process)


def run_command(command: list[str], *, limit_s: float, log: Path, env: dict[str, str] | None = None,
                cwd: Path | None = None, poll: Callable[[], None] | None = None) -> dict[str, Any]:
    """Run ``command`` in a process group of its own (in this session, so that whatever ends this process's
    session ends it too), with its output in ``log``; at ``limit_s`` the whole group is killed (torchrun's
    workers, compile workers). ``poll`` is called about every second while it runs. The row says how it ended
    (``abandoned``: killed at its limit) and keeps the output's tail."""
    start = time.perf_counter()
    group = {"process_group": 0} if sys.version_info >= (3, 11) else {"preexec_fn": os.setpgrp}
    with open(log, "w") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd, **group)
    _RUNNING.add(process)
    abandoned = False
    try:
        while True:
            left = limit_s - (time.perf_counter() - start)
            try:
                process.wait(timeout=max(0.05, min(1.0, left)))
                break
            except subprocess.TimeoutExpired:
                if poll is not None:
                    poll()
                if time.perf_counter() - start >= limit_s:
                    abandoned = True
                    _kill_group(process)
                    process.wait()
                    break
    finally:
        _RUNNING.discard(process)
        _kill_group(process)  # anything it left running (a worker outliving its parent)
    seconds = time.perf_counter() - start
    tail = log.read_text(errors="replace")[-1500:]
    if abandoned:
        tail = f"abandoned: killed at its limit of {limit_s:.0f} s\n" + tail
    return {"command": " ".join(command), "returncode": None if abandoned else process.returncode,
            "seconds": seconds, "abandoned": abandoned, "output_tail": tail}


def _pythonpath() -> str:
    return os.pathsep.join([str(REPO), str(REPO / "src"), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)


# -- stage: tests ------------------------------------------------------------------------------------------------
def gpu_tests(args: argparse.Namespace, limit_s: float, work: Path) -> dict[str, Any]:
    env = {**os.environ, "ASSEMBLENET_TEST_DEVICE": args.device, "PYTHONPATH": _pythonpath()}
    row = run_command([sys.executable, "-m", "pytest", "-q", "-m", "cuda", "-p", "no:cacheprovider",
                       "tests/engine/test_cuda.py"], limit_s=limit_s, log=work / "tests.log", env=env, cwd=REPO)
    summary = [line for line in row["output_tail"].splitlines() if " passed" in line or " failed" in line
               or " skipped" in line or " error" in line]
    row["summary"] = summary[-1].strip("= ") if summary else ("abandoned" if row["abandoned"] else "")
    row["ok"] = row["returncode"] == 0 and " passed" in row["summary"] and " failed" not in row["summary"]
    return row


# -- stage: torchrun ---------------------------------------------------------------------------------------------
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


def torchrun_stage(args: argparse.Namespace, limit_s: float, work: Path) -> dict[str, Any]:
    budget = Budget(limit_s)
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
                                 limit_s=budget.left(), log=work / "train.log", env=env)}
    result: dict[str, Any] = {"steps": steps, "clip": [frames // 2, size, size], "commands": rows}
    final = work / "run" / "final_metrics.json"
    if rows["train"]["returncode"] == 0 and final.is_file():
        result["final_metrics"] = json.loads(final.read_text())["metrics"]
        if budget.left() > 0:
            rows["evaluate"] = run_command(cli + ["evaluate", str(config_path), "--checkpoint", str(work / "run"),
                                                  "--out", str(work / "eval"), "--no-progress"],
                                           limit_s=budget.left(), log=work / "evaluate.log", env=env)
        if budget.left() > 0:
            video = next((work / "data" / "val" / "class_0").iterdir())
            rows["predict"] = run_command(cli + ["predict", str(video), "--checkpoint",
                                                 str(work / "run" / "model.safetensors"), "--device", args.device,
                                                 "--json"], limit_s=budget.left(), log=work / "predict.log", env=env)
    result["ok"] = all(rows.get(k, {}).get("returncode") == 0 for k in ("train", "evaluate", "predict"))
    return result


# -- stages: eager, compiled (each a child process: `--child MODE`) --------------------------------------------
def step_label(compiled: bool) -> str:
    return "trainer step bf16 autocast" + (" + torch.compile" if compiled else "")


def loop_label(compiled: bool) -> str:
    return "training loop (Trainer.fit, in-memory uint8 clips)" + (" + torch.compile" if compiled else "")


def loop_throughput(args: argparse.Namespace, device, *, compiled: bool, flops_per_clip: float,
                    peak_tflops: float, budget: Budget) -> dict[str, Any]:
    """The whole training loop (``Trainer.fit``) over in-memory uint8 clips, 4 batches an epoch: clips/s over
    the log windows after the first (warm-up, cuDNN autotuning, compilation), each closed by the loop's own
    read of the loss, the only host sync it makes. On CUDA the syncs are counted (``torch.cuda`` sync debug
    mode) between the first and the last log point: one per window is the loss read itself."""
    import torch

    from gpu_speed import benchmark_trainer

    log_every = 2 if args.tiny else 10
    windows = 3 if args.tiny else 4
    torch.manual_seed(0)
    trainer = benchmark_trainer(args, device, compiled=compiled, clips=args.batch * 4, log_every=log_every,
                                max_steps=log_every * (windows + 1))
    stamps: list[float] = []
    syncs: list[int] = []
    read = trainer._read_loss_window
    count_syncs = device.type == "cuda"

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")

        def timed_read(steps: int) -> float:
            value = read(steps)
            stamps.append(time.perf_counter())
            syncs.append(sum("synchroniz" in str(w.message) for w in caught))
            if budget.left() <= 0:  # checked inside the stage: stop the loop at this log point
                trainer.total_steps = trainer.step
            return value

        trainer._read_loss_window = timed_read
        start = time.perf_counter()
        if count_syncs:
            torch.cuda.set_sync_debug_mode("warn")
        try:
            trainer.fit()
        finally:
            if count_syncs:
                torch.cuda.set_sync_debug_mode(0)
    gaps = [b - a for a, b in zip(stamps, stamps[1:])]
    if not gaps:
        return {"stage": loop_label(compiled), "error": "the stage's time ran out before a timed window"}
    clips_per_s = log_every * args.batch / statistics.median(gaps)
    row = {"stage": loop_label(compiled), "clips_per_s": clips_per_s, "windows": len(gaps),
           "steps_per_window": log_every, "batch": args.batch, "steps_per_epoch": trainer.steps_per_epoch,
           "first_window_s": stamps[0] - start,
           "host_syncs_per_window": (syncs[-1] - syncs[0]) / len(gaps) if count_syncs else None,
           "achieved_tflops": 3 * flops_per_clip * clips_per_s / 1e12}
    row["mfu"] = row["achieved_tflops"] / peak_tflops
    return row


def _halving_the_batch_on_oom(run: Callable[[], dict[str, Any]], args: argparse.Namespace) -> dict[str, Any]:
    """``run()``; if the GPU runs out of memory, once more at half the batch (the rest of the child uses it)."""
    import torch

    try:
        return run()
    except torch.cuda.OutOfMemoryError:
        if args.batch == 1:
            raise
        failed = args.batch
    gc.collect()  # the failed attempt's trainer is only garbage once the exception is gone
    torch.cuda.empty_cache()
    args.batch //= 2
    row = run()
    row["note"] = f"batch {failed} ran out of GPU memory; measured at batch {args.batch}"
    return row


def child_main(args: argparse.Namespace) -> int:
    """One throughput stage (``eager`` or ``compiled``), each row appended to ``--rows`` as soon as measured."""
    import torch

    from assemblenet import runtime
    from gpu_speed import matmul_peak, train_stage

    budget = Budget(args.budget_s)
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        if device.index is not None:
            torch.cuda.set_device(device)
    else:
        runtime.keep_freed_memory()
    compiled = args.child == "compiled"

    def emit(row: dict[str, Any]) -> None:
        with open(args.rows, "a") as rows:
            rows.write(json.dumps(_round(row)) + "\n")
        print(json.dumps(_round(row))[:400], flush=True)

    peak = args.peak_tflops
    if peak is None:
        measured = matmul_peak(device, tiny=args.tiny)
        emit({"kind": "bf16_matmul_peak", **measured})
        peak = measured["peak_tflops"]
    window = 2 if args.tiny else 10
    plan = ((step_label(compiled), lambda: train_stage(args, device, compiled=compiled,
                                                       flops_per_clip=args.flops_per_clip, peak_tflops=peak,
                                                       window=window, budget=budget)),
            (loop_label(compiled), lambda: loop_throughput(args, device, compiled=compiled,
                                                           flops_per_clip=args.flops_per_clip, peak_tflops=peak,
                                                           budget=budget)))
    for label, run in plan:
        if budget.left() <= 0:
            emit({"stage": label, "error": "skipped: the stage's time ran out"})
            continue
        try:
            row = _halving_the_batch_on_oom(run, args)
        except Exception as error:  # noqa: BLE001 - a failed measurement (e.g. a compile error) is a result
            row = {"stage": label, "error": f"{type(error).__name__}: {error}"[:1000]}
        emit(row)
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return 0


def throughput_stage(args: argparse.Namespace, mode: str, limit_s: float, work: Path, results: dict[str, Any],
                     write: Callable[[], Any]) -> dict[str, Any]:
    """Run the ``mode`` child; its rows join ``results`` (and the files) while it runs."""
    rows_path = work / f"{mode}_rows.jsonl"
    rows_path.unlink(missing_ok=True)
    command = [sys.executable, str(Path(__file__).resolve()), "--child", mode, "--rows", str(rows_path),
               "--budget-s", f"{max(1.0, limit_s - CHILD_MARGIN_S):.1f}", "--device", args.device,
               "--model", args.model, "--num-classes", str(args.num_classes), "--batch", str(args.batch),
               "--frames", str(args.frames), "--size", str(args.size), "--steps", str(args.steps),
               "--flops-per-clip", repr(args.flops_per_clip)] + (["--tiny"] if args.tiny else [])
    peak = results.get("bf16_matmul_peak") or {}
    if "peak_tflops" in peak:
        command += ["--peak-tflops", repr(peak["peak_tflops"])]
    taken = 0
    errors = 0

    def pick_up() -> None:
        nonlocal taken, errors
        if not rows_path.is_file():
            return
        lines = [line for line in rows_path.read_text().splitlines(keepends=True) if line.endswith("\n")]
        for line in lines[taken:]:
            row = json.loads(line)
            if row.pop("kind", None) == "bf16_matmul_peak":
                results["bf16_matmul_peak"] = row
            else:
                results["throughput"].append(row)
                errors += "error" in row
        if len(lines) > taken:
            taken = len(lines)
            write()

    env = {**os.environ, "PYTHONPATH": _pythonpath()}
    row = run_command(command, limit_s=limit_s, log=work / f"{mode}.log", env=env, cwd=REPO, poll=pick_up)
    pick_up()
    row["rows"], row["row_errors"] = taken, errors
    return row


# -- the report ----------------------------------------------------------------------------------------------
def _round(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, dict):
        return {k: _round(v) for k, v in value.items()}
    return value


def checks(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each target against what has run so far (``met`` None: not run yet)."""
    throughput, tests, torchrun = results["throughput"], results["gpu_tests"], results["torchrun"]
    ratios = loop_over_step(throughput)
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


def loop_over_step(throughput: list[dict[str, Any]]) -> dict[str, float | None]:
    """The loop's clips/s over the step's, eager and compiled, where both were measured at the same batch."""
    ratios: dict[str, float | None] = {}
    for mode in ("eager", "compiled"):
        rows = [r for r in throughput if "clips_per_s" in r and ("compile" in r["stage"]) == (mode == "compiled")]
        step = next((r for r in rows if r["stage"].startswith("trainer step")), None)
        loop = next((r for r in rows if r["stage"].startswith("training loop")), None)
        same_batch = step is not None and loop is not None and step.get("batch") == loop.get("batch")
        ratios[mode] = loop["clips_per_s"] / step["clips_per_s"] if same_batch else None
    return ratios


def markdown(payload: dict[str, Any]) -> str:
    lines = [f"# GPU check: {payload['device_name']}", "",
             f"`{payload['command']}`; torch {payload['torch']}; {payload['wall_s']:.0f} s of a "
             f"{payload['budget_s']:.0f} s budget.", "", "| check | result | target | met |", "|---|---|---|---|"]
    for name, check in payload["checks"].items():
        met = {True: "yes", False: "**no**", None: "not run"}[check["met"]]
        lines.append(f"| {name} | {check['value']} | {check['target']} | {met} |")
    lines += ["", "| throughput stage | batch | clips/s | MFU | host syncs per log window |", "|---|---|---|---|---|"]
    for row in payload["throughput"]:
        if "clips_per_s" in row:
            syncs = row.get("host_syncs_per_window")
            lines.append(f"| {row['stage']} | {row.get('batch', '')} | {row['clips_per_s']:.2f} | {row['mfu']:.1%} | "
                         f"{'-' if syncs is None else f'{syncs:g}'} |")
        else:
            lines.append(f"| {row['stage']} | | {row.get('error', 'skipped')} | | |")
    lines += ["", "| stage | outcome | seconds | limit |", "|---|---|---|---|"]
    for stage in payload["stages"]:
        seconds = "" if stage.get("seconds") is None else f"{stage['seconds']:.0f}"
        limit = "" if stage.get("limit_s") is None else f"{stage['limit_s']:.0f}"
        lines.append(f"| {stage['stage']} | {stage['outcome']} | {seconds} | {limit} |")
    return "\n".join(lines) + "\n"


def summary(payload: dict[str, Any], json_path: Path, table: Path) -> str:
    """A few lines, printed last: what a device's output tail must carry if the files do not come back."""
    lines = [f"== gpu_check summary: {payload['device_name']}, torch {payload['torch']}, "
             f"{payload['wall_s']:.0f} s of {payload['budget_s']:.0f} s =="]
    for name, check in payload["checks"].items():
        met = {True: "met", False: "NOT MET", None: "not run"}[check["met"]]
        value = check["value"]
        if isinstance(value, dict):
            value = ", ".join(f"{k} {'-' if v is None else v}" for k, v in value.items())
        lines.append(f"{name}: {value} (target {check['target']}): {met}")
    for row in payload["throughput"]:
        if "clips_per_s" in row:
            syncs = row.get("host_syncs_per_window")
            lines.append(f"{row['stage'].split(' (')[0]}: {row['clips_per_s']:.2f} clips/s at batch "
                         f"{row.get('batch')}, MFU {row['mfu']:.1%}"
                         + ("" if syncs is None else f", {syncs:g} host syncs per window"))
        else:
            lines.append(f"{row['stage'].split(' (')[0]}: {row.get('error', 'skipped')[:200]}")
    lines.append("stages: " + "; ".join(
        f"{s['stage']} {s['outcome']}" + ("" if s.get("seconds") is None else f" {s['seconds']:.0f} s")
        for s in payload["stages"]))
    lines.append(f"results: {json_path} and {table}")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = model_benchmark_parser(__doc__, device_help="cuda, cuda:N or cpu (cpu: a smoke run of every stage)")
    parser.add_argument("--tiny", action="store_true", help="tiny model, clips and step counts")
    parser.add_argument("--steps", type=positive_int, default=3, help="timed windows of the trainer-step stage")
    parser.add_argument("--stages", default=None,
                        help=f"comma-separated, from {','.join(STAGES)} (default: all; on the CPU without compiled)")
    parser.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                        help="include the compiled stage (default: on for CUDA, off for CPU)")
    parser.add_argument("--budget-s", type=float, default=DEFAULT_BUDGET_S, help="wall-clock budget of the check")
    parser.add_argument("--limit", action="append", default=[], metavar="STAGE=SECONDS",
                        help="a stage's own limit instead of the plan's (repeatable)")
    parser.add_argument("--compile-min-s", type=float, default=COMPILE_MIN_S,
                        help="skip the compiled stage when less than this is left of the budget")
    parser.add_argument("--json", type=Path, default=None,
                        help="results JSON (default: $OUT/gpu_check.json, else benchmarks/results/gpu_check.json)")
    parser.add_argument("--markdown", type=Path, default=None, help="results table (default: the JSON's .md)")
    parser.add_argument("--wheels", type=Path, default=None, help="install the wheels in this folder first")
    parser.add_argument("--keep", type=Path, default=None, help="keep the generated data, runs and logs here")
    # A throughput stage's child process (internal).
    parser.add_argument("--child", choices=("eager", "compiled"), help=argparse.SUPPRESS)
    parser.add_argument("--rows", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--flops-per-clip", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--peak-tflops", type=float, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.tiny:
        args.batch, args.frames, args.size, args.steps = 2, 4, 32, 2
    limits = dict(STAGE_LIMITS_S)
    for item in args.limit:
        name, _, seconds = item.partition("=")
        if name not in STAGES or not seconds:
            parser.error(f"--limit {item!r}: expected STAGE=SECONDS with STAGE one of {', '.join(STAGES)}")
        limits[name] = float(seconds)
    args.limits = limits
    args.explicit_limits = {item.partition("=")[0] for item in args.limit}  # --tiny keeps only these
    if args.stages is not None:
        args.stages = [s.strip() for s in args.stages.split(",") if s.strip()]
        unknown = [s for s in args.stages if s not in STAGES]
        if unknown:
            parser.error(f"--stages: unknown {', '.join(unknown)} (expected some of {', '.join(STAGES)})")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parent))  # gpu_speed, beside this file
    if args.child:
        return child_main(args)
    budget = Budget(args.budget_s)
    if args.wheels:
        install_wheels(args.wheels)

    import torch

    import assemblenet
    from assemblenet import runtime
    from assemblenet.fileio import atomic_write_json, atomic_write_text
    from assemblenet.models import create_model
    from assemblenet.models.summary import summarize_model

    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("gpu_check: CUDA is not available here; --device cpu --tiny runs the stages on the CPU", file=sys.stderr)
        return 2
    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else \
        runtime.machine_info()["signature"]
    compile_stage = args.compile if args.compile is not None else device.type == "cuda"
    selected = args.stages or [s for s in STAGES if s != "compiled" or compile_stage]
    json_path = args.json or default_json()
    table = args.markdown or json_path.with_suffix(".md")
    print(f"gpu_check on {device_name}, torch {torch.__version__}, budget {args.budget_s:.0f} s, stages "
          f"{','.join(selected)}; results to {json_path} and {table}", flush=True)

    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="gpu_check_"))
    work.mkdir(parents=True, exist_ok=True)
    model = create_model(args.model, num_classes=args.num_classes) if not args.tiny else create_model(
        "assemblenet50_searchable", num_classes=args.num_classes, depth=26, width_multiplier=0.125, flow_iterations=2)
    args.flops_per_clip = summarize_model(model, frames=args.frames, size=args.size).total_flops
    del model
    results: dict[str, Any] = {"gpu_tests": None, "torchrun": None, "bf16_matmul_peak": None, "throughput": [],
                               "stages": [], "skipped": [], "gflop_per_clip_forward": args.flops_per_clip / 1e9}
    command = f"{Path(sys.executable).name} benchmarks/gpu_check.py " + " ".join(
        sys.argv[1:] if argv is None else argv)

    def write() -> dict[str, Any]:
        """The results so far, written after every stage: a run cut short (a device time limit) keeps them."""
        payload = {"command": command.strip(), "device": args.device, "device_name": device_name,
                   "torch": torch.__version__, "python": sys.version.split()[0],
                   "package": str(Path(assemblenet.__file__).parent), "machine": runtime.machine_info(),
                   "tiny": args.tiny, "model": args.model if not args.tiny else "tiny",
                   "clip": [args.batch, 3, args.frames, args.size, args.size], **results,
                   "checks": checks(results), "targets": TARGETS, "budget_s": args.budget_s,
                   "wall_s": args.budget_s - budget.left()}
        atomic_write_json(json_path, _round(payload))
        atomic_write_text(table, markdown(payload))
        return payload

    runners: dict[str, Callable[[float], Any]] = {
        "tests": lambda limit: gpu_tests(args, limit, work),
        "torchrun": lambda limit: torchrun_stage(args, limit, work),
        "eager": lambda limit: throughput_stage(args, "eager", limit, work, results, write),
        "compiled": lambda limit: throughput_stage(args, "compiled", limit, work, results, write),
    }
    # A SIGTERM ends the check through the finally below, which kills the stage running (its whole group).
    previous_handler = signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        write()
        for name in selected:
            left = budget.left()
            own = args.limits[name] if name in args.explicit_limits or not args.tiny else None
            limit = left if own is None else min(own, left)
            record: dict[str, Any] = {"stage": name, "limit_s": limit, "seconds": None}
            if left <= 0:
                record["outcome"] = "skipped (budget spent)"
            elif name == "compiled" and left < args.compile_min_s:
                record["outcome"] = f"skipped ({left:.0f} s left, under --compile-min-s {args.compile_min_s:.0f})"
            else:
                started = time.perf_counter()
                try:
                    result = runners[name](limit)
                except Exception as error:  # noqa: BLE001 - a failed stage is a result; the check goes on
                    result = {"error": f"{type(error).__name__}: {error}"}
                record["seconds"] = time.perf_counter() - started
                abandoned = result.get("abandoned") or any(
                    row.get("abandoned") for row in result.get("commands", {}).values())
                failed = "error" in result or result.get("ok") is False or bool(result.get("row_errors")) or \
                    result.get("returncode") not in (0, None)
                record["outcome"] = "abandoned at its limit" if abandoned else "failed" if failed else "ran"
                if name == "tests":
                    results["gpu_tests"] = result
                elif name == "torchrun":
                    results["torchrun"] = result
                else:
                    record["child"] = result
            if record["outcome"].startswith("skipped"):
                results["skipped"].append(name)
            results["stages"].append(record)
            print(f"  {name}: {record['outcome']}"
                  + ("" if record["seconds"] is None else f" ({record['seconds']:.0f} s)"), flush=True)
            write()
            if device.type == "cuda":
                torch.cuda.empty_cache()
    finally:
        _kill_children()
        signal.signal(signal.SIGTERM, previous_handler)
    payload = write()
    print(markdown(payload))
    print(summary(payload, json_path, table), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
