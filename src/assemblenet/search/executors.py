"""Where fitness runs happen: in-process, in a local process pool, or as Ray tasks.

Executors only run trials; they never decide anything. The search hands them a batch of trials in a fixed
order, writes each outcome as soon as it arrives (in whatever order), and then consumes the batch in
submission order. Each trial carries its own seed and fixes the torch thread count, so every executor yields
the same fitness for the same trial.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import logging
import multiprocessing
import os
import re
import socket
import sys
import time
import traceback
from dataclasses import dataclass
from typing import Any, Iterator, Protocol, Sequence

from assemblenet.errors import ConfigError, DataError
from assemblenet.graph.spec import AssembleNetGraph
from assemblenet.runtime import process_pool
from assemblenet.search.config import EXECUTOR_KINDS
from assemblenet.search.fitness import FitnessFunction, FitnessResult, FitnessUnavailableError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Trial:
    index: int
    graph: AssembleNetGraph
    seed: int
    workdir: str | None = None


@dataclass(frozen=True)
class TrialOutcome:
    """A finished trial. ``fatal`` errors (the fitness cannot run at all) stop the search; others are recorded
    as a failed candidate. ``attempts`` counts the runs it took (more than 1 when a Ray worker died and the
    trial was retried)."""

    index: int
    result: FitnessResult | None
    wall_time: float
    error: str | None = None
    fatal: bool = False
    attempts: int = 1


def run_trial(fitness: FitnessFunction, trial: Trial, torch_threads: int | None = None) -> TrialOutcome:
    """Run one fitness evaluation with a fixed torch thread count; never raises."""
    restore = _fix_torch_threads(fitness, torch_threads)
    start = time.perf_counter()
    try:
        result = fitness(trial.graph, seed=trial.seed, workdir=trial.workdir)
        return TrialOutcome(trial.index, result, time.perf_counter() - start)
    except Exception as exc:  # noqa: BLE001 - reported to the search, which records or stops
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


_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
PARENT_WATCH_INTERVAL_S = 1.0


def die_with_parent(parent_pid: int, *, interval_s: float = PARENT_WATCH_INTERVAL_S) -> None:
    """Make this (worker) process end when ``parent_pid`` does, even by SIGKILL, which runs no cleanup in the
    parent: on Linux the kernel sends SIGKILL at the parent's death (``prctl(PR_SET_PDEATHSIG)``); everywhere a
    daemon thread sees the process re-parented (``os.getppid()`` changes) and exits. Without this a killed
    search leaves its pool workers computing beside the resumed one."""
    import signal
    import threading

    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        except (OSError, AttributeError):  # no prctl: the watchdog below still ends the process
            pass
    if os.getppid() != parent_pid:  # the parent died before the signal was armed
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(interval_s)
        os._exit(1)

    threading.Thread(target=watch, name="parent-watchdog", daemon=True).start()


def _init_pool_worker(parent_pid: int, counter: Any = None, gpu_ids: Sequence[str] = ()) -> None:
    """Pool-worker initializer: die with the search process, and take a GPU when given some."""
    die_with_parent(parent_pid)
    if gpu_ids:
        _pin_worker_gpu(counter, gpu_ids)


def _pin_worker_gpu(counter: Any, gpu_ids: Sequence[str]) -> None:
    """Pool-worker initializer: the n-th worker started sees only GPU ``gpu_ids[n % len]`` (as its cuda:0).
    It runs before the worker imports torch, so CUDA never sees the other GPUs."""
    with counter.get_lock():
        slot = counter.value
        counter.value += 1
    os.environ["CUDA_VISIBLE_DEVICES"] = gpu_ids[slot % len(gpu_ids)]


def visible_gpus() -> list[str]:
    """The GPUs this process may use, as ``CUDA_VISIBLE_DEVICES`` names them (empty without CUDA)."""
    import torch

    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    listed = [g.strip() for g in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if g.strip()]
    return listed[:count] if listed else [str(i) for i in range(count)]


class ProcessPoolExecutor:
    """A small local pool of spawned processes (spawn: safe with torch and threads). With ``gpu_ids`` the
    workers take those GPUs in turn (round-robin, one ``CUDA_VISIBLE_DEVICES`` per worker process). The workers
    end when the process that made the pool does, however it ends (:func:`die_with_parent`); the
    multiprocessing resource tracker then sees its last writer gone and exits too."""

    name = "local"

    def __init__(self, fitness: FitnessFunction, *, workers: int, torch_threads: int | None = 1,
                 gpu_ids: Sequence[str] | None = None) -> None:
        self.fitness = fitness
        self.torch_threads = torch_threads
        context = multiprocessing.get_context("spawn")
        initargs: tuple[Any, ...] = (os.getpid(),)
        if gpu_ids:
            initargs = (os.getpid(), context.Value("i", 0), list(gpu_ids))
            logger.info("%d local workers share GPUs %s round-robin", workers, ",".join(gpu_ids))
        # Workers die with this process, even when it is killed (die_with_parent).
        self._pool = process_pool(workers, initializer=_init_pool_worker, initargs=initargs)

    def run(self, trials: Sequence[Trial]) -> Iterator[TrialOutcome]:
        futures = [self._pool.submit(run_trial, self.fitness, trial, self.torch_threads) for trial in trials]
        for future in concurrent.futures.as_completed(futures):
            yield future.result()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


# Ray errors that mean the process running a trial (or the node, or the trial's result) was lost, not that the
# trial failed: the trial is run again, up to ``executor.max_retries`` times.
_RAY_WORKER_LOST = (
    "WorkerCrashedError", "LocalRayletDiedError", "NodeDiedError", "RayActorError", "ObjectLostError",
    "OutOfMemoryError",
)
RAY_CONNECT_TIMEOUT_S = 5.0


class RayExecutor:
    """Each trial is a Ray task declaring ``cpus_per_trial`` CPUs and ``gpus_per_trial`` GPUs.

    Joins the cluster at ``address`` if given, uses an already initialised Ray, or starts a local one (and
    shuts down only what it started).

    Faults: a trial whose worker dies (killed, out of memory, its node lost) is submitted again, at most
    ``max_retries`` times, with the same seed, so a retried trial gives the fitness an unretried one would.
    When the retries are used up it comes back as a failed (not fatal) outcome, recorded as a failed
    evaluation. The retries are counted here rather than left to Ray, so that each outcome says how many
    attempts it took and the final error names the evaluation. Any other Ray error (the worker cannot load the
    trial, its runtime environment fails) is fatal: it would fail every trial.
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
        max_retries: int = 1,
    ) -> None:
        if max_retries < 0:
            raise ConfigError(f"executor.max_retries: must be >= 0, got {max_retries}")
        try:
            import ray
        except ImportError:
            raise ConfigError("executor.kind: 'ray' needs the ray package (pip install 'assemblenet[ray]')") from None
        self._ray = ray
        self._owns_ray = False
        if not ray.is_initialized():
            if address is not None:
                check_ray_address(address)
            try:
                ray.init(address=address, include_dashboard=False, log_to_driver=False)
            except ConnectionError as exc:
                raise ConfigError(
                    f"--ray-address / executor.ray_address: cannot join the Ray cluster at {address!r}: {exc}"
                ) from None
            self._owns_ray = True
        self._remote = ray.remote(num_cpus=cpus_per_trial, num_gpus=gpus_per_trial, max_retries=0)(run_trial)
        self._fitness_ref = ray.put(fitness)
        self.torch_threads = torch_threads
        self.max_retries = max_retries
        self._worker_lost = tuple(getattr(ray.exceptions, n) for n in _RAY_WORKER_LOST if hasattr(ray.exceptions, n))

    def run(self, trials: Sequence[Trial]) -> Iterator[TrialOutcome]:
        ray = self._ray
        pending: dict[Any, Trial] = {}
        attempts: dict[int, int] = {}
        started: dict[int, float] = {}

        def submit(trial: Trial) -> None:
            attempts[trial.index] = attempts.get(trial.index, 0) + 1
            started.setdefault(trial.index, time.perf_counter())
            pending[self._remote.remote(self._fitness_ref, trial, self.torch_threads)] = trial

        for trial in trials:
            submit(trial)
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                trial = pending.pop(ref)
                tries = attempts[trial.index]
                try:
                    outcome: TrialOutcome = ray.get(ref)
                except self._worker_lost as exc:
                    reason = _describe(exc)
                    if tries <= self.max_retries:
                        logger.warning("evaluation %d: the Ray worker running it was lost (%s); retrying (%d of %d)",
                                    trial.index, reason, tries, self.max_retries)
                        submit(trial)
                        continue
                    outcome = TrialOutcome(
                        trial.index, None, time.perf_counter() - started[trial.index],
                        error=(f"the Ray worker running evaluation {trial.index} was lost on each of {tries} "
                               f"attempt(s) (executor.max_retries={self.max_retries}); last: {reason}"),
                    )
                except ray.exceptions.RayError as exc:  # run_trial never raises: Ray could not run it at all
                    outcome = TrialOutcome(
                        trial.index, None, time.perf_counter() - started[trial.index],
                        error=(f"Ray could not run evaluation {trial.index} ({_describe(exc)}); are assemblenet "
                               "and the fitness importable on the Ray workers?"),
                        fatal=True,
                    )
                yield dataclasses.replace(outcome, attempts=tries)

    def close(self) -> None:
        if self._owns_ray:
            self._ray.shutdown()


