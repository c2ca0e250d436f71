"""Every mutation on random graphs: validity, the channel budget, and exact guided pruning."""

from __future__ import annotations

import random
import statistics

from hypothesis import given, settings
from hypothesis import strategies as st

from assemblenet.graph.spec import AssembleNetGraph, BlockNode
from assemblenet.search.config import SpaceConfig
from assemblenet.search.mutations import (
    below_threshold_edges,
    dilation_mutation,
    guided_connection_mutation,
    merge_mutation,
    mutate,
    random_connection_mutation,
    split_mutation,
    threshold_connections,
)
from assemblenet.search.space import SearchSpace, asn50_space
from assemblenet.search.toy import ToyFitness

SPACES = [
    asn50_space(),
    SearchSpace(SpaceConfig(stems=("rgb", "flow"), dilations=(1, 2, 4), nodes_per_level=(2, 2, 1, 1),
                            max_nodes_per_level=(4, 4, 2, 2), level_filters=(64, 128, 256, 512),
                            filter_quantum=16)),
    SearchSpace(SpaceConfig(stems=("rgb",), stem_dilations=(1,), nodes_per_level=(1, 3, 2, 2),
                            min_nodes_per_level=(1, 2, 1, 1), max_nodes_per_level=(3, 4, 3, 2),
                            level_filters=(48, 128, 256, 256), filter_quantum=16, initial_edge_probability=0.3)),
]

graphs = st.builds(
    lambda space_index, seed, edge_p: (SPACES[space_index], _sample(SPACES[space_index], seed, edge_p)),
    st.integers(0, len(SPACES) - 1), st.integers(0, 2**32 - 1), st.floats(0.1, 1.0),
)
weights_seeds = st.integers(0, 2**32 - 1)
thresholds = st.floats(0.05, 0.7)


def _sample(space: SearchSpace, seed: int, edge_p: float) -> AssembleNetGraph:
    # Mutate a few times so that node counts and widths vary too.
    rng = random.Random(seed)
    graph = space.sample(rng, edge_probability=edge_p)
    for _ in range(rng.randrange(3)):
        result = (split_mutation if rng.random() < 0.5 else merge_mutation)(graph, space=space, rng=rng)
        graph = result.graph if result else graph
    return graph


def _random_weights(graph: AssembleNetGraph, seed: int) -> dict[tuple[int, int], float]:
    rng = random.Random(seed)
    return {(e.source, e.target): rng.random() for e in graph.edges()}


def _check_child(space: SearchSpace, parent: AssembleNetGraph, child: AssembleNetGraph) -> None:
    AssembleNetGraph(child.nodes)  # re-validates
    assert space.violations(child) == []
    assert child.channel_budget() == parent.channel_budget()
    assert child.canonical_hash() != parent.canonical_hash()


@settings(max_examples=60, deadline=None)
@given(case=graphs, weight_seed=weights_seeds, threshold=thresholds, seed=st.integers(0, 2**16))
def test_guided_connection_prunes_exactly_the_edges_below_threshold(case, weight_seed, threshold, seed) -> None:
    space, parent = case
    weights = _random_weights(parent, weight_seed)
    result = guided_connection_mutation(parent, weights, space=space, rng=random.Random(seed), threshold=threshold)
    below = {e for e, w in weights.items() if w < threshold}
    if result is None:
        return  # rejected (nothing below the threshold, or no valid repair): never an invalid child
    assert below, "a guided mutation with nothing to prune must be rejected"
    child = result.graph
    _check_child(space, parent, child)
    details = result.mutation.details
    assert {tuple(e) for e in details["pruned"]} == below
    # Connection mutations keep the surviving nodes' order: map parent indices to child indices.
    absorbed = {removed for removed, _ in details.get("absorbed", [])}
    survivors = [i for i in range(len(parent.nodes)) if i not in absorbed]
    to_child = {old: new for new, old in enumerate(survivors)}
    child_edges = {(e.source, e.target) for e in child.edges()}
    for source, target in below:
        if source in to_child and target in to_child:
            assert (to_child[source], to_child[target]) not in child_edges
    for (source, target), w in weights.items():
        if w >= threshold and source not in absorbed and target not in absorbed:
            assert (to_child[source], to_child[target]) in child_edges
    # An absorbed node lost every outgoing edge to pruning, and its filters stayed at its level.
    for removed, receiver in details.get("absorbed", []):
        assert all((removed, t) in below for t in parent.successors(removed))
        assert parent.nodes[removed].level == parent.nodes[receiver].level


