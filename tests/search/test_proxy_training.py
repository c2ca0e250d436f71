"""The proxy-training fitness through the engine's real training loop, on a tiny synthetic set."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from assemblenet.search.evolution import SearchRunner
from assemblenet.search.fitness import build_fitness
from assemblenet.search.mutations import rule_from_config
from assemblenet.search.store import RunStore

from .conftest import proxy_overrides, tiny_config


@pytest.fixture(scope="module")
def synthetic_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from assemblenet.data import make_synthetic  # test setup only; the search itself goes through the engine

    root = tmp_path_factory.mktemp("synthetic")
    make_synthetic(root, num_videos=12, num_classes=3, size=32, num_frames=8, progress=False)
    return root


def test_proxy_training_search_records_metric_and_learned_weights(tmp_path: Path, synthetic_root: Path) -> None:
    overrides = proxy_overrides(synthetic_root)
    config = tiny_config(**{
        "fitness": {"kind": "proxy-training", "steps": 2, "overrides": overrides},
        "search.max_evaluations": 4, "search.population_size": 2, "search.tournament_size": 1,
    })
    run_dir = tmp_path / "run"
    SearchRunner(config, run_dir=run_dir).run()
    records = RunStore(run_dir).read_records()
    assert sorted(records) == [0, 1, 2, 3]
    for record in records.values():
        assert record.ok, record.error
        assert 0.0 <= record.fitness <= 1.0 and record.metrics["metric"] == record.fitness
        assert set(record.learned_weights) == {(e.source, e.target) for e in record.graph.edges()}
        assert record.attention_weights == {}  # no peer attention, nothing learned
        for (source, target), weight in record.learned_weights.items():
            if len(record.graph.predecessors(target)) == 1:
                assert weight == 1.0
            else:
                assert 0.0 < weight < 1.0
    # The same graph and seed give the same fitness and weights (what resume and executors rely on).
    again = build_fitness(config)(records[0].graph, seed=records[0].seed)
    assert again.fitness == pytest.approx(records[0].fitness, abs=1e-6)
    for edge, weight in records[0].learned_weights.items():
        assert again.learned_weights[edge] == pytest.approx(weight, abs=1e-5)


def test_proxy_fitness_builds_its_datasets_once_per_process(synthetic_root: Path, monkeypatch) -> None:
    from assemblenet.engine import datasets
    from assemblenet.search import fitness as fitness_module
    from assemblenet.search.space import SearchSpace

    overrides = proxy_overrides(synthetic_root)
    config = tiny_config(**{"fitness": {"kind": "proxy-training", "steps": 1, "overrides": overrides}})
    built: list[str] = []
    real_build_split = datasets.build_split
    monkeypatch.setattr(datasets, "build_split", lambda cfg, split: built.append(split) or real_build_split(cfg, split))
    monkeypatch.setattr(fitness_module, "_DATASET_CACHE", {})
    fitness = build_fitness(config)
    space = SearchSpace(config.space)
    rng = random.Random(0)
    first = fitness(space.sample(rng), seed=1)
    second = fitness(space.sample(rng), seed=2)
    assert built == ["train", "val"]  # the second candidate reused the first one's datasets
    assert 0.0 <= first.fitness <= 1.0 and 0.0 <= second.fitness <= 1.0
    # Another data config is another key: the cache rebuilds rather than serving the wrong set.
    other = build_fitness(tiny_config(**{"fitness": {"kind": "proxy-training", "steps": 1,
                                                     "overrides": {**overrides, "data.num_frames": 2}}}))
    other(space.sample(rng), seed=3)
    assert built == ["train", "val", "train", "val"]


def test_oneshot_attention_trains_peer_attention_and_reads_off_each_nodes_strongest_peer(
    tmp_path: Path, synthetic_root: Path
) -> None:
    overrides = {**proxy_overrides(synthetic_root), "model.attention_mode": "peer"}
    config = tiny_config(strategy="oneshot-attention", **{
        "fitness": {"kind": "proxy-training", "steps": 2, "overrides": overrides},
        "search.max_evaluations": 2, "search.batch_size": 1, "search.population_size": 2,
        "search.tournament_size": 1,
        # prune nothing (sigmoid weights stay near 0.5 in 2 steps), so the derived graph keeps the dense wiring
        "mutation.prune_rule": "absolute", "mutation.prune_threshold": 0.01, "mutation.min_pruned": 0,
    })
    run_dir = tmp_path / "run"
    SearchRunner(config, run_dir=run_dir).run()
    records = RunStore(run_dir).read_records()
    dense, derived = records[0], records[1]
    assert dense.ok and derived.ok, (dense.error, derived.error)
    assert dense.mutation["kind"] == "dense" and derived.mutation["kind"] == "oneshot-attention"
    for record in (dense, derived):
        # Every connection learned a softmax over exactly its target's attention sources.
        assert set(record.attention_weights) == {(e.source, e.target) for e in record.graph.edges()}
        for (_, target), peers in record.attention_weights.items():
            assert sorted(peers) == sorted(record.graph.attention_sources(target))
            assert sum(peers.values()) == pytest.approx(1.0, abs=1e-5)
    # The derived graph's nodes attend to the dense run's strongest peer (mean over the node's connections).
    assert derived.mutation["thresholded"] is False and derived.graph.edges() == dense.graph.edges()
    for target in dense.graph.block_indices:
        means: dict[int, list[float]] = {}
        for (_, t), peers in dense.attention_weights.items():
            if t == target:
                for peer, weight in peers.items():
                    means.setdefault(peer, []).append(weight)
        strongest = max(means, key=lambda p: (sum(means[p]) / len(means[p]), -p))
        assert derived.graph.nodes[target].attention_sources == (strongest,)


def test_contribution_signal_reads_what_the_real_proxy_measures(tmp_path: Path, synthetic_root: Path) -> None:
    from assemblenet.errors import ConfigError

    overrides = proxy_overrides(synthetic_root)
    changes = {"search.max_evaluations": 4, "search.population_size": 2, "search.tournament_size": 1,
               "mutation.prune_signal": "contribution", "mutation.probabilities": {"connection": 1.0}}
    with pytest.raises(ConfigError, match="train.contribution_batches"):
        build_fitness(tiny_config(fitness={"kind": "proxy-training", "steps": 1, "overrides": overrides}, **changes))
    measuring = {**overrides, "train.contribution_batches": 1}
    config = tiny_config(fitness={"kind": "proxy-training", "steps": 2, "overrides": measuring}, **changes)
    run_dir = tmp_path / "run"
    SearchRunner(config, run_dir=run_dir).run()
    records = RunStore(run_dir).read_records()
    for record in records.values():
        assert record.ok, record.error
        assert set(record.contributions) == set(record.learned_weights)
        assert all(value > 0 for value in record.contributions.values())
    children = [r for r in records.values() if r.mutation["kind"] == "connection-guided"]
    assert children
    rule = rule_from_config(config.mutation)
    for child in children:
        parent = records[child.parent]
        expected = rule.select(parent.graph, parent.contributions, extra=child.mutation.get("extra_pruned", 0))
        assert sorted(map(tuple, [*child.mutation["pruned"], *child.mutation.get("spared", [])])) == sorted(expected)
