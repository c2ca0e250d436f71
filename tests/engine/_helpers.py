"""Shared pieces of the engine and engine-CLI tests: a tiny synthetic set and a tiny training config.

Everything is sized for a loaded 2-core CPU: depth 26, width 1/8, 4 frames of 32 px, two TV-L1 iterations.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

# 20 single-action training videos (5 steps of 4 per epoch) and 11 validation videos (an odd count, so that
# two processes get uneven evaluation shards).
SYNTHETIC_KW = dict(num_videos=36, num_classes=6, size=32, num_frames=12, seed=4, multi_label_fraction=0.2,
                    val_fraction=0.3, progress=False)
TRAIN_VIDEOS, VAL_VIDEOS = 20, 11


def make_synthetic_set(root: Path) -> Path:
    from assemblenet.data import make_synthetic

    if not (root / "synthetic.json").is_file():
        make_synthetic(root, **SYNTHETIC_KW)
    return root


def tiny_config(synthetic_root: Path, output_dir: Path | None, **sections: Any) -> dict[str, Any]:
    """A config dict for a few-second run; ``sections`` update the named sections (e.g. optim={...})."""
    cfg: dict[str, Any] = {
        "name": "tiny",
        "seed": 0,
        "model": {"name": "assemblenet50_searchable", "depth": 26, "width_multiplier": 0.125, "flow_iterations": 2},
        "data": {"dataset": "synthetic", "train": {"root": str(synthetic_root), "split": "train"},
                 "val": {"root": str(synthetic_root), "split": "val"}, "num_frames": 4, "crop_size": 32,
                 "batch_size": 4, "num_workers": 0},
        "optim": {"lr": 0.1, "reference_batch_size": 4, "epochs": 2, "warmup_epochs": 1},
        "train": {"num_threads": 1, "progress": False, "log_every_steps": 1},
        "eval": {"num_clips": 1, "num_crops": 1, "batch_size": 8},
        "output": {"dir": str(output_dir) if output_dir is not None else None, "tensorboard": False},
    }
    for section, values in sections.items():
        if isinstance(values, dict):
            cfg[section] = {**cfg.get(section, {}), **copy.deepcopy(values)}
        else:
            cfg[section] = values
    return cfg


def save_tiny_weights(path: Path, *, num_classes: int = 6, class_names: list[str] | None = None,
                      seed: int = 0) -> Path:
    """An untrained tiny model with randomised BN statistics, saved as weights + sidecar (what training
    writes), for the evaluate/predict/export tests."""
    import torch

    from assemblenet.engine.config import load_config
    from assemblenet.engine.modeling import build_model
    from assemblenet.engine.weights import save_weights
    from assemblenet.input_spec import InputSpec

    torch.manual_seed(seed)
    cfg = load_config({"model": {"name": "assemblenet50_searchable", "depth": 26, "width_multiplier": 0.125,
                                 "flow_iterations": 2}, "data": {"num_frames": 4, "crop_size": 32}})
    model, spec = build_model(cfg.model, num_classes)
    with torch.no_grad():
        for name, buffer in model.named_buffers():
            if name.endswith("running_var"):
                buffer.uniform_(0.5, 2.0)
        for name, param in model.named_parameters():
            if name.endswith(".weight") and param.ndim == 1:
                param.uniform_(0.5, 1.5)  # the zero-initialised last BN of each block would hide the blocks
    return save_weights(model, path, model_spec=spec, class_names=class_names, multi_label=False,
                        input_spec=InputSpec(num_frames=4, crop_size=32), config=cfg.to_dict())
