import pytest
import torch
from safetensors.torch import save_file
from torch.utils.flop_counter import FlopCounterMode

from assemblenet.errors import CheckpointError
from assemblenet.graph import official_graph
from assemblenet.models import build_assemblenet, create_model, list_models, model_info


def test_registry_lists_the_presets():
    assert list_models() == ["assemblenet101", "assemblenet101_asn101", "assemblenet50", "assemblenet50_searchable"]
    assert list_models("*101*") == ["assemblenet101", "assemblenet101_asn101"]
    with pytest.raises(KeyError, match="unknown model 'assemblenet18'; available: assemblenet101"):
        create_model("assemblenet18")


@pytest.mark.parametrize("name", ["assemblenet50", "assemblenet101", "assemblenet50_searchable",
                                  "assemblenet101_asn101"])
def test_preset_metadata_matches_the_model(name):
    info = model_info(name)
    with torch.device("meta"):
        model = create_model(name).eval()
        with FlopCounterMode(display=False) as counter:
            model(torch.empty(1, 3, 32, 224, 224))
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
