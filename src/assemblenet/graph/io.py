"""Reading and writing graphs as readable YAML/JSON or in the official nested-list format.

Our format (``format: assemblenet-graph/v1``) lists nodes with named fields::

    format: assemblenet-graph/v1
    name: asn50
    nodes:
      - {id: 0, stem: rgb, temporal_dilation: 4}
      - {id: 6, level: 0, inputs: [0, 1, 2, 3], filters: 32, temporal_dilation: 1, spatial_stride: 1,
         edge_weights: [0.14, 0.85, 0.31, 0.29]}

``filters`` may also be an AssembleNet++lite triple ``[expand, expand, out]`` (e.g. ``filters: [27, 27, 12]``).

A block node may also list ``attention_sources`` (AssembleNet++ peer attention: the stems or lower-level nodes
whose features condition its connections; all of them when absent).

The official format is a JSON/YAML list of nodes, or a mapping with ``model_structure`` (or ``structure``)
and optionally ``model_edge_weights`` (or ``edge_weights``). :func:`load_graph` accepts all of these.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping

import yaml

from assemblenet.errors import GraphError
from assemblenet.fileio import atomic_write_text
from assemblenet.graph.spec import AssembleNetGraph, BlockNode, Node, StemNode, StemType, parse_filters

FORMAT_TAG = "assemblenet-graph/v1"
_STEM_FIELDS = {"id", "stem", "temporal_dilation"}
_BLOCK_FIELDS = {"id", "level", "inputs", "filters", "temporal_dilation", "spatial_stride", "edge_weights",
                 "reserved", "attention_sources"}


def graph_to_dict(graph: AssembleNetGraph) -> dict[str, Any]:
    nodes: list[dict[str, Any]] = []
    for index, node in enumerate(graph.nodes):
        if isinstance(node, StemNode):
            nodes.append({"id": index, "stem": node.modality, "temporal_dilation": node.temporal_dilation})
        else:
            entry: dict[str, Any] = {
                "id": index, "level": node.level, "inputs": list(node.inputs),
                "filters": list(node.filters) if isinstance(node.filters, tuple) else node.filters,
                "temporal_dilation": node.temporal_dilation, "spatial_stride": node.spatial_stride,
            }
            if node.edge_weights is not None:
                entry["edge_weights"] = list(node.edge_weights)
            if node.reserved:
                entry["reserved"] = node.reserved
            if node.attention_sources is not None:
                entry["attention_sources"] = list(node.attention_sources)
            nodes.append(entry)
    result: dict[str, Any] = {"format": FORMAT_TAG}
    if graph.name:
        result["name"] = graph.name
    result["nodes"] = nodes
    return result


def graph_from_dict(data: Any, *, source: str = "graph", allow_dead_nodes: bool = False) -> AssembleNetGraph:
    """Build a graph from our mapping format or from either official layout."""
    if isinstance(data, list):
        return AssembleNetGraph.from_official(data, allow_dead_nodes=allow_dead_nodes)
    if not isinstance(data, Mapping):
        raise GraphError(
            f"{source}: expected a mapping with 'nodes' or an official node list, got {type(data).__name__}")
    name = data.get("name")
    for key in ("model_structure", "structure"):
        if key in data:
            weights = data.get("model_edge_weights", data.get("edge_weights"))
            if weights is not None and not isinstance(weights, list):
                raise GraphError(f"{source}: edge weights must be a list, got {type(weights).__name__}")
            return AssembleNetGraph.from_official(
                data[key], weights or None, name=name, allow_dead_nodes=allow_dead_nodes
            )
    if "nodes" not in data:
        raise GraphError(f"{source}: missing 'nodes' (or official 'model_structure')")
    fmt = data.get("format", FORMAT_TAG)
    if fmt != FORMAT_TAG:
        raise GraphError(f"{source}: unsupported format {fmt!r}; expected {FORMAT_TAG!r}")
    unknown_top = set(data) - {"format", "name", "nodes"}
    if unknown_top:
        raise GraphError(f"{source}: unknown top-level field(s) {sorted(unknown_top)}")
    raw_nodes = data["nodes"]
    if not isinstance(raw_nodes, list) or not raw_nodes:
        raise GraphError(f"{source}: 'nodes' must be a non-empty list")
    nodes: list[Node] = []
    for position, raw in enumerate(raw_nodes):
        where = f"{source}: node {position}"
        if not isinstance(raw, Mapping):
            raise GraphError(f"{where}: expected a mapping, got {raw!r}")
        if "id" in raw and raw["id"] != position:
            raise GraphError(f"{where}: id {raw['id']!r} does not match its position {position}")
        if "stem" in raw:
            _reject_unknown(raw, _STEM_FIELDS, where)
            nodes.append(StemNode(StemType.parse(raw["stem"], where=where), _int(raw, "temporal_dilation", where, 1)))
            continue
        _reject_unknown(raw, _BLOCK_FIELDS, where)
        for required in ("level", "inputs", "filters"):
            if required not in raw:
                raise GraphError(f"{where}: missing field '{required}' (or 'stem' for an input node)")
        inputs = raw["inputs"]
        if not isinstance(inputs, list):
            raise GraphError(f"{where}: 'inputs' must be a list of node ids, got {inputs!r}")
        weights = raw.get("edge_weights")
        if weights is not None and not isinstance(weights, list):
            raise GraphError(f"{where}: 'edge_weights' must be a list, got {weights!r}")
        sources = raw.get("attention_sources")
        if sources is not None and not isinstance(sources, list):
            raise GraphError(f"{where}: 'attention_sources' must be a list of node ids, got {sources!r}")
        nodes.append(
            BlockNode(
                level=_int(raw, "level", where),
                inputs=tuple(_as_int(i, f"{where} input") for i in inputs),
                filters=parse_filters(raw["filters"], f"{where} filters"),
                temporal_dilation=_int(raw, "temporal_dilation", where, 1),
                spatial_stride=_int(raw, "spatial_stride", where, 1),
                edge_weights=tuple(float(w) for w in weights) if weights is not None else None,
                reserved=_int(raw, "reserved", where, 0),
                attention_sources=(tuple(_as_int(i, f"{where} attention source") for i in sources)
                                   if sources is not None else None),
            )
        )
    try:
        return AssembleNetGraph(tuple(nodes), name=name, allow_dead_nodes=allow_dead_nodes)
    except GraphError as exc:
        raise GraphError(f"{source}: {exc}") from None


def load_graph(path: str | os.PathLike[str], *, allow_dead_nodes: bool = False) -> AssembleNetGraph:
    """Load a graph from ``.yaml``/``.yml``/``.json`` in our format or the official one.

    A node that feeds nothing is an error unless ``allow_dead_nodes``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"graph file not found: {path}")
    text = path.read_text()
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        first_line = str(exc).strip().splitlines()[0]
        raise GraphError(f"{path}: not valid {path.suffix.lstrip('.').upper() or 'YAML'}: {first_line}") from None
    return graph_from_dict(data, source=str(path), allow_dead_nodes=allow_dead_nodes)


