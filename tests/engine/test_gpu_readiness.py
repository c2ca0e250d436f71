"""What a GPU run needs from the training loop, tested on the CPU: device placement, a step that never reads a
value back to the host, channels-last weights, the compiled step, the foreach EMA and determinism settings."""

from __future__ import annotations

import copy
import logging
import os

import pytest
import torch

from assemblenet.engine import placement
from assemblenet.engine.config import load_config
from assemblenet.engine.modeling import to_channels_last
from assemblenet.engine.optim import ModelEMA
from assemblenet.engine.trainer import Trainer, run_training
from assemblenet.errors import ConfigError
from assemblenet.models import RepresentationFlow
from assemblenet.models.rep_flow import tvl1_flow_inplace
from tests.engine._helpers import tiny_config
from tests.host_reads import count_host_reads

# Reads that are not a device sync: the CPU-only fused flow kernel passes its constants to C as doubles, and the
# data pipeline runs on the host before anything reaches the device.
_HOST_SIDE = ("rep_flow_kernel.py", "/assemblenet/data/", "/torch/utils/data/")
# Where the loop may read: at log points, before checkpoints, at evaluation and at the end.
_READ_POINTS = ("_read_loss_window", "_raise_if_diverged", "save_checkpoint", "run_eval", "_finish", "maybe_resume")


def test_the_training_step_reads_nothing_back_between_log_points(synthetic_root):
    cfg = load_config(tiny_config(synthetic_root, None, optim={"max_steps": 8, "grad_clip_norm": 1.0},
                                  train={"log_every_steps": 4, "ema_decay": 0.9, "amp": "bf16",
                                         "eval_every_epochs": 0}))
    trainer = Trainer(cfg)
    logged = []
    original = trainer._read_loss_window
    trainer._read_loss_window = lambda steps: logged.append(steps) or original(steps)
    with count_host_reads() as log:
        result = trainer.fit()
    assert result.steps == 8 and logged == [4, 4]
    in_loop = [r for r in log.reads if not r.in_file(*_HOST_SIDE) and not r.in_function(*_READ_POINTS)]
    assert [r.where() for r in in_loop] == []
    # The counter sees reads at all: the log points read the loss window.
    assert any(r.in_function("_read_loss_window") for r in log.reads)


def test_the_flow_layer_reads_no_tensor_values_off_the_fused_cpu_kernel():
    torch.manual_seed(0)
    rgb = torch.rand(2, 3, 4, 24, 24)
    layer = RepresentationFlow(num_iterations=3, implementation="reference")
    with count_host_reads() as log:
        layer(rgb)
    assert [r.where() for r in log.reads] == []
    # The in-place path a GPU takes keeps its constants as device tensors, and computes what floats give.
    first, second = torch.rand(3, 16, 16) * 255, torch.rand(3, 16, 16) * 255
    constants = dict(theta=0.3, lambda_=0.15, tau=0.25)
    expected = tvl1_flow_inplace(first, second, num_iterations=5, **constants)
    with count_host_reads() as log:
        got = tvl1_flow_inplace(first, second, num_iterations=5,
                                **{k: torch.tensor(v) for k, v in constants.items()})
    assert [r.where() for r in log.reads] == []
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-4)


def test_a_nan_between_log_points_is_reported_at_its_own_step(synthetic_root, tmp_path):
    # The loss is only read at log points; the step where it first went non-finite is kept on the device.
    from assemblenet.engine.loss import TrainingDivergedError

    cfg = load_config(tiny_config(synthetic_root, tmp_path / "run", optim={"max_steps": 4},
                                  train={"log_every_steps": 4}))
    trainer = Trainer(cfg)
    calls = {"n": 0}
    original_loss = trainer._loss

    def poisoned(logits, target):
        calls["n"] += 1
        loss = original_loss(logits, target)
        return loss * float("nan") if calls["n"] == 2 else loss

    trainer._loss = poisoned
    with pytest.raises(TrainingDivergedError, match=r"the loss is nan at step 2 \(epoch 0\); no checkpoint"):
        trainer.fit()


