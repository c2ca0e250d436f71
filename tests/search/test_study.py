"""``assemblenet search-study``: config validation, the toy study end to end, resume, and retraining with an
injected ``run_training``."""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest
import yaml

from assemblenet.errors import ConfigError
from assemblenet.search.fitness import FitnessResult
from assemblenet.search.store import RunStore
from assemblenet.search.study import (
    RetrainConfig,
    Study,
    StudyConfig,
    load_study_config,
    run_study,
    study_config_from_dict,
    study_markdown,
)
from assemblenet.search.toy import ToyFitness

from .conftest import proxy_overrides

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "search"
TINY = str(CONFIGS / "tiny.yaml")


CLEAN_CODE = {"commit": "0123456789abcdef0123456789abcdef01234567", "dirty": False, "diff_sha256": None,
              "root": "/src", "recorded_at": 0.0}


@pytest.fixture(autouse=True)
def at_repo_root(monkeypatch: pytest.MonkeyPatch) -> None:
    """The shipped study configs name other configs relative to the working directory: the repository root."""
    monkeypatch.chdir(CONFIGS.parents[1])


@pytest.fixture(autouse=True, scope="module")
def clean_code() -> Iterator[None]:
    """The code counts as a clean commit, whatever the state of the checkout running the tests (a developer's
    uncommitted changes would otherwise make every study refuse to start); the tests of the refusal itself use a
    git repository of their own. Module-scoped: the module-scoped study fixtures run studies too."""
    from assemblenet import provenance

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(provenance, "code_provenance", lambda root=None: dict(CLEAN_CODE))
        yield


def study_dict(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"name": "t", "search": TINY, "strategies": ["evolution", "random"], "seeds": [0, 1],
                            "max_evaluations": 6, "bootstrap_samples": 500}
    data.update(changes)
    return data


def make_study(tmp_path: Path, **changes: Any) -> Study:
    config = study_config_from_dict(study_dict(**changes), source="study.yaml")
    return Study(config, output=tmp_path / "out", progress=False)


# ---------------------------------------------------------------------- config
def test_shipped_study_config_loads() -> None:
    config = load_study_config(CONFIGS / "study_tiny.yaml")
    assert config.name == "study_tiny"
    assert config.search_path.resolve() == (CONFIGS / "tiny.yaml").resolve()
    assert config.retrain.enabled is False
    assert set(config.strategies) == {"evolution", "evolution-unguided", "random", "oneshot"}


def test_defaults() -> None:
    config = study_config_from_dict({"search": TINY})
    assert config.strategies == ("evolution", "evolution-unguided", "random", "oneshot")
    assert config.seeds == (0, 1, 2, 3, 4)
    assert (config.max_evaluations, config.bootstrap_samples) == (40, 10000)
    assert config.retrain == RetrainConfig()
    assert config.retrain.seeds == 1 and config.retrain.width_multiplier is None and config.retrain.steps is None


@pytest.mark.parametrize(
    ("data", "key", "words"),
    [
        # unknown keys
        ({"seed": [0]}, "seed", "unknown key"),
        ({"retrain": {"step": 10}}, "retrain.step", "unknown key"),
        # wrong types
        ({"seeds": "0,1"}, "seeds", "expected a list"),
        ({"max_evaluations": 4.5}, "max_evaluations", "expected an integer"),
        ({"retrain": {"enabled": "yes"}}, "retrain.enabled", "expected true or false"),
        ({"retrain": {"steps": "many"}}, "retrain.steps", "expected an integer"),
        ({"retrain": {"overrides": ["data.val=x"]}}, "retrain.overrides", "expected a mapping"),
        # out of range
        ({"max_evaluations": 0}, "max_evaluations", "at least 1"),
        ({"seeds": [0, -1]}, "seeds[1]", "must be at least 0, got -1"),
        ({"seeds": [1, 1]}, "seeds", "distinct"),
        ({"strategies": ["evolution", "hillclimb"]}, "strategies[1]", "got 'hillclimb'"),
        ({"bootstrap_samples": 10}, "bootstrap_samples", "at least 100"),
        ({"retrain": {"seeds": 0}}, "retrain.seeds", "at least 1"),
        ({"retrain": {"width_multiplier": 1.5}}, "retrain.width_multiplier", "(0, 1]"),
        ({"retrain": {"steps": 0}}, "retrain.steps", "at least 1"),
        ({"search": "nowhere.yaml"}, "search", "not found"),
        ({"retrain": {"enabled": True, "config": "nowhere.yaml"}}, "retrain.config", "not found"),
    ],
)
def test_bad_study_config_names_the_file_and_key(data: dict[str, Any], key: str, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        study_config_from_dict(study_dict(**data), source="study.yaml")
    message = str(info.value)
    assert message.startswith(f"study.yaml: key '{key}': "), message
    assert words in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("text", "key", "message"),
    [
        ("retrain: {step: 10}\n", "retrain.step", "unknown key; did you mean 'steps'?"),
        ("max_evaluations: 4.5\n", "max_evaluations", "expected an integer, got 4.5"),
        ("bootstrap_samples: 10\n", "bootstrap_samples", "must be at least 100 for a percentile interval, got 10"),
    ],
)
def test_file_errors_are_one_line_naming_the_file_and_dotted_key(tmp_path: Path, text: str, key: str,
                                                                  message: str) -> None:
    path = tmp_path / "study.yaml"
    path.write_text(f"search: {TINY}\n" + text)
    with pytest.raises(ConfigError) as info:
        load_study_config(path)
    assert str(info.value) == f"{path}: key '{key}': {message}"