@settings(max_examples=40, deadline=None)
@given(case=graphs, weight_seed=weights_seeds, threshold=thresholds, seed=st.integers(0, 2**16))
def test_oneshot_thresholding_adds_no_random_edges(case, weight_seed, threshold, seed) -> None:
    space, parent = case
    weights = _random_weights(parent, weight_seed)
    result = threshold_connections(parent, weights, space=space, rng=random.Random(seed), threshold=threshold)
    if result is None:
        return
    _check_child(space, parent, result.graph)
    assert result.mutation.details["added"] == []
    kept = sum(1 for w in weights.values() if w >= threshold)
    repaired = len(result.mutation.details.get("repaired", []))
    assert len(result.graph.edges()) <= kept + repaired


@settings(max_examples=40, deadline=None)
@given(case=graphs, seed=st.integers(0, 2**16), p=st.floats(0.05, 1.0))
def test_random_connection_mutation(case, seed, p) -> None:
    space, parent = case
    result = random_connection_mutation(parent, space=space, rng=random.Random(seed), prune_probability=p)
    if result is None:
        return
    _check_child(space, parent, result.graph)
    assert result.mutation.details["pruned"]


@settings(max_examples=40, deadline=None)
@given(case=graphs, seed=st.integers(0, 2**16))
def test_dilation_mutation_changes_one_dilation(case, seed) -> None:
    space, parent = case
    result = dilation_mutation(parent, space=space, rng=random.Random(seed))
    assert result is not None  # every test space has several dilations for blocks
    child = result.graph
    _check_child(space, parent, child)
    node = result.mutation.details["node"]
    changed = [i for i, (a, b) in enumerate(zip(parent.nodes, child.nodes)) if a != b]
    assert changed == [node]
    assert child.nodes[node].temporal_dilation == result.mutation.details["new"] != parent.nodes[node].temporal_dilation
    assert [e for e in child.edges()] == [e for e in parent.edges()]


@settings(max_examples=40, deadline=None)
@given(case=graphs, seed=st.integers(0, 2**16))
def test_split_mutation_keeps_budget_and_adds_one_node(case, seed) -> None:
    space, parent = case
    result = split_mutation(parent, space=space, rng=random.Random(seed))
    if result is None:
        assert not any(
            isinstance(n, BlockNode) and n.filters >= 2 * space.quantum
            and len(parent.nodes_at_level(n.level)) < space.config.max_nodes_per_level[n.level]
            for n in parent.nodes
        )
        return
    child = result.graph
    _check_child(space, parent, child)
    assert len(child.nodes) == len(parent.nodes) + 1
    node = parent.nodes[result.mutation.details["node"]]
    halves = result.mutation.details["filters"]
    assert sum(halves) == node.filters and all(h % space.quantum == 0 and h > 0 for h in halves)
    assert len(child.nodes_at_level(node.level)) == len(parent.nodes_at_level(node.level)) + 1


@settings(max_examples=40, deadline=None)
@given(case=graphs, seed=st.integers(0, 2**16))
def test_merge_mutation_keeps_budget_and_removes_one_node(case, seed) -> None:
    space, parent = case
    result = merge_mutation(parent, space=space, rng=random.Random(seed))
    if result is None:
        assert all(not space.can_merge_at(_draft(parent), level) for level in range(4))
        return
    child = result.graph
    _check_child(space, parent, child)
    level = result.mutation.details["level"]
    assert len(child.nodes) == len(parent.nodes) - 1
    assert len(child.nodes_at_level(level)) == len(parent.nodes_at_level(level)) - 1
    keep, drop = result.mutation.details["nodes"]
    merged_filters = parent.nodes[keep].filters + parent.nodes[drop].filters
    assert merged_filters in [child.nodes[i].filters for i in child.nodes_at_level(level)]


