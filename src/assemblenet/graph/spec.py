"""Typed AssembleNet architecture graphs.

A graph is a list of nodes in topological order. Stems read a modality (RGB, optical flow, object
segmentation) at a temporal dilation. Block nodes sit at a ResNet level (0..3, i.e. res2..res5), read any set of
earlier nodes, and output ``4 * filters`` channels. Level-3 nodes are the network's outputs.

AssembleNet++lite graphs give each block node a filter triple ``(expand, expand, out)`` instead (the authors'
``asnp_lite`` structure): its inverted-bottleneck blocks widen to the first two and output the third. A graph
uses one kind for all its block nodes (:attr:`AssembleNetGraph.uses_filter_triples`).

Edge weights are the post-sigmoid connection strengths of a node's inputs, in the order of its input list. A
graph either carries them (the model freezes them) or not (the model learns them).

Dead nodes: validation rejects a non-output node that feeds nothing, unless the graph is created with
``allow_dead_nodes=True``. The official AssembleNet++ structure ``asnp50`` has one (node 9 feeds nothing; TF
computes it anyway), so the official structures are loaded with that flag to stay lossless.
``AssembleNetGraph.pruned()`` removes dead nodes (repeatedly, with a warning) and re-indexes the rest, for
callers such as the search that prefer to repair a graph.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
import math
import warnings
from dataclasses import dataclass, field
from typing import Iterable, Iterator, Sequence, Union

from assemblenet.errors import GraphError

NUM_LEVELS = 4
OUTPUT_LEVEL = NUM_LEVELS - 1

# Bottleneck blocks per level of the standard (ResNet-style) AssembleNet at each supported depth; the models
# build from this table and the config and CLI offer its keys. AssembleNet++lite has no depth option.
BLOCKS_PER_DEPTH: dict[int, tuple[int, int, int, int]] = {
    26: (2, 2, 2, 2),
    38: (2, 4, 4, 2),
    50: (3, 4, 6, 3),
    68: (3, 4, 12, 3),
    77: (3, 4, 15, 3),
    101: (3, 4, 23, 3),
}
SUPPORTED_DEPTHS = tuple(BLOCKS_PER_DEPTH)
DEFAULT_DEPTH = 50

# Channels of the object maps an object stem reads by default: the 151 ADE-20k classes of AssembleNet++'s
# segmentation input.
NUM_OBJECT_CLASSES = 151


class StemType(enum.IntEnum):
    """Official integer codes of the input modalities."""

    RGB = -1
    FLOW = -2
    OBJECT = -3

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, value: object, *, where: str = "stem") -> "StemType":
        if isinstance(value, StemType):
            return value
        if isinstance(value, str):
            try:
                return cls[value.strip().upper()]
            except KeyError:
                pass
        elif isinstance(value, int) and not isinstance(value, bool):
            try:
                return cls(value)
            except ValueError:
                pass
        raise GraphError(
            f"{where}: unknown stem type {value!r}; expected one of "
            "-1/'rgb', -2/'flow', -3/'object'"
        )


@dataclass(frozen=True)
class StemNode:
    """An input node: a modality read at a temporal dilation."""

    stem_type: StemType
    temporal_dilation: int = 1

    is_stem = True

    @property
    def modality(self) -> str:
        return self.stem_type.label


@dataclass(frozen=True)
class BlockNode:
    """A block group at ``level`` reading ``inputs`` (indices of earlier nodes).

    ``edge_weights`` are post-sigmoid strengths in the order of ``inputs``; ``None`` means learnable.
    ``reserved`` keeps the official format's unused last field so round trips are lossless.
    ``filters`` is an int (bottleneck blocks, ``4 * filters`` outputs) or, for AssembleNet++lite, a triple
    ``(f0, f1, f2)`` (inverted-bottleneck blocks: 1x1x1 to f0, 3x3(x3) at f1, 1x1x1 to f2 outputs).
    ``attention_sources`` (AssembleNet++ peer attention) are the nodes whose features may condition this node's
    connections; ``None`` means every candidate (:meth:`AssembleNetGraph.attention_candidates`). They must be
    stems or nodes of a lower level. The official nested-list format has no place for them.
    """

    level: int
    inputs: tuple[int, ...]
    filters: int | tuple[int, int, int]
    temporal_dilation: int = 1
    spatial_stride: int = 1
    edge_weights: tuple[float, ...] | None = None
    reserved: int = 0
    attention_sources: tuple[int, ...] | None = None

    is_stem = False

    @property
    def has_filter_triple(self) -> bool:
        return isinstance(self.filters, tuple)

    @property
    def out_channels(self) -> int:
        if isinstance(self.filters, tuple):
            return self.filters[-1]
        return 4 * self.filters

    def filters_scaled(self, width_multiplier: float) -> int | tuple[int, int, int]:
        """The filters times ``width_multiplier`` (each at least 1), an int or a triple like the original."""
        if isinstance(self.filters, tuple):
            f0, f1, f2 = (max(1, int(round(f * width_multiplier))) for f in self.filters)
            return f0, f1, f2
        return max(1, int(round(self.filters * width_multiplier)))


Node = Union[StemNode, BlockNode]


@dataclass(frozen=True)
class Edge:
    source: int
    target: int
    weight: float | None  # post-sigmoid strength, None where the graph carries no weight


@dataclass(frozen=True)
class AssembleNetGraph:
    """An immutable, validated AssembleNet architecture.

    Build one from the official nested lists with :meth:`from_official`, from our YAML/JSON with
    :func:`assemblenet.graph.load_graph`, or directly from nodes (validated on construction).
    """

    nodes: tuple[Node, ...]
    name: str | None = field(default=None, compare=False)
    allow_dead_nodes: bool = field(default=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "nodes", tuple(self.nodes))
        validate_nodes(self.nodes, allow_dead_nodes=self.allow_dead_nodes)

    # ------------------------------------------------------------------ construction and conversion
    @classmethod
    def from_official(
        cls,
        structure: Sequence[Sequence[object]],
        edge_weights: Sequence[Sequence[Sequence[float]]] | None = None,
        *,
        name: str | None = None,
        allow_dead_nodes: bool = False,
    ) -> "AssembleNetGraph":
        """Parse the official format: ``[stem_type, dilation]`` and ``[level, inputs, filters, dilation,
        stride, 0]`` entries, plus an optional weight list parallel to the nodes (``[]`` or ``[[w1..wn]]``)."""
        if not isinstance(structure, (list, tuple)) or len(structure) == 0:
            raise GraphError("graph is empty: expected a non-empty list of nodes")
        weights = list(edge_weights) if edge_weights else None
        if weights is not None and len(weights) != len(structure):
            raise GraphError(
                f"edge weight list has {len(weights)} entries but the graph has {len(structure)} nodes; "
                "expected one entry per node ([] for stems and single-input nodes)"
            )
        nodes: list[Node] = []
        for index, entry in enumerate(structure):
            where = f"node {index}"
            if not isinstance(entry, (list, tuple)):
                raise GraphError(f"{where}: expected a list, got {entry!r}")
            if len(entry) == 2:
                stem_type = StemType.parse(entry[0], where=where)
                nodes.append(StemNode(stem_type, _as_int(entry[1], f"{where} temporal dilation")))
                if weights is not None and _flatten_weights(weights[index], where):
                    raise GraphError(f"{where}: a stem has no inputs, so its edge weights must be []")
                continue
            if len(entry) not in (5, 6):
                raise GraphError(
                    f"{where}: expected [stem_type, dilation] or [level, [inputs], filters, dilation, stride, 0], "
                    f"got {entry!r}"
                )
            level, inputs, filters, dilation, stride = entry[:5]
            if not isinstance(inputs, (list, tuple)):
                raise GraphError(f"{where}: inputs must be a list of node indices, got {inputs!r}")
            node_weights = _flatten_weights(weights[index], where) if weights is not None else None
            nodes.append(
                BlockNode(
                    level=_as_int(level, f"{where} level"),
                    inputs=tuple(_as_int(i, f"{where} input") for i in inputs),
                    filters=parse_filters(filters, f"{where} filters"),
                    temporal_dilation=_as_int(dilation, f"{where} temporal dilation"),
                    spatial_stride=_as_int(stride, f"{where} spatial stride"),
                    edge_weights=_weights_for_node(node_weights, len(inputs), where),
                    reserved=_as_int(entry[5], f"{where} last field") if len(entry) == 6 else 0,
                )
            )
        return cls(tuple(nodes), name=name, allow_dead_nodes=allow_dead_nodes)

    def to_official(self) -> tuple[list[list[object]], list[list[list[float]]]]:
        """Return ``(structure, edge_weights)`` in the official format. Weights are ``[]`` when the graph
        carries none."""
        structure: list[list[object]] = []
        weights: list[list[list[float]]] = []
        for node in self.nodes:
            if isinstance(node, StemNode):
                structure.append([int(node.stem_type), node.temporal_dilation])
                weights.append([])
            else:
                structure.append(
                    [node.level, list(node.inputs),
                     list(node.filters) if isinstance(node.filters, tuple) else node.filters, node.temporal_dilation,
                     node.spatial_stride, node.reserved]
                )
                weights.append([list(node.edge_weights)] if node.edge_weights is not None else [])
        return structure, (weights if self.has_edge_weights else [])

    # ------------------------------------------------------------------ queries
    def __len__(self) -> int:
        return len(self.nodes)

    def __iter__(self) -> Iterator[Node]:
        return iter(self.nodes)

    def __getitem__(self, index: int) -> Node:
        return self.nodes[index]

    @property
    def has_edge_weights(self) -> bool:
        """True if any node carries fixed edge weights."""
        return any(isinstance(n, BlockNode) and n.edge_weights is not None for n in self.nodes)

    @property
    def uses_filter_triples(self) -> bool:
        """True for an AssembleNet++lite graph (every block node has an ``(expand, expand, out)`` triple)."""
        return any(isinstance(n, BlockNode) and n.has_filter_triple for n in self.nodes)

    @property
    def stem_indices(self) -> list[int]:
        return [i for i, n in enumerate(self.nodes) if isinstance(n, StemNode)]

    @property
    def block_indices(self) -> list[int]:
        return [i for i, n in enumerate(self.nodes) if isinstance(n, BlockNode)]

    @property
    def output_indices(self) -> list[int]:
        """All level-3 nodes: the network's outputs."""
        return [i for i, n in enumerate(self.nodes) if isinstance(n, BlockNode) and n.level == OUTPUT_LEVEL]

    def stems_of(self, stem_type: StemType) -> list[int]:
        return [i for i, n in enumerate(self.nodes) if isinstance(n, StemNode) and n.stem_type == stem_type]

    def edges(self) -> list[Edge]:
        """Every connection, in node order then input order."""
        result = []
        for target, node in enumerate(self.nodes):
            if isinstance(node, BlockNode):
                for k, source in enumerate(node.inputs):
                    weight = node.edge_weights[k] if node.edge_weights is not None else None
                    result.append(Edge(source, target, weight))
        return result

    def predecessors(self, index: int) -> tuple[int, ...]:
        node = self.nodes[index]
        return node.inputs if isinstance(node, BlockNode) else ()

    def successors(self, index: int) -> list[int]:
        return [t for t, n in enumerate(self.nodes) if isinstance(n, BlockNode) and index in n.inputs]

    def channel_budget(self) -> dict[int, int]:
        """Total filters per level, the quantity the search keeps constant when splitting or merging nodes."""
        if self.uses_filter_triples:
            raise GraphError("the channel budget (and the search) needs int filters; this graph has filter triples")
        budget = {level: 0 for level in range(NUM_LEVELS)}
        for node in self.nodes:
            if isinstance(node, BlockNode):
                assert isinstance(node.filters, int)  # no filter triples: checked above
                budget[node.level] += node.filters
        return budget

    def nodes_at_level(self, level: int) -> list[int]:
        return [i for i, n in enumerate(self.nodes) if isinstance(n, BlockNode) and n.level == level]

    def attention_candidates(self, index: int) -> list[int]:
        """Every node that may be a peer-attention source of block node ``index``: all stems and all nodes of a
        lower level, in the authors' order (object, flow, then RGB stems, then levels 0, 1, ...; by index
        within each group)."""
        node = self.nodes[index]
        if not isinstance(node, BlockNode):
            raise GraphError(f"node {index} is a stem; only block nodes have attention sources")
        order: list[int] = []
        for stem_type in (StemType.OBJECT, StemType.FLOW, StemType.RGB):
            order += self.stems_of(stem_type)
        for level in range(node.level):
            order += self.nodes_at_level(level)
        return order

    def attention_sources(self, index: int) -> list[int]:
        """The peers of block node ``index``: its own ``attention_sources``, else every candidate, in the
        candidates' order."""
        candidates = self.attention_candidates(index)
        node = self.nodes[index]
        chosen = node.attention_sources if isinstance(node, BlockNode) else None
        return candidates if chosen is None else [i for i in candidates if i in set(chosen)]

    @property
    def has_attention_sources(self) -> bool:
        return any(isinstance(n, BlockNode) and n.attention_sources is not None for n in self.nodes)

    # ------------------------------------------------------------------ derived graphs
    def replace_nodes(self, nodes: Iterable[Node], *, name: str | None = None) -> "AssembleNetGraph":
        return AssembleNetGraph(
            tuple(nodes), name=self.name if name is None else name, allow_dead_nodes=self.allow_dead_nodes
        )

    @property
    def dead_nodes(self) -> list[int]:
        """Non-output nodes that feed nothing (only present when ``allow_dead_nodes``)."""
        used = {i for n in self.nodes if isinstance(n, BlockNode) for i in n.inputs}
        return [
            i for i, n in enumerate(self.nodes)
            if i not in used and not (isinstance(n, BlockNode) and n.level == OUTPUT_LEVEL)
        ]

    def unreachable_nodes(self, *, through_attention: bool = False) -> list[int]:
        """Nodes (stems included) whose output reaches no output node: not through any chain of inputs, nor,
        with ``through_attention``, as a peer-attention source of a node that does. A model builds no layers
        for them: they could get no gradient (and DDP would stop at the second step)."""
        alive = set(self.output_indices)
        for index in range(len(self.nodes) - 1, -1, -1):
            node = self.nodes[index]
            if index not in alive or not isinstance(node, BlockNode):
                continue
            alive.update(node.inputs)
            if through_attention:
                alive.update(self.attention_sources(index))
        return [i for i in range(len(self.nodes)) if i not in alive]

    def with_edge_weights(self, weights: Sequence[Sequence[float] | None]) -> "AssembleNetGraph":
        """Attach post-sigmoid weights, one sequence per node (``None``/empty for stems and single inputs)."""
        if len(weights) != len(self.nodes):
            raise GraphError(f"got weights for {len(weights)} nodes, graph has {len(self.nodes)}")
        nodes = []
        for index, (node, w) in enumerate(zip(self.nodes, weights)):
            if isinstance(node, BlockNode):
                node = dataclasses.replace(
                    node, edge_weights=_weights_for_node(list(w) if w else None, len(node.inputs), f"node {index}")
                )
            nodes.append(node)
        return self.replace_nodes(nodes)

    def without_edge_weights(self) -> "AssembleNetGraph":
        return self.replace_nodes(
            dataclasses.replace(n, edge_weights=None) if isinstance(n, BlockNode) else n for n in self.nodes
        )

    def scaled(self, width_multiplier: float) -> "AssembleNetGraph":
        """Scale every node's filters (at least 1), e.g. 0.125 for a proxy search, 8 to go back."""
        if not width_multiplier > 0:
            raise GraphError(f"width multiplier must be positive, got {width_multiplier}")
        return self.replace_nodes(
            dataclasses.replace(n, filters=n.filters_scaled(width_multiplier))
            if isinstance(n, BlockNode) else n
            for n in self.nodes
        )

    def pruned(self) -> "AssembleNetGraph":
        """Remove non-output nodes that feed nothing, repeatedly, and re-index the rest (with a warning)."""
        nodes = list(self.nodes)
        removed: list[int] = []
        original_ids = list(range(len(nodes)))
        while True:
            used = {i for n in nodes if isinstance(n, BlockNode) for i in n.inputs}
            dead = [
                i for i, n in enumerate(nodes)
                if i not in used and not (isinstance(n, BlockNode) and n.level == OUTPUT_LEVEL)
            ]
            if not dead:
                break
            removed.extend(original_ids[i] for i in dead)
            keep = [i for i in range(len(nodes)) if i not in set(dead)]
            remap = {old: new for new, old in enumerate(keep)}
            new_nodes: list[Node] = []
            for old in keep:
                node = nodes[old]
                if isinstance(node, BlockNode):
                    sources = node.attention_sources
                    if sources is not None:  # a removed node is no attention source any more
                        sources = tuple(remap[i] for i in sources if i in remap)
                        # all of a node's chosen peers were pruned: it attends to every candidate again
                        # rather than to none (peer attention needs at least one source)
                        sources = sources or None
                    node = dataclasses.replace(node, inputs=tuple(remap[i] for i in node.inputs),
                                               attention_sources=sources)
                new_nodes.append(node)
            nodes = new_nodes
            original_ids = [original_ids[i] for i in keep]
        if removed:
            warnings.warn(f"pruned {len(removed)} node(s) that feed nothing: {sorted(removed)}", stacklevel=2)
        return AssembleNetGraph(tuple(nodes), name=self.name)

    # ------------------------------------------------------------------ identity
    def canonical_hash(self, *, include_weights: bool = False) -> str:
        """A hash that is equal for identical architectures.

        It ignores the order of a node's inputs (the fusion is a sum) and the numbering of nodes (any
        topological order of the same wiring hashes equal), and by default the edge weights, which the search
        treats as learned state rather than structure.
        """
        down: list[str] = []
        label: tuple[object, ...]
        parts: list[tuple[str, float | None]]
        for node in self.nodes:
            if isinstance(node, StemNode):
                label = ("stem", int(node.stem_type), node.temporal_dilation)
                down.append(_digest(label))
            else:
                if include_weights and node.edge_weights is not None:
                    parts = sorted(
                        (down[i], round(w, 6)) for i, w in zip(node.inputs, node.edge_weights)
                    )
                else:
                    parts = sorted((down[i], None) for i in node.inputs)
                label = ("block", node.level, node.filters, node.temporal_dilation, node.spatial_stride, parts)
                if node.attention_sources is not None:  # only then, so hashes of plain graphs stay as they were
                    label = label + (("attention", sorted(down[i] for i in node.attention_sources)),)
                down.append(_digest(label))
        # A node's consumers tell shared inputs apart from identical duplicated ones.
        signature = sorted(
            (down[i], sorted(down[j] for j in self.successors(i))) for i in range(len(self.nodes))
        )
        return _digest(signature)

    def summary(self) -> str:
        lines = []
        for index, node in enumerate(self.nodes):
            if isinstance(node, StemNode):
                lines.append(f"{index:3d} stem  {node.modality:6s} dilation={node.temporal_dilation}")
            else:
                weights = (
                    " weights=[" + ", ".join(f"{w:.2f}" for w in node.edge_weights) + "]"
                    if node.edge_weights is not None else ""
                )
                attention = (f" attention_sources={list(node.attention_sources)}"
                             if node.attention_sources is not None else "")
                filters = ",".join(map(str, node.filters)) if isinstance(node.filters, tuple) else str(node.filters)
                lines.append(
                    f"{index:3d} L{node.level}    filters={filters:<4s} dilation={node.temporal_dilation} "
                    f"stride={node.spatial_stride} inputs={list(node.inputs)}{weights}{attention}"
                )
        return "\n".join(lines)


