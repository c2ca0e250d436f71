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
import os
import time
from pathlib import Path
from typing import Any, Iterable, Mapping, cast

import torch
from torch import nn

from assemblenet.engine import checkpoint as ckpt
from assemblenet.engine.config import UNSET, Config, run_config, save_config
from assemblenet.engine.datasets import build_split, clip_loader, gather_skipped, training_data
from assemblenet.engine.distributed import (
    DistInfo,
    ResumableSampler,
    all_gather_objects,
    barrier,
    broadcast_buffers,
    env_dist_info,
    init_distributed,
)
from assemblenet.engine.evaluator import EvalResult, absorb_skipped, evaluate
from assemblenet.engine.loss import LossWindow, divergence_error, loss_kind, training_loss
from assemblenet.engine.metrics import primary_metric_name
from assemblenet.engine.modeling import (
    autocast_context,
    build_model,
    check_object_maps,
    connection_contributions,
    convert_sync_bn,
    eval_amp,
    model_inputs,
    precise_bn,
    set_train_mode,
    to_channels_last,
)
from assemblenet.engine.optim import ModelEMA, build_optimizer, build_scheduler, scaled_lr
from assemblenet.engine.placement import configure_backends, describe_device, resolve_device, seed_everything
from assemblenet.engine.results import TrainResult, learned_wiring, write_run_files
from assemblenet.engine.runlog import MetricsLogger
from assemblenet.engine.training_state import checkpoint_to_resume, restore_training_state, training_state
from assemblenet.engine.weights import unwrap_model
from assemblenet.errors import CheckpointError, ConfigError
from assemblenet.fileio import hold_folder

logger = logging.getLogger(__name__)


