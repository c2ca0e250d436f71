import numpy as np
import pytest
from matplotlib import image

from assemblenet.graph import official_graph
from assemblenet.graph.plot import plot_graph


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

    graph = official_graph("asn50")
    plain = image.imread(plot_graph(graph, tmp_path / "plain.png"))
    nodes = list(graph.nodes)
    nodes[14] = dataclasses.replace(nodes[14], attention_sources=(0, 2, 9))
    with_sources = graph.replace_nodes(nodes)
    drawn = image.imread(plot_graph(with_sources, tmp_path / "sources.png"))  # the graph's own sources
    given = image.imread(plot_graph(graph, tmp_path / "given.png", attention={14: [0, 2, 9]}))
    assert drawn.shape == plain.shape and np.array_equal(drawn, given)
    assert np.mean(np.abs(drawn[..., :3] - plain[..., :3]).sum(axis=-1) > 0.1) > 0.002  # the arrows and legend
