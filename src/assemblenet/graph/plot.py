"""Drawing an AssembleNet graph the way the paper draws its figures.

Stems sit in the left column, block nodes in one column per level (0..3). Stems are coloured by modality;
block nodes by the modalities that reach them (RGB, flow, object, or a mix). Edges take the colour of their
source and a width (and opacity) that follows the connection weight. AssembleNet++ attention connections (a node's
attention source, which conditions its connections) are drawn dashed.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Sequence

from assemblenet.fileio import atomic_path
from assemblenet.graph.spec import NUM_LEVELS, AssembleNetGraph, BlockNode, StemNode, StemType

if TYPE_CHECKING:  # matplotlib and numpy load only when a graph is drawn
    import numpy as np
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from numpy.typing import NDArray

Point = tuple[float, float]
Edge = tuple[int, int]
# An edge's arc: start, end and the arc's bend (matplotlib's arc3 ``rad``).
EdgeGeometry = tuple[Point, Point, float]

_MODALITY_COLOURS = {
    frozenset({StemType.RGB}): "#d62728",
    frozenset({StemType.FLOW}): "#1f77b4",
    frozenset({StemType.OBJECT}): "#2ca02c",
}
_MIXED_COLOUR = "#9467bd"
_COLUMN_GAP = 3.0  # data units between level columns
_ROW_GAP = 1.5  # data units between nodes of one column
_NODE_RADIUS = 0.48
_INCHES_PER_UNIT = 0.9
_FORMATS = {".png": "png", ".svg": "svg", ".pdf": "pdf"}


_ROW_INCHES = 0.125  # one line of the weight table (7 pt monospace)
_TABLE_COLUMN_INCHES = 1.15
_LABEL_FONT_SIZE = 6.5
_ARC_MARGIN = 0.35  # data units around the drawn arcs: line width and arrowheads
_LABEL_POSITIONS = tuple(0.5 + sign * k * 0.04 for k in range(10) for sign in ((1,) if k == 0 else (-1, 1)))
_MAX_OVERSHOOT = 0.5  # how far (data units) an arc may bulge past the outermost nodes before a bend is refused
CAPTION_WEIGHTED = "edge width and label: connection weight after the sigmoid"
CAPTION_UNWEIGHTED = "no connection weights: every edge is drawn at the same width"


def plot_graph(
    graph: AssembleNetGraph,
    path: str | os.PathLike[str],
    *,
    title: str | None = None,
    weights: Mapping[tuple[int, int], float] | None = None,
    attention: Mapping[int, Sequence[int]] | None = None,
) -> Path:
    """Draw ``graph`` to ``path`` (``.png``, ``.svg`` or ``.pdf``; written atomically) and return the path.

    See :func:`draw_graph` for what is drawn and what ``weights`` and ``attention`` mean.
    """
    path = Path(path)
    image_format = _FORMATS.get(path.suffix.lower())
    if image_format is None:
        raise ValueError(f"{path}: expected a file name ending in {', '.join(_FORMATS)}")
    import matplotlib.pyplot as plt

    figure = draw_graph(graph, title=title, weights=weights, attention=attention)
    try:
        with atomic_path(path) as tmp:
            figure.savefig(tmp, format=image_format)
    finally:
        plt.close(figure)
    return path


def draw_graph(
    graph: AssembleNetGraph,
    *,
    title: str | None = None,
    weights: Mapping[tuple[int, int], float] | None = None,
    attention: Mapping[int, Sequence[int]] | None = None,
) -> Figure:
    """The matplotlib figure of ``graph`` (the caller closes it).

    ``weights`` maps ``(source, target)`` to a post-sigmoid connection strength in [0, 1] and overrides the
    graph's own edge weights (e.g. a model's learned ``connection_weights()``). Edges into single-input
    nodes pass through unscaled and are drawn at full strength, unlabelled. A graph without weights is drawn with
    uniform thin edges and says so. Weighted edges are labelled on the plot, strongest first, wherever a label
    fits on its own edge with no other edge, label or node under it; the weights that find no such place are
    listed in a table beside the plot. Every arc lies inside the axes: the axes limits follow the arcs, and
    bends are chosen to stay near the nodes. ``attention`` maps a block node to its attention sources (e.g. a
    peer-attention model's strongest source per node); they are drawn as dashed arrows. By default the graph's
    own ``attention_sources`` are drawn where it has them.

    Artists carry a ``gid``: ``edge S->T``, ``edge-label S->T``, ``attention S->T``, ``weight-table`` and
    ``caption``, so that tests can find them.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import Circle, FancyArrowPatch, Rectangle

    if attention is None:
        attention = {i: list(n.attention_sources) for i, n in enumerate(graph.nodes)
                     if isinstance(n, BlockNode) and n.attention_sources is not None}
    attention_edges = [(source, target) for target, sources in attention.items() for source in sources]
    position = _layout(graph)
    reach = _modalities(graph)
    strengths = _edge_strengths(graph, weights)
    weighted = any(s is not None for s in strengths.values())

    geometry = {edge: _edge_geometry(position, *edge) for edge in strengths}
    attention_geometry: dict[Edge, EdgeGeometry] = {}
    for source, target in attention_edges:
        start, end, rad = _edge_geometry(position, source, target)
        attention_geometry[(source, target)] = (start, end, -rad or 0.18)
    arcs = {("edge", e): _arc_points(*g) for e, g in geometry.items()}
    arcs.update({("attention", e): _arc_points(*g) for e, g in attention_geometry.items()})

    # The axes limits hold every node and every arc; the column headers sit above both.
    xs = [p[0] for p in position.values()]
    ys = [p[1] for p in position.values()]
    all_points = [point for points in arcs.values() for point in points]
    content_top = max([y + _NODE_RADIUS for y in ys] + [y + _ARC_MARGIN for _, y in all_points])
    content_bottom = min([y - _NODE_RADIUS for y in ys] + [y - _ARC_MARGIN for _, y in all_points])
    header_y = content_top + 0.25
    x_range = (min([min(xs) - 1.3] + [x - _ARC_MARGIN for x, _ in all_points]),
               max([max(xs) + 1.3] + [x + _ARC_MARGIN for x, _ in all_points]))
    y_range = (content_bottom - 0.1, header_y + 0.55)
    width = (x_range[1] - x_range[0]) * _INCHES_PER_UNIT
    height = (y_range[1] - y_range[0]) * _INCHES_PER_UNIT
    legend_inches, title_inches = 1.0, 0.5
    total_height = height + legend_inches + title_inches

    labelled: dict[tuple[int, int], tuple[float, float]] = {}
    known = {edge: s for edge, s in strengths.items() if s is not None}
    order = sorted(known, key=lambda e: (-known[e], e))
    figure = plt.figure(figsize=(width, total_height), dpi=110)
    axes = figure.add_axes((0.0, legend_inches / total_height, 1.0, height / total_height))
    axes.set_xlim(*x_range)
    axes.set_ylim(*y_range)
    axes.set_aspect("equal")
    axes.axis("off")
    for edge, strength in strengths.items():
        start, end, rad = geometry[edge]
        if weighted:
            value = 1.0 if strength is None else strength
            line_width, alpha = 0.5 + 5.5 * value, 0.2 + 0.7 * value
        else:
            line_width, alpha = 1.2, 0.6
        axes.add_patch(FancyArrowPatch(
            start, end, arrowstyle="-|>", mutation_scale=8 + 4 * line_width ** 0.5,
            connectionstyle=f"arc3,rad={rad}", linewidth=line_width, color=_colour(reach[edge[0]]),
            alpha=alpha, shrinkA=0, shrinkB=0, zorder=1, gid=f"edge {edge[0]}->{edge[1]}",
        ))
    for (source, target), (start, end, rad) in attention_geometry.items():
        axes.add_patch(FancyArrowPatch(
            start, end, arrowstyle="-|>", mutation_scale=9, connectionstyle=f"arc3,rad={rad}",
            linewidth=1.3, linestyle=(0, (4, 3)), color=_colour(reach[source]), alpha=0.85, shrinkA=0,
            shrinkB=0, zorder=1, gid=f"attention {source}->{target}",
        ))

    # The labels go where the drawn arrows leave room; the table beside the plot lists the rest.
    rows_per_column = max(1, int((height - 0.3) / _ROW_INCHES) - 1)
    if weighted:
        labelled = _place_labels(figure, axes, order, geometry, position)
    unlabelled = [edge for edge in sorted(order, key=lambda e: (e[1], e[0])) if edge not in labelled]
    columns = [unlabelled[i:i + rows_per_column] for i in range(0, len(unlabelled), rows_per_column)]
    table_inches = len(columns) * _TABLE_COLUMN_INCHES + (0.25 if columns else 0.0)
    if table_inches:
        # Widen the figure for the table; the graph axes keep their size in inches, so labels stay put.
        figure.set_size_inches(width + table_inches, total_height)
        axes.set_position((0.0, legend_inches / total_height, width / (width + table_inches),
                           height / total_height))
    figure_width = width + table_inches

    for edge, (x, y) in labelled.items():
        axes.text(x, y, f"{strengths[edge]:.2f}", fontsize=_LABEL_FONT_SIZE, ha="center", va="center",
                  color="#222222", zorder=3, gid=f"edge-label {edge[0]}->{edge[1]}",
                  bbox=dict(boxstyle="round,pad=0.12", fc="white", ec="none", alpha=0.85))
    dead = set(graph.dead_nodes)
    for index, node in enumerate(graph.nodes):
        x, y = position[index]
        colour = _colour(reach[index])
        if isinstance(node, StemNode):
            side = 2 * _NODE_RADIUS
            axes.add_patch(Rectangle((x - _NODE_RADIUS, y - _NODE_RADIUS), side, side, facecolor=colour,
                                     edgecolor="black", linewidth=0.8, zorder=2))
            label = f"#{index}\n{node.modality.upper()}\nd={node.temporal_dilation}"
        else:
            unused = index in dead
            axes.add_patch(Circle((x, y), _NODE_RADIUS, facecolor=colour, edgecolor="black",
                                  linewidth=1.6 if unused else 0.8, linestyle="--" if unused else "-", zorder=2))
            # A lite filter triple (expand, expand, out) on two lines, to fit the circle.
            filters = (f"{node.filters[0]},{node.filters[1]}\n\u2192{node.filters[2]}"
                       if isinstance(node.filters, tuple) else str(node.filters))
            label = f"#{index}\nf={filters}\nd={node.temporal_dilation}" + ("\nunused" if unused else "")
        small = isinstance(node, BlockNode) and isinstance(node.filters, tuple)
        axes.text(x, y, label, ha="center", va="center", fontsize=6 if small else 7, color="white", fontweight="bold",
                  linespacing=1.1, zorder=4)
    for column in range(NUM_LEVELS + 1):
        axes.text(column * _COLUMN_GAP, header_y, "stems" if column == 0 else f"level {column - 1}",
                  ha="center", va="bottom", fontsize=10, fontweight="bold")
    figure.suptitle(title or graph.name or "AssembleNet graph", fontsize=12, y=1 - 0.15 / total_height,
                    va="top")

    if columns:
        left = width / figure_width
        top = 1 - (title_inches + 0.3) / total_height
        figure.text(left, top, "weights not labelled\n(source \u2192 target)", ha="left", va="bottom",
                    fontsize=7.5, fontweight="bold", color="#333333", gid="weight-table")
        for k, column_edges in enumerate(columns):
            lines = [f"#{s:<2} \u2192 #{t:<2} {strengths[(s, t)]:.2f}" for s, t in column_edges]
            figure.text(left + k * _TABLE_COLUMN_INCHES / figure_width, top - 0.05 / total_height,
                        "\n".join(lines), ha="left", va="top", fontsize=7, family="monospace",
                        linespacing=1.25, color="#222222", gid="weight-table")

    shown = {_colour(r) for r in reach}
    handles = [
        Line2D([0], [0], marker="s", linestyle="none", markerfacecolor=colour, markeredgecolor="black",
               markersize=10, label=name)
        for name, colour in (("RGB", _MODALITY_COLOURS[frozenset({StemType.RGB})]),
                             ("optical flow", _MODALITY_COLOURS[frozenset({StemType.FLOW})]),
                             ("object", _MODALITY_COLOURS[frozenset({StemType.OBJECT})]),
                             ("mixed modalities", _MIXED_COLOUR))
        if colour in shown
    ]
    if weighted:
        handles += [Line2D([0], [0], color="#555555", linewidth=0.5 + 5.5 * w, alpha=0.2 + 0.7 * w,
                           label=f"weight {w:g}") for w in (0.1, 0.5, 1.0)]
    if attention_edges:
        handles.append(Line2D([0], [0], color="#555555", linewidth=1.3, linestyle=(0, (4, 3)),
                              label="attention source"))
    caption = "colour: modality of the stream (square = stem, f = filters, d = temporal dilation)\n"
    if weighted:
        caption += CAPTION_WEIGHTED
        if any(s is None for s in strengths.values()):
            caption += " (an edge into a single-input node is not scaled: full width, no label)"
        if columns:
            caption += "; the weights with no room on the plot are listed at the right"
    else:
        caption += CAPTION_UNWEIGHTED
    figure.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=8, frameon=False,
                  bbox_to_anchor=(0.5, 0.42 / total_height), handlelength=2.5)
    figure.text(0.5, 0.06 / total_height, caption, ha="center", va="bottom", fontsize=7.5, color="#444444",
                linespacing=1.3, gid="caption")
    return figure


