"""Parity with the authors' original TF1 AssembleNet++ (peer attention and object input), from the reference in
tests/fixtures/gr_assemblenet_plus/ (see its PROVENANCE.md)."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from assemblenet.compat.tf_reference import ReferenceFormatError, build_model
from tests.compat._parity import relative_error, to_tf_layout

REFERENCES = Path(__file__).resolve().parents[1] / "fixtures" / "gr_assemblenet_plus"
NPZ, MANIFEST = REFERENCES / "gr_peer_object.npz", REFERENCES / "gr_peer_object_manifest.json"
TOLERANCE = 1e-4


def inputs(arrays):
    video = torch.from_numpy(arrays["input"]).permute(0, 4, 1, 2, 3)
    objects = torch.from_numpy(arrays["object_input"]).permute(0, 4, 1, 2, 3)
    return video, objects


@pytest.fixture(scope="module")
def reference():
    model = build_model(NPZ, MANIFEST)
    arrays = dict(np.load(NPZ))
    video, objects = inputs(arrays)
    fused = {}
    hooks = [model.nodes[13 - 5].fusion.register_forward_hook(lambda m, i, out: fused.setdefault("fusion_13", out)),
             model.flow_layer.register_forward_hook(lambda m, i, out: fused.setdefault("flow", out))]
    with torch.no_grad():
        nodes = model.forward_nodes(video, objects=objects)
        logits = model.head([nodes[i] for i in model.output_nodes])
    for hook in hooks:
        hook.remove()
    return dict(model=model, arrays=arrays, nodes=nodes, logits=logits, flow=fused["flow"], fused=fused,
                manifest=json.loads(MANIFEST.read_text()))


def test_the_reference_is_asnp50_wiring_with_peer_attention_and_objects(reference):
    model = reference["model"]
    assert model.attention_mode == "peer" and model.num_object_classes == 12 and model.has_object_stem
    assert model.stems[0].conv.out_channels == 25  # 128 // 5 stems, the object stem included


def test_every_node_output_matches_tf(reference):
    errors = {i: relative_error(to_tf_layout(out), reference["arrays"][f"node_{i:02d}"])
              for i, out in enumerate(reference["nodes"])}
    assert len(errors) == 15
    assert max(errors.values()) <= TOLERANCE, errors


def test_fusion_with_peer_attention_matches_tf(reference):
    assert relative_error(to_tf_layout(reference["fused"]["fusion_13"]), reference["arrays"]["fusion_13"]) <= TOLERANCE


def test_logits_and_representation_flow_match_tf(reference):
    assert relative_error(reference["logits"], reference["arrays"]["logits"]) <= TOLERANCE
    assert relative_error(to_tf_layout(reference["flow"]), reference["arrays"]["rep_flow"]) <= TOLERANCE


def test_trainable_parameter_count_matches_tf(reference):
    model = reference["model"]
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == reference["manifest"]["counts"]["trainable"]


def test_a_uniform_peer_softmax_is_caught(reference):
    # The TF2 port's bug (beta a random constant, so the peer mix is about uniform) must fail the comparison.
    model = reference["model"]
    saved = {n: p.detach().clone() for n, p in model.named_parameters() if n.endswith("peer_logits")}
    video, objects = inputs(reference["arrays"])
    try:
        with torch.no_grad():
            for name, parameter in model.named_parameters():
                if name.endswith("peer_logits"):
                    parameter.zero_()
            nodes = model.forward_nodes(video, objects=objects)
    finally:
        with torch.no_grad():
            for name, parameter in model.named_parameters():
                if name in saved:
                    parameter.copy_(saved[name])
    assert relative_error(to_tf_layout(nodes[13]), reference["arrays"]["node_13"]) > TOLERANCE


def test_an_attention_role_on_a_missing_connection_is_rejected(tmp_path):
    manifest = json.loads(MANIFEST.read_text())
    for variable in manifest["variables"]:
        if variable["role"] == "node5.attention.connection12_0.dense":
            variable["role"] = "node5.attention.connection12_3.dense"
    (tmp_path / "m.json").write_text(json.dumps(manifest))
    with pytest.raises(ReferenceFormatError, match="has no input 3 of 12 channels"):
        build_model(NPZ, tmp_path / "m.json")
