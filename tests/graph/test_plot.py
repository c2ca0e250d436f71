import re
from pathlib import Path

import numpy as np
import pytest
from matplotlib import image
from matplotlib.patches import Circle, FancyArrowPatch, Rectangle
from matplotlib.text import Text

from assemblenet.graph import load_graph, official_graph
from assemblenet.graph.plot import CAPTION_UNWEIGHTED, CAPTION_WEIGHTED, draw_graph, plot_graph


def test_plot_writes_a_non_blank_png(tmp_path):
    path = plot_graph(official_graph("asn50"), tmp_path / "sub" / "asn50.png", title="asn50")
    assert path.exists() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pixels = image.imread(path)
    assert pixels.shape[0] > 400 and pixels.shape[1] > 800
    assert pixels[..., :3].std() > 0.05  # drawn content, not a blank canvas
    assert list(tmp_path.glob("sub/.*")) == []  # no temp file left behind


def test_edge_width_follows_the_weights(tmp_path):
    graph = official_graph("asn50")
    strong = {(e.source, e.target): 1.0 for e in graph.edges()}
    weak = {(e.source, e.target): 0.0 for e in graph.edges()}
    ink = []
    for name, weights in (("strong", strong), ("weak", weak)):
        pixels = image.imread(plot_graph(graph, tmp_path / f"{name}.png", weights=weights))
        ink.append(np.mean(pixels[..., :3].mean(axis=-1) < 0.9))
    assert ink[0] > ink[1] * 1.2


def test_object_graph_without_weights_and_other_formats(tmp_path):
    unweighted = plot_graph(official_graph("asnp50").without_edge_weights(), tmp_path / "asnp50.png")
    pixels = image.imread(unweighted)
    # The object stem's green (#2ca02c) is drawn.
    green = (np.abs(pixels[..., 0] - 0x2C / 255) < 0.02) & (np.abs(pixels[..., 1] - 0xA0 / 255) < 0.02)
    assert green.sum() > 500
    svg = plot_graph(official_graph("asn50"), tmp_path / "asn50.svg")
    assert svg.read_text().lstrip().startswith("<?xml")
    with pytest.raises(ValueError, match="asn50.jpg: expected a file name ending in .png"):
        plot_graph(official_graph("asn50"), tmp_path / "asn50.jpg")


def test_attention_sources_are_drawn_as_dashed_arrows(tmp_path):
    import dataclasses

    import matplotlib.pyplot as plt

    graph = official_graph("asn50")
    nodes = list(graph.nodes)
    nodes[14] = dataclasses.replace(nodes[14], attention_sources=(0, 2, 9))
    with_sources = graph.replace_nodes(nodes)
    drawn = image.imread(plot_graph(with_sources, tmp_path / "sources.png"))  # the graph's own sources
    given = image.imread(plot_graph(graph, tmp_path / "given.png", attention={14: [0, 2, 9]}))
    assert np.array_equal(drawn, given)
    drawings = {}
    for name, drawn_graph in (("plain", graph), ("sources", with_sources)):
        figure = draw_graph(drawn_graph)
        try:
            drawings[name] = ({p.get_gid(): p.get_linestyle() for p in figure.axes[0].patches
                               if (p.get_gid() or "").startswith("attention ")},
                              [t.get_text() for t in figure.legends[0].get_texts()])
        finally:
            plt.close(figure)
    assert drawings["plain"][0] == {} and "attention source" not in drawings["plain"][1]
    dashed, legend = drawings["sources"]
    assert set(dashed) == {"attention 0->14", "attention 2->14", "attention 9->14"}
    assert all(style != "-" for style in dashed.values()) and "attention source" in legend


# -- geometry of the drawing: arcs inside, labels apart, captions true ---------------------------------------
SEARCHED = Path(__file__).resolve().parents[1] / "fixtures" / "graphs" / "searched_demo.yaml"


def _drawn(graph, **options):
    import matplotlib.pyplot as plt

    figure = draw_graph(graph, **options)
    figure.canvas.draw()
    return figure, figure.canvas.get_renderer(), plt


def _edge(gid: str) -> tuple[int, int]:
    source, target = gid.split(" ", 1)[1].split("->")
    return int(source), int(target)


def _dense_graphs():
    return {"asnp50": official_graph("asnp50"), "searched": load_graph(SEARCHED)}


