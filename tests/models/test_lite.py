"""AssembleNet++lite: filter-triple graphs, the inverted-bottleneck blocks, the lite stems and head, the preset."""

import pytest
import torch

from assemblenet.errors import ConfigError, GraphError
from assemblenet.graph import AssembleNetGraph, graph_from_dict, graph_to_dict, official_graph
from assemblenet.models import build_assemblenet, create_model, fold_batch_norm
from assemblenet.models.lite import (
    InvertedBottleneck3D,
    LiteStem,
    SameSpatialConv,
    build_assemblenet_lite,
    spatial_widths,
)

# A tiny lite graph: the asnp_lite wiring at a third of its width (what the gr_lite reference uses).
TINY = dict(graph=official_graph("asnp_lite", with_weights=False).scaled(1 / 3), num_blocks=(1, 2, 1, 1))


def trainable(model):
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def test_asnp_lite_is_verbatim_and_round_trips_with_its_filter_triples():
    graph = official_graph("asnp_lite")
    assert graph.uses_filter_triples and len(graph) == 11
    assert graph.nodes[2].filters == (27, 27, 12) and graph.nodes[2].out_channels == 12
    assert graph.nodes[10].filters == (432, 432, 192) and graph.output_indices == [10]
    assert graph.nodes[10].edge_weights[-1] == pytest.approx(0.9987731575965881)
    structure, weights = graph.to_official()
    assert structure[8] == [2, [0, 1, 2, 3, 4, 5, 6, 7], [152, 152, 68], 1, 2, 0]
    assert AssembleNetGraph.from_official(structure, weights) == graph
    assert graph_from_dict(graph_to_dict(graph)) == graph
    # Scaling keeps the triples, rounding each value (the gr_lite reference's filters).
    assert [n.filters for n in graph.scaled(1 / 3).nodes[2::2]] == [(9, 9, 4), (18, 18, 8), (18, 18, 8),
                                                                    (51, 51, 23), (144, 144, 64)]


@pytest.mark.parametrize("filters,message", [([27, 27], "needs 3 values|triple"), ([27, 0, 12], "positive"),
                                             ([27, 27.5, 12], "integer")])
def test_bad_filter_triples_are_named(filters, message):
    with pytest.raises(GraphError, match=f"node 2 filters.*({message})"):
        AssembleNetGraph.from_official([[-1, 1], [-2, 1], [3, [0, 1], filters, 1, 2, 0]])


def test_a_graph_mixes_no_int_filters_with_triples_and_each_builder_takes_its_kind():
    with pytest.raises(GraphError, match="mixes int filters and filter triples"):
        AssembleNetGraph.from_official([[-1, 1], [0, [0], [4, 4, 4], 1, 1, 0], [3, [1], 8, 1, 2, 0]])
    with pytest.raises(GraphError, match="build_assemblenet_lite"):
        build_assemblenet(graph=official_graph("asnp_lite"), num_classes=3)
    with pytest.raises(GraphError, match="needs \\[expand, expand, out\\] filter triples"):
        build_assemblenet_lite(graph=official_graph("asn50"), num_classes=3)
    with pytest.raises(GraphError, match="channel budget"):
        official_graph("asnp_lite").channel_budget()
    with pytest.raises(ConfigError, match="no depth option"):
        create_model("assemblenet_plus_lite", depth=50)


def test_lite_stem_and_blocks_have_the_original_shapes_and_tf_same_padding():
    x = torch.rand(2, 3, 5, 17, 16)
    stem = LiteStem(6, temporal_dilation=2)
    assert list(stem(x).shape) == [2, 6, 5, 9, 8]
    # TF 'SAME' at stride 2 on an even size pads only after: the first output pixel sees input pixels 0..2
    # (torch's symmetric padding=1 would centre it on pixel 0).
    conv = SameSpatialConv(1, 1, 3, stride=2)
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight[0, 0, 0, 0] = 1.0  # reads the top-left tap only
    image = torch.arange(16.0).reshape(1, 1, 1, 4, 4)
    assert conv(image)[0, 0, 0].tolist() == [[0.0, 2.0], [8.0, 10.0]]

    strided = InvertedBottleneck3D(6, (10, 12, 8), stride=2, temporal_dilation=4, use_projection=True)
    plain = InvertedBottleneck3D(8, (10, 12, 8), temporal_dilation=2)
    assert strided.conv_b_temporal is not None and tuple(strided.conv_b_temporal.dilation) == (4, 1, 1)
    assert plain.conv_b_temporal is None and tuple(plain.conv_b.kernel_size) == (3, 3, 3)
    assert tuple(plain.conv_b.dilation) == (2, 1, 1)
    assert float(strided.bn_c.weight.detach().abs().sum()) == 0.0  # the last BN starts at gamma = 0
    y = strided(torch.rand(2, 6, 5, 9, 8))
    assert list(y.shape) == [2, 8, 5, 5, 4] and list(plain(y).shape) == list(y.shape)
    with pytest.raises(ValueError, match="identity shortcut needs 8 input channels"):
        InvertedBottleneck3D(6, (10, 12, 8))