def _place_labels(
    figure: Figure, axes: Axes, order: Sequence[Edge], geometry: Mapping[Edge, EdgeGeometry],
    position: Mapping[int, Point],
) -> dict[Edge, Point]:
    """Where each weight label goes (data coordinates), strongest edge first: the first point along its own
    arc, middle first, whose label box no other drawn arrow (with its line width), label or node touches and
    which lies inside the axes; edges with no such point are left out (the table lists them)."""
    from matplotlib.patches import FancyArrowPatch
    from matplotlib.transforms import Bbox

    axes.apply_aspect()
    to_display = axes.transData
    # Every label is "0.xx": one size. Its white box pads the text by 0.12 font sizes; 1.5 px more keeps apart.
    probe = axes.text(0, 0, "0.00", fontsize=_LABEL_FONT_SIZE, ha="center", va="center")
    text_box = probe.get_window_extent()  # the figure's renderer (the canvas's, on Agg)
    probe.remove()
    pad = 0.12 * _LABEL_FONT_SIZE * figure.dpi / 72.0 + 1.5
    half_w, half_h = text_box.width / 2 + pad, text_box.height / 2 + pad
    arrows = {patch.get_gid(): (patch.get_transform().transform_path(patch.get_path()),
                                patch.get_linewidth() * figure.dpi / 72.0 / 2)
              for patch in axes.patches if isinstance(patch, FancyArrowPatch)}
    corner = (_NODE_RADIUS, _NODE_RADIUS)
    obstacles = [Bbox(to_display.transform([(x - corner[0], y - corner[1]), (x + corner[0], y + corner[1])]))
                 for x, y in position.values()]
    limits = axes.bbox
    placed: dict[tuple[int, int], tuple[float, float]] = {}
    for edge in order:
        own = f"edge {edge[0]}->{edge[1]}"
        start, end, rad = geometry[edge]
        for t in _LABEL_POSITIONS:
            x, y = _point_on_arc(start, end, rad, t)
            px, py = to_display.transform((x, y))
            label = Bbox.from_extents(px - half_w, py - half_h, px + half_w, py + half_h)
            if (label.x0 < limits.x0 or label.y0 < limits.y0 or label.x1 > limits.x1 or label.y1 > limits.y1
                    or any(label.overlaps(other) for other in obstacles)):
                continue
            if any(path.intersects_bbox(label.padded(half_line), filled=False)
                   for gid, (path, half_line) in arrows.items() if gid != own):
                continue
            placed[edge] = (x, y)
            obstacles.append(label)
            break
    return placed


