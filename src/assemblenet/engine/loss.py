"""The training loss: what it is (:func:`training_loss`, :func:`loss_kind`), and keeping it on the device between
log points, so that a training step never waits for the host.

A :class:`LossWindow` sums each step's loss on the device and remembers the first step whose loss was not finite;
reading it is one host read (under ``torchrun`` one all-reduce) per log point, and finding the diverged step
costs a second only when there is one.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from assemblenet.engine.distributed import all_reduce_
from assemblenet.errors import AssembleNetError, ConfigError

LossKind = Literal["bce", "ce"]


class TrainingDivergedError(AssembleNetError):
    """The loss became NaN or infinite; the run stopped and kept its last good checkpoint."""


def loss_kind(configured: str, multi_label: bool) -> LossKind:
    """The loss ``train.loss`` names for this data: ``auto`` is BCE for multi-label data, CE otherwise."""
    kind = ("bce" if multi_label else "ce") if configured == "auto" else configured
    if kind == "ce" and multi_label:
        raise ConfigError("key 'train.loss': 'ce' needs single-label data; this dataset is multi-label")
    return "bce" if kind == "bce" else "ce"


def training_loss(logits: torch.Tensor, target: torch.Tensor, *, kind: LossKind, num_classes: int,
                  label_smoothing: float) -> torch.Tensor:
    """The mean loss of a batch, in float32. BCE takes class indices, multi-hot targets or per-frame label sets
    (``[B, T, K]``: the clip's label set); smoothing pulls each target towards 0.5. CE takes class indices."""
    logits = logits.float()
    if kind == "bce":
        if target.dim() == 3:  # per-frame targets: the clip's label set
            target = target.amax(dim=1)
        if target.dim() == 1:
            target = nn.functional.one_hot(target, num_classes).float()
        target = target.float()
        if label_smoothing:
            target = target * (1 - label_smoothing) + 0.5 * label_smoothing
        return nn.functional.binary_cross_entropy_with_logits(logits, target)
    return nn.functional.cross_entropy(logits, target.long(), label_smoothing=label_smoothing)


def divergence_error(step: int, value: float, *, steps_per_epoch: int,
                     last_checkpoint: object) -> TrainingDivergedError:
    """The error that stops a run whose loss became ``value`` (not finite) at ``step``, naming what was kept."""
    where = f"step {step} (epoch {(step - 1) // steps_per_epoch})"
    kept = f"the last good checkpoint is {last_checkpoint}" if last_checkpoint else \
        "no checkpoint had been written yet"
    return TrainingDivergedError(
        f"training stopped: the loss is {value} at {where}; {kept}. Lower optim.lr, set optim.grad_clip_norm, "
        "or check the data")


class LossWindow:
    """The summed loss since the last read, and the first non-finite step, as device tensors (float64; float32 on
    MPS, which has no float64). ``step`` is the step count the window starts from."""

    def __init__(self, device: torch.device, step: int) -> None:
        accumulate = torch.float32 if device.type == "mps" else torch.float64
        self.loss_sum = torch.zeros((), dtype=accumulate, device=device)
        self.device_step = torch.full((), step, dtype=torch.int64, device=device)
        self.bad_step = torch.full((), -1, dtype=torch.int64, device=device)  # first non-finite step
        self.bad_value = torch.zeros((), dtype=accumulate, device=device)

    def record(self, loss: torch.Tensor) -> None:
        """Add one step's loss (a device scalar) without reading it; a non-finite loss adds nothing and marks its
        step when it is the first."""
        loss = loss.to(self.loss_sum.dtype)
        finite = torch.isfinite(loss)
        self.device_step.add_(1)
        self.loss_sum.add_(torch.where(finite, loss, torch.zeros_like(loss)))
        first = ~finite & (self.bad_step < 0)
        self.bad_step = torch.where(first, self.device_step, self.bad_step)
        self.bad_value = torch.where(first, loss, self.bad_value)

    def read_sum(self) -> tuple[float, bool]:
        """The summed loss over every process, and whether any process saw a non-finite one: one host read of
        both (and one all-reduce under ``torchrun``)."""
        window = torch.stack([self.loss_sum, (self.bad_step >= 0).to(self.loss_sum.dtype)])
        total, diverged = all_reduce_(window, "sum").tolist()
        return float(total), bool(diverged)

    def reset(self) -> None:
        self.loss_sum.zero_()

    def first_non_finite(self) -> tuple[int, float] | None:
        """The earliest step, over every process, whose loss was not finite, with its value (NaN on a process that
        did not see it); ``None`` when every loss was finite."""
        never = torch.iinfo(torch.int64).max
        first = torch.where(self.bad_step < 0, torch.full_like(self.bad_step, never), self.bad_step)
        step = int(all_reduce_(first.clone(), "min").item())
        if step == never:
            return None
        mine = int(self.bad_step.item()) == step
        return step, float(self.bad_value.item()) if mine else float("nan")