def test_study_overrides_and_printed_config(tmp_path: Path) -> None:
    config = load_study_config(CONFIGS / "study_tiny.yaml", ["max_evaluations=3", "seeds=[5, 6]"])
    assert config.max_evaluations == 3 and config.seeds == (5, 6)
    printed = yaml.safe_load(config.to_yaml())
    assert printed["seeds"] == [5, 6] and printed["retrain"]["enabled"] is False and "base_dir" not in printed


def test_search_key_is_required_and_relative_to_the_working_directory(tmp_path: Path, monkeypatch) -> None:
    with pytest.raises(ConfigError, match=r"^study.yaml: key 'search': required"):
        study_config_from_dict({"name": "x"}, source="study.yaml")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "base.yaml").write_text(Path(TINY).read_text())
    path = tmp_path / "sub" / "my_study.yaml"
    path.write_text(yaml.safe_dump({"search": "sub/base.yaml", "seeds": [3]}))
    monkeypatch.chdir(tmp_path)
    config = load_study_config(path)
    assert config.name == "my_study" and config.search_path == tmp_path / "sub" / "base.yaml"
    path.write_text(yaml.safe_dump({"search": "base.yaml"}))  # beside the study file: not where it is looked for
    with pytest.raises(ConfigError, match=r"key 'search': search config not found: base\.yaml \(relative paths "
                                          r"in a config are relative to the working directory: "):
        load_study_config(path)


# ---------------------------------------------------------------------- end to end
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


