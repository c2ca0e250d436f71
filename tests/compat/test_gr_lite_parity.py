"""Parity with the authors' original TF1 AssembleNet++lite (``assemblenet_plus_lite.py``, peer attention), from
the reference in tests/fixtures/gr_assemblenet_plus/ (see its PROVENANCE.md)."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from assemblenet.compat.tf_reference import build_model
from assemblenet.models.lite import AssembleNetLite, SameSpatialConv
from tests.compat._parity import relative_error

REFERENCES = Path(__file__).resolve().parents[1] / "fixtures" / "gr_assemblenet_plus"
NPZ, MANIFEST = REFERENCES / "gr_lite.npz", REFERENCES / "gr_lite_manifest.json"
TOLERANCE = 1e-4
FUSED_NODE = 10  # the reference stores this node's fused input as fusion_10


def to_tf_layout(x: torch.Tensor) -> torch.Tensor:
    """[B, C, T, H, W] -> [B, T, H, W, C], the lite reference's 5-D layout."""
    return x.permute(0, 2, 3, 4, 1)


def run(model, video):
    fused = {}
    fusion = model.nodes[FUSED_NODE - 2].fusion  # two stems come before the block nodes
    hooks = [fusion.register_forward_hook(lambda m, i, out: fused.setdefault("fusion", out)),
             model.flow_layer.register_forward_hook(lambda m, i, out: fused.setdefault("flow", out))]
    with torch.no_grad():
        nodes = model.forward_nodes(video)
        logits = model.head([nodes[i] for i in model.output_nodes])
    for hook in hooks:
        hook.remove()
    return nodes, logits, fused


@pytest.fixture(scope="module")
def reference():
    model = build_model(NPZ, MANIFEST)
    arrays = dict(np.load(NPZ))
    video = torch.from_numpy(arrays["input"]).permute(0, 4, 1, 2, 3)
    nodes, logits, fused = run(model, video)
    return dict(model=model, arrays=arrays, video=video, nodes=nodes, logits=logits, fused=fused,
                manifest=json.loads(MANIFEST.read_text()))


def test_the_reference_is_a_lite_model_with_peer_attention(reference):
    model = reference["model"]
    assert isinstance(model, AssembleNetLite) and model.attention_mode == "peer"
    assert model.num_blocks == (2, 2, 2, 1) and model.stems[0].conv.out_channels == 24
    assert model.flow_layer.num_iterations == 20
    # The original fusion-width rule at 64x64: 32 channels up to level 2, 4 at level 3.
    assert [node.fusion.out_channels for node in model.nodes] == [32] * 8 + [4]


def test_every_node_output_matches_tf(reference):
    errors = {i: relative_error(to_tf_layout(out), reference["arrays"][f"node_{i:02d}"])
              for i, out in enumerate(reference["nodes"])}
    assert len(errors) == 11
    assert max(errors.values()) <= TOLERANCE, errors


def test_fusion_with_peer_attention_matches_tf(reference):
    fused = to_tf_layout(reference["fused"]["fusion"])
    assert relative_error(fused, reference["arrays"][f"fusion_{FUSED_NODE}"]) <= TOLERANCE


def test_logits_and_representation_flow_match_tf(reference):
    assert relative_error(reference["logits"], reference["arrays"]["logits"]) <= TOLERANCE
    flow = reference["fused"]["flow"]  # [B, 2, T, H, W]; the reference stores [B*T, H, W, 2]
    b, c, t, h, w = flow.shape
    assert relative_error(to_tf_layout(flow).reshape(b * t, h, w, c), reference["arrays"]["rep_flow"]) <= TOLERANCE


def test_trainable_parameter_count_matches_tf(reference):
    model = reference["model"]
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == reference["manifest"]["counts"]["trainable"]


def test_torch_style_padding_in_the_strided_convs_is_caught(reference):
    # Symmetric padding in the [1, 3, 3] stride-2 convs (the 4-D model's fixed_padding) instead of TF 'SAME'
    # shifts every strided feature map by a pixel; the parity test must see it.
    model = reference["model"]
    patched = [m for m in model.modules() if isinstance(m, SameSpatialConv) and m.stride[0] > 1]
    assert len(patched) == 2 + 9  # the two stems and the first block of every node

    def symmetric(module, x):
        b, c, t, h, w = x.shape
        y = F.conv2d(x.transpose(1, 2).reshape(b * t, c, h, w), module.weight, None, module.stride, 1)
        return y.view(b, t, y.shape[1], y.shape[2], y.shape[3]).transpose(1, 2)

    try:
        for module in patched:
            module.forward = (lambda m: lambda x: symmetric(m, x))(module)
        nodes, logits, _ = run(model, reference["video"])
    finally:
        for module in patched:
            del module.forward
    assert relative_error(to_tf_layout(nodes[0]), reference["arrays"]["node_00"]) > TOLERANCE
    assert relative_error(logits, reference["arrays"]["logits"]) > TOLERANCE