class Trainer:
    """Builds everything a config describes and runs the loop; see :func:`run_training`."""

    # Built on first use (``getattr(self, name, None)`` tells whether yet): the training loader (dropped after
    # the last epoch) and its sampler; the (DDP-)wrapped model and the module the steps call (compiled or not).
    _loader: torch.utils.data.DataLoader[Any] | None
    _sampler: ResumableSampler
    _wrapped_module: nn.Module
    _training_module: nn.Module

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

        data = training_data(cfg, train_dataset=train_dataset, val_dataset=val_dataset,
                             progress=bool(self.progress and self.dist.is_main))
        self.train_dataset, self.val_dataset = data.train, data.val
        self.multi_label, self.num_classes, self.class_names = data.multi_label, data.num_classes, data.class_names
        self.loss_kind = loss_kind(cfg.train.loss, self.multi_label)
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

    # -- state ---------------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return training_state(self)

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        restore_training_state(self, state)

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
        found = checkpoint_to_resume(self.run_dir, resume=self.cfg.train.resume, model_spec=self.model_spec,
                                     is_main=self.dist.is_main)
        if found is None:
            return
        path, state = found
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
        return training_loss(logits, target, kind=self.loss_kind, num_classes=self.num_classes,
                             label_smoothing=self.cfg.optim.label_smoothing)

    def _train_loader(self) -> tuple[torch.utils.data.DataLoader[Any], ResumableSampler]:
        """The training loader, built once: its workers persist across epochs, so what they cache (video
        indexes, known-bad files, ``cache_frames``) survives; each epoch only re-seeds the sampler."""
        loader = getattr(self, "_loader", None)
        if loader is None:
            sampler = ResumableSampler(len(self.train_dataset), world_size=self.dist.world_size,
                                       rank=self.dist.rank, seed=self.cfg.seed, shuffle=True)
            workers = self.cfg.data.num_workers
            loader = clip_loader(self.train_dataset, sampler, batch_size=self.items_per_batch, num_workers=workers,
                                 pin_memory=self.device.type == "cuda",
                                 prefetch_factor=self.cfg.data.prefetch_factor if workers else None,
                                 persistent_workers=workers > 0)
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
        sampler = ResumableSampler(len(self.train_dataset), world_size=self.dist.world_size, rank=self.dist.rank,
                                   seed=self.cfg.seed + 7919, shuffle=True)
        sampler.set_epoch(self.epoch)
        loader = clip_loader(self.train_dataset, sampler, batch_size=self.items_per_batch,
                             num_workers=self.cfg.data.num_workers, pin_memory=self.device.type == "cuda")
        return (clip for k, (clip, _target, _meta) in zip(range(count), loader))

    def _connection_contributions(self, model: nn.Module) -> dict[tuple[int, int], float]:
        """RMS over ``train.contribution_batches`` training batches of each edge's term in its target's fused
        input, in eval mode (see ``AssembleNet.connection_contributions``)."""
        count = self.cfg.train.contribution_batches
        if not count or not hasattr(model, "connection_contributions"):
            return {}
        with torch.random.fork_rng(devices=[]):
            return connection_contributions(model, self._fixed_train_clips(count), self.device,
                                            channels_last=self.cfg.train.channels_last)

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
        if self.writes and self.run_dir is not None:  # writes implies a run_dir; mypy cannot see it
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
        loader: torch.utils.data.DataLoader[Any] | None
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
            # torch.compile of a Module returns an OptimizedModule (a Module); its stub says only "a callable".
            self._training_module = cast(nn.Module, torch.compile(model)) if self.cfg.train.compile else model
            self._loss_window = LossWindow(self.device, self.step)
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
        self._loss_window.record(loss.detach())

    # -- the loss, kept on the device between log points (engine/loss.py) ------------------------------
    def _read_loss_window(self, steps: int) -> float:
        """The mean loss over the last ``steps`` updates of every process, after checking that none was
        non-finite; resets the window. One host read (and, under torchrun, one all-reduce) of the summed loss
        and the count of processes that saw a non-finite one; only a divergence costs a second."""
        total, diverged = self._loss_window.read_sum()
        if diverged:
            self._raise_if_diverged()
        self._loss_window.reset()
        return total / (steps * self.dist.world_size)

    def _raise_if_diverged(self) -> None:
        window: LossWindow | None = getattr(self, "_loss_window", None)
        first = window.first_non_finite() if window is not None else None
        if first is not None:
            self._diverged(*first)

    def _diverged(self, step: int, value: float) -> None:
        self.metrics_log.log("error", self.step,
                             {"error": f"non-finite loss {value} at step {step}", "epoch": self.epoch})
        self.metrics_log.close()
        raise divergence_error(step, value, steps_per_epoch=self.steps_per_epoch, last_checkpoint=self.last_checkpoint)

    def _finish(self) -> TrainResult:
        self._raise_if_diverged()
        if self.evaluated_step == self.step and self.last_eval is not None:
            result = self.last_eval
        else:
            result = self.run_eval(final=True)
        skipped = gather_skipped(self.skipped_videos())  # every process's skips (each skips on its own shard)
        eval_model = self._eval_model()
        weights_path = None
        if self.writes:
            assert self.run_dir is not None
            weights_path = write_run_files(self.run_dir, eval_model, result, cfg=self.cfg, model_spec=self.model_spec,
                                           class_names=self.class_names, multi_label=self.multi_label,
                                           num_classes=self.num_classes, primary_metric=self.primary_metric,
                                           step=self.step, epoch=self.epoch, skipped=skipped)
        self.metrics_log.close()
        barrier()
        outcome = learned_wiring(eval_model, self.input_graph, self.cfg, metrics=dict(result.metrics),
                                 contributions=self._connection_contributions(eval_model))
        return TrainResult(**vars(outcome), primary_metric=self.primary_metric, model=eval_model, steps=self.step,
                           output_dir=self.run_dir, weights_path=weights_path, resumed_from=self.resumed_from,
                           history=list(self.history), eval_result=result, skipped_videos=skipped)


def run_training(config: str | os.PathLike[str] | Mapping[str, Any] | Config | None = None, *, graph: Any = None,
                 output_dir: str | os.PathLike[str] | None = UNSET, seed: int | None = None,
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
    cfg = run_config(config, overrides, output_dir=output_dir, seed=seed, max_steps=max_steps,
                     width_multiplier=width_multiplier, device=device, num_threads=num_threads)
    # Hold output.dir before building anything, so a second run on it fails at once (rank 0 holds it).
    with hold_folder(cfg.output.dir, enabled=env_dist_info().is_main):
        trainer = Trainer(cfg, graph=graph, train_dataset=train_dataset, val_dataset=val_dataset, progress=progress)
        return trainer.fit()
