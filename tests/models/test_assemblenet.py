import pytest
import torch

from assemblenet.errors import GraphError
from assemblenet.graph import AssembleNetGraph, official_graph
from assemblenet.models import build_assemblenet, create_model, fold_batch_norm

TINY = dict(depth=26, width_multiplier=0.125)


def tiny(name="assemblenet50_searchable", num_classes=5, **kw):
    torch.manual_seed(0)
    return create_model(name, num_classes=num_classes, **{**TINY, **kw})


def test_tiny_model_shapes_per_node():
    model = tiny().eval()
    x = torch.rand(2, 3, 4, 32, 32)
    with torch.no_grad():
        nodes = model.forward_nodes(x)
        logits = model(x)
    assert logits.shape == (2, 5)
    shapes = [tuple(n.shape) for n in nodes]
    assert shapes[:4] == [(2, 4, 4, 8, 8)] * 4  # stems: 16 // 4 channels at H/4
    assert shapes[4:8] == [(2, 16, 4, 8, 8)] * 4
    assert shapes[8:12] == [(2, 32, 4, 4, 4)] * 4
    assert shapes[12:14] == [(2, 128, 4, 2, 2)] * 2
    assert shapes[14] == (2, 256, 4, 1, 1)


def test_full_size_shape_walk_on_meta_device():
    with torch.device("meta"):
        model = create_model("assemblenet50").eval()
        nodes = model.forward_nodes(torch.empty(1, 3, 32, 224, 224))
    assert [tuple(n.shape) for n in nodes[:4]] == [(1, 32, 32, 56, 56)] * 4
    assert tuple(nodes[7].shape) == (1, 128, 32, 56, 56)
    assert tuple(nodes[11].shape) == (1, 256, 32, 28, 28)
    assert tuple(nodes[13].shape) == (1, 1024, 32, 14, 14)
    assert tuple(nodes[14].shape) == (1, 2048, 32, 7, 7)


def test_fixed_weights_are_frozen_buffers_with_official_values():
    model = tiny("assemblenet50")
    weights = model.connection_weights()
    assert weights[(0, 6)] == pytest.approx(0.13810564577579498, rel=1e-6)
    assert weights[(13, 14)] == pytest.approx(0.8454614877700806, rel=1e-6)
    assert weights[(1, 4)] == 1.0  # single input: never scaled
    assert not any("edge_logits" in name for name, _ in model.named_parameters())


def test_learnable_weights_train_and_are_reported_in_graph_terms():
    model = tiny()
    before = model.connection_weights()
    assert all(abs(w - 0.5) < 0.01 for (s, t), w in before.items() if len(model.graph[t].inputs) > 1)
    optimizer = torch.optim.SGD([p for n, p in model.named_parameters() if "edge_logits" in n], lr=10.0)
    loss = torch.nn.functional.cross_entropy(model(torch.rand(2, 3, 4, 32, 32)), torch.tensor([0, 3]))
    loss.backward()
    optimizer.step()
    after = model.connection_weights()
    assert any(abs(after[e] - before[e]) > 1e-4 for e in before if len(model.graph[e[1]].inputs) > 1)
    learned = model.graph_with_learned_weights()
    assert learned[6].edge_weights == pytest.approx([after[(i, 6)] for i in (0, 1, 2, 3)])
    assert learned[4].edge_weights is None  # single input