def _layout(graph: AssembleNetGraph) -> dict[int, tuple[float, float]]:
    """Node centres: one column per level, each column centred vertically and ordered by the mean height
    of the node's inputs in earlier columns (the barycentre heuristic, which removes most crossings)."""
    columns: dict[int, list[int]] = {c: [] for c in range(NUM_LEVELS + 1)}
    for index, node in enumerate(graph.nodes):
        columns[0 if isinstance(node, StemNode) else node.level + 1].append(index)
    position: dict[int, tuple[float, float]] = {}
    for column in range(NUM_LEVELS + 1):
        members = columns[column]

        def barycentre(index: int) -> float:
            node = graph.nodes[index]
            heights = [position[i][1] for i in getattr(node, "inputs", ()) if i in position]
            return -sum(heights) / len(heights) if heights else 0.0

        if column > 0:
            members = sorted(members, key=lambda i: (barycentre(i), i))
        for rank, index in enumerate(members):
            position[index] = (column * _COLUMN_GAP, ((len(members) - 1) / 2.0 - rank) * _ROW_GAP)
    return position


def _edge_geometry(
    position: Mapping[int, tuple[float, float]], source: int, target: int
) -> tuple[tuple[float, float], tuple[float, float], float]:
    """Start and end on the node outlines, and the arc3 curvature.

    Straight where nothing is in the way (always between neighbouring columns); otherwise the gentlest bend,
    either way, that keeps the edge clear of the other nodes without bulging more than ``_MAX_OVERSHOOT`` past
    the outermost nodes (a long edge's wide arc would otherwise leave the picture, or stretch it). Where no bend
    manages both, the one with the most clearance less its overshoot.
    """
    p0, p1 = position[source], position[target]
    others = [xy for index, xy in position.items() if index not in (source, target)]
    top = max(y for _, y in position.values()) + _NODE_RADIUS
    bottom = min(y for _, y in position.values()) - _NODE_RADIUS
    best_rad, best_score = 0.0, -math.inf
    for rad in (0.0, 0.08, -0.08, 0.15, -0.15, 0.22, -0.22, 0.3, -0.3, 0.4, -0.4, 0.5, -0.5):
        points = [_point_on_arc(p0, p1, rad, k / 40) for k in range(1, 40)]
        clearance = min((math.dist(p, o) for p in points for o in others), default=math.inf)
        overshoot = max(0.0, max(y for _, y in points) - top, bottom - min(y for _, y in points))
        if clearance > 1.35 * _NODE_RADIUS and overshoot <= _MAX_OVERSHOOT:
            best_rad = rad
            break
        score = min(clearance, 1.35 * _NODE_RADIUS) - overshoot
        if score > best_score:
            best_rad, best_score = rad, score
    control = _control_point(p0, p1, best_rad)
    start = _towards(p0, control, _NODE_RADIUS * 1.05)
    end = _towards(p1, control, _NODE_RADIUS * 1.1)
    return start, end, best_rad