def _draft(graph):
    from assemblenet.search.draft import GraphDraft

    return GraphDraft.from_graph(graph)


@settings(max_examples=30, deadline=None)
@given(case=graphs, weight_seed=weights_seeds, seed=st.integers(0, 2**16), guided=st.booleans())
def test_mutate_returns_valid_new_children_or_none(case, weight_seed, seed, guided) -> None:
    space, parent = case
    seen = {parent.canonical_hash()}
    result = mutate(
        parent, space=space, rng=random.Random(seed),
        probabilities={"connection": 1.0, "dilation": 1.0, "split": 1.0, "merge": 1.0},
        guided=guided, learned_weights=_random_weights(parent, weight_seed),
        accept=lambda g: g.canonical_hash() not in seen,
    )
    assert result is not None
    _check_child(space, parent, result.graph)
    assert result.mutation.kind in {"connection-guided" if guided else "connection-random", "dilation", "split", "merge"}


def test_mutate_gives_up_when_nothing_is_acceptable() -> None:
    space = SPACES[1]
    parent = space.sample(random.Random(0))
    result = mutate(parent, space=space, rng=random.Random(0), probabilities={"dilation": 1.0}, guided=True,
                    max_attempts=5, accept=lambda g: False)
    assert result is None


def test_unguided_mutation_ignores_the_weights() -> None:
    space = asn50_space()
    parent = space.sample(random.Random(3))
    probabilities = {"connection": 1.0}
    a = mutate(parent, space=space, rng=random.Random(1), probabilities=probabilities, guided=False,
               learned_weights=_random_weights(parent, 1))
    b = mutate(parent, space=space, rng=random.Random(1), probabilities=probabilities, guided=False,
               learned_weights=_random_weights(parent, 2))
    assert a is not None and a.graph == b.graph and a.mutation.kind == "connection-random"


def test_guided_mutation_mostly_succeeds_at_the_default_threshold() -> None:
    # Guards the property tests above against passing vacuously through rejections.
    outcomes = []
    for seed in range(40):
        space = SPACES[seed % 2]
        parent = _sample(space, seed, 0.8)
        weights = _random_weights(parent, seed)
        outcomes.append(guided_connection_mutation(parent, weights, space=space, rng=random.Random(seed), threshold=0.2))
    assert sum(r is not None for r in outcomes) >= 25
    assert any("absorbed" in r.mutation.details for r in outcomes if r is not None)


def test_guided_pruning_uses_the_threshold_not_the_rank() -> None:
    space = asn50_space()
    parent = space.sample(random.Random(5))
    weights = {(e.source, e.target): 0.9 for e in parent.edges()}
    assert guided_connection_mutation(parent, weights, space=space, rng=random.Random(0), threshold=0.2) is None
    weak = (parent.edges()[3].source, parent.edges()[3].target)
    weights[weak] = 0.19
    assert below_threshold_edges(parent, weights, 0.2) == [weak]


def test_guided_connection_mutation_improves_the_toy_benchmark_more_than_random() -> None:
    # The toy's learned weights carry information about useful edges; guidance must exploit it on average.
    space, fitness = asn50_space(), ToyFitness(noise=0.0)
    rng = random.Random(0)
    guided_gain, random_gain = [], []
    for trial in range(25):
        parent = space.sample(rng)
        result = fitness(parent, seed=trial)
        guided = guided_connection_mutation(parent, result.learned_weights, space=space, rng=rng, threshold=0.2)
        unguided = random_connection_mutation(parent, space=space, rng=rng, prune_probability=0.2)
        if guided:
            guided_gain.append(fitness(guided.graph, seed=trial).fitness - result.fitness)
        if unguided:
            random_gain.append(fitness(unguided.graph, seed=trial).fitness - result.fitness)
    assert len(guided_gain) >= 15 and len(random_gain) >= 15
    assert statistics.fmean(guided_gain) > statistics.fmean(random_gain) + 2 * statistics.stdev(random_gain) / len(random_gain) ** 0.5