# ---------------------------------------------------------------------- validation
def validate_nodes(nodes: Sequence[Node], *, allow_dead_nodes: bool = False) -> None:
    """Raise :class:`GraphError` naming the node and field for every kind of malformed graph."""
    if len(nodes) == 0:
        raise GraphError("graph is empty: expected at least one stem and one level-3 node")
    seen_block = False
    consumers: dict[int, int] = {i: 0 for i in range(len(nodes))}
    for index, node in enumerate(nodes):
        where = f"node {index}"
        if isinstance(node, StemNode):
            if not isinstance(node.stem_type, StemType):
                StemType.parse(node.stem_type, where=where)
            if seen_block:
                raise GraphError(f"{where}: stems must come before all block nodes")
            _check_positive(node.temporal_dilation, f"{where} temporal dilation")
            continue
        if not isinstance(node, BlockNode):
            raise GraphError(f"{where}: expected a StemNode or BlockNode, got {type(node).__name__}")
        seen_block = True
        if not isinstance(node.level, int) or not 0 <= node.level < NUM_LEVELS:
            raise GraphError(f"{where}: level {node.level!r} is outside 0..{OUTPUT_LEVEL}")
        if isinstance(node.filters, tuple):
            if len(node.filters) != 3:
                raise GraphError(f"{where} filters: a filter triple needs 3 values (expand, expand, out), "
                                 f"got {list(node.filters)}")
            for value in node.filters:
                _check_positive(value, f"{where} filters")
        else:
            _check_positive(node.filters, f"{where} filters")
        _check_positive(node.temporal_dilation, f"{where} temporal dilation")
        _check_positive(node.spatial_stride, f"{where} spatial stride")
        if len(node.inputs) == 0:
            raise GraphError(f"{where}: a block node needs at least one input")
        if len(set(node.inputs)) != len(node.inputs):
            duplicates = sorted({i for i in node.inputs if node.inputs.count(i) > 1})
            raise GraphError(f"{where}: duplicate inputs {duplicates} in {list(node.inputs)}")
        for source in node.inputs:
            if not isinstance(source, int) or source < 0 or source >= index:
                raise GraphError(
                    f"{where}: input {source!r} must be the index of an earlier node (0..{index - 1})"
                )
            consumers[source] += 1
        if node.attention_sources is not None:
            sources = node.attention_sources
            if len(set(sources)) != len(sources):
                raise GraphError(f"{where}: duplicate attention sources in {list(sources)}")
            for source in sources:
                in_range = isinstance(source, int) and not isinstance(source, bool) and 0 <= source < index
                candidate = nodes[source] if in_range else None
                valid = isinstance(candidate, StemNode) or (
                    isinstance(candidate, BlockNode) and candidate.level < node.level)
                if not valid:
                    raise GraphError(
                        f"{where}: attention source {source!r} must be a stem or a node of a level below "
                        f"{node.level}"
                    )
        if node.edge_weights is not None:
            if len(node.edge_weights) != len(node.inputs):
                raise GraphError(
                    f"{where}: {len(node.edge_weights)} edge weights for {len(node.inputs)} inputs"
                )
            for w in node.edge_weights:
                if not (isinstance(w, (int, float)) and 0.0 <= w <= 1.0):
                    raise GraphError(f"{where}: edge weight {w!r} is not a post-sigmoid value in [0, 1]")
    kinds = {isinstance(n.filters, tuple) for n in nodes if isinstance(n, BlockNode)}
    if len(kinds) > 1:
        raise GraphError("graph mixes int filters and filter triples: use ints (AssembleNet bottleneck blocks) or "
                         "[expand, expand, out] triples (AssembleNet++lite) for every block node")
    if not any(isinstance(n, StemNode) for n in nodes):
        raise GraphError("graph has no stem: expected at least one RGB, flow or object stem")
    if not any(isinstance(n, BlockNode) and n.level == OUTPUT_LEVEL for n in nodes):
        raise GraphError(f"graph has no level-{OUTPUT_LEVEL} node: the network would have no output")
    for index, count in consumers.items():
        node = nodes[index]
        is_output = isinstance(node, BlockNode) and node.level == OUTPUT_LEVEL
        if count == 0 and not is_output and not allow_dead_nodes:
            raise GraphError(
                f"node {index} feeds nothing and is not a level-{OUTPUT_LEVEL} output; "
                "connect it or remove it (AssembleNetGraph.pruned() removes such nodes)"
            )