def test_a_learned_graph_rebuilds_a_model_with_identical_connections():
    source = tiny().eval()
    frozen = build_assemblenet(graph=source.graph_with_learned_weights(), num_classes=5, **TINY).eval()
    frozen.load_state_dict(source.state_dict())
    x = torch.rand(1, 3, 4, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(frozen(x), source(x), rtol=1e-5, atol=1e-6)
    assert frozen.connection_weights() == pytest.approx(source.connection_weights(), rel=1e-6)


def test_precomputed_flow_input_matches_computing_it_inside():
    inside = tiny("assemblenet50").eval()
    outside = tiny("assemblenet50", flow_mode="precomputed").eval()
    outside.load_state_dict(inside.state_dict(), strict=False)
    x = torch.rand(2, 3, 4, 32, 32)
    with torch.no_grad():
        flow = inside.flow_layer(x)
        torch.testing.assert_close(outside(x, flow), inside(x))
        assert not torch.allclose(outside(x, flow), outside(x, torch.zeros_like(flow)))
    assert outside.flow_layer is None
    with pytest.raises(ValueError, match="precomputed flow"):
        outside(x)


def test_max_pool_predictions_head_is_softmax_weighted_over_time():
    model = tiny(max_pool_predictions=True).eval()
    x = torch.rand(2, 3, 4, 32, 32)
    with torch.no_grad():
        final = model.forward_nodes(x)[14]
        per_frame = model.head.fc(final.mean(dim=(-2, -1)).transpose(1, 2))  # [B, T, K]
        expected = (per_frame * torch.softmax(per_frame / 2.0, dim=1)).sum(dim=1)
        torch.testing.assert_close(model(x), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.filterwarnings("ignore:graph asnp50.*reach no output:UserWarning")  # asnp50's node 9: expected here
def test_object_stem_graph_runs_and_object_width_does_not_set_fusion_width():
    graph = official_graph("asnp50", with_weights=False)
    model = build_assemblenet(graph=graph, num_classes=3, **TINY).eval()
    assert model.nodes[0].fusion.out_channels == 3  # node 5 reads 4 stems of 3 channels and the 151 objects
    x, objects = torch.rand(1, 3, 4, 32, 32), torch.rand(1, 151, 4, 32, 32)
    with torch.no_grad():
        assert model(x, objects=objects).shape == (1, 3)
    with pytest.raises(ValueError, match="object stem"):
        model(x)


def test_output_nodes_of_different_widths_are_concatenated():
    graph = AssembleNetGraph.from_official(
        [[-1, 1], [0, [0], 4, 1, 1, 0], [3, [1], 4, 1, 2, 0], [3, [1], 8, 2, 2, 0]]
    )
    model = build_assemblenet(graph=graph, num_classes=2, depth=26, stem_filters=8,
                              intermediate_channels=[8, 8, 8, 8]).eval()
    assert model.head.fc.in_features == 4 * 4 + 4 * 8
    assert model(torch.rand(1, 3, 2, 16, 16)).shape == (1, 2)


def test_frozen_weights_need_given_weights():
    with pytest.raises(GraphError, match="node 6: frozen connection weights requested"):
        build_assemblenet(graph=official_graph("asn50", with_weights=False), num_classes=2, learnable_weights=False,
                          **TINY)


def test_torchscript_matches_eager():
    model = tiny("assemblenet50").eval()
    scripted = torch.jit.script(model)
    x = torch.rand(1, 3, 4, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(scripted(x), model(x))


def test_gradients_reach_every_trainable_parameter():
    model = tiny()
    model(torch.rand(2, 3, 4, 32, 32)).logsumexp(dim=1).sum().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert missing == []


def test_folding_batch_norm_keeps_the_function_and_removes_every_bn():
    model = tiny("assemblenet50").eval()
    for module in model.modules():  # non-trivial statistics, so a wrong fold would show
        if isinstance(module, torch.nn.BatchNorm3d):
            module.running_mean.uniform_(-0.2, 0.2)
            module.running_var.uniform_(0.5, 1.5)
            module.weight.data.uniform_(0.5, 1.5)
    x = torch.rand(2, 3, 4, 32, 32)
    with torch.no_grad():
        expected = model(x)
        folded = fold_batch_norm(model)
        torch.testing.assert_close(folded(x), expected, rtol=1e-4, atol=1e-5)
    assert not any(isinstance(m, torch.nn.BatchNorm3d) for m in folded.modules())
    with pytest.raises(ValueError, match="call model.eval"):
        fold_batch_norm(tiny().train())


def test_connection_contributions_are_each_inputs_term_in_the_fused_sum():
    model = tiny().eval()
    x = torch.rand(2, 3, 4, 32, 32)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    energies = model.connection_contributions(x)
    assert set(energies) == set(model.connection_weights())
    with torch.no_grad():
        outputs = model.forward_nodes(x)
    # Node 6 reads the four 4-channel stems: one channel group, no projection, no pooling.
    strengths = model.connection_weights()
    for s in (0, 1, 2, 3):
        expected = float((strengths[(s, 6)] * outputs[s]).pow(2).mean())
        assert energies[(s, 6)] == pytest.approx(expected, rel=1e-5)
    # A single input's term is the input itself.
    (single,) = model.graph[4].inputs
    assert energies[(single, 4)] == pytest.approx(float(outputs[single].pow(2).mean()), rel=1e-5)
    # Scaling one weight scales that term, and that term only.
    fusion = model.nodes[6 - 4].fusion
    with torch.no_grad():
        fusion.edge_logits[0] = -3.0
    scaled = model.connection_contributions(x)
    ratio = (torch.sigmoid(torch.tensor(-3.0)) / strengths[(0, 6)]) ** 2
    assert scaled[(0, 6)] == pytest.approx(energies[(0, 6)] * float(ratio), rel=1e-4)
    assert all(scaled[e] == pytest.approx(energies[e], rel=1e-6) for e in energies if e != (0, 6) and e[1] <= 6)
    with torch.no_grad():
        fusion.edge_logits[0] = before["nodes.2.fusion.edge_logits"][0]
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())  # nothing else was touched
    assert not model.training


def test_connection_contributions_stay_on_the_device_and_are_read_once_per_batch():
    from assemblenet.models.summary import _meta_copy
    from tests.host_reads import count_host_reads

    model = tiny().eval()
    x = torch.rand(2, 3, 4, 32, 32)
    with count_host_reads() as log:
        energies = model.connection_contributions(x)
    # The CPU flow kernel passes its constants to C as doubles; that is no device read.
    reads = [r for r in log.reads if not r.in_file("rep_flow_kernel.py")]
    assert [r.method for r in reads] == ["tolist"], [r.where() for r in reads]  # one transfer for every edge
    assert len(energies) == len(model.connection_weights())
    # A fusion's contributions are computed where its inputs are (here the meta device: no host tensor).
    meta = _meta_copy(model)
    with torch.no_grad():
        outputs = meta.forward_nodes(torch.empty(2, 3, 4, 32, 32, device="meta"))
    inputs = [outputs[s] for s in model.graph[6].inputs]
    values = meta.nodes[6 - 4].fusion.input_contributions(inputs)
    assert values.device.type == "meta" and values.shape == (len(inputs),)
