"""What a training checkpoint holds of a trainer, restoring it, and finding the checkpoint a run continues from.

The trainer's resumable state is :class:`Resumable` (the :class:`~assemblenet.engine.trainer.Trainer` satisfies
it): its position (step, epoch, step within the epoch, the last evaluated step), the model, optimiser, scheduler,
gradient scaler and EMA states, the RNG states, and what the run is (config, model spec, classes, history). The
file format is :mod:`assemblenet.engine.checkpoint`'s.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Mapping, Protocol

import torch
from torch import nn

from assemblenet.engine import checkpoint as ckpt
from assemblenet.engine.config import Config
from assemblenet.engine.distributed import barrier
from assemblenet.engine.optim import ModelEMA
from assemblenet.engine.weights import unwrap_model
from assemblenet.errors import ConfigError

logger = logging.getLogger(__name__)


class Resumable(Protocol):
    """What a checkpoint saves and restores of a trainer: the position and history it sets, and the modules
    whose states it loads in place."""

    step: int
    epoch: int
    step_in_epoch: int
    evaluated_step: int
    history: list[dict[str, Any]]

    @property
    def cfg(self) -> Config: ...
    @property
    def model(self) -> nn.Module: ...
    @property
    def optimizer(self) -> torch.optim.Optimizer: ...
    @property
    def scheduler(self) -> torch.optim.lr_scheduler.LRScheduler: ...
    @property
    def scaler(self) -> torch.amp.GradScaler: ...
    @property
    def ema(self) -> ModelEMA | None: ...
    @property
    def model_spec(self) -> dict[str, Any]: ...
    @property
    def class_names(self) -> list[str]: ...
    @property
    def multi_label(self) -> bool: ...


def training_state(trainer: Resumable) -> dict[str, Any]:
    """The checkpoint of ``trainer`` now (plain containers and tensors: ``torch.load(weights_only=True)`` reads
    it)."""
    return {
        "step": trainer.step, "epoch": trainer.epoch, "step_in_epoch": trainer.step_in_epoch,
        "evaluated_step": trainer.evaluated_step,
        "model": unwrap_model(trainer.model).state_dict(),
        "optimizer": trainer.optimizer.state_dict(),
        "scheduler": trainer.scheduler.state_dict(),
        "scaler": trainer.scaler.state_dict(),
        "ema": trainer.ema.state_dict() if trainer.ema is not None else None,
        "rng": ckpt.capture_rng_state(),
        "config": trainer.cfg.to_dict(),
        "model_spec": trainer.model_spec,
        "class_names": trainer.class_names,
        "multi_label": trainer.multi_label,
        "history": trainer.history,
    }


def restore_training_state(trainer: Resumable, state: Mapping[str, Any]) -> None:
    """Put ``trainer`` back where the checkpoint ``state`` was taken, RNG states included."""
    unwrap_model(trainer.model).load_state_dict(state["model"])
    trainer.optimizer.load_state_dict(state["optimizer"])
    trainer.scheduler.load_state_dict(state["scheduler"])
    if state.get("scaler"):
        trainer.scaler.load_state_dict(state["scaler"])
    if trainer.ema is not None and state.get("ema"):
        trainer.ema.load_state_dict(state["ema"])
    trainer.step = int(state["step"])
    trainer.epoch = int(state["epoch"])
    trainer.step_in_epoch = int(state["step_in_epoch"])
    trainer.evaluated_step = int(state.get("evaluated_step", -1))
    trainer.history = list(state.get("history", []))
    ckpt.restore_rng_state(state["rng"])


def checkpoint_to_resume(run_dir: Path, *, resume: bool, model_spec: Mapping[str, Any],
                         is_main: bool) -> tuple[Path, dict[str, Any]] | None:
    """The checkpoint a run in ``run_dir`` continues from, as (path, state on the CPU): its latest one, checked
    to hold the same model. Without ``resume`` none, and the main process removes the old ones (every process
    waits for it)."""
    if not resume:
        old = ckpt.list_checkpoints(run_dir)
        if old and is_main:
            logger.warning("train.resume is false: removing %d old checkpoints from %s", len(old), run_dir)
            for _, old_path in old:
                old_path.unlink(missing_ok=True)
        barrier()
        return None
    path = ckpt.latest_checkpoint(run_dir)
    if path is None:
        return None
    state = ckpt.load_checkpoint(path, map_location="cpu")  # restoring it moves it to the device
    saved_spec = state.get("model_spec")
    if saved_spec is not None and saved_spec != model_spec:
        raise ConfigError(f"{path} was trained with a different model ({saved_spec.get('name') or 'a graph'}); "
                          f"use another output.dir or set train.resume=false")
    return path, state
