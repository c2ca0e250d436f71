"""Multi-view evaluation: clips x crops per video, view aggregation, metrics, and report files; and evaluating a
trained checkpoint on a config's validation split (:func:`run_evaluation`, ``assemblenet evaluate``).

Each view's logits become probabilities (sigmoid for multi-label data, softmax otherwise); a video's score is
the mean (or max) over its views, as PySlowFast and the Charades starter code do. Under ``torchrun`` every
rank scores a disjoint shard of the views; the shards are gathered and ordered by view index, so the result
equals a single-process evaluation.
"""

from __future__ import annotations

import csv
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from assemblenet.engine import metrics as M
from assemblenet.engine.config import Config
from assemblenet.engine.datasets import build_split
from assemblenet.engine.distributed import (
    SeededDataset,
    ShardedEvalSampler,
    all_gather_objects,
    current_dist_info,
    env_dist_info,
    init_distributed,
)
from assemblenet.engine.metrics import primary_metric_name
from assemblenet.engine.modeling import autocast_context, eval_amp, model_dtype, model_inputs, prepare_for_inference  # noqa: F401 - re-exported
from assemblenet.engine.placement import configure_backends, resolve_device
from assemblenet.engine.weights import load_trained_model
from assemblenet.errors import CheckpointError
from assemblenet.fileio import atomic_path, atomic_write_text, json_safe

logger = logging.getLogger(__name__)


@dataclass
class EvalResult:
    """Video-level results: ``scores`` [V, K] probabilities, ``targets`` [V] indices or [V, K] multi-hot."""

    video_ids: list[str]
    scores: np.ndarray
    targets: np.ndarray
    multi_label: bool
    metrics: dict[str, float]
    num_views: int
    class_names: list[str] = field(default_factory=list)
    # Videos of the evaluated split that were skipped (missing, unreadable): path -> reason. Their views were
    # served by the next good video, so they are absent from ``video_ids``.
    skipped: dict[str, str] = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return int(self.scores.shape[1])


def _video_target(target: torch.Tensor, multi_label: bool) -> torch.Tensor:
    if multi_label and target.dim() == 2:  # per-frame targets [T, K]: the video-level label set
        return target.amax(dim=0)
    return target


@torch.no_grad()
def evaluate(model: nn.Module, dataset: Any, *, device: torch.device | str = "cpu", batch_size: int = 8,
             num_workers: int = 0, aggregation: str = "mean", amp: str = "none", progress: bool = False,
             desc: str = "eval") -> EvalResult:
    """Score every view of ``dataset`` (a test-mode ``VideoDataset``) and compute the metrics.

    Works in one process or under ``torchrun`` (each rank must call it; all ranks get the full result).
    """
    from tqdm import tqdm

    from assemblenet.data import collate

    if aggregation not in ("mean", "max"):
        raise ValueError(f"aggregation must be 'mean' or 'max', got {aggregation!r}")
    device = torch.device(device)
    info = current_dist_info()
    multi_label = bool(getattr(dataset, "multi_label", False))
    sampler = ShardedEvalSampler(len(dataset), world_size=info.world_size, rank=info.rank)
    loader = torch.utils.data.DataLoader(SeededDataset(dataset), batch_size=batch_size, sampler=sampler,
                                         num_workers=num_workers, collate_fn=collate,
                                         pin_memory=device.type == "cuda")
    was_training = model.training
    model.eval()
    dtype = model_dtype(model)
    rows: list[torch.Tensor] = []
    targets: list[torch.Tensor] = []
    video_index: list[int] = []
    video_ids: list[str] = []
    try:
        bar = tqdm(loader, desc=desc, unit="batch", disable=not (progress and info.is_main), leave=False)
        for clip, target, meta in bar:
            with autocast_context(device, amp):
                logits = model(*model_inputs(clip, device, non_blocking=True, dtype=dtype))
            logits = logits.float()
            probs = torch.sigmoid(logits) if multi_label else torch.softmax(logits, dim=-1)
            rows.append(probs)  # stays on the device: one copy at the end instead of a sync per batch
            targets.extend(_video_target(t, multi_label) for t in target)
            video_index.extend(int(v) for v in meta["video_index"])
            video_ids.extend(str(v) for v in meta["video_id"])
            absorb_skipped(dataset, meta)
    finally:
        model.train(was_training)
    num_classes = getattr(dataset, "num_classes", None)
    local = {
        "view": sampler.indices,
        "scores": torch.cat(rows).cpu() if rows else torch.zeros(0, num_classes or 0),
        "targets": torch.stack(targets) if targets else torch.zeros(0),
        "video_index": video_index,
        "video_id": video_ids,
        "skipped": dict(getattr(dataset, "skipped", {}) or {}),
    }
    gathered = all_gather_objects(local)
    skipped = {path: reason for shard in gathered for path, reason in shard["skipped"].items()}
    shards = [s for s in gathered if len(s["view"])]
    order = np.argsort(np.concatenate([np.asarray(s["view"]) for s in shards]), kind="stable")
    scores = torch.cat([s["scores"] for s in shards])[order]
    view_targets = torch.cat([s["targets"] for s in shards])[order]
    views_video = np.concatenate([np.asarray(s["video_index"]) for s in shards])[order]
    views_id = np.concatenate([np.asarray(s["video_id"], dtype=object) for s in shards])[order]

    videos, first_view, inverse = np.unique(views_video, return_index=True, return_inverse=True)
    inverse_t = torch.as_tensor(inverse)
    if aggregation == "mean":
        sums = torch.zeros(len(videos), scores.shape[1], dtype=torch.float64).index_add_(0, inverse_t, scores.double())
        counts = torch.bincount(inverse_t, minlength=len(videos)).double().unsqueeze(1)
        video_scores = (sums / counts).numpy()
    else:
        video_scores = np.full((len(videos), scores.shape[1]), -np.inf)
        np.maximum.at(video_scores, inverse, scores.double().numpy())
    video_targets = view_targets[torch.as_tensor(first_view)].numpy()
    ids = [str(views_id[i]) for i in first_view]
    metrics = M.compute_metrics(video_scores, video_targets, multi_label=multi_label)
    names = list(getattr(dataset, "class_names", []) or [])
    return EvalResult(video_ids=ids, scores=video_scores, targets=video_targets, multi_label=multi_label,
                      metrics=metrics, num_views=len(scores), class_names=names, skipped=dict(sorted(skipped.items())))


