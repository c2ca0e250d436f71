import copy
import json
import warnings

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from assemblenet.errors import GraphError
from assemblenet.graph import (
    AssembleNetGraph,
    BlockNode,
    StemNode,
    StemType,
    graph_from_dict,
    graph_to_dict,
    load_graph,
    official_graph,
    save_graph,
)
from assemblenet.graph.official import ASN50_STRUCTURE, ASN_WEIGHTS, ASNP50_STRUCTURE, ASNP50_WEIGHTS


@pytest.mark.parametrize("structure,weights", [(ASN50_STRUCTURE, ASN_WEIGHTS), (ASNP50_STRUCTURE, ASNP50_WEIGHTS)])
def test_official_round_trip_is_lossless(structure, weights):
    graph = AssembleNetGraph.from_official(structure, weights, allow_dead_nodes=True)
    assert graph.to_official() == (structure, weights)
    unweighted = AssembleNetGraph.from_official(structure, allow_dead_nodes=True)
    assert unweighted.to_official() == (structure, [])
    assert not unweighted.has_edge_weights and graph.has_edge_weights


def test_asn101_differs_from_asn50_only_in_late_filters():
    asn50, asn101 = official_graph("asn50"), official_graph("asn101")
    changed = [i for i, (a, b) in enumerate(zip(asn50.nodes, asn101.nodes)) if a != b]
    assert changed == [12, 13, 14]
    assert [asn101[i].filters for i in changed] == [192, 192, 256]


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
@pytest.mark.parametrize("official", [False, True])
def test_file_round_trip(tmp_path, suffix, official):
    graph = official_graph("asnp50")
    path = save_graph(graph, tmp_path / f"g{suffix}", official=official)
    loaded = load_graph(path, allow_dead_nodes=True)
    assert loaded == graph
    assert loaded.to_official() == graph.to_official()


def test_readable_yaml_names_fields(tmp_path):
    path = save_graph(official_graph("asn50"), tmp_path / "asn50.yaml")
    data = yaml.safe_load(path.read_text())
    assert data["format"] == "assemblenet-graph/v1"
    assert data["nodes"][0] == {"id": 0, "stem": "rgb", "temporal_dilation": 4}
    assert data["nodes"][6]["inputs"] == [0, 1, 2, 3]
    assert data["nodes"][6]["edge_weights"][0] == pytest.approx(0.13810564577579498)


def test_load_accepts_a_bare_official_list_and_the_tf_config_keys(tmp_path):
    (tmp_path / "bare.json").write_text(json.dumps(ASN50_STRUCTURE))
    assert load_graph(tmp_path / "bare.json") == official_graph("asn50", with_weights=False)
    (tmp_path / "cfg.yaml").write_text(
        yaml.safe_dump({"model_structure": ASN50_STRUCTURE, "model_edge_weights": ASN_WEIGHTS})
    )
    assert load_graph(tmp_path / "cfg.yaml") == official_graph("asn50")


def _structure(**edits):
    structure = copy.deepcopy(ASN50_STRUCTURE)
    for index, value in edits.items():
        structure[int(index.lstrip("n"))] = value
    return structure


