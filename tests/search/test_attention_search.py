"""Searching AssembleNet++ attention sources: the one-shot read-off, the oneshot-attention strategy, the
``sampled`` attention space and the ``attention`` mutation, and the records that carry learned attention."""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assemblenet.errors import ConfigError
from assemblenet.graph.spec import AssembleNetGraph, BlockNode, StemNode, StemType
from assemblenet.search.attention import attention_per_node, strongest_peers
from assemblenet.search.config import SpaceConfig
from assemblenet.search.evolution import SearchRunner
from assemblenet.search.fitness import FitnessResult, build_fitness
from assemblenet.search.mutations import (
    attention_mutation,
    merge_mutation,
    mutate,
    read_off_attention,
    split_mutation,
)
from assemblenet.search.space import SearchSpace
from assemblenet.search.store import EvaluationRecord, RunStore
from assemblenet.search.toy import ToyFitness

from .conftest import run_sequence, tiny_config


def _graph() -> AssembleNetGraph:
    """rgb(0), flow(1); level 0: 2, 3; level 1: 4 reads 0, 2, 3; level 2: 5 reads 4; level 3: 6 reads 1, 5."""
    return AssembleNetGraph((
        StemNode(StemType.RGB), StemNode(StemType.FLOW),
        BlockNode(0, (0, 1), 16), BlockNode(0, (0,), 16),
        BlockNode(1, (0, 2, 3), 32, spatial_stride=2),
        BlockNode(2, (4,), 32, spatial_stride=2),
        BlockNode(3, (1, 5), 64, spatial_stride=2),
    ))


# ---------------------------------------------------------------------- the read-off
def test_read_off_keeps_each_nodes_strongest_peers_by_mean_over_its_connections() -> None:
    graph = _graph()
    attention = {
        (0, 2): {0: 0.3, 1: 0.7}, (1, 2): {0: 0.4, 1: 0.6},          # node 2: flow (1)
        (0, 3): {0: 0.2, 1: 0.8},                                    # node 3: flow (1)
        # node 4: peer 2 wins one connection by far, peer 3 two by a little; the means decide (2: 0.5, 3: 0.4)
        (0, 4): {0: 0.1, 1: 0.1, 2: 0.3, 3: 0.5}, (2, 4): {0: 0.0, 1: 0.1, 2: 0.4, 3: 0.5},
        (3, 4): {0: 0.0, 1: 0.0, 2: 0.8, 3: 0.2},
        (4, 5): {0: 0.05, 1: 0.05, 2: 0.1, 3: 0.6, 4: 0.2},              # node 5: 3
        # node 6: 2 and 4 tie at 0.3 (3: 0.2, 5: 0.1)
        (1, 6): {0: 0.1, 1: 0.1, 2: 0.4, 3: 0.2, 4: 0.2, 5: 0.0},
        (5, 6): {0: 0.0, 1: 0.0, 2: 0.2, 3: 0.2, 4: 0.4, 5: 0.2},
    }
    result = read_off_attention(graph, attention, top_k=1)
    assert result is not None and result.mutation.kind == "attention-readoff"
    assert [node.attention_sources for node in result.graph.nodes[2:]] == [(1,), (1,), (2,), (3,), (2,)]
    # Only the attention sources changed: the wiring is the graph's.
    assert [getattr(n, "inputs", None) for n in result.graph.nodes] == [getattr(n, "inputs", None) for n in graph.nodes]

    two = read_off_attention(graph, attention, top_k=2)
    assert two.graph.nodes[4].attention_sources == (2, 3)
    assert two.graph.nodes[6].attention_sources == (2, 4)  # the tie goes to the lower index first
    details = {node: peers for node, peers, _ in two.mutation.details["attention_sources"]}
    assert details == {2: [1, 0], 3: [1, 0], 4: [2, 3], 5: [3, 4], 6: [2, 4]}  # strongest first


