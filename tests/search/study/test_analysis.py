"""The study's statistics (search/study/analysis.py): missing and incomplete runs, the retrain section's
correlation and the paired tests checked by hand."""

from __future__ import annotations

import statistics
from pathlib import Path

import pytest

from assemblenet.search.study import (
    Study,
    study_config_from_dict,
)

from .conftest import (
    dataclass_replace,
    make_study,
    study_dict,
)


def test_analyse_marks_missing_and_incomplete_runs(tmp_path: Path) -> None:
    study = make_study(tmp_path, strategies=["evolution", "random"], seeds=[0])
    Study(dataclass_replace(study.config, strategies=("evolution",)), output=study.output, progress=False).search()
    analysis = study.analyse()
    runs = {r["run"]: r for r in analysis["runs"]}
    assert runs["evolution-seed0"]["complete"] and not runs["random-seed0"]["exists"]
    assert analysis["comparisons"] == []  # random has no finished run to compare against
    assert "Incomplete or missing runs" in (study.output / "study.md").read_text()
    # With a larger budget the same runs are unfinished: no final best enters the statistics yet.
    larger = Study(dataclass_replace(study.config, max_evaluations=9), output=study.output, progress=False).analyse()
    evolution = larger["strategies"]["evolution"]
    assert evolution["complete"] == 0 and evolution["final_best_mean"] is None
    assert "| evolution | 0/1 | - ± - |" in (study.output / "study.md").read_text()


def test_retrain_correlation_by_hand(tmp_path: Path) -> None:
    from assemblenet.search.study import retrain_statistics

    config = study_config_from_dict(study_dict(strategies=["evolution", "random"]), source="s.yaml")
    entries = [
        {"strategy": "evolution", "seed": 0, "run": "evolution-seed0", "graph_hash": "a", "proxy_fitness": 0.5,
         "score": 0.30},
        {"strategy": "random", "seed": 0, "run": "random-seed0", "graph_hash": "a", "proxy_fitness": 0.7,
         "score": 0.30},
        {"strategy": "evolution", "seed": 1, "run": "evolution-seed1", "graph_hash": "b", "proxy_fitness": 0.8,
         "score": 0.50},
        {"strategy": "random", "seed": 1, "run": "random-seed1", "graph_hash": "c", "proxy_fitness": 0.4,
         "score": 0.10},
    ]
    section = retrain_statistics(entries, config)
    # Three distinct graphs (mean proxy, score): (0.6, 0.3), (0.8, 0.5), (0.4, 0.1): on a line, so r = rho = 1.
    assert section["correlation"]["n"] == 3
    assert section["correlation"]["pearson_r"] == pytest.approx(1.0)
    assert section["correlation"]["spearman_rho"] == pytest.approx(1.0)
    assert section["strategies"]["evolution"]["mean"] == pytest.approx(0.4)
    assert section["strategies"]["random"]["scores"] == [0.30, 0.10]


def test_paired_permutation_test_and_variance_split_by_hand() -> None:
    from assemblenet.search import stats

    # 4 pairs: of the 16 sign flips, only the observed one and the one flipping -0.01 reach a mean of 0.085.
    result = stats.paired_permutation_test([0.1, 0.2, 0.05, -0.01], alternative="greater")
    assert result.exact and result.statistic == pytest.approx(0.085) and result.p_value == pytest.approx(2 / 16)
    assert stats.paired_permutation_test([0.0, 0.0], alternative="less").p_value == 1.0
    split = stats.variance_split([[0.1, 0.2, 0.3], [0.5, 0.6, 0.4], [0.3, 0.3, 0.35]])
    within = statistics.fmean([0.01, 0.01, statistics.variance([0.3, 0.3, 0.35])])
    means = [0.2, 0.5, statistics.fmean([0.3, 0.3, 0.35])]
    assert split.within == pytest.approx(within)
    assert split.between == pytest.approx(statistics.variance(means) - within / 3)
    assert not split.training_noise_dominates
    same_graph_twice = stats.variance_split([[0.1, 0.3], [0.1, 0.3]])
    assert same_graph_twice.between == 0.0 and same_graph_twice.training_noise_dominates
