"""Trained weights as safetensors plus a JSON sidecar, and building a model from them.

File layout (``assemblenet-weights/1``):

- ``NAME.safetensors``: the model's ``state_dict()`` exactly as ``model.state_dict()`` names it (no DDP
  ``module.`` prefix; buffers such as BN running statistics included), every tensor contiguous and unshared.
  Header metadata: ``{"format": "pt", "assemblenet": "assemblenet-weights/1"}``.
- ``NAME.safetensors.json`` (the file name plus ``.json``)::

      {"format": "assemblenet-weights/1",
       "model": {"name": "assemblenet50" | null,     # create_model preset, or null when built from a graph
                 "graph": {...} | null,              # graph_to_dict() of the unscaled input graph
                 "num_classes": 157,
                 "overrides": {"depth": 50, "width_multiplier": 1.0, ...}},  # create_model/build_assemblenet kwargs
       "class_names": [...] | null,
       "multi_label": true | false | null,
       "input": {"num_frames": 32, "crop_size": 224, "modalities": ["rgb"]},   # InputSpec.sidecar_entry()
       "config": {...} | null,                       # the full training config
       "metrics": {...}}                             # final validation metrics

``create_model(name, num_classes=K, checkpoint_path=FILE, **overrides)`` loads such a file directly;
:func:`load_model` rebuilds the model from the sidecar alone.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

from assemblenet.engine.model_spec import build_model_from_spec
from assemblenet.errors import CheckpointError
from assemblenet.fileio import atomic_write_bytes, json_safe
from assemblenet.input_spec import InputSpec

WEIGHTS_FORMAT = "assemblenet-weights/1"
SIDECAR_SUFFIX = ".json"


def sidecar_path(weights_path: str | os.PathLike[str]) -> Path:
    path = Path(weights_path)
    return path.with_name(path.name + SIDECAR_SUFFIX)


def unwrap_model(model: nn.Module) -> nn.Module:
    """The module inside DDP / torch.compile wrappers."""
    while True:
        if hasattr(model, "module") and isinstance(model.module, nn.Module):
            model = model.module
        elif hasattr(model, "_orig_mod") and isinstance(model._orig_mod, nn.Module):
            model = model._orig_mod
        else:
            return model


def save_weights(model: nn.Module, path: str | os.PathLike[str], *, model_spec: Mapping[str, Any],
                 class_names: list[str] | None = None, multi_label: bool | None = None,
                 input_spec: InputSpec | None = None, config: Mapping[str, Any] | None = None,
                 metrics: Mapping[str, Any] | None = None) -> Path:
    """Write ``model``'s weights and the sidecar, each atomically. Returns the weights path."""
    from safetensors.torch import save

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {key: tensor.detach().cpu().contiguous().clone() for key, tensor in
             unwrap_model(model).state_dict().items()}
    atomic_write_bytes(path, save(state, metadata={"format": "pt", "assemblenet": WEIGHTS_FORMAT}))
    sidecar = {
        "format": WEIGHTS_FORMAT,
        "model": dict(model_spec),
        "class_names": list(class_names) if class_names is not None else None,
        "multi_label": multi_label,
        "input": input_spec.sidecar_entry() if input_spec is not None else {},
        "config": dict(config) if config is not None else None,
        "metrics": dict(metrics or {}),
    }
    atomic_write_bytes(sidecar_path(path), json.dumps(json_safe(sidecar), indent=1).encode("utf-8"))
    return path


