"""The training loop and its programmatic entry, :func:`run_training`.

One loop serves the CLI (``assemblenet train``), multi-process training under ``torchrun`` and the search's
proxy-training fitness. Its guarantees:

- Deterministic given ``seed``: the sample order is a per-epoch permutation and each sample's augmentation is
  seeded by (seed, epoch, position) (see :class:`~assemblenet.engine.distributed.ResumableSampler`).
- Resumable: checkpoints hold model, optimiser, scheduler, scaler, EMA and RNG states plus the position inside
  the epoch, so a run killed at any point and restarted with the same command continues from its last
  checkpoint and follows the same trajectory.
- Safe: checkpoints are written atomically; a non-finite loss stops the run before the bad update is applied
  and before any checkpoint is written, so the last checkpoint stays the last good one.
"""

from __future__ import annotations

import logging
import math
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np
import torch
from torch import nn

from assemblenet.engine import checkpoint as ckpt
from assemblenet.engine.config import Config, fixed_num_classes, load_config, save_config
from assemblenet.engine.distributed import (
    DistInfo,
    ResumableSampler,
    SeededDataset,
    all_gather_objects,
    all_reduce_,
    barrier,
    broadcast_buffers,
    env_dist_info,
    init_distributed,
)
from assemblenet.engine.evaluator import EvalResult, absorb_skipped, evaluate, write_eval_outputs
from assemblenet.engine.metrics import primary_metric_name
from assemblenet.engine.modeling import (
    autocast_context,
    build_model,
    check_object_maps,
    convert_sync_bn,
    eval_amp,
    model_inputs,
    precise_bn,
    set_train_mode,
    to_channels_last,
)
from assemblenet.engine.optim import ModelEMA, build_optimizer, build_scheduler, scaled_lr
from assemblenet.engine.placement import configure_backends, describe_device, resolve_device
from assemblenet.engine.runlog import MetricsLogger, plot_training_curves, read_metrics
from assemblenet.engine.weights import save_weights, unwrap_model
from assemblenet.errors import AssembleNetError, CheckpointError, ConfigError, DataError
from assemblenet.fileio import atomic_write_json, hold_folder, json_safe

logger = logging.getLogger(__name__)

WEIGHTS_FILE = "model.safetensors"
FINAL_METRICS_FILE = "final_metrics.json"
EVAL_DIR = "eval"
_UNSET: Any = object()


class TrainingDivergedError(AssembleNetError):
    """The loss became NaN or infinite; the run stopped and kept its last good checkpoint."""


@dataclass
class TrainResult:
    """What a training run produced.

    ``metrics`` are the final validation metrics (``map``, ``map_sklearn``, ``top1``, ``top5``,
    ``mean_class_accuracy`` for single-label data) plus ``metric``, the value of the primary metric named
    by ``primary_metric``. ``learned_graph`` is the trained graph carrying its learned connection strengths
    (unscaled filters, as given), and ``connection_weights`` maps ``(source, target)`` to the same strengths.
    ``attention_weights`` (peer attention only, else empty) maps each connection ``(source, target)`` to its
    learned softmax weight per attention source (peer node -> weight), in graph node indices.
    ``connection_contributions`` (with ``train.contribution_batches``) maps each edge to the RMS of what it
    adds to its target's fused input, measured in eval mode on that many training batches.
    """

    metrics: dict[str, float]
    primary_metric: str
    model: nn.Module
    learned_graph: Any = None
    connection_weights: dict[tuple[int, int], float] = field(default_factory=dict)
    attention_weights: dict[tuple[int, int], dict[int, float]] = field(default_factory=dict)
    # train.contribution_batches > 0: (source, target) -> RMS of the edge's term in the target's fused input
    connection_contributions: dict[tuple[int, int], float] = field(default_factory=dict)
    steps: int = 0
    output_dir: Path | None = None
    weights_path: Path | None = None
    resumed_from: Path | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    eval_result: EvalResult | None = None
    # Per split ("train", "val"), the videos skipped as missing or unreadable: path -> reason.
    skipped_videos: dict[str, dict[str, str]] = field(default_factory=dict)

    @property
    def metric(self) -> float:
        return self.metrics["metric"]


# -- setup helpers ---------------------------------------------------------------------------------------
def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def dataset_kwargs(cfg: Config, split: str) -> dict[str, Any]:
    """Keyword arguments for ``build_dataset`` for ``split`` ('train' or 'val'). A split's section may set any
    field of ``ClipSampling`` or ``ClipViews`` (``num_frames``, ``scale``, ...) as a key of its own; they are
    gathered into ``sampling=`` and ``views=``."""
    from dataclasses import fields

    from assemblenet.data.sampling import ClipSampling, ClipViews

    data = cfg.data
    kwargs = dict(data.train if split == "train" else data.val)
    sampling = {f.name: kwargs.pop(f.name) for f in fields(ClipSampling) if f.name in kwargs}
    views = {f.name: kwargs.pop(f.name) for f in fields(ClipViews) if f.name in kwargs}
    sampling.setdefault("num_frames", data.num_frames if split == "train" or cfg.eval.num_frames is None
                        else cfg.eval.num_frames)
    sampling.setdefault("stride", data.stride)
    views.setdefault("crop_size", data.crop_size)
    kwargs.setdefault("modalities", tuple(data.modalities))
    if data.object_root is not None:
        kwargs.setdefault("object_root", data.object_root)
    if kwargs.get("object_root") is not None:
        kwargs.setdefault("num_object_classes", cfg.model.num_object_classes)
    if data.decode_short_side is not None:
        kwargs.setdefault("decode_short_side", data.decode_short_side)
    if split == "train":
        views.setdefault("mode", "train")
        if data.clips_per_video != 1:
            kwargs.setdefault("clips_per_video", data.clips_per_video)
    else:
        views.setdefault("mode", "test")
        views.setdefault("num_clips", cfg.eval.num_clips)
        views.setdefault("num_crops", cfg.eval.num_crops)
    kwargs["sampling"] = ClipSampling(**sampling)
    kwargs["views"] = ClipViews(**views)
    return kwargs


