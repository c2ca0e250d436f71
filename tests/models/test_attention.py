"""AssembleNet++ connection attention (peer and self) and the object stream in the model."""

import json
from pathlib import Path

import pytest
import torch

from assemblenet.graph import AssembleNetGraph, official_graph
from assemblenet.models import build_assemblenet, create_model

TINY = dict(depth=26, width_multiplier=0.125)
GOLDEN = Path(__file__).resolve().parents[1] / "fixtures" / "plus" / "attention_none_golden.json"


def _golden_models():
    return {
        "assemblenet50_searchable": lambda **kw: create_model("assemblenet50_searchable", num_classes=5, **TINY, **kw),
        "asnp50": lambda **kw: build_assemblenet(graph=official_graph("asnp50"), num_classes=5, **TINY, **kw),
    }


@pytest.mark.filterwarnings("ignore:graph asnp50")
@pytest.mark.parametrize("name", ["assemblenet50_searchable", "asnp50"])
def test_attention_none_is_bit_identical_to_assemblenet_before_attention(name):
    # The golden file was written by the model as it was before attention existed (commit 92a4a7b): same
    # state-dict keys, same initial values (no extra random draws) and the same logits.
    reference = json.loads(GOLDEN.read_text())[name]
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = _golden_models()[name](attention_mode=None).eval()
    generator = torch.Generator().manual_seed(1)
    x = torch.rand(2, 3, 4, 32, 32, generator=generator)
    objects = torch.rand(2, 151, 4, 32, 32, generator=generator) if model.has_object_stem else None
    with torch.no_grad():
        logits = model(x, objects=objects)
    state = model.state_dict()
    # asnp50's node 9 reaches no output without peer attention: the model now builds no layers for it. Every
    # other tensor, and the logits, must be what they were.
    assert model.pruned_nodes == ([9] if name == "asnp50" else [])
    dropped = tuple(f"nodes.{i - len(model.stems)}." for i in model.pruned_nodes)
    kept = [k for k, key in enumerate(reference["keys"]) if not key.startswith(dropped or ("\0",))]
    assert list(state) == [reference["keys"][k] for k in kept]
    assert [list(v.shape) for v in state.values()] == [reference["shapes"][k] for k in kept]
    assert [float(v.double().sum()) for v in state.values()] == [reference["sums"][k] for k in kept]
    assert [float(v.double().abs().sum()) for v in state.values()] == [reference["abs_sums"][k] for k in kept]
    # Bit-identical on the machine that wrote the file; a tolerance covers other CPUs' kernels.
    torch.testing.assert_close(logits, torch.tensor(reference["logits"]), rtol=0, atol=1e-6)


def test_attention_none_runs_the_same_arithmetic_as_a_model_without_the_argument():
    torch.manual_seed(0)
    plain = create_model("assemblenet50_searchable", num_classes=5, **TINY).eval()
    torch.manual_seed(0)
    none = create_model("assemblenet50_searchable", num_classes=5, attention_mode=None, **TINY).eval()
    x = torch.rand(1, 3, 4, 32, 32)
    with torch.no_grad():
        assert torch.equal(plain(x), none(x))


@pytest.mark.filterwarnings("ignore:graph asnp50.*reach no output:UserWarning")  # asnp50's node 9: expected here
@pytest.mark.parametrize("mode", ["self", "peer"])
def test_gradients_reach_the_peer_softmax_weights_and_attention_dense_layers(mode):
    torch.manual_seed(0)
    model = build_assemblenet(graph=official_graph("asnp50", with_weights=False), num_classes=4,
                              attention_mode=mode, num_object_classes=6, **TINY)
    model(torch.rand(2, 3, 4, 32, 32), objects=torch.rand(2, 6, 4, 32, 32)).logsumexp(dim=1).sum().backward()
    attention = {n: p for n, p in model.named_parameters() if ".attentions." in n or ".peer_features." in n}
    assert attention, "no attention parameters were built"
    dead = {f"nodes.{i - 5}." for i in model.graph.dead_nodes}  # asnp50's node 9 feeds nothing
    assert dead == {"nodes.4."}
    attention = {n: p for n, p in attention.items() if not any(n.startswith(d) for d in dead)}
    missing = [n for n, p in attention.items() if p.grad is None or not p.grad.abs().sum() > 0]
    assert missing == []
    betas = [n for n in attention if n.endswith("peer_logits")]
    if mode == "peer":
        # One softmax vector per connection, single-input nodes included: asnp50 has 45 connections, 8 of
        # them into the dead node 9.
        assert sum(n.endswith("peer_logits") for n, _ in model.named_parameters()) == 45
        assert len(betas) == 45 - 8
        assert any(".peer_features." in n for n in attention)
    else:
        assert betas == [] and not any(".peer_features." in n for n in attention)  # self mode has no peers


