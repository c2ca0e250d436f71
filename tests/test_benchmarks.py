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


def test_gpu_speed_smoke_runs_on_the_cpu(tmp_path):
    out = tmp_path / "gpu.json"
    assert _load("gpu_speed").main(["--device", "cpu", "--tiny", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    stages = {row["stage"]: row for row in result["stages"]}
    assert not [row for row in result["stages"] if "error" in row] and not result["skipped"]
    assert set(stages) == {"train bf16 autocast", "inference bf16 (BN folded)", "representation flow (eager)"}
    assert result["bf16_matmul_peak"]["peak_tflops"] > 0
    for row in stages.values():
        assert row["median_s"] > 0 and row["clips_per_s"] > 0
    assert 0 < stages["train bf16 autocast"]["mfu"] < 1
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