def _arc_points(start: Point, end: Point, rad: float) -> NDArray[np.float64]:
    import numpy as np

    return np.array([_point_on_arc(start, end, rad, k / 40) for k in range(41)])


def _towards(point: tuple[float, float], goal: tuple[float, float], distance: float) -> tuple[float, float]:
    dx, dy = goal[0] - point[0], goal[1] - point[1]
    length = math.hypot(dx, dy) or 1.0
    return point[0] + distance * dx / length, point[1] + distance * dy / length


def _point_on_arc(start: tuple[float, float], end: tuple[float, float], rad: float, t: float) -> tuple[float, float]:
    """The point at parameter ``t`` of matplotlib's arc3 connection (a quadratic Bezier)."""
    (x0, y0), (x1, y1) = start, end
    cx, cy = _control_point(start, end, rad)
    a, b, c = (1 - t) ** 2, 2 * t * (1 - t), t ** 2
    return a * x0 + b * cx + c * x1, a * y0 + b * cy + c * y1


def _control_point(start: tuple[float, float], end: tuple[float, float], rad: float) -> tuple[float, float]:
    """The Bezier control point of matplotlib's ``arc3,rad=...`` (in display space; equal aspect here)."""
    (x0, y0), (x1, y1) = start, end
    return (x0 + x1) / 2 + rad * (y1 - y0), (y0 + y1) / 2 - rad * (x1 - x0)


def _edge_strengths(
    graph: AssembleNetGraph, weights: Mapping[tuple[int, int], float] | None
) -> dict[tuple[int, int], float | None]:
    """``(source, target) -> strength``; ``None`` for single-input edges and wherever nothing is known."""
    strengths: dict[tuple[int, int], float | None] = {}
    for edge in graph.edges():
        node = graph.nodes[edge.target]
        single_input = isinstance(node, BlockNode) and len(node.inputs) == 1
        strength = edge.weight
        if weights is not None and (edge.source, edge.target) in weights:
            strength = float(weights[(edge.source, edge.target)])
        strengths[(edge.source, edge.target)] = None if single_input else strength
    return strengths


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
