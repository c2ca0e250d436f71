"""Training checkpoints: atomic writes, discovery of the latest one, RNG state capture.

A checkpoint is one ``torch.save`` file ``checkpoints/step_{step:08d}.pt`` in the run folder holding plain
containers and tensors only, so it loads with ``torch.load(weights_only=True)``:

``{"format": 1, "step", "epoch", "step_in_epoch", "model", "optimizer", "scheduler", "scaler", "ema",
"rng": {"torch", "cuda", "numpy", "python"}, "config", "history", "best"}``
"""

from __future__ import annotations

import logging
import os
import pickle
import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from assemblenet.errors import CheckpointError
from assemblenet.fileio import atomic_path

logger = logging.getLogger(__name__)

CHECKPOINT_DIR = "checkpoints"
CHECKPOINT_FORMAT = 1
_NAME = re.compile(r"^step_(\d{8,})\.pt$")


def checkpoint_path(run_dir: str | os.PathLike[str], step: int) -> Path:
    return Path(run_dir) / CHECKPOINT_DIR / f"step_{step:08d}.pt"


def list_checkpoints(run_dir: str | os.PathLike[str]) -> list[tuple[int, Path]]:
    """(step, path) of the complete checkpoints in a run folder, oldest first (temp files are ignored)."""
    folder = Path(run_dir) / CHECKPOINT_DIR
    if not folder.is_dir():
        return []
    found = []
    for path in folder.iterdir():
        match = _NAME.match(path.name)
        if match and path.is_file():
            found.append((int(match.group(1)), path))
    return sorted(found)


def latest_checkpoint(run_dir: str | os.PathLike[str]) -> Path | None:
    found = list_checkpoints(run_dir)
    return found[-1][1] if found else None


def atomic_torch_save(obj: Any, path: str | os.PathLike[str]) -> Path:
    """``torch.save`` through :func:`assemblenet.fileio.atomic_path` with fsync: a reader (or a restart after
    SIGKILL or a power loss) sees either the old file or the complete new one."""
    path = Path(path)
    with atomic_path(path, fsync=True) as tmp:
        torch.save(obj, tmp)
    return path


def save_checkpoint(state: dict[str, Any], run_dir: str | os.PathLike[str], step: int, *, keep: int = 2) -> Path:
    """Write ``state`` as the checkpoint of ``step`` and delete all but the ``keep`` newest."""
    path = atomic_torch_save({"format": CHECKPOINT_FORMAT, **state}, checkpoint_path(run_dir, step))
    for _, old in list_checkpoints(run_dir)[:-keep]:
        try:
            old.unlink()
        except FileNotFoundError:
            pass
    return path


def load_checkpoint(path: str | os.PathLike[str], map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint` (``weights_only=True``)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError:
        # torch's own message ends with advice to load the file unsafely; the one thing never to do with a
        # file of unknown origin, so it is not relayed.
        raise CheckpointError(f"{path}: refused: not a weights-only checkpoint (it pickles Python objects other "
                              "than tensors, numbers, strings and containers, and unpickling those can run code; "
                              "assemblenet loads only weights-only checkpoints and .safetensors)") from None
    except Exception as exc:  # noqa: BLE001 - a truncated or foreign file: say which
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise CheckpointError(f"{path}: not a readable checkpoint ({type(exc).__name__}: {first})") from None
    if not isinstance(state, dict) or "model" not in state:
        raise CheckpointError(f"{path}: not an assemblenet training checkpoint (no 'model' entry)")
    return state


# -- RNG states as tensors and plain values (weights_only-safe) -------------------------------------------
def capture_rng_state() -> dict[str, Any]:
    np_state = np.random.get_state(legacy=True)
    assert isinstance(np_state, tuple)  # the legacy global generator is an MT19937
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {"name": str(np_state[0]), "keys": torch.from_numpy(np_state[1].astype(np.int64)),
                  "pos": int(np_state[2]), "has_gauss": int(np_state[3]), "cached_gaussian": float(np_state[4])},
        "python": _python_state_to_plain(random.getstate()),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"].cpu())
    np_state = state["numpy"]
    np.random.set_state((np_state["name"], np_state["keys"].cpu().numpy().astype(np.uint32), np_state["pos"],
                         np_state["has_gauss"], np_state["cached_gaussian"]))
    random.setstate(_plain_to_python_state(state["python"]))
    cuda_states = state.get("cuda") or []
    if cuda_states and torch.cuda.is_available() and len(cuda_states) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all([s.cpu() for s in cuda_states])


def _python_state_to_plain(state: tuple[Any, ...]) -> dict[str, Any]:
    version, internal, gauss = state
    return {"version": int(version), "internal": torch.tensor(internal, dtype=torch.int64),
            "gauss": gauss}


def _plain_to_python_state(plain: dict[str, Any]) -> tuple[Any, ...]:
    return (plain["version"], tuple(int(v) for v in plain["internal"].tolist()), plain["gauss"])
