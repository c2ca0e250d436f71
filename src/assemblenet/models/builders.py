"""Building a model from any graph: the one place that chooses between the standard and the Lite builder."""

from __future__ import annotations

from typing import Any

from assemblenet.graph import AssembleNetGraph
from assemblenet.models.assemblenet import AssembleNet, build_assemblenet
from assemblenet.models.lite import build_assemblenet_lite


def build_from_graph(graph: AssembleNetGraph, *, num_classes: int, **options: Any) -> AssembleNet:
    """The model ``graph`` describes: :func:`~assemblenet.models.lite.build_assemblenet_lite` for a graph with
    AssembleNet++lite filter triples, else :func:`~assemblenet.models.build_assemblenet`. ``options`` are that
    builder's keywords (``depth``, ``width_multiplier``, ``attention_mode``...); the standard builder's depth
    defaults to :data:`~assemblenet.graph.DEFAULT_DEPTH`, and a ``depth`` for a lite graph is an error."""
    builder = build_assemblenet_lite if graph.uses_filter_triples else build_assemblenet
    return builder(graph=graph, num_classes=num_classes, **options)
