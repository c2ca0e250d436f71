"""Searches on GPUs, tested without one: local workers take the visible GPUs in turn, and under Ray the proxy's
device follows ``executor.gpus_per_trial`` (a contradiction is a config error)."""

from __future__ import annotations

import multiprocessing
import os

import pytest

from assemblenet.errors import ConfigError
from assemblenet.search import executors
from assemblenet.search.config import search_config_from_dict
from assemblenet.search.fitness import ProxyTrainingFitness


def _config(device: str, **executor):
    return search_config_from_dict({"fitness": {"kind": "proxy-training", "device": device}, "executor": executor})


@pytest.mark.parametrize(("device", "executor", "message"), [
    ("cpu", {"kind": "ray", "gpus_per_trial": 1}, "would reserve GPU time and train on the CPU"),
    ("cuda", {"kind": "ray", "gpus_per_trial": 0}, "Ray gives a trial no GPU unless it reserves one"),
    ("cuda:1", {"kind": "ray", "gpus_per_trial": 1}, "Ray chooses each trial's GPU"),
    ("cuda:0", {"kind": "local", "workers": 2}, "would put all 2 local workers on one GPU"),
    ("gpu", {"kind": "local"}, "expected auto, cpu, cuda or cuda:N"),
])
def test_a_device_that_contradicts_the_executor_is_a_config_error(device, executor, message):
    with pytest.raises(ConfigError, match="fitness.device") as info:
        _config(device, **executor)
    assert message in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize(("device", "executor"), [
    ("auto", {"kind": "ray", "gpus_per_trial": 0.5}),  # fractional GPUs: two trials share one
    ("cuda", {"kind": "ray", "gpus_per_trial": 0.25}),
    ("auto", {"kind": "ray"}),
    ("cpu", {"kind": "ray"}),
    ("cuda", {"kind": "local", "workers": 2}),
    ("cuda:1", {"kind": "local", "workers": 1}),
])
def test_consistent_devices_are_accepted(device, executor):
    assert _config(device, **executor).fitness.proxy_training.device == device


def _fitness(device: str) -> ProxyTrainingFitness:
    return ProxyTrainingFitness(train_config=None, steps=1, metric="metric", width_multiplier=0.125, device=device)


@pytest.mark.parametrize(("gpus", "device", "expected"), [(0.0, "auto", "cpu"), (0.5, "auto", "cuda"),
                                                          (1.0, "auto", "cuda"), (1.0, "cuda", "cuda")])
def test_under_ray_the_proxy_device_follows_gpus_per_trial(monkeypatch, gpus, device, expected):
    made = {}

    class FakeRay:
        def __init__(self, fitness, **kwargs):
            made.update(fitness=fitness, **kwargs)

    monkeypatch.setattr(executors, "RayExecutor", FakeRay)
    executors.make_executor("ray", _fitness(device), gpus_per_trial=gpus)
    assert made["fitness"].device == expected and made["gpus_per_trial"] == gpus


def _report_gpu(barrier) -> tuple[int, str | None]:
    barrier.wait(timeout=60)  # both workers hold a task at once: two distinct processes answer
    return os.getpid(), os.environ.get("CUDA_VISIBLE_DEVICES")


def test_local_workers_take_the_gpus_in_turn():
    pool = executors.ProcessPoolExecutor(_fitness("cuda"), workers=2, gpu_ids=["3", "5"])
    try:
        with multiprocessing.get_context("spawn").Manager() as manager:
            barrier = manager.Barrier(2)
            answers = [f.result(timeout=120) for f in [pool._pool.submit(_report_gpu, barrier) for _ in range(2)]]
    finally:
        pool.close()
    assert len({pid for pid, _ in answers}) == 2
    assert sorted(gpu for _, gpu in answers) == ["3", "5"]


def test_a_local_pool_on_a_cpu_machine_pins_nothing(monkeypatch):
    made = {}
    monkeypatch.setattr(executors, "ProcessPoolExecutor", lambda fitness, **kw: made.update(kw))
    monkeypatch.setattr(executors, "visible_gpus", lambda: [])
    executors.make_executor("local", _fitness("auto"), workers=2)
    assert made["gpu_ids"] == []
    monkeypatch.setattr(executors, "visible_gpus", lambda: ["0", "1"])
    executors.make_executor("local", _fitness("cpu"), workers=2)
    assert made["gpu_ids"] == []  # a CPU proxy never takes a GPU
    executors.make_executor("local", _fitness("auto"), workers=2)
    assert made["gpu_ids"] == ["0", "1"]