def absorb_skipped(dataset: Any, meta: Any) -> None:
    """Record in ``dataset.skipped`` the videos a loader batch reports skipped (``meta["skipped"]``): DataLoader
    workers skip on their own copies of the dataset, which the main process never sees."""
    absorb = getattr(dataset, "absorb_skipped", None)
    if absorb is not None and isinstance(meta, dict):
        absorb(meta)


# -- report files --------------------------------------------------------------------------------------
def write_charades_submission(path: str | os.PathLike[str], video_ids: Sequence[str], scores: np.ndarray) -> Path:
    """The official Charades classification submission format: one line per video, ``id score_0 ...
    score_{K-1}``, space-separated."""
    path = Path(path)
    lines = [" ".join([vid] + [f"{s:.6g}" for s in row]) for vid, row in zip(video_ids, np.asarray(scores))]
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path


def read_charades_submission(path: str | os.PathLike[str]) -> tuple[list[str], np.ndarray]:
    ids, rows = [], []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        parts = line.split()
        if parts:
            ids.append(parts[0])
            rows.append([float(x) for x in parts[1:]])
    return ids, np.asarray(rows)


def write_eval_outputs(result: EvalResult, out_dir: str | os.PathLike[str], *, save_predictions: bool = True,
                       extra: dict[str, Any] | None = None) -> dict[str, Path]:
    """Write the report: ``eval_metrics.json`` (with ``skipped_videos``, the count of the split's skipped videos,
    and ``skipped``, each one's path and reason), ``per_class_ap.csv``, ``predictions.txt`` (Charades submission
    format), and for single-label data ``confusion_matrix.csv``/``.png`` and ``per_class_accuracy.csv``."""
    from assemblenet.engine.runlog import plot_confusion_matrix

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    k = result.num_classes
    names = result.class_names if len(result.class_names) == k else [str(i) for i in range(k)]
    written: dict[str, Path] = {}
    report = {"metrics": result.metrics, "num_videos": len(result.video_ids), "num_views": result.num_views,
              "multi_label": result.multi_label, "skipped_videos": len(result.skipped), "skipped": result.skipped,
              **(extra or {})}
    written["metrics"] = out / "eval_metrics.json"
    atomic_write_text(written["metrics"], json.dumps(json_safe(report), indent=1))

    ap_official = M.charades_average_precision(result.scores, result.targets)
    ap_sklearn = M.sklearn_average_precision(result.scores, result.targets)
    positives = M.to_multi_hot(result.targets, k).sum(axis=0)
    rows: list[list[Any]] = [["class_index", "class_name", "positives", "ap_charades", "ap_sklearn"]]
    for i in range(k):
        rows.append([i, names[i], int(positives[i]), _fmt(ap_official[i]), _fmt(ap_sklearn[i])])
    written["per_class_ap"] = out / "per_class_ap.csv"
    _write_csv(written["per_class_ap"], rows)

    if save_predictions:
        written["predictions"] = write_charades_submission(out / "predictions.txt", result.video_ids, result.scores)

    if not result.multi_label:
        predicted = M.class_ranks(result.scores)[:, 0]
        matrix = M.confusion_matrix(predicted, result.targets, k)
        written["confusion_matrix"] = out / "confusion_matrix.csv"
        _write_csv(written["confusion_matrix"], [["true\\predicted"] + names] +
                   [[names[i]] + [int(v) for v in matrix[i]] for i in range(k)])
        written["confusion_matrix_png"] = plot_confusion_matrix(matrix, names, out / "confusion_matrix.png")
        accuracy = M.per_class_accuracy(result.scores, result.targets)
        written["per_class_accuracy"] = out / "per_class_accuracy.csv"
        _write_csv(written["per_class_accuracy"], [["class_index", "class_name", "support", "accuracy"]] +
                   [[i, names[i], int(matrix[i].sum()), _fmt(accuracy[i])] for i in range(k)])
    return written


def _fmt(value: float) -> str:
    return "" if np.isnan(value) else f"{value:.6f}"


def _write_csv(path: Path, rows: list[list[Any]]) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(rows)


@dataclass
class CheckpointEvaluation:
    """What :func:`run_evaluation` produced: the result, the primary metric's name, and the report folder
    (``None`` on processes other than the main one, which write nothing)."""

    result: EvalResult
    primary_metric: str
    output_dir: Path | None


def run_evaluation(cfg: Config, checkpoint: str | os.PathLike[str], *, precision: str = "fp32",
                   output_dir: str | os.PathLike[str] | None = None, progress: bool = True) -> CheckpointEvaluation:
    """Evaluate trained weights on the config's ``data.val`` split with its multi-view settings and write the
    report (metrics, per-class tables, confusion matrix, predictions).

    The model is put in inference form (:func:`prepare_for_inference`: BN folded, ``precision`` weights), and
    autocast follows the training's ``train.amp`` (:func:`eval_amp`). The report goes to ``output_dir``, else
    ``output.dir/eval_<checkpoint stem>``, else ``eval_<checkpoint stem>``. Works under ``torchrun``: every
    process evaluates its shard, the main one writes.
    """
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