def _describe(exc: BaseException) -> str:
    """``Type: gist`` of a Ray error. Ray puts the underlying error last (after the task name, a traceback)."""
    lines = [line.strip() for line in re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).splitlines() if line.strip()]
    return f"{type(exc).__name__}: {lines[-1]}" if lines else type(exc).__name__


def check_ray_address(address: str, *, timeout: float = RAY_CONNECT_TIMEOUT_S) -> None:
    """Fail fast, naming the address, when nothing listens at a ``host:port`` (or ``ray://host:port``) Ray
    address: ``ray.init`` would otherwise retry for minutes. ``auto`` and ``local`` are left to Ray."""
    if address in ("auto", "local"):
        return
    target = address.split("://", 1)[1] if "://" in address else address
    host, sep, port_text = target.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port_text.isdigit():
        raise ConfigError(
            f"--ray-address / executor.ray_address: {address!r} is not a Ray address of the form host:port"
        )
    try:
        with socket.create_connection((host, int(port_text)), timeout=timeout):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConfigError(
            f"--ray-address / executor.ray_address: no Ray cluster answers at {address!r} ({reason}); start one "
            "there with 'ray start --head --port=PORT' or fix the address"
        ) from None


def make_executor(
    kind: str,
    fitness: FitnessFunction,
    *,
    workers: int = 1,
    torch_threads: int | None = 1,
    ray_address: str | None = None,
    cpus_per_trial: float = 1.0,
    gpus_per_trial: float = 0.0,
    max_retries: int = 1,
) -> Executor:
    """An executor of ``kind`` running ``fitness``. A fitness with a ``device`` (the proxy training) is placed
    here: under Ray ``auto`` becomes ``cuda`` when trials reserve GPUs and ``cpu`` when they do not; a local
    pool running ``auto``/``cuda`` trials gives its workers the visible GPUs in turn."""
    device = getattr(fitness, "device", None)
    if kind == "local":
        if workers <= 1:
            return SerialExecutor(fitness, torch_threads=torch_threads)
        gpu_ids = visible_gpus() if device in ("auto", "cuda") else []
        return ProcessPoolExecutor(fitness, workers=workers, torch_threads=torch_threads, gpu_ids=gpu_ids)
    if kind == "ray":
        if device == "auto" and dataclasses.is_dataclass(fitness):
            fitness = dataclasses.replace(fitness, device="cuda" if gpus_per_trial > 0 else "cpu")
        return RayExecutor(
            fitness, address=ray_address, cpus_per_trial=cpus_per_trial, gpus_per_trial=gpus_per_trial,
            torch_threads=torch_threads, max_retries=max_retries,
        )
    raise ConfigError(f"executor.kind: unknown executor {kind!r}; expected one of {list(EXECUTOR_KINDS)}")
