"""GPU tests (``pytest -m cuda``): skipped where there is no CUDA device. ``benchmarks/gpu_check.py`` runs them
on a GPU; ``ASSEMBLENET_TEST_DEVICE=cpu`` runs the same code on the CPU (its smoke run does), where the
comparisons with the CPU's own fp32 error are trivially met but every step still executes."""

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


# A device's fp32 result is judged against a float64 reference, allowing FP32_SLACK times the error that the
# CPU's fp32 makes on the same computation (never less than FP32_FLOOR, a hundred fp32 epsilons): another valid
# fp32 implementation (cuDNN's algorithms, other summation orders) errs by the same order, while a wrong op or
# a reduced-precision path (TF32, bf16: 1e-3 and worse) does not. Comparing fp32 with fp32 at a flat 1e-4 could
# fail spuriously: CPU fp32 alone is 7e-5 off float64 on one fusion's edge_logits gradient.
FP32_SLACK = 10.0
FP32_FLOOR = 100 * torch.finfo(torch.float32).eps


def _fp32_tolerance(cpu_error: float) -> float:
    return FP32_SLACK * max(cpu_error, FP32_FLOOR)


def _forward_backward(model: torch.nn.Module, clip: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    logits = model(clip)
    logits.logsumexp(dim=1).sum().backward()
    return logits, {n: p.grad for n, p in model.named_parameters() if p.grad is not None}


def test_fp32_forward_and_backward_match_a_float64_reference():
    torch.manual_seed(0)
    reference = create_model("assemblenet50_searchable", num_classes=5, **TINY)
    with torch.no_grad():  # the zero-initialised last BN of each block would leave most gradients at zero
        for name, param in reference.named_parameters():
            if name.endswith(".weight") and param.ndim == 1:
                param.uniform_(0.5, 1.5)
    cpu_model = create_model("assemblenet50_searchable", num_classes=5, **TINY)
    cpu_model.load_state_dict(reference.state_dict())
    device_model = create_model("assemblenet50_searchable", num_classes=5, **TINY)
    device_model.load_state_dict(reference.state_dict())
    device_model.to(DEVICE)
    reference.double()
    clip = torch.rand(2, 3, 8, 64, 64, dtype=torch.float64)
    expected, expected_grads = _forward_backward(reference, clip)
    cpu, cpu_grads = _forward_backward(cpu_model, clip.float())
    got, got_grads = _forward_backward(device_model, clip.float().to(DEVICE))
    assert got.device.type == DEVICE.type and got.dtype == torch.float32
    cpu_error = _relative_error(cpu, expected)
    assert _relative_error(got, expected) <= _fp32_tolerance(cpu_error), (_relative_error(got, expected), cpu_error)
    assert got_grads.keys() == cpu_grads.keys() == expected_grads.keys()
    assert sum(bool(g.abs().max() > 0) for g in expected_grads.values()) > 0.9 * len(expected_grads)
    # Each gradient against its own CPU error, at least the median one (a tensor that CPU fp32 happens to get
    # almost exact gives no scale for another summation order).
    cpu_errors = {n: _relative_error(g, expected_grads[n]) for n, g in cpu_grads.items()}
    typical = sorted(cpu_errors.values())[len(cpu_errors) // 2]
    failures = {n: (_relative_error(got_grads[n], g), cpu_errors[n]) for n, g in expected_grads.items()
                if _relative_error(got_grads[n], g) > _fp32_tolerance(max(cpu_errors[n], typical))}
    assert failures == {}


@pytest.mark.parametrize("trainable", [False, True])
def test_the_flow_layer_matches_a_float64_reference(trainable):
    torch.manual_seed(0)
    rgb = torch.rand(2, 3, 6, 48, 64, dtype=torch.float64)
    reference = RepresentationFlow(num_iterations=20, trainable=trainable, implementation="reference").double()
    cpu_layer = RepresentationFlow(num_iterations=20, trainable=trainable)  # the fused CPU kernel
    device_layer = RepresentationFlow(num_iterations=20, trainable=trainable).to(DEVICE)
    expected = reference(rgb)
    cpu = cpu_layer(rgb.float())
    got = device_layer(rgb.float().to(DEVICE))
    assert got.device.type == DEVICE.type
    assert _relative_error(got, expected) <= _fp32_tolerance(_relative_error(cpu, expected))
    if trainable:  # the gradient path (reference ops on a GPU, the fused kernel's backward on the CPU)
        for output in (expected, cpu, got):
            output.square().sum().backward()
        cpu_error = _relative_error(cpu_layer.hyper.grad, reference.hyper.grad)
        assert _relative_error(device_layer.hyper.grad, reference.hyper.grad) <= _fp32_tolerance(cpu_error)


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
