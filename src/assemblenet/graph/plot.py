"""Drawing an AssembleNet graph the way the paper draws its figures.

Stems sit in the left column, block nodes in one column per level. Nodes are coloured by the modalities that
reach them (RGB, flow, object, or a mix), edges by the modality mix of their source, and edge width follows
the connection weight.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Mapping

from assemblenet.graph.spec import AssembleNetGraph, BlockNode, StemNode, StemType

_MODALITY_COLOURS = {
    frozenset({StemType.RGB}): "#d62728",
    frozenset({StemType.FLOW}): "#1f77b4",
    frozenset({StemType.OBJECT}): "#2ca02c",
}
_MIXED_COLOUR = "#9467bd"


def _modalities(graph: AssembleNetGraph) -> list[frozenset[StemType]]:
    """The stem types that reach each node."""
    reach: list[frozenset[StemType]] = []
    for node in graph.nodes:
        if isinstance(node, StemNode):
            reach.append(frozenset({node.stem_type}))
        else:
            reach.append(frozenset().union(*(reach[i] for i in node.inputs)))
    return reach


def _colour(modalities: frozenset[StemType]) -> str:
    return _MODALITY_COLOURS.get(modalities, _MIXED_COLOUR)


def plot_graph(
    graph: AssembleNetGraph,
    path: str | os.PathLike[str],
    *,
    title: str | None = None,
    weights: Mapping[tuple[int, int], float] | None = None,
) -> Path:
    """Draw ``graph`` to a PNG at ``path`` (written atomically) and return the path.

    ``weights`` maps ``(source, target)`` to a connection strength and overrides the graph's own edge weights
    (e.g. a model's learned ``connection_weights()``). Without either, edges are drawn with equal width.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import FancyArrowPatch

    columns: dict[int, list[int]] = {}
    for index, node in enumerate(graph.nodes):
        column = 0 if isinstance(node, StemNode) else node.level + 1
        columns.setdefault(column, []).append(index)
    tallest = max(len(members) for members in columns.values())
    position: dict[int, tuple[float, float]] = {}
    for column, members in columns.items():
        for rank, index in enumerate(members):
            # Centre each column vertically; rank 0 at the top.
            y = (len(members) - 1) / 2.0 - rank
            position[index] = (column * 3.0, y * 1.6)
    reach = _modalities(graph)

    edge_weights: dict[tuple[int, int], float | None] = {}
    for edge in graph.edges():
        weight = edge.weight
        if weights is not None and (edge.source, edge.target) in weights:
            weight = weights[(edge.source, edge.target)]
        edge_weights[(edge.source, edge.target)] = weight
    weighted = any(w is not None for w in edge_weights.values())

    width = 3.0 * len(columns) + 2
    height = max(4.0, 1.6 * tallest + 2)
    figure, axes = plt.subplots(figsize=(width, height), dpi=110)
    for (source, target), weight in edge_weights.items():
        strength = 0.5 if weight is None else float(weight)
        x0, y0 = position[source]
        x1, y1 = position[target]
        skip = (x1 - x0) / 3.0 > 1.01  # edges that jump columns bend, so they don't run through nodes
        axes.add_patch(FancyArrowPatch(
            (x0, y0), (x1, y1), arrowstyle="-|>", mutation_scale=10,
            connectionstyle=f"arc3,rad={0.18 if skip else 0.0}",
            linewidth=0.6 + 5.0 * strength if weighted else 1.2,
            color=_colour(reach[source]), alpha=0.25 + 0.65 * strength if weighted else 0.6,
            shrinkA=20, shrinkB=20, zorder=1,
        ))
        if weighted and weight is not None:
            axes.text(x0 + 0.62 * (x1 - x0), y0 + 0.62 * (y1 - y0), f"{weight:.2f}", fontsize=6.5,
                      ha="center", va="center", color="#333333", zorder=3,
                      bbox=dict(boxstyle="round,pad=0.1", fc="white", ec="none", alpha=0.7))
    for index, node in enumerate(graph.nodes):
        x, y = position[index]
        if isinstance(node, StemNode):
            label = f"{node.modality.upper()}\nd={node.temporal_dilation}"
        else:
            label = f"#{index}\nf{node.filters} d{node.temporal_dilation}"
        axes.scatter([x], [y], s=2100, color=_colour(reach[index]), alpha=0.9, zorder=2,
                     marker="s" if isinstance(node, StemNode) else "o", edgecolors="black", linewidths=0.8)
        axes.text(x, y, label, ha="center", va="center", fontsize=7, color="white", fontweight="bold", zorder=4)
    for column in columns:
        axes.text(column * 3.0, max(p[1] for p in position.values()) + 1.3,
                  "stems" if column == 0 else f"level {column - 1}", ha="center", fontsize=10, fontweight="bold")
    legend = [Line2D([0], [0], marker="o", color="w", markerfacecolor=colour, markersize=11, label=name)
              for name, colour in (("RGB", _MODALITY_COLOURS[frozenset({StemType.RGB})]),
                                   ("optical flow", _MODALITY_COLOURS[frozenset({StemType.FLOW})]),
                                   ("object", _MODALITY_COLOURS[frozenset({StemType.OBJECT})]),
                                   ("mixed", _MIXED_COLOUR))]
    axes.legend(handles=legend, loc="lower left", fontsize=8, frameon=False,
                title="edge width = connection weight" if weighted else "connections not yet learned",
                title_fontsize=8)
    axes.set_title(title or (graph.name or "AssembleNet graph"), fontsize=12)
    ys = [p[1] for p in position.values()]
    axes.set_xlim(-1.5, 3.0 * (len(columns) - 1) + 1.5)
    axes.set_ylim(min(ys) - 1.8, max(ys) + 1.9)
    axes.axis("off")
    figure.tight_layout()

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".png", dir=path.parent)
    os.close(fd)
    try:
        figure.savefig(tmp, format="png")
        os.replace(tmp, path)
    finally:
        plt.close(figure)
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path
