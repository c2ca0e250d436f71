"""The types every fitness shares: :class:`FitnessResult` and the :class:`FitnessFunction` protocol.

They live apart from :mod:`assemblenet.search.fitness` (which builds the configured fitness, including the toy
one) so that fitness implementations such as :mod:`assemblenet.search.toy` can import them without importing
that module back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Protocol, runtime_checkable

from assemblenet.fileio import json_safe
from assemblenet.graph.spec import AssembleNetGraph

Edge = tuple[int, int]
# Peer attention learned by a run: per connection (source, target), the softmax weight of each attention source.
AttentionWeights = dict[Edge, dict[int, float]]


@dataclass(frozen=True)
class FitnessResult:
    """The outcome of one fitness run.

    ``learned_weights`` maps ``(source, target)`` node indices of the evaluated graph to the post-sigmoid
    connection strength the run learned; edges into single-input nodes report 1.0. ``attention_weights``
    (runs with peer attention only, else empty) maps each connection ``(source, target)`` to the learned
    softmax weight of each of its target's attention sources (peer node index -> weight).
    ``contributions`` (proxies that measure them, else empty) maps each edge to the RMS of what it adds to its
    target's fused input (``TrainResult.connection_contributions``).
    """

    fitness: float
    learned_weights: dict[Edge, float] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    wall_time: float = 0.0
    attention_weights: AttentionWeights = field(default_factory=dict)
    contributions: dict[Edge, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = {
            "fitness": json_safe(self.fitness),
            "learned_weights": edge_values_to_list(self.learned_weights),
            "metrics": {k: json_safe(v) for k, v in self.metrics.items()},
            "wall_time": self.wall_time,
        }
        if self.attention_weights:  # only then, so results without peer attention keep their old form
            data["attention_weights"] = attention_weights_to_list(self.attention_weights)
        if self.contributions:
            data["contributions"] = edge_values_to_list(self.contributions)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "FitnessResult":
        fitness = data["fitness"]
        return cls(
            fitness=float("nan") if fitness is None else float(fitness),
            learned_weights=edge_values_from_list(data.get("learned_weights")),
            metrics={k: float("nan") if v is None else v for k, v in data.get("metrics", {}).items()},
            wall_time=float(data.get("wall_time", 0.0)),
            attention_weights=attention_weights_from_list(data.get("attention_weights", [])),
            contributions=edge_values_from_list(data.get("contributions")),
        )


def edge_values_to_list(values: Mapping[Edge, float]) -> list[list[Any]]:
    """JSON form of a per-edge mapping: ``[[source, target, value], ...]`` (JSON keys cannot be tuples)."""
    return [[s, t, float(v)] for (s, t), v in sorted(values.items())]


def edge_values_from_list(data: Any) -> dict[Edge, float]:
    return {(int(s), int(t)): float(v) for s, t, v in data or []}


def attention_weights_to_list(weights: AttentionWeights) -> list[list[Any]]:
    """JSON form: ``[[source, target, [[peer, weight], ...]], ...]`` (JSON keys cannot be tuples)."""
    return [[s, t, [[int(p), float(w)] for p, w in sorted(peers.items())]] for (s, t), peers in sorted(weights.items())]


def attention_weights_from_list(data: Any) -> AttentionWeights:
    return {(int(s), int(t)): {int(p): float(w) for p, w in peers} for s, t, peers in data or []}


@runtime_checkable
class FitnessFunction(Protocol):
    def __call__(self, graph: AssembleNetGraph, *, seed: int, workdir: str | None = None) -> FitnessResult: ...
