"""The search space: which graphs the search may build, and a sampler of random overly-connected ones.

Graphs in the space are kept at full scale: per-level channel budgets (``level_filters``) are the full-width
filter counts, so the official asn50 graph is a member of :func:`asn50_space`. The fitness trains the
candidate at ``width_multiplier`` (the proxy scale). Because every node's filters are a multiple of
``filter_quantum`` and ``filter_quantum * width_multiplier`` is whole, the proxy graph keeps the budget exactly.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass
from typing import Any, Callable

from assemblenet.errors import GraphError
from assemblenet.graph.spec import NUM_LEVELS, AssembleNetGraph, BlockNode, StemNode, StemType
from assemblenet.search.attention import random_attention_sources
from assemblenet.search.draft import STEM_LEVEL, DraftNode, GraphDraft, spatial_stride_for_level

ATTENTION_SPACES = ("all", "sampled")


@dataclass(frozen=True)
class SpaceConfig:
    """The architecture space. Filters are at full scale; ``width_multiplier`` is the proxy scale.

    The defaults are the asn50 space: four stems (two RGB, two flow), 4/4/2/1 nodes per level with per-level
    budgets of 128/256/512/512 filters, and temporal dilations {1, 2, 4, 8}.

    ``attention_sources`` says what random graphs get as AssembleNet++ peer-attention sources: ``all`` (every
    candidate, ``attention_sources: None``: the graphs and hashes of a space without attention) or
    ``sampled`` (each block node a random non-empty subset of its candidates). It matters only to a fitness
    that trains with peer attention.
    """

    stems: tuple[str, ...] = ("rgb", "rgb", "flow", "flow")
    stem_dilations: tuple[int, ...] = (1, 2, 4, 8)
    dilations: tuple[int, ...] = (1, 2, 4, 8)
    nodes_per_level: tuple[int, ...] = (4, 4, 2, 1)
    min_nodes_per_level: tuple[int, ...] = (1, 1, 1, 1)
    max_nodes_per_level: tuple[int, ...] = (8, 8, 4, 2)
    level_filters: tuple[int, ...] = (128, 256, 512, 512)
    filter_quantum: int = 8
    width_multiplier: float = 0.125
    initial_edge_probability: float = 0.8
    attention_sources: str = "all"


def validate_space_config(space: SpaceConfig, fail: Callable[[str, str], Any]) -> None:
    """Check a space config; ``fail(key, message)`` raises the caller's error (a config or a graph error)."""
    if not space.stems:
        fail("space.stems", "needs at least one stem")
    for i, stem in enumerate(space.stems):
        try:
            StemType.parse(stem, where=f"space.stems[{i}]")
        except GraphError as exc:  # re-raised as a config error naming the key
            fail(f"space.stems[{i}]", str(exc).split(": ", 1)[-1])
    for key in ("stem_dilations", "dilations"):
        values = getattr(space, key)
        if not values:
            fail(f"space.{key}", "needs at least one temporal dilation")
        if any(d < 1 for d in values) or len(set(values)) != len(values):
            fail(f"space.{key}", f"must be distinct positive integers, got {list(values)}")
    for key in ("nodes_per_level", "min_nodes_per_level", "max_nodes_per_level", "level_filters"):
        values = getattr(space, key)
        if len(values) != NUM_LEVELS:
            fail(f"space.{key}", f"needs one value per level ({NUM_LEVELS}), got {list(values)}")
    if space.filter_quantum < 1:
        fail("space.filter_quantum", f"must be at least 1, got {space.filter_quantum}")
    for level in range(NUM_LEVELS):
        low, n, high = space.min_nodes_per_level[level], space.nodes_per_level[level], space.max_nodes_per_level[level]
        if not 1 <= low <= n <= high:
            fail(f"space.nodes_per_level[{level}]",
                 f"need 1 <= min ({low}) <= nodes ({n}) <= max ({high}) at level {level}")
        budget = space.level_filters[level]
        if budget % space.filter_quantum:
            fail(f"space.level_filters[{level}]",
                 f"{budget} is not a multiple of filter_quantum {space.filter_quantum}")
        if budget // space.filter_quantum < high:
            fail(f"space.max_nodes_per_level[{level}]",
                 f"{high} nodes cannot each get at least filter_quantum={space.filter_quantum} of {budget} filters")
    if not 0.0 < space.width_multiplier <= 1.0:
        fail("space.width_multiplier", f"must be in (0, 1], got {space.width_multiplier}")
    scaled_quantum = space.filter_quantum * space.width_multiplier
    if abs(scaled_quantum - round(scaled_quantum)) > 1e-9 or round(scaled_quantum) < 1:
        fail("space.width_multiplier",
             f"filter_quantum * width_multiplier = {scaled_quantum:g} must be a whole number >= 1 so that proxy "
             "widths keep the channel budget exactly")
    if not 0.0 < space.initial_edge_probability <= 1.0:
        fail("space.initial_edge_probability", f"must be in (0, 1], got {space.initial_edge_probability}")
    if space.attention_sources not in ATTENTION_SPACES:
        fail("space.attention_sources", f"expected one of {list(ATTENTION_SPACES)}, got {space.attention_sources!r}")


