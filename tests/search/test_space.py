from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assemblenet.errors import GraphError
from assemblenet.graph import official_graph
from assemblenet.graph.spec import BlockNode, StemNode
from assemblenet.search.config import SpaceConfig
from assemblenet.search.space import SearchSpace, asn50_space, split_budget


def test_asn50_space_contains_the_official_asn50_graph() -> None:
    space = asn50_space()
    graph = official_graph("asn50")
    assert space.violations(graph) == []
    assert space.violations(graph.without_edge_weights()) == []


def test_asn50_space_contains_asn50_for_any_proxy_width() -> None:
    # The space is defined at full width; the multiplier only sets the proxy scale.
    for width in (0.125, 0.25, 1.0):
        space = asn50_space(width_multiplier=width)
        assert space.contains(official_graph("asn50"))
        proxy = space.proxy_graph(official_graph("asn50"))
        assert proxy.channel_budget() == {lvl: int(b * width) for lvl, b in enumerate(space.config.level_filters)}


def test_violations_name_each_problem() -> None:
    space = asn50_space()
    structure, _ = official_graph("asn50").to_official()
    structure[12][2] = 192  # level-2 budget 448 != 512
    structure[4][3] = 3  # dilation 3 not allowed
    from assemblenet.graph.spec import AssembleNetGraph

    graph = AssembleNetGraph.from_official(structure)
    problems = space.violations(graph)
    assert any("level 2: 448 filters" in p for p in problems)
    assert any("node 4: dilation 3" in p for p in problems)
    with pytest.raises(GraphError, match="outside the search space"):
        space.check(graph)


def test_official_asnp50_is_outside_the_asn50_space() -> None:
    # It has an object stem, and node 9 feeds nothing (the official structure keeps it).
    graph = official_graph("asnp50")
    problems = asn50_space().violations(graph)
    assert any("stems are" in p for p in problems)
    assert any("node 9: feeds nothing" in p for p in problems)


def test_same_level_input_is_outside_the_space() -> None:
    from assemblenet.graph.spec import AssembleNetGraph

    structure, _ = official_graph("asn50").to_official()
    structure[13][1] = [8, 9, 12]
    problems = asn50_space().violations(AssembleNetGraph.from_official(structure))
    assert any("reads node 12 at level 2" in p for p in problems)


@pytest.mark.parametrize(("total", "parts", "quantum"), [(128, 4, 8), (256, 3, 8), (64, 1, 16), (40, 5, 8)])
def test_split_budget_is_exact_and_quantised(total: int, parts: int, quantum: int) -> None:
    shares = split_budget(total, parts, quantum)
    assert sum(shares) == total and len(shares) == parts
    assert all(s % quantum == 0 and s >= quantum for s in shares)
    assert max(shares) - min(shares) <= quantum


def test_invalid_space_raises() -> None:
    with pytest.raises(GraphError, match="space.nodes_per_level"):
        SearchSpace(SpaceConfig(nodes_per_level=(9, 4, 2, 1)))


space_configs = st.builds(
    lambda stems, npl, extra, quantum, p: SpaceConfig(
        stems=tuple(stems),
        stem_dilations=(1, 2, 4, 8),
        dilations=(1, 2, 4, 8),
        nodes_per_level=tuple(npl),
        max_nodes_per_level=tuple(n + e for n, e in zip(npl, extra)),
        level_filters=tuple(quantum * (n + e) * 2 for n, e in zip(npl, extra)),
        filter_quantum=quantum,
        width_multiplier=1.0 / quantum,
        initial_edge_probability=p,
    ),
    st.lists(st.sampled_from(["rgb", "flow"]), min_size=1, max_size=4),
    st.lists(st.integers(1, 4), min_size=4, max_size=4),
    st.lists(st.integers(0, 2), min_size=4, max_size=4),
    st.sampled_from([4, 8]),
    st.floats(0.05, 1.0),
)


@settings(max_examples=40, deadline=None)
@given(config=space_configs, seed=st.integers(0, 2**32 - 1))
def test_sampled_graphs_are_valid_members(config: SpaceConfig, seed: int) -> None:
    space = SearchSpace(config)
    graph = space.sample(random.Random(seed))  # validated on construction
    assert space.violations(graph) == []
    assert [graph.nodes[i].stem_type.label for i in graph.stem_indices] == list(config.stems)
    for level, count in enumerate(config.nodes_per_level):
        assert len(graph.nodes_at_level(level)) == count


@settings(max_examples=20, deadline=None)
@given(config=space_configs, seed=st.integers(0, 2**32 - 1))
def test_dense_graph_has_every_allowed_edge(config: SpaceConfig, seed: int) -> None:
    graph = SearchSpace(config).dense(random.Random(seed))
    for target, node in enumerate(graph.nodes):
        if isinstance(node, BlockNode):
            expected = {
                i for i, n in enumerate(graph.nodes)
                if isinstance(n, StemNode) or (isinstance(n, BlockNode) and n.level < node.level)
            }
            assert set(node.inputs) == expected


def test_sampling_is_deterministic_and_varied() -> None:
    space = asn50_space()
    a = [space.sample(random.Random(7)).canonical_hash() for _ in range(2)]
    assert a[0] == a[1]
    rng = random.Random(7)
    hashes = {space.sample(rng).canonical_hash() for _ in range(20)}
    assert len(hashes) == 20
