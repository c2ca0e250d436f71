"""The search loop: determinism, de-duplication, selection and replacement, strategies, failures, resume."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import pytest

from assemblenet.errors import ConfigError, DataError
from assemblenet.graph.spec import AssembleNetGraph
from assemblenet.search.evolution import SearchError, SearchRunner, derive_trial_seed
from assemblenet.search.executors import SerialExecutor, Trial, TrialOutcome
from assemblenet.search.fitness import FitnessResult, FitnessUnavailableError
from assemblenet.search.mutations import rule_from_config
from assemblenet.search.store import RunStore
from assemblenet.search.toy import ToyFitness

from .conftest import assert_same_sequence, run_sequence, tiny_config

STRATEGIES = ["evolution", "evolution-unguided", "random", "oneshot", "oneshot-attention"]


def _run(tmp_path: Path, name: str, **changes) -> tuple[Path, object]:
    run_dir = tmp_path / name
    summary = SearchRunner(tiny_config(**changes), run_dir=run_dir).run()
    return run_dir, summary


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_strategy_runs_its_budget_without_repeating_a_graph(tmp_path: Path, strategy: str) -> None:
    run_dir, summary = _run(tmp_path, strategy, strategy=strategy, **{"search.max_evaluations": 20})
    records = RunStore(run_dir).read_records()
    assert sorted(records) == list(range(20)) and summary.evaluations == 20
    hashes = [r.graph_hash for r in records.values()]
    assert len(set(hashes)) == len(hashes)
    assert all(r.graph.canonical_hash() == r.graph_hash for r in records.values())
    kinds = {r.mutation["kind"] for r in records.values()}
    expected = {
        "evolution": {"initial", "connection-guided", "dilation", "split", "merge", "random-fallback"},
        "evolution-unguided": {"initial", "connection-matched", "dilation", "split", "merge", "random-fallback"},
        "random": {"random"},
        "oneshot": {"dense", "oneshot-threshold"},
        "oneshot-attention": {"dense", "oneshot-attention"},
    }[strategy]
    assert kinds <= expected
    assert summary.best.fitness == max(r.fitness for r in records.values())


def test_same_seed_same_search_other_seed_other_search(tmp_path: Path) -> None:
    a, _ = _run(tmp_path, "a")
    b, _ = _run(tmp_path, "b")
    c, _ = _run(tmp_path, "c", seed=1)
    assert_same_sequence(run_sequence(a), run_sequence(b), tol=0.0)
    assert [h for h, _ in run_sequence(a)] != [h for h, _ in run_sequence(c)]


def test_trial_seeds_depend_on_search_seed_and_index_only(tmp_path: Path) -> None:
    run_dir, _ = _run(tmp_path, "run", seed=5)
    for index, record in RunStore(run_dir).read_records().items():
        assert record.seed == derive_trial_seed(5, index)
    assert len({derive_trial_seed(5, i) for i in range(100)}) == 100
    assert derive_trial_seed(5, 3) != derive_trial_seed(6, 3)


def test_evolution_children_descend_from_consumed_records_with_guided_pruning(tmp_path: Path) -> None:
    config = tiny_config(**{"search.max_evaluations": 30})
    run_dir = tmp_path / "run"
    SearchRunner(config, run_dir=run_dir).run()
    records = RunStore(run_dir).read_records()
    batch = config.search.batch_size
    guided = 0
    for index, record in records.items():
        if index < config.search.population_size:
            assert record.parent is None and record.mutation["kind"] == "initial"
            continue
        if record.parent is None:
            continue
        # A parent was consumed before its child's batch was proposed.
        assert record.parent < index - index % batch
        if record.mutation["kind"] == "connection-guided":
            guided += 1
            parent = records[record.parent]
            expected = rule_from_config(config.mutation).select(parent.graph, parent.learned_weights,
                                                     extra=record.mutation.get("extra_pruned", 0))
            # Pruned plus spared (the kept out-edge of a node alone at its level) is exactly the rule's choice.
            done = [*record.mutation["pruned"], *record.mutation.get("spared", [])]
            assert sorted(map(tuple, done)) == sorted(expected)
    assert guided > 0


def test_matched_control_prunes_as_many_edges_at_the_same_nodes(tmp_path: Path) -> None:
    config = tiny_config(strategy="evolution-unguided", **{"search.max_evaluations": 30})
    run_dir = tmp_path / "run"
    SearchRunner(config, run_dir=run_dir).run()
    records = RunStore(run_dir).read_records()
    matched = [r for r in records.values() if r.mutation["kind"] == "connection-matched"]
    assert matched
    differs = 0
    for record in matched:
        parent = records[record.parent]
        guided = rule_from_config(config.mutation).select(parent.graph, parent.learned_weights,
                                               extra=record.mutation.get("extra_pruned", 0))
        pruned = [tuple(e) for e in [*record.mutation["pruned"], *record.mutation.get("spared", [])]]
        assert sorted(map(tuple, record.mutation["guided_would_prune"])) == sorted(guided)
        assert sorted(t for _, t in pruned) == sorted(t for _, t in guided)  # same count at each node
        assert all(parent.graph.predecessors(t) and s in parent.graph.predecessors(t) for s, t in pruned)
        differs += sorted(pruned) != sorted(guided)
    assert differs > 0  # the choice within a node is random, not the guided one


@pytest.mark.parametrize("strategy", ["evolution", "evolution-unguided"])
def test_children_follow_the_configured_mutation_mix(tmp_path: Path, strategy: str) -> None:
    config = tiny_config(strategy=strategy, **{"search.max_evaluations": 28, "search.population_size": 8})
    run_dir = tmp_path / "run"
    SearchRunner(config, run_dir=run_dir).run()
    state = RunStore(run_dir).read_state()
    counts = state["mutation_counts"]
    children = 28 - 8 - counts.get("random-fallback", 0)
    connection = sum(v for k, v in counts.items() if k.startswith("connection"))
    assert sum(counts.values()) == 28 and counts["initial"] == 8
    # Kinds follow the configured mix within one child, and none silently became another kind.
    assert abs(connection - children * config.mutation.probabilities["connection"]) <= 1
    records = RunStore(run_dir).read_records().values()
    assert not any("fallback_from" in r.mutation for r in records)


@pytest.mark.parametrize("replacement", ["aging", "worst"])
def test_population_replacement(tmp_path: Path, replacement: str) -> None:
    run_dir, _ = _run(tmp_path, replacement, **{"search.replacement": replacement, "search.max_evaluations": 18})
    state = RunStore(run_dir).read_state()
    records = RunStore(run_dir).read_records()
    population = state["population"]
    assert len(population) == 6
    if replacement == "aging":
        assert population == list(range(12, 18))
    else:
        ranked = sorted(records.values(), key=lambda r: (r.sort_fitness, r.index), reverse=True)
        assert sorted(population) == sorted(r.index for r in ranked[:6])
    history = state["history"]
    assert [row["index"] for row in history] == list(range(18))
    bests = [row["best_fitness"] for row in history]
    assert bests == sorted(bests) and bests[-1] == max(r.fitness for r in records.values())


def test_oneshot_thresholds_each_dense_graph(tmp_path: Path) -> None:
    run_dir, _ = _run(tmp_path, "oneshot", strategy="oneshot", **{"search.max_evaluations": 12})
    records = RunStore(run_dir).read_records()
    thresholded = [r for r in records.values() if r.mutation["kind"] == "oneshot-threshold"]
    assert thresholded
    for record in thresholded:
        parent = records[record.parent]
        assert parent.mutation["kind"] == "dense"
        weak = rule_from_config(tiny_config().mutation).select(parent.graph, parent.learned_weights)
        done = [*record.mutation["pruned"], *record.mutation.get("spared", [])]
        assert sorted(map(tuple, done)) == sorted(weak)
        assert len(record.graph.edges()) < len(parent.graph.edges())


def test_guided_evolution_beats_baselines_on_the_toy_benchmark(tmp_path: Path) -> None:
    # The asn50 space, equal budgets; mean best fitness over seeds, no hard-coded values.
    finals: dict[str, list[float]] = {}
    for strategy in ("evolution", "evolution-unguided", "random"):
        for seed in range(3):
            config = tiny_config(strategy=strategy, seed=seed, **{
                "space": {},  # the default space: asn50's
                "search.max_evaluations": 30, "search.population_size": 8,
            })
            summary = SearchRunner(config, run_dir=tmp_path / f"{strategy}-{seed}").run()
            finals.setdefault(strategy, []).append(summary.best.fitness)
    mean = {k: statistics.fmean(v) for k, v in finals.items()}
    assert mean["evolution"] > mean["evolution-unguided"]
    assert mean["evolution"] > mean["random"]


class _Interrupting:
    """Runs trials in-process and raises after ``limit`` outcomes, like a kill in the middle of a batch."""

    name = "local"

    def __init__(self, fitness, limit: int) -> None:
        self.inner = SerialExecutor(fitness)
        self.limit = limit

    def run(self, trials: Sequence[Trial]) -> Iterator[TrialOutcome]:
        for outcome in self.inner.run(trials):
            if self.limit == 0:
                raise KeyboardInterrupt
            self.limit -= 1
            yield outcome

    def close(self) -> None:
        pass


@pytest.mark.parametrize("strategy", ["evolution", "oneshot"])
def test_interrupted_search_resumes_to_the_same_result(tmp_path: Path, strategy: str) -> None:
    changes = {"strategy": strategy, "search.batch_size": 3, "search.max_evaluations": 20}
    reference, _ = _run(tmp_path, "reference", **changes)
    config = tiny_config(**changes)
    run_dir = tmp_path / "interrupted"
    for limit in (7, 5):  # interrupt twice, each time inside a batch
        with pytest.raises(KeyboardInterrupt):
            SearchRunner(config, run_dir=run_dir, executor=_Interrupting(ToyFitness(), limit)).run()
    finished_before = {i: r.finished_at for i, r in RunStore(run_dir).read_records().items()}
    assert len(finished_before) == 12
    SearchRunner(config, run_dir=run_dir).run()
    after = RunStore(run_dir).read_records()
    assert {i: after[i].finished_at for i in finished_before} == finished_before  # nothing re-run
    assert_same_sequence(run_sequence(run_dir), run_sequence(reference), tol=0.0)
    reference_state, resumed_state = RunStore(reference).read_state(), RunStore(run_dir).read_state()
    assert resumed_state["rng"] == reference_state["rng"]
    assert resumed_state["population"] == reference_state["population"]
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 20


def test_budget_can_grow_on_resume(tmp_path: Path) -> None:
    reference, _ = _run(tmp_path, "reference", **{"search.max_evaluations": 16})
    run_dir = tmp_path / "grown"
    SearchRunner(tiny_config(**{"search.max_evaluations": 10}), run_dir=run_dir).run()
    SearchRunner(tiny_config(**{"search.max_evaluations": 16}), run_dir=run_dir).run()
    assert_same_sequence(run_sequence(run_dir), run_sequence(reference), tol=0.0)


def test_resume_with_another_config_is_refused(tmp_path: Path) -> None:
    run_dir, _ = _run(tmp_path, "run", **{"search.max_evaluations": 4})
    with pytest.raises(ConfigError, match="different config.*mutation.prune_threshold"):
        SearchRunner(tiny_config(**{"mutation.prune_threshold": 0.3}), run_dir=run_dir).run()


@dataclass(frozen=True)
class _FlakyFitness:
    """Fails (raises, or returns NaN) on some graphs, deterministically."""

    requires_torch = False

    def __call__(self, graph: AssembleNetGraph, *, seed: int, workdir: str | None = None) -> FitnessResult:
        marker = int(graph.canonical_hash()[:2], 16) % 4
        if marker == 0:
            raise RuntimeError("training diverged")
        if marker == 1:
            return FitnessResult(float("nan"))
        return ToyFitness()(graph, seed=seed)


def test_failed_trials_are_recorded_and_never_selected_over_successes(tmp_path: Path) -> None:
    config = tiny_config(**{"search.max_evaluations": 24, "search.max_consecutive_failures": 24})
    run_dir = tmp_path / "run"
    summary = SearchRunner(config, run_dir=run_dir, fitness=_FlakyFitness()).run()
    records = RunStore(run_dir).read_records()
    failed = [r for r in records.values() if not r.ok]
    assert failed and len(failed) < len(records)
    assert any("training diverged" in r.error for r in failed)
    assert any("non-finite fitness" in r.error for r in failed)
    assert summary.best.ok
    # Reports and best graph use successes only.
    assert summary.best.fitness == max(r.fitness for r in records.values() if r.ok)


def test_too_many_failures_in_a_row_stop_the_search(tmp_path: Path) -> None:
    @dataclass(frozen=True)
    class AlwaysFails:
        def __call__(self, graph, *, seed, workdir=None):
            raise RuntimeError("out of memory")

    config = tiny_config(**{"search.max_consecutive_failures": 3})
    with pytest.raises(SearchError,
                       match=r"4 fitness runs failed in a row \(search.max_consecutive_failures=3\).*out of memory"):
        SearchRunner(config, run_dir=tmp_path / "run", fitness=AlwaysFails()).run()
    assert len(RunStore(tmp_path / "run").read_records()) == 4  # two full batches were recorded


@pytest.mark.parametrize("error", [FitnessUnavailableError, ConfigError, DataError])
def test_setup_errors_stop_the_search_at_once(tmp_path: Path, error: type) -> None:
    @dataclass(frozen=True)
    class Broken:
        def __call__(self, graph, *, seed, workdir=None):
            raise error("needs assemblenet.engine.run_training")

    with pytest.raises(FitnessUnavailableError, match=f"{error.__name__}: needs assemblenet.engine.run_training"):
        SearchRunner(tiny_config(), run_dir=tmp_path / "run", fitness=Broken()).run()
    assert RunStore(tmp_path / "run").read_records() == {}


def test_small_space_is_exhausted_without_crashing(tmp_path: Path) -> None:
    changes = {
        "space.stems": ["rgb"], "space.stem_dilations": [1], "space.dilations": [1],
        "space.nodes_per_level": [1, 1, 1, 1], "space.max_nodes_per_level": [1, 1, 1, 1],
        "space.level_filters": [16, 16, 16, 16], "space.filter_quantum": 8,
        "search.max_evaluations": 200, "search.population_size": 4, "search.tournament_size": 2,
    }
    run_dir, summary = _run(tmp_path, "run", **changes)
    assert summary.exhausted and 1 < summary.evaluations < 200
    hashes = [h for h, _ in run_sequence(run_dir)]
    assert len(set(hashes)) == len(hashes) == summary.evaluations
    # A resumed exhausted search does nothing more.
    again = SearchRunner(tiny_config(**changes), run_dir=run_dir).run()
    assert again.evaluations == summary.evaluations


def test_process_pool_matches_in_process(tmp_path: Path) -> None:
    serial, _ = _run(tmp_path, "serial", **{"search.max_evaluations": 8})
    pooled, _ = _run(tmp_path, "pooled", **{"search.max_evaluations": 8, "executor.workers": 2})
    assert_same_sequence(run_sequence(pooled), run_sequence(serial), tol=1e-12)


def test_best_graph_files_carry_learned_weights(tmp_path: Path) -> None:
    from assemblenet.graph import load_graph

    run_dir, summary = _run(tmp_path, "run")
    best_yaml, best_json = load_graph(run_dir / "best.yaml"), load_graph(run_dir / "best_official.json")
    assert best_yaml.canonical_hash() == best_json.canonical_hash() == summary.best.graph_hash
    assert best_yaml.canonical_hash(include_weights=True) == best_json.canonical_hash(include_weights=True)
    for target, node in enumerate(best_yaml.nodes):
        if hasattr(node, "inputs") and len(node.inputs) > 1:
            assert node.edge_weights == pytest.approx(
                [summary.best.learned_weights[(s, target)] for s in node.inputs])


class _MeasuringToy:
    """The toy fitness plus connection contributions that rank edges opposite to the learned weights, so a
    rule reading the wrong signal prunes other edges."""

    def __init__(self) -> None:
        self.inner = ToyFitness(noise=0.01)

    def __call__(self, graph: AssembleNetGraph, *, seed: int, workdir: str | None = None) -> FitnessResult:
        result = self.inner(graph, seed=seed, workdir=workdir)
        inverse = {edge: 1.0 / weight for edge, weight in result.learned_weights.items()}
        return FitnessResult(fitness=result.fitness, learned_weights=result.learned_weights, metrics=result.metrics,
                             contributions=inverse)


@pytest.mark.parametrize("strategy", ["evolution", "oneshot"])
def test_prune_signal_contribution_prunes_by_the_measured_contributions(tmp_path: Path, strategy: str) -> None:
    config = tiny_config(strategy=strategy, **{"search.max_evaluations": 24, "mutation.prune_signal": "contribution"})
    assert config.fingerprint()["mutation"]["prune_signal"] == "contribution"
    assert "prune_signal" not in tiny_config().fingerprint()["mutation"]  # old folders still resume
    run_dir = tmp_path / "run"
    SearchRunner(config, run_dir=run_dir, fitness=_MeasuringToy()).run()
    records = RunStore(run_dir).read_records()
    rule = rule_from_config(config.mutation)
    checked = 0
    for record in records.values():
        if record.mutation["kind"] not in ("connection-guided", "oneshot-threshold"):
            continue
        parent = records[record.parent]
        assert parent.contributions  # stored with the record
        expected = rule.select(parent.graph, parent.contributions, extra=record.mutation.get("extra_pruned", 0))
        by_weight = rule.select(parent.graph, parent.learned_weights, extra=record.mutation.get("extra_pruned", 0))
        done = [*record.mutation["pruned"], *record.mutation.get("spared", [])]
        assert sorted(map(tuple, done)) == sorted(expected) != sorted(by_weight)
        checked += 1
    assert checked > 0


def test_prune_signal_contribution_without_contributions_stops_with_one_line(tmp_path: Path) -> None:
    config = tiny_config(**{"search.max_evaluations": 24, "mutation.prune_signal": "contribution"})
    with pytest.raises(FitnessUnavailableError, match="train.contribution_batches"):
        SearchRunner(config, run_dir=tmp_path / "run", fitness=ToyFitness()).run()
    with pytest.raises(ConfigError, match="prune_signal.*needs prune_rule 'relative'"):
        tiny_config(**{"mutation.prune_signal": "contribution", "mutation.prune_rule": "absolute"})
    with pytest.raises(ConfigError, match="mutation.prune_signal"):
        tiny_config(**{"mutation.prune_signal": "gradient"})
