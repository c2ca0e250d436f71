"""``assemblenet demo --quick`` end to end through ``assemblenet.cli.main.main``, and its rerun resuming."""

from __future__ import annotations

import json

import pytest

from assemblenet.cli.main import main
from assemblenet.search.demo import ASN50, EVAL_FILE, FULL, LATE_FUSION, SEARCHED, search_config_dict, settings_for
from assemblenet.search.stats import bootstrap_mean_ci, format_interval


def test_demo_quick_runs_end_to_end_and_resumes(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--quick", "--output", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out

    # The comparison table is printed, one row per model, with the test metrics.
    comparison = json.loads((out / "report" / "comparison.json").read_text())
    names = [m["name"] for m in comparison["models"]]
    assert names == [SEARCHED, LATE_FUSION, ASN50]
    table_rows = [line for line in printed.splitlines() if line.startswith("| ")]
    assert table_rows[0].startswith("| model | test top-1 [95% interval] | test mAP")
    assert [row.split(":")[0] for row in table_rows[2:]] == [f"| {name}" for name in names]
    test_videos = len((out / "data" / "compositional" / "kinetics_test.csv").read_text().strip().splitlines()) - 1
    for model, row in zip(comparison["models"], table_rows[2:]):
        evaluated = json.loads((out / "train" / model["name"] / EVAL_FILE).read_text())
        hits = evaluated.pop("top1_hits")
        assert evaluated == model["metrics"]
        assert 0.0 <= evaluated["top1"] <= 1.0 and evaluated["num_videos"] == test_videos  # the test split
        # top-1 is the mean of the per-video hits, shown with its bootstrap interval over the test videos
        assert len(hits) == test_videos and sum(hits) / len(hits) == pytest.approx(evaluated["top1"])
        interval = bootstrap_mean_ci(hits)
        assert f"| {format_interval(interval)} | {evaluated['map']:.3f} |" in row
        assert model["steps"] == 4 and model["parameters"] > 0
    assert "[5/5]" in printed
    # No winner is named from one training seed per model: the point estimate only, and no test of a difference.
    top = max(comparison["models"], key=lambda m: m["metrics"]["top1"])
    assert f"highest test top-1 by point estimate: {top['name']}" in printed
    assert "no difference between the models is tested here" in printed and "intervals overlap" not in printed

    # The count of guided connection mutations is what the search's records say.
    records = [json.loads(p.read_text()) for p in (out / "search" / "evolution-seed0" / "evaluations").glob("*.json")]
    children = [r for r in records if r["parent"] is not None]
    fired = sum(r["mutation"]["kind"] == "connection-guided" for r in children)
    assert f"guided connection mutations: {fired} of {len(children)} children" in printed
    assert comparison["mutations"]["guided_connection"] == fired

    report = out / "report"
    assert "| searched: " in (report / "report.md").read_text()
    assert (report / "search" / "report.md").is_file() and list((report / "search" / "plots").glob("*.png"))
    for name in names:
        assert (report / f"training_curves_{name}.png").is_file() and (report / f"graph_{name}.png").is_file()
    assert len(records) == 4
    # The searched graph is the search's result: its re-scored finalist (quick: top 2, one fresh seed each).
    finalists = json.loads((out / "search" / "evolution-seed0" / "finalists.json").read_text())
    assert len(finalists["finalists"]) == 2 and finalists["seeds"] == 1

    # A rerun reuses every step's outputs: nothing is trained again and the table is identical.
    weights_mtime = (out / "train" / SEARCHED / "model.safetensors").stat().st_mtime_ns
    assert main(["demo", "--quick", "--output", str(out), "--no-progress"]) == 0
    rerun = capsys.readouterr().out
    assert "reusing" in rerun
    assert [line for line in rerun.splitlines() if line.startswith("| ")] == table_rows
    assert (out / "train" / SEARCHED / "model.safetensors").stat().st_mtime_ns == weights_mtime


def test_demo_evaluations_option_keeps_a_valid_search_config(tmp_path):
    from assemblenet.search.config import search_config_from_dict

    for evaluations in (2, 3, 5, 40):
        settings = settings_for(FULL, evaluations)
        config = search_config_from_dict(search_config_dict(settings, tmp_path, seed=0))
        assert config.search.max_evaluations == evaluations
        # Some evaluations stay for children, and a tournament never asks for more members than exist.
        assert config.search.population_size < evaluations or evaluations == 2
        assert config.search.tournament_size <= config.search.population_size


def test_demo_rejects_a_budget_without_children(capsys):
    assert main(["demo", "--evaluations", "1", "--output", "unused"]) == 2
    assert "--evaluations must be at least 2" in capsys.readouterr().err
