"""Process-level settings: CPU performance, the machine a figure was measured on, worker processes.

Video activations are large (a [1, 128, 32, 56, 56] float tensor is 51 MB). glibc serves such blocks with
mmap and returns them to the OS on free, so every layer's output is page-faulted in again: on a 2-core VM this
made elementwise ops and BatchNorm about 4-6x slower than their memory bandwidth allows. Keeping freed memory in
the heap removes that cost, which is what LD_PRELOAD-ing jemalloc or tcmalloc does for PyTorch CPU users. The
price is that the process keeps its peak memory instead of returning it.

The CLI, the trainer and the benchmarks call :func:`keep_freed_memory`; library users can call it once at
start-up (or preload jemalloc/tcmalloc instead).
"""

from __future__ import annotations

import concurrent.futures
import ctypes
import ctypes.util
import logging
import multiprocessing
import statistics
import sys
import time
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_applied = False


def native_bf16(device: torch.device | str = "cpu") -> bool:
    """Whether ``device`` runs bf16 convolutions natively (CPU: oneDNN with AVX-512-BF16 or AMX; GPU: Ampere+).

    Without it PyTorch falls back to slow reference kernels and bf16 is many times slower than fp32."""
    import torch

    device = torch.device(device)
    if device.type == "cuda":
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    if device.type == "cpu":
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    return False


def keep_freed_memory() -> bool:
    """Stop glibc from returning large freed blocks to the OS. Returns True if the setting is active.

    A no-op on non-glibc platforms (macOS, Windows, musl) and when a different allocator is preloaded.
    """
    global _applied
    if _applied:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    # Serve every block from the heap and never trim it, so freed activations are reused.
    ok = bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, 2**31 - 1))
    _applied = ok
    if ok:
        logger.debug("glibc malloc set to keep freed memory (M_MMAP_MAX=0, no trimming)")
    return ok


# Instruction sets that decide which CPU kernels PyTorch can use (oneDNN bf16 needs avx512_bf16 or amx).
_ISA_FLAGS = ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_tile", "amx_bf16")


def cpu_identity(cpuinfo: str) -> dict:
    """The first processor's model name, family, model number and flags from ``/proc/cpuinfo`` text. The family
    and model number are kept because a VM may show only a generic name: two machines both called "AMD EPYC" with
    the same flags ran the same demo in 146 s and 91 s (the second was family 26, Zen 5; the first's family was
    not recorded)."""
    out: dict = {"model_name": "", "family": None, "model": None, "flags": set()}
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        key, value = key.strip(), value.strip()
        if not key and out["model_name"]:  # the blank line after the first processor's block
            break
        if key == "model name" and not out["model_name"]:
            out["model_name"] = value
        elif key == "cpu family" and out["family"] is None and value.isdigit():
            out["family"] = int(value)
        elif key == "model" and out["model"] is None and value.isdigit():
            out["model"] = int(value)
        elif key == "flags" and not out["flags"]:
            out["flags"] = set(value.split())
    return out


def machine_info() -> dict:
    """What a benchmark figure was measured on: CPU model (with its family and model number), logical CPUs, the
    relevant instruction sets, torch's CPU capability and whether bf16 runs natively. ``signature`` is one line
    for comparing machines."""
    import os
    import platform

    import torch

    try:
        with open("/proc/cpuinfo") as handle:  # Linux; elsewhere the platform's processor string
            identity = cpu_identity(handle.read())
    except OSError:
        identity = cpu_identity("")
    model = identity["model_name"] or platform.processor() or platform.machine()
    if identity["family"] is not None and identity["model"] is not None:
        model = f"{model} (family {identity['family']}, model {identity['model']})"
    isa = [flag for flag in _ISA_FLAGS if flag in identity["flags"]]
    info = {
        "cpu": model,
        "logical_cpus": os.cpu_count(),
        "isa": isa,
        "torch": torch.__version__,
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "native_bf16": native_bf16("cpu"),
        "python": platform.python_version(),
    }
    info["signature"] = f"{info['cpu']}, {info['logical_cpus']} CPUs, {'/'.join(isa) or 'no AVX2'}"
    return info


def time_calls(fn: Callable[[], object], *, repeats: int, warmup: int = 1,
               synchronize: Callable[[], None] | None = None, threads: int | None = None) -> dict[str, float]:
    """Time ``fn``: ``warmup`` untimed calls, then ``repeats`` timed ones; the benchmarks' one timing rule.

    Returns the median and minimum wall time, the median process CPU time (``cpu_s``; with ``threads``, also
    per thread: on a shared machine it estimates the time alone, though spinning threads inflate it) and the
    repeat count. ``synchronize`` (e.g. ``torch.cuda.synchronize``) is called after the warm-up and after
    every timed call, so that asynchronous work is inside the measurement.
    """
    for _ in range(warmup):
        fn()
    if synchronize is not None:
        synchronize()
    walls, cpus = [], []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        fn()
        if synchronize is not None:
            synchronize()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    out = {"median_s": statistics.median(walls), "min_s": min(walls), "cpu_s": statistics.median(cpus),
           "repeats": repeats}
    if threads:
        out["cpu_per_thread_s"] = out["cpu_s"] / threads
    return out


def process_pool(max_workers: int, **kwargs: Any) -> concurrent.futures.ProcessPoolExecutor:
    """The project's one way to start a process pool: a ``ProcessPoolExecutor`` whose workers start by spawn (torch
    DataLoader workers still fork, by design: they share the dataset with the main process, docs/data.md).

    Forking a process that runs threads copies locks that other threads held at that instant, and a child that
    takes one waits for ever: torch's intra-op pool, OpenCV's and PyAV's frame-conversion threads all qualify (a
    fork-started pool child once hung in swscale's thread pool, see ``data/decode/video.py``), and Python 3.12
    warns about it. Spawned workers import what they need afresh, which costs about a second each at start-up.
    A script that calls a function using it needs the usual ``if __name__ == "__main__":`` guard, since spawned
    workers import the main module. ``kwargs`` go to the executor (``initializer``, ``initargs``,
    ``max_tasks_per_child``).
    """
    return concurrent.futures.ProcessPoolExecutor(max_workers=max_workers,
                                                  mp_context=multiprocessing.get_context("spawn"), **kwargs)
