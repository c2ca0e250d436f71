"""Two CPU processes with gloo under torchrun: identical weights on both ranks, and gathered evaluation equal to
a single-process evaluation of the same weights."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from assemblenet.engine.config import load_config
from assemblenet.engine.datasets import build_split
from assemblenet.engine.evaluator import evaluate
from assemblenet.engine.weights import load_model
from tests.engine._helpers import TRAIN_VIDEOS, VAL_VIDEOS, tiny_config

HERE = Path(__file__).resolve().parent


def _train_two_ranks(config: dict, folder: Path) -> subprocess.CompletedProcess:
    """``ddp_worker.py`` on ``config`` under a 2-process gloo torchrun; each rank writes its results to ``folder``."""
    config_path = folder / "config.json"
    config_path.write_text(json.dumps(config))
    env = {**os.environ, "PYTHONPATH": str(HERE.parents[1]) + os.pathsep + str(HERE.parents[1] / "src"),
           "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               str(HERE / "ddp_worker.py"), str(config_path), str(folder)]
    finished = subprocess.run(command, capture_output=True, text=True, env=env, timeout=400)
    assert finished.returncode == 0, finished.stderr[-3000:]
    return finished


def test_two_gloo_processes_train_identically_and_gather_evaluation_exactly(synthetic_root, tmp_path):
    out = tmp_path / "run"
    config = tiny_config(synthetic_root, out, optim={"epochs": 2, "warmup_epochs": 1}, data={"batch_size": 2},
                         eval={"num_clips": 3})  # 11 val videos x 3 views: uneven shards across the 2 ranks
    _train_two_ranks(config, tmp_path)

    reports = [json.loads((tmp_path / f"rank{r}_metrics.json").read_text()) for r in (0, 1)]
    assert reports[0]["world_size"] == 2
    assert reports[0]["steps"] == 2 * (TRAIN_VIDEOS // (2 * 2))  # 2 epochs, 2 clips per process, 2 processes
    assert reports[0]["metrics"] == reports[1]["metrics"]
    states = [torch.load(tmp_path / f"rank{r}_state.pt", weights_only=True) for r in (0, 1)]
    assert states[0].keys() == states[1].keys()
    for name in states[0]:
        assert torch.equal(states[0][name], states[1][name]), name

    # Only rank 0 wrote the run's files; its weights are the ranks' common weights.
    model, _ = load_model(out / "model.safetensors")
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, states[0][name]), name
    val = build_split(load_config(config), "val")
    single = evaluate(model, val, batch_size=8)
    gathered = reports[0]["metrics"]
    assert single.metrics["num_videos"] == gathered["num_videos"] == val.num_videos == VAL_VIDEOS
    for key in ("map", "map_sklearn", "top1", "top5", "mean_class_accuracy"):
        assert gathered[key] == pytest.approx(single.metrics[key], abs=1e-6), key


def test_a_graph_with_a_dead_node_trains_under_ddp_without_find_unused_parameters(synthetic_root, tmp_path):
    # Node 5 feeds nothing: before the model pruned it, its parameters got no gradient and DDP (built without
    # find_unused_parameters) failed at the second step. Channels-last weights also keep DDP's buckets free of
    # the "grad strides do not match bucket view strides" copy.
    from assemblenet.graph import AssembleNetGraph, BlockNode, StemNode, StemType, save_graph

    nodes = (StemNode(StemType.RGB), StemNode(StemType.FLOW),
             BlockNode(level=0, inputs=(0,), filters=32), BlockNode(level=0, inputs=(1,), filters=32),
             BlockNode(level=1, inputs=(2, 3), filters=64), BlockNode(level=1, inputs=(3,), filters=64),
             BlockNode(level=2, inputs=(4,), filters=128), BlockNode(level=3, inputs=(6,), filters=256))
    graph_path = save_graph(AssembleNetGraph(nodes, name="dead5", allow_dead_nodes=True), tmp_path / "dead5.yaml")
    out = tmp_path / "run"
    config = tiny_config(synthetic_root, out, model={"graph": str(graph_path)}, data={"batch_size": 2},
                         optim={"max_steps": 3, "warmup_steps": 1})
    finished = _train_two_ranks(config, tmp_path)
    assert "reach no output" in finished.stderr  # the pruning is announced
    assert "Grad strides do not match" not in finished.stderr
    reports = [json.loads((tmp_path / f"rank{r}_metrics.json").read_text()) for r in (0, 1)]
    assert reports[0]["steps"] == reports[1]["steps"] == 3
    states = [torch.load(tmp_path / f"rank{r}_state.pt", weights_only=True) for r in (0, 1)]
    assert not any(name.startswith("nodes.3.") for name in states[0])  # node 5 = the fourth block node
    for name in states[0]:
        assert torch.equal(states[0][name], states[1][name]), name
