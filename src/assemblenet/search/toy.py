"""An analytic benchmark fitness for testing the search mechanics without training (a test double).

It mimics what proxy training gives the search, cheaply and deterministically:

- Every possible connection has a hidden *usefulness* in [-1, 1], a fixed pseudo-random function of what it
  connects (source modality or level, source dilation, target level, target dilation). Connections from
  optical-flow stems lean useful. Node dilations and widths have hidden preferences too.
- The fitness is ``sigmoid(score / scale)`` of the summed usefulness plus the node preferences, with a
  little seed-dependent noise, so it lies in (0, 1) like an accuracy.
- The "learned" weight of an edge is ``sigmoid(2.5 * usefulness + noise(seed, edge))``: informative but
  noisy, as connection weights learned in a short proxy run are. Harmful connections tend to end below the
  pruning threshold, so connection-learning-guided mutation has something real to exploit, and random
  pruning does not.
- Peer attention likewise: every (peer, target) pair has a hidden usefulness, each connection's "learned"
  attention is a softmax over its target's attention sources of ``ATTENTION_SHARPNESS * usefulness`` plus
  noise, and a node with explicit ``attention_sources`` adds the mean usefulness of its sources minus the mean
  over all its candidates to the score (zero for ``None``, so graphs without explicit sources score as
  before). The attention weights stand in for a proxy trained with peer attention.

Nothing here knows about the search; tests compare strategies on it without hard-coding outcomes.
"""

from __future__ import annotations

import hashlib
import math
import random
import struct
import time
from dataclasses import dataclass

from assemblenet.graph.spec import AssembleNetGraph, BlockNode, StemNode
from assemblenet.search.fitness_types import FitnessResult

WEIGHT_SHARPNESS = 2.5
ATTENTION_SHARPNESS = 3.0
WEIGHT_NOISE = 0.5
SCORE_SCALE = 10.0


@dataclass(frozen=True)
class ToyFitness:
    noise: float = 0.01
    sleep_seconds: float = 0.0

    requires_torch = False

    def __call__(self, graph: AssembleNetGraph, *, seed: int, workdir: str | None = None) -> FitnessResult:
        start = time.perf_counter()
        if self.sleep_seconds:
            time.sleep(self.sleep_seconds)  # stands in for training time (kill/resume tests)
        score = sum(edge_usefulness(graph, s, t) for s, t in _edges(graph))
        score += sum(node_preference(graph, i) for i in range(len(graph.nodes)))
        score += sum(attention_preference(graph, i) for i in graph.block_indices)
        score += self.noise * SCORE_SCALE * _gaussian("fitness", seed, graph.canonical_hash())
        fitness = _sigmoid(score / SCORE_SCALE)
        weights = {}
        for source, target in _edges(graph):
            if len(graph.predecessors(target)) == 1:
                weights[(source, target)] = 1.0  # a single input is not weighted, as in the model
            else:
                logit = WEIGHT_SHARPNESS * edge_usefulness(graph, source, target)
                logit += WEIGHT_NOISE * _gaussian("weight", seed, _label(graph, source), _label(graph, target))
                weights[(source, target)] = _sigmoid(logit)
        return FitnessResult(
            fitness=fitness,
            learned_weights=weights,
            metrics={"score": score, "edges": float(len(weights))},
            wall_time=time.perf_counter() - start,
            attention_weights=toy_attention_weights(graph, seed),
        )


def attention_usefulness(graph: AssembleNetGraph, peer: int, target: int) -> float:
    """Hidden usefulness of ``peer`` as an attention source of ``target``, in [-1, 1]."""
    return 2.0 * _uniform("attention", _label(graph, peer), _label(graph, target)) - 1.0


def attention_preference(graph: AssembleNetGraph, index: int) -> float:
    """Mean usefulness of the node's attention sources minus that of all its candidates (0 without explicit
    sources)."""
    node = graph.nodes[index]
    if not isinstance(node, BlockNode) or node.attention_sources is None:
        return 0.0
    chosen = [attention_usefulness(graph, p, index) for p in graph.attention_sources(index)]
    every = [attention_usefulness(graph, p, index) for p in graph.attention_candidates(index)]
    return sum(chosen) / len(chosen) - sum(every) / len(every)


def toy_attention_weights(graph: AssembleNetGraph, seed: int) -> dict[tuple[int, int], dict[int, float]]:
    """Per connection, a softmax over the target's attention sources of their noisy usefulness."""
    out: dict[tuple[int, int], dict[int, float]] = {}
    for source, target in _edges(graph):
        peers = graph.attention_sources(target)
        logits = [ATTENTION_SHARPNESS * attention_usefulness(graph, p, target)
                  + WEIGHT_NOISE * _gaussian("attention", seed, _label(graph, source), _label(graph, target),
                                             _label(graph, p))
                  for p in peers]
        top = max(logits)
        exps = [math.exp(x - top) for x in logits]
        out[(source, target)] = {p: e / sum(exps) for p, e in zip(peers, exps)}
    return out


def edge_usefulness(graph: AssembleNetGraph, source: int, target: int) -> float:
    """Hidden usefulness of the connection ``source -> target``, in [-1, 1]."""
    value = 2.0 * _uniform("edge", _label(graph, source), _label(graph, target)) - 1.0
    src = graph.nodes[source]
    if isinstance(src, StemNode) and src.modality == "flow":
        value = 0.5 + 0.5 * value  # flow helps (as it does in the paper)
    return value


def node_preference(graph: AssembleNetGraph, index: int) -> float:
    node = graph.nodes[index]
    if isinstance(node, StemNode):
        return 2.0 * _uniform("stem", node.modality, node.temporal_dilation) - 1.0
    dilation = 2.0 * _uniform("dilation", node.level, node.temporal_dilation) - 1.0
    width = _uniform("width", node.level, node.filters) - 0.5
    return dilation + width


def _edges(graph: AssembleNetGraph) -> list[tuple[int, int]]:
    return [(e.source, e.target) for e in graph.edges()]


def _label(graph: AssembleNetGraph, index: int) -> str:
    node = graph.nodes[index]
    if isinstance(node, StemNode):
        return f"{node.modality}/d{node.temporal_dilation}"
    assert isinstance(node, BlockNode)
    return f"L{node.level}/d{node.temporal_dilation}"


def _uniform(*key: object) -> float:
    """A uniform [0, 1) number fixed by ``key``, equal in every process (unlike ``hash``)."""
    digest = hashlib.sha256(repr(key).encode()).digest()
    return struct.unpack(">Q", digest[:8])[0] / 2**64


def _gaussian(*key: object) -> float:
    seed = struct.unpack(">Q", hashlib.sha256(repr(key).encode()).digest()[:8])[0]
    return random.Random(seed).gauss(0.0, 1.0)


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))
