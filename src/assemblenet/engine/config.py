"""The experiment config: one schema for model, data, optimisation, training, evaluation and output.

A config is a YAML file whose sections mirror the dataclasses below. A file may name a ``base`` file whose
values it overrides. Every relative path in a config (``base``, data paths, class lists, annotation files,
``output.dir``, ``model.pretrained``, ``model.graph``) is relative to the working directory. Command-line
overrides use dotted keys (``--set optim.lr=0.1``, ``--set data.train.csv_path=/data/train.csv``); values are
parsed as YAML scalars or flow sequences, so ``0.1`` is a float, ``null`` is None and ``[rgb, flow]`` is a list.

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
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Iterable, Literal, Mapping, Optional, Union

from assemblenet.config_schema import (
    Checker,
    Override,
    apply_overrides,  # noqa: F401 - part of this module's API (tests, callers building raw configs)
    describe,
    dump_yaml,
    key_error,
    parse_dataclass,
    parse_override,  # noqa: F401 - part of this module's API
    read_config,
    read_yaml,
    to_plain,
)
from assemblenet.errors import ConfigError
from assemblenet.fileio import atomic_write_text
from assemblenet.graph.spec import NUM_OBJECT_CLASSES, SUPPORTED_DEPTHS
from assemblenet.input_spec import DEFAULT_INPUT, InputSpec


def _build_option(default: Any) -> Any:
    """A ``ModelConfig`` field passed on to ``create_model`` / the builders when set (:data:`MODEL_BUILD_KEYS`)."""
    return field(default=default, metadata={"build": True})


@dataclass
class ModelConfig:
    """Which network to build.

    ``name`` is a ``create_model`` preset (``assemblenet50``, ``assemblenet101``, ``assemblenet50_searchable``,
    ``assemblenet101_asn101``, ``assemblenet_plus50``, ``assemblenet_plus50_rgbflow``, ``assemblenet_plus_lite``).
    ``graph`` replaces it with a graph file (our YAML or the official nested-list JSON) or an official structure
    name (``asn50``, ``asn101``, ``asnp50``, ``asnp_lite``), built with ``build_from_graph`` (the Lite builder for
    a graph with filter triples).
    """

    name: str = "assemblenet50"
    graph: Optional[str] = None
    # auto: the training set's class count (a subset of a dataset's classes works as it is); a number is checked
    # against it. Either way the weights' sidecar records the count, so predict/export need no data.
    num_classes: Union[int, Literal["auto"]] = "auto"
    # The build options (MODEL_BUILD_KEYS): keywords of create_model and of both builders.
    depth: Optional[int] = _build_option(None)  # one of SUPPORTED_DEPTHS; None: the preset's (DEFAULT_DEPTH: graph)
    width_multiplier: float = _build_option(1.0)
    learnable_weights: Optional[bool] = _build_option(None)
    max_pool_predictions: bool = _build_option(False)
    dropout: float = _build_option(0.0)
    flow_mode: Literal["rgb", "precomputed"] = _build_option("rgb")
    flow_normalization: Literal["clip", "batch"] = _build_option("clip")
    # TV-L1 iterations; None: the model's (40; 20 for AssembleNet++lite)
    flow_iterations: Optional[int] = _build_option(None)
    # AssembleNet++ attention; None: the preset's
    attention_mode: Optional[Literal["self", "peer"]] = _build_option(None)
    # Channels of the object maps an object stem reads (the Lite builder has no object stem and no such keyword).
    num_object_classes: int = _build_option(NUM_OBJECT_CLASSES)
    # How the temporal convolutions compute (models/layers.py: TemporalConv): "conv3d", the reference numbers, or
    # "conv2d", faster on a CPU at the search's small sizes but not bit-identical (relative 1e-7 to 1e-6).
    temporal_conv: Literal["conv3d", "conv2d"] = _build_option("conv3d")
    pretrained: Optional[str] = None  # safetensors weights to start from (before any resume)
    frozen_bn: bool = False  # BN layers keep their running statistics (eval mode) while training
    sync_bn: bool = False  # SyncBatchNorm under DDP on GPU


# The ModelConfig fields a trained model's spec records and create_model / build_assemblenet /
# build_assemblenet_lite take, in declaration order (tests/engine/test_config.py checks them against the builders).
MODEL_BUILD_KEYS: tuple[str, ...] = tuple(f.name for f in fields(ModelConfig) if f.metadata.get("build"))


@dataclass
class DataConfig:
    """Datasets. ``train`` and ``val`` are keyword arguments for ``assemblenet.data.build_dataset(dataset,
    ...)`` (paths, annotation options); the shared clip settings below are added to both unless a split sets
    them itself."""

    dataset: str = "synthetic"
    train: dict[str, Any] = field(default_factory=dict)
    val: dict[str, Any] = field(default_factory=dict)
    # The input (assemblenet.input_spec: defaults typed there; input_spec() groups them).
    num_frames: int = DEFAULT_INPUT.num_frames
    stride: int = DEFAULT_INPUT.stride
    crop_size: int = DEFAULT_INPUT.crop_size
    decode_short_side: Optional[int] = None
    modalities: list[str] = field(default_factory=lambda: list(DEFAULT_INPUT.modalities))
    # Folder of per-frame object maps beside the videos (assemblenet.data.objects), for graphs with an object
    # stem (AssembleNet++); a split may set its own object_root.
    object_root: Optional[str] = None
    batch_size: int = 8  # clips per process and step
    num_workers: int = 4
    # Batches each loader worker keeps ready (DataLoader prefetch_factor); see docs/data.md for the memory.
    prefetch_factor: int = 2
    # Training clips cut from one decoded span, each with its own crop and flip (a multiple of it must make
    # batch_size); an epoch then yields this many times the clips (and steps). See docs/data.md, "Fast input".
    clips_per_video: int = 1
    scan: bool = False  # check every video before training and drop the unreadable ones
    # Before the first step, train checks every split it will read as check-dataset does (data.check.preflight):
    # decode: listed, found, first and last frames decodable; exists: found only; off: nothing. A split with no
    # usable video stops the run there; a missing or unreadable video is skipped and counted (skipped_videos).
    preflight: Literal["decode", "exists", "off"] = "decode"
    # Use only this many videos of each split, spread evenly over its list (quick checks; train --smoke).
    max_videos: Optional[int] = None

    def input_spec(self) -> InputSpec:
        """The model's input this section describes (frames, stride, crop size, modalities)."""
        return InputSpec(num_frames=self.num_frames, stride=self.stride, crop_size=self.crop_size,
                         modalities=tuple(self.modalities))


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
    # The peer-attention softmax logits of AssembleNet++ (their own group, no weight decay): same reasoning.
    attention_lr_multiplier: float = 1.0


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
    # Bit-reproducible runs: deterministic algorithms, cuDNN and cuBLAS settings; on a GPU the ops that have no
    # deterministic kernel are named once at start-up (docs/engine.md, "Training on GPUs").
    deterministic: bool = False
    # Channels-last-3d weights and inputs (the layout the model computes in; cuDNN's NHWC kernels, DDP buckets
    # without copies).
    channels_last: bool = True
    # torch.compile the training forward (a few minutes of compilation on first use; pays off on a GPU).
    compile: bool = False
    resume: bool = True  # continue from the latest checkpoint in output.dir
    # Precise BN: before each validation, re-estimate BatchNorm statistics as the plain average over this many
    # training batches (0: keep the running averages). Short runs need it: momentum 0.01 barely moves them.
    precise_bn_batches: int = 0
    # Measure, after training, how much of each node's fused input each connection makes up (the RMS of its
    # term, see AssembleNet.connection_contributions) on this many training batches (0: not measured).
    contribution_batches: int = 0


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
        plain: dict[str, Any] = to_plain(self)  # a dataclass becomes a dict of its fields
        return plain

    def to_yaml(self) -> str:
        return dump_yaml(self.to_dict())