def test_read_off_ignores_connections_and_peers_the_graph_does_not_have() -> None:
    graph = _graph()
    # (9, 9) is no connection; peer 5 is not a candidate of node 4 (a level-2 node)
    attention = {(9, 9): {0: 1.0}, (0, 4): {5: 0.9, 0: 0.1}, (2, 4): {5: 0.9, 3: 0.1}}
    result = read_off_attention(graph, attention)
    assert result.graph.nodes[4].attention_sources == (0,)  # 0 and 3 tie at 0.1 -> the lower index
    assert all(result.graph.nodes[i].attention_sources is None for i in (2, 3, 5, 6))
    assert read_off_attention(graph, {}) is None
    assert strongest_peers({7: 0.2, 3: 0.5, 4: 0.5}, 2) == [3, 4]


# ---------------------------------------------------------------------- the strategy, with a fake fitness
@dataclass(frozen=True)
class PreferLastPeer:
    """A fake fitness: every connection attends most to its target's last attention source; connection weights
    are all 0.9 except ``weak`` edges (0.05), which the prune rule condemns."""

    weak: tuple[tuple[int, int], ...] = ()

    requires_torch = False

    def __call__(self, graph: AssembleNetGraph, *, seed: int, workdir: str | None = None) -> FitnessResult:
        attention = {}
        for edge in graph.edges():
            peers = graph.attention_sources(edge.target)
            attention[(edge.source, edge.target)] = {p: (0.6 if p == peers[-1] else 0.4 / max(1, len(peers) - 1))
                                                     for p in peers}
        weights = {(e.source, e.target): (0.05 if (e.source, e.target) in self.weak else 0.9) for e in graph.edges()}
        return FitnessResult(fitness=0.5 + 0.01 * len(weights) / 100, learned_weights=weights,
                             attention_weights=attention)


def test_oneshot_attention_evaluates_the_dense_graph_with_its_strongest_peers(tmp_path: Path) -> None:
    config = tiny_config(strategy="oneshot-attention", **{"search.max_evaluations": 4, "search.batch_size": 1,
                                                         "mutation.min_pruned": 0})
    SearchRunner(config, run_dir=tmp_path / "run", fitness=PreferLastPeer()).run()
    records = RunStore(tmp_path / "run").read_records()
    assert [records[i].mutation["kind"] for i in range(4)] == ["dense", "oneshot-attention"] * 2
    for dense_index in (0, 2):
        dense, derived = records[dense_index], records[dense_index + 1]
        assert dense.graph.has_attention_sources is False and len(dense.graph.edges()) == _all_edges(dense.graph)
        assert derived.parent == dense_index and derived.mutation["thresholded"] is False  # nothing was weak
        # Same wiring; every node attends to its last candidate only.
        assert [n.inputs for n in derived.graph.nodes[2:]] == [n.inputs for n in dense.graph.nodes[2:]]
        for index in derived.graph.block_indices:
            assert derived.graph.nodes[index].attention_sources == (dense.graph.attention_candidates(index)[-1],)
        assert set(derived.attention_weights) == {(e.source, e.target) for e in derived.graph.edges()}


def test_oneshot_attention_thresholds_the_connections_too(tmp_path: Path) -> None:
    config = tiny_config(strategy="oneshot-attention", **{"search.max_evaluations": 2, "search.batch_size": 1,
                                                         "mutation.min_pruned": 0})
    dense = SearchSpace(config.space).dense(random.Random(0))
    output = dense.output_indices[0]
    weak = ((0, output),)  # the RGB stem -> output edge; the stem keeps its other consumers
    SearchRunner(config, run_dir=tmp_path / "run", fitness=PreferLastPeer(weak=weak)).run()
    records = RunStore(tmp_path / "run").read_records()
    dense, derived = records[0], records[1]
    assert derived.mutation["thresholded"] is True and derived.mutation["pruned"] == [list(weak[0])]
    expected_edges = {(e.source, e.target) for e in dense.graph.edges()} - set(weak)
    assert {(e.source, e.target) for e in derived.graph.edges()} == expected_edges
    for index in derived.graph.block_indices:
        assert derived.graph.nodes[index].attention_sources == (dense.graph.attention_candidates(index)[-1],)


def _all_edges(graph: AssembleNetGraph) -> int:
    return sum(len(graph.attention_candidates(i)) for i in graph.block_indices)  # candidates = allowed inputs