def split_dataset(cfg: Config, split: str) -> Any:
    """The dataset ``data.<split>`` describes, as listed (``check-dataset`` and :func:`build_split` share it); an
    unusable argument is one ``ConfigError`` naming its key (``data.train.csv_path``)."""
    from assemblenet.data import build_dataset
    from assemblenet.data.datasets.factory import DatasetArgumentError

    try:
        return build_dataset(cfg.data.dataset, **dataset_kwargs(cfg, split))
    except DatasetArgumentError as exc:
        raise ConfigError(f"key 'data.{split}.{exc.argument}': {exc.detail} (dataset {exc.dataset!r})") from None


def build_split(cfg: Config, split: str) -> Any:
    section = cfg.data.train if split == "train" else cfg.data.val
    if not section:
        raise ConfigError(f"key 'data.{split}': no dataset arguments given (e.g. root/csv_path)")
    dataset = split_dataset(cfg, split)
    unlabelled = [item.video_id for item in getattr(dataset, "items", ()) if not item.labels]
    if unlabelled and not getattr(dataset, "multi_label", False):  # its target would be -1 (a test list's)
        raise DataError(f"key 'data.{split}': {len(unlabelled)} of {len(dataset.items)} videos have no label "
                        f"(first: {unlabelled[0]}); train and val need labelled lists")
    if cfg.data.max_videos is not None:
        dataset.keep_videos(cfg.data.max_videos)
    if cfg.data.scan:
        dataset.scan(progress=False)
    return dataset


