"""``assemblenet demo --quick`` end to end through ``assemblenet.cli.main.main``, and its rerun resuming."""

from __future__ import annotations

import json

from assemblenet.cli.demo import BASELINE, EVAL_FILE, SEARCHED, baseline_graph
from assemblenet.cli.main import main
from assemblenet.graph.spec import StemType


def test_demo_quick_runs_end_to_end_and_resumes(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--quick", "--output", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out

    # The comparison table is printed, one row per model, with the engine's metric values.
    comparison = json.loads((out / "report" / "comparison.json").read_text())
    names = [m["name"] for m in comparison["models"]]
    assert names == [SEARCHED, BASELINE]
    table_rows = [line for line in printed.splitlines() if line.startswith("| ")]
    assert table_rows[0].startswith("| model | val top-1 | val mAP")
    assert [row.split(":")[0] for row in table_rows[2:]] == [f"| {SEARCHED}", f"| {BASELINE}"]
    for model, row in zip(comparison["models"], table_rows[2:]):
        # Both were evaluated by step 4 on every val video, and the printed numbers are those metrics.
        evaluated = json.loads((out / "train" / model["name"] / EVAL_FILE).read_text())
        assert evaluated == model["metrics"]
        assert 0.0 <= evaluated["top1"] <= 1.0 and evaluated["num_videos"] > 0
        assert f"| {evaluated['top1']:.3f} | {evaluated['map']:.3f} |" in row
        assert model["steps"] == 6 and model["parameters"] > 0
    assert "[5/5]" in printed

    # The report folder and its figures.
    report = out / "report"
    assert "| searched: " in (report / "report.md").read_text()
    assert (report / "search" / "report.md").is_file() and list((report / "search" / "plots").glob("*.png"))
    assert (report / "training_curves_searched.png").is_file()
    assert (report / "training_curves_baseline.png").is_file()
    assert len(list((out / "search" / "evolution-seed0" / "evaluations").glob("*.json"))) == 4

    # A rerun reuses every step's outputs: nothing is trained again and the table is identical.
    weights_mtime = (out / "train" / SEARCHED / "model.safetensors").stat().st_mtime_ns
    assert main(["demo", "--quick", "--output", str(out), "--no-progress"]) == 0
    rerun = capsys.readouterr().out
    assert "reusing" in rerun
    assert [line for line in rerun.splitlines() if line.startswith("| ")] == table_rows
    assert (out / "train" / SEARCHED / "model.safetensors").stat().st_mtime_ns == weights_mtime


def test_baseline_is_rgb_only_two_streams_fused_once_at_the_top():
    graph = baseline_graph()
    stems = [graph[i] for i in graph.stem_indices]
    assert [s.stem_type for s in stems] == [StemType.RGB, StemType.RGB]
    # Each block below level 3 reads exactly one node; the single level-3 node reads both streams.
    below_top = [graph[i] for i in graph.block_indices if graph[i].level < 3]
    assert all(len(node.inputs) == 1 for node in below_top)
    assert [len(graph[i].inputs) for i in graph.nodes_at_level(3)] == [2]
    # The same per-level channel budget as the asn50 search space.
    assert graph.channel_budget() == {0: 128, 1: 256, 2: 512, 3: 512}


def test_demo_evaluations_option_keeps_a_valid_search_config(tmp_path):
    from assemblenet.cli.demo import FULL, _settings_for, search_config_dict
    from assemblenet.search.config import search_config_from_dict

    for evaluations in (2, 3, 5, 40):
        settings = _settings_for(FULL, evaluations)
        config = search_config_from_dict(search_config_dict(settings, tmp_path, seed=0))
        assert config.search.max_evaluations == evaluations
        # Some evaluations stay for children, and a tournament never asks for more members than exist.
        assert config.search.population_size < evaluations or evaluations == 2
        assert config.search.tournament_size <= config.search.population_size
