"""Inference preparation: BatchNorm folding, bf16 conversion and autocast, and fp32/bf16 agreement."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from assemblenet.engine.config import load_config
from assemblenet.engine.datasets import build_split
from assemblenet.engine.evaluator import evaluate
from assemblenet.engine.modeling import model_dtype, prepare_for_inference
from assemblenet.engine.weights import load_trained_model
from assemblenet.errors import ConfigError
from tests.engine._helpers import save_tiny_weights, tiny_config


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory):
    return save_tiny_weights(tmp_path_factory.mktemp("weights") / "model.safetensors", class_names=list("abcdef"))


def _sharpened(path):
    # An untrained head gives near-uniform scores whose top-1 is decided by 1e-5; scale it so that top-1
    # agreement tests the precision of the network rather than ties.
    model, _ = load_trained_model(path)
    with torch.no_grad():
        model.head.fc.weight.mul_(300)
    return model


def test_prepare_for_inference_folds_batch_norm_without_changing_outputs(tiny_weights):
    model, _ = load_trained_model(tiny_weights)
    clip = torch.rand(2, 3, 4, 32, 32)
    with torch.no_grad():
        before = model(clip)
    batch_norms = sum(isinstance(m, nn.BatchNorm3d) for m in model.modules())
    prepare_for_inference(model)
    assert batch_norms > 0 and not any(isinstance(m, nn.BatchNorm3d) for m in model.modules())
    assert not model.training and model_dtype(model) == torch.float32
    with torch.no_grad():
        after = model(clip)
    torch.testing.assert_close(after, before, rtol=1e-4, atol=1e-5)


def test_bf16_model_and_bf16_autocast_give_float32_logits_close_to_fp32(tiny_weights):
    reference = _sharpened(tiny_weights)
    converted = prepare_for_inference(_sharpened(tiny_weights), precision="bf16")
    assert model_dtype(converted) == torch.bfloat16
    clip = torch.rand(2, 3, 4, 32, 32)
    with torch.no_grad():
        expected = reference(clip)
        from_converted = converted(clip.bfloat16())
        with torch.autocast("cpu", dtype=torch.bfloat16):
            from_autocast = reference(clip)
    for logits in (from_converted, from_autocast):
        assert logits.dtype == torch.float32  # the head computes in fp32 under both
        difference = (logits - expected).abs().max().item()
        assert 0 < difference < 0.05 * expected.abs().max().item()  # bf16 really ran, and stayed close


def test_bf16_evaluation_agrees_with_fp32_on_the_synthetic_val_set(tiny_weights, synthetic_root):
    cfg = load_config(tiny_config(synthetic_root, None, eval={"num_clips": 2, "num_crops": 1, "batch_size": 8}))
    dataset = build_split(cfg, "val")
    fp32 = evaluate(prepare_for_inference(_sharpened(tiny_weights)), dataset)
    bf16 = evaluate(prepare_for_inference(_sharpened(tiny_weights), precision="bf16"), dataset)
    assert len(fp32.video_ids) == 11
    assert np.abs(fp32.scores - bf16.scores).max() > 0
    np.testing.assert_array_equal(fp32.scores.argmax(axis=1), bf16.scores.argmax(axis=1))
    assert abs(fp32.metrics["map"] - bf16.metrics["map"]) <= 0.005


def test_unknown_precision_is_a_config_error(tiny_weights):
    model, _ = load_trained_model(tiny_weights)
    with pytest.raises(ConfigError, match="precision must be one of"):
        prepare_for_inference(model, precision="fp16")


def test_eval_amp_follows_training_and_never_autocasts_a_bf16_model():
    from assemblenet.engine.modeling import eval_amp

    assert eval_amp("none", "cpu") == eval_amp("none", "cuda") == "none"
    assert eval_amp("bf16", "cpu") == eval_amp("fp16", "cpu") == "bf16"  # a CPU has no fp16 autocast
    assert eval_amp("fp16", "cuda") == "fp16" and eval_amp("bf16", "cuda") == "bf16"
    assert eval_amp("bf16", "cpu", "bf16") == eval_amp("fp16", "cuda", "bf16") == "none"  # weights already bf16