# -- the trainer -----------------------------------------------------------------------------------------
class Trainer:
    """Builds everything a config describes and runs the loop; see :func:`run_training`."""

    def __init__(self, cfg: Config, *, graph: Any = None, train_dataset: Any = None, val_dataset: Any = None,
                 progress: bool | None = None) -> None:
        self.cfg = cfg
        launch = env_dist_info()
        self.device = resolve_device(cfg.train.device, launch.local_rank, launch.world_size)
        self.dist: DistInfo = init_distributed(self.device.type)
        if cfg.train.num_threads:
            torch.set_num_threads(cfg.train.num_threads)
        configure_backends(self.device, deterministic=cfg.train.deterministic, warn=self.dist.is_main)
        if cfg.train.amp == "fp16" and self.device.type != "cuda":
            raise ConfigError("key 'train.amp': fp16 needs a GPU (GradScaler); use bf16 on CPU")
        self.progress = cfg.train.progress if progress is None else progress
        self.run_dir = Path(cfg.output.dir) if cfg.output.dir else None
        self.writes = self.run_dir is not None and self.dist.is_main
        seed_everything(cfg.seed)
        if train_dataset is None:
            check_object_maps(cfg, graph=graph)

        self.train_dataset = train_dataset if train_dataset is not None else build_split(cfg, "train")
        self.val_dataset = val_dataset
        if val_dataset is None and cfg.data.val:  # read and check every list before the first step
            self.val_dataset = build_split(cfg, "val")
        self._preflight({"train": self.train_dataset if train_dataset is None else None,
                         "val": self.val_dataset if val_dataset is None else None})
        self.multi_label = bool(getattr(self.train_dataset, "multi_label", False))
        self.num_classes = int(self.train_dataset.num_classes)
        self.class_names = list(getattr(self.train_dataset, "class_names", []) or [])
        fixed = fixed_num_classes(cfg)
        if fixed is not None and fixed != self.num_classes:
            raise ConfigError(f"key 'model.num_classes': {fixed}, but the training set has {self.num_classes} "
                              "classes (model.num_classes: auto takes the training set's count)")
        self.loss_kind = ("bce" if self.multi_label else "ce") if cfg.train.loss == "auto" else cfg.train.loss
        if self.loss_kind == "ce" and self.multi_label:
            raise ConfigError("key 'train.loss': 'ce' needs single-label data; this dataset is multi-label")
        self.primary_metric = primary_metric_name(cfg.eval.metric, self.multi_label)
        if self.primary_metric == "mean_class_accuracy" and self.multi_label:
            raise ConfigError("key 'eval.metric': mean_class_accuracy needs single-label data")

        self.input_graph = graph
        model, self.model_spec = build_model(cfg.model, self.num_classes, graph=graph)
        if cfg.model.sync_bn and self.dist.enabled:
            model = convert_sync_bn(model, self.device)
        self.model = model.to(self.device)
        if cfg.train.channels_last:
            to_channels_last(self.model)
        if self.dist.is_main:
            logger.info(describe_device(self.device, amp=cfg.train.amp, channels_last=cfg.train.channels_last,
                                        compiled=cfg.train.compile, deterministic=cfg.train.deterministic))

        self.global_batch = cfg.data.batch_size * self.dist.world_size
        # Items per loader batch: each training item holds clips_per_video clips.
        self.items_per_batch = max(1, cfg.data.batch_size // getattr(self.train_dataset, "clips_per_video", 1))
        self.steps_per_epoch = len(self.train_dataset) // (self.items_per_batch * self.dist.world_size)
        if self.steps_per_epoch < 1:
            raise ConfigError(f"key 'data.batch_size': {cfg.data.batch_size} clips x {self.dist.world_size} "
                              f"processes is more than the {len(self.train_dataset)} training clips")
        self.total_steps = cfg.optim.max_steps or cfg.optim.epochs * self.steps_per_epoch
        warmup = cfg.optim.warmup_steps if cfg.optim.warmup_steps is not None else \
            round(cfg.optim.warmup_epochs * self.steps_per_epoch)
        self.warmup_steps = min(int(warmup), self.total_steps)
        self.peak_lr = scaled_lr(cfg.optim.lr, self.global_batch, cfg.optim.reference_batch_size, cfg.optim.scale_lr)
        self.optimizer = build_optimizer(self.model, cfg.optim, self.peak_lr)
        self.scheduler = build_scheduler(self.optimizer, total_steps=self.total_steps, warmup_steps=self.warmup_steps,
                                         schedule=cfg.optim.schedule, peak_lr=self.peak_lr, min_lr=cfg.optim.min_lr,
                                         connection_warmup=cfg.optim.connection_warmup)
        self.scaler = torch.amp.GradScaler("cuda", enabled=cfg.train.amp == "fp16")
        self.ema = ModelEMA(self.model, cfg.train.ema_decay) if cfg.train.ema_decay else None

        self.step = 0
        self.epoch = 0
        self.step_in_epoch = 0
        self.evaluated_step = -1
        self.history: list[dict[str, Any]] = []
        self.last_checkpoint: Path | None = None
        self.resumed_from: Path | None = None
        self.last_eval: EvalResult | None = None

    def _preflight(self, built: Mapping[str, Any]) -> None:
        """check-dataset's check of the splits this trainer built (``data.preflight``), before any step: a split
        that would fail the run stops it here; missing and unreadable videos are skipped and counted. Datasets a
        caller hands in (the search's) are the caller's to check."""
        from assemblenet.data.check import preflight

        mode = "exists" if self.cfg.data.scan and self.cfg.data.preflight == "decode" else self.cfg.data.preflight
        preflight({name: dataset for name, dataset in built.items() if dataset is not None}, mode=mode,
                  workers=max(1, self.cfg.data.num_workers), progress=bool(self.progress and self.dist.is_main))

    # -- state ---------------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            "step": self.step, "epoch": self.epoch, "step_in_epoch": self.step_in_epoch,
            "evaluated_step": self.evaluated_step,
            "model": unwrap_model(self.model).state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "rng": ckpt.capture_rng_state(),
            "config": self.cfg.to_dict(),
            "model_spec": self.model_spec,
            "class_names": self.class_names,
            "multi_label": self.multi_label,
            "history": self.history,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        unwrap_model(self.model).load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        if self.ema is not None and state.get("ema"):
            self.ema.load_state_dict(state["ema"])
        self.step = int(state["step"])
        self.epoch = int(state["epoch"])
        self.step_in_epoch = int(state["step_in_epoch"])
        self.evaluated_step = int(state.get("evaluated_step", -1))
        self.history = list(state.get("history", []))
        ckpt.restore_rng_state(state["rng"])

    def _sync_buffers(self) -> None:
        # Every rank holds the same parameters; BN statistics (and their EMA) are taken from rank 0 so that all
        # ranks checkpoint and evaluate the same model.
        broadcast_buffers(unwrap_model(self.model))
        if self.ema is not None:
            broadcast_buffers(self.ema.module)

    def save_checkpoint(self) -> None:
        if self.run_dir is None:
            # Nothing is saved, so nothing needs the divergence read or the buffer broadcast: an epoch end
            # without an output folder makes no host sync (a divergence is caught at the next log point).
            return
        self._raise_if_diverged()  # the last checkpoint must stay the last good one
        self._sync_buffers()
        if self.writes:
            self.last_checkpoint = ckpt.save_checkpoint(self.state_dict(), self.run_dir, self.step,
                                                        keep=self.cfg.train.keep_checkpoints)
        barrier()

    def maybe_resume(self) -> None:
        if self.run_dir is None:
            return
        if not self.cfg.train.resume:
            old = ckpt.list_checkpoints(self.run_dir)
            if old and self.dist.is_main:
                logger.warning("train.resume is false: removing %d old checkpoints from %s", len(old), self.run_dir)
                for _, path in old:
                    path.unlink(missing_ok=True)
            barrier()
            return
        path = ckpt.latest_checkpoint(self.run_dir)
        if path is None:
            return
        state = ckpt.load_checkpoint(path, map_location="cpu")  # load_state_dict moves it to the device
        saved_spec = state.get("model_spec")
        if saved_spec is not None and saved_spec != self.model_spec:
            raise ConfigError(f"{path} was trained with a different model ({saved_spec.get('name') or 'a graph'}); "
                              f"use another output.dir or set train.resume=false")
        self.load_state_dict(state)
        self.resumed_from = path
        self.last_checkpoint = path
        if self.dist.is_main:
            logger.info("resumed from %s (step %d, epoch %d)", path, self.step, self.epoch)

    @property
    def metrics_log(self) -> MetricsLogger:
        """The run's metrics log (``metrics.jsonl``, TensorBoard); :meth:`fit` opens it (continuing a resumed
        run's), and a :meth:`run_eval` before any ``fit`` opens it on first use."""
        if getattr(self, "_metrics", None) is None:
            self._metrics = MetricsLogger(self.run_dir if self.writes else None,
                                          tensorboard=self.cfg.output.tensorboard)
        return self._metrics

    # -- pieces of the loop ----------------------------------------------------------------------------------
    def _loss(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        logits = logits.float()
        smoothing = self.cfg.optim.label_smoothing
        if self.loss_kind == "bce":
            if target.dim() == 3:  # per-frame targets: the clip's label set
                target = target.amax(dim=1)
            if target.dim() == 1:
                target = nn.functional.one_hot(target, self.num_classes).float()
            target = target.float()
            if smoothing:
                target = target * (1 - smoothing) + 0.5 * smoothing
            return nn.functional.binary_cross_entropy_with_logits(logits, target)
        return nn.functional.cross_entropy(logits, target.long(), label_smoothing=smoothing)

    def _train_loader(self) -> tuple[torch.utils.data.DataLoader, ResumableSampler]:
        """The training loader, built once: its workers persist across epochs, so what they cache (video
        indexes, known-bad files, ``cache_frames``) survives; each epoch only re-seeds the sampler."""
        from assemblenet.data import collate

        loader = getattr(self, "_loader", None)
        if loader is None:
            sampler = ResumableSampler(len(self.train_dataset), world_size=self.dist.world_size,
                                       rank=self.dist.rank, seed=self.cfg.seed, shuffle=True)
            workers = self.cfg.data.num_workers
            loader = torch.utils.data.DataLoader(
                SeededDataset(self.train_dataset), batch_size=self.items_per_batch, sampler=sampler,
                num_workers=workers, collate_fn=collate, drop_last=True, pin_memory=self.device.type == "cuda",
                prefetch_factor=self.cfg.data.prefetch_factor if workers else None, persistent_workers=workers > 0)
            self._loader, self._sampler = loader, sampler
        self._sampler.set_epoch(self.epoch, self.step_in_epoch * self.items_per_batch)
        return loader, self._sampler

    def _eval_model(self) -> nn.Module:
        if self.ema is not None and self.cfg.eval.use_ema:
            return self.ema.module
        return unwrap_model(self.model)

    def run_eval(self, *, final: bool = False) -> EvalResult:
        if self.val_dataset is None:
            self.val_dataset = build_split(self.cfg, "val")
        if self.cfg.train.precise_bn_batches:
            self._precise_bn(self._eval_model())
        self._sync_buffers()
        cfg = self.cfg
        result = evaluate(self._eval_model(), self.val_dataset, device=self.device, batch_size=cfg.eval.batch_size,
                          num_workers=cfg.data.num_workers, aggregation=cfg.eval.aggregation,
                          amp=eval_amp(cfg.train.amp, self.device), progress=self.progress,
                          desc="final eval" if final else "eval")
        if not result.class_names:
            result.class_names = self.class_names
        if isinstance(getattr(self.val_dataset, "skipped", None), dict):
            self.val_dataset.skipped.update(result.skipped)  # every process's skips
        result.metrics["metric"] = result.metrics.get(self.primary_metric, float("nan"))
        record = {"epoch": self.epoch, **result.metrics, "skipped_videos": self._log_skipped("val")}
        self.history.append({"step": self.step, **record})
        self.metrics_log.log("val", self.step, record)
        self.evaluated_step = self.step
        self.last_eval = result
        if self.dist.is_main:
            shown = ", ".join(f"{k} {v:.4f}" for k, v in result.metrics.items() if k not in ("num_videos", "metric"))
            logger.info("step %d validation (%d videos): %s", self.step, len(result.video_ids), shown)
        return result

    def skipped_videos(self) -> dict[str, dict[str, str]]:
        """Per split, the videos skipped so far (missing or unreadable: path -> reason), as this process knows
        them (the pre-flight's finds, and every skip a loader batch reported)."""
        splits = {"train": self.train_dataset, "val": self.val_dataset}
        return {name: dict(getattr(dataset, "skipped", {}) or {}) for name, dataset in splits.items()
                if dataset is not None}

    def _log_skipped(self, split: str) -> int:
        """The split's skipped-video count for a metrics record; videos not logged before get a ``skipped``
        record of their own in metrics.jsonl (split, path -> reason)."""
        skipped = self.skipped_videos().get(split, {})
        logged = self.__dict__.setdefault("_logged_skips", {}).setdefault(split, set())
        new = {path: reason for path, reason in skipped.items() if path not in logged}
        if new:
            self.metrics_log.log("skipped", self.step, {"split": split, "count": len(skipped), "videos": new})
            logged.update(new)
        return len(skipped)

    def _precise_bn(self, model: nn.Module) -> None:
        """Re-estimate BN statistics on ``train.precise_bn_batches`` training batches: a fixed draw per epoch
        (its own sampler seed), run under a forked RNG so the training trajectory is the same as without it."""
        count = self.cfg.train.precise_bn_batches
        with torch.random.fork_rng(devices=[]):
            used = precise_bn(model, self._fixed_train_clips(count), self.device, amp=self.cfg.train.amp,
                              channels_last=self.cfg.train.channels_last)
        if used < count and self.dist.is_main:
            logger.warning("precise BN used %d of the %d batches asked for (the training set holds %d full "
                           "batches)", used, count, used)

    def _fixed_train_clips(self, count: int) -> Any:
        """Up to ``count`` training clip batches, a fixed draw per epoch (their own sampler seed). Iterate it
        under a forked RNG, so that the training trajectory is the same as without it."""
        from assemblenet.data import collate

        sampler = ResumableSampler(len(self.train_dataset), world_size=self.dist.world_size, rank=self.dist.rank,
                                   seed=self.cfg.seed + 7919, shuffle=True)
        sampler.set_epoch(self.epoch)
        loader = torch.utils.data.DataLoader(SeededDataset(self.train_dataset), batch_size=self.items_per_batch,
                                             sampler=sampler, num_workers=self.cfg.data.num_workers,
                                             collate_fn=collate, drop_last=True,
                                             pin_memory=self.device.type == "cuda")
        return (clip for k, (clip, _target, _meta) in zip(range(count), loader))

    def _connection_contributions(self, model: nn.Module) -> dict[tuple[int, int], float]:
        """RMS over ``train.contribution_batches`` training batches of each edge's term in its target's fused
        input, in eval mode (see ``AssembleNet.connection_contributions``)."""
        count = self.cfg.train.contribution_batches
        if not count or not hasattr(model, "connection_contributions"):
            return {}
        totals: dict[tuple[int, int], float] = {}
        used = 0
        was_training = model.training
        model.eval()
        try:
            with torch.random.fork_rng(devices=[]):
                for clip in self._fixed_train_clips(count):
                    inputs = model_inputs(clip, self.device, channels_last=self.cfg.train.channels_last)
                    for edge, energy in model.connection_contributions(*inputs).items():
                        totals[edge] = totals.get(edge, 0.0) + energy
                    used += 1
        finally:
            model.train(was_training)
        return {edge: math.sqrt(total / used) for edge, total in totals.items()} if used else {}

    def _eval_due(self) -> bool:
        every = self.cfg.train.eval_every_epochs
        return every > 0 and self.step_in_epoch == 0 and self.epoch > 0 and self.epoch % every == 0

    # -- the loop ----------------------------------------------------------------------------------------------
    def fit(self) -> TrainResult:
        """Train to ``total_steps`` (resuming if a checkpoint exists), evaluate, and write the final files."""
        from tqdm.contrib.logging import logging_redirect_tqdm

        # One run per output folder (the main process holds it); run_training took it already, before building.
        with hold_folder(self.run_dir, enabled=self.writes), logging_redirect_tqdm():
            return self._fit()  # log lines print above the progress bar instead of through it

    def _fit(self) -> TrainResult:
        from tqdm import tqdm

        cfg = self.cfg
        self.maybe_resume()
        resumed_steps = all_gather_objects(self.step)
        if len(set(resumed_steps)) > 1:
            raise CheckpointError(f"the processes resumed at different steps {resumed_steps}: output.dir "
                                  f"({self.run_dir}) must be on a filesystem every machine shares")
        if self.writes:
            save_config(cfg, self.run_dir / "config.yaml")
        self._metrics = MetricsLogger(self.run_dir if self.writes else None, tensorboard=cfg.output.tensorboard,
                                    resume_step=self.step if self.resumed_from is not None else None)
        model = self.prepare_training()
        if self.dist.is_main:
            logger.info("training %s: %d classes, %d train clips, %d steps/epoch x %d processes, %d steps, "
                        "peak lr %.4g (batch %d), %s loss", self.model_spec.get("name") or "graph model",
                        self.num_classes, len(self.train_dataset), self.steps_per_epoch, self.dist.world_size,
                        self.total_steps, self.peak_lr, self.global_batch, self.loss_kind)
        # A resumed run whose last epoch ended without its evaluation does it now.
        if self.resumed_from is not None and self._eval_due() and self.evaluated_step < self.step \
                and self.step < self.total_steps:
            self.run_eval()
            self.save_checkpoint()

        bar = tqdm(total=self.total_steps, initial=self.step, unit="step", dynamic_ncols=True,
                   disable=not (self.progress and self.dist.is_main), desc="train")
        window_steps, window_start = 0, time.perf_counter()
        try:
            while self.step < self.total_steps:
                loader, _ = self._train_loader()
                set_train_mode(model, frozen_bn=cfg.model.frozen_bn)
                for clip, target, meta in loader:
                    absorb_skipped(self.train_dataset, meta)  # skips in loader workers, counted here
                    lr = self.optimizer.param_groups[0]["lr"]  # the rate this update uses
                    self.train_step(clip, target)
                    self.step += 1
                    self.step_in_epoch += 1
                    window_steps += 1
                    bar.update(1)
                    if self.step % cfg.train.log_every_steps == 0 or self.step == self.total_steps:
                        # The only host read of the window: the loss stays on the device between log points.
                        mean_loss = self._read_loss_window(window_steps)
                        clips_per_s = window_steps * self.global_batch / max(time.perf_counter() - window_start,
                                                                              1e-9)
                        self.metrics_log.log("train", self.step, {"epoch": self.epoch, "loss": mean_loss, "lr": lr,
                                                             "clips_per_s": clips_per_s,
                                                             "skipped_videos": self._log_skipped("train")})
                        bar.set_postfix(loss=f"{mean_loss:.4f}", lr=f"{lr:.3g}", clips_s=f"{clips_per_s:.1f}",
                                        refresh=False)
                        window_steps, window_start = 0, time.perf_counter()
                    if cfg.train.checkpoint_every_steps and self.step % cfg.train.checkpoint_every_steps == 0 \
                            and self.step_in_epoch < self.steps_per_epoch:
                        self.save_checkpoint()
                    if self.step >= self.total_steps or self.step_in_epoch >= self.steps_per_epoch:
                        break
                if self.step_in_epoch >= self.steps_per_epoch:
                    self.epoch += 1
                    self.step_in_epoch = 0
                    self.save_checkpoint()
                    if self._eval_due() and self.step < self.total_steps:
                        self._raise_if_diverged()  # never evaluate a diverged model (with no checkpoint to check)
                        self.run_eval()
                        self.save_checkpoint()
                        set_train_mode(model, frozen_bn=cfg.model.frozen_bn)
                elif self.step >= self.total_steps:
                    self.save_checkpoint()  # a budget that ends mid-epoch
        finally:
            bar.close()
            self._loader = loader = None  # stops the persistent workers before the final evaluation
        return self._finish()

    def prepare_training(self) -> nn.Module:
        """Build what the steps use, once: the DDP wrapper under ``torchrun`` and the compiled forward with
        ``train.compile``; start the on-device loss window. Returns the (possibly DDP-wrapped) model."""
        if getattr(self, "_training_module", None) is None:
            model: nn.Module = self.model
            if self.dist.enabled:
                # Every trainable parameter is used (models prune nodes that reach no output), so DDP needs no
                # find_unused_parameters and its extra graph traversal.
                model = nn.parallel.DistributedDataParallel(
                    self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None)
            self._wrapped_module = model
            self._training_module = torch.compile(model) if self.cfg.train.compile else model
            self._start_loss_window()
        return self._wrapped_module

    def train_step(self, clip: Any, target: torch.Tensor) -> None:
        """One optimisation step on a collated batch (host or device tensors); see :meth:`_train_step`. Call
        :meth:`prepare_training` first. ``benchmarks/gpu_speed.py`` times exactly this."""
        self._train_step(self._training_module, clip, target)

    def _train_step(self, model: nn.Module, clip: Any, target: torch.Tensor) -> None:
        """One update. It never reads a value back from the device (no ``.item()``, no collective): the loss
        is accumulated on the device and read at log points (:meth:`_read_loss_window`), and a non-finite loss
        is caught there or before the next checkpoint (:meth:`_raise_if_diverged`), so a GPU never waits for
        the host. The exception is fp16 loss scaling, whose GradScaler reads its overflow flag every step."""
        cfg = self.cfg
        inputs = model_inputs(clip, self.device, non_blocking=True, channels_last=cfg.train.channels_last)
        target = target.to(self.device, non_blocking=True)
        with autocast_context(self.device, cfg.train.amp):
            logits = model(*inputs)
        loss = self._loss(logits, target)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if cfg.optim.grad_clip_norm:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(model.parameters(), cfg.optim.grad_clip_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        if self.ema is not None:
            self.ema.update(unwrap_model(model))
        self._record_loss(loss.detach())

    # -- the loss, kept on the device between log points ------------------------------------------------------
    def _start_loss_window(self) -> None:
        accumulate = torch.float32 if self.device.type == "mps" else torch.float64
        self._loss_sum = torch.zeros((), dtype=accumulate, device=self.device)
        self._device_step = torch.full((), self.step, dtype=torch.int64, device=self.device)
        self._bad_step = torch.full((), -1, dtype=torch.int64, device=self.device)  # first non-finite step
        self._bad_value = torch.zeros((), dtype=accumulate, device=self.device)

    def _record_loss(self, loss: torch.Tensor) -> None:
        loss = loss.to(self._loss_sum.dtype)
        finite = torch.isfinite(loss)
        self._device_step.add_(1)
        self._loss_sum.add_(torch.where(finite, loss, torch.zeros_like(loss)))
        first = ~finite & (self._bad_step < 0)
        self._bad_step = torch.where(first, self._device_step, self._bad_step)
        self._bad_value = torch.where(first, loss, self._bad_value)

    def _read_loss_window(self, steps: int) -> float:
        """The mean loss over the last ``steps`` updates of every process, after checking that none was
        non-finite; resets the window. One host read (and, under torchrun, one all-reduce) of the summed loss
        and the count of processes that saw a non-finite one; only a divergence costs a second."""
        window = torch.stack([self._loss_sum, (self._bad_step >= 0).to(self._loss_sum.dtype)])
        total, diverged = all_reduce_(window, "sum").tolist()
        if diverged:
            self._raise_if_diverged()
        self._loss_sum.zero_()
        return total / (steps * self.dist.world_size)

    def _raise_if_diverged(self) -> None:
        if not hasattr(self, "_bad_step"):
            return
        never = torch.iinfo(torch.int64).max
        first = torch.where(self._bad_step < 0, torch.full_like(self._bad_step, never), self._bad_step)
        step = int(all_reduce_(first.clone(), "min").item())
        if step == never:
            return
        mine = int(self._bad_step.item()) == step
        self._diverged(step, float(self._bad_value.item()) if mine else float("nan"))

    def _diverged(self, step: int, value: float) -> None:
        where = f"step {step} (epoch {(step - 1) // self.steps_per_epoch})"
        kept = f"the last good checkpoint is {self.last_checkpoint}" if self.last_checkpoint else \
            "no checkpoint had been written yet"
        self.metrics_log.log("error", self.step,
                             {"error": f"non-finite loss {value} at step {step}", "epoch": self.epoch})
        self.metrics_log.close()
        raise TrainingDivergedError(
            f"training stopped: the loss is {value} at {where}; {kept}. Lower optim.lr, set optim.grad_clip_norm, "
            "or check the data")

    def _finish(self) -> TrainResult:
        cfg = self.cfg
        self._raise_if_diverged()
        if self.evaluated_step == self.step and self.last_eval is not None:
            result = self.last_eval
        else:
            result = self.run_eval(final=True)
        skipped = {split: dict(sorted(videos.items()))  # every process's skips (each skips on its own shard)
                   for split, videos in self.skipped_videos().items()}
        for shard in all_gather_objects(skipped):
            for split, videos in shard.items():
                skipped.setdefault(split, {}).update(videos)
        eval_model = self._eval_model()
        weights_path = None
        if self.writes:
            sidecar_config = cfg.to_dict()
            sidecar_config["model"]["num_classes"] = self.num_classes  # 'auto' resolved, for predict/export
            weights_path = save_weights(
                eval_model, self.run_dir / WEIGHTS_FILE, model_spec=self.model_spec, class_names=self.class_names,
                multi_label=self.multi_label, config=sidecar_config, metrics=result.metrics,
                input_spec={"num_frames": cfg.data.num_frames, "crop_size": cfg.data.crop_size,
                            "modalities": list(cfg.data.modalities)})
            write_eval_outputs(result, self.run_dir / EVAL_DIR, save_predictions=cfg.output.save_predictions,
                               extra={"step": self.step, "aggregation": cfg.eval.aggregation,
                                      "primary_metric": self.primary_metric})
            final = {"step": self.step, "epoch": self.epoch, "primary_metric": self.primary_metric,
                     "metrics": result.metrics, "weights": str(weights_path),
                     "skipped_videos": {split: len(videos) for split, videos in skipped.items()},
                     "skipped": skipped}
            atomic_write_json(self.run_dir / FINAL_METRICS_FILE, json_safe(final))
            try:
                plot_training_curves(read_metrics(self.run_dir / "metrics.jsonl"), self.run_dir / "training_curves.png",
                                     self.primary_metric)
            except Exception as exc:  # noqa: BLE001 - a plot must never fail a finished run
                logger.warning("could not plot the training curves: %s", exc)
        self.metrics_log.close()
        barrier()
        connection_weights: dict[tuple[int, int], float] = {}
        learned_graph = None
        if hasattr(eval_model, "connection_weights"):
            connection_weights = dict(eval_model.connection_weights())
            learned_graph = _learned_graph(eval_model, self.input_graph, self.cfg, connection_weights)
        attention_weights: dict[tuple[int, int], dict[int, float]] = {}
        if hasattr(eval_model, "attention_weights"):
            attention_weights = dict(eval_model.attention_weights())
        return TrainResult(metrics=dict(result.metrics), primary_metric=self.primary_metric, model=eval_model,
                           learned_graph=learned_graph, connection_weights=connection_weights,
                           attention_weights=attention_weights,
                           connection_contributions=self._connection_contributions(eval_model), steps=self.step,
                           output_dir=self.run_dir, weights_path=weights_path, resumed_from=self.resumed_from,
                           history=list(self.history), eval_result=result, skipped_videos=skipped)


def _learned_graph(model: nn.Module, input_graph: Any, cfg: Config, weights: dict[tuple[int, int], float]) -> Any:
    """The input graph (unscaled) carrying the learned strengths; the model's own graph when built from a
    preset."""
    from assemblenet.engine.model_spec import resolve_graph
    from assemblenet.graph import BlockNode

    graph = resolve_graph(input_graph if input_graph is not None else cfg.model.graph)
    if graph is None:
        return model.graph_with_learned_weights()
    per_node = []
    for index, node in enumerate(graph.nodes):
        if isinstance(node, BlockNode) and len(node.inputs) > 1 and (node.inputs[0], index) in weights:
            per_node.append([weights[(source, index)] for source in node.inputs])
        elif isinstance(node, BlockNode) and node.edge_weights is not None:  # pruned by the model: as given
            per_node.append(list(node.edge_weights))
        else:
            per_node.append(None)
    return graph.with_edge_weights(per_node)


def run_training(config: str | os.PathLike | Mapping[str, Any] | Config | None = None, *, graph: Any = None,
                 output_dir: str | os.PathLike | None = _UNSET, seed: int | None = None,
                 max_steps: int | None = None, width_multiplier: float | None = None,
                 overrides: Mapping[str, Any] | Iterable[str] = (), device: str | None = None,
                 num_threads: int | None = None, progress: bool | None = None, train_dataset: Any = None,
                 val_dataset: Any = None) -> TrainResult:
    """Train (and validate) the model a config describes; the programmatic form of ``assemblenet train``.

    Args:
        config: a YAML path, a mapping, or a :class:`Config`.
        graph: an ``AssembleNetGraph`` (or graph file / official name) to train instead of ``model.name`` /
            ``model.graph``; its connection weights are learned unless ``model.learnable_weights`` is false.
        output_dir: replaces ``output.dir``; ``None`` writes nothing (no checkpoints, logs or weights).
        seed, max_steps, width_multiplier, device, num_threads: replace ``seed``, ``optim.max_steps``,
            ``model.width_multiplier``, ``train.device`` and ``train.num_threads``.
        overrides: dotted overrides, as a mapping ``{"optim.lr": 0.1}`` or strings ``"optim.lr=0.1"``;
            applied before the keyword arguments above.
        progress: show progress bars (default ``train.progress``).
        train_dataset, val_dataset: ready datasets to use instead of building them from ``data`` (lets a
            caller reuse decoded datasets across many short runs).

    Returns:
        A :class:`TrainResult`. Deterministic given the config's seed (on CPU, and on GPU with
        ``train.deterministic``).
    """
    items = list(overrides.items()) if isinstance(overrides, Mapping) else list(overrides)
    cfg = load_config(config, items)
    extra: list[tuple[str, Any]] = []
    if output_dir is not _UNSET:
        extra.append(("output.dir", None if output_dir is None else str(output_dir)))
    for key, value in (("seed", seed), ("optim.max_steps", max_steps), ("model.width_multiplier", width_multiplier),
                       ("train.device", device), ("train.num_threads", num_threads)):
        if value is not None:
            extra.append((key, value))
    if extra:
        cfg = load_config(cfg, extra)
    # Hold output.dir before building anything, so a second run on it fails at once (rank 0 holds it).
    with hold_folder(cfg.output.dir, enabled=env_dist_info().is_main):
        trainer = Trainer(cfg, graph=graph, train_dataset=train_dataset, val_dataset=val_dataset, progress=progress)
        return trainer.fit()


@dataclass
class CheckpointEvaluation:
    """What :func:`run_evaluation` produced: the result, the primary metric's name, and the report folder
    (``None`` on processes other than the main one, which write nothing)."""

    result: EvalResult
    primary_metric: str
    output_dir: Path | None


def run_evaluation(cfg: Config, checkpoint: str | os.PathLike, *, precision: str = "fp32",
                   output_dir: str | os.PathLike | None = None, progress: bool = True) -> CheckpointEvaluation:
    """Evaluate trained weights on the config's ``data.val`` split with its multi-view settings and write the
    report (metrics, per-class tables, confusion matrix, predictions).

    The model is put in inference form (:func:`prepare_for_inference`: BN folded, ``precision`` weights), and
    autocast follows the training's ``train.amp`` (:func:`eval_amp`). The report goes to ``output_dir``, else
    ``output.dir/eval_<checkpoint stem>``, else ``eval_<checkpoint stem>``. Works under ``torchrun``: every
    process evaluates its shard, the main one writes.
    """
    from assemblenet.engine.modeling import prepare_for_inference
    from assemblenet.engine.weights import load_trained_model
    from assemblenet.errors import CheckpointError

    checkpoint = Path(checkpoint)
    launch = env_dist_info()
    device = resolve_device(cfg.train.device, launch.local_rank, launch.world_size)  # cuda:LOCAL_RANK per process
    dist_info = init_distributed(device.type)
    configure_backends(device, deterministic=cfg.train.deterministic, warn=dist_info.is_main)
    model, _info = load_trained_model(checkpoint, use_ema=cfg.eval.use_ema)
    if cfg.train.num_threads:
        torch.set_num_threads(cfg.train.num_threads)
    dataset = build_split(cfg, "val")
    num_classes = getattr(model, "num_classes", None)
    if num_classes is not None and num_classes != dataset.num_classes:
        raise CheckpointError(f"{checkpoint} predicts {num_classes} classes but the validation set has "
                              f"{dataset.num_classes}")
    model = prepare_for_inference(model, device=device, precision=precision)
    result = evaluate(model, dataset, device=device, batch_size=cfg.eval.batch_size, num_workers=cfg.data.num_workers,
                      aggregation=cfg.eval.aggregation, amp=eval_amp(cfg.train.amp, device, precision),
                      progress=progress)
    primary = primary_metric_name(cfg.eval.metric, result.multi_label)
    result.metrics["metric"] = result.metrics.get(primary, float("nan"))
    if not dist_info.is_main:
        return CheckpointEvaluation(result, primary, None)
    stem = checkpoint.stem if checkpoint.is_file() else checkpoint.name
    if output_dir:
        out = Path(output_dir)
    else:
        out = Path(cfg.output.dir) / f"eval_{stem}" if cfg.output.dir else Path(f"eval_{stem}")
    written = write_eval_outputs(result, out, extra={"checkpoint": str(checkpoint), "primary_metric": primary,
                                                     "views": [cfg.eval.num_clips, cfg.eval.num_crops],
                                                     "aggregation": cfg.eval.aggregation})
    return CheckpointEvaluation(result, primary, written["metrics"].parent)
