"""Mutations of AssembleNet graphs. Each returns a valid child in the search space, or ``None`` (rejected).

- Connection, guided: drop every edge whose learned sigmoid weight is below a threshold, then add random new
  edges so that the expected edge count stays the same. A block that loses all its outgoing edges this way is
  judged useless and absorbed: it is removed and its filters go to another node of its level (keeping the
  budget). The pruned edges are never re-added, by the additions nor by the repair, so the child holds
  exactly the parent's edges at or above the threshold (except those of absorbed nodes) plus new ones.
- Connection, unguided (the baseline): the same, but each edge is dropped with a fixed probability, ignoring
  the learned weights.

In both, ``details`` lists ``pruned``, ``added``, ``absorbed`` ([removed, receiver] pairs) and ``repaired``
edges, in the parent's node indices (a connection mutation keeps the indices of the surviving nodes).
- Dilation: change one node's or stem's temporal dilation to another allowed value.
- Split: replace a node by two at the same level with half the filters each; both read the node's inputs
  and feed its consumers.
- Merge: replace two nodes of one level by one with their summed filters, the union of their inputs and
  consumers, and the dilation of one of them.

Split and merge keep each level's channel budget. Every child is repaired (edges are added so that every
block has an input and every non-output node a consumer) and checked against the space; a child that cannot
be repaired is rejected. Node indices are kept by connection and dilation mutations.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from assemblenet.errors import GraphError
from assemblenet.graph.spec import OUTPUT_LEVEL, AssembleNetGraph
from assemblenet.search.draft import GraphDraft
from assemblenet.search.space import SearchSpace

EdgeWeights = Mapping[tuple[int, int], float]


@dataclass(frozen=True)
class Mutation:
    """What was done to the parent; ``details`` is JSON-serialisable and uses the parent's node indices."""

    kind: str
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, **self.details}


@dataclass(frozen=True)
class MutationResult:
    graph: AssembleNetGraph
    mutation: Mutation


def below_threshold_edges(graph: AssembleNetGraph, weights: EdgeWeights, threshold: float) -> list[tuple[int, int]]:
    """The edges a guided mutation prunes. Edges without a learned weight are kept."""
    return [
        (e.source, e.target) for e in graph.edges()
        if (e.source, e.target) in weights and weights[(e.source, e.target)] < threshold
    ]


def guided_connection_mutation(
    graph: AssembleNetGraph,
    learned_weights: EdgeWeights,
    *,
    space: SearchSpace,
    rng: random.Random,
    threshold: float,
) -> MutationResult | None:
    pruned = below_threshold_edges(graph, learned_weights, threshold)
    if not pruned:
        return None  # nothing to learn from: the caller draws another mutation
    return _rewire(graph, pruned, space=space, rng=rng, kind="connection-guided", extra={"threshold": threshold})


def threshold_connections(
    graph: AssembleNetGraph,
    learned_weights: EdgeWeights,
    *,
    space: SearchSpace,
    rng: random.Random,
    threshold: float,
) -> MutationResult | None:
    """One-shot connection search: drop the edges below ``threshold`` and add nothing (only repairs)."""
    pruned = below_threshold_edges(graph, learned_weights, threshold)
    if not pruned:
        return None
    return _rewire(graph, pruned, space=space, rng=rng, kind="oneshot-threshold", extra={"threshold": threshold},
                   add_random_edges=False)


def random_connection_mutation(
    graph: AssembleNetGraph,
    *,
    space: SearchSpace,
    rng: random.Random,
    prune_probability: float,
) -> MutationResult | None:
    pruned = [(e.source, e.target) for e in graph.edges() if rng.random() < prune_probability]
    if not pruned:
        return None
    return _rewire(graph, pruned, space=space, rng=rng, kind="connection-random",
                   extra={"prune_probability": prune_probability})


def _rewire(
    graph: AssembleNetGraph,
    pruned: list[tuple[int, int]],
    *,
    space: SearchSpace,
    rng: random.Random,
    kind: str,
    extra: dict[str, Any],
    add_random_edges: bool = True,
) -> MutationResult | None:
    draft = GraphDraft.from_graph(graph)
    parent_edge_count = len(graph.edges())
    forbidden = frozenset(pruned)
    for source, target in pruned:
        draft.nodes[target].inputs.discard(source)
    absorbed = _absorb_disconnected(draft, graph, space, rng)
    if absorbed is None:
        return None
    existing = set(draft.edges())
    candidates = [e for e in draft.allowed_edges() if e not in existing and e not in forbidden]
    added: list[tuple[int, int]] = []
    if candidates and add_random_edges:
        # Each candidate is added independently, so the expected edge count equals the parent's.
        p = min(1.0, (parent_edge_count - len(existing)) / len(candidates))
        added = [e for e in candidates if rng.random() < p]
        for source, target in added:
            draft.nodes[target].inputs.add(source)
    child = _finish(draft, space, rng, forbidden=forbidden)
    if child is None:
        return None
    repaired = sorted(set(child.edges_as_pairs()) - existing - set(added))
    details = {**extra, "pruned": [list(e) for e in pruned], "added": [list(e) for e in added]}
    if absorbed:
        details["absorbed"] = [list(pair) for pair in absorbed]
    if repaired:
        details["repaired"] = [list(e) for e in repaired]
    return MutationResult(child.graph, Mutation(kind, details))


