"""Attention sources (AssembleNet++ peer attention) in the graph: validation, files, pruning and identity."""

import dataclasses

import pytest

from assemblenet.errors import GraphError
from assemblenet.graph import AssembleNetGraph, graph_from_dict, graph_to_dict, load_graph, official_graph, save_graph

STRUCTURE = [[-1, 1], [-3, 1], [0, [0, 1], 4, 1, 1, 0], [0, [1], 4, 1, 1, 0], [1, [2, 3], 8, 1, 2, 0],
             [3, [4], 8, 1, 2, 0]]


def with_sources(graph, index, sources):
    nodes = list(graph.nodes)
    nodes[index] = dataclasses.replace(nodes[index], attention_sources=sources)
    return graph.replace_nodes(nodes)


def test_candidates_follow_the_authors_order_and_sources_select_among_them():
    graph = AssembleNetGraph.from_official(STRUCTURE)
    assert graph.attention_candidates(2) == [1, 0]  # object stems first, then flow, then RGB
    assert graph.attention_candidates(5) == [1, 0, 2, 3, 4]
    chosen = with_sources(graph, 5, (4, 0))
    assert chosen.attention_sources(5) == [0, 4] and chosen.attention_sources(4) == [1, 0, 2, 3]
    assert chosen.has_attention_sources and not graph.has_attention_sources
    with pytest.raises(GraphError, match="node 0 is a stem"):
        graph.attention_candidates(0)


@pytest.mark.parametrize("sources, message", [
    ((2, 5), "attention source 5 must be a stem or a node of a level below 1"),
    ((3,), None),
    ((4,), "attention source 4 must be a stem or a node of a level below 1"),  # same level
    ((0, 0), "duplicate attention sources"),
])
def test_attention_sources_are_validated(sources, message):
    graph = AssembleNetGraph.from_official(STRUCTURE)
    if message is None:
        assert with_sources(graph, 4, sources).attention_sources(4) == [3]
    else:
        with pytest.raises(GraphError, match=message):
            with_sources(graph, 4, sources)


def test_sources_round_trip_through_our_format_and_are_refused_by_the_official_one(tmp_path):
    graph = with_sources(AssembleNetGraph.from_official(STRUCTURE), 5, (1, 4))
    assert graph_from_dict(graph_to_dict(graph)) == graph
    assert load_graph(save_graph(graph, tmp_path / "g.yaml")) == graph
    assert "attention_sources" not in str(graph_to_dict(AssembleNetGraph.from_official(STRUCTURE)))
    with pytest.raises(GraphError, match="official format has no place for attention sources"):
        save_graph(graph, tmp_path / "g.json", official=True)
    with pytest.raises(GraphError, match="'attention_sources' must be a list"):
        graph_from_dict({"nodes": [{"stem": "rgb"}, {"level": 3, "inputs": [0], "filters": 2,
                                                     "attention_sources": 0}]})


def test_hash_and_pruning_keep_track_of_sources():
    graph = AssembleNetGraph.from_official(STRUCTURE)
    assert graph.canonical_hash() != with_sources(graph, 5, (1,)).canonical_hash()
    assert with_sources(graph, 5, (1,)).canonical_hash() != with_sources(graph, 5, (0,)).canonical_hash()
    asnp50 = official_graph("asnp50")
    nodes = list(asnp50.nodes)
    nodes[14] = dataclasses.replace(nodes[14], attention_sources=(4, 9, 11))  # 9 feeds nothing
    with pytest.warns(UserWarning, match="pruned 1 node"):
        pruned = asnp50.replace_nodes(nodes).pruned()
    assert pruned[13].attention_sources == (4, 10)  # 9 is gone, 11 became 10


def test_a_node_whose_only_chosen_peer_is_pruned_attends_to_every_candidate_again():
    asnp50 = official_graph("asnp50")
    nodes = list(asnp50.nodes)
    nodes[14] = dataclasses.replace(nodes[14], attention_sources=(9,))  # 9 feeds nothing and will be pruned
    with pytest.warns(UserWarning, match="pruned 1 node"):
        pruned = asnp50.replace_nodes(nodes).pruned()
    assert pruned[13].attention_sources is None
    assert pruned.attention_sources(13) == pruned.attention_candidates(13)  # not an empty (unbuildable) set