def test_placement_uses_the_local_rank_and_refuses_a_pinned_gpu_for_several_processes(monkeypatch, caplog):
    assert placement.resolve_device("cpu", 1, 2) == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    assert placement.resolve_device("cuda", 3, 4) == torch.device("cuda:3")
    assert placement.resolve_device("auto", 2, 4) == torch.device("cuda:2")
    assert placement.resolve_device("cuda:1", 0, 1) == torch.device("cuda:1")  # one process may pin a GPU
    with pytest.raises(ConfigError, match=r"'cuda:1' would put all 2 processes on one GPU") as info:
        placement.resolve_device("cuda:1", 0, 2)
    assert "\n" not in str(info.value)
    with pytest.raises(ConfigError, match=r"LOCAL_RANK=5 needs cuda:5, but only 4"):
        placement.resolve_device("cuda", 5, 8)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with caplog.at_level(logging.INFO, logger="assemblenet.engine.placement"):
        assert placement.resolve_device("auto", 0, 1) == torch.device("cpu")
    assert "running on the CPU (" in caplog.text  # says why


def test_a_single_process_pinned_to_a_gpu_makes_it_the_current_device(monkeypatch):
    # Else the pin-memory thread and the default CUDA device would open a context on GPU 0 as well.
    chosen = []
    monkeypatch.setattr(torch.cuda, "set_device", lambda device: chosen.append(torch.device(device)))
    cudnn = torch.backends.cudnn.benchmark
    try:
        placement.configure_backends(torch.device("cuda:2"), deterministic=False)
        placement.configure_backends(torch.device("cpu"), deterministic=False)
    finally:
        torch.backends.cudnn.benchmark = cudnn
    assert chosen == [torch.device("cuda:2")]


def test_epoch_ends_without_an_output_folder_read_nothing_back():
    # Four epochs of two steps, logged every four: with nothing to save, an epoch end makes no divergence read
    # and no buffer broadcast, so the only host reads of the loop are the log points'.
    from assemblenet.data.memory import InMemoryClips

    cfg = load_config({
        "seed": 0, "model": {"name": "assemblenet50_searchable", "depth": 26, "width_multiplier": 0.125,
                             "flow_iterations": 2},
        "data": {"num_frames": 4, "crop_size": 32, "batch_size": 2, "num_workers": 0},
        "optim": {"lr": 0.01, "reference_batch_size": 2, "max_steps": 8, "warmup_steps": 0},
        "train": {"num_threads": 1, "log_every_steps": 4, "eval_every_epochs": 0, "progress": False},
        "eval": {"num_clips": 1, "num_crops": 1, "batch_size": 4},
        "output": {"dir": None, "tensorboard": False},
    })
    clips = InMemoryClips(num_clips=4, num_classes=3, frames=4, size=32, seed=1)
    trainer = Trainer(cfg, train_dataset=clips, val_dataset=clips)
    assert trainer.steps_per_epoch == 2
    with count_host_reads() as log:
        result = trainer.fit()
    assert result.steps == 8 and trainer.epoch == 4
    in_loop = [r for r in log.reads if not r.in_file(*_HOST_SIDE) and not r.in_function("_finish")]
    assert [r.where() for r in in_loop if not r.in_function("_read_loss_window")] == []
    assert len(in_loop) == 2  # one read per log point
    # The final divergence check and evaluation still read (after the loop, where it costs nothing).
    assert any(r.in_function("_raise_if_diverged") for r in log.reads)


def test_evaluate_and_train_resolve_the_device_from_the_launch(monkeypatch, synthetic_root):
    # Under torchrun with train.device cuda:0 and two processes, the config error comes before any work.
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    cfg = load_config(tiny_config(synthetic_root, None, train={"device": "cuda:0"}))
    with pytest.raises(ConfigError, match="would put all 2 processes on one GPU"):
        Trainer(cfg)
    from assemblenet.engine.evaluator import run_evaluation

    with pytest.raises(ConfigError, match="would put all 2 processes on one GPU"):
        run_evaluation(cfg, "missing.safetensors")


def test_the_device_and_its_policy_are_logged_once(synthetic_root, caplog):
    cfg = load_config(tiny_config(synthetic_root, None, optim={"max_steps": 1}, train={"amp": "bf16"}))
    with caplog.at_level(logging.INFO, logger="assemblenet.engine.trainer"):
        Trainer(cfg)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("device ")]
    assert len(lines) == 1
    assert "device cpu (" in lines[0] and "bf16 autocast" in lines[0] and "channels-last-3d on" in lines[0]


