"""The search strategies (evolution, evolution-unguided, random, oneshot, oneshot-attention) and what they see.

Each strategy registers itself under its config name (:func:`~assemblenet.search.registry.register_strategy`);
config validation, the CLI's ``--strategy`` choices and :class:`~assemblenet.search.evolution.SearchRunner`
read the registry. A strategy proposes candidates from the :class:`SearchContext` (config, space, state, the
consumed records) and observes each finished evaluation; the runner evaluates, records and resumes.

To add a strategy: subclass :class:`Strategy` here (or in a module this one imports), decorate it with
``@register_strategy("name")``, and the config, the CLI and the runner accept ``strategy: name``.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from typing import Any

from assemblenet.errors import ConfigError
from assemblenet.graph.io import graph_from_dict, graph_to_dict
from assemblenet.graph.spec import AssembleNetGraph
from assemblenet.search.config import SearchConfig
from assemblenet.search.fitness import FitnessUnavailableError
from assemblenet.search.mutations import mutate, next_kind, read_off_attention, rule_from_config, threshold_connections
from assemblenet.search.registry import register_strategy
from assemblenet.search.space import SearchSpace
from assemblenet.search.store import EvaluationRecord

logger = logging.getLogger(__name__)

STATE_FORMAT = "assemblenet-search-state/v1"
RANDOM_SAMPLE_ATTEMPTS = 200


@dataclass(frozen=True)
class Candidate:
    graph: AssembleNetGraph
    parent: int | None
    mutation: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"graph": graph_to_dict(self.graph), "parent": self.parent, "mutation": self.mutation}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Candidate":
        return cls(graph_from_dict(data["graph"]), data["parent"], dict(data["mutation"]))


class SearchState:
    """Everything the loop needs besides the records; serialised to ``state.json`` after each batch."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.next_index = 0
        self.population: list[int] = []  # record indices, oldest first
        self.history: list[dict[str, Any]] = []
        self.pending: list[dict[str, Any]] = []  # candidates queued by a strategy (one-shot thresholding)
        self.consecutive_failures = 0
        self.exhausted = False
        self.kind_credits: dict[str, float] = {}  # the mutation-kind scheduler's state (mutations.next_kind)
        self.mutation_counts: dict[str, int] = {}  # consumed evaluations by mutation kind

    def to_dict(self) -> dict[str, Any]:
        version, internal, gauss_next = self.rng.getstate()
        return {
            "format": STATE_FORMAT,
            "next_index": self.next_index,
            "rng": [version, list(internal), gauss_next],
            "population": self.population,
            "pending": self.pending,
            "consecutive_failures": self.consecutive_failures,
            "exhausted": self.exhausted,
            "kind_credits": self.kind_credits,
            "mutation_counts": self.mutation_counts,
            "history": self.history,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "state.json") -> "SearchState":
        if data.get("format") != STATE_FORMAT:
            raise ConfigError(f"{source}: unsupported search state format {data.get('format')!r}")
        state = cls(0)
        version, internal, gauss_next = data["rng"]
        state.rng.setstate((version, tuple(internal), gauss_next))
        state.next_index = int(data["next_index"])
        state.population = [int(i) for i in data["population"]]
        state.pending = list(data["pending"])
        state.consecutive_failures = int(data["consecutive_failures"])
        state.exhausted = bool(data["exhausted"])
        state.history = list(data["history"])
        state.kind_credits = {str(k): float(v) for k, v in data.get("kind_credits", {}).items()}
        state.mutation_counts = {str(k): int(v) for k, v in data.get("mutation_counts", {}).items()}
        return state