def test_oneshot_attention_best_graph_is_written_in_our_format_only(tmp_path: Path) -> None:
    config = tiny_config(strategy="oneshot-attention", **{"search.max_evaluations": 4})
    run_dir = tmp_path / "run"
    SearchRunner(config, run_dir=run_dir).run()  # the toy fitness learns attention too
    records = RunStore(run_dir).read_records()
    best = max(records.values(), key=lambda r: (r.fitness, -r.index))
    from assemblenet.graph import load_graph

    saved = load_graph(run_dir / "best.yaml")
    assert saved.canonical_hash() == best.graph_hash
    assert (run_dir / "best_official.json").is_file() == (not best.graph.has_attention_sources)


def test_attention_strategy_with_a_proxy_without_peer_attention_fails_at_config_time() -> None:
    proxy = {"kind": "proxy-training", "steps": 1, "overrides": {"model.depth": 26}}
    with pytest.raises(ConfigError, match="model.attention_mode: peer"):
        build_fitness(tiny_config(strategy="oneshot-attention", fitness=proxy))
    with pytest.raises(ConfigError, match="space.attention_sources='sampled'"):
        build_fitness(tiny_config(**{"space.attention_sources": "sampled", "fitness": proxy}))
    build_fitness(tiny_config(fitness=proxy))  # searching no attention needs none
    peer = {**proxy, "overrides": {"model.depth": 26, "model.attention_mode": "peer"}}
    build_fitness(tiny_config(strategy="oneshot-attention", fitness=peer))


# ---------------------------------------------------------------------- the space and the attention mutation
SAMPLED = SearchSpace(SpaceConfig(stems=("rgb", "flow"), dilations=(1, 2, 4), nodes_per_level=(2, 2, 1, 1),
                                  max_nodes_per_level=(4, 4, 2, 2), level_filters=(64, 128, 256, 512),
                                  filter_quantum=16, attention_sources="sampled"))


def test_sampled_space_gives_every_block_a_random_non_empty_subset_of_its_candidates() -> None:
    rng = random.Random(0)
    sizes = set()
    for _ in range(20):
        graph = SAMPLED.sample(rng)
        assert SAMPLED.contains(graph)
        for index in graph.block_indices:
            sources = graph.nodes[index].attention_sources
            assert sources and set(sources) <= set(graph.attention_candidates(index))
            sizes.add((len(graph.attention_candidates(index)), len(sources)))
    assert len({size for n, size in sizes if n == 4}) > 2  # subsets of several sizes, not always all or one
    dense = SAMPLED.dense(rng)
    assert not dense.has_attention_sources  # the one-shot graph attends to every candidate


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_every_mutation_of_a_sampled_graph_keeps_attention_sources_valid(seed: int) -> None:
    rng = random.Random(seed)
    graph = SAMPLED.sample(rng)
    toy = ToyFitness()
    probabilities = {"connection": 0.3, "dilation": 0.1, "split": 0.2, "merge": 0.2, "attention": 0.2}
    for step in range(12):
        learned = toy(graph, seed=step)
        result = mutate(graph, space=SAMPLED, rng=rng, probabilities=probabilities,
                        learned_weights=learned.learned_weights, learned_attention=learned.attention_weights)
        if result is None:
            continue
        graph = result.graph  # validated on construction: sources are stems or lower-level nodes
        assert SAMPLED.contains(graph)
        for index in graph.block_indices:
            sources = graph.nodes[index].attention_sources
            assert sources and set(sources) <= set(graph.attention_candidates(index))


def test_a_merged_or_absorbed_node_hands_its_place_as_a_peer_to_the_node_that_took_its_filters() -> None:
    space = SearchSpace(SpaceConfig(stems=("rgb",), stem_dilations=(1,), dilations=(1,), nodes_per_level=(2, 1, 1, 1),
                                    max_nodes_per_level=(2, 1, 1, 1), level_filters=(32, 32, 32, 32),
                                    filter_quantum=16, attention_sources="sampled"))
    graph = AssembleNetGraph((
        StemNode(StemType.RGB),
        BlockNode(0, (0,), 16, attention_sources=(0,)), BlockNode(0, (0,), 16, attention_sources=(0,)),
        BlockNode(1, (1, 2), 32, spatial_stride=2, attention_sources=(2,)),
        BlockNode(2, (3,), 32, spatial_stride=2, attention_sources=(1, 2)),
        BlockNode(3, (4,), 32, spatial_stride=2, attention_sources=(2, 4)),
    ))
    result = merge_mutation(graph, space=space, rng=random.Random(0))  # only level 0 can merge
    merged = result.graph
    assert len(merged.nodes) == 5 and merged.nodes[1].filters == 32
    assert merged.nodes[2].attention_sources == (1,)  # node 2's place went to the merged node
    assert merged.nodes[3].attention_sources == (1,)
    assert merged.nodes[4].attention_sources == (1, 3)