def _absorb_disconnected(
    draft: GraphDraft, parent: AssembleNetGraph, space: SearchSpace, rng: random.Random
) -> list[tuple[int, int]] | None:
    """Remove each block whose every outgoing edge was pruned and give its filters to a random node of its
    level (keeping the budget): the learned weights say it is not worth its channels. Returns the
    ``(removed, receiver)`` pairs, or None if such a block is alone at its level."""
    dead = [
        i for i in draft.order
        if not draft.nodes[i].is_stem and draft.nodes[i].level < OUTPUT_LEVEL
        and parent.successors(i) and not draft.consumers(i)
    ]
    absorbed = []
    for node_id in dead:
        level = draft.nodes[node_id].level
        receivers = [i for i in draft.blocks_at_level(level) if i != node_id and i not in dead]
        if not receivers:
            return None
        receiver = rng.choice(receivers)
        draft.nodes[receiver].filters += draft.nodes[node_id].filters
        draft.remove(node_id)
        absorbed.append((node_id, receiver))
    return absorbed


def dilation_mutation(graph: AssembleNetGraph, *, space: SearchSpace, rng: random.Random) -> MutationResult | None:
    draft = GraphDraft.from_graph(graph)
    choices = [i for i in draft.order if len(space.dilations_for(draft.nodes[i])) > 1]
    if not choices:
        return None
    node_id = rng.choice(choices)
    node = draft.nodes[node_id]
    old = node.dilation
    node.dilation = rng.choice([d for d in space.dilations_for(node) if d != old])
    child = _finish(draft, space, rng)
    if child is None:
        return None
    return MutationResult(child.graph, Mutation("dilation", {"node": node_id, "old": old, "new": node.dilation}))


def split_mutation(graph: AssembleNetGraph, *, space: SearchSpace, rng: random.Random) -> MutationResult | None:
    draft = GraphDraft.from_graph(graph)
    choices = [i for i in draft.order if space.can_split(draft, i)]
    if not choices:
        return None
    node_id = rng.choice(choices)
    node = draft.nodes[node_id]
    total = node.filters
    half = (total // space.quantum // 2) * space.quantum
    node.filters = total - half
    twin = type(node)(node.level, node.dilation, half, inputs=set(node.inputs))
    twin_id = draft.add(twin, after=node_id)
    for consumer in draft.consumers(node_id):
        draft.nodes[consumer].inputs.add(twin_id)
    child = _finish(draft, space, rng)
    if child is None:
        return None
    return MutationResult(child.graph, Mutation("split", {"node": node_id, "filters": [total - half, half]}))


def merge_mutation(graph: AssembleNetGraph, *, space: SearchSpace, rng: random.Random) -> MutationResult | None:
    draft = GraphDraft.from_graph(graph)
    levels = sorted({draft.nodes[i].level for i in draft.order if not draft.nodes[i].is_stem})
    levels = [level for level in levels if space.can_merge_at(draft, level)]
    if not levels:
        return None
    level = rng.choice(levels)
    keep_id, drop_id = sorted(rng.sample(draft.blocks_at_level(level), 2), key=draft.order.index)
    keep, drop = draft.nodes[keep_id], draft.nodes[drop_id]
    keep.filters += drop.filters
    keep.inputs |= drop.inputs
    keep.dilation = rng.choice([keep.dilation, drop.dilation])
    for consumer in draft.consumers(drop_id):
        draft.nodes[consumer].inputs.add(keep_id)
    draft.remove(drop_id)
    child = _finish(draft, space, rng)
    if child is None:
        return None
    return MutationResult(child.graph, Mutation("merge", {"nodes": [keep_id, drop_id], "level": level}))


@dataclass
class _Child:
    graph: AssembleNetGraph
    ids: list[int]  # draft id of each child node

    def edges_as_pairs(self) -> list[tuple[int, int]]:
        return [(self.ids[e.source], self.ids[e.target]) for e in self.graph.edges()]


def _finish(
    draft: GraphDraft, space: SearchSpace, rng: random.Random, *, forbidden: frozenset = frozenset()
) -> _Child | None:
    if not draft.repair(rng, forbidden=forbidden):
        return None
    try:
        graph = draft.to_graph()
    except GraphError:
        return None
    if not space.contains(graph):
        return None
    return _Child(graph, draft.sorted_ids())


# ---------------------------------------------------------------------- choosing a mutation
def mutate(
    parent: AssembleNetGraph,
    *,
    space: SearchSpace,
    rng: random.Random,
    probabilities: Mapping[str, float],
    guided: bool,
    learned_weights: EdgeWeights | None = None,
    threshold: float = 0.2,
    prune_probability: float = 0.2,
    max_attempts: int = 20,
    accept: Callable[[AssembleNetGraph], bool] = lambda graph: True,
) -> MutationResult | None:
    """Draw one mutation by ``probabilities`` and apply it; retry (drawing again) while the mutation is not
    applicable or ``accept`` rejects the child (e.g. a duplicate). Returns None after ``max_attempts``.

    Guided connection mutations need the parent's ``learned_weights``; without them the draw falls back to
    the unguided connection mutation.
    """
    kinds = [k for k in sorted(probabilities) if probabilities[k] > 0]
    weights = [probabilities[k] for k in kinds]
    for _ in range(max_attempts):
        kind = rng.choices(kinds, weights=weights)[0]
        if kind == "connection":
            if guided and learned_weights is not None:
                result = guided_connection_mutation(parent, learned_weights, space=space, rng=rng, threshold=threshold)
            else:
                result = random_connection_mutation(parent, space=space, rng=rng, prune_probability=prune_probability)
        elif kind == "dilation":
            result = dilation_mutation(parent, space=space, rng=rng)
        elif kind == "split":
            result = split_mutation(parent, space=space, rng=rng)
        elif kind == "merge":
            result = merge_mutation(parent, space=space, rng=rng)
        else:
            raise ValueError(f"unknown mutation kind {kind!r}")
        if result is not None and accept(result.graph):
            return result
    return None