class SearchContext:
    """What strategies see: config, space, state, consumed records, and de-duplication."""

    def __init__(self, config: SearchConfig, space: SearchSpace, state: SearchState,
                 records: dict[int, EvaluationRecord]) -> None:
        self.config = config
        self.space = space
        self.state = state
        self.records = records
        self.seen_hashes = {records[i].graph_hash for i in range(state.next_index) if i in records}
        self.batch_hashes: set[str] = set()

    @property
    def rng(self) -> random.Random:
        return self.state.rng

    def is_new(self, graph: AssembleNetGraph) -> bool:
        """Never train the same architecture twice (canonical hash, ignoring weights and node order)."""
        digest = graph.canonical_hash()
        return digest not in self.seen_hashes and digest not in self.batch_hashes

    def claim(self, candidate: Candidate) -> Candidate:
        self.batch_hashes.add(candidate.graph.canonical_hash())
        return candidate

    def random_candidate(self, kind: str, *, dense: bool = False) -> Candidate | None:
        for _ in range(RANDOM_SAMPLE_ATTEMPTS):
            graph = self.space.dense(self.rng) if dense else self.space.sample(self.rng)
            if self.is_new(graph):
                return self.claim(Candidate(graph, None, {"kind": kind}))
        return None

    def tournament(self) -> int:
        """Best of ``tournament_size`` distinct population members drawn at random (ties: the younger)."""
        population = self.state.population
        contenders = self.rng.sample(population, min(self.config.search.tournament_size, len(population)))
        return max(contenders, key=lambda i: (self.records[i].sort_fitness, i))


# ---------------------------------------------------------------------- strategies
class Strategy:
    """Proposes candidates; subclasses register with ``@register_strategy(name)``, which sets ``name``."""

    name = ""

    def propose(self, ctx: SearchContext, count: int) -> list[Candidate]:
        raise NotImplementedError

    def observe(self, ctx: SearchContext, record: EvaluationRecord) -> None:
        """Called for each finished evaluation, in order, after the population was updated."""


@register_strategy("evolution", mutates=True)
class Evolution(Strategy):
    """Tournament selection over an aging (or worst-out) population; one mutation per child. Connection
    mutations are guided by the parent's learned connection weights (AssembleNet's connection-learning-guided
    evolution)."""

    guided = True

    def _next_kind(self, ctx: SearchContext) -> str:
        return next_kind(ctx.config.mutation.probabilities, ctx.state.kind_credits)

    def propose(self, ctx: SearchContext, count: int) -> list[Candidate]:
        cfg = ctx.config
        out: list[Candidate] = []
        for slot in range(count):
            index = ctx.state.next_index + slot
            if index < cfg.search.population_size or not ctx.state.population:
                candidate = ctx.random_candidate("initial")
            else:
                candidate = self._child(ctx)
            if candidate is None:
                break
            out.append(candidate)
        return out

    def _child(self, ctx: SearchContext) -> Candidate | None:
        cfg = ctx.config
        parent_index = ctx.tournament()
        parent = ctx.records[parent_index]
        kind = self._next_kind(ctx)
        result = mutate(
            parent.graph,
            space=ctx.space,
            rng=ctx.rng,
            kind=kind,
            probabilities=cfg.mutation.probabilities,
            connection="guided" if self.guided else cfg.mutation.unguided,
            learned_weights=guidance_of(parent, cfg) if parent.ok else None,
            rule=rule_from_config(cfg.mutation),
            prune_probability=cfg.mutation.unguided_prune_probability,
            max_attempts=cfg.mutation.max_attempts,
            accept=ctx.is_new,
            learned_attention=parent.attention_weights if parent.ok else None,
            attention_top_k=cfg.attention.top_k,
        )
        if result is None:  # no mutation gave a new valid child: explore instead of stalling
            return ctx.random_candidate("random-fallback")
        return ctx.claim(Candidate(result.graph, parent_index, result.mutation.to_dict()))


@register_strategy("evolution-unguided", mutates=True)
class UnguidedEvolution(Evolution):
    """The control of guided evolution: the same loop, but connection mutations prune as ``mutation.unguided``
    says (as many edges at the same nodes at random, or each edge at random) instead of by learned weights."""

    guided = False


