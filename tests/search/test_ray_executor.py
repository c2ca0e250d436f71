"""``executor: ray`` on a local Ray instance evaluates the same graphs, in the same order, as ``local``."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from assemblenet.search.evolution import SearchRunner
from assemblenet.search.fitness import FitnessResult
from assemblenet.search.store import RunStore
from assemblenet.search.toy import ToyFitness

from .conftest import assert_same_sequence, run_sequence, tiny_config

ray = pytest.importorskip("ray", reason="needs the optional ray install (pip install 'assemblenet[ray]')")


@dataclass(frozen=True)
class _ToyReportingPid:
    """The toy fitness, plus the id of the process that ran it."""

    def __call__(self, graph, *, seed, workdir=None) -> FitnessResult:
        result = ToyFitness()(graph, seed=seed)
        return FitnessResult(result.fitness, result.learned_weights, {**result.metrics, "pid": os.getpid()})


@pytest.fixture(scope="module")
def local_ray():
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # Ray workers cannot import tests/
    # Stay on 127.0.0.1: Ray otherwise gives a local instance the machine's network address.
    constants = ray._private.ray_constants
    enable_cluster, constants.ENABLE_RAY_CLUSTER = constants.ENABLE_RAY_CLUSTER, False
    try:
        context = ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        assert context.address_info["node_ip_address"] == "127.0.0.1"
        yield ray
    finally:
        ray.shutdown()
        constants.ENABLE_RAY_CLUSTER = enable_cluster


@pytest.mark.parametrize("strategy", ["evolution", "oneshot"])
def test_ray_matches_local(tmp_path: Path, local_ray, strategy: str) -> None:
    changes = {"strategy": strategy, "search.max_evaluations": 10, "search.batch_size": 2}
    local_dir, ray_dir = tmp_path / "local", tmp_path / "ray"
    SearchRunner(tiny_config(**changes), run_dir=local_dir, fitness=_ToyReportingPid()).run()
    SearchRunner(tiny_config(**changes, **{"executor.kind": "ray", "executor.cpus_per_trial": 1.0}),
                 run_dir=ray_dir, fitness=_ToyReportingPid()).run()
    assert_same_sequence(run_sequence(ray_dir), run_sequence(local_dir), tol=1e-9)
    # The same learned weights too, so the children are guided identically.
    local_records, ray_records = RunStore(local_dir).read_records(), RunStore(ray_dir).read_records()
    for index, record in local_records.items():
        assert ray_records[index].learned_weights == pytest.approx(record.learned_weights)
    assert {r.metrics["pid"] for r in local_records.values()} == {os.getpid()}
    assert os.getpid() not in {r.metrics["pid"] for r in ray_records.values()}  # really ran as Ray tasks
    assert local_ray.is_initialized()  # the executor left the Ray it did not start running


def test_cli_executor_ray_matches_local(tmp_path: Path, local_ray) -> None:
    from assemblenet.cli.main import main

    config = Path(__file__).resolve().parents[2] / "configs" / "search" / "tiny.yaml"
    common = ["search", str(config), "--no-progress", "--no-report", "--max-evaluations", "8"]
    assert main([*common, "--output", str(tmp_path / "local")]) == 0
    assert main([*common, "--output", str(tmp_path / "ray"), "--executor", "ray"]) == 0
    ray_run = tmp_path / "ray" / "evolution-seed0"
    assert_same_sequence(run_sequence(ray_run), run_sequence(tmp_path / "local" / "evolution-seed0"), tol=1e-9)
    assert json.loads((ray_run / "search.json").read_text())["config"]["executor"]["kind"] == "ray"


class _UnloadableOnWorkers:
    """A fitness that cannot be unpickled where it runs, as one whose module a Ray worker lacks."""

    def __call__(self, graph, *, seed, workdir=None) -> FitnessResult:  # pragma: no cover - never loaded
        return ToyFitness()(graph, seed=seed)

    def __getstate__(self) -> dict:
        return {}

    def __setstate__(self, state: dict) -> None:
        raise ModuleNotFoundError("No module named 'my_fitness'")


def test_ray_error_other_than_a_lost_worker_is_fatal_and_named(local_ray) -> None:
    from assemblenet.search.executors import RayExecutor, Trial
    from assemblenet.search.space import SearchSpace

    graph = SearchSpace(tiny_config().space).sample(__import__("random").Random(0))
    executor = RayExecutor(_UnloadableOnWorkers(), max_retries=2)
    (outcome,) = list(executor.run([Trial(5, graph, seed=1)]))
    assert outcome.fatal and outcome.result is None and outcome.attempts == 1  # not retried
    assert outcome.error.startswith("Ray could not run evaluation 5 (")
    assert "my_fitness" in outcome.error and "importable on the Ray workers" in outcome.error
    executor.close()
    assert local_ray.is_initialized()


@pytest.mark.parametrize(
    ("address", "message"),
    [
        ("nonsense", "'nonsense' is not a Ray address of the form host:port"),
        ("127.0.0.1:notaport", "is not a Ray address"),
        ("ray://127.0.0.1:{port}", "no Ray cluster answers at 'ray://127.0.0.1:{port}' (Connection refused)"),
        ("127.0.0.1:{port}", "no Ray cluster answers at '127.0.0.1:{port}' (Connection refused)"),
    ],
)
def test_a_missing_ray_address_is_named_at_once(address: str, message: str) -> None:
    import socket

    from assemblenet.errors import ConfigError
    from assemblenet.search.executors import check_ray_address

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(ConfigError) as info:
        check_ray_address(address.format(port=port), timeout=2.0)
    assert str(info.value).startswith("--ray-address / executor.ray_address: ")
    assert message.format(port=port) in str(info.value)
    check_ray_address("auto")  # left to Ray
    check_ray_address("local")


def test_finalist_rescoring_runs_on_ray_as_locally(tmp_path: Path, local_ray) -> None:
    changes = {"search.max_evaluations": 8, "search.batch_size": 2, "search.finalists": {"top_k": 3, "seeds": 2}}
    local = SearchRunner(tiny_config(**changes), run_dir=tmp_path / "local", fitness=_ToyReportingPid()).run()
    ray_run = SearchRunner(tiny_config(**changes, **{"executor.kind": "ray"}), run_dir=tmp_path / "ray",
                           fitness=_ToyReportingPid()).run()
    assert [(s.source.index, s.fitnesses) for s in ray_run.finalists] == \
        [(s.source.index, s.fitnesses) for s in local.finalists]
    assert ray_run.chosen.graph_hash == local.chosen.graph_hash
    ray_pids = {r.metrics["pid"] for s in ray_run.finalists for r in s.evaluations}
    assert os.getpid() not in ray_pids  # the re-scoring ran as Ray tasks