def test_a_lite_model_builds_and_trains_a_step():
    torch.manual_seed(0)
    model = build_assemblenet_lite(num_classes=5, attention_mode="peer", **TINY)
    x = torch.rand(2, 3, 4, 32, 32)
    nodes = model.forward_nodes(x)
    # Stems at half resolution with 24 channels; every block node strides and outputs its f2.
    assert [list(n.shape[1:]) for n in nodes] == [
        [24, 4, 16, 16], [24, 4, 16, 16], [4, 4, 8, 8], [4, 4, 8, 8], [8, 4, 4, 4], [8, 4, 4, 4], [8, 4, 4, 4],
        [8, 4, 4, 4], [23, 4, 2, 2], [23, 4, 2, 2], [64, 4, 1, 1]]
    # The correct fusion width is the widest input's channel count (the level-3 node reads 4, 8 and 23).
    assert [node.fusion.out_channels for node in model.nodes] == [24, 24, 24, 24, 24, 24, 24, 24, 23]
    assert model.head.conv1.out_channels == 432 and model.head.conv2.out_channels == 2048
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    labels = torch.tensor([1, 3])
    # Two steps: in the first, the convs inside each block get no gradient (their block's last BN starts at
    # gamma = 0, as in the original); the first step moves those gammas.
    for _ in range(2):
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), labels)
        loss.backward()
        optimizer.step()
        assert torch.isfinite(loss)
    changed = {name for name, p in model.named_parameters() if not torch.equal(p, before[name])}
    for part in ("stems.0.conv.weight", "stems.1.temporal.weight", "nodes.0.blocks.0.conv_b_temporal.weight",
                 "nodes.2.blocks.1.conv_b.weight", "nodes.0.blocks.0.projection.0.weight",
                 "nodes.8.fusion.edge_logits", "nodes.8.fusion.attentions.0.peer_logits",
                 "nodes.8.peer_features.projections.0.weight", "head.conv2.weight", "head.classifier.fc.weight"):
        assert part in changed, part


def test_the_original_fusion_width_rule_follows_the_input_width():
    # The authors' 5-D fusion takes an input's spatial width where it means its channel count: at 64x64 the
    # level-0..2 fusions output 32 channels (the stems' width) and the level-3 one 4 (its inputs' 4x4 maps).
    graph = TINY["graph"]
    assert spatial_widths(graph, 64) == [32, 32, 16, 16, 8, 8, 8, 8, 4, 4, 2]
    quirk = build_assemblenet_lite(num_classes=5, fusion_width="tf_spatial_width", input_size=(64, 64), **TINY)
    assert [node.fusion.out_channels for node in quirk.nodes] == [32] * 8 + [4]
    # The published widths at 224x224: 112, and 14 for the level-3 node, whose 68-channel level-2 inputs
    # (14 pixels wide) are wider than its first input's 56 pixels.
    with torch.device("meta"):
        at_224 = build_assemblenet_lite(graph=official_graph("asnp_lite"), num_classes=5, num_blocks=(1, 1, 1, 1),
                                        fusion_width="tf_spatial_width", input_size=(224, 224))
    assert [node.fusion.out_channels for node in at_224.nodes] == [112] * 8 + [14]
    with pytest.raises(ValueError, match="give input_size"):
        build_assemblenet_lite(num_classes=5, fusion_width="tf_spatial_width", **TINY)


def test_lite_graphs_without_a_single_output_or_with_objects_are_refused():
    two_outputs = AssembleNetGraph.from_official([[-1, 1], [3, [0], [4, 4, 4], 1, 2, 0], [3, [0], [4, 4, 4], 1, 2, 0]])
    with pytest.raises(GraphError, match="reads one level-3 node; the graph has 2"):
        build_assemblenet_lite(graph=two_outputs, num_classes=2)
    objects = AssembleNetGraph.from_official([[-1, 1], [-3, 1], [3, [0, 1], [4, 4, 4], 1, 2, 0]])
    with pytest.raises(GraphError, match="node 1: AssembleNet\\+\\+lite has no object stem"):
        build_assemblenet_lite(graph=objects, num_classes=2)


def test_folding_batch_norm_keeps_the_lite_function():
    torch.manual_seed(1)
    model = build_assemblenet_lite(num_classes=3, attention_mode="peer", **TINY)
    for module in model.modules():  # non-trivial statistics, so that a wrong fold shows
        if isinstance(module, torch.nn.BatchNorm3d):
            module.running_mean.uniform_(-0.2, 0.2)
            module.running_var.uniform_(0.5, 1.5)
            module.weight.data.uniform_(0.5, 1.5)
    model.eval()
    x = torch.rand(1, 3, 4, 32, 32)
    with torch.no_grad():
        expected = model(x)
        fold_batch_norm(model)
        assert not any(isinstance(m, torch.nn.BatchNorm3d) for m in model.modules())
        torch.testing.assert_close(model(x), expected, rtol=1e-4, atol=1e-5)


def test_lite_model_scripts():
    model = build_assemblenet_lite(num_classes=3, attention_mode="peer", **TINY).eval()
    scripted = torch.jit.script(model)
    x = torch.rand(1, 3, 4, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(scripted(x), model(x))