@register_strategy("random")
class RandomSearch(Strategy):
    """Random graphs of the space, each new."""

    def propose(self, ctx: SearchContext, count: int) -> list[Candidate]:
        out = []
        for _ in range(count):
            candidate = ctx.random_candidate("random")
            if candidate is None:
                break
            out.append(candidate)
        return out


def guidance_of(record: EvaluationRecord, config: SearchConfig) -> dict[tuple[int, int], float]:
    """What the prune rule reads of an evaluation: its learned sigmoid weights, or with
    ``mutation.prune_signal: contribution`` its measured contributions."""
    if config.mutation.prune_signal == "contribution":
        if not record.contributions:
            raise FitnessUnavailableError(
                f"evaluation {record.index}: the fitness measured no connection contributions, which "
                "mutation.prune_signal 'contribution' reads; set 'train.contribution_batches' in fitness.overrides")
        return record.contributions
    return record.learned_weights


@register_strategy("oneshot")
class OneShot(Strategy):
    """The TF code's connection search: train a fully connected graph once, keep the edges whose learned weight
    reaches the threshold, and evaluate that graph. The budget is spent on such pairs (dense graphs differ in
    their random dilations)."""

    def propose(self, ctx: SearchContext, count: int) -> list[Candidate]:
        out: list[Candidate] = []
        while len(out) < count:
            if ctx.state.pending:
                candidate = Candidate.from_dict(ctx.state.pending.pop(0))
                if ctx.is_new(candidate.graph):
                    out.append(ctx.claim(candidate))
                continue
            fresh = ctx.random_candidate("dense", dense=True)
            if fresh is None:
                break
            out.append(fresh)
        return out

    def observe(self, ctx: SearchContext, record: EvaluationRecord) -> None:
        if record.mutation.get("kind") != "dense" or not record.ok:
            return
        result = threshold_connections(
            record.graph, guidance_of(record, ctx.config), space=ctx.space, rng=ctx.rng,
            rule=rule_from_config(ctx.config.mutation),
        )
        if result is None or not ctx.is_new(result.graph):
            logger.info("one-shot: thresholding evaluation %d gave no new valid graph", record.index)
            return
        ctx.state.pending.append(Candidate(result.graph, record.index, result.mutation.to_dict()).to_dict())


@register_strategy("oneshot-attention", learns_attention=True)
class OneShotAttention(OneShot):
    """AssembleNet++'s one-shot attention-connectivity search (ECCV 2020, Fig. 2) on top of :class:`OneShot`:
    the dense graph is trained with peer attention over every candidate (``attention_sources: None``); each
    node then keeps its ``attention.top_k`` strongest learned peers (:func:`read_off_attention`), the
    connections are thresholded as ``oneshot`` does (an absorbed node's place as a peer goes to the node that
    took its filters), and that graph is evaluated. The budget is spent on such pairs."""

    def observe(self, ctx: SearchContext, record: EvaluationRecord) -> None:
        if record.mutation.get("kind") != "dense" or not record.ok:
            return
        readoff = read_off_attention(record.graph, record.attention_weights, top_k=ctx.config.attention.top_k)
        if readoff is None:
            logger.warning("one-shot attention: evaluation %d learned no peer attention (is the proxy trained with "
                        "model.attention_mode: peer?)", record.index)
            return
        thresholded = threshold_connections(
            readoff.graph, guidance_of(record, ctx.config), space=ctx.space, rng=ctx.rng,
            rule=rule_from_config(ctx.config.mutation),
        )
        graph, details = readoff.graph, {"thresholded": False}
        if thresholded is not None:
            graph, details = thresholded.graph, {"thresholded": True, **thresholded.mutation.details}
        if not ctx.is_new(graph):
            logger.info("one-shot attention: evaluation %d gave no new valid graph", record.index)
            return
        mutation = {"kind": "oneshot-attention", **details, "attention_readoff": readoff.mutation.details}
        ctx.state.pending.append(Candidate(graph, record.index, mutation).to_dict())
