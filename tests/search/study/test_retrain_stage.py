"""The retrain stage with an injected ``run_training`` (and the engine in worker processes): scores, both
choices paired by run, a retrain stopped midway, the refusals."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from assemblenet.errors import ConfigError
from assemblenet.search.study import (
    Study,
    run_study,
    study_config_from_dict,
)

from ..conftest import proxy_overrides
from .conftest import (
    TINY,
    FakeTraining,
    make_study,
    study_dict,
)


def test_retrain_with_injected_training_records_scores_and_correlation(tmp_path: Path) -> None:
    engine_config = tmp_path / "engine.yaml"
    engine_config.write_text("name: fake\n")
    retrain = {"enabled": True, "config": str(engine_config), "steps": 7, "seeds": 2,
               "overrides": {"data.val.split": "test"}}
    # A budget within the population size: evolution and random search draw the same graphs for a seed (one RNG
    # stream), so their best graphs coincide and must be trained once; one-shot adds distinct dense-derived ones.
    config = study_config_from_dict(study_dict(strategies=["evolution", "random", "oneshot"], seeds=[0, 1],
                                               max_evaluations=6, retrain=retrain),
                                    source="study.yaml")
    fake = FakeTraining()
    outcome = run_study(config, output=tmp_path / "out", progress=False, run_training=fake)
    out = outcome.output_dir

    runs = Study(config, output=out, progress=False).collect()
    bests = {run.label: run.best for run in runs}
    unique = {b.graph_hash for b in bests.values()}
    assert 3 <= len(unique) < len(bests)
    assert len(fake.calls) == 2 * len(unique)  # identical graphs trained once per training seed
    call = fake.calls[0]
    assert call["config"] == str(engine_config.resolve())
    assert call["max_steps"] == 7 and call["width_multiplier"] == 0.125
    assert call["overrides"] == {"data.val.split": "test"}
    assert {c["seed"] for c in fake.calls} == {0, 1}
    assert not any(c["graph"].has_edge_weights for c in fake.calls)  # from scratch: weights are learned again

    data = json.loads((out / "study.json").read_text())
    section = data["retrain"]
    assert len(section["entries"]) == 6 and section["stale"] == []
    for entry in section["entries"]:
        best = bests[entry["run"]]
        expected = [FakeTraining.score(best.graph) + k * 0.001 for k in (0, 1)]
        assert entry["scores"] == pytest.approx(expected)
        assert entry["proxy_fitness"] == pytest.approx(best.fitness)
        assert (out / "retrain" / entry["run"] / "retrain.json").is_file()
        assert (out / "retrain" / entry["run"] / "graph.yaml").is_file()
        if entry["duplicate_of"] is not None:
            assert bests[entry["duplicate_of"]].graph_hash == best.graph_hash
    # Correlation over distinct graphs, each point the mean proxy fitness of its runs and its test score.
    points: dict[str, tuple[list[float], float]] = {}
    for entry in section["entries"]:
        points.setdefault(entry["graph_hash"], ([], entry["score"]))[0].append(entry["proxy_fitness"])
    proxy = [statistics.fmean(p) for p, _ in points.values()]
    test = [s for _, s in points.values()]
    corr = section["correlation"]
    assert corr["n"] == len(unique)
    assert corr["pearson_r"] == pytest.approx(float(np.corrcoef(proxy, test)[0, 1]))
    ranks = [np.argsort(np.argsort(v)) for v in (proxy, test)]  # no ties among these values
    assert corr["spearman_rho"] == pytest.approx(float(np.corrcoef(*ranks)[0, 1]))
    assert sum(e["duplicate_of"] is not None for e in section["entries"]) == len(bests) - len(unique)
    for strategy in ("evolution", "random", "oneshot"):
        scores = [e["score"] for e in section["entries"] if e["strategy"] == strategy]
        assert section["strategies"][strategy]["mean"] == pytest.approx(statistics.fmean(scores))
    assert (out / "proxy_vs_test.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "## Retrained graphs" in (out / "study.md").read_text()

    # Rerunning trains nothing again (each result file marks a finished training).
    run_study(config, stage="retrain", output=out, progress=False, run_training=fake)
    assert len(fake.calls) == 2 * len(unique)


def test_retrain_refuses_when_disabled_or_searches_unfinished(tmp_path: Path) -> None:
    study = make_study(tmp_path)
    with pytest.raises(ConfigError, match=r"^study.yaml: key 'retrain.enabled': "):
        study.retrain()
    enabled = make_study(tmp_path, retrain={"enabled": True})
    with pytest.raises(ConfigError, match="run the search stage first"):
        Study(enabled.config, output=tmp_path / "empty", progress=False, run_training=FakeTraining()).retrain()


def test_retrain_in_worker_processes_trains_with_the_engine_and_records_its_time(tmp_path: Path,
                                                                                  synthetic_root: Path) -> None:
    overrides = {**proxy_overrides(synthetic_root), "model.flow_iterations": 2}
    config = study_config_from_dict(
        study_dict(strategies=["evolution"], seeds=[0, 1], max_evaluations=4,
                   retrain={"enabled": True, "steps": 2, "workers": 2, "overrides": overrides}),
        source="study.yaml")
    study = Study(config, output=tmp_path / "out", progress=False)
    study.run("all")
    results = sorted((tmp_path / "out" / "retrain").glob("*/*/result.json"))
    assert results
    for path in results:
        result = json.loads(path.read_text())
        assert result["wall_time_s"] > 0 and 0.0 <= result["score"] <= 1.0  # the worker's own training time
        assert (path.parent / "train_time.json").is_file() and (path.parent / "model.safetensors").is_file()
    log_lines = [json.loads(line) for line in (tmp_path / "out" / "study_log.jsonl").read_text().splitlines()]
    trained = [row for row in log_lines if row["event"] == "training-finished"]
    assert trained and all(row["wall_time_s"] > 0 for row in trained)
    assert [row["stage"] for row in log_lines if row["event"] == "stage-finished"] == ["search", "retrain"]


def test_retrain_trains_both_choices_and_compares_them_paired_by_run(tmp_path: Path) -> None:
    """With finalist re-scoring on, each run's single best and re-scored graphs are retrained (one graph once)
    and the study reports their paired difference, the training-seed spread and its variance split."""
    search = yaml.safe_load(Path(TINY).read_text())
    search["search"]["finalists"] = {"top_k": 3, "seeds": 2}
    search_path = tmp_path / "search.yaml"
    search_path.write_text(yaml.safe_dump(search))
    config = study_config_from_dict(study_dict(
        search=str(search_path), strategies=["evolution", "random"], seeds=[0, 1, 2], max_evaluations=8,
        retrain={"enabled": True, "steps": 7, "seeds": 2}), source="study.yaml")
    fake = FakeTraining()
    run_study(config, output=tmp_path / "out", progress=False, run_training=fake)
    runs = Study(config, output=tmp_path / "out", progress=False).collect()
    assert all(run.complete and run.finalists is not None for run in runs)
    graphs = {h for run in runs for h in (run.best.graph_hash, run.rescored.graph_hash)}  # type: ignore[union-attr]
    assert len(fake.calls) == 2 * len(graphs)
    data = json.loads((tmp_path / "out" / "study.json").read_text())
    section = data["retrain"]
    assert len(section["entries"]) == 2 * len(runs)
    by_run = {(e["run"], e["choice"]): e for e in section["entries"]}
    diffs = [by_run[(r.label, "rescored")]["score"] - by_run[(r.label, "single-best")]["score"] for r in runs]
    both = section["choice_comparison"]["all"]
    assert both["runs"] == len(runs) and both["differences"] == pytest.approx(diffs)
    assert both["same_graph"] == sum(r.best.graph_hash == r.rescored.graph_hash for r in runs)  # type: ignore[union-attr]
    assert both["mean_difference"] == pytest.approx(statistics.fmean(diffs))
    # The search result of a run is its re-scored choice.
    assert section["result_choice"] == "rescored"
    for strategy in ("evolution", "random"):
        expected = [by_run[(r.label, "rescored")]["score"] for r in runs if r.strategy == strategy]
        assert section["strategies"][strategy]["scores"] == pytest.approx(expected)
    # FakeTraining adds 0.001 per training seed: every graph's spread is std([s, s + 0.001]).
    noise = section["training_noise"]
    assert noise["mean_std"] == pytest.approx(statistics.stdev([0.0, 0.001]))
    assert noise["within_variance"] == pytest.approx(statistics.variance([0.0, 0.001]))
    text = (tmp_path / "out" / "study.md").read_text()
    assert "### Single best against finalist re-scoring" in text and "### Training-seed spread" in text
    # every retrained graph's seeds are listed, each row naming the runs that chose it
    table = text.split("Every retrained graph's training seeds")[1].split("</details>")[0]
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    assert len(rows) == len(graphs)
    for run in runs:
        row = next(r for r in rows if r.startswith(f"| `{run.best.graph_hash[:10]}`"))  # type: ignore[union-attr]
        assert f"{run.label} (single-best)" in row
    assert (tmp_path / "out" / "choices.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert data["strategies"]["evolution"]["cost"]["finalist_evaluations"] == 3 * 3 * 2
    for strategy in ("evolution", "random"):  # the winner's curse: search score minus the fresh re-scored mean
        expected_drops = [r.best.fitness - next(f["mean"] for f in r.finalists["finalists"]  # type: ignore[index]
                                                if f["graph_hash"] == r.best.graph_hash)  # type: ignore[union-attr]
                          for r in runs if r.strategy == strategy]
        rescoring = data["strategies"][strategy]["rescoring"]
        assert rescoring["single_best_drop"] == pytest.approx(expected_drops)
        assert rescoring["runs"] == 3
    fake.calls.clear()
    run_study(config, output=tmp_path / "out", progress=False, run_training=fake)
    assert fake.calls == []


def test_a_retrain_stopped_midway_keeps_the_entries_of_the_runs_it_finished(tmp_path: Path) -> None:
    """Each run's entries are written as soon as its graphs are trained, so a retrain stopped mid-stage (hours
    into a real study) can be analysed; resuming trains only what was left."""
    search = yaml.safe_load(Path(TINY).read_text())
    search["search"]["finalists"] = {"top_k": 2, "seeds": 2}
    search_path = tmp_path / "search.yaml"
    search_path.write_text(yaml.safe_dump(search))
    config = study_config_from_dict(study_dict(
        search=str(search_path), strategies=["random"], seeds=[0, 1], max_evaluations=6,
        retrain={"enabled": True, "steps": 3, "seeds": 2}), source="study.yaml")
    out = tmp_path / "out"
    run_study(config, stage="search", output=out, progress=False)
    runs = Study(config, output=out, progress=False).collect()
    first = runs[0]
    first_graphs = {first.best.graph_hash, first.rescored.graph_hash}  # type: ignore[union-attr]
    calls_for_first = 2 * len(first_graphs)

    class StoppedAfterFirstRun(FakeTraining):
        def __call__(self, config: Any, **kwargs: Any) -> Any:
            if len(self.calls) == calls_for_first:
                raise RuntimeError("stopped")
            return super().__call__(config, **kwargs)

    stopped = StoppedAfterFirstRun()
    with pytest.raises(RuntimeError, match="stopped"):
        run_study(config, stage="retrain", output=out, progress=False, run_training=stopped)
    assert (out / "retrain" / first.label / "retrain.json").is_file()
    assert (out / "retrain" / first.label / "retrain_rescored.json").is_file()
    assert not (out / "retrain" / runs[1].label / "retrain.json").is_file()
    analysis = Study(config, output=out, progress=False).analyse()
    assert {(e["run"], e["choice"]) for e in analysis["retrain"]["entries"]} == \
        {(first.label, "single-best"), (first.label, "rescored")}
    assert analysis["retrain"]["choice_comparison"]["all"]["runs"] == 1
    assert analysis["retrain"]["expected_entries"] == 4
    assert "**Partial: 2 of the 4 choices of the finished runs are retrained so far (1 runs)" in \
        (out / "study.md").read_text()

    resumed = FakeTraining()
    run_study(config, stage="retrain", output=out, progress=False, run_training=resumed)
    all_graphs = {h for run in runs for h in (run.best.graph_hash, run.rescored.graph_hash)}  # type: ignore[union-attr]
    assert len(resumed.calls) == 2 * len(all_graphs - first_graphs)
    assert (out / "retrain" / runs[1].label / "retrain_rescored.json").is_file()
    Study(config, output=out, progress=False).analyse()
    assert "**Partial" not in (out / "study.md").read_text()