def test_stage_times_count_invocations_killed_mid_stage(tmp_path: Path) -> None:
    """A study resumed after kills: each killed invocation's stage counts up to its last logged row."""
    config = study_config_from_dict(study_dict(), source="study.yaml")
    study = Study(config, output=tmp_path, progress=False)
    rows = [
        {"event": "stage-started", "time": 100.0, "stage": "search", "invocation": "a"},
        {"event": "run-finished", "time": 160.0, "invocation": "a"},  # then killed
        {"event": "stage-started", "time": 1000.0, "stage": "search", "invocation": "b"},
        {"event": "run-finished", "time": 1030.0, "invocation": "b"},
        {"event": "stage-finished", "time": 1050.0, "stage": "search", "wall_time_s": 50.0, "invocation": "b"},
        {"event": "stage-started", "time": 1050.0, "stage": "retrain", "invocation": "b"},
        {"event": "training-finished", "time": 1150.0, "invocation": "b"},  # killed during retrain
        {"event": "stage-finished", "time": 5000.0, "stage": "recipes", "wall_time_s": 7.0},  # an older log row
    ]
    (tmp_path / "study_log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert study.stage_times() == {"search": 60.0 + 50.0, "retrain": 100.0, "recipes": 7.0}
    assert study.untagged_log_rows() == 1


def test_study_md_says_its_stage_times_undercount_when_old_log_rows_have_no_invocation(
        toy_study: tuple[Study, Any]) -> None:
    study, outcome = toy_study
    assert "undercount" not in study_markdown(outcome.analysis)
    lines = study_markdown({**outcome.analysis, "stage_wall_time_untagged_rows": 3}).splitlines()
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


def dataclass_replace(config: StudyConfig, **changes: Any) -> StudyConfig:
    import dataclasses

    return dataclasses.replace(config, **changes)


# ---------------------------------------------------------------------- retrain
class FakeTraining:
    """Stands in for the engine's run_training: the "test score" is a fixed function of the graph."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    @staticmethod
    def score(graph: Any) -> float:
        return len(graph.edges()) / 100 + sum(len(n.inputs) for n in graph.nodes if hasattr(n, "inputs")) / 1000

    def __call__(self, config: Any, **kwargs: Any) -> Any:
        self.calls.append({"config": config, **kwargs})
        Path(kwargs["output_dir"]).mkdir(parents=True, exist_ok=True)

        class Result:
            metrics = {"metric": self.score(kwargs["graph"]) + kwargs["seed"] * 0.001, "top1": 0.5}

        return Result()


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


def test_retrain_refuses_when_disabled_or_searches_unfinished(tmp_path: Path) -> None:
    study = make_study(tmp_path)
    with pytest.raises(ConfigError, match=r"^study.yaml: key 'retrain.enabled': "):
        study.retrain()
    enabled = make_study(tmp_path, retrain={"enabled": True})
    with pytest.raises(ConfigError, match="run the search stage first"):
        Study(enabled.config, output=tmp_path / "empty", progress=False, run_training=FakeTraining()).retrain()


def test_cli_set_and_print_config(capsys: pytest.CaptureFixture[str]) -> None:
    from assemblenet.cli.main import main

    study = str(CONFIGS / "study_tiny.yaml")
    assert main(["search-study", study, "--set", "max_evaluations=3", "--print-config"]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["max_evaluations"] == 3
    assert main(["search-study", study, "--set", "retrain.seeds=0", "--print-config"]) == 2
    assert capsys.readouterr().err.strip() == (f"assemblenet: error: {study}: key 'retrain.seeds': must be at least "
                                               "1, got 0")


def test_cli_runs_the_shipped_tiny_study(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from assemblenet.cli.main import main

    out = tmp_path / "cli"
    assert main(["search-study", str(CONFIGS / "study_tiny.yaml"), "--output", str(out), "--no-progress",
                 "--stage", "search"]) == 0
    assert not (out / "study.json").exists()
    assert main(["search-study", str(CONFIGS / "study_tiny.yaml"), "--output", str(out), "--no-progress",
                 "--stage", "analyse"]) == 0
    assert capsys.readouterr().out.strip() == str(out / "study.md")
    data = json.loads((out / "study.json").read_text())
    assert set(data["strategies"]) == {"evolution", "evolution-unguided", "random", "oneshot"}
    assert {c["b"] for c in data["comparisons"]} == {"evolution-unguided", "random", "oneshot"}
    assert all(not math.isnan(v) for v in data["strategies"]["oneshot"]["curve"]["mean"])
    assert main(["search-study", str(CONFIGS / "study_tiny.yaml"), "--output", str(out), "--stage", "retrain",
                 "--no-progress"]) == 2  # retrain.enabled is false: a one-line error
    assert "retrain.enabled" in capsys.readouterr().err


def test_baselines_are_trained_like_the_retrained_graphs_and_tabulated(tmp_path: Path) -> None:
    from assemblenet.search.baselines import baseline_graph

    retrain = {"enabled": False, "steps": 5, "overrides": {"data.val.split": "test"}}
    baselines = {"enabled": True, "names": ["rgb_only", "late_fusion"], "seeds": 2}
    config = study_config_from_dict(study_dict(strategies=["random"], seeds=[0], max_evaluations=2,
                                               retrain=retrain, baselines=baselines),
                                    source="study.yaml")
    fake = FakeTraining()
    run_study(config, output=tmp_path / "out", progress=False, run_training=fake)
    assert len(fake.calls) == 4 and {c["max_steps"] for c in fake.calls} == {5}
    assert all(c["overrides"] == {"data.val.split": "test"} for c in fake.calls)
    data = json.loads((tmp_path / "out" / "study.json").read_text())["baselines"]["baselines"]
    space = Study(config, output=tmp_path / "out", progress=False).base.space
    for name in ("rgb_only", "late_fusion"):
        expected = FakeTraining.score(baseline_graph(name, space))
        assert data[name]["scores"] == pytest.approx([expected, expected + 0.001])
    text = (tmp_path / "out" / "study.md").read_text()
    assert "### Fixed wirings" in text and "training seeds 0, 1" in text
    # intervals are shown, and never read as a test by whether they overlap
    assert "no measurable difference" not in text and "intervals overlap" not in text
    assert "highest `" not in text
    fake.calls.clear()
    run_study(config, output=tmp_path / "out", progress=False, run_training=fake)  # resumed: nothing retrained
    assert fake.calls == []


def test_baseline_wirings_keep_the_space_budget() -> None:
    from assemblenet.search.baselines import BASELINES, baseline_graph
    from assemblenet.search.config import SpaceConfig
    from assemblenet.search.space import SearchSpace

    space = SpaceConfig()
    for name in BASELINES:
        graph = baseline_graph(name, space)
        assert graph.channel_budget() == dict(enumerate(space.level_filters))
    assert SearchSpace(space).contains(baseline_graph("late_fusion", space))
    assert SearchSpace(space).contains(baseline_graph("asn50", space))
    rgb = baseline_graph("rgb_only", space)
    assert {n.stem_type.label for n in rgb.nodes if hasattr(n, "stem_type")} == {"rgb"}
    late = baseline_graph("late_fusion", space)
    # Late fusion: the RGB and flow streams meet only at the level-3 node.
    for node in late.nodes[:-1]:
        if hasattr(node, "inputs"):
            kinds = set()
            stack = list(node.inputs)
            while stack:
                k = stack.pop()
                n = late.nodes[k]
                if hasattr(n, "stem_type"):
                    kinds.add(n.stem_type.label)
                else:
                    stack.extend(n.inputs)
            assert len(kinds) == 1


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


# ---------------------------------------------------------------------- issue 20: recipes, choices, noise
def test_recipes_stage_trains_each_candidate_and_auto_picks_the_steadiest(tmp_path: Path) -> None:
    """Each candidate trains every fixed graph with the same seeds and its own steps and lr; ``auto`` picks the
    smallest pooled spread among the recipes whose mean is not measurably lower, and the baselines then train
    with it (in folders of their own, so a recipe never reuses another's result)."""

    class RecipeTraining(FakeTraining):
        # lr 0.05 makes seeds agree (spread 0.001) at the same level; 1200 steps at lr 0.1 spreads them by 0.05
        def __call__(self, config: str | None, **kwargs: Any) -> dict[str, Any]:
            self.calls.append({"config": config, **kwargs})
            lr = kwargs["overrides"].get("optim.lr", 0.1)
            spread = 0.001 if lr == 0.05 else (0.05 if kwargs["max_steps"] == 1200 else 0.02)
            return {"metrics": {"metric": 0.5 + spread * (kwargs["seed"] - 1)}}

    recipes = {"enabled": True, "graphs": ["asn50", "late_fusion"], "seeds": 3,
               "candidates": [{"name": "short", "steps": 6}, {"name": "long", "steps": 1200},
                              {"name": "gentle", "steps": 6, "lr": 0.05}]}
    config = study_config_from_dict(study_dict(
        strategies=["random"], seeds=[0], max_evaluations=2, recipes=recipes,
        retrain={"enabled": False, "steps": 5, "recipe": "auto", "overrides": {"data.val.split": "test"}},
        baselines={"enabled": True, "names": ["rgb_only"], "seeds": 2}), source="study.yaml")
    study = Study(config, output=tmp_path / "out", progress=False, run_training=RecipeTraining())
    with pytest.raises(ConfigError, match="run the recipes stage first"):
        study.retrain_settings()
    fake = RecipeTraining()
    run_study(config, output=tmp_path / "out", progress=False, run_training=fake)
    recipe_calls = fake.calls[:18]
    assert len(fake.calls) == 18 + 2  # 3 recipes x 2 graphs x 3 seeds, then 2 baseline seeds
    assert {(c["max_steps"], c["overrides"].get("optim.lr")) for c in recipe_calls} == \
        {(6, None), (6, 0.05), (1200, None)}
    assert all(c["overrides"]["data.val.split"] == "test" for c in fake.calls)
    data = json.loads((tmp_path / "out" / "study.json").read_text())
    rows = data["recipes"]["candidates"]
    assert rows["gentle"]["pooled_std"] == pytest.approx(0.001)
    assert rows["long"]["pooled_std"] == pytest.approx(0.05)
    assert data["recipes"]["chosen"] == "gentle"
    assert [c["overrides"].get("optim.lr") for c in fake.calls[18:]] == [0.05, 0.05]  # baselines use it
    assert data["baselines"]["recipe"] == "gentle"
    # the baselines train with seeds 3 and 4: the recipe was chosen on seeds 0-2, which are never reported
    assert [c["seed"] for c in fake.calls[18:]] == [3, 4]
    assert (tmp_path / "out" / "baselines" / "rgb_only" / "gentle-seed3" / "result.json").is_file()
    assert not (tmp_path / "out" / "baselines" / "rgb_only" / "gentle-seed0").exists()
    assert data["baselines"]["training_seeds"] == [3, 4]
    assert "Chosen for retraining (`retrain.recipe: auto`): **gentle**" in (tmp_path / "out" / "study.md").read_text()
    fake.calls.clear()
    run_study(config, output=tmp_path / "out", progress=False, run_training=fake)  # resumed: nothing again
    assert fake.calls == []


def test_choose_recipe_never_trades_a_measurably_lower_score_for_agreement() -> None:
    from assemblenet.search.study import choose_recipe

    def row(scores: list[float], std: float, steps: int = 600) -> dict[str, Any]:
        # two fixed graphs, the same 4 training seeds each (so recipes pair by graph and seed)
        graphs = {"asn50": {"scores": scores}, "late_fusion": {"scores": [v + 0.01 for v in scores]}}
        return {"complete": True, "mean": statistics.fmean(scores) + 0.005, "graphs": graphs, "pooled_std": std,
                "steps": steps}

    # "flat" agrees best but scores below the top recipe at every one of the 8 (graph, seed) pairs: the sign-flip
    # test says measurably lower (p = 1/256), so it is not eligible.
    # "long" is the top mean, "base" not measurably below it (its differences go both ways).
    rows = {"base": row([0.30, 0.25, 0.35, 0.31], 0.05), "flat": row([0.10, 0.11, 0.09, 0.10], 0.001),
            "long": row([0.32, 0.24, 0.36, 0.30], 0.03, 1200)}
    assert choose_recipe(rows) == "long"
    rows["long"] = row([0.32, 0.24, 0.36, 0.30], 0.05, 1200)  # equal spread: the cheaper one
    assert choose_recipe(rows) == "base"
    # 0.01 below "long" at every (graph, seed) pair: measurably lower (p = 1/256), although the two recipes'
    # intervals would overlap widely (a paired test sees what overlapping intervals hide)
    rows["base"] = row([0.31, 0.23, 0.35, 0.29], 0.04)
    assert choose_recipe(rows) == "long"
    rows["base"] = {**rows["base"], "complete": False}
    assert choose_recipe(rows) is None


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


# ---------------------------------------------------------------------- issue 27: pre-registration, provenance
from assemblenet.provenance import code_provenance as real_code_provenance  # noqa: E402 (before the fixture patches it)

H1 = {"name": "H1", "statement": "guided beats random", "endpoint": "final_best",
      "comparison": {"a": {"strategy": "evolution"}, "b": {"strategy": "random"}}, "alternative": "greater"}


def with_hypotheses(*hypotheses: dict[str, Any], correction: str = "holm") -> dict[str, Any]:
    return {"correction": correction, "confirmatory": list(hypotheses)}


def test_hypotheses_parse_into_typed_dataclasses_and_change_the_config_hash() -> None:
    from assemblenet.search.study import Arm, Hypothesis, config_hash

    shipped = load_study_config(CONFIGS / "study_compositional.yaml")
    names = [h.name for h in shipped.hypotheses.confirmatory]
    assert names == ["H1", "H2", "H3-asn50", "H3-late-fusion"] and shipped.hypotheses.correction == "holm"
    h1, h2, h3 = shipped.hypotheses.confirmatory[:3]
    assert isinstance(h1, Hypothesis) and h1.comparison.a == Arm(strategy="evolution")
    assert h1.endpoint == h2.endpoint == "rescored_mean" and h1.comparison.paired
    assert h2.comparison.b == Arm(strategy="evolution-unguided")
    assert h3.comparison.b == Arm(wiring="asn50") and not h3.comparison.paired and h3.margin == 0.02
    assert [m for m, _ in h3.members] == ["H3-asn50", "H3-asn50 (equivalence)"]
    tiny = load_study_config(CONFIGS / "study_tiny.yaml")
    assert [h.name for h in tiny.hypotheses.confirmatory] == ["H1", "H2"]
    # the hypotheses are part of the config and its hash
    plain = study_config_from_dict(study_dict(), source="s.yaml")
    declared = study_config_from_dict(study_dict(hypotheses=with_hypotheses(H1)), source="s.yaml")
    assert config_hash(plain) != config_hash(declared)
    assert declared.to_dict()["hypotheses"]["confirmatory"][0]["comparison"]["b"] == {"strategy": "random",
                                                                                       "wiring": None}


@pytest.mark.parametrize(
    ("change", "key", "words"),
    [
        ({"endpoint": "accuracy"}, "hypotheses.confirmatory[0].endpoint", "expected one of"),
        ({"alternative": "bigger"}, "hypotheses.confirmatory[0].alternative", "expected one of"),
        ({"comparison": {"a": {"strategy": "evolution"}, "b": {"strategy": "oneshot"}}},
         "hypotheses.confirmatory[0].comparison.b.strategy", "expected a strategy of the study"),
        ({"comparison": {"a": {"strategy": "evolution"}, "b": {}}}, "hypotheses.confirmatory[0].comparison.b",
         "exactly one of strategy"),
        ({"comparison": {"a": {"strategy": "evolution"}, "b": {"wiring": "i3d"}}},
         "hypotheses.confirmatory[0].comparison.b.wiring", "expected one of baselines.names"),
        ({"comparison": {"a": {"strategy": "evolution"}, "b": {"wiring": "asn50"}}},
         "hypotheses.confirmatory[0].comparison.b.wiring", "needs baselines.enabled"),
        ({"comparison": {"a": {"wiring": "asn50"}, "b": {"strategy": "evolution"}}},
         "hypotheses.confirmatory[0].comparison.a", "must be a strategy"),
        ({"test": "mann_whitney"}, "hypotheses.confirmatory[0].test", "for a paired comparison"),
        ({"alternative": "equivalent"}, "hypotheses.confirmatory[0].margin", "needs a margin"),
        ({"margin": -0.02}, "hypotheses.confirmatory[0].margin", "must be > 0"),
        ({"alpha": 0.7}, "hypotheses.confirmatory[0].alpha", "must be in (0, 0.5)"),
        ({"endpoint": "test_score"}, "hypotheses.confirmatory[0].endpoint", "needs retrain.enabled"),
        ({"name": ""}, "hypotheses.confirmatory[0].name", "must not be empty"),
        ({"metric": "top1"}, "hypotheses.confirmatory[0].metric", "unknown key"),
    ],
)
def test_bad_hypotheses_name_the_file_and_key(change: dict[str, Any], key: str, words: str) -> None:
    with pytest.raises(ConfigError) as error:
        study_config_from_dict(study_dict(hypotheses=with_hypotheses({**H1, **change})), source="study.yaml")
    assert str(error.value).startswith(f"study.yaml: key '{key}'") and words in str(error.value)


def test_a_holm_family_shares_one_alpha_and_names_are_distinct() -> None:
    with pytest.raises(ConfigError, match="key 'hypotheses.correction'.*same alpha"):
        study_config_from_dict(study_dict(hypotheses=with_hypotheses(H1, {**H1, "name": "H2", "alpha": 0.01})),
                               source="s.yaml")
    study_config_from_dict(study_dict(hypotheses=with_hypotheses(H1, {**H1, "name": "H2", "alpha": 0.01},
                                                                 correction="none")), source="s.yaml")
    with pytest.raises(ConfigError, match="names must be distinct"):
        study_config_from_dict(study_dict(hypotheses=with_hypotheses(H1, H1)), source="s.yaml")


def test_rescored_mean_needs_finalist_rescoring(tmp_path: Path) -> None:
    config = study_config_from_dict(study_dict(hypotheses=with_hypotheses({**H1, "endpoint": "rescored_mean"})),
                                    source="s.yaml")
    with pytest.raises(ConfigError, match="hypotheses.confirmatory\\[0\\].endpoint.*finalist re-scoring"):
        Study(config, output=tmp_path / "out", progress=False)


def test_baseline_seeds_are_disjoint_from_the_recipe_seeds() -> None:
    recipes = {"enabled": True, "graphs": ["asn50"], "seeds": 4, "candidates": [{"name": "a", "steps": 5}]}
    config = study_config_from_dict(study_dict(recipes=recipes, baselines={"seeds": 3}), source="s.yaml")
    assert config.recipe_seeds == (0, 1, 2, 3) and config.baseline_seeds == (4, 5, 6)
    assert not set(config.recipe_seeds) & set(config.baseline_seeds)
    assert study_config_from_dict(study_dict(baselines={"seeds": 3}), source="s.yaml").baseline_seeds == (0, 1, 2)
    assert study_config_from_dict(study_dict(recipes=recipes, baselines={"seeds": 2, "first_seed": 10}),
                                  source="s.yaml").baseline_seeds == (10, 11)
    with pytest.raises(ConfigError, match="key 'baselines.first_seed'.*overlap the recipe seeds"):
        study_config_from_dict(study_dict(recipes=recipes, baselines={"seeds": 3, "first_seed": 2}), source="s.yaml")
    shipped = load_study_config(CONFIGS / "study_compositional.yaml")
    assert not set(shipped.recipe_seeds) & set(shipped.baseline_seeds)


def _p_values(text: str) -> list[str]:
    import re

    return re.findall(r"\bp\b[^|\n]{0,12}\d\.\d", text)


def test_an_unfinished_run_keeps_every_confirmatory_p_value_unprinted(tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    """Interim results are not shown: while one run H1 needs is unfinished, study.md, study.json and the console
    carry counts only for it; once it finishes, the p-values and Holm's correction appear."""
    h2 = {**H1, "name": "H2", "alternative": "two-sided", "test": "wilcoxon"}
    config = study_config_from_dict(study_dict(max_evaluations=6, hypotheses=with_hypotheses(H1, h2)),
                                    source="s.yaml")
    out = tmp_path / "out"
    Study(config, output=out, progress=False, fitness=ToyFitness()).run("search")
    # cut random-seed1 short: it has 3 of its 6 evaluations
    state_path = out / "random-seed1" / "state.json"
    state = json.loads(state_path.read_text())
    finished_state = dict(state)
    state["next_index"], state["history"] = 3, state["history"][:3]
    state_path.write_text(json.dumps(state))
    capsys.readouterr()
    analysis = Study(config, output=out, progress=False).analyse()
    confirmatory = analysis["confirmatory"]
    assert not confirmatory["complete"] and confirmatory["pending"] == ["H1", "H2"]
    for member in confirmatory["members"]:
        assert member["status"] == "pending"
        assert not {"p_value", "p_adjusted", "estimate", "ci95", "second_view"} & set(member)
        assert member["progress"] == [{"arm": "evolution", "have": 2, "need": 2, "unit": "runs"},
                                      {"arm": "random", "have": 1, "need": 2, "unit": "runs"}]
    stored = json.loads((out / "study.json").read_text())
    assert "p_value" not in json.dumps(stored["confirmatory"])
    assert stored["comparisons"] == []  # the exploratory test of the same runs waits too
    text = (out / "study.md").read_text()
    confirmatory_text = text[text.index("## Confirmatory results"):text.index("## Exploratory")]
    assert "| H1 | evolution 2/2 runs | random 1/2 runs |" in confirmatory_text
    assert _p_values(confirmatory_text) == []
    assert "waiting for runs to finish (evolution 2/2 runs, random 1/2 runs)" in text
    printed = capsys.readouterr()
    assert _p_values(printed.out + printed.err) == []

    state_path.write_text(json.dumps(finished_state))  # the run finishes
    analysis = Study(config, output=out, progress=False).analyse()
    confirmatory = analysis["confirmatory"]
    assert confirmatory["complete"] and confirmatory["pending"] == []
    h1, h2 = confirmatory["members"]
    finals = {(r["strategy"], r["seed"]): r["final_best"] for r in analysis["runs"]}
    diffs = [finals[("evolution", s)] - finals[("random", s)] for s in (0, 1)]
    assert h1["estimate"] == pytest.approx(statistics.fmean(diffs)) and h1["n_pairs"] == 2
    from assemblenet.search import stats

    assert h1["p_value"] == pytest.approx(stats.paired_permutation_test(diffs).p_value)
    assert h2["p_value"] == pytest.approx(stats.wilcoxon_signed_rank(diffs, alternative="two-sided").p_value)
    assert [h1["p_adjusted"], h2["p_adjusted"]] == pytest.approx(stats.holm([h1["p_value"], h2["p_value"]]))
    assert h1["supported"] == (h1["p_adjusted"] <= 0.05)
    text = (out / "study.md").read_text()
    assert text.index("## Hypotheses (pre-registered)") < text.index("## Confirmatory results") < \
        text.index("## Exploratory")
    assert "| H1 | guided beats random | final_best | `evolution` vs `random` | paired by search seed |" in text
    assert "| H1 | 2 pairs |" in text


def _fake_baselines(study: Study, scores: dict[str, list[float]]) -> None:
    """Write baseline results as the baselines stage would (seeds: the config's baseline seeds)."""
    settings = study.retrain_settings()
    for name, values in scores.items():
        for k, value in zip(study.config.baseline_seeds, values):
            folder = study.output / "baselines" / name / settings.folder_name("", k)
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "result.json").write_text(json.dumps({"score": value}))


def test_a_wiring_hypothesis_with_a_margin_adds_an_equivalence_test_to_the_family(tmp_path: Path) -> None:
    h3 = {"name": "H3", "endpoint": "test_score", "margin": 0.5, "test": "t",
          "comparison": {"a": {"strategy": "evolution"}, "b": {"wiring": "asn50"}}}
    config = study_config_from_dict(study_dict(
        max_evaluations=4, hypotheses=with_hypotheses(H1, h3),
        retrain={"enabled": True, "steps": 3, "seeds": 1}, baselines={"enabled": True, "names": ["asn50"],
                                                                       "seeds": 3}), source="s.yaml")
    study = Study(config, output=tmp_path / "out", progress=False, fitness=ToyFitness(), run_training=FakeTraining())
    study.run("search")
    study.retrain()
    analysis = study.analyse()
    members = {m["member"]: m for m in analysis["confirmatory"]["members"]}
    assert list(members) == ["H1", "H3", "H3 (equivalence)"]
    assert members["H1"]["status"] == "complete"
    assert members["H3"]["status"] == members["H3 (equivalence)"]["status"] == "pending"  # no baselines yet
    assert "p_adjusted" not in members["H1"]  # the correction waits for the whole family
    assert members["H3"]["progress"][1] == {"arm": "wiring asn50", "have": 0, "need": 3, "unit": "training seeds"}
    _fake_baselines(study, {"asn50": [0.40, 0.42, 0.41]})
    analysis = study.analyse()
    members = {m["member"]: m for m in analysis["confirmatory"]["members"]}
    from assemblenet.search import stats

    guided = [e["score"] for e in analysis["retrain"]["entries"] if e["strategy"] == "evolution"]
    assert members["H3"]["values_a"] == pytest.approx(guided) and members["H3"]["values_b"] == [0.40, 0.42, 0.41]
    assert not members["H3"]["paired"]
    assert members["H3"]["p_value"] == pytest.approx(
        stats.t_test(guided, [0.40, 0.42, 0.41], paired=False).p_value)
    tost = stats.equivalence_test(guided, [0.40, 0.42, 0.41], margin=0.5, paired=False, test="t")
    assert members["H3 (equivalence)"]["p_value"] == pytest.approx(tost.p_value)
    raw = [members[m]["p_value"] for m in ("H1", "H3", "H3 (equivalence)")]
    assert [members[m]["p_adjusted"] for m in ("H1", "H3", "H3 (equivalence)")] == pytest.approx(stats.holm(raw))
    text = (study.output / "study.md").read_text()
    assert "| H3 (equivalence) | 2 vs 3 |" in text and "fixed wiring `asn50`" in text


def test_changed_hypotheses_are_refused_once_runs_have_data(tmp_path: Path) -> None:
    config = study_config_from_dict(study_dict(max_evaluations=3, hypotheses=with_hypotheses(H1)), source="s.yaml")
    out = tmp_path / "out"
    Study(config, output=out, progress=False, fitness=ToyFitness()).run("search")
    registration = json.loads((out / "registration.json").read_text())
    assert registration["hypotheses"]["confirmatory"][0]["name"] == "H1"
    assert registration["runs_with_data_before_registration"] == []
    assert registration["provenance"]["commit"] == CLEAN_CODE["commit"]
    changed = dataclass_replace(config, hypotheses=study_config_from_dict(
        study_dict(hypotheses=with_hypotheses({**H1, "alternative": "two-sided"})), source="s.yaml").hypotheses)
    with pytest.raises(ConfigError, match="key 'hypotheses': differ from those registered"):
        Study(changed, output=out, progress=False, fitness=ToyFitness()).run("analyse")
    # other config changes are allowed, and study.md says the config changed since registration
    larger = dataclass_replace(config, bootstrap_samples=600)
    Study(larger, output=out, progress=False).run("analyse")
    assert "The config has changed since registration" in (out / "study.md").read_text()


def test_hypotheses_declared_after_data_are_marked(tmp_path: Path) -> None:
    out = tmp_path / "out"
    plain = study_config_from_dict(study_dict(max_evaluations=3), source="s.yaml")
    Study(plain, output=out, progress=False, fitness=ToyFitness()).run("search")
    (out / "registration.json").unlink()  # a study folder from before registration existed
    late = study_config_from_dict(study_dict(max_evaluations=3, hypotheses=with_hypotheses(H1)), source="s.yaml")
    Study(late, output=out, progress=False).run("analyse")
    registration = json.loads((out / "registration.json").read_text())
    assert len(registration["runs_with_data_before_registration"]) == 4
    assert "**Declared after 4 run(s) already had data" in (out / "study.md").read_text()


def _git_repo(root: Path) -> Path:
    import subprocess

    def git(*args: str) -> None:
        subprocess.run(["git", "-C", str(root), "-c", "user.email=t@example.com", "-c", "user.name=t", *args],
                       check=True, capture_output=True)

    root.mkdir()
    git("init", "-q")
    (root / "code.py").write_text("x = 1\n")
    (root / ".gitignore").write_text("runs/\n")
    git("add", "code.py", ".gitignore")
    git("commit", "-q", "-m", "first")
    return root


@pytest.fixture
def code_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The study's code provenance read from a git repository of the test's own (the real helper, uncached)."""
    import shutil

    from assemblenet import provenance

    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    repo = _git_repo(tmp_path / "repo")
    monkeypatch.setattr(provenance, "code_provenance", lambda root=None: real_code_provenance(root or repo))
    provenance._cached.cache_clear()
    yield repo
    provenance._cached.cache_clear()


def test_provenance_ignores_untracked_and_ignored_files_and_hashes_the_diff(code_in: Path) -> None:
    from assemblenet import provenance

    clean = provenance.git_provenance(code_in)
    assert clean["dirty"] is False and clean["diff_sha256"] is None and len(clean["commit"]) == 40
    (code_in / "runs").mkdir()
    (code_in / "runs" / "result.json").write_text("{}")  # ignored
    (code_in / "notes.txt").write_text("todo")  # untracked
    assert provenance.git_provenance(code_in)["dirty"] is False
    (code_in / "code.py").write_text("x = 2\n")
    dirty = provenance.git_provenance(code_in)
    assert dirty["dirty"] is True and dirty["commit"] == clean["commit"] and len(dirty["diff_sha256"]) == 64
    (code_in / "code.py").write_text("x = 3\n")
    assert provenance.git_provenance(code_in)["diff_sha256"] != dirty["diff_sha256"]
    outside = provenance.git_provenance(code_in.parent)  # not a repository: unknown, no error
    assert outside["commit"] == outside["dirty"] == "unknown"
    assert provenance.describe(outside) == "commit unknown (no git repository)"


def test_a_dirty_tree_is_refused_without_allow_dirty(code_in: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    from assemblenet.cli.main import main

    out = tmp_path / "study"
    args = ["search-study", str(CONFIGS / "study_tiny.yaml"), "--output", str(out), "--no-progress",
            "--set", "max_evaluations=2", "--set", "seeds=[0]", "--set", "strategies=[evolution,random]",
            "--set", "hypotheses.confirmatory=[]"]
    (code_in / "code.py").write_text("x = 2\n")  # a tracked file changed
    assert main(args) == 2
    error = capsys.readouterr().err
    assert error.startswith("assemblenet: error:") and "uncommitted changes" in error and "--allow-dirty" in error
    assert len(error.strip().splitlines()) == 1 and not out.exists()
    assert main(args + ["--allow-dirty"]) == 0
    text = (out / "study.md").read_text()
    assert "uncommitted changes (diff sha256" in text and "run with `--allow-dirty`" in text
    log = [json.loads(line) for line in (out / "study_log.jsonl").read_text().splitlines()]
    started = [row for row in log if row["event"] == "invocation-started"]
    assert started[0]["allow_dirty"] is True and started[0]["provenance"]["dirty"] is True
    # the search records carry the code state too
    manifest = json.loads((out / "evolution-seed0" / "search.json").read_text())
    assert manifest["provenance"]["dirty"] is True and manifest["provenance"]["diff_sha256"]
    # a clean tree (untracked files do not count) needs no flag, and the manifest's history records the new state
    import subprocess

    from assemblenet import provenance

    subprocess.run(["git", "-C", str(code_in), "checkout", "--", "code.py"], check=True)
    (code_in / "scratch.txt").write_text("untracked")
    provenance._cached.cache_clear()  # a new process would look again
    assert main(args) == 0
    text = (out / "study.md").read_text()
    assert "1 of these code states had uncommitted changes" in text  # the earlier invocation is still reported


def test_search_records_store_the_code_provenance(tmp_path: Path) -> None:
    from assemblenet.search.config import load_search_config
    from assemblenet.search.evolution import SearchRunner

    config = load_search_config(TINY).replace(**{"search.max_evaluations": 2})
    SearchRunner(config, run_dir=tmp_path / "run", fitness=ToyFitness(), progress=False).run()
    manifest = json.loads((tmp_path / "run" / "search.json").read_text())
    assert manifest["provenance"]["commit"] == CLEAN_CODE["commit"] and manifest["provenance"]["dirty"] is False
    assert [p["commit"] for p in manifest["provenance_history"]] == [CLEAN_CODE["commit"]]
