"""Every mutation on random graphs: validity, the channel budget, and exact guided pruning."""

from __future__ import annotations

import random
import statistics

from hypothesis import given, settings
from hypothesis import strategies as st

from assemblenet.graph.spec import AssembleNetGraph, BlockNode
from assemblenet.search.config import SpaceConfig
from assemblenet.search.mutations import (
    PruneRule,
    below_threshold_edges,
    dilation_mutation,
    guided_connection_mutation,
    matched_connection_mutation,
    merge_mutation,
    mutate,
    next_kind,
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


rules = st.one_of(
    st.builds(lambda t: PruneRule("absolute", threshold=t, min_pruned=0), thresholds),
    st.builds(lambda t, m: PruneRule("absolute", threshold=t, min_pruned=m), thresholds, st.integers(1, 3)),
    st.builds(lambda r, m: PruneRule("relative", relative_threshold=r, min_pruned=m), st.floats(0.2, 1.0),
              st.integers(0, 3)),
)


def _to_child_indices(parent: AssembleNetGraph, details: dict) -> dict[int, int]:
    # Connection mutations keep the surviving nodes' order: map parent indices to child indices.
    absorbed = {removed for removed, _ in details.get("absorbed", [])}
    survivors = [i for i in range(len(parent.nodes)) if i not in absorbed]
    return {old: new for new, old in enumerate(survivors)}


@settings(max_examples=60, deadline=None)
@given(case=graphs, weight_seed=weights_seeds, rule=rules, seed=st.integers(0, 2**16))
def test_guided_connection_prunes_exactly_the_condemned_edges(case, weight_seed, rule, seed) -> None:
    space, parent = case
    weights = _random_weights(parent, weight_seed)
    condemned = rule.select(parent, weights)
    # Never an edge into a single-input node (it has no weight to read), never a node's last input by make-up.
    assert all(len(parent.predecessors(t)) > 1 for _, t in condemned)
    result = guided_connection_mutation(parent, weights, space=space, rng=random.Random(seed), rule=rule)
    if result is None:
        return  # rejected (nothing condemned, or no valid repair): never an invalid child
    assert condemned, "a guided mutation with nothing to prune must be rejected"
    child = result.graph
    _check_child(space, parent, child)
    details = result.mutation.details
    pruned = {tuple(e) for e in details["pruned"]}
    spared = {tuple(e) for e in details.get("spared", [])}
    assert pruned | spared == set(condemned) and not pruned & spared
    to_child = _to_child_indices(parent, details)
    child_edges = {(e.source, e.target) for e in child.edges()}
    for source, target in pruned:
        if source in to_child and target in to_child:
            assert (to_child[source], to_child[target]) not in child_edges
    for source, target in [(e.source, e.target) for e in parent.edges()]:
        if (source, target) not in pruned and source in to_child and target in to_child:
            assert (to_child[source], to_child[target]) in child_edges
    # An absorbed node lost every outgoing edge to pruning, and its filters stayed at its level.
    for removed, receiver in details.get("absorbed", []):
        assert all((removed, t) in pruned for t in parent.successors(removed))
        assert parent.nodes[removed].level == parent.nodes[receiver].level


@settings(max_examples=60, deadline=None)
@given(case=graphs, weight_seed=weights_seeds, ratio=st.floats(0.2, 1.0),
       scales=st.lists(st.floats(0.05, 1.0), min_size=64, max_size=64))
def test_relative_rule_ignores_each_nodes_common_scale(case, weight_seed, ratio, scales) -> None:
    # Training fixes only the ratios of a node's input weights; the rule must not read their common scale.
    space, parent = case
    weights = _random_weights(parent, weight_seed)
    rescaled = {(s, t): w * scales[t % len(scales)] for (s, t), w in weights.items()}
    rule = PruneRule("relative", relative_threshold=ratio)
    assert rule.select(parent, weights) == rule.select(parent, rescaled)


def test_rule_prunes_the_weakest_edge_when_nothing_is_below_its_threshold() -> None:
    space = asn50_space()
    parent = space.sample(random.Random(5))
    weights = {(e.source, e.target): 0.9 for e in parent.edges()}
    target = next(t for t in range(len(parent.nodes)) if len(parent.predecessors(t)) > 2)
    weak = (parent.predecessors(target)[1], target)
    weights[weak] = 0.85  # well above any absolute threshold, and 0.94 of its node's strongest
    for rule in (PruneRule("absolute", threshold=0.2), PruneRule("relative", relative_threshold=0.5)):
        assert rule.select(parent, weights) == [weak]
        result = guided_connection_mutation(parent, weights, space=space, rng=random.Random(0), rule=rule)
        assert result is not None and result.mutation.kind == "connection-guided"
        assert result.mutation.details["pruned"] == [list(weak)]
    assert PruneRule("absolute", threshold=0.2, min_pruned=0).select(parent, weights) == []
    assert below_threshold_edges(parent, weights, 0.2) == []


@settings(max_examples=40, deadline=None)
@given(case=graphs, weight_seed=weights_seeds, seed=st.integers(0, 2**16))
def test_matched_control_prunes_as_many_edges_at_the_same_nodes(case, weight_seed, seed) -> None:
    space, parent = case
    weights = _random_weights(parent, weight_seed)
    rule = PruneRule("relative", relative_threshold=0.6)
    result = matched_connection_mutation(parent, weights, space=space, rng=random.Random(seed), rule=rule)
    if result is None:
        return
    _check_child(space, parent, result.graph)
    details = result.mutation.details
    done = [tuple(e) for e in [*details["pruned"], *details.get("spared", [])]]
    guided = rule.select(parent, weights)
    assert sorted(map(tuple, details["guided_would_prune"])) == sorted(guided)
    assert sorted(t for _, t in done) == sorted(t for _, t in guided)
    assert all(s in parent.predecessors(t) for s, t in done)


@settings(max_examples=40, deadline=None)
@given(case=graphs, weight_seed=weights_seeds, rule=rules, seed=st.integers(0, 2**16))
def test_oneshot_thresholding_adds_no_random_edges(case, weight_seed, rule, seed) -> None:
    space, parent = case
    weights = _random_weights(parent, weight_seed)
    result = threshold_connections(parent, weights, space=space, rng=random.Random(seed), rule=rule)
    if result is None:
        return
    _check_child(space, parent, result.graph)
    assert result.mutation.details["added"] == []
    kept = len(parent.edges()) - len(result.mutation.details["pruned"])
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
@given(case=graphs, weight_seed=weights_seeds, seed=st.integers(0, 2**16),
       connection=st.sampled_from(["guided", "matched", "random"]))
def test_mutate_returns_valid_new_children_or_none(case, weight_seed, seed, connection) -> None:
    space, parent = case
    seen = {parent.canonical_hash()}
    result = mutate(
        parent, space=space, rng=random.Random(seed),
        probabilities={"connection": 1.0, "dilation": 1.0, "split": 1.0, "merge": 1.0},
        connection=connection, learned_weights=_random_weights(parent, weight_seed),
        accept=lambda g: g.canonical_hash() not in seen,
    )
    assert result is not None
    _check_child(space, parent, result.graph)
    assert result.mutation.kind in {f"connection-{connection}", "dilation", "split", "merge"}


def test_mutate_keeps_the_dealt_kind_and_marks_a_fallback() -> None:
    space = SPACES[1]
    parent = space.sample(random.Random(0))
    weights = _random_weights(parent, 0)
    probabilities = {"connection": 0.5, "dilation": 0.5}
    for seed in range(10):
        result = mutate(parent, space=space, rng=random.Random(seed), kind="connection", probabilities=probabilities,
                        connection="guided", learned_weights=weights)
        assert result is not None and result.mutation.kind == "connection-guided"
        assert "fallback_from" not in result.mutation.details
    # When no connection child is acceptable, another kind is used and says so.
    result = mutate(parent, space=space, rng=random.Random(0), kind="connection", probabilities=probabilities,
                    connection="guided", learned_weights=weights, max_attempts=3,
                    accept=lambda g: g.nodes[0] != parent.nodes[0] or g.edges() == parent.edges())
    assert result is not None and result.mutation.kind == "dilation"
    assert result.mutation.details["fallback_from"] == "connection"


def test_kind_schedule_follows_the_probabilities_in_every_prefix() -> None:
    probabilities = {"connection": 0.5, "dilation": 0.3, "split": 0.1, "merge": 0.1}
    credits: dict[str, float] = {}
    dealt = [next_kind(probabilities, credits) for _ in range(40)]
    for n in range(1, 41):
        for kind, p in probabilities.items():
            assert abs(dealt[:n].count(kind) - n * p) <= 1.0  # never more than one off the configured mix
    assert dealt[0] == "connection"
    assert next_kind({"connection": 1.0, "split": 0.0}, {}) == "connection"
    # The state is plain data (state.json): a restored scheduler continues the same sequence.
    restored = dict(credits)
    assert ([next_kind(probabilities, credits) for _ in range(5)]
            == [next_kind(probabilities, restored) for _ in range(5)])


def test_mutate_gives_up_when_nothing_is_acceptable() -> None:
    space = SPACES[1]
    parent = space.sample(random.Random(0))
    result = mutate(parent, space=space, rng=random.Random(0), probabilities={"dilation": 1.0},
                    max_attempts=5, accept=lambda g: False)
    assert result is None


def test_matched_mutation_ignores_which_edges_are_weak() -> None:
    space = asn50_space()
    parent = space.sample(random.Random(3))
    a_weights = _random_weights(parent, 1)
    target = next(t for t in range(len(parent.nodes)) if len(parent.predecessors(t)) > 2)
    # The same count at the same node, but a different weak edge: the matched child must not change.
    b_weights = {e: 0.9 for e in a_weights}
    a_weights = {e: 0.9 for e in a_weights}
    a_weights[(parent.predecessors(target)[0], target)] = 0.1
    b_weights[(parent.predecessors(target)[1], target)] = 0.1
    rule = PruneRule("relative", relative_threshold=0.5)
    a = matched_connection_mutation(parent, a_weights, space=space, rng=random.Random(1), rule=rule)
    b = matched_connection_mutation(parent, b_weights, space=space, rng=random.Random(1), rule=rule)
    assert a is not None and a.graph == b.graph and a.mutation.kind == "connection-matched"


def test_guided_mutation_mostly_succeeds() -> None:
    # Guards the property tests above against passing vacuously through rejections.
    outcomes = []
    for seed in range(40):
        space = SPACES[seed % 2]
        parent = _sample(space, seed, 0.8)
        weights = _random_weights(parent, seed)
        outcomes.append(guided_connection_mutation(parent, weights, space=space, rng=random.Random(seed),
                                                   rule=PruneRule("relative", relative_threshold=0.3)))
    assert sum(r is not None for r in outcomes) >= 25
    assert any("absorbed" in r.mutation.details for r in outcomes if r is not None)


def test_guided_connection_mutation_improves_the_toy_benchmark_more_than_matched() -> None:
    # The toy's learned weights carry information about useful edges; guidance must exploit it on average,
    # against a control that prunes as many edges at the same nodes.
    space, fitness = asn50_space(), ToyFitness(noise=0.0)
    rng = random.Random(0)
    rule = PruneRule()
    guided_gain, matched_gain = [], []
    for trial in range(25):
        parent = space.sample(rng)
        result = fitness(parent, seed=trial)
        guided = guided_connection_mutation(parent, result.learned_weights, space=space, rng=rng, rule=rule)
        matched = matched_connection_mutation(parent, result.learned_weights, space=space, rng=rng, rule=rule)
        if guided:
            guided_gain.append(fitness(guided.graph, seed=trial).fitness - result.fitness)
        if matched:
            matched_gain.append(fitness(matched.graph, seed=trial).fitness - result.fitness)
    assert len(guided_gain) >= 15 and len(matched_gain) >= 15
    matched_sem = statistics.stdev(matched_gain) / len(matched_gain) ** 0.5
    assert statistics.fmean(guided_gain) > statistics.fmean(matched_gain) + 2 * matched_sem