def test_channels_last_weights_match_their_gradients_strides():
    from assemblenet.models import create_model

    torch.manual_seed(0)
    model = to_channels_last(create_model("assemblenet50_searchable", num_classes=3, depth=26,
                                          width_multiplier=0.125, flow_iterations=2))
    model(torch.rand(2, 3, 4, 32, 32)).sum().backward()
    mismatched = [name for name, p in model.named_parameters() if p.grad is not None and p.grad.stride() != p.stride()]
    assert mismatched == []
    assert all(p.is_contiguous(memory_format=torch.channels_last_3d) for p in model.parameters() if p.dim() == 5)


def test_the_foreach_ema_computes_the_per_tensor_average():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv3d(3, 4, 3), torch.nn.BatchNorm3d(4))
    ema = ModelEMA(model, decay=0.9)
    reference = copy.deepcopy(model)
    for step in range(1, 4):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p))
        model(torch.rand(2, 3, 5, 5, 5))  # moves the BN statistics and num_batches_tracked
        ema.update(model)
        decay = min(0.9, (1 + step) / (10 + step))
        for key, value in reference.state_dict().items():
            if value.dtype.is_floating_point:
                value.mul_(decay).add_(model.state_dict()[key], alpha=1 - decay)
            else:
                value.copy_(model.state_dict()[key])
    for key, value in reference.state_dict().items():
        assert torch.equal(ema.module.state_dict()[key], value), key


def test_deterministic_sets_what_cuda_needs(monkeypatch):
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    before = (torch.are_deterministic_algorithms_enabled(), torch.backends.cudnn.deterministic,
              torch.backends.cudnn.benchmark)
    try:
        placement.configure_backends(torch.device("cpu"), deterministic=True)
        assert torch.are_deterministic_algorithms_enabled()
        assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
        assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    finally:
        torch.use_deterministic_algorithms(before[0])
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = before[1], before[2]


@pytest.mark.slow
def test_a_compiled_training_step_trains_like_the_eager_one(synthetic_root, tmp_path):
    pytest.importorskip("torch._inductor")
    from assemblenet.graph import AssembleNetGraph, BlockNode, StemNode, StemType, save_graph

    # A four-node RGB graph: what compiles is the same code as any graph's, in a fraction of the time.
    nodes = (StemNode(StemType.RGB), BlockNode(level=0, inputs=(0,), filters=32),
             BlockNode(level=1, inputs=(0, 1), filters=64), BlockNode(level=2, inputs=(2,), filters=128),
             BlockNode(level=3, inputs=(1, 3), filters=256))
    graph = save_graph(AssembleNetGraph(nodes, name="small"), tmp_path / "small.yaml")
    overrides = dict(model={"graph": str(graph)}, data={"modalities": ["rgb"]},
                     optim={"max_steps": 2, "warmup_steps": 1}, train={"eval_every_epochs": 0})
    eager = run_training(tiny_config(synthetic_root, None, **overrides))
    compiled_cfg = tiny_config(synthetic_root, None, **overrides)
    compiled_cfg["train"]["compile"] = True
    from torch._dynamo.utils import counters

    counters.clear()
    compiled = run_training(compiled_cfg)
    assert counters["stats"]["unique_graphs"] >= 1  # dynamo did compile the training forward
    assert compiled.steps == eager.steps == 2
    eager_state, compiled_state = eager.model.state_dict(), compiled.model.state_dict()
    assert eager_state.keys() == compiled_state.keys()  # the checkpointed module is the plain one
    for key, value in eager_state.items():
        if value.is_floating_point():
            # Two SGD steps at lr 0.1: fused kernels round differently, by ~1e-4 here.
            torch.testing.assert_close(compiled_state[key], value, rtol=1e-2, atol=2e-3)


def test_precise_bn_runs_under_the_trainings_autocast_and_layout():
    from assemblenet.engine.modeling import precise_bn

    seen = []

    class Probe(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.bn = torch.nn.BatchNorm3d(3)

        def forward(self, x):
            seen.append((torch.is_autocast_enabled("cpu"), x.dtype,
                         x.is_contiguous(memory_format=torch.channels_last_3d)))
            return self.bn(x)

    batches = [torch.randint(0, 256, (2, 3, 4, 8, 8), dtype=torch.uint8) for _ in range(3)]
    assert precise_bn(Probe(), batches, torch.device("cpu"), amp="bf16", channels_last=True) == 3
    assert seen == [(True, torch.float32, True)] * 3  # uint8 clips arrive as floats, channels-last, under autocast
    seen.clear()
    precise_bn(Probe(), batches, torch.device("cpu"))
    assert seen == [(False, torch.float32, False)] * 3