# -- construction and validation ------------------------------------------------------------------------
def _check_values(cfg: Config, source: str | os.PathLike[str] | None) -> None:
    """Range checks the types cannot express."""
    check = Checker(source, cfg)
    check.positive("model.width_multiplier")
    check.one_of("model.depth", (None, *SUPPORTED_DEPTHS))
    check.within("model.dropout", 0, 1, high_open=True)
    if cfg.model.num_classes != "auto":
        check.at_least("model.num_classes", 1)
    for key in ("model.flow_iterations", "model.num_object_classes",
                "data.num_frames", "data.stride", "data.batch_size",
                "data.prefetch_factor", "data.clips_per_video", "data.max_videos",
                "optim.reference_batch_size", "optim.epochs", "optim.max_steps", "train.num_threads",
                "train.keep_checkpoints", "train.log_every_steps", "eval.num_clips", "eval.batch_size",
                "eval.num_frames"):
        check.at_least(key, 1)
    for key in ("data.num_workers", "optim.weight_decay", "optim.min_lr", "optim.warmup_epochs", "optim.warmup_steps",
                "train.precise_bn_batches", "train.contribution_batches", "train.checkpoint_every_steps",
                "train.eval_every_epochs"):
        check.at_least(key, 0)
    check.at_least("data.crop_size", 8)
    check.need(cfg.data.batch_size % max(1, cfg.data.clips_per_video) == 0, "data.batch_size",
               f"must be a multiple of data.clips_per_video ({cfg.data.clips_per_video})")
    modalities = cfg.data.modalities
    check.need(bool(modalities) and all(m in ("rgb", "flow") for m in modalities), "data.modalities",
               "must be a non-empty list of 'rgb'/'flow'")
    for key in ("optim.lr", "optim.connection_lr_multiplier", "optim.attention_lr_multiplier",
                "optim.grad_clip_norm"):
        check.positive(key)
    for key in ("optim.momentum", "optim.label_smoothing"):
        check.within(key, 0, 1, high_open=True)
    check.within("train.ema_decay", 0, 1, low_open=True, high_open=True)
    device = cfg.train.device
    check.need(device in ("auto", "cpu", "cuda") or (device.startswith("cuda:") and device[5:].isdigit()),
               "train.device", "must be auto, cpu, cuda or cuda:N")
    check.one_of("eval.num_crops", (1, 3))
    _check_names(cfg, source)


