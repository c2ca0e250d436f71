"""Optimiser, learning-rate schedule (linear warm-up then cosine decay, per step), linear lr scaling, EMA."""

from __future__ import annotations

import copy
import functools
import math
from typing import Any, Callable

import torch
from torch import nn


def scaled_lr(lr: float, global_batch_size: int, reference_batch_size: int, scale: bool = True) -> float:
    """Linear scaling rule: ``lr`` is the rate for ``reference_batch_size`` clips per step."""
    return lr * global_batch_size / reference_batch_size if scale else lr


CONNECTION_GROUP = "connections"
ATTENTION_GROUP = "peer_attention"


def is_connection_parameter(name: str) -> bool:
    """The learnable connection logits of the sigmoid fusions (``...fusion.edge_logits``)."""
    return name.endswith("edge_logits")


def is_peer_attention_parameter(name: str) -> bool:
    """The softmax logits over the peers of AssembleNet++ peer attention (``...peer_logits``)."""
    return name.endswith("peer_logits")


def parameter_groups(model: nn.Module, weight_decay: float, *, connection_lr_multiplier: float = 1.0,
                     attention_lr_multiplier: float = 1.0) -> list[dict[str, Any]]:
    """Weight decay on conv/linear weights only; none on 1-D tensors (BN scales and shifts, biases) or the
    connection logits, which decay would pull towards sigmoid(0) = 0.5 and so bias the connection search.

    The connection logits form their own group (``name: "connections"``) whose rate is the peak rate times
    ``connection_lr_multiplier``: a node's inputs feed conv -> BN, so only their relative sizes matter and
    their gradients are small; a larger rate lets a short proxy run separate them. The peer-attention softmax
    logits (``name: "peer_attention"``, rate times ``attention_lr_multiplier``) are in the same position: their
    gradients are 1e-3 of the connection logits', so at the base rate a short proxy leaves them at their
    initial values and the one-shot attention search would read off noise.
    """
    decay, no_decay, connections, attention = [], [], [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        if is_connection_parameter(name):
            connections.append(param)
        elif is_peer_attention_parameter(name):
            attention.append(param)
        elif param.ndim <= 1:
            no_decay.append(param)
        else:
            decay.append(param)
    groups: list[dict[str, Any]] = []
    if decay:
        groups.append({"params": decay, "weight_decay": weight_decay, "name": "decay", "lr_multiplier": 1.0})
    if no_decay:
        groups.append({"params": no_decay, "weight_decay": 0.0, "name": "no_decay", "lr_multiplier": 1.0})
    if connections:
        groups.append({"params": connections, "weight_decay": 0.0, "name": CONNECTION_GROUP,
                       "lr_multiplier": float(connection_lr_multiplier)})
    if attention:
        groups.append({"params": attention, "weight_decay": 0.0, "name": ATTENTION_GROUP,
                       "lr_multiplier": float(attention_lr_multiplier)})
    return groups


def build_optimizer(model: nn.Module, optim_cfg: Any, lr: float) -> torch.optim.Optimizer:
    groups = parameter_groups(model, optim_cfg.weight_decay,
                              connection_lr_multiplier=getattr(optim_cfg, "connection_lr_multiplier", 1.0),
                              attention_lr_multiplier=getattr(optim_cfg, "attention_lr_multiplier", 1.0))
    for group in groups:
        group["lr"] = lr * group["lr_multiplier"]
    if optim_cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=optim_cfg.momentum,
                               nesterov=optim_cfg.nesterov and optim_cfg.momentum > 0)
    if optim_cfg.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=lr)
    raise ValueError(f"unknown optimizer {optim_cfg.optimizer!r}")


def lr_factor(step: int, *, total_steps: int, warmup_steps: int, schedule: str = "cosine",
              min_factor: float = 0.0) -> float:
    """Multiplier of the peak rate for the update with index ``step`` (0-based).

    Warm-up rises linearly to 1 over ``warmup_steps`` updates (the first update uses 1/warmup_steps); cosine
    then decays from 1 to ``min_factor`` at ``total_steps``.
    """
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    if schedule == "constant":
        return 1.0
    span = max(1, total_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / span)
    return min_factor + (1.0 - min_factor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def build_scheduler(optimizer: torch.optim.Optimizer, *, total_steps: int, warmup_steps: int, schedule: str,
                    peak_lr: float, min_lr: float, connection_warmup: bool = True
                    ) -> torch.optim.lr_scheduler.LambdaLR:
    """Per-step warm-up + decay for every group; the connection group skips the warm-up when
    ``connection_warmup`` is false (its logits start at 0 and have nothing to protect)."""
    min_factor = min(1.0, min_lr / peak_lr) if peak_lr > 0 else 0.0

    def factor(step: int, warmup: int) -> float:
        return lr_factor(step, total_steps=total_steps, warmup_steps=warmup, schedule=schedule,
                         min_factor=min_factor)

    lambdas: list[Callable[[int], float]] = []
    for group in optimizer.param_groups:
        warmup = 0 if group.get("name") == CONNECTION_GROUP and not connection_warmup else warmup_steps
        lambdas.append(functools.partial(factor, warmup=warmup))
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambdas)


class ModelEMA:
    """Exponential moving average of a model's parameters and buffers.

    The decay ramps up as ``min(decay, (1 + n) / (10 + n))`` after n updates (as TF's
    ``ExponentialMovingAverage(num_updates=...)``), so early averages are not dominated by the random
    initialisation. Integer buffers are copied.
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.num_updates = 0
        self.module = copy.deepcopy(model).eval()
        for param in self.module.parameters():
            param.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """One averaging step: a few fused ``torch._foreach`` kernels over all tensors (no Python loop per
        tensor, no host read)."""
        self.num_updates += 1
        decay = min(self.decay, (1 + self.num_updates) / (10 + self.num_updates))
        source = model.state_dict()
        floats_ema, floats_new, others_ema, others_new = [], [], [], []
        for key, value in self.module.state_dict().items():
            new = source[key].detach()
            if value.dtype.is_floating_point:
                floats_ema.append(value)
                floats_new.append(new if new.dtype == value.dtype else new.to(value.dtype))
            else:
                others_ema.append(value)
                others_new.append(new)
        if floats_ema:
            torch._foreach_mul_(floats_ema, decay)
            torch._foreach_add_(floats_ema, floats_new, alpha=1 - decay)
        if others_ema:
            torch._foreach_copy_(others_ema, others_new)

    def state_dict(self) -> dict[str, Any]:
        return {"module": self.module.state_dict(), "num_updates": self.num_updates, "decay": self.decay}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.module.load_state_dict(state["module"])
        self.num_updates = int(state["num_updates"])
