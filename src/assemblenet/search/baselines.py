"""Fixed reference wirings a search is compared with, built for a search space's stems and channel budgets.

- ``stream_graph`` makes one stream per modality: every stem of the modality feeds that stream's level-0
  node, each stream is a chain of one node per level 0..2, and one level-3 node fuses the streams' ends (late
  fusion). With the space's RGB and flow stems it is the two-stream network the AssembleNet paper starts
  from; with one modality's stems only, the RGB-only or flow-only network.
- ``official_baseline`` is the official asn50 wiring with its stems' dilations and each level's filters
  scaled to the space's budgets (learned connection weights are dropped: they are learned again).

Every graph keeps each level's channel budget of the space, so it trains at the same width as the searched
graphs.
"""

from __future__ import annotations

from typing import Sequence

from assemblenet.errors import ConfigError
from assemblenet.graph.spec import AssembleNetGraph, BlockNode, StemNode, StemType
from assemblenet.search.config import SpaceConfig
from assemblenet.search.draft import spatial_stride_for_level

BASELINES = ("rgb_only", "flow_only", "late_fusion", "asn50")


def _split(total: int, parts: int, quantum: int) -> list[int]:
    """``total`` filters in ``parts`` multiples of ``quantum``, as equal as possible."""
    units, extra = divmod(total // quantum, parts)
    return [(units + (k < extra)) * quantum for k in range(parts)]


def stream_graph(space: SpaceConfig, modalities: Sequence[str], *, name: str) -> AssembleNetGraph:
    """One stream per modality in ``modalities`` over the space's stems of that modality, fused at level 3.

    Stems keep the space's order; the j-th of a modality's n stems takes the sorted stem dilations' entry
    ``j * len // n`` (1 and 4 of {1, 2, 4, 8} for two stems), so two stems of one modality cover a short and a
    long time scale. Blocks use dilation 1.
    """
    stems = [(k, s) for k, s in enumerate(space.stems) if s in modalities]
    if not stems:
        raise ConfigError(f"space.stems: no stem of {list(modalities)} in {list(space.stems)}")
    nodes: list = []
    by_modality: dict[str, list[int]] = {}
    dilations = sorted(space.stem_dilations)
    for _, stem in stems:
        count = sum(1 for _, s in stems if s == stem)
        j = len(by_modality.setdefault(stem, []))
        by_modality[stem].append(len(nodes))
        nodes.append(StemNode(StemType.parse(stem), dilations[j * len(dilations) // count]))
    streams = [by_modality[m] for m in modalities if m in by_modality]
    previous = [list(stream) for stream in streams]
    for level in range(3):
        widths = _split(space.level_filters[level], len(streams), space.filter_quantum)
        current = []
        for stream, width in enumerate(widths):
            current.append([len(nodes)])
            nodes.append(BlockNode(level=level, inputs=tuple(previous[stream]), filters=width, temporal_dilation=1,
                                   spatial_stride=spatial_stride_for_level(level)))
        previous = current
    nodes.append(BlockNode(level=3, inputs=tuple(p[0] for p in previous), filters=space.level_filters[3],
                           temporal_dilation=1, spatial_stride=spatial_stride_for_level(3)))
    return AssembleNetGraph(nodes=tuple(nodes), name=name)


def official_baseline(space: SpaceConfig) -> AssembleNetGraph:
    """The official asn50 wiring at the space's per-level budgets (filters scaled in proportion)."""
    from assemblenet.graph import official_graph

    graph = official_graph("asn50").without_edge_weights()
    budget = graph.channel_budget()
    nodes = []
    for node in graph.nodes:
        if isinstance(node, BlockNode):
            assert isinstance(node.filters, int)  # asn50's; channel_budget() refuses filter triples
            share = node.filters / budget[node.level]
            filters = max(space.filter_quantum,
                          round(share * space.level_filters[node.level] / space.filter_quantum) * space.filter_quantum)
            node = BlockNode(level=node.level, inputs=node.inputs, filters=filters,
                             temporal_dilation=node.temporal_dilation, spatial_stride=node.spatial_stride)
        nodes.append(node)
    return AssembleNetGraph(nodes=tuple(nodes), name="asn50")


def baseline_graph(name: str, space: SpaceConfig) -> AssembleNetGraph:
    if name == "rgb_only":
        return stream_graph(space, ["rgb"], name="rgb_only")
    if name == "flow_only":
        return stream_graph(space, ["flow"], name="flow_only")
    if name == "late_fusion":
        return stream_graph(space, ["rgb", "flow"], name="late_fusion_two_stream")
    if name == "asn50":
        return official_baseline(space)
    raise ConfigError(f"unknown baseline {name!r}; expected one of {list(BASELINES)}")
