"""The benchmark scripts run end to end on a tiny configuration (their figures come from real machines)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"benchmark_{name}", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_gpu_check_runs_every_stage_on_the_cpu(tmp_path):
    import subprocess
    import sys

    out = tmp_path / "gpu_check.json"
    # A subprocess, as the script is run: its GPU-test stage starts a pytest of its own.
    finished = subprocess.run([sys.executable, str(BENCHMARKS / "gpu_check.py"), "--device", "cpu", "--tiny",
                               "--json", str(out)], capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr[-3000:]
    result = json.loads(out.read_text())
    assert not result["skipped"]
    checks = result["checks"]
    assert checks["GPU tests pass"]["met"] is True and "6 passed" in checks["GPU tests pass"]["value"]
    assert checks["torchrun train + evaluate + predict"]["met"] is True
    assert set(result["torchrun"]["commands"]) == {"train", "evaluate", "predict"}
    assert result["torchrun"]["final_metrics"]["top1"] >= 0
    rows = {row["stage"].split(" (")[0]: row for row in result["throughput"]}
    assert set(rows) == {"trainer step bf16 autocast", "training loop"}
    assert all(row["clips_per_s"] > 0 and 0 < row["mfu"] < 1 for row in rows.values())
    assert checks["loop / step clips/s"]["value"]["eager"] > 0
    assert (tmp_path / "gpu_check.md").read_text().startswith("# GPU check")


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
    assert 0 < stages["trainer step bf16 autocast"]["mfu"] < 1
    assert stages["representation flow (eager)"]["max_abs_diff_vs_cpu"] <= 1e-5


def test_model_speed_reports_ceiling_fractions_and_no_verdict_from_another_machine(tmp_path):
    out = tmp_path / "model.json"
    assert _load("model_speed").main(["--tiny", "--frames", "4", "--size", "32", "--repeats", "1", "--warmup", "0",
                                      "--no-bf16", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["machine"]["signature"] and result["ceilings_gflops"]["fp32"]["peak"] > 0
    rows = {row["what"]: row for row in result["results"]}
    assert {"flow layer", "forward fp32 (eager)", "forward fp32 (BN folded)"} <= set(rows)
    assert rows["flow layer"]["ceiling_fraction"] is None  # elementwise work: no FLOP count, no fraction
    for what in ("forward fp32 (eager)", "forward fp32 (BN folded)"):
        assert 0 < rows[what]["ceiling_fraction"] and rows[what]["achieved_gflops"] > 0
    for row in rows.values():
        assert row.get("meets_target") is None  # 4x32 has no TF figure; stored TF figures are another machine's


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