@pytest.mark.parametrize("name", ["asnp50", "searched"])
def test_every_arc_stays_inside_the_axes_and_every_artist_inside_the_figure(name):
    figure, renderer, plt = _drawn(_dense_graphs()[name])
    try:
        axes = figure.axes[0]
        arrows = [p for p in axes.patches if isinstance(p, FancyArrowPatch)]
        assert len(arrows) == len(_dense_graphs()[name].edges())
        inside_axes = axes.bbox.padded(0.5)
        for arrow in arrows:
            extent = arrow.get_window_extent(renderer)
            assert inside_axes.contains(extent.x0, extent.y0) and inside_axes.contains(extent.x1, extent.y1), (
                arrow.get_gid(), extent, axes.bbox)
        inside_figure = figure.bbox.padded(0.5)
        texts = [t for t in figure.findobj(Text) if t.get_visible() and t.get_text()]
        assert len(texts) > 20
        for artist in texts + figure.legends:
            extent = artist.get_window_extent(renderer)
            assert inside_figure.contains(extent.x0, extent.y0) and inside_figure.contains(extent.x1, extent.y1), (
                getattr(artist, "get_text", lambda: "legend")(), extent, figure.bbox)
        caption = next(t for t in texts if t.get_gid() == "caption")
        assert not caption.get_window_extent(renderer).overlaps(figure.legends[0].get_window_extent(renderer))
    finally:
        plt.close(figure)


def test_edge_labels_sit_apart_on_their_own_edge_and_every_weight_is_shown_once():
    graph = load_graph(SEARCHED)
    figure, renderer, plt = _drawn(graph)
    try:
        axes = figure.axes[0]
        labels = {_edge(t.get_gid()): t for t in axes.texts if (t.get_gid() or "").startswith("edge-label ")}
        assert len(labels) >= 10
        boxes = {edge: label.get_bbox_patch().get_window_extent(renderer) for edge, label in labels.items()}
        edges = list(boxes)
        for i, first in enumerate(edges):  # no two labels overlap
            for second in edges[i + 1:]:
                assert not boxes[first].overlaps(boxes[second]), (first, second)
        nodes = [p.get_window_extent(renderer) for p in axes.patches if isinstance(p, (Circle, Rectangle))]
        arrows = {_edge(p.get_gid()): p for p in axes.patches if isinstance(p, FancyArrowPatch)}
        for edge, box in boxes.items():
            assert not any(box.overlaps(node) for node in nodes), edge
            # On its own edge, and no other edge (with its line width) passes under it: the label is unambiguous.
            own = arrows[edge].get_transform().transform_path(arrows[edge].get_path())
            assert own.intersects_bbox(box, filled=False), edge
            for other, arrow in arrows.items():
                if other != edge:
                    path = arrow.get_transform().transform_path(arrow.get_path())
                    half_line = arrow.get_linewidth() * figure.dpi / 72 / 2
                    assert not path.intersects_bbox(box.padded(half_line), filled=False), (edge, other)
        # Every weight appears once: as a label on the plot or as a row of the table beside it.
        table = "\n".join(t.get_text() for t in figure.texts if t.get_gid() == "weight-table")
        rows = {(int(s), int(t)): value for s, t, value in re.findall(r"#(\d+)\s*\u2192 #(\d+)\s+(\d\.\d\d)", table)}
        weights = {(e.source, e.target): e.weight for e in graph.edges()}
        assert set(rows).isdisjoint(labels) and set(rows) | set(labels) == set(weights)
        for edge, label in labels.items():
            assert label.get_text() == f"{weights[edge]:.2f}"
        for edge, value in rows.items():
            assert value == f"{weights[edge]:.2f}"
    finally:
        plt.close(figure)


def test_the_caption_says_whether_weights_are_drawn():
    graph = official_graph("asn50")
    captions = {}
    for name, drawn in (("weighted", graph), ("unweighted", graph.without_edge_weights())):
        figure, renderer, plt = _drawn(drawn)
        try:
            caption = next(t.get_text() for t in figure.texts if t.get_gid() == "caption")
            legend = [t.get_text() for t in figure.legends[0].get_texts()]
            labels = [t for t in figure.axes[0].texts if (t.get_gid() or "").startswith("edge-label ")]
            captions[name] = (caption, legend, labels)
        finally:
            plt.close(figure)
    caption, legend, labels = captions["weighted"]
    assert CAPTION_WEIGHTED in caption and CAPTION_UNWEIGHTED not in caption and "not yet learned" not in caption
    assert "weight 1" in legend and labels
    caption, legend, labels = captions["unweighted"]
    assert CAPTION_UNWEIGHTED in caption and CAPTION_WEIGHTED not in caption
    assert not any(text.startswith("weight") for text in legend) and not labels
