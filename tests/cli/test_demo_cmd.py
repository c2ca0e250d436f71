"""``assemblenet demo --quick`` end to end through ``assemblenet.cli.main.main``, and its rerun resuming."""

from __future__ import annotations

import json

import pytest

from assemblenet.cli.main import main
from assemblenet.search.demo import (
    ASN50,
    FULL,
    LATE_FUSION,
    QUICK,
    RESULT_FILE,
    SEARCHED,
    comparison_table,
    mean_t_interval,
    search_config_dict,
    seed_verdict,
    settings_for,
)
from assemblenet.search.stats import format_interval


def test_demo_quick_runs_end_to_end_and_resumes(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--quick", "--output", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out

    # The comparison table is printed, one row per model, with the test metrics of every training seed.
    comparison = json.loads((out / "report" / "comparison.json").read_text())
    names = [m["name"] for m in comparison["models"]]
    assert names == [SEARCHED, LATE_FUSION, ASN50]
    seeds = list(range(QUICK.training_seeds))
    assert QUICK.training_seeds >= 2
    table_rows = [line for line in printed.splitlines() if line.startswith("| ")]
    assert table_rows[0].startswith(f"| model | test top-1, mean [95% t interval over {len(seeds)} training seeds] "
                                    "| top-1 per seed | test mAP, mean")
    assert [row.split(":")[0] for row in table_rows[2:]] == [f"| {name}" for name in names]
    test_videos = len((out / "data" / "compositional" / "kinetics_test.csv").read_text().strip().splitlines()) - 1
    top1 = {}
    for model, row in zip(comparison["models"], table_rows[2:]):
        assert [run["seed"] for run in model["runs"]] == seeds  # the same training seeds for every wiring
        top1[model["name"]] = []
        for run in model["runs"]:
            saved = json.loads((out / "train" / model["name"] / f"seed{run['seed']}" / RESULT_FILE).read_text())
            assert saved == run and run["eval_views"] == 1
            assert 0.0 <= run["metrics"]["top1"] <= 1.0 and run["metrics"]["num_videos"] == test_videos  # test split
            assert run["steps"] == 4 and run["parameters"] > 0
            top1[model["name"]].append(run["metrics"]["top1"])
        # top-1: the mean over the seeds with its t interval over the seeds, then each seed's value
        assert row.split(" | ")[1:3] == [format_interval(mean_t_interval(top1[model["name"]])),
                                         " / ".join(f"{v:.3f}" for v in top1[model["name"]])]
    assert "[5/5]" in printed
    # The verdict is the seed rule's on these per-seed scores, printed and recorded.
    verdict = seed_verdict(top1)
    assert verdict.sentence() in printed and comparison["verdict"]["sentence"] == verdict.sentence()
    assert comparison["verdict"]["winner"] == verdict.winner

    # The count of guided connection mutations is what the search's records say.
    records = [json.loads(p.read_text()) for p in (out / "search" / "evolution-seed0" / "evaluations").glob("*.json")]
    children = [r for r in records if r["parent"] is not None]
    fired = sum(r["mutation"]["kind"] == "connection-guided" for r in children)
    assert f"guided connection mutations: {fired} of {len(children)} children" in printed
    assert comparison["mutations"]["guided_connection"] == fired

    report = out / "report"
    assert "| searched: " in (report / "report.md").read_text()
    from assemblenet.runtime import machine_info

    # Which CPU and code made the numbers (another CPU rounds differently; docs/demo.md).
    assert comparison["machine"]["signature"] == machine_info()["signature"] and "commit" in comparison["code"]
    assert f"Ran on {machine_info()['signature']} (torch " in (report / "report.md").read_text()
    assert (report / "search" / "report.md").is_file() and list((report / "search" / "plots").glob("*.png"))
    for name in names:
        assert (report / f"training_curves_{name}.png").is_file() and (report / f"graph_{name}.png").is_file()
    assert len(records) == 4
    # The searched graph is the search's result: its re-scored finalist (quick: top 2, one fresh seed each).
    finalists = json.loads((out / "search" / "evolution-seed0" / "finalists.json").read_text())
    assert len(finalists["finalists"]) == 2 and finalists["seeds"] == 1

    # A rerun reuses every step's outputs: nothing is trained again and the table is identical.
    weights_mtime = (out / "train" / SEARCHED / "seed0" / "model.safetensors").stat().st_mtime_ns
    assert main(["demo", "--quick", "--output", str(out), "--no-progress"]) == 0
    rerun = capsys.readouterr().out
    assert "reusing" in rerun
    assert [line for line in rerun.splitlines() if line.startswith("| ")] == table_rows
    assert (out / "train" / SEARCHED / "seed0" / "model.safetensors").stat().st_mtime_ns == weights_mtime


def test_a_winner_is_named_only_when_the_seed_intervals_exclude_the_others():
    # Consistent leads on every seed over both others: the paired intervals exclude 0.
    clear = seed_verdict({"a": [0.50, 0.52, 0.49], "b": [0.30, 0.33, 0.31], "c": [0.20, 0.25, 0.22]})
    assert clear.leader == clear.winner == "a"
    assert all(lead.low > 0 for lead in clear.leads.values())
    assert clear.sentence().startswith("highest test top-1: a (")
    # One seed reverses the lead over b: the interval includes 0, nobody is named.
    noisy = seed_verdict({"a": [0.60, 0.55, 0.45], "b": [0.30, 0.33, 0.55], "c": [0.20, 0.25, 0.22]})
    assert noisy.leader == "a" and noisy.winner is None
    assert noisy.leads["b"].low <= 0 < noisy.leads["c"].low
    assert noisy.sentence().startswith("no measurable difference in test top-1 in the demo's budget")
    # The rule is paired: a constant lead of 0.01 on every seed is measurable although the wirings' own spreads
    # over the seeds overlap widely.
    paired = seed_verdict({"a": [0.31, 0.51, 0.71], "b": [0.30, 0.50, 0.70]})
    assert paired.winner == "a"
    assert mean_t_interval([0.31, 0.51, 0.71]).low < 0.50  # the unpaired intervals overlap
    # Not only the test videos' interval: one seed each gives no interval across seeds, so no winner.
    single = seed_verdict({"a": [0.9], "b": [0.1]})
    assert single.winner is None and "one training seed" in single.sentence()
    # The interval is scipy's paired t interval of the mean difference.
    from scipy import stats

    low, high = stats.ttest_rel([0.60, 0.55, 0.45], [0.30, 0.33, 0.55]).confidence_interval()
    assert (noisy.leads["b"].low, noisy.leads["b"].high) == pytest.approx((low, high))
    with pytest.raises(ValueError, match="same training seeds"):
        seed_verdict({"a": [0.1, 0.2], "b": [0.1]})


def test_the_table_shows_the_seed_interval_and_every_seed():
    from assemblenet.search.demo import ModelOutcome, WiringOutcome

    def run(seed: int, top1: float) -> ModelOutcome:
        return ModelOutcome("a", "wiring a", {"top1": top1, "map": 0.5, "top5": 0.9, "mean_class_accuracy": top1},
                            parameters=1234, train_seconds=10.0 + seed, steps=250, seed=seed, eval_views=1)

    table = comparison_table([WiringOutcome("a", "wiring a", (run(0, 0.2), run(1, 0.3), run(2, 0.4)))])
    row = table.splitlines()[2]
    assert row.startswith(f"| a: wiring a | {format_interval(mean_t_interval([0.2, 0.3, 0.4]))} | "
                          "0.200 / 0.300 / 0.400 | 0.500 | 0.900 | 0.300 | 1,234 | 250 | 11 s |")


def test_the_demo_refuses_data_of_another_demo_version(tmp_path):
    from assemblenet.data.compositional import make_compositional
    from assemblenet.errors import ConfigError
    from assemblenet.search.demo import _make_data

    root = tmp_path / "data" / "compositional"
    make_compositional(root, train_videos=32, val_videos=16, test_videos=16, num_frames=16, progress=False)
    with pytest.raises(ConfigError, match="num_frames 16 instead of 8.*use a new --output folder"):
        _make_data(root, QUICK, progress=False)


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