def test_a_split_nodes_twin_attends_where_it_did_and_is_attended_where_it_was() -> None:
    space = SearchSpace(SpaceConfig(stems=("rgb", "flow"), stem_dilations=(1,), dilations=(1,),
                                    nodes_per_level=(1, 1, 1, 1), max_nodes_per_level=(2, 1, 1, 1),
                                    level_filters=(32, 16, 16, 16), filter_quantum=16, attention_sources="sampled"))
    graph = AssembleNetGraph((
        StemNode(StemType.RGB), StemNode(StemType.FLOW),
        BlockNode(0, (0, 1), 32, attention_sources=(1,)),
        BlockNode(1, (2,), 16, spatial_stride=2, attention_sources=(0, 2)),
        BlockNode(2, (3,), 16, spatial_stride=2, attention_sources=(2,)),
        BlockNode(3, (4,), 16, spatial_stride=2, attention_sources=(3,)),
    ))
    split = split_mutation(graph, space=space, rng=random.Random(0)).graph  # only node 2 can split
    assert [n.filters for n in split.nodes[2:4]] == [16, 16]
    assert split.nodes[2].attention_sources == split.nodes[3].attention_sources == (1,)
    assert split.nodes[4].attention_sources == (0, 2, 3)
    assert split.nodes[5].attention_sources == (2, 3)
    assert split.nodes[6].attention_sources == (4,)


def test_guided_attention_mutation_keeps_the_strongest_peer_and_random_keeps_any() -> None:
    graph = AssembleNetGraph(tuple(
        n if not isinstance(n, BlockNode) else BlockNode(n.level, n.inputs, n.filters, spatial_stride=n.spatial_stride,
                                                         attention_sources=tuple(_graph().attention_candidates(i)[:2]))
        for i, n in enumerate(_graph().nodes)
    ))
    space = SearchSpace(SpaceConfig(stems=("rgb", "flow"), dilations=(1,), stem_dilations=(1,),
                                    nodes_per_level=(2, 1, 1, 1), max_nodes_per_level=(2, 1, 1, 1),
                                    level_filters=(32, 32, 32, 64), filter_quantum=16, attention_sources="sampled"))
    # Learned attention: on every connection the second source is the strongest.
    learned = {}
    for edge in graph.edges():
        weak, strong = graph.attention_sources(edge.target)
        learned[(edge.source, edge.target)] = {weak: 0.2, strong: 0.8}
    for seed in range(20):
        guided = attention_mutation(graph, space=space, rng=random.Random(seed), learned_attention=learned)
        node = guided.mutation.details["node"]
        strongest = graph.attention_sources(node)[1]
        assert guided.mutation.kind == "attention-guided" and guided.mutation.details["kept"] == [strongest]
        new = set(guided.graph.nodes[node].attention_sources)
        assert strongest in new and new - {strongest} == set(guided.mutation.details["added"])
        assert not new & (set(graph.attention_sources(node)) - {strongest})  # the weaker source was dropped
    kept = set()
    for seed in range(20):
        unguided = attention_mutation(graph, space=space, rng=random.Random(seed))
        assert unguided.mutation.kind == "attention-random"
        node = unguided.mutation.details["node"]
        kept.add(tuple(unguided.mutation.details["kept"]) == (graph.attention_sources(node)[1],))
    assert kept == {True, False}  # random keeps the strong source sometimes, not always


