from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from assemblenet.errors import ConfigError
from assemblenet.graph import load_graph
from assemblenet.search.evolution import SearchRunner
from assemblenet.search.report import best_curve_stats, find_runs, write_report

from .conftest import tiny_config


@pytest.fixture(scope="module")
def two_searches(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Folder A: evolution and random, seed 0; folder B: evolution seed 1 (shorter)."""
    root = tmp_path_factory.mktemp("searches")
    for folder, strategy, seed, budget in (("a", "evolution", 0, 12), ("a", "random", 0, 12), ("b", "evolution", 1, 8)):
        config = tiny_config(strategy=strategy, seed=seed, **{"search.max_evaluations": budget})
        SearchRunner(config, run_dir=root / folder / f"{strategy}-seed{seed}").run()
    return root / "a", root / "b"


def test_folder_report_has_plots_table_and_best_graph(two_searches: tuple[Path, Path]) -> None:
    folder, _ = two_searches
    report = write_report([folder], folder)
    text = report.read_text()
    assert "| evolution-seed0 | evolution | 0 | 12 |" in text
    assert "| random-seed0 | random | 0 | 12 |" in text
    for image in ("best_fitness.png", "run_evolution-seed0.png", "run_random-seed0.png"):
        path = folder / "plots" / image
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"plots/{image}" in text
    # The folder's best graph is the best of all its runs, in both formats, with learned weights.
    runs = find_runs([folder])
    best = max((r.final_best for r in runs))
    graph = load_graph(folder / "best.yaml")
    assert graph.has_edge_weights
    assert load_graph(folder / "best_official.json").canonical_hash() == graph.canonical_hash()
    assert f"Fitness {best:.4f}" in text


def test_overlay_groups_strategies_across_folders_with_mean_and_spread(two_searches: tuple[Path, Path],
                                                                      tmp_path: Path) -> None:
    a, b = two_searches
    write_report([a, b], tmp_path / "overlay")
    summary = json.loads((tmp_path / "overlay" / "summary.json").read_text())
    assert summary["evolution"]["runs"] == 2 and summary["random"]["runs"] == 1
    runs = {r.label: r for r in find_runs([a, b])}
    finals = [runs["evolution-seed0"].final_best, runs["evolution-seed1"].final_best]
    assert summary["evolution"]["final_best_mean"] == pytest.approx(sum(finals) / 2)
    assert summary["evolution"]["final_best_max"] == max(finals)
    mean, std, low, high = best_curve_stats([runs["evolution-seed0"], runs["evolution-seed1"]])
    assert len(mean) == 8  # cut to the shorter run
    # Equal-budget comparison points: a quarter, half, three quarters and all of the common length.
    assert sorted(summary["evolution"]["best_so_far_mean_at"], key=int) == ["2", "4", "6", "8"]
    assert summary["evolution"]["best_so_far_mean_at"]["4"] == pytest.approx(mean[3])
    assert summary["evolution"]["best_so_far_std_at"]["8"] == pytest.approx(std[7])
    for step in range(8):
        values = [runs[k].curve[step] for k in ("evolution-seed0", "evolution-seed1")]
        assert mean[step] == pytest.approx(sum(values) / 2)
        assert (low[step], high[step]) == (min(values), max(values))
        assert std[step] == pytest.approx(abs(values[0] - values[1]) / 2)
    assert not any(math.isnan(v) for v in mean)


def test_same_run_names_in_two_folders_are_told_apart(two_searches: tuple[Path, Path], tmp_path: Path) -> None:
    import shutil

    a, _ = two_searches
    assert [r.label for r in find_runs([a, a / "evolution-seed0"])] == ["evolution-seed0", "random-seed0"]
    copy = shutil.copytree(a, tmp_path / "copy")
    labels = sorted(r.label for r in find_runs([a, copy]))
    assert labels == ["a/evolution-seed0", "a/random-seed0", "copy/evolution-seed0", "copy/random-seed0"]


def test_folder_without_runs_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no search runs"):
        find_runs([tmp_path])
    with pytest.raises(FileNotFoundError):
        find_runs([tmp_path / "missing"])


def test_report_counts_each_runs_children_by_mutation_kind(tmp_path) -> None:
    from assemblenet.search.evolution import SearchRunner
    from assemblenet.search.report import find_runs, write_report
    from assemblenet.search.store import RunStore

    from .conftest import tiny_config

    run_dir = tmp_path / "evolution-seed0"
    SearchRunner(tiny_config(**{"search.max_evaluations": 16}), run_dir=run_dir).run()
    (run,) = find_runs([run_dir])
    expected: dict[str, int] = {}
    for record in RunStore(run_dir).read_records().values():
        if record.parent is not None:
            expected[record.mutation["kind"]] = expected.get(record.mutation["kind"], 0) + 1
    assert run.children_by_kind == expected and sum(expected.values()) > 0
    text = write_report([run_dir], tmp_path / "report").read_text()
    assert ", ".join(f"{k} {v}" for k, v in sorted(expected.items())) in text


def test_strategy_table_gives_intervals_over_seeds_and_never_reads_their_overlap_as_a_test(tmp_path: Path) -> None:
    from assemblenet.search.stats import bootstrap_mean_ci, format_interval

    for strategy in ("evolution", "random"):
        for seed in (0, 1, 2):
            config = tiny_config(strategy=strategy, seed=seed, **{"search.max_evaluations": 6})
            SearchRunner(config, run_dir=tmp_path / f"{strategy}-seed{seed}").run()
    report = write_report([tmp_path], tmp_path / "report")
    text = report.read_text()
    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    intervals = {s: bootstrap_mean_ci(summary[s]["final_best"]) for s in ("evolution", "random")}
    for strategy, interval in intervals.items():
        assert f"| {format_interval(interval, 4)} |" in text
    assert "whether two intervals overlap is not a test" in text
    assert "no measurable difference" not in text and "intervals overlap)" not in text