class SearchSpace:
    """A validated :class:`SpaceConfig` with membership tests and random sampling."""

    def __init__(self, config: SpaceConfig | None = None) -> None:
        self.config = config or SpaceConfig()

        def fail(key: str, message: str) -> None:
            raise GraphError(f"search space: {key}: {message}")

        validate_space_config(self.config, fail)
        self.stem_types = tuple(StemType.parse(s) for s in self.config.stems)

    def __repr__(self) -> str:
        return f"SearchSpace({self.config!r})"

    # ------------------------------------------------------------------ properties used by mutations
    @property
    def quantum(self) -> int:
        return self.config.filter_quantum

    def level_budget(self, level: int) -> int:
        return self.config.level_filters[level]

    def dilations_for(self, node: DraftNode) -> tuple[int, ...]:
        return self.config.stem_dilations if node.is_stem else self.config.dilations

    def can_split(self, draft: GraphDraft, node_id: int) -> bool:
        node = draft.nodes[node_id]
        return (
            not node.is_stem
            and node.filters >= 2 * self.quantum
            and len(draft.blocks_at_level(node.level)) < self.config.max_nodes_per_level[node.level]
        )

    def can_merge_at(self, draft: GraphDraft, level: int) -> bool:
        count = len(draft.blocks_at_level(level))
        return count >= 2 and count > self.config.min_nodes_per_level[level]

    # ------------------------------------------------------------------ membership
    def violations(self, graph: AssembleNetGraph) -> list[str]:
        """Every way ``graph`` lies outside the space (empty if it is a member)."""
        problems: list[str] = []
        cfg = self.config
        stems = [n for n in graph.nodes if isinstance(n, StemNode)]
        if Counter(s.stem_type for s in stems) != Counter(self.stem_types):
            problems.append(
                f"stems are {sorted(s.modality for s in stems)}, space has {sorted(t.label for t in self.stem_types)}"
            )
        for index, node in enumerate(graph.nodes):
            where = f"node {index}"
            if isinstance(node, StemNode):
                if node.temporal_dilation not in cfg.stem_dilations:
                    problems.append(
                        f"{where}: stem dilation {node.temporal_dilation} not in {list(cfg.stem_dilations)}")
                continue
            if node.temporal_dilation not in cfg.dilations:
                problems.append(f"{where}: dilation {node.temporal_dilation} not in {list(cfg.dilations)}")
            if isinstance(node.filters, tuple):
                problems.append(f"{where}: filters {list(node.filters)} are a filter triple; the space has int filters")
            elif node.filters % cfg.filter_quantum:
                problems.append(f"{where}: {node.filters} filters is not a multiple of {cfg.filter_quantum}")
            if node.spatial_stride != spatial_stride_for_level(node.level):
                problems.append(f"{where}: stride {node.spatial_stride} at level {node.level}")
            for source in node.inputs:
                src = graph.nodes[source]
                if isinstance(src, BlockNode) and src.level >= node.level:
                    problems.append(f"{where}: reads node {source} at level {src.level}, not a lower level")
            if node.attention_sources is not None and not node.attention_sources:
                problems.append(f"{where}: no attention source (peer attention needs at least one)")
        used = {i for n in graph.nodes if isinstance(n, BlockNode) for i in n.inputs}
        for index, node in enumerate(graph.nodes):
            is_output = isinstance(node, BlockNode) and node.level == NUM_LEVELS - 1
            if index not in used and not is_output:
                problems.append(f"node {index}: feeds nothing")  # possible in graphs loaded leniently (asnp50)
        budget = graph.channel_budget()
        for level in range(NUM_LEVELS):
            count = len(graph.nodes_at_level(level))
            low, high = cfg.min_nodes_per_level[level], cfg.max_nodes_per_level[level]
            if not low <= count <= high:
                problems.append(f"level {level}: {count} nodes, space allows {low}..{high}")
            if budget[level] != cfg.level_filters[level]:
                problems.append(f"level {level}: {budget[level]} filters, budget is {cfg.level_filters[level]}")
        return problems

    def contains(self, graph: AssembleNetGraph) -> bool:
        return not self.violations(graph)

    def check(self, graph: AssembleNetGraph) -> None:
        problems = self.violations(graph)
        if problems:
            raise GraphError("graph is outside the search space: " + "; ".join(problems))

    def proxy_graph(self, graph: AssembleNetGraph) -> AssembleNetGraph:
        """The graph at proxy width (what a proxy model with this width multiplier would hold)."""
        return graph.scaled(self.config.width_multiplier)

    # ------------------------------------------------------------------ sampling
    def sample(self, rng: random.Random, *, edge_probability: float | None = None) -> AssembleNetGraph:
        """A random graph: random dilations, equal split of each level's budget, each allowed edge kept with
        ``edge_probability`` (default ``initial_edge_probability``; 1.0 gives the fully connected graph). With
        ``attention_sources: sampled`` each block node also gets a random non-empty subset of its attention
        candidates (drawn after the wiring, so ``all`` draws exactly what it drew before the option existed)."""
        return self.sample_draft(rng, edge_probability=edge_probability).to_graph()

    def dense(self, rng: random.Random) -> AssembleNetGraph:
        """A fully connected graph with random dilations and every attention candidate (``attention_sources``
        None): what the one-shot strategies train."""
        return self.sample_draft(rng, edge_probability=1.0, every_attention_source=True).to_graph()

    def sample_draft(self, rng: random.Random, *, edge_probability: float | None = None,
                     every_attention_source: bool = False) -> GraphDraft:
        cfg = self.config
        p = cfg.initial_edge_probability if edge_probability is None else edge_probability
        draft = GraphDraft()
        for stem_type in self.stem_types:
            draft.add(DraftNode(STEM_LEVEL, rng.choice(cfg.stem_dilations), stem_type=stem_type))
        for level in range(NUM_LEVELS):
            for filters in split_budget(cfg.level_filters[level], cfg.nodes_per_level[level], cfg.filter_quantum):
                node_id = draft.add(DraftNode(level, rng.choice(cfg.dilations), filters))
                for source in draft.allowed_sources(node_id):
                    if rng.random() < p:
                        draft.nodes[node_id].inputs.add(source)
        if not draft.repair(rng):  # cannot happen: every level has nodes and stems exist
            raise GraphError("search space: could not connect a sampled graph")
        if cfg.attention_sources == "sampled" and not every_attention_source:
            for node_id in draft.order:
                if not draft.nodes[node_id].is_stem:
                    draft.nodes[node_id].attention = random_attention_sources(draft.allowed_sources(node_id), rng)
        return draft


def split_budget(total: int, parts: int, quantum: int) -> list[int]:
    """Split ``total`` filters into ``parts`` multiples of ``quantum``, as equal as possible (larger first)."""
    units, remainder = divmod(total // quantum, parts)
    return [(units + (1 if i < remainder else 0)) * quantum for i in range(parts)]


def asn50_space(*, width_multiplier: float = 0.125) -> SearchSpace:
    """The space the paper searched for AssembleNet-50; it contains the official asn50 graph."""
    return SearchSpace(SpaceConfig(width_multiplier=width_multiplier))