def save_graph(graph: AssembleNetGraph, path: str | os.PathLike[str], *, official: bool = False) -> Path:
    """Write a graph atomically, as YAML or JSON by suffix; ``official=True`` writes the nested-list format
    (which cannot hold attention sources: a graph with some is refused rather than silently changed)."""
    path = Path(path)
    if official and graph.has_attention_sources:
        raise GraphError(f"{path}: the official format has no place for attention sources; save it in ours")
    if official:
        structure, weights = graph.to_official()
        data: Any = {"model_structure": structure, "model_edge_weights": weights}
        if graph.name:
            data["name"] = graph.name
    else:
        data = graph_to_dict(graph)
    if path.suffix.lower() == ".json":
        text = json.dumps(data, indent=1) + "\n"
    else:
        text = yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=120)
    atomic_write_text(path, text)
    return path


def _reject_unknown(raw: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = set(raw) - allowed
    if unknown:
        raise GraphError(f"{where}: unknown field(s) {sorted(unknown)}; allowed: {sorted(allowed)}")


def _int(raw: Mapping[str, Any], key: str, where: str, default: int | None = None) -> int:
    if key not in raw:
        if default is None:
            raise GraphError(f"{where}: missing field '{key}'")
        return default
    return _as_int(raw[key], f"{where} {key}")


def _as_int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise GraphError(f"{what} must be an integer, got {value!r}")
    return value
