"""Where a run computes, and the backend settings that go with it: one place for ``train``, ``evaluate`` and the
search's proxy trainings.

- Every process of a ``torchrun`` job uses ``cuda:LOCAL_RANK``; an explicit ``cuda:N`` is only valid for one
  process (several processes would all share GPU N).
- ``auto`` takes the local GPU when there is one and says why when it falls back to the CPU.
- The run's GPU is made the process's current CUDA device (``cuda:N`` in one process too).
- cuDNN autotuning (``cudnn.benchmark``) is on unless the run asks for determinism.
- ``deterministic`` sets everything CUDA needs (deterministic algorithms, cuDNN, the cuBLAS workspace) and says
  once, at start-up, which ops the model runs have no deterministic CUDA kernel.
- :func:`seed_everything` seeds Python's, NumPy's and torch's generators from the run's seed.
"""

from __future__ import annotations

import logging
import os
import random
import warnings

import numpy as np
import torch

from assemblenet.errors import ConfigError

logger = logging.getLogger(__name__)

# Ops of AssembleNet's training step that have no deterministic CUDA kernel (torch warns for them under
# use_deterministic_algorithms(warn_only=True)). The pooling elsewhere is mean(), which is deterministic.
NONDETERMINISTIC_CUDA_OPS = {
    "max_pool3d_with_indices_backward_cuda": "max_pool3d backward (the stems' 3x3 spatial max pool)",
}
CUBLAS_WORKSPACE = ":4096:8"


DEVICE_CHOICES = "auto, cpu, cuda or cuda:N"


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's generators (every device's) from ``seed``."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def resolve_device(name: str, local_rank: int = 0, world_size: int = 1, *, key: str = "train.device") -> torch.device:
    """The device a process of a ``world_size``-process job (this one ``local_rank`` on its machine) uses for
    ``name`` (``auto``, ``cpu``, ``cuda`` or ``cuda:N``): the one device choice of ``train``, ``evaluate``,
    ``predict`` and ``flow``. A name that is not one of those, or a GPU this machine lacks, is one
    ``ConfigError`` line naming ``key`` (the config key or the command-line option) and the choices."""
    where = f"key '{key}'" if not key.startswith("-") else key
    text = str(name).strip()
    if text not in ("auto", "cpu", "cuda") and not (text.startswith("cuda:") and text[5:].isdigit()):
        raise ConfigError(f"{where}: unknown device {text!r}; choices: {DEVICE_CHOICES}")
    if text == "auto":
        if torch.cuda.is_available():
            return torch.device(f"cuda:{local_rank}")
        logger.info("%s auto: running on the CPU (%s)", key, cpu_fallback_reason())
        return torch.device("cpu")
    if text.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"{where}: {text!r} requested but no GPU is available ({cpu_fallback_reason()}); "
                          "choices here: auto, cpu")
    if text.startswith("cuda:") and world_size > 1:
        raise ConfigError(f"{where}: {text!r} would put all {world_size} processes on one GPU; use "
                          "'cuda' (each process takes cuda:LOCAL_RANK) and choose GPUs with CUDA_VISIBLE_DEVICES")
    if text.startswith("cuda:") and int(text[5:]) >= torch.cuda.device_count():
        raise ConfigError(f"{where}: {text!r}, but only {torch.cuda.device_count()} GPU(s) are visible; choices "
                          f"here: auto, cpu, cuda, cuda:0..cuda:{torch.cuda.device_count() - 1}")
    if text == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise ConfigError(f"{where}: process LOCAL_RANK={local_rank} needs cuda:{local_rank}, but "
                              f"only {torch.cuda.device_count()} GPU(s) are visible")
        return torch.device(f"cuda:{local_rank}")
    return torch.device(text)


def cpu_fallback_reason() -> str:
    if torch.version.cuda is None:
        return f"this torch {torch.__version__} is a CPU-only build"
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) == "":
        return "CUDA_VISIBLE_DEVICES is empty"
    return f"torch {torch.__version__} (CUDA {torch.version.cuda}) finds no usable GPU"


def describe_device(device: torch.device, *, amp: str, channels_last: bool, compiled: bool,
                    deterministic: bool) -> str:
    """One line: the device, its name, and the precision and layout policy of the run."""
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        name = f"{props.name}, {props.total_memory / 2**30:.0f} GiB"
        tf32 = "TF32 matmul/conv on" if torch.backends.cuda.matmul.allow_tf32 else "TF32 off"
        extra = f", {tf32}, cudnn.benchmark {'on' if torch.backends.cudnn.benchmark else 'off'}"
    else:
        from assemblenet.runtime import machine_info

        name = machine_info()["signature"]
        extra = f", {torch.get_num_threads()} threads"
    precision = {"none": "fp32", "bf16": "bf16 autocast (fp32 weights)",
                 "fp16": "fp16 autocast + loss scaling (fp32 weights)"}[amp]
    return (f"device {device} ({name}): {precision}{extra}, channels-last-3d {'on' if channels_last else 'off'}, "
            f"torch.compile {'on' if compiled else 'off'}, deterministic {'on' if deterministic else 'off'}")


def configure_backends(device: torch.device, *, deterministic: bool, warn: bool = True) -> None:
    """Backend flags for a run on ``device``: the current CUDA device, cuDNN autotuning, or everything
    determinism needs."""
    if device.type == "cuda" and device.index is not None:
        # The run's GPU becomes the process's current one (torchrun's processes set it when they join the
        # group): otherwise the loader's pin-memory thread and anything made on the default CUDA device would
        # open a context on GPU 0 as well, for a single process pinned to cuda:N.
        torch.cuda.set_device(device)
    if deterministic:
        # cuBLAS reads this when it creates its handle: set it before the first matmul.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
        if device.type == "cuda":
            if warn:
                logger.warning("train.deterministic: %s has no deterministic CUDA kernel; runs on a GPU can differ "
                               "in the last bits (CPU runs are bit-reproducible)",
                               ", ".join(NONDETERMINISTIC_CUDA_OPS.values()))
            for op in NONDETERMINISTIC_CUDA_OPS:  # said once above; torch would repeat it at every step
                warnings.filterwarnings("ignore", message=f".*{op}.*")
    elif device.type == "cuda":
        torch.backends.cudnn.benchmark = True