def test_the_all_space_draws_and_evaluates_exactly_what_it_did_before_attention_sources() -> None:
    # Pinned before the attention options existed (tiny space, seed 7; a tiny evolution and a oneshot search).
    config = tiny_config()
    space = SearchSpace(config.space)
    rng = random.Random(7)
    graph = space.sample(rng)
    got = [graph.canonical_hash()[:16], space.dense(rng).canonical_hash()[:16]]
    fitness = ToyFitness()
    for k in range(6):
        learned = fitness(graph, seed=k)
        result = mutate(graph, space=space, rng=rng, probabilities=dict(config.mutation.probabilities),
                        learned_weights=learned.learned_weights, learned_attention=learned.attention_weights)
        graph = result.graph
        got.append((result.mutation.kind, graph.canonical_hash()[:16], round(learned.fitness, 12)))
    assert got == [
        "dab7b99371b2d41b", "b048d95f9e1d5a60", ("dilation", "b0f04505ce3b1ebd", 0.465929051299),
        ("dilation", "413de2aef04eef9f", 0.383923804209), ("connection-guided", "3d1f3fcbca97e3a9", 0.430511422211),
        ("connection-guided", "15a42535a666503e", 0.514593096509),
        ("connection-guided", "713f2f84e512bf09", 0.499612636221), ("merge", "292583162e153657", 0.481945869977),
    ]


@pytest.mark.parametrize("strategy, digest", [("evolution", "43cb9e771428468e"), ("oneshot", "89580380931f5225")])
def test_searches_without_attention_keep_their_sequences(tmp_path: Path, strategy: str, digest: str) -> None:
    config = tiny_config(strategy=strategy,
                         **{"mutation.probabilities": {"connection": 0.4, "dilation": 0.2, "split": 0.2, "merge": 0.2}})
    SearchRunner(config, run_dir=tmp_path / "run").run()
    sequence = [(h, round(f, 9)) for h, f in run_sequence(tmp_path / "run")]
    assert hashlib.sha256(repr(sequence).encode()).hexdigest()[:16] == digest


def test_evolution_over_sampled_attention_uses_the_attention_mutation(tmp_path: Path) -> None:
    config = tiny_config(**{"search.max_evaluations": 24, "space.attention_sources": "sampled",
                            "mutation.probabilities": {"connection": 0.4, "dilation": 0.2, "attention": 0.4}})
    SearchRunner(config, run_dir=tmp_path / "run").run()
    records = RunStore(tmp_path / "run").read_records()
    kinds = [r.mutation["kind"] for r in records.values()]
    assert kinds.count("attention-guided") >= 5
    for record in records.values():
        assert all(record.graph.nodes[i].attention_sources for i in record.graph.block_indices)


# ---------------------------------------------------------------------- records and config
def test_learned_attention_round_trips_through_results_records_and_old_records_still_load() -> None:
    attention = {(0, 2): {0: 0.25, 1: 0.75}, (1, 2): {0: 0.5, 1: 0.5}}
    result = FitnessResult(fitness=0.5, learned_weights={(0, 2): 0.4, (1, 2): 0.6}, attention_weights=attention)
    assert FitnessResult.from_dict(json.loads(json.dumps(result.to_dict()))) == result
    record = EvaluationRecord(index=0, graph=_graph(), graph_hash=_graph().canonical_hash(), seed=1, parent=None,
                              mutation={"kind": "dense"}, fitness=0.5, attention_weights=attention)
    back = EvaluationRecord.from_dict(json.loads(json.dumps(record.to_dict())))
    assert back.attention_weights == attention and back.fitness_result().attention_weights == attention
    old = record.to_dict()
    old.pop("attention_weights")  # a record written before attention existed
    assert EvaluationRecord.from_dict(old).attention_weights == {}
    assert "attention_weights" not in FitnessResult(fitness=0.5).to_dict()  # no attention: the old form
    assert attention_per_node(attention) == {2: {0: 0.375, 1: 0.625}}


def test_attention_keys_enter_the_fingerprint_only_when_set() -> None:
    base = tiny_config()
    assert "attention" not in base.fingerprint() and "attention_sources" not in base.fingerprint()["space"]
    assert tiny_config(**{"attention.top_k": 2}).fingerprint() != base.fingerprint()
    assert tiny_config(**{"space.attention_sources": "sampled"}).fingerprint() != base.fingerprint()
    with pytest.raises(ConfigError, match="space.attention_sources"):
        tiny_config(**{"space.attention_sources": "some"})
    with pytest.raises(ConfigError, match="attention.top_k"):
        tiny_config(**{"attention.top_k": 0})
