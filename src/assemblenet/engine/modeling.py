"""Building the model a config describes (with its pretrained weights), and model-side training options.

What a model *is* (its spec, and building it from one) lives in :mod:`assemblenet.engine.model_spec`, which
:mod:`assemblenet.engine.weights` uses too.
"""

from __future__ import annotations

import contextlib
import logging
import math
from typing import Any, Iterable, Mapping

import torch
from torch import nn

from assemblenet.engine.model_spec import build_model_from_spec, model_spec_from_config
from assemblenet.engine.weights import load_weights_into
from assemblenet.errors import ConfigError
from assemblenet.runtime import native_bf16  # noqa: F401 - part of this module's API

logger = logging.getLogger(__name__)

def build_model(model_cfg: Any, num_classes: int, *, graph: Any = None) -> tuple[nn.Module, dict[str, Any]]:
    """The model for a ``ModelConfig`` plus its spec; loads ``model.pretrained`` weights when set."""
    spec = model_spec_from_config(model_cfg, num_classes, graph=graph)
    model = build_model_from_spec(spec)
    if model_cfg.pretrained:
        load_weights_into(model, model_cfg.pretrained)
        logger.info("initialised from %s", model_cfg.pretrained)
    return model, spec


# -- BatchNorm options ------------------------------------------------------------------------------------
_BN_TYPES = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)


def set_train_mode(model: nn.Module, *, frozen_bn: bool) -> None:
    """``model.train()``, keeping BN layers in eval mode (fixed running statistics) when ``frozen_bn``."""
    model.train()
    if frozen_bn:
        for module in model.modules():
            if isinstance(module, _BN_TYPES):
                module.eval()


def autocast_context(device: torch.device, amp: str) -> contextlib.AbstractContextManager[None]:
    """bf16 autocast on CPU or GPU, fp16 autocast on GPU, nothing for ``none``."""
    if amp == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    if amp == "fp16":
        return torch.autocast(device_type=device.type, dtype=torch.float16)
    return contextlib.nullcontext()


def to_channels_last(model: nn.Module) -> nn.Module:
    """Channels-last weights (5-D convs: ``channels_last_3d``, 4-D: ``channels_last``), matching the activations
    the model keeps channels-last: cuDNN then runs its NHWC kernels without transposes, and gradients have the
    parameters' strides, so DDP's buckets need no copy ("grad strides do not match bucket view strides")."""
    formats = {5: torch.channels_last_3d, 4: torch.channels_last}
    with torch.no_grad():
        for parameter in model.parameters():
            if parameter.dim() in formats:
                # empty_like + copy_ rather than .contiguous(): a 1x1 kernel counts as contiguous in both layouts,
                # and .contiguous() would keep the strides that its channels-last gradient does not have.
                laid_out = torch.empty_like(parameter.data, memory_format=formats[parameter.dim()])
                parameter.data = laid_out.copy_(parameter.data)
    return model


@torch.no_grad()
def precise_bn(model: nn.Module, batches: Iterable[Any], device: torch.device, *, amp: str = "none",
               channels_last: bool = False) -> int:
    """Re-estimate every BatchNorm's running statistics as the plain average over ``batches`` (clips as the
    training loader yields them), as PySlowFast's precise BN does. Returns the number of batches used.

    Short runs need it: with momentum 0.01 most running statistics are still near their initial values after
    a few dozen steps, and evaluation (which uses them) then measures initialisation, not training.
    ``amp`` and ``channels_last`` are the training's (the statistics are those of the activations it trains on).
    """
    layers = [m for m in model.modules() if isinstance(m, _BN_TYPES) and m.track_running_stats]
    if not layers:
        return 0
    momenta = [m.momentum for m in layers]
    was_training = model.training
    for layer in layers:
        layer.reset_running_stats()
        layer.momentum = None  # cumulative moving average: the plain mean over the batches
    model.train()
    used = 0
    try:
        for clip in batches:
            with autocast_context(device, amp):
                model(*model_inputs(clip, device, non_blocking=True, channels_last=channels_last))
            used += 1
    finally:
        for layer, momentum in zip(layers, momenta):
            layer.momentum = momentum
        model.train(was_training)
    return used


def connection_contributions(model: nn.Module, batches: Iterable[Any], device: torch.device, *,
                             channels_last: bool = False) -> dict[tuple[int, int], float]:
    """The RMS over ``batches`` (clips as the training loader yields them) of each edge's term in its target's
    fused input, measured in eval mode (see ``AssembleNet.connection_contributions``); empty without batches."""
    totals: dict[tuple[int, int], float] = {}
    used = 0
    was_training = model.training
    model.eval()
    try:
        for clip in batches:
            inputs = model_inputs(clip, device, channels_last=channels_last)
            for edge, energy in model.connection_contributions(*inputs).items():  # type: ignore[operator]
                totals[edge] = totals.get(edge, 0.0) + energy
            used += 1
    finally:
        model.train(was_training)
    return {edge: math.sqrt(total / used) for edge, total in totals.items()} if used else {}


def convert_sync_bn(model: nn.Module, device: torch.device) -> nn.Module:
    """SyncBatchNorm for multi-process GPU training; a warning and no change elsewhere (torch's SyncBatchNorm
    runs on accelerators only)."""
    if device.type != "cuda":
        logger.warning("model.sync_bn is ignored on %s: SyncBatchNorm needs a GPU", device.type)
        return model
    synced: nn.Module = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    return synced