def _check_names(cfg: Config, source: str | os.PathLike[str] | None) -> None:
    """The registry names a config holds (the model preset, the dataset) exist, so that ``check-dataset`` and
    ``train`` refuse the same config the same way, before any work: one line naming the key and the choices."""
    from assemblenet.data.datasets.factory import DATASETS
    from assemblenet.models.registry import list_models

    for key, name, choices, what in (("model.name", cfg.model.name, list_models(), "model"),
                                     ("data.dataset", cfg.data.dataset.lower(), sorted(DATASETS), "dataset")):
        if key == "model.name" and cfg.model.graph is not None:
            continue  # the graph replaces the preset
        if name not in choices:
            raise key_error(source, key, f"unknown {what} {name!r}; choices: {', '.join(choices)}")


def config_from_dict(raw: Mapping[str, Any] | None, *, source: str | os.PathLike[str] | None = "config") -> Config:
    """Validate a nested mapping into a :class:`Config` (missing keys take their defaults); errors name
    ``source``."""
    cfg: Config = parse_dataclass(Config, raw or {}, source=source)
    _check_values(cfg, source)
    return cfg


def read_config_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The raw mapping of a YAML config, with its ``base`` chain merged in."""
    return read_yaml(path, what="config file", base_key="base")


def load_config(source: str | os.PathLike[str] | Mapping[str, Any] | Config | None = None,
                overrides: Iterable[Override] = ()) -> Config:
    """A validated config from a YAML path, a mapping or a ``Config`` (copied), plus dotted overrides
    (``"optim.lr=0.1"`` strings or ``(key, value)`` pairs)."""
    if isinstance(source, Config):
        source = source.to_dict()
    raw, name = read_config(source, overrides, what="config file", base_key="base")
    return config_from_dict(raw, source=name)


# The "not given" of run_config's output_dir, whose None means "write nothing".
UNSET: Any = object()


def run_config(source: str | os.PathLike[str] | Mapping[str, Any] | Config | None,
               overrides: Mapping[str, Any] | Iterable[str] = (), *, output_dir: str | os.PathLike[str] | None = UNSET,
               seed: int | None = None, max_steps: int | None = None, width_multiplier: float | None = None,
               device: str | None = None, num_threads: int | None = None) -> Config:
    """The config of one training run (``run_training``'s arguments): ``source`` with dotted ``overrides`` (a
    mapping or ``"key=value"`` strings), then each keyword given replacing its key (``output.dir``, ``seed``,
    ``optim.max_steps``, ``model.width_multiplier``, ``train.device``, ``train.num_threads``)."""
    items = list(overrides.items()) if isinstance(overrides, Mapping) else list(overrides)
    cfg = load_config(source, items)
    extra: list[tuple[str, Any]] = []
    if output_dir is not UNSET:
        extra.append(("output.dir", None if output_dir is None else str(output_dir)))
    for key, value in (("seed", seed), ("optim.max_steps", max_steps), ("model.width_multiplier", width_multiplier),
                       ("train.device", device), ("train.num_threads", num_threads)):
        if value is not None:
            extra.append((key, value))
    return load_config(cfg, extra) if extra else cfg


def save_config(cfg: Config, path: str | os.PathLike[str]) -> Path:
    """Write ``cfg`` as YAML, atomically."""
    return atomic_write_text(path, cfg.to_yaml())


# What ``assemblenet train CONFIG --smoke`` changes: the whole pipeline (data, model, steps, evaluation, report)
# on the configured data in well under a minute on a 2-core CPU. The config's own --set values go on top.
SMOKE_OVERRIDES: tuple[tuple[str, Any], ...] = (
    ("model.depth", 26), ("model.width_multiplier", 0.125), ("model.flow_iterations", 2),
    ("model.pretrained", None),
    ("data.num_frames", 4), ("data.crop_size", 32), ("data.decode_short_side", 40), ("data.batch_size", 2),
    ("data.clips_per_video", 1), ("data.num_workers", 0), ("data.scan", False), ("data.max_videos", 16),
    ("optim.max_steps", 4), ("optim.warmup_steps", 1),
    ("train.amp", "none"), ("train.compile", False), ("train.checkpoint_every_steps", 0),
    ("train.log_every_steps", 1), ("train.eval_every_epochs", 0), ("train.precise_bn_batches", 0),
    ("train.contribution_batches", 0), ("train.resume", False),
    ("eval.num_clips", 1), ("eval.num_crops", 1), ("eval.num_frames", None), ("eval.batch_size", 4),
    ("output.tensorboard", False),
)


def smoke_overrides(output_dir: str | os.PathLike[str] | None = None) -> list[tuple[str, Any]]:
    """The overrides of a smoke run (:data:`SMOKE_OVERRIDES`: a width-1/8 depth-26 model, 4 frames of 32 px,
    4 steps of 2 clips, 16 videos per split, one view per video), writing to ``output_dir`` or, without one, to
    a new temporary folder."""
    import tempfile

    if output_dir:
        _refuse_another_run(Path(output_dir))
    folder = str(output_dir) if output_dir else tempfile.mkdtemp(prefix="assemblenet-smoke-")
    return [*SMOKE_OVERRIDES, ("output.dir", folder)]


def _refuse_another_run(folder: Path) -> None:
    """A smoke run starts afresh (``train.resume: false`` removes old checkpoints), so it may only reuse a
    folder that is empty or holds an earlier smoke run, never a real run's checkpoints."""
    saved = folder / "config.yaml"
    if saved.is_file():
        raw = read_yaml(saved)
        smoke = all(raw.get(key.split(".")[0], {}).get(key.split(".")[1]) == value for key, value in SMOKE_OVERRIDES
                    if key in ("optim.max_steps", "data.max_videos", "model.width_multiplier"))
    else:
        smoke = not (folder / "checkpoints").exists() and not (folder / "model.safetensors").exists()
    if not smoke:
        raise ConfigError(f"{folder} holds another training run; a smoke run would replace its checkpoints: "
                          "give --smoke an empty folder (or none: a new temporary folder)")


def fixed_num_classes(cfg: Config) -> int | None:
    """``model.num_classes`` when the config fixes it, ``None`` for ``auto`` (the training set's count)."""
    value = cfg.model.num_classes
    return None if value == "auto" else int(value)


def describe_schema() -> str:
    """Every key with its type and default, one per line (for docs and ``--help``)."""
    return describe(Config)
