import pytest
import torch
from safetensors.torch import save_file
from torch.utils.flop_counter import FlopCounterMode

from assemblenet.errors import CheckpointError, ConfigError
from assemblenet.graph import official_graph
from assemblenet.models import build_assemblenet, create_model, list_models, model_info


def test_registry_lists_the_presets():
    assert list_models() == ["assemblenet101", "assemblenet101_asn101", "assemblenet50", "assemblenet50_searchable",
                             "assemblenet_plus50", "assemblenet_plus50_rgbflow", "assemblenet_plus_lite"]
    assert list_models("*101*") == ["assemblenet101", "assemblenet101_asn101"]
    with pytest.raises(KeyError, match="unknown model 'assemblenet18'; choices: assemblenet101"):
        create_model("assemblenet18")


@pytest.mark.parametrize("name", ["assemblenet50", "assemblenet101", "assemblenet50_searchable",
                                  "assemblenet101_asn101", "assemblenet_plus50", "assemblenet_plus50_rgbflow",
                                  "assemblenet_plus_lite"])
def test_preset_metadata_matches_the_model(name):
    info = model_info(name)
    with torch.device("meta"):
        model = create_model(name).eval()
        objects = torch.empty(1, 151, 32, 224, 224) if info.object_stem else None
        with FlopCounterMode(display=False) as counter:
            model(torch.empty(1, 3, 32, 224, 224), objects=objects)
    assert model.attention_mode == info.attention and model.has_object_stem == info.object_stem
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == info.params
    assert counter.get_total_flops() / 1e9 == pytest.approx(info.gflops, rel=1e-3)
    assert model.num_classes == info.num_classes == 157
    assert any(isinstance(p, torch.nn.Parameter) and "edge_logits" in n for n, p in model.named_parameters()) \
        == info.learnable_weights


@pytest.mark.parametrize("depth,num_classes,official", [(50, 157, 36_900_957), (50, 101, 36_786_213),
                                                        (50, 600, 37_808_664), (101, 101, 83_159_077)])
def test_trainable_parameters_equal_the_official_keras_counts(depth, num_classes, official):
    with torch.device("meta"):
        model = build_assemblenet(graph=official_graph("asn50"), num_classes=num_classes, depth=depth)
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == official


def test_create_model_loads_safetensors_weights(tmp_path):
    torch.manual_seed(0)
    source = create_model("assemblenet50", num_classes=4, depth=26, width_multiplier=0.125).eval()
    path = tmp_path / "weights.safetensors"
    save_file({k: v.contiguous() for k, v in source.state_dict().items()}, str(path))
    torch.manual_seed(1)
    loaded = create_model("assemblenet50", num_classes=4, depth=26, width_multiplier=0.125,
                          checkpoint_path=path).eval()
    x = torch.rand(1, 3, 4, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), source(x))
    with pytest.raises(CheckpointError, match="does not fit this model: missing"):
        create_model("assemblenet50", num_classes=4, depth=38, width_multiplier=0.125, checkpoint_path=path)
    with pytest.raises(CheckpointError, match="does not fit this model: .* tensors of another shape"):
        create_model("assemblenet50", num_classes=9, depth=26, width_multiplier=0.125, checkpoint_path=path)
    with pytest.raises(CheckpointError, match="checkpoint not found"):
        create_model("assemblenet50", checkpoint_path=tmp_path / "nope.safetensors")
    (tmp_path / "junk.safetensors").write_text("not a tensor file")
    with pytest.raises(CheckpointError, match="junk.safetensors: not a readable safetensors file"):
        create_model("assemblenet50", depth=26, width_multiplier=0.125, checkpoint_path=tmp_path / "junk.safetensors")


def test_plus50_rgbflow_counts_the_tf2_port_plus_the_trainable_peer_softmax():
    """The TF2 Model Garden port (asn50 wiring, peer attention, learnable connections, depth 50, 101 classes) has
    44,443,073 trainable parameters (spec section 5, measured by running it). Two of its bugs take parameters out
    of that count, and the original TF1 semantics (ours) put them back:

    - it makes the peer softmax logits a random constant, so one trainable vector per connection is missing;
    - in a channel group that needs a 1x1 conv, it feeds only the group's first member to the conv, so the
      attention dense layers of the other members are disconnected from its Keras graph and not counted. In asn50
      that is node 9's second 32-channel input (stem 2): a dense layer from the 128-wide peer vector to 32 channels.
    """
    with torch.device("meta"):
        model = create_model("assemblenet_plus50_rgbflow", num_classes=101)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    betas = sum(p.numel() for n, p in model.named_parameters() if n.endswith("peer_logits"))
    dropped_by_port = 0
    for node in model.nodes:
        fusion = node.fusion
        for width, members in zip(fusion.group_widths, fusion.group_members):
            if width != fusion.out_channels:
                for index in members[1:]:
                    dropped_by_port += sum(p.numel() for p in fusion.attentions[index].dense.parameters())
    # Every connection's softmax runs over the node's peers: 8 connections x 4 stems at level 0, 14 x 8 at
    # level 1, 6 x 12 at level 2 and 2 x 14 at level 3.
    assert betas == 8 * 4 + 14 * 8 + 6 * 12 + 2 * 14 == 244
    assert dropped_by_port == 128 * 32 + 32 == 4_128
    assert trainable == 44_443_073 + betas + dropped_by_port == 44_447_445


def test_build_from_graph_chooses_the_lite_builder_for_filter_triples_only():
    from assemblenet.models import AssembleNetLite, build_from_graph

    lite = build_from_graph(official_graph("asnp_lite"), num_classes=3, width_multiplier=0.125)
    plain = build_from_graph(official_graph("asn50"), num_classes=3, width_multiplier=0.125, depth=26)
    assert isinstance(lite, AssembleNetLite)
    assert not isinstance(plain, AssembleNetLite) and plain.depth == 26
    with pytest.raises(ConfigError, match="no depth option"):
        build_from_graph(official_graph("asnp_lite"), num_classes=3, depth=50)


@pytest.mark.parametrize("name", ["assemblenet50", "assemblenet_plus_lite"])
def test_temporal_conv_option_reaches_every_temporal_conv_and_reads_the_same_weights(tmp_path, name):
    # Both builders take temporal_conv; a model trained one way loads into the other (same parameters), and
    # their logits agree to float32 rounding (bit-identity is not promised: the option changes the numbers).
    from assemblenet.models.layers import TemporalConv

    torch.manual_seed(0)
    options = {"num_classes": 4, "width_multiplier": 0.125} | ({"depth": 26} if name == "assemblenet50" else {})
    reference = create_model(name, **options).eval()
    path = tmp_path / "weights.safetensors"
    save_file({k: v.contiguous() for k, v in reference.state_dict().items()}, str(path))
    fast = create_model(name, temporal_conv="conv2d", checkpoint_path=path, **options).eval()
    temporal = [m for m in fast.modules() if isinstance(m, TemporalConv)]
    assert temporal and all(m.implementation == "conv2d" for m in temporal)
    assert all(m.implementation == "conv3d" for m in reference.modules() if isinstance(m, TemporalConv))
    x = torch.rand(2, 3, 8, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(fast(x), reference(x), rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="temporal_conv 'conv1d'"):
        create_model(name, temporal_conv="conv1d", **options)
