"""Reading learned AssembleNet++ peer attention, for the search.

A run with peer attention learns, for every connection ``(source, target)``, a softmax over the target's
attention sources (:class:`~assemblenet.search.fitness_types.FitnessResult.attention_weights`). A graph keeps
one set of attention sources per block node (``BlockNode.attention_sources``), shared by the node's
connections, so the search reads the attention per node: the mean of each peer's softmax weight over the
node's connections (what ``AssembleNet.strongest_attention_sources`` reports too), and the node's strongest
peers are the ``top_k`` highest means (ties: the lower node index).

The mutations that use these (the one-shot read-off and the ``attention`` mutation) live in
:mod:`assemblenet.search.mutations`.
"""

from __future__ import annotations

import dataclasses
import random
from typing import Mapping, Sequence

from assemblenet.graph.spec import AssembleNetGraph, BlockNode
from assemblenet.search.fitness_types import AttentionWeights

NodeAttention = dict[int, dict[int, float]]  # target node -> {peer: mean softmax weight}


def attention_per_node(attention: AttentionWeights, graph: AssembleNetGraph | None = None) -> NodeAttention:
    """Each target node's peers with their softmax weight averaged over the node's connections.

    With ``graph``, only its connections count and only peers that may be attention sources of the target in
    it (stems and lower-level nodes), so weights learned on another graph never name an invalid peer.
    """
    sums: dict[int, dict[int, list[float]]] = {}
    edges = None if graph is None else {(e.source, e.target) for e in graph.edges()}
    for (source, target), peers in sorted(attention.items()):
        if edges is not None and (source, target) not in edges:
            continue
        allowed = None if graph is None else set(graph.attention_candidates(target))
        for peer, weight in peers.items():
            if allowed is None or peer in allowed:
                sums.setdefault(target, {}).setdefault(peer, []).append(float(weight))
    return {t: {p: sum(ws) / len(ws) for p, ws in by_peer.items()} for t, by_peer in sums.items()}


def strongest_peers(weights: Mapping[int, float], top_k: int) -> list[int]:
    """The ``top_k`` peers with the highest weight, strongest first (ties: the lower index)."""
    if top_k < 1:
        raise ValueError(f"top_k must be at least 1, got {top_k}")
    return sorted(weights, key=lambda peer: (-weights[peer], peer))[:top_k]


def random_attention_sources(candidates: Sequence[int], rng: random.Random) -> set[int]:
    """A random non-empty subset of ``candidates``: a size drawn uniformly from 1..n, then that many peers."""
    return set(rng.sample(list(candidates), rng.randint(1, len(candidates))))


def with_attention_sources(graph: AssembleNetGraph, sources: Mapping[int, Sequence[int]]) -> AssembleNetGraph:
    """``graph`` with the given block nodes' attention sources replaced (validated)."""
    nodes = [
        dataclasses.replace(node, attention_sources=tuple(sorted(sources[i])))
        if i in sources and isinstance(node, BlockNode) else node
        for i, node in enumerate(graph.nodes)
    ]
    return graph.replace_nodes(nodes)