def test_peer_sources_are_every_lower_node_in_the_authors_order():
    graph = official_graph("asnp50")
    assert graph.attention_candidates(5) == [4, 2, 3, 0, 1]
    assert graph.attention_candidates(12) == [4, 2, 3, 0, 1, 5, 6, 7, 8, 9, 10, 11]
    model = build_assemblenet(graph=graph, num_classes=3, attention_mode="peer", **TINY)
    assert model.node_peers[0] == [4, 2, 3, 0, 1]
    # The peer vectors are as wide as the widest peer, the object stem (151 channels) included.
    assert model.nodes[0].peer_features.width == 151
    assert model.nodes[0].fusion.out_channels == 3  # ... but the object stem never sets the fusion width


def test_attention_sources_in_the_graph_restrict_the_peers():
    structure = [[-1, 1], [-2, 1], [0, [0, 1], 4, 1, 1, 0], [1, [2], 4, 1, 2, 0], [3, [3], 4, 1, 2, 0]]
    graph = AssembleNetGraph.from_official(structure)
    nodes = list(graph.nodes)
    import dataclasses
    nodes[4] = dataclasses.replace(nodes[4], attention_sources=(1, 2))
    graph = graph.replace_nodes(nodes)
    assert graph.attention_sources(4) == [1, 2] and graph.attention_sources(3) == [1, 0, 2]
    model = build_assemblenet(graph=graph, num_classes=2, depth=26, stem_filters=4,
                              intermediate_channels=[4, 4, 4, 4], attention_mode="peer")
    assert model.node_peers == [[1, 0], [1, 0, 2], [1, 2]]
    assert model(torch.rand(1, 3, 2, 16, 16)).shape == (1, 2)


def test_attention_changes_the_output_and_self_and_peer_differ():
    torch.manual_seed(0)
    base = build_assemblenet(graph=official_graph("asn50"), num_classes=3, **TINY).eval()
    outputs = {}
    for mode in (None, "self", "peer"):
        torch.manual_seed(0)
        model = build_assemblenet(graph=official_graph("asn50"), num_classes=3, attention_mode=mode, **TINY).eval()
        model.load_state_dict(base.state_dict(), strict=False)
        for module in model.modules():  # gates away from sigmoid(0) = 0.5 everywhere
            if isinstance(module, torch.nn.Linear) and module is not model.head.fc:
                module.weight.data.normal_(std=0.5)
        with torch.no_grad():
            outputs[mode] = model.forward_nodes(torch.rand(1, 3, 4, 32, 32, generator=torch.Generator().manual_seed(2)))
    assert torch.equal(outputs[None][0], outputs["peer"][0])  # stems are untouched
    for mode in ("self", "peer"):
        assert not torch.allclose(outputs[None][6], outputs[mode][6])
    assert not torch.allclose(outputs["self"][6], outputs["peer"][6])


@pytest.mark.filterwarnings("ignore:graph asnp50.*reach no output:UserWarning")  # asnp50's node 9: expected here
@pytest.mark.parametrize("mode", ["self", "peer"])
def test_torchscript_with_attention_and_objects_matches_eager(mode):
    torch.manual_seed(0)
    model = build_assemblenet(graph=official_graph("asnp50"), num_classes=3, attention_mode=mode,
                              num_object_classes=5, **TINY).eval()
    x, objects = torch.rand(1, 3, 4, 32, 32), torch.rand(1, 5, 4, 32, 32)
    scripted = torch.jit.script(model)
    with torch.no_grad():
        torch.testing.assert_close(scripted(x, None, objects), model(x, objects=objects))


