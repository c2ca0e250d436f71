"""The experiment config: one schema for model, data, optimisation, training, evaluation and output.

A config is a YAML file whose sections mirror the dataclasses below. A file may name a ``base`` file (path
relative to itself) whose values it overrides. Command-line overrides use dotted keys
(``--set optim.lr=0.1``, ``--set data.train.csv_path=/data/train.csv``); values are parsed as YAML scalars or
flow sequences, so ``0.1`` is a float, ``null`` is None and ``[rgb, flow]`` is a list.

Everything is validated before any work starts, by the shared schema layer :mod:`assemblenet.config_schema`:
an unknown key, a value of the wrong type or one out of range raises one
:class:`~assemblenet.errors.ConfigError` naming the file and the dotted key
(``configs/synthetic.yaml: key 'optim.lr': expected a number, got 'fast'``).

Learning-rate scaling: ``optim.lr`` is the rate for a global batch of ``optim.reference_batch_size`` clips;
the rate used is ``lr * global_batch / reference_batch_size`` (linear scaling, Goyal et al. 2017), where
``global_batch = data.batch_size * world_size``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Literal, Mapping, Optional

from assemblenet.config_schema import (
    Checker,
    Override,
    apply_overrides,  # noqa: F401 - part of this module's API (tests, callers building raw configs)
    describe,
    dump_yaml,
    parse_dataclass,
    parse_override,  # noqa: F401 - part of this module's API
    read_config,
    read_yaml,
    to_plain,
)
from assemblenet.fileio import atomic_write_text


@dataclass
class ModelConfig:
    """Which network to build.

    ``name`` is a ``create_model`` preset (``assemblenet50``, ``assemblenet101``, ``assemblenet50_searchable``,
    ``assemblenet101_asn101``). ``graph`` replaces it with a graph file (our YAML or the official nested-list
    JSON) or an official structure name (``asn50``, ``asn101``, ``asnp50``), built with ``build_assemblenet``.
    """

    name: str = "assemblenet50"
    graph: Optional[str] = None
    num_classes: Optional[int] = None  # checked against the dataset; needed by predict/export without data
    depth: Optional[int] = None  # None: the preset's (50 for a graph)
    width_multiplier: float = 1.0
    learnable_weights: Optional[bool] = None
    max_pool_predictions: bool = False
    dropout: float = 0.0
    flow_mode: Literal["rgb", "precomputed"] = "rgb"
    flow_normalization: Literal["clip", "batch"] = "clip"
    flow_iterations: int = 40
    pretrained: Optional[str] = None  # safetensors weights to start from (before any resume)
    frozen_bn: bool = False  # BN layers keep their running statistics (eval mode) while training
    sync_bn: bool = False  # SyncBatchNorm under DDP on GPU


@dataclass
class DataConfig:
    """Datasets. ``train`` and ``val`` are keyword arguments for ``assemblenet.data.build_dataset(dataset,
    ...)`` (paths, annotation options); the shared clip settings below are added to both unless a split sets
    them itself."""

    dataset: str = "synthetic"
    train: dict = field(default_factory=dict)
    val: dict = field(default_factory=dict)
    num_frames: int = 32
    stride: int = 1
    crop_size: int = 224
    decode_short_side: Optional[int] = None
    modalities: list = field(default_factory=lambda: ["rgb"])
    batch_size: int = 8  # clips per process and step
    num_workers: int = 4
    scan: bool = False  # check every video before training and drop the unreadable ones


@dataclass
class OptimConfig:
    """Optimiser and schedule: SGD with momentum, linear warm-up then cosine decay, per step."""

    optimizer: Literal["sgd", "adamw"] = "sgd"
    lr: float = 1.6
    reference_batch_size: int = 1024
    scale_lr: bool = True
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 1e-4
    schedule: Literal["cosine", "constant"] = "cosine"
    min_lr: float = 0.0
    warmup_epochs: float = 5.0
    warmup_steps: Optional[int] = None  # overrides warmup_epochs
    epochs: int = 44
    max_steps: Optional[int] = None  # total updates, replacing epochs (step budgets of proxy runs)
    grad_clip_norm: Optional[float] = None
    label_smoothing: float = 0.0
    # The learnable connection logits: their own rate (peak lr x multiplier), no weight decay, and optionally
    # no warm-up. Only their relative sizes matter (each node's fused input feeds conv -> BN).
    connection_lr_multiplier: float = 1.0
    connection_warmup: bool = True


@dataclass
class TrainConfig:
    """The training loop: precision, EMA, checkpointing, logging."""

    amp: Literal["none", "bf16", "fp16"] = "none"
    ema_decay: Optional[float] = None  # e.g. 0.999; evaluation then uses the EMA weights
    loss: Literal["auto", "bce", "ce"] = "auto"  # auto: BCE for multi-label data, CE otherwise
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    num_threads: Optional[int] = None  # torch intra-op threads
    checkpoint_every_steps: int = 0  # 0: only at each epoch end
    keep_checkpoints: int = 2
    log_every_steps: int = 10
    eval_every_epochs: int = 1  # 0: only at the end
    progress: bool = True
    deterministic: bool = False
    resume: bool = True  # continue from the latest checkpoint in output.dir
    # Precise BN: before each validation, re-estimate BatchNorm statistics as the plain average over this many
    # training batches (0: keep the running averages). Short runs need it: momentum 0.01 barely moves them.
    precise_bn_batches: int = 0


@dataclass
class EvalConfig:
    """Multi-view testing and metrics."""

    num_clips: int = 10
    num_crops: int = 3
    aggregation: Literal["mean", "max"] = "mean"
    batch_size: int = 8
    num_frames: Optional[int] = None  # None: data.num_frames
    metric: Literal["auto", "map", "map_sklearn", "top1", "top5", "mean_class_accuracy"] = "auto"
    use_ema: bool = True


@dataclass
class OutputConfig:
    dir: Optional[str] = "runs/experiment"  # None: nothing is written (in-memory runs, e.g. search proxies)
    tensorboard: bool = True
    save_predictions: bool = True


@dataclass
class Config:
    name: str = "experiment"
    seed: int = 0
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    output: OutputConfig = field(default_factory=OutputConfig)

    def to_dict(self) -> dict[str, Any]:
        return to_plain(self)

    def to_yaml(self) -> str:
        return dump_yaml(self.to_dict())


# -- construction and validation ------------------------------------------------------------------------
def _check_values(cfg: Config, source: str | os.PathLike | None) -> None:
    """Range checks the types cannot express; each message ends with the value found."""
    check = Checker(source)

    def need(condition: bool, key: str, message: str) -> None:
        value: Any = cfg
        for part in key.split("."):
            value = getattr(value, part)
        check.need(condition, key, f"{message}, got {value!r}")

    need(cfg.model.width_multiplier > 0, "model.width_multiplier", "must be positive")
    need(cfg.model.depth in (None, 26, 38, 50, 68, 77, 101), "model.depth", "must be one of 26, 38, 50, 68, 77, 101")
    need(cfg.model.num_classes is None or cfg.model.num_classes >= 1, "model.num_classes", "must be >= 1")
    need(0 <= cfg.model.dropout < 1, "model.dropout", "must be in [0, 1)")
    need(cfg.model.flow_iterations >= 1, "model.flow_iterations", "must be >= 1")
    need(cfg.data.num_frames >= 1, "data.num_frames", "must be >= 1")
    need(cfg.data.stride >= 1, "data.stride", "must be >= 1")
    need(cfg.data.crop_size >= 8, "data.crop_size", "must be >= 8")
    need(cfg.data.batch_size >= 1, "data.batch_size", "must be >= 1")
    need(cfg.data.num_workers >= 0, "data.num_workers", "must be >= 0")
    need(bool(cfg.data.modalities) and all(m in ("rgb", "flow") for m in cfg.data.modalities),
         "data.modalities", "must be a non-empty list of 'rgb'/'flow'")
    need(cfg.optim.lr > 0, "optim.lr", "must be positive")
    need(cfg.optim.reference_batch_size >= 1, "optim.reference_batch_size", "must be >= 1")
    need(0 <= cfg.optim.momentum < 1, "optim.momentum", "must be in [0, 1)")
    need(cfg.optim.weight_decay >= 0, "optim.weight_decay", "must be >= 0")
    need(0 <= cfg.optim.min_lr, "optim.min_lr", "must be >= 0")
    need(cfg.optim.warmup_epochs >= 0, "optim.warmup_epochs", "must be >= 0")
    need(cfg.optim.warmup_steps is None or cfg.optim.warmup_steps >= 0, "optim.warmup_steps", "must be >= 0")
    need(cfg.optim.epochs >= 1, "optim.epochs", "must be >= 1")
    need(cfg.optim.max_steps is None or cfg.optim.max_steps >= 1, "optim.max_steps", "must be >= 1")
    need(cfg.optim.grad_clip_norm is None or cfg.optim.grad_clip_norm > 0, "optim.grad_clip_norm",
         "must be positive (or null to disable)")
    need(0 <= cfg.optim.label_smoothing < 1, "optim.label_smoothing", "must be in [0, 1)")
    need(cfg.optim.connection_lr_multiplier > 0, "optim.connection_lr_multiplier", "must be positive")
    need(cfg.train.precise_bn_batches >= 0, "train.precise_bn_batches", "must be >= 0")
    need(cfg.train.ema_decay is None or 0 < cfg.train.ema_decay < 1, "train.ema_decay", "must be in (0, 1)")
    need(cfg.train.num_threads is None or cfg.train.num_threads >= 1, "train.num_threads", "must be >= 1")
    need(cfg.train.checkpoint_every_steps >= 0, "train.checkpoint_every_steps", "must be >= 0")
    need(cfg.train.keep_checkpoints >= 1, "train.keep_checkpoints", "must be >= 1")
    need(cfg.train.log_every_steps >= 1, "train.log_every_steps", "must be >= 1")
    need(cfg.train.eval_every_epochs >= 0, "train.eval_every_epochs", "must be >= 0")
    device = cfg.train.device
    need(device in ("auto", "cpu", "cuda") or (device.startswith("cuda:") and device[5:].isdigit()),
         "train.device", "must be auto, cpu, cuda or cuda:N")
    need(cfg.eval.num_clips >= 1, "eval.num_clips", "must be >= 1")
    need(cfg.eval.num_crops in (1, 3), "eval.num_crops", "must be 1 or 3")
    need(cfg.eval.batch_size >= 1, "eval.batch_size", "must be >= 1")
    need(cfg.eval.num_frames is None or cfg.eval.num_frames >= 1, "eval.num_frames", "must be >= 1")


def config_from_dict(raw: Mapping[str, Any] | None, *, source: str | os.PathLike | None = "config") -> Config:
    """Validate a nested mapping into a :class:`Config` (missing keys take their defaults); errors name
    ``source``."""
    cfg = parse_dataclass(Config, raw or {}, source=source)
    _check_values(cfg, source)
    return cfg


def read_config_file(path: str | os.PathLike) -> dict[str, Any]:
    """The raw mapping of a YAML config, with its ``base`` chain merged in."""
    return read_yaml(path, what="config file", base_key="base")


def load_config(source: str | os.PathLike | Mapping[str, Any] | Config | None = None,
                overrides: Iterable[Override] = ()) -> Config:
    """A validated config from a YAML path, a mapping or a ``Config`` (copied), plus dotted overrides
    (``"optim.lr=0.1"`` strings or ``(key, value)`` pairs)."""
    if isinstance(source, Config):
        source = source.to_dict()
    raw, name = read_config(source, overrides, what="config file", base_key="base")
    return config_from_dict(raw, source=name)


def save_config(cfg: Config, path: str | os.PathLike) -> Path:
    """Write ``cfg`` as YAML, atomically."""
    return atomic_write_text(path, cfg.to_yaml())


def describe_schema() -> str:
    """Every key with its type and default, one per line (for docs and ``--help``)."""
    return describe(Config)