def read_sidecar(weights_path: str | os.PathLike[str]) -> dict[str, Any]:
    """The sidecar of a weights file; a clear error when the weights or the sidecar are missing."""
    weights_path = Path(weights_path)
    if not weights_path.is_file():
        raise CheckpointError(f"checkpoint not found: {weights_path}")
    side = sidecar_path(weights_path)
    if not side.is_file():
        raise CheckpointError(f"{weights_path}: its sidecar {side.name} is missing, so the model it holds is unknown")
    try:
        data = json.loads(side.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{side}: not valid JSON ({exc})") from None
    if not isinstance(data, dict) or data.get("format") != WEIGHTS_FORMAT or "model" not in data:
        raise CheckpointError(f"{side}: not an {WEIGHTS_FORMAT} sidecar")
    return data


def load_state_dict_file(weights_path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    weights_path = Path(weights_path)
    if not weights_path.is_file():
        raise CheckpointError(f"checkpoint not found: {weights_path}")
    try:
        return load_file(str(weights_path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{weights_path}: not a readable safetensors file ({exc})") from None


def load_weights_into(model: nn.Module, weights_path: str | os.PathLike[str]) -> nn.Module:
    """Load a weights file strictly into ``model``, with one error naming the mismatch."""
    state = load_state_dict_file(weights_path)
    target = unwrap_model(model)
    try:
        result = target.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shape mismatches raise even when not strict
        details = [line.strip() for line in str(exc).splitlines()[1:] if line.strip()]
        raise CheckpointError(f"{weights_path} does not fit this model: {details[0] if details else exc}"
                              + (f" (and {len(details) - 1} more)" if len(details) > 1 else "")) from None
    problems = []
    if result.missing_keys:
        problems.append(f"missing {len(result.missing_keys)} tensors, e.g. {result.missing_keys[:3]}")
    if result.unexpected_keys:
        problems.append(f"{len(result.unexpected_keys)} unexpected tensors, e.g. {result.unexpected_keys[:3]}")
    if problems:
        raise CheckpointError(f"{weights_path} does not fit this model: " + "; ".join(problems))
    return model


def load_model(weights_path: str | os.PathLike[str]) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the model a weights file describes and load its weights. Returns (model in eval mode, sidecar)."""
    sidecar = read_sidecar(weights_path)
    try:
        model = build_model_from_spec(sidecar["model"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{sidecar_path(weights_path)}: cannot build the model it describes ({exc})") from None
    load_weights_into(model, weights_path)
    return model.eval(), sidecar


@dataclass(frozen=True)
class TrainedModelInfo:
    """What a trained model's files say about it: the input it reads (``predict`` and ``export`` feed it that;
    the sidecar's ``input`` entry, else the training config's ``data`` section, else the defaults), its classes,
    whether they are multi-label, the training config, the file it came from and its model spec."""

    input: InputSpec
    class_names: list[str] | None
    multi_label: bool
    config: dict[str, Any]
    source: str
    model_spec: dict[str, Any]


def load_trained_model(path: str | os.PathLike[str], *, use_ema: bool = True) -> tuple[nn.Module, TrainedModelInfo]:
    """A trained model from a weights file (``.safetensors`` with sidecar), a training checkpoint (``.pt``)
    or a run folder (its ``model.safetensors``, else its latest checkpoint).

    Returns ``(model in eval mode, info)``.
    """
    from assemblenet.engine import checkpoint as ckpt

    path = Path(path)
    if path.is_dir():
        if (path / "model.safetensors").is_file():
            path = path / "model.safetensors"
        else:
            latest = ckpt.latest_checkpoint(path)
            if latest is None:
                raise CheckpointError(f"{path}: no model.safetensors and no checkpoints/step_*.pt in this folder")
            path = latest
    if not path.exists():
        raise CheckpointError(f"checkpoint not found: {path}")
    if path.suffix == ".safetensors":
        model, sidecar = load_model(path)
        config = sidecar.get("config") or {}
        return model, TrainedModelInfo(
            input=InputSpec.from_sidecar(sidecar.get("input") or {}, config.get("data", {})),
            class_names=sidecar.get("class_names"), multi_label=bool(sidecar.get("multi_label")), config=config,
            source=str(path), model_spec=sidecar["model"])
    state = ckpt.load_checkpoint(path)
    spec = state.get("model_spec")
    if spec is None:
        raise CheckpointError(f"{path}: the checkpoint does not say which model it holds (no model_spec)")
    model = build_model_from_spec(spec)
    weights = state["model"]
    if use_ema and state.get("ema") and state.get("config", {}).get("eval", {}).get("use_ema", True):
        weights = state["ema"]["module"]
    try:
        model.load_state_dict(weights)
    except RuntimeError as exc:
        raise CheckpointError(f"{path} does not fit the model it names: {str(exc).splitlines()[0]}") from None
    config = state.get("config") or {}
    return model.eval(), TrainedModelInfo(
        input=InputSpec.from_sidecar({}, config.get("data", {})), class_names=state.get("class_names"),
        multi_label=bool(state.get("multi_label")), config=config, source=str(path), model_spec=spec)