def _check_positive(value: object, what: str) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise GraphError(f"{what} must be a positive integer, got {value!r}")


def parse_filters(value: object, what: str) -> int | tuple[int, int, int]:
    """A node's filters: an int, or an AssembleNet++lite ``[expand, expand, out]`` triple."""
    if isinstance(value, (list, tuple)):
        if len(value) != 3:
            raise GraphError(f"{what} must be an integer or a triple [expand, expand, out], got {list(value)!r}")
        f0, f1, f2 = (_as_int(v, what) for v in value)
        return f0, f1, f2
    return _as_int(value, what)


def _as_int(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
        raise GraphError(f"{what} must be an integer, got {value!r}")
    return int(value)


def _flatten_weights(entry: object, where: str) -> list[float] | None:
    """Official weights per node are ``[]`` or ``[[w1..wn]]``; accept ``[w1..wn]`` too."""
    if entry is None:
        return None
    if not isinstance(entry, (list, tuple)):
        raise GraphError(f"{where}: edge weights must be [] or [[w1, ..., wn]], got {entry!r}")
    if len(entry) == 0:
        return None
    if len(entry) == 1 and isinstance(entry[0], (list, tuple)):
        entry = entry[0]
    values = []
    for w in entry:
        if isinstance(w, bool) or not isinstance(w, (int, float)) or math.isnan(w):
            raise GraphError(f"{where}: edge weight {w!r} is not a number")
        values.append(float(w))
    return values


def _weights_for_node(weights: list[float] | None, num_inputs: int, where: str) -> tuple[float, ...] | None:
    if weights is None:
        return None
    if len(weights) != num_inputs:
        raise GraphError(f"{where}: {len(weights)} edge weights for {num_inputs} inputs")
    return tuple(weights)


def _digest(obj: object) -> str:
    return hashlib.sha256(json.dumps(obj, separators=(",", ":")).encode()).hexdigest()