def test_the_object_stem_width_never_sets_a_fusion_width():
    # Objects wider than every other input, in single- and multi-input nodes, at every level.
    structure = [[-1, 1], [-3, 1], [0, [0, 1], 2, 1, 1, 0], [0, [1, 0], 2, 2, 1, 0], [1, [1, 2, 3], 2, 1, 2, 0],
                 [2, [1, 4], 2, 1, 2, 0], [3, [1, 5, 2], 2, 1, 2, 0]]
    graph = AssembleNetGraph.from_official(structure)
    model = build_assemblenet(graph=graph, num_classes=2, depth=26, stem_filters=4, num_object_classes=40,
                              intermediate_channels=[4, 4, 4, 4], attention_mode="peer")
    expected = {2: 4, 3: 4, 4: 8, 5: 8, 6: 8}  # the widest non-object input of each node
    for n, node in enumerate(model.nodes):
        assert node.fusion.out_channels == expected[n + 2]
        assert node.fusion.out_channels != 40
    # The object group is always projected by a 1x1 conv to the fusion width.
    assert all(not isinstance(p, torch.nn.Identity)
               for node in model.nodes for w, p in zip(node.fusion.group_widths, node.fusion.projections) if w == 40)
    # Stem width counts the object stem: 128 // 2 stems at width x1.
    assert build_assemblenet(graph=graph, num_classes=2, depth=26).stems[0].conv.out_channels == 64
    assert model(torch.rand(1, 3, 2, 16, 16), objects=torch.rand(1, 40, 2, 16, 16)).shape == (1, 2)


@pytest.mark.filterwarnings("ignore:graph asnp50.*reach no output:UserWarning")  # asnp50's node 9: expected here
def test_bad_object_input_is_a_clear_error():
    model = build_assemblenet(graph=official_graph("asnp50"), num_classes=3, num_object_classes=7, **TINY).eval()
    with pytest.raises(ValueError, match="object stem"):
        model(torch.rand(1, 3, 4, 32, 32))
    with pytest.raises(ValueError, match=r"got shape \[1, 151, 4, 32, 32\] for 7 object classes"):
        model(torch.rand(1, 3, 4, 32, 32), objects=torch.rand(1, 151, 4, 32, 32))
    with pytest.raises(ValueError, match="attention_mode"):
        build_assemblenet(graph=official_graph("asn50"), num_classes=3, attention_mode="cross", **TINY)


@pytest.mark.parametrize("size", [(32, 32), (30, 27)])
def test_label_ids_give_the_same_model_output_as_their_one_hot_maps(size):
    torch.manual_seed(0)
    model = build_assemblenet(graph=official_graph("asnp50"), num_classes=3, attention_mode="peer",
                              num_object_classes=6, **TINY).eval()
    labels = torch.randint(0, 6, (1, 1, 4, *size))
    one_hot = torch.nn.functional.one_hot(labels[:, 0], 6).permute(0, 4, 1, 2, 3).float()
    x = torch.rand(1, 3, 4, *size)
    with torch.no_grad():
        assert torch.equal(model.stems[4](labels), model.stems[4](one_hot))
        torch.testing.assert_close(model(x, objects=labels), model(x, objects=one_hot))
        torch.testing.assert_close(torch.jit.script(model)(x, None, labels), model(x, objects=one_hot))


def test_objects_with_precomputed_flow_match_flow_computed_inside():
    torch.manual_seed(0)
    inside = build_assemblenet(graph=official_graph("asnp50"), num_classes=3, attention_mode="peer",
                               num_object_classes=6, flow_iterations=3, **TINY).eval()
    outside = build_assemblenet(graph=official_graph("asnp50"), num_classes=3, attention_mode="peer",
                                num_object_classes=6, flow_mode="precomputed", **TINY).eval()
    outside.load_state_dict(inside.state_dict(), strict=False)
    x, labels = torch.rand(1, 3, 4, 32, 32), torch.randint(0, 6, (1, 1, 4, 32, 32))
    with torch.no_grad():
        flow = inside.flow_layer(x)
        torch.testing.assert_close(outside(x, flow, labels), inside(x, objects=labels))