def model_inputs(clip: Any, device: torch.device, non_blocking: bool = False,
                 dtype: torch.dtype | None = None, channels_last: bool = False) -> tuple[torch.Tensor | None, ...]:
    """Positional model inputs from a collated clip: a tensor, or a dict with ``rgb`` and optionally ``flow``
    and ``objects`` (``model(rgb)``, ``model(rgb, flow)`` or ``model(rgb, flow_or_None, objects)``); floating
    inputs cast to ``dtype`` when given (a bf16 model; integer object label ids stay as they are), and made
    ``channels_last_3d`` on the device when ``channels_last``. RGB may travel as uint8 (4x less host-to-device
    traffic than float32) and becomes float in [0, 1] on ``device`` (:func:`rgb_to_device`)."""
    if isinstance(clip, Mapping):
        rgb = clip.get("rgb")
        flow = clip.get("flow")
        objects = clip.get("objects")
        if rgb is None:
            raise ConfigError("data.modalities must include 'rgb': AssembleNet always reads the RGB clip")
        rest: tuple[torch.Tensor | None, ...] = () if flow is None else (flow,)
        if objects is not None:
            rest = (flow, objects)
    else:
        rgb, rest = clip, ()
    moved = (rgb_to_device(rgb, device, non_blocking=non_blocking, dtype=dtype),) + tuple(
        None if t is None else t.to(device, dtype=dtype if dtype is not None and t.is_floating_point() else None,
                                     non_blocking=non_blocking) for t in rest)
    if channels_last:
        moved = tuple(t.contiguous(memory_format=torch.channels_last_3d)
                      if t is not None and t.dim() == 5 and t.is_floating_point() else t for t in moved)
    return moved


def rgb_to_device(rgb: torch.Tensor, device: torch.device | str, *, non_blocking: bool = False,
                  dtype: torch.dtype | None = None) -> torch.Tensor:
    """An RGB clip batch on ``device`` as floats in [0, 1] (``dtype``, default float32): uint8 0-255 is copied
    as uint8 and scaled on the device; a float clip (already in [0, 1]) is only moved and cast."""
    if rgb.dtype == torch.uint8:
        rgb = rgb.to(device, non_blocking=non_blocking)
        return rgb.to(torch.float32).div_(255.0).to(dtype or torch.float32)
    return rgb.to(device, dtype=dtype if dtype is not None and rgb.is_floating_point() else None,
                  non_blocking=non_blocking)


# -- inference ------------------------------------------------------------------------------------------------
PRECISIONS = ("fp32", "bf16")


def eval_amp(train_amp: str, device: torch.device | str, precision: str = "fp32") -> str:
    """The autocast mode an evaluation runs under: none for a model already converted to bf16 weights
    (``precision='bf16'``) or trained without mixed precision; otherwise the training's ``amp`` on a GPU, bf16
    on a CPU (which has no fp16 autocast)."""
    if precision == "bf16" or train_amp == "none":
        return "none"
    return "bf16" if torch.device(device).type == "cpu" else train_amp


def prepare_for_inference(model: nn.Module, *, device: torch.device | str = "cpu", precision: str = "fp32",
                          fold_bn: bool = True) -> nn.Module:
    """Put a trained model in its fastest equivalent inference form, in place, and return it.

    Eval mode; BatchNorm folded into the convolution before it (same function to float rounding, one pass
    less over every activation); moved to ``device``; with ``precision='bf16'`` the weights converted to
    bfloat16 (the representation flow and the head still compute in float32). Feed it inputs of
    :func:`model_dtype` (the engine's ``evaluate`` and ``predict_video`` do).
    """
    from assemblenet.models import fold_batch_norm

    if precision not in PRECISIONS:
        raise ConfigError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    model.eval()
    if fold_bn:
        fold_batch_norm(model)
    model.to(device)
    if precision == "bf16":
        if not native_bf16(device):
            logger.warning("%s has no native bf16 kernels (CPU: AVX-512-BF16 or AMX); bf16 inference will be "
                           "much slower than fp32 here", torch.device(device))
        model.to(torch.bfloat16)
    return model


def model_dtype(model: nn.Module) -> torch.dtype:
    """The dtype of the model's convolution weights (float32 unless converted); inputs are cast to it."""
    for module in model.modules():
        if isinstance(module, nn.modules.conv._ConvNd):
            return module.weight.dtype
    return torch.float32


def check_object_maps(cfg: Any, *, graph: Any = None) -> None:
    """A model whose graph has an object stem needs object maps in the data: one ConfigError line otherwise,
    before any data or model is built."""
    from assemblenet.engine.model_spec import spec_graph
    from assemblenet.graph import StemType

    object_stems = spec_graph(cfg.model, graph=graph).stems_of(StemType.OBJECT)
    if not object_stems:
        return
    for split in ("train", "val"):
        section = cfg.data.train if split == "train" else cfg.data.val
        if section and not (section.get("object_root") or cfg.data.object_root):
            raise ConfigError(
                f"key 'data.object_root': the model's graph has an object stem (node {object_stems[0]}) but the "
                f"{split} data has no object maps; set data.object_root to the folder of per-frame object maps "
                "(e.g. `assemblenet make-synthetic --objects`)")
