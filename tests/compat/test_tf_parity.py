"""Parity with the official TensorFlow AssembleNet, from the references in tests/fixtures/tf_reference/."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from assemblenet.compat.tf_reference import ReferenceFormatError, build_model
from assemblenet.graph import AssembleNetGraph
from assemblenet.models import build_assemblenet
from assemblenet.models.layers import set_temporal_conv
from tests.compat._parity import relative_error, to_tf_layout

REFERENCES = Path(__file__).resolve().parents[1] / "fixtures" / "tf_reference"
TOLERANCE = 1e-4


# Both ways TemporalConv can compute (models/layers.py) must match TF: "conv2d" is an option that changes the
# last bits, and the same tolerance holds for it.
@pytest.fixture(scope="module", params=[(name, implementation) for name in ("tiny_fixed", "tiny_learnable")
                                        for implementation in ("conv3d", "conv2d")],
                ids=lambda p: "-".join(p))
def reference(request):
    name, implementation = request.param
    model = build_model(REFERENCES / f"{name}.npz", REFERENCES / f"{name}_manifest.json")
    assert set_temporal_conv(model, implementation) > 0
    arrays = np.load(REFERENCES / f"{name}.npz")
    manifest = json.loads((REFERENCES / f"{name}_manifest.json").read_text())
    x = torch.from_numpy(arrays["input"]).permute(0, 4, 1, 2, 3)
    with torch.no_grad():
        nodes = model.forward_nodes(x)
        logits = model(x)
        flow = model.flow_layer(x)
    return dict(model=model, arrays=arrays, manifest=manifest, nodes=nodes, logits=logits, flow=flow)


def test_every_node_output_matches_tf(reference):
    errors = {i: relative_error(to_tf_layout(out), reference["arrays"][f"node_{i:02d}"])
              for i, out in enumerate(reference["nodes"])}
    assert len(errors) == 15
    assert max(errors.values()) <= TOLERANCE, errors


def test_representation_flow_matches_tf(reference):
    assert relative_error(to_tf_layout(reference["flow"]), reference["arrays"]["rep_flow"]) <= TOLERANCE


def test_logits_match_tf(reference):
    assert relative_error(reference["logits"], reference["arrays"]["logits"]) <= TOLERANCE


def test_trainable_parameter_count_matches_keras(reference):
    model = reference["model"]
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == reference["manifest"]["counts"]["trainable"]
    assert not model.training


def test_a_deliberate_mistake_is_caught():
    # Torch-style symmetric pooling in the stems is a classic porting bug; the parity test must see it.
    model = build_model(REFERENCES / "tiny_fixed.npz", REFERENCES / "tiny_fixed_manifest.json")
    arrays = np.load(REFERENCES / "tiny_fixed.npz")
    x = torch.from_numpy(arrays["input"]).permute(0, 4, 1, 2, 3)
    stem = model.stems[0]
    stem.pool.forward = lambda t: torch.nn.functional.max_pool3d(t, (1, 3, 3), (1, 2, 2), padding=(0, 1, 1))
    with torch.no_grad():
        assert relative_error(to_tf_layout(model.forward_nodes(x)[0]), arrays["node_00"]) > TOLERANCE


# --------------------------------------------------------------------------- any graph of the schema
def export_reference(model, graph, config, directory: Path, name: str) -> tuple[Path, Path]:
    """Write ``model`` the way the TF exporter does: TF-layout variables plus a role manifest."""
    arrays, variables = {}, []
    num_stems = len(graph.stem_indices)

    def add(role, field, value, trainable=True):
        key = f"v{len(arrays)}/{field}:0"
        arrays[key] = value
        variables.append({"name": key, "shape": list(value.shape), "trainable": trainable, "role": role})

    def conv(role, weight):
        w = weight.detach().numpy()
        w = w[:, :, 0] if w.shape[2] == 1 and w.ndim == 5 else w[..., 0] if w.ndim == 5 else w
        add(role, "kernel", np.transpose(w, (2, 3, 1, 0)))

    def bn(role, module):
        for field, attr in [("gamma", "weight"), ("beta", "bias"), ("moving_mean", "running_mean"),
                            ("moving_variance", "running_var")]:
            add(role, field, getattr(module, attr).detach().numpy(), field in ("gamma", "beta"))

    for i, stem in enumerate(model.stems):
        conv(f"node{i}.stem.conv7x7_s2", stem.conv.weight)
        bn(f"node{i}.stem.bn1", stem.bn1)
        if hasattr(stem, "temporal"):
            conv(f"node{i}.stem.temporal_conv_k5", stem.temporal.weight)
            bn(f"node{i}.stem.bn2", stem.bn2)
    for n, node in enumerate(model.nodes):
        i = n + num_stems
        fusion = node.fusion
        if fusion.num_inputs > 1:
            add(f"node{i}.fusion.agg_weights", "agg_weights", fusion.edge_logits.detach().numpy())
        for width, projection in zip(fusion.group_widths, fusion.projections):
            if not isinstance(projection, torch.nn.Identity):
                conv(f"node{i}.fusion.conv1x1_from_{width}ch", projection.weight)
        for s, block in enumerate(node.blocks):
            if block.projection is not None:
                conv(f"node{i}.block{s}.proj_conv", block.projection[0].weight)
                bn(f"node{i}.block{s}.proj_bn", block.projection[1])
            for layer in "abc":
                conv(f"node{i}.block{s}.{layer}_conv", getattr(block, f"conv_{layer}").weight)
                bn(f"node{i}.block{s}.{layer}_bn", getattr(block, f"bn_{layer}"))
    add("head.dense", "kernel", model.head.fc.weight.detach().numpy().T)
    add("head.dense", "bias", model.head.fc.bias.detach().numpy())
    npz, manifest = directory / f"{name}.npz", directory / f"{name}_manifest.json"
    np.savez(npz, **arrays)
    manifest.write_text(json.dumps({"config": config, "variables": variables}))
    return npz, manifest


def test_loader_builds_any_graph_and_configuration_of_the_schema(tmp_path):
    # A different wiring than the shipped references: two outputs, mixed widths, a flow stem at dilation 2,
    # depth 38, max_pool_predictions, and fixed weights on some nodes only.
    structure = [[-1, 2], [-2, 2], [0, [0, 1], 8, 2, 1, 0], [0, [0], 4, 1, 1, 0], [1, [1, 2, 3], 16, 4, 2, 0],
                 [2, [2, 4], 16, 1, 2, 0], [3, [4, 5], 8, 2, 2, 0], [3, [3, 5], 8, 1, 2, 0]]
    weights = [[], [], [[0.3, 0.9]], [], [], [[0.6, 0.2]], [[0.7, 0.4]], [[0.5, 0.55]]]
    graph = AssembleNetGraph.from_official(structure, weights)
    torch.manual_seed(3)
    source = build_assemblenet(graph=graph, num_classes=7, depth=38, stem_filters=8,
                               intermediate_channels=[16, 16, 32, 32], max_pool_predictions=True,
                               flow_normalization="batch", learnable_weights=True).eval()
    for module in source.modules():  # non-trivial BN statistics
        if isinstance(module, torch.nn.BatchNorm3d):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 1.5)
            module.weight.data.uniform_(0.5, 1.5)
    config = {"model_structure": structure, "model_edge_weights": [], "depth": 38, "num_blocks": [2, 4, 4, 2],
              "num_classes": 7, "num_frames": 4, "stem_filters": 8, "intermediate_channel_size": [16, 16, 32, 32],
              "max_pool_predictions": True, "bn_epsilon": 1e-5, "bn_momentum": 0.99}
    npz, manifest = export_reference(source, graph, config, tmp_path, "custom")
    loaded = build_model(npz, manifest)
    x = torch.rand(2, 3, 4, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), source(x), rtol=1e-5, atol=1e-6)
    assert loaded.head.max_pool_predictions and loaded.num_blocks == (2, 4, 4, 2)


def test_loader_rejects_unknown_roles_and_missing_variables(tmp_path):
    manifest = json.loads((REFERENCES / "tiny_fixed_manifest.json").read_text())
    manifest["variables"][0]["role"] = "node0.stem.conv9x9"
    (tmp_path / "m.json").write_text(json.dumps(manifest))
    with pytest.raises(ReferenceFormatError, match="unknown stem role 'node0.stem.conv9x9'"):
        build_model(REFERENCES / "tiny_fixed.npz", tmp_path / "m.json")
    manifest = json.loads((REFERENCES / "tiny_fixed_manifest.json").read_text())
    manifest["variables"] = [v for v in manifest["variables"] if v["role"] != "head.dense"]
    (tmp_path / "m.json").write_text(json.dumps(manifest))
    with pytest.raises(ReferenceFormatError,
                       match=r"does not provide 2 tensors, e.g. \['head.fc.bias', 'head.fc.weight'\]"):
        build_model(REFERENCES / "tiny_fixed.npz", tmp_path / "m.json")
