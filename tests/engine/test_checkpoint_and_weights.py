"""Checkpoints (atomic, weights_only, RNG states) and safetensors weights with their JSON sidecar."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch

from assemblenet.engine import checkpoint as ckpt
from assemblenet.engine.config import load_config
from assemblenet.engine.modeling import build_model
from assemblenet.engine.weights import (
    WEIGHTS_FORMAT,
    load_model,
    load_trained_model,
    read_sidecar,
    save_weights,
    sidecar_path,
)
from assemblenet.errors import CheckpointError
from assemblenet.input_spec import InputSpec
from assemblenet.models import create_model

TINY = {"name": "assemblenet50_searchable", "depth": 26, "width_multiplier": 0.125, "flow_iterations": 2}


def test_checkpoints_are_discovered_pruned_and_load_with_weights_only(tmp_path):
    for step in (3, 10, 7):
        ckpt.save_checkpoint({"model": {"w": torch.full((2,), float(step))}, "step": step}, tmp_path, step, keep=2)
    (tmp_path / "checkpoints" / ".step_00000099.pt.123.tmp").write_bytes(b"partial")  # a torn write
    assert [s for s, _ in ckpt.list_checkpoints(tmp_path)] == [7, 10]
    latest = ckpt.latest_checkpoint(tmp_path)
    state = ckpt.load_checkpoint(latest)
    assert state["step"] == 10 and torch.equal(state["model"]["w"], torch.full((2,), 10.0))
    assert state["format"] == ckpt.CHECKPOINT_FORMAT


def test_loading_a_missing_or_foreign_checkpoint_is_one_clear_error(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        ckpt.load_checkpoint(tmp_path / "nope.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="junk.pt"):
        ckpt.load_checkpoint(tmp_path / "junk.pt")


def test_rng_states_round_trip_through_a_weights_only_checkpoint(tmp_path):
    torch.manual_seed(1)
    np.random.seed(2)
    random.seed(3)
    ckpt.save_checkpoint({"model": {}, "rng": ckpt.capture_rng_state()}, tmp_path, 1)
    expected = (torch.rand(3), np.random.rand(3), random.random())
    torch.manual_seed(99)
    np.random.seed(99)
    random.seed(99)
    ckpt.restore_rng_state(ckpt.load_checkpoint(ckpt.latest_checkpoint(tmp_path))["rng"])
    again = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(expected[0], again[0]) and np.array_equal(expected[1], again[1]) and expected[2] == again[2]


def _trained_like_model():
    cfg = load_config({"model": TINY})
    model, spec = build_model(cfg.model, num_classes=5)
    with torch.no_grad():  # make BN statistics and connection logits non-default
        for name, buffer in model.named_buffers():
            if buffer.dtype.is_floating_point:
                buffer.uniform_(0.5, 1.5)
        for param in model.parameters():
            param.add_(0.01 * torch.randn_like(param))
    return model.eval(), spec


def test_weights_round_trip_through_sidecar_and_create_model(tmp_path):
    model, spec = _trained_like_model()
    path = save_weights(model, tmp_path / "model.safetensors", model_spec=spec, class_names=list("abcde"),
                        multi_label=False, input_spec=InputSpec(num_frames=4, crop_size=32), config={"seed": 0},
                        metrics={"top1": 0.5, "nan_metric": float("nan")})
    sidecar = json.loads(sidecar_path(path).read_text())
    assert sidecar["format"] == WEIGHTS_FORMAT and sidecar["model"]["name"] == "assemblenet50_searchable"
    assert sidecar["metrics"] == {"top1": 0.5, "nan_metric": None}
    assert sidecar["input"] == {"num_frames": 4, "crop_size": 32, "modalities": ["rgb"]}
    x = torch.rand(2, 3, 4, 32, 32)
    with torch.no_grad():
        expected = model(x)
        rebuilt, info = load_model(path)
        assert torch.equal(rebuilt(x), expected)
        via_registry = create_model(spec["name"], num_classes=5, checkpoint_path=path, **spec["overrides"]).eval()
        assert torch.equal(via_registry(x), expected)
    assert info["class_names"] == list("abcde")
    _, inference_info = load_trained_model(path)
    assert (inference_info.input.num_frames, inference_info.input.crop_size) == (4, 32)


def test_graph_models_keep_their_graph_in_the_sidecar(tmp_path):
    from assemblenet.graph import official_graph

    graph = official_graph("asn101", with_weights=False)
    cfg = load_config({"model": {**TINY, "graph": None}})
    model, spec = build_model(cfg.model, num_classes=3, graph=graph)
    assert spec["name"] is None and spec["graph"]["nodes"][14]["filters"] == 256
    path = save_weights(model, tmp_path / "g.safetensors", model_spec=spec)
    rebuilt, _ = load_model(path)
    x = torch.rand(1, 3, 4, 32, 32)
    with torch.no_grad():
        assert torch.equal(rebuilt(x), model.eval()(x))


def test_the_temporal_conv_option_is_kept_in_the_sidecar_only_when_it_is_not_the_default(tmp_path):
    # model.temporal_conv changes the numbers, so a model trained with "conv2d" is rebuilt with it; at the
    # default the spec leaves the key out, so specs and sidecars written before the option existed read the same.
    from assemblenet.models.layers import TemporalConv

    default_model, default_spec = build_model(load_config({"model": TINY}).model, num_classes=3)
    assert "temporal_conv" not in default_spec["overrides"]
    model, spec = build_model(load_config({"model": {**TINY, "temporal_conv": "conv2d"}}).model, num_classes=3)
    assert spec["overrides"]["temporal_conv"] == "conv2d"
    rebuilt, _ = load_model(save_weights(model.eval(), tmp_path / "fast.safetensors", model_spec=spec))
    implementations = {m.implementation for m in rebuilt.modules() if isinstance(m, TemporalConv)}
    assert implementations == {"conv2d"}
    assert {m.implementation for m in default_model.modules() if isinstance(m, TemporalConv)} == {"conv3d"}
    x = torch.rand(1, 3, 4, 32, 32)
    with torch.no_grad():
        assert torch.equal(rebuilt(x), model(x))


def test_weights_errors_name_the_file(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        read_sidecar(tmp_path / "missing.safetensors")
    model, spec = _trained_like_model()
    path = save_weights(model, tmp_path / "m.safetensors", model_spec=spec)
    sidecar_path(path).unlink()
    with pytest.raises(CheckpointError, match="sidecar"):
        load_model(path)
    other = create_model("assemblenet50_searchable", num_classes=7, depth=26, width_multiplier=0.125)
    from assemblenet.engine.weights import load_weights_into

    with pytest.raises(CheckpointError, match="does not fit"):
        load_weights_into(other, path)
    (tmp_path / "empty_run").mkdir()
    with pytest.raises(CheckpointError, match="no model.safetensors"):
        load_trained_model(tmp_path / "empty_run")
    with pytest.raises(CheckpointError, match="not found"):
        load_trained_model(tmp_path / "missing.pt")
