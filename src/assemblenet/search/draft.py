"""A mutable, id-based working copy of a graph that mutations edit before it is validated.

Node ids stay stable while nodes are added or removed, so an edge ``(source_id, target_id)`` keeps its meaning
through a mutation. :meth:`GraphDraft.to_graph` orders the nodes (stems, then blocks by level, keeping the draft
order inside a level), re-indexes them and builds a validated :class:`AssembleNetGraph`.

Attention sources (AssembleNet++ peer attention) travel with the nodes as ids too: ``None`` (every candidate)
stays ``None``, and a removed node's place in other nodes' sources goes to its heir (the node that took its
filters), so mutations keep explicit sources valid.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from assemblenet.errors import GraphError
from assemblenet.graph.spec import OUTPUT_LEVEL, AssembleNetGraph, BlockNode, StemNode, StemType

STEM_LEVEL = -1  # stems sit below level 0: every block may read them


@dataclass
class DraftNode:
    level: int  # STEM_LEVEL for stems
    dilation: int
    filters: int = 0
    stem_type: StemType | None = None
    inputs: set[int] = field(default_factory=set)
    attention: set[int] | None = None  # peer-attention source ids; None: every candidate


    @property
    def is_stem(self) -> bool:
        return self.stem_type is not None


def spatial_stride_for_level(level: int) -> int:
    """asn50's convention: level 0 keeps the stem resolution, every later level halves it."""
    return 1 if level == 0 else 2


class GraphDraft:
    def __init__(self) -> None:
        self.nodes: dict[int, DraftNode] = {}
        self.order: list[int] = []  # draft order; to_graph sorts it stably by level

    # ------------------------------------------------------------------ conversion
    @classmethod
    def from_graph(cls, graph: AssembleNetGraph) -> "GraphDraft":
        draft = cls()
        for index, node in enumerate(graph.nodes):
            if isinstance(node, StemNode):
                draft.add(DraftNode(STEM_LEVEL, node.temporal_dilation, stem_type=node.stem_type), node_id=index)
            else:
                if isinstance(node.filters, tuple):
                    raise GraphError(f"node {index}: the search needs int filters; this graph has filter triples")
                attention = None if node.attention_sources is None else set(node.attention_sources)
                draft.add(DraftNode(node.level, node.temporal_dilation, node.filters, inputs=set(node.inputs),
                                    attention=attention), node_id=index)
        return draft

    def sorted_ids(self) -> list[int]:
        return sorted(self.order, key=lambda i: self.nodes[i].level)  # stable: keeps draft order per level

    def to_graph(self) -> AssembleNetGraph:
        """Build and validate the graph (raises GraphError). Node ``i`` of the result is ``sorted_ids()[i]``."""
        ids = self.sorted_ids()
        index_of = {node_id: index for index, node_id in enumerate(ids)}
        nodes: list[StemNode | BlockNode] = []
        for node_id in ids:
            node = self.nodes[node_id]
            if node.stem_type is not None:  # node.is_stem
                nodes.append(StemNode(node.stem_type, node.dilation))
            else:
                nodes.append(BlockNode(
                    level=node.level,
                    inputs=tuple(sorted(index_of[i] for i in node.inputs)),
                    filters=node.filters,
                    temporal_dilation=node.dilation,
                    spatial_stride=spatial_stride_for_level(node.level),
                    attention_sources=(None if node.attention is None
                                       else tuple(sorted(index_of[i] for i in node.attention))),
                ))
        return AssembleNetGraph(tuple(nodes))

    # ------------------------------------------------------------------ editing
    def add(self, node: DraftNode, *, node_id: int | None = None, after: int | None = None) -> int:
        if node_id is None:
            node_id = max(self.nodes, default=-1) + 1
        self.nodes[node_id] = node
        if after is None:
            self.order.append(node_id)
        else:
            self.order.insert(self.order.index(after) + 1, node_id)
        return node_id

    def remove(self, node_id: int, *, heir: int | None = None) -> None:
        """Remove a node and its edges. Where it was an attention source, ``heir`` (e.g. the node that took its
        filters) takes its place if it may be one."""
        del self.nodes[node_id]
        self.order.remove(node_id)
        for target, node in self.nodes.items():
            node.inputs.discard(node_id)
            if node.attention is not None and node_id in node.attention:
                node.attention.discard(node_id)
                if heir is not None and heir != target and self.nodes[heir].level < node.level:
                    node.attention.add(heir)

    def edges(self) -> list[tuple[int, int]]:
        return sorted((s, t) for t, node in self.nodes.items() for s in node.inputs)

    def consumers(self, node_id: int) -> list[int]:
        return sorted(t for t, node in self.nodes.items() if node_id in node.inputs)

    def allowed_sources(self, target: int) -> list[int]:
        """Nodes ``target`` may read: every stem and every block at a lower level."""
        level = self.nodes[target].level
        return [i for i in self.order if self.nodes[i].level < level]

    def allowed_edges(self) -> list[tuple[int, int]]:
        return sorted(
            (s, t) for t in self.order if not self.nodes[t].is_stem for s in self.allowed_sources(t)
        )

    def blocks_at_level(self, level: int) -> list[int]:
        return [i for i in self.order if self.nodes[i].level == level and not self.nodes[i].is_stem]

    def repair(self, rng: random.Random, *, forbidden: frozenset[tuple[int, int]] | set = frozenset()) -> bool:
        """Make the draft valid by adding edges: every block gets an input and every non-output node a consumer
        (and a block whose explicit attention sources were all removed gets a random candidate).

        New edges are drawn from the allowed ones minus ``forbidden`` (e.g. the edges a guided mutation just
        pruned). Returns False if some node cannot be connected; the caller then rejects the draft.
        """
        for node_id in list(self.order):
            node = self.nodes[node_id]
            if not node.is_stem and not node.inputs:
                candidates = [s for s in self.allowed_sources(node_id) if (s, node_id) not in forbidden]
                if not candidates:
                    return False
                node.inputs.add(rng.choice(candidates))
        for node_id in list(self.order):  # explicit attention sources must not be empty
            node = self.nodes[node_id]
            if node.attention is not None and not node.attention:
                node.attention.add(rng.choice(self.allowed_sources(node_id)))
        # Adding a consumer never removes an input, so one pass of each suffices.
        for node_id in list(self.order):
            node = self.nodes[node_id]
            if node.level == OUTPUT_LEVEL or self.consumers(node_id):
                continue
            candidates = [
                t for t in self.order
                if self.nodes[t].level > node.level and (node_id, t) not in forbidden
            ]
            if not candidates:
                return False
            self.nodes[rng.choice(candidates)].inputs.add(node_id)
        return True
