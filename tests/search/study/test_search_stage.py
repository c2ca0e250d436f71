"""The search stage: the toy study end to end (study.json, study.png and study.md consistent with the runs),
finished runs skipped, identical evaluations reused, an interrupted study resumed, the stage times study.md states."""

from __future__ import annotations

import dataclasses
import json
import statistics
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from assemblenet.errors import ConfigError
from assemblenet.search.fitness import FitnessResult
from assemblenet.search.store import RunStore
from assemblenet.search.study import (
    Study,
    StudyAnalysis,
    study_config_from_dict,
    study_markdown,
)
from assemblenet.search.toy import ToyFitness

from .conftest import (
    CLEAN_CODE,
    TINY,
    dataclass_replace,
    make_study,
    study_dict,
)


@pytest.fixture(scope="module")
def toy_study(tmp_path_factory: pytest.TempPathFactory) -> tuple[Study, Any]:
    root = tmp_path_factory.mktemp("study")
    config = study_config_from_dict(
        study_dict(strategies=["evolution", "random"], seeds=[0, 1], max_evaluations=10), source="study.yaml")
    study = Study(config, output=root / "out", progress=False)
    return study, study.run("all")


def test_toy_study_writes_json_png_md_consistent_with_the_runs(toy_study: tuple[Study, Any]) -> None:
    study, outcome = toy_study
    out = study.output
    for name in ("study.json", "study.png", "study.md", "study_log.jsonl"):
        assert (out / name).is_file(), name
    assert (out / "study.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    data = json.loads((out / "study.json").read_text())
    assert data == json.loads(json.dumps(outcome.analysis))  # returned = written (JSON-safe)
    assert set(data["strategies"]) == {"evolution", "random"}
    assert data["retrain"] is None
    assert len(data["runs"]) == 4 and all(r["complete"] for r in data["runs"])

    finals: dict[str, list[float]] = {}
    for strategy in ("evolution", "random"):
        for seed in (0, 1):
            records = RunStore(out / f"{strategy}-seed{seed}").read_records()
            assert sorted(records) == list(range(10))
            finals.setdefault(strategy, []).append(max(r.fitness for r in records.values() if r.fitness is not None))
    for strategy, entry in data["strategies"].items():
        assert entry["final_best"] == pytest.approx(finals[strategy])
        assert entry["final_best_mean"] == pytest.approx(statistics.fmean(finals[strategy]))
        low, high = entry["final_best_ci95_bootstrap"]
        assert min(finals[strategy]) - 1e-12 <= low <= entry["final_best_mean"] <= high <= max(finals[strategy]) + 1e-12
        curve = entry["curve"]
        assert curve["evaluations"] == list(range(1, 11))
        assert curve["mean"][-1] == pytest.approx(entry["final_best_mean"])
        assert all(lo <= m + 1e-12 and m <= hi + 1e-12 for lo, m, hi in zip(curve["low"], curve["mean"], curve["high"]))
        assert np.all(np.diff(curve["mean"]) >= -1e-12)  # best so far never drops
        reach = entry["evals_to_reach_random"]
        assert reach["target"] == pytest.approx(statistics.fmean(finals["random"]))
        assert reach["of"] == 2 and reach["reached"] == sum(v is not None for v in reach["per_seed"])
    assert data["strategies"]["random"]["mutations"]["children"] == 0
    share = data["strategies"]["evolution"]["connection_share"]
    assert share["configured"] == pytest.approx(0.5)  # tiny.yaml: connection 0.5 of 1.0
    assert share["children"] == data["strategies"]["evolution"]["mutations"]["children"] == 4  # 2 x (10 - 8)
    assert "connection_share" not in data["strategies"]["random"]

    (comparison,) = data["comparisons"]
    assert (comparison["a"], comparison["b"]) == ("evolution", "random")
    assert comparison["mean_difference"] == pytest.approx(statistics.fmean(finals["evolution"]) -
                                                          statistics.fmean(finals["random"]))
    assert comparison["permutation_exact"] and 0 < comparison["permutation_p"] <= 1
    text = (out / "study.md").read_text()
    assert comparison["paired"] and comparison["n_pairs"] == 2 and comparison["endpoint"] == "final_best"
    assert comparison["differences"] == pytest.approx([data["runs"][i]["final_best"] - data["runs"][i + 2]["final_best"]
                                                       for i in (0, 1)])  # evolution-seed0 - random-seed0, ...
    assert comparison["permutation_p"] in (pytest.approx(0.25), pytest.approx(0.5), pytest.approx(0.75), 1.0)
    for heading in ("## Hypotheses (pre-registered)", "## Exploratory", "### Best fitness against evaluations",
                    "### Final best fitness", "### Guided evolution against", "### Mutations", "### Runs",
                    "(study.png)", "| evolution vs random | final_best | 2 |"):
        assert heading in text
    log_lines = [json.loads(line) for line in (out / "study_log.jsonl").read_text().splitlines()]
    runs = [row for row in log_lines if row["event"] == "run-finished"]
    assert [(row["strategy"], row["seed"]) for row in runs] == [
        ("evolution", 0), ("evolution", 1), ("random", 0), ("random", 1)]
    assert all(row["evaluations"] == 10 for row in runs)
    stages = [row for row in log_lines if row["event"] == "stage-finished"]
    assert [row["stage"] for row in stages] == ["search"] and stages[0]["wall_time_s"] > 0
    assert data["stage_wall_time_s"] == {"search": stages[0]["wall_time_s"]}
    assert [row["event"] for row in log_lines].count("stage-started") == 1
    started = [row for row in log_lines if row["event"] == "invocation-started"]
    assert len(started) == 1 and started[0]["provenance"]["commit"] == CLEAN_CODE["commit"]
    assert started[0]["config_hash"] == data["config_hash"] and started[0]["allow_dirty"] is False
    assert len(log_lines) == len(started) + len(runs) + 2 * len(stages)
    assert len({row["invocation"] for row in log_lines}) == 1
    assert data["stage_wall_time_untagged_rows"] == 0 and "undercount" not in text


def test_study_md_says_its_stage_times_undercount_when_old_log_rows_have_no_invocation(
        toy_study: tuple[Study, Any]) -> None:
    study, outcome = toy_study
    analysis = StudyAnalysis.from_dict(outcome.analysis)
    assert "undercount" not in study_markdown(analysis)
    lines = study_markdown(dataclasses.replace(analysis, stage_wall_time_untagged_rows=3)).splitlines()
    stage_line = next(i for i, line in enumerate(lines) if line.startswith("Wall time per stage"))
    assert lines[stage_line + 1].startswith("These figures undercount: 3 log rows were written before")


def test_rerun_skips_finished_runs_without_touching_them(toy_study: tuple[Study, Any]) -> None:
    study, _ = toy_study
    files = sorted(p for p in study.output.glob("*-seed*/**/*") if p.is_file())
    before = {p: p.stat().st_mtime_ns for p in files}
    finished = {p: json.loads(p.read_text())["finished_at"] for p in files if p.parent.name == "evaluations"}
    log_before = (study.output / "study_log.jsonl").read_text()
    summaries = Study(study.config, output=study.output, progress=False).search()
    assert all(s["skipped"] for s in summaries) and len(summaries) == 4
    assert {p: p.stat().st_mtime_ns for p in files} == before
    assert {p: json.loads(p.read_text())["finished_at"] for p in finished} == finished
    assert (study.output / "study_log.jsonl").read_text() == log_before  # nothing ran, nothing logged


class _Counting:
    """The toy fitness, counting its calls."""

    def __init__(self) -> None:
        self.inner = ToyFitness(noise=0.01)
        self.calls = 0

    def __call__(self, graph: Any, *, seed: int, workdir: str | None = None) -> FitnessResult:
        self.calls += 1
        return self.inner(graph, seed=seed, workdir=workdir)


def test_reused_evaluations_equal_rerun_ones_and_are_not_run_again(tmp_path: Path) -> None:
    """Evolution, its control and random search with one seed draw the same initial graphs with the same trial
    seeds; the study runs each such evaluation once and copies it, and the runs are what they would be without."""
    strategies = ["evolution", "evolution-unguided", "random", "oneshot"]
    counts = {}
    records = {}
    for reuse in (False, True):
        config = study_config_from_dict(
            study_dict(strategies=strategies, seeds=[0, 1], max_evaluations=11, reuse_evaluations=reuse),
            source="study.yaml")
        fitness = _Counting()
        study = Study(config, output=tmp_path / f"reuse-{reuse}", progress=False, fitness=fitness)
        analysis = study.run("all")
        counts[reuse] = fitness.calls
        records[reuse] = {(s, seed): RunStore(study.output / f"{s}-seed{seed}").read_records()
                          for s in strategies for seed in (0, 1)}
    assert counts[False] == 4 * 2 * 11
    # tiny.yaml: population 8, so unguided evolution and random copy evolution's 8 initial evaluations per seed.
    assert counts[True] == counts[False] - 2 * 2 * 8
    for key, plain in records[False].items():
        copied = records[True][key]
        assert sorted(copied) == sorted(plain) == list(range(11))
        for i in plain:
            a, b = plain[i], copied[i]
            assert (a.graph_hash, a.seed, a.fitness, a.learned_weights, a.metrics, a.parent, a.mutation) == (
                b.graph_hash, b.seed, b.fitness, b.learned_weights, b.metrics, b.parent, b.mutation)
            assert a.reused_from is None
            strategy, seed = key
            if strategy in ("evolution-unguided", "random") and i < 8:
                assert b.reused_from == f"evolution-seed{seed}/{i:06d}" and b.wall_time == 0.0 and b.attempts == 0
            else:
                assert b.reused_from is None
    cost = analysis.analysis["strategies"]
    assert [cost[s]["cost"]["reused"] for s in strategies] == [0, 16, 16, 0]
    assert all(cost[s]["cost"]["run"] + cost[s]["cost"]["reused"] == 22 for s in strategies)
    assert "| random | 22 | 6 | 16 |" in (tmp_path / "reuse-True" / "study.md").read_text()


def test_reuse_never_copies_from_a_folder_another_config_wrote(tmp_path: Path) -> None:
    study = make_study(tmp_path, strategies=["random", "evolution"], seeds=[0], max_evaluations=4)
    stale = Study(dataclass_replace(study.config, strategies=("evolution",)), output=study.output, progress=False)
    stale.base = stale.base.replace(**{"mutation.relative_threshold": 0.3})  # another config, same folder
    stale.search()
    fitness = _Counting()
    with pytest.raises(ConfigError, match="evolution-seed0"):
        Study(study.config, output=study.output, progress=False, fitness=fitness).search()
    assert fitness.calls == 4  # random ran all four: nothing was copied from the stale evolution folder
    assert all(r.reused_from is None for r in RunStore(study.output / "random-seed0").read_records().values())


class _Interrupting:
    """The toy fitness, but the process "dies" (KeyboardInterrupt) at the n-th call."""

    def __init__(self, calls_before_interrupt: int) -> None:
        self.inner = ToyFitness(noise=0.01)
        self.left = calls_before_interrupt

    def __call__(self, graph: Any, *, seed: int, workdir: str | None = None) -> FitnessResult:
        if self.left == 0:
            raise KeyboardInterrupt
        self.left -= 1
        return self.inner(graph, seed=seed, workdir=workdir)


def test_interrupted_study_resumes_without_redoing_finished_evaluations(tmp_path: Path) -> None:
    study = make_study(tmp_path, max_evaluations=6)
    interrupted = Study(study.config, output=study.output, progress=False, fitness=_Interrupting(9))
    with pytest.raises(KeyboardInterrupt):
        interrupted.search()  # evolution-seed0 done (6), evolution-seed1 stopped after 3 evaluations
    first = RunStore(study.output / "evolution-seed0").read_records()
    partial = RunStore(study.output / "evolution-seed1").read_records()
    assert len(first) == 6 and 0 < len(partial) < 6
    stamps = {(run, i): r.finished_at for run, recs in (("s0", first), ("s1", partial)) for i, r in recs.items()}

    summaries = study.search()
    assert [s["skipped"] for s in summaries] == [True, False, False, False]
    after0 = RunStore(study.output / "evolution-seed0").read_records()
    after1 = RunStore(study.output / "evolution-seed1").read_records()
    assert len(after1) == 6
    assert all(after0[i].finished_at == stamps[("s0", i)] for i in first)
    assert all(after1[i].finished_at == stamps[("s1", i)] for i in partial)

    # The resumed run equals an uninterrupted one.
    fresh = make_study(tmp_path / "fresh", max_evaluations=6)
    fresh.search()
    fresh_records = RunStore(fresh.output / "evolution-seed1").read_records()
    assert [after1[i].graph_hash for i in range(6)] == [fresh_records[i].graph_hash for i in range(6)]
    assert [after1[i].fitness for i in range(6)] == pytest.approx([fresh_records[i].fitness for i in range(6)])


def test_a_run_killed_during_its_finalists_is_not_skipped(tmp_path: Path) -> None:
    search = yaml.safe_load(Path(TINY).read_text())
    search["search"]["finalists"] = {"top_k": 2, "seeds": 2}
    search_path = tmp_path / "search.yaml"
    search_path.write_text(yaml.safe_dump(search))
    config = study_config_from_dict(study_dict(search=str(search_path), strategies=["random"], seeds=[0],
                                               max_evaluations=5), source="study.yaml")
    study = Study(config, output=tmp_path / "out", progress=False)
    study.run("search")
    run_dir = study.run_dir(study.specs()[0])
    first = json.loads((run_dir / "finalists.json").read_text())
    (run_dir / "finalists.json").unlink()  # as if killed before the ranking was written
    assert study.collect()[0].complete is False
    study.run("search")
    assert json.loads((run_dir / "finalists.json").read_text())["finalists"] == first["finalists"]
