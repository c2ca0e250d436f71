"""GPU tests (``pytest -m cuda``): skipped where there is no CUDA device. ``benchmarks/gpu_check.py`` runs them
on a GPU; ``ASSEMBLENET_TEST_DEVICE=cpu`` runs the same code on the CPU (its smoke run does), where the
comparisons with the CPU are trivially met but every step still executes."""

from __future__ import annotations

import os

import pytest
import torch

from assemblenet.data.memory import InMemoryClips
from assemblenet.engine import checkpoint as ckpt
from assemblenet.engine.config import load_config
from assemblenet.engine.trainer import Trainer
from assemblenet.models import RepresentationFlow, create_model

DEVICE = torch.device(os.environ.get("ASSEMBLENET_TEST_DEVICE", "cuda"))
pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(DEVICE.type == "cuda" and not torch.cuda.is_available(),
                       reason="no CUDA device (ASSEMBLENET_TEST_DEVICE=cpu runs these on the CPU)"),
]
TINY = dict(depth=26, width_multiplier=0.125, flow_iterations=4)


@pytest.fixture(autouse=True)
def _no_tf32():
    matmul, cudnn = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = matmul, cudnn


def _relative_error(got: torch.Tensor, expected: torch.Tensor) -> float:
    got, expected = got.detach().double().cpu(), expected.detach().double().cpu()
    return float((got - expected).abs().max() / expected.abs().max().clamp_min(1e-12))


def test_fp32_forward_and_backward_match_the_cpu():
    torch.manual_seed(0)
    cpu_model = create_model("assemblenet50_searchable", num_classes=5, **TINY)
    device_model = create_model("assemblenet50_searchable", num_classes=5, **TINY)
    device_model.load_state_dict(cpu_model.state_dict())
    device_model.to(DEVICE)
    clip = torch.rand(2, 3, 8, 64, 64)
    results = {}
    for name, model, x in (("cpu", cpu_model, clip), ("device", device_model, clip.to(DEVICE))):
        logits = model(x)
        logits.logsumexp(dim=1).sum().backward()
        results[name] = (logits, {n: p.grad for n, p in model.named_parameters() if p.grad is not None})
    assert _relative_error(results["device"][0], results["cpu"][0]) < 1e-4
    assert results["device"][1].keys() == results["cpu"][1].keys()
    worst = max((_relative_error(results["device"][1][n], g), n) for n, g in results["cpu"][1].items())
    assert worst[0] < 1e-4, worst


@pytest.mark.parametrize("trainable", [False, True])
def test_the_flow_layer_matches_the_cpu_kernel(trainable):
    torch.manual_seed(0)
    rgb = torch.rand(2, 3, 6, 48, 64)
    cpu_layer = RepresentationFlow(num_iterations=20, trainable=trainable)
    device_layer = RepresentationFlow(num_iterations=20, trainable=trainable).to(DEVICE)
    expected = cpu_layer(rgb)
    got = device_layer(rgb.to(DEVICE))
    assert got.device.type == DEVICE.type
    assert _relative_error(got, expected) < 1e-4
    if trainable:  # the gradient path (reference ops on a GPU, the fused kernel's backward on the CPU)
        expected.square().sum().backward()
        got.square().sum().backward()
        assert _relative_error(device_layer.hyper.grad, cpu_layer.hyper.grad) < 1e-3


def _trainer(output_dir, *, device: torch.device, steps: int, amp: str = "none", log_every: int = 10) -> Trainer:
    cfg = load_config({
        "seed": 0,
        "model": {"name": "assemblenet50_searchable", **TINY},
        "data": {"num_frames": 8, "crop_size": 32, "batch_size": 4, "num_workers": 0},
        "optim": {"lr": 0.05, "reference_batch_size": 4, "max_steps": steps, "warmup_steps": 2},
        "train": {"device": str(device), "amp": amp, "log_every_steps": log_every, "eval_every_epochs": 0,
                  "progress": False, "checkpoint_every_steps": 2},
        "eval": {"num_clips": 1, "num_crops": 1, "batch_size": 8},
        "output": {"dir": None if output_dir is None else str(output_dir), "tensorboard": False},
    })
    train = InMemoryClips(num_clips=16, num_classes=2, frames=8, size=32, seed=1)
    val = InMemoryClips(num_clips=4, num_classes=2, frames=8, size=32, seed=2)
    return Trainer(cfg, train_dataset=train, val_dataset=val)


def test_thirty_bf16_autocast_steps_lower_the_loss():
    trainer = _trainer(None, device=DEVICE, steps=30, amp="bf16", log_every=5)
    losses = []
    read = trainer._read_loss_window
    trainer._read_loss_window = lambda steps: losses.append(read(steps)) or losses[-1]
    result = trainer.fit()
    assert result.steps == 30 and len(losses) == 6
    assert next(trainer.model.parameters()).device.type == DEVICE.type
    assert losses[-1] < 0.7 * losses[0], losses


@pytest.mark.parametrize("first, second", [("device", "cpu"), ("cpu", "device")])
def test_a_checkpoint_resumes_on_the_other_device(tmp_path, first, second):
    devices = {"device": DEVICE, "cpu": torch.device("cpu")}
    out = tmp_path / "run"
    _trainer(out, device=devices[first], steps=2).fit()
    saved = ckpt.load_checkpoint(ckpt.latest_checkpoint(out), map_location="cpu")
    assert saved["step"] == 2
    resumed = _trainer(out, device=devices[second], steps=4)
    resumed.maybe_resume()
    assert resumed.step == 2
    for name, value in resumed.model.state_dict().items():
        assert value.device.type == devices[second].type
        assert torch.equal(value.cpu(), saved["model"][name]), name
    result = resumed.fit()
    assert result.steps == 4
    assert all(torch.isfinite(p).all() for p in result.model.parameters())
