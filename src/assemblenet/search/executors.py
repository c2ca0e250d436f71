"""Where fitness runs happen: in-process, in a local process pool, or as Ray tasks.

Executors only run trials; they never decide anything. The search hands them a batch of trials in a fixed
order, writes each outcome as soon as it arrives (in whatever order), and then consumes the batch in
submission order. Each trial carries its own seed and fixes the torch thread count, so every executor yields
the same fitness for the same trial.
"""

from __future__ import annotations

import concurrent.futures
import logging
import multiprocessing
import sys
import time
import traceback
from dataclasses import dataclass
from typing import Any, Iterator, Protocol, Sequence

from assemblenet.errors import ConfigError, DataError
from assemblenet.graph.spec import AssembleNetGraph
from assemblenet.search.fitness import FitnessFunction, FitnessResult, FitnessUnavailableError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Trial:
    index: int
    graph: AssembleNetGraph
    seed: int
    workdir: str | None = None


@dataclass(frozen=True)
class TrialOutcome:
    """A finished trial. ``fatal`` errors (the fitness cannot run at all) stop the search; others are recorded
    as a failed candidate."""

    index: int
    result: FitnessResult | None
    wall_time: float
    error: str | None = None
    fatal: bool = False


def run_trial(fitness: FitnessFunction, trial: Trial, torch_threads: int | None = None) -> TrialOutcome:
    """Run one fitness evaluation with a fixed torch thread count; never raises."""
    restore = _fix_torch_threads(fitness, torch_threads)
    start = time.perf_counter()
    try:
        result = fitness(trial.graph, seed=trial.seed, workdir=trial.workdir)
        return TrialOutcome(trial.index, result, time.perf_counter() - start)
    except Exception as exc:  # reported to the search, which records or stops
        # Errors of the setup (config, data, installation) would fail every candidate: stop. Anything else
        # (divergence, a graph the model rejects, out of memory) is this candidate's failure.
        fatal = isinstance(exc, (FitnessUnavailableError, ConfigError, DataError, ImportError))
        message = f"{type(exc).__name__}: {exc}"
        if not fatal:
            message += "\n" + "".join(traceback.format_exception(exc)[-3:])
        return TrialOutcome(trial.index, None, time.perf_counter() - start, error=message, fatal=fatal)
    finally:
        if restore is not None:
            restore()


def _fix_torch_threads(fitness: Any, threads: int | None) -> Any:
    if threads is None or not (getattr(fitness, "requires_torch", False) or "torch" in sys.modules):
        return None
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    return lambda: torch.set_num_threads(previous)


class Executor(Protocol):
    name: str

    def run(self, trials: Sequence[Trial]) -> Iterator[TrialOutcome]:
        """Run a batch; yield each outcome as soon as it finishes."""
        ...

    def close(self) -> None: ...


class SerialExecutor:
    """In-process, one trial after another."""

    name = "local"

    def __init__(self, fitness: FitnessFunction, *, torch_threads: int | None = 1) -> None:
        self.fitness = fitness
        self.torch_threads = torch_threads

    def run(self, trials: Sequence[Trial]) -> Iterator[TrialOutcome]:
        for trial in trials:
            yield run_trial(self.fitness, trial, self.torch_threads)

    def close(self) -> None:
        pass


class ProcessPoolExecutor:
    """A small local pool of spawned processes (spawn: safe with torch and threads)."""

    name = "local"

    def __init__(self, fitness: FitnessFunction, *, workers: int, torch_threads: int | None = 1) -> None:
        self.fitness = fitness
        self.torch_threads = torch_threads
        self._pool = concurrent.futures.ProcessPoolExecutor(
            max_workers=workers, mp_context=multiprocessing.get_context("spawn")
        )

    def run(self, trials: Sequence[Trial]) -> Iterator[TrialOutcome]:
        futures = [self._pool.submit(run_trial, self.fitness, trial, self.torch_threads) for trial in trials]
        for future in concurrent.futures.as_completed(futures):
            yield future.result()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


class RayExecutor:
    """Each trial is a Ray task declaring ``cpus_per_trial`` CPUs and ``gpus_per_trial`` GPUs.

    Joins the cluster at ``address`` if given, uses an already initialised Ray, or starts a local one (and
    shuts down only what it started).
    """

    name = "ray"

    def __init__(
        self,
        fitness: FitnessFunction,
        *,
        address: str | None = None,
        cpus_per_trial: float = 1.0,
        gpus_per_trial: float = 0.0,
        torch_threads: int | None = 1,
    ) -> None:
        try:
            import ray
        except ImportError:
            raise ConfigError("executor.kind: 'ray' needs the ray package (pip install 'assemblenet[ray]')") from None
        self._ray = ray
        self._owns_ray = False
        if not ray.is_initialized():
            try:
                ray.init(address=address, include_dashboard=False, log_to_driver=False)
            except ConnectionError as exc:
                raise ConfigError(f"--ray-address: cannot join the Ray cluster at {address!r}: {exc}") from None
            self._owns_ray = True
        self._remote = ray.remote(num_cpus=cpus_per_trial, num_gpus=gpus_per_trial, max_retries=0)(run_trial)
        self._fitness_ref = ray.put(fitness)
        self.torch_threads = torch_threads

    def run(self, trials: Sequence[Trial]) -> Iterator[TrialOutcome]:
        ray = self._ray
        pending = [self._remote.remote(self._fitness_ref, trial, self.torch_threads) for trial in trials]
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            for ref in done:
                yield ray.get(ref)

    def close(self) -> None:
        if self._owns_ray:
            self._ray.shutdown()


def make_executor(
    kind: str,
    fitness: FitnessFunction,
    *,
    workers: int = 1,
    torch_threads: int | None = 1,
    ray_address: str | None = None,
    cpus_per_trial: float = 1.0,
    gpus_per_trial: float = 0.0,
) -> Executor:
    if kind == "local":
        if workers <= 1:
            return SerialExecutor(fitness, torch_threads=torch_threads)
        return ProcessPoolExecutor(fitness, workers=workers, torch_threads=torch_threads)
    if kind == "ray":
        return RayExecutor(
            fitness, address=ray_address, cpus_per_trial=cpus_per_trial, gpus_per_trial=gpus_per_trial,
            torch_threads=torch_threads,
        )
    raise ConfigError(f"executor.kind: unknown executor {kind!r}; expected 'local' or 'ray'")
