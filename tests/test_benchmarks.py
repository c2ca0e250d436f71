"""The benchmark scripts run end to end on a tiny configuration (their figures come from real machines)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _load(name: str):
    # Run as scripts, the benchmarks find their shared _common.py in their own folder; loaded here, they need it
    # on the path.
    import sys

    if str(BENCHMARKS) not in sys.path:
        sys.path.insert(0, str(BENCHMARKS))
    spec = importlib.util.spec_from_file_location(f"benchmark_{name}", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# Imported first by every interpreter of the copy (it is on the documented PYTHONPATH): PyAV and Ray are absent
# on a lent GPU machine, and no installed assemblenet (an editable install's path or finder) may stand in for
# the copy's own.
_OFFLINE_SITECUSTOMIZE = """
import pathlib
import sys

_here = pathlib.Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if not p or pathlib.Path(p).resolve() == _here
               or not (pathlib.Path(p) / "assemblenet").is_dir()]
sys.meta_path[:] = [f for f in sys.meta_path if "__editable__" not in str(getattr(f, "__module__", ""))]
"""
_UNIMPORTABLE = 'raise ImportError("{name} is not installed on the device machine")\n'


def _documented_device_command() -> str:
    """The first command of benchmarks/README.md's device recipe, as written there."""
    for line in (BENCHMARKS / "README.md").read_text().splitlines():
        if line.startswith("PYTHONPATH=src python3 benchmarks/gpu_check.py"):
            return line.split("#")[0].strip()
    raise AssertionError("benchmarks/README.md documents no `PYTHONPATH=src python3 benchmarks/gpu_check.py` line")


def _copy_of_the_repository(target: Path) -> Path:
    """The repository's tracked files (without tests/fixtures, which the check does not read), or its tree when
    this is no git checkout."""
    import shutil
    import subprocess

    root = BENCHMARKS.parent
    try:
        listed = subprocess.run(["git", "ls-files", "-z"], cwd=root, capture_output=True, check=True).stdout
        files = [name for name in listed.decode().split("\0") if name]
    except (OSError, subprocess.CalledProcessError):
        files = [str(path.relative_to(root)) for folder in ("src", "benchmarks", "tests")
                 for path in (root / folder).rglob("*") if path.is_file() and "__pycache__" not in path.parts]
        files.append("pyproject.toml")
    for name in files:
        if name.startswith("tests/fixtures/") or not (root / name).is_file():
            continue
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / name, target / name)
    return target