@pytest.mark.parametrize(
    "structure,weights,message",
    [
        (_structure(n6=[0, [0, 6], 32, 1, 1, 0]), None, "node 6: input 6 must be the index of an earlier node"),
        (_structure(n6=[0, [0, 9], 32, 1, 1, 0]), None, "node 6: input 9 must be the index of an earlier node"),
        (_structure(n0=[-7, 4]), None, "node 0: unknown stem type -7"),
        (_structure(n12=[4, [4, 8, 10, 11], 256, 1, 2, 0]), None, "node 12: level 4 is outside 0..3"),
        (_structure(n12=[2, [4, 8, 10, 11], 0, 1, 2, 0]), None, "node 12 filters must be a positive integer, got 0"),
        (_structure(n12=[2, [4, 8, 10, 11], -5, 1, 2, 0]), None, "node 12 filters must be a positive integer, got -5"),
        (_structure(n12=[2, [4, 8, 10, 11], 256, 0, 2, 0]), None, "node 12 temporal dilation must be a positive"),
        (_structure(n1=[-1, 0]), None, "node 1 temporal dilation must be a positive integer, got 0"),
        (_structure(n14=[2, [12, 13], 512, 2, 2, 0]), None, "no level-3 node"),
        (_structure(n11=[1, [0, 0], 64, 1, 2, 0]), None, "node 11: duplicate inputs [0]"),
        (_structure(n13=[2, [8], 256, 4, 2, 0]), None, "node 9 feeds nothing"),
        ([], None, "graph is empty"),
        (ASN50_STRUCTURE, ASN_WEIGHTS[:-1], "edge weight list has 14 entries but the graph has 15 nodes"),
        (ASN50_STRUCTURE, ASN_WEIGHTS[:-1] + [[[0.5, 0.5, 0.5]]], "node 14: 3 edge weights for 2 inputs"),
        (ASN50_STRUCTURE, ASN_WEIGHTS[:-1] + [[[0.5, 1.5]]], "node 14: edge weight 1.5 is not a post-sigmoid value"),
        (_structure(n6=[0, [], 32, 1, 1, 0]), None, "node 6: a block node needs at least one input"),
        (_structure(n5=[-2, 1]), None, "node 5: stems must come before all block nodes"),
    ],
)
def test_malformed_graphs_raise_clear_errors(structure, weights, message):
    with pytest.raises(GraphError) as info:
        AssembleNetGraph.from_official(structure, weights)
    assert message in str(info.value)


def test_malformed_yaml_names_the_file_and_field(tmp_path):
    bad = graph_to_dict(official_graph("asn50"))
    bad["nodes"][5]["filterz"] = 3
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(bad))
    with pytest.raises(GraphError, match=r"bad.yaml: node 5: unknown field\(s\) \['filterz'\]"):
        load_graph(path)
    path.write_text("nodes: [1, 2\n")
    with pytest.raises(GraphError, match="bad.yaml: not valid YAML"):
        load_graph(path)
    with pytest.raises(FileNotFoundError, match="missing.yaml"):
        load_graph(tmp_path / "missing.yaml")


def test_official_asnp50_keeps_its_dead_node_unless_pruned():
    graph = official_graph("asnp50")
    assert graph.dead_nodes == [9]
    with pytest.raises(GraphError, match="node 9 feeds nothing"):
        AssembleNetGraph.from_official(ASNP50_STRUCTURE)
    with pytest.warns(UserWarning, match=r"\[9\]"):
        pruned = graph.pruned()
    assert len(pruned) == 14 and pruned.dead_nodes == [] and not pruned.allow_dead_nodes


def test_dead_nodes_are_rejected_or_pruned_with_a_warning():
    structure = _structure(n13=[2, [8], 256, 4, 2, 0])  # node 9 now feeds nothing
    with pytest.raises(GraphError, match="node 9 feeds nothing"):
        AssembleNetGraph.from_official(structure)
    nodes = list(AssembleNetGraph.from_official(ASN50_STRUCTURE).nodes)
    nodes[13] = BlockNode(level=2, inputs=(8,), filters=256, temporal_dilation=4, spatial_stride=2)
    with pytest.warns(UserWarning, match=r"pruned 1 node\(s\) that feed nothing: \[9\]"):
        pruned = _unchecked_graph(nodes).pruned()
    assert len(pruned) == 14
    assert pruned[12].inputs == (8,)  # old node 13 re-indexed, its input unchanged
    assert pruned[11].inputs == (4, 8, 9, 10)  # old node 12 read 4, 8, 10, 11


def _unchecked_graph(nodes):
    graph = object.__new__(AssembleNetGraph)
    object.__setattr__(graph, "nodes", tuple(nodes))
    object.__setattr__(graph, "name", None)
    return graph


def test_search_helpers():
    graph = official_graph("asn50")
    assert graph.channel_budget() == {0: 128, 1: 256, 2: 512, 3: 512}
    assert graph.predecessors(12) == (4, 8, 10, 11)
    assert graph.successors(0) == [5, 6, 8, 9, 10, 11]
    assert graph.output_indices == [14]
    assert graph.stems_of(StemType.FLOW) == [2, 3]
    edges = graph.edges()
    assert len(edges) == sum(len(graph[i].inputs) for i in graph.block_indices) == 30
    assert edges[-1].source == 13 and edges[-1].target == 14
    assert edges[-1].weight == pytest.approx(0.8454614877700806)


