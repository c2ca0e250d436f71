"""Building the model a config (or a weights sidecar) describes, and model-side training options."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Iterable, Mapping

import torch
from torch import nn

from assemblenet.errors import ConfigError

logger = logging.getLogger(__name__)

# ModelConfig fields passed on to create_model / build_assemblenet when set.
_BUILD_KEYS = ("depth", "width_multiplier", "learnable_weights", "max_pool_predictions", "dropout", "flow_mode",
               "flow_normalization", "flow_iterations")


def resolve_graph(source: Any):
    """An :class:`AssembleNetGraph` from a graph, a graph file (YAML/JSON, ours or official) or an official
    structure name (``asn50``, ``asn101``, ``asnp50``)."""
    from assemblenet.graph import AssembleNetGraph, load_graph, official_graph, official_graph_names

    if source is None or isinstance(source, AssembleNetGraph):
        return source
    text = str(source)
    if text in official_graph_names():
        return official_graph(text)
    if not Path(text).is_file():
        raise ConfigError(f"key 'model.graph': {text!r} is neither a graph file nor one of "
                          f"{official_graph_names()}")
    return load_graph(text)


def model_spec_from_config(model_cfg: Any, num_classes: int, *, graph: Any = None) -> dict[str, Any]:
    """The sidecar ``model`` entry (see :mod:`assemblenet.engine.weights`) for a ``ModelConfig``.

    ``graph`` (an AssembleNetGraph) replaces ``model_cfg.graph`` and the preset.
    """
    from assemblenet.graph import graph_to_dict

    overrides: dict[str, Any] = {}
    for key in _BUILD_KEYS:
        value = getattr(model_cfg, key)
        if value is not None:
            overrides[key] = value
    graph = resolve_graph(graph if graph is not None else model_cfg.graph)
    if graph is not None:
        overrides.setdefault("depth", 50)
        return {"name": None, "graph": graph_to_dict(graph), "num_classes": int(num_classes), "overrides": overrides}
    return {"name": model_cfg.name, "graph": None, "num_classes": int(num_classes), "overrides": overrides}


def build_model_from_spec(spec: Mapping[str, Any]) -> nn.Module:
    """Build (untrained) the model a spec describes."""
    from assemblenet.errors import GraphError
    from assemblenet.graph import graph_from_dict
    from assemblenet.models import build_assemblenet, create_model, list_models

    overrides = dict(spec.get("overrides") or {})
    num_classes = int(spec["num_classes"])
    try:
        if spec.get("graph") is not None:
            graph = graph_from_dict(spec["graph"], source="model.graph")
            return build_assemblenet(graph=graph, num_classes=num_classes, **overrides)
        name = spec.get("name")
        if name not in list_models():
            raise ConfigError(f"key 'model.name': unknown model {name!r}; available: {list_models()}")
        return create_model(name, num_classes=num_classes, **overrides)
    except GraphError:
        raise
    except (TypeError, ValueError) as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"model section: {exc}") from exc


def build_model(model_cfg: Any, num_classes: int, *, graph: Any = None) -> tuple[nn.Module, dict[str, Any]]:
    """The model for a ``ModelConfig`` plus its spec; loads ``model.pretrained`` weights when set."""
    from assemblenet.engine.weights import load_weights_into

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


@torch.no_grad()
def precise_bn(model: nn.Module, batches: Iterable[Any], device: torch.device) -> int:
    """Re-estimate every BatchNorm's running statistics as the plain average over ``batches`` (clips as the
    training loader yields them), as PySlowFast's precise BN does. Returns the number of batches used.

    Short runs need it: with momentum 0.01 most running statistics are still near their initial values after
    a few dozen steps, and evaluation (which uses them) then measures initialisation, not training.
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
            model(*model_inputs(clip, device))
            used += 1
    finally:
        for layer, momentum in zip(layers, momenta):
            layer.momentum = momentum
        model.train(was_training)
    return used


def convert_sync_bn(model: nn.Module, device: torch.device) -> nn.Module:
    """SyncBatchNorm for multi-process GPU training; a warning and no change elsewhere (torch's SyncBatchNorm
    runs on accelerators only)."""
    if device.type != "cuda":
        logger.warning("model.sync_bn is ignored on %s: SyncBatchNorm needs a GPU", device.type)
        return model
    return nn.SyncBatchNorm.convert_sync_batchnorm(model)


def model_inputs(clip: Any, device: torch.device, non_blocking: bool = False) -> tuple[torch.Tensor, ...]:
    """Positional model inputs from a collated clip: a tensor, or a dict with ``rgb`` and optionally
    ``flow`` (``model(rgb, flow)``)."""
    if isinstance(clip, Mapping):
        rgb = clip.get("rgb")
        flow = clip.get("flow")
        if rgb is None:
            raise ConfigError("data.modalities must include 'rgb': AssembleNet always reads the RGB clip")
        inputs = (rgb,) if flow is None else (rgb, flow)
    else:
        inputs = (clip,)
    return tuple(t.to(device, non_blocking=non_blocking) for t in inputs)