@pytest.mark.slow  # about a minute on 2 cores (GPU tests, torchrun and the eager loop, all on the CPU)
def test_the_documented_device_command_runs_uninstalled_offline_and_writes_under_out(tmp_path):
    """The device recipe as written, with ``--device cpu --tiny``: the check's one full run in the suite."""
    import os
    import subprocess
    import sys

    command = _documented_device_command()
    assert "pip" not in command and "install" not in command
    repo = _copy_of_the_repository(tmp_path / "repo")
    (repo / "src" / "sitecustomize.py").write_text(_OFFLINE_SITECUSTOMIZE)
    for name in ("av", "ray"):
        (repo / "src" / f"{name}.py").write_text(_UNIMPORTABLE.format(name=name))
    out = tmp_path / "out"
    out.mkdir()
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "PYTHONHOME")}
    env.update(OUT=str(out), PIP_NO_INDEX="1", PIP_CONFIG_FILE=os.devnull,
               PATH=os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")]))
    finished = subprocess.run(["bash", "-c", f"{command} --device cpu --tiny"], cwd=repo, env=env,
                              capture_output=True, text=True, timeout=480)
    assert finished.returncode == 0, (finished.stdout + finished.stderr)[-4000:]
    result = json.loads((out / "gpu_check.json").read_text())
    assert (out / "gpu_check.md").read_text().startswith("# GPU check")
    assert Path(result["package"]) == repo / "src" / "assemblenet"  # the copy's code, nothing installed
    printed = finished.stdout.strip().splitlines()
    assert str(out / "gpu_check.json") in printed[0]  # says where the results go
    assert printed[-1] == f"results: {out / 'gpu_check.json'} and {out / 'gpu_check.md'}"  # the summary ends it
    assert any(line.startswith("== gpu_check summary") for line in printed[-12:])

    assert not result["skipped"]
    assert [(s["stage"], s["outcome"]) for s in result["stages"]] == [
        ("tests", "ran"), ("torchrun", "ran"), ("eager", "ran")]
    checks = result["checks"]
    assert checks["GPU tests pass"]["met"] is True and "6 passed" in checks["GPU tests pass"]["value"]
    assert checks["torchrun train + evaluate + predict"]["met"] is True
    assert set(result["torchrun"]["commands"]) == {"train", "evaluate", "predict"}
    assert result["torchrun"]["final_metrics"]["top1"] >= 0
    assert result["bf16_matmul_peak"]["peak_tflops"] > 0
    rows = {row["stage"].split(" (")[0]: row for row in result["throughput"]}
    assert set(rows) == {"trainer step bf16 autocast", "training loop"}
    # MFU is against a matmul peak measured in the same run: on a shared CPU the peak can be measured under
    # load and the loop not, so only its sign is a property here (the < 1 bound holds on a quiet device).
    assert all(row["clips_per_s"] > 0 and row["mfu"] > 0 for row in rows.values())
    loop = rows["training loop"]
    # Steady state: windows after the first, across epoch ends (4 steps an epoch, 2 per window).
    assert loop["windows"] >= 2 and loop["steps_per_epoch"] == 4 and loop["steps_per_window"] == 2
    assert loop["host_syncs_per_window"] is None  # counted on CUDA; on the CPU the next test counts them
    assert checks["loop / step clips/s"]["value"]["eager"] > 0


def test_the_loop_stage_reads_back_only_at_its_log_points(monkeypatch):
    """Epoch ends (every 4 steps here) make no host sync, so the loop stage times steady-state steps."""
    import torch

    from tests.host_reads import count_host_reads

    monkeypatch.syspath_prepend(str(BENCHMARKS))
    gpu_check = _load("gpu_check")
    args = gpu_check.parse_args(["--device", "cpu", "--tiny"])
    with count_host_reads() as log:
        row = gpu_check.loop_throughput(args, torch.device("cpu"), compiled=False, flops_per_clip=1e6,
                                        peak_tflops=1.0, budget=gpu_check.Budget(600))
    assert row["windows"] == 3 and row["steps_per_epoch"] == 4 and row["clips_per_s"] > 0
    host_side = ("rep_flow_kernel.py", "/assemblenet/data/", "/torch/utils/data/")
    # Building the trainer (before the loop) and finishing it (after) are no part of the timed windows.
    in_loop = [r for r in log.reads if not r.in_file(*host_side)
               and not r.in_function("benchmark_trainer", "_finish")]
    assert [r.where() for r in in_loop if not r.in_function("_read_loss_window")] == []
    assert len(in_loop) == 4  # 8 steps (2 epochs), one read per log point every 2 steps


def test_a_stage_past_its_limit_is_killed_with_its_children_and_reported(tmp_path, capsys):
    import os
    import sys
    import time

    gpu_check = _load("gpu_check")
    marker = tmp_path / "grandchild.pid"
    script = ("import subprocess, sys, time; p = subprocess.Popen([sys.executable, '-c', 'import time; "
              "time.sleep(120)']); open(sys.argv[1], 'w').write(str(p.pid)); time.sleep(120)")
    row = gpu_check.run_command([sys.executable, "-c", script, str(marker)], limit_s=5, log=tmp_path / "log")
    assert row["abandoned"] and row["returncode"] is None and row["seconds"] < 60
    assert row["output_tail"].startswith("abandoned: killed at its limit of 5 s")
    grandchild = int(marker.read_text())

    def alive(pid: int) -> bool:
        try:
            return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
        except FileNotFoundError:
            return False
        except OSError:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return False
            return True

    deadline = time.time() + 10
    while alive(grandchild) and time.time() < deadline:
        time.sleep(0.1)
    assert not alive(grandchild)  # a torchrun worker or compile worker does not outlive its stage

    # The whole check: a stage abandoned at its --limit, then the compiled stage not started for lack of time;
    # the results and summary say so.
    out = tmp_path / "check.json"
    assert gpu_check.main(["--device", "cpu", "--tiny", "--stages", "eager,compiled", "--compile", "--limit",
                           "eager=1", "--budget-s", "40", "--compile-min-s", "60", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    stages = {s["stage"]: s for s in result["stages"]}
    assert stages["eager"]["outcome"] == "abandoned at its limit" and stages["eager"]["seconds"] < 30
    assert stages["compiled"]["outcome"].startswith("skipped (") and "--compile-min-s 60" in \
        stages["compiled"]["outcome"]
    assert result["skipped"] == ["compiled"] and result["throughput"] == []
    assert capsys.readouterr().out.rstrip().endswith(f"results: {out} and {out.with_suffix('.md')}")


def test_gpu_speed_smoke_runs_on_the_cpu(tmp_path):
    out = tmp_path / "gpu.json"
    assert _load("gpu_speed").main(["--device", "cpu", "--tiny", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    stages = {row["stage"]: row for row in result["stages"]}
    assert not [row for row in result["stages"] if "error" in row] and not result["skipped"]
    assert set(stages) == {"trainer step bf16 autocast", "inference bf16 (BN folded)", "representation flow (eager)"}
    assert result["bf16_matmul_peak"]["peak_tflops"] > 0
    for row in stages.values():
        assert row["median_s"] > 0 and row["clips_per_s"] > 0
    assert stages["trainer step bf16 autocast"]["mfu"] > 0  # the < 1 bound: see above
    assert stages["representation flow (eager)"]["max_abs_diff_vs_cpu"] <= 1e-5


def test_model_speed_reports_ceiling_fractions_and_no_verdict_from_another_machine(tmp_path):
    out, readme = tmp_path / "model.json", tmp_path / "README.md"
    readme.write_text("# Benchmarks\n\n## Model speed\n\nHand-written.\n\n## Later\n\nKept.\n")
    assert _load("model_speed").main(["--tiny", "--frames", "4", "--size", "32", "--repeats", "1", "--warmup", "0",
                                      "--ceiling-repeats", "2", "--no-bf16", "--json", str(out),
                                      "--readme", str(readme)]) == 0
    result = json.loads(out.read_text())
    assert result["machine"]["signature"] and result["ceilings_gflops"]["fp32"]["peak"] > 0
    for dtype, used in result["ceilings_gflops"].items():  # the better of before and after, per kernel
        before, after = result["ceilings_before_gflops"][dtype], result["ceilings_after_gflops"][dtype]
        assert used["peak"] == max(before["peak"], after["peak"]) > 0
    rows = {row["what"]: row for row in result["results"]}
    assert {"flow layer", "forward fp32 (eager)", "forward fp32 (BN folded)"} <= set(rows)
    assert rows["flow layer"]["ceiling_fraction"] is None  # elementwise work: no FLOP count, no fraction
    for what in ("forward fp32 (eager)", "forward fp32 (BN folded)"):
        row = rows[what]
        assert row["achieved_gflops"] > 0
        # Tiny ceiling kernels can be beaten by the model; then the row is flagged, never given a share > 1.
        assert row.get("above_ceiling") or 0 < row["ceiling_fraction"] <= 1
    for row in rows.values():
        assert row.get("meets_target") is None  # 4x32 has no TF figure; stored TF figures are another machine's
    text = readme.read_text()
    assert "Hand-written." in text and "Kept." in text
    section = text.split("## Model speed: latest run", 1)[1]
    assert result["machine"]["signature"] in section and "| fp32 | before |" in section
    assert "forward fp32 (eager) | 4x32x32" in section


def _fake_timer(samples: list[list[float]]):
    """A stand-in for time_runs: each call takes the next list of per-repeat wall times."""
    calls = []

    def timer(fn, *, repeats, warmup):
        times = samples[len(calls) % len(samples)][:repeats]
        calls.append(repeats)
        return {"median_s": sorted(times)[len(times) // 2], "min_s": min(times), "repeats": repeats}

    return timer, calls


def test_model_speed_ceilings_take_the_best_repeat_and_the_better_of_before_and_after():
    model_speed = _load("model_speed")
    kernels = model_speed.ceiling_kernels(model_speed.CEILING_SHAPES["small"])
    flops = {name: kernel[2] for name, kernel in kernels.items()}
    timer, calls = _fake_timer([[0.4, 0.1, 0.3]])
    before = model_speed.measure_ceilings(repeats=3, tiny=True, native_bf16=True, timer=timer)
    assert calls == [3] * 6  # 3 kernels x 2 dtypes, each with the repeats asked for
    for dtype in ("fp32", "bf16"):
        for name in model_speed.CEILING_KERNELS:
            assert before[dtype][name] == pytest.approx(flops[name] / 0.1 / 1e9)  # the best repeat, not the median
    # Without native bf16 its reference kernels are timed once.
    timer, calls = _fake_timer([[0.2, 0.05]])
    slow = model_speed.measure_ceilings(repeats=2, tiny=False, native_bf16=False, timer=timer)
    assert calls == [2, 2, 2, 1, 1, 1] and slow["bf16"]["native"] is False
    assert slow["bf16"]["matmul"] == pytest.approx(flops["matmul"] / 0.2 / 1e9)  # the small shapes

    after = {dtype: {**row, "matmul": row["matmul"] * 3, "conv 3x3": row["conv 3x3"] / 2}
             for dtype, row in before.items()}
    used = model_speed.best_ceilings(before, after)
    for dtype in used:
        assert used[dtype]["matmul"] == after[dtype]["matmul"]
        assert used[dtype]["conv 3x3"] == before[dtype]["conv 3x3"]
        assert used[dtype]["peak"] == max(used[dtype][k] for k in model_speed.CEILING_KERNELS)


def test_model_speed_flags_a_figure_above_its_ceiling_instead_of_printing_it():
    model_speed = _load("model_speed")
    ceilings = {"fp32": {"peak": 100.0}, "bf16": {"peak": 300.0}}
    base = {"frames": 16, "size": 112, "batch": 1, "median_s": 1.0, "min_s": 0.9}
    rows = [{**base, "what": "forward fp32 (eager)", "dtype": "fp32", "achieved_gflops": 170.0},
            {**base, "what": "forward fp32 (BN folded)", "dtype": "fp32", "achieved_gflops": 60.0},
            {**base, "what": "forward bf16 (converted)", "dtype": "bf16", "achieved_gflops": 150.0},
            {**base, "what": "flow layer", "dtype": "fp32", "achieved_gflops": None}]
    model_speed.judge_against_ceilings(rows, ceilings)
    assert rows[0]["above_ceiling"] is True and rows[0]["ceiling_fraction"] is None
    assert rows[1]["ceiling_fraction"] == pytest.approx(0.6) and "above_ceiling" not in rows[1]
    assert rows[2]["ceiling_fraction"] == pytest.approx(0.5)
    assert rows[3]["ceiling_fraction"] is None and "above_ceiling" not in rows[3]
    table = model_speed.format_table(rows)
    assert "170.0%" not in table and model_speed.ABOVE_CEILING in table.splitlines()[1]
    assert "measurement error" in table and "60.0%" in table and "50.0%" in table
    # With a higher ceiling (e.g. measured after the model timings) the same row is judged again, unflagged.
    model_speed.judge_against_ceilings(rows, {"fp32": {"peak": 200.0}, "bf16": {"peak": 300.0}})
    assert "above_ceiling" not in rows[0] and rows[0]["ceiling_fraction"] == pytest.approx(0.85)
    assert "measurement error" not in model_speed.format_table(rows)


def test_model_speed_run_with_a_low_ceiling_flags_every_model_figure(tmp_path, monkeypatch, capsys):
    model_speed = _load("model_speed")
    measured = []

    def low_ceilings(**options):  # 1 MFLOP/s: any real forward beats it
        measured.append(options)
        return {dtype: {"matmul": 0.001, "conv 1x1x1": 0.0005, "conv 3x3": 0.0002, "peak": 0.001,
                        "native": True} for dtype in ("fp32", "bf16")}

    monkeypatch.setattr(model_speed, "measure_ceilings", low_ceilings)
    out = tmp_path / "model.json"
    assert model_speed.main(["--tiny", "--frames", "4", "--size", "32", "--repeats", "1", "--warmup", "0",
                             "--no-bf16", "--json", str(out)]) == 0
    assert len(measured) == 2  # before and after the model timings
    printed = capsys.readouterr().out
    assert "fp32 before" in printed and "fp32 after" in printed and "measurement error" in printed
    rows = [row for row in json.loads(out.read_text())["results"] if row["achieved_gflops"]]
    assert rows and all(row["above_ceiling"] and row["ceiling_fraction"] is None for row in rows)


def test_decode_speed_smoke_reports_every_row_against_the_ceiling(tmp_path):
    out = tmp_path / "decode.json"
    assert _load("decode_speed").main(["--tiny", "--workers", "1", "--workdir", str(tmp_path / "files"),
                                       "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["machine"]["signature"]
    kinds = {kind["kind"]: kind for kind in result["kinds"]}
    assert set(kinds) == {"340x256", "1280x720", "340x256 prepared"}
    for kind in kinds.values():
        assert kind["decode_fps"] > kind["convert_fps"] > 0 and kind["ceiling_clips_per_s"] > 0
        rows = kind["rows"]
        assert {"our reader (full-size RGB)", "our training pipeline, 0 workers",
                "our training pipeline, 1 workers (total)"} <= set(rows)
        assert all(rate > 0 for rate in rows.values())
    # The prepared copy has a keyframe every 16 frames: a clip costs fewer decoded frames than in the original.
    assert kinds["340x256 prepared"]["mean_decoded_frames_per_clip"] <= kinds["340x256"]["mean_decoded_frames_per_clip"]


@pytest.mark.slow
def test_search_speed_compares_two_trees_and_profiles_them_on_a_tiny_set(tmp_path):
    out = tmp_path / "search_speed.json"
    repo = BENCHMARKS.parent
    # This checkout against itself: the interleaved A/B machinery, with every measurement in its own process.
    # --set reaches A only; this one changes no number (how often the trainer logs).
    assert _load("search_speed").main(["--tiny", "--baseline", str(repo), "--profile-top", "3",
                                       "--set", "train.log_every_steps=1", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["settings"]["overrides"] == {"A": {"train.log_every_steps": 1}, "B": {}}
    text = _load("search_speed").render(result)
    assert text.startswith("## Search speed with train.log_every_steps=1 in A\n")
    assert "--set train.log_every_steps=1" in text
    assert set(result["results"]) == {"A", "B"} and result["machine"]["logical_cpus"] >= 1
    for row in result["results"].values():
        assert row["proxy_new_evaluations_per_hour"] > 0 and row["proxy_resumed_evaluations_per_hour"] > 0
        assert row["train_steps_per_s"] > 0 and len(row["fitness"]) == 4  # 2 new + 2 resumed evaluations
    assert result["same_results"] == {"fitness": True, "train_metrics": True}  # the same code gives the same
    assert all(ratio > 0 for ratio in result["ratios_A_over_B"].values())
    for profile in result["profiles"].values():
        assert len(profile["top_own_time"]) == 3
        assert set(profile["parts"]) == {"decoding", "forward", "backward", "optimiser"}
        assert profile["parts"]["forward"]["seconds"] > 0 and profile["parts"]["backward"]["seconds"] > 0


@pytest.mark.slow
def test_search_speed_cost_model_measures_two_sizes(tmp_path):
    out = tmp_path / "cost.json"
    assert _load("search_speed").main(["--tiny", "--cost-model", "--json", str(out)]) == 0
    sizes = json.loads(out.read_text())["sizes"]
    assert [(s["steps"], s["frames"]) for s in sizes] == [(2, 4), (4, 8)]
    for size in sizes:
        assert size["seconds_per_step"] > 0 and size["validation_s_per_video"] > 0
        assert size["decode_s_per_video"] > 0 and size["videos"]["train"] > 0


def test_the_cost_model_gets_videos_as_long_as_its_clips(tmp_path):
    # Issue 27's protocol scores only views that are the whole video: the 16-frame size needs 16-frame videos.
    from assemblenet.data.compositional import make_compositional

    data = tmp_path / "data"
    make_compositional(data, train_videos=16, val_videos=16, test_videos=16, num_frames=8, seed=3, progress=False)
    compositional_data = _load("search_speed").compositional_data
    assert compositional_data(data, 8, tmp_path) == data
    copy = compositional_data(data, 16, tmp_path)
    written = json.loads((copy / "synthetic.json").read_text())["parameters"]
    assert copy != data and written["num_frames"] == 16
    assert (written["train_videos"], written["val_videos"], written["seed"]) == (16, 16, 3)
    assert compositional_data(data, 16, tmp_path) == copy  # written once