def test_canonical_hash_ignores_input_order_numbering_and_weights():
    graph = official_graph("asn50")
    assert graph.canonical_hash() == official_graph("asn50").canonical_hash()
    assert graph.canonical_hash() == graph.without_edge_weights().canonical_hash()
    assert graph.canonical_hash(include_weights=True) != graph.without_edge_weights().canonical_hash(
        include_weights=True
    )
    structure = copy.deepcopy(ASN50_STRUCTURE)
    structure[12][1] = [11, 4, 10, 8]
    assert AssembleNetGraph.from_official(structure).canonical_hash() == graph.canonical_hash()
    # Swap nodes 4 and 5 (both level 0): a different numbering of the same wiring.
    renumbered = copy.deepcopy(ASN50_STRUCTURE)
    renumbered[4], renumbered[5] = renumbered[5], renumbered[4]
    swap = {4: 5, 5: 4}
    for entry in renumbered[6:]:
        entry[1] = [swap.get(i, i) for i in entry[1]]
    assert AssembleNetGraph.from_official(renumbered).canonical_hash() == graph.canonical_hash()
    assert official_graph("asn101").canonical_hash() != graph.canonical_hash()
    structure = copy.deepcopy(ASN50_STRUCTURE)
    structure[7][3] = 4
    assert AssembleNetGraph.from_official(structure).canonical_hash() != graph.canonical_hash()


def test_hash_tells_shared_stems_from_duplicated_ones():
    # Two identical RGB stems: one graph shares stem 0 between nodes 2 and 3, the other gives each its own.
    shared = AssembleNetGraph.from_official(
        [[-1, 1], [-1, 1], [0, [0], 8, 1, 1, 0], [0, [0, 1], 8, 1, 1, 0], [3, [2, 3], 8, 1, 2, 0]]
    )
    separate = AssembleNetGraph.from_official(
        [[-1, 1], [-1, 1], [0, [0], 8, 1, 1, 0], [0, [1], 8, 1, 1, 0], [3, [2, 3], 8, 1, 2, 0]]
    )
    assert shared.canonical_hash() != separate.canonical_hash()


def test_scaled_and_weight_helpers():
    graph = official_graph("asn50")
    small = graph.scaled(0.125)
    assert [small[i].filters for i in small.block_indices] == [4] * 4 + [8] * 4 + [32, 32, 64]
    assert small.scaled(8).channel_budget() == graph.channel_budget()
    learned = graph.without_edge_weights().with_edge_weights(
        [None] * 6 + [[0.1, 0.2, 0.3, 0.4]] + [None] * 8
    )
    assert learned[6].edge_weights == (0.1, 0.2, 0.3, 0.4) and learned[7].edge_weights is None
    with pytest.raises(GraphError, match="node 6: 2 edge weights for 4 inputs"):
        graph.with_edge_weights([None] * 6 + [[0.1, 0.2]] + [None] * 8)


@st.composite
def random_graphs(draw):
    num_stems = draw(st.integers(1, 4))
    nodes = [StemNode(draw(st.sampled_from(list(StemType))), draw(st.sampled_from([1, 2, 4, 8])))
             for _ in range(num_stems)]
    levels = sorted(draw(st.lists(st.integers(0, 3), min_size=1, max_size=8))) + [3]
    for level in levels:
        index = len(nodes)
        inputs = draw(st.lists(st.integers(0, index - 1), min_size=1, max_size=min(index, 5), unique=True))
        weights = draw(st.one_of(st.none(), st.lists(st.floats(0.01, 0.99), min_size=len(inputs),
                                                     max_size=len(inputs))))
        nodes.append(BlockNode(level, tuple(inputs), draw(st.integers(1, 64)), draw(st.sampled_from([1, 2, 4, 8])),
                               draw(st.sampled_from([1, 2])), tuple(weights) if weights else None))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # random wiring leaves dead nodes; pruning them is the point
        return _unchecked_graph(nodes).pruned()


@settings(max_examples=60, deadline=None)
@given(random_graphs())
def test_random_graphs_round_trip_through_every_format(graph):
    graph = AssembleNetGraph(graph.nodes)  # validates
    structure, weights = graph.to_official()
    assert AssembleNetGraph.from_official(structure, weights or None) == graph
    assert graph_from_dict(graph_to_dict(graph)) == graph
    assert graph_from_dict(yaml.safe_load(yaml.safe_dump(graph_to_dict(graph)))) == graph
