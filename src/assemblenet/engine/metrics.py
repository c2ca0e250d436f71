"""Video classification metrics, computed the way the field computes them.

All functions take NumPy arrays or tensors: ``scores`` [N, K] (higher = more confident; probabilities or
logits), and ``targets`` either class indices [N] (single-label) or a multi-hot matrix [N, K] (multi-label).

Two mAP definitions are reported side by side because published numbers use both:

- ``charades_map``: the official Charades evaluation (``Charades_v1_classify.m``, and ``charades_map`` in the
  Charades starter code). Per class, videos are ranked by score; precision is accumulated at every positive
  (ties keep video order, i.e. a stable sort); videos that have no label at all are moved to the bottom of every
  ranking; classes without any positive are excluded from the mean.
- ``sklearn_map``: per-class average precision as in ``sklearn.metrics.average_precision_score`` (ties form one
  threshold step, so tied scores share a precision value), over all videos, classes without positives
  excluded.

Top-k ranks classes by score with ties broken towards the lower class index (as ``argmax`` does).
"""

from __future__ import annotations

from typing import Any

import numpy as np

ArrayLike = Any


def _np(x: ArrayLike) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu()
        if str(x.dtype) == "torch.bfloat16":
            x = x.float()
        x = x.numpy()
    return np.asarray(x)


def to_multi_hot(targets: ArrayLike, num_classes: int) -> np.ndarray:
    """[N] class indices -> [N, K] 0/1 matrix; a [N, K] matrix is returned as 0/1."""
    values = _np(targets)
    if values.ndim == 2:
        return (values > 0).astype(np.int64)
    out = np.zeros((len(values), num_classes), dtype=np.int64)
    out[np.arange(len(values)), values.astype(np.int64)] = 1
    return out


# -- average precision ---------------------------------------------------------------------------------
def charades_average_precision(scores: ArrayLike, targets: ArrayLike) -> np.ndarray:
    """Per-class AP as the official Charades evaluation computes it; NaN for classes without positives.

    Args:
        scores: [N, K] video scores.
        targets: [N, K] multi-hot (or [N] indices).
    """
    scores = _np(scores).astype(np.float64)
    gt = to_multi_hot(targets, scores.shape[1])
    scores = scores.copy()
    scores[gt.sum(axis=1) == 0, :] = -np.inf  # videos without any label rank last
    num_videos, num_classes = scores.shape
    ap = np.full(num_classes, np.nan)
    for k in range(num_classes):
        positives = gt[:, k] > 0
        num_pos = int(positives.sum())
        if num_pos == 0:
            continue
        order = np.argsort(-scores[:, k], kind="stable")
        tp = positives[order]
        precision = np.cumsum(tp) / np.arange(1, num_videos + 1)
        ap[k] = precision[tp].sum() / num_pos
    return ap


def sklearn_average_precision(scores: ArrayLike, targets: ArrayLike) -> np.ndarray:
    """Per-class AP with scikit-learn's step-wise definition (tied scores are one threshold); NaN for classes
    without positives. Implemented here, tested against ``sklearn.metrics.average_precision_score``."""
    scores = _np(scores).astype(np.float64)
    gt = to_multi_hot(targets, scores.shape[1])
    num_classes = scores.shape[1]
    ap = np.full(num_classes, np.nan)
    for k in range(num_classes):
        y = gt[:, k] > 0
        num_pos = int(y.sum())
        if num_pos == 0:
            continue
        order = np.argsort(-scores[:, k], kind="stable")
        s, t = scores[order, k], y[order]
        # Last index of each run of equal scores: the thresholds.
        distinct = np.r_[np.nonzero(np.diff(s))[0], len(s) - 1]
        tps = np.cumsum(t)[distinct]
        fps = (distinct + 1) - tps
        precision = tps / (tps + fps)
        recall = tps / num_pos
        ap[k] = float(np.sum(np.diff(np.r_[0.0, recall]) * precision))
    return ap


def _nanmean(values: np.ndarray) -> float:
    finite = values[~np.isnan(values)]
    return float(finite.mean()) if finite.size else float("nan")


def charades_map(scores: ArrayLike, targets: ArrayLike) -> float:
    """Mean of :func:`charades_average_precision` over classes with positives."""
    return _nanmean(charades_average_precision(scores, targets))


def sklearn_map(scores: ArrayLike, targets: ArrayLike) -> float:
    """Mean of :func:`sklearn_average_precision` over classes with positives (sklearn's macro average)."""
    return _nanmean(sklearn_average_precision(scores, targets))


# -- accuracy ------------------------------------------------------------------------------------------
def class_ranks(scores: ArrayLike) -> np.ndarray:
    """[N, K] class indices sorted by descending score; ties go to the lower index."""
    scores = _np(scores)
    return np.argsort(-scores.astype(np.float64), axis=1, kind="stable")


def topk_accuracy(scores: ArrayLike, targets: ArrayLike, k: int = 1) -> float:
    """Share of samples whose (any, for multi-hot targets) true class is among the k best-scored classes.

    For multi-label data this is hit@k. Samples with no label count as misses.
    """
    scores = _np(scores)
    if len(scores) == 0:
        return float("nan")
    top = class_ranks(scores)[:, :k]
    gt = to_multi_hot(targets, scores.shape[1])
    hits = np.take_along_axis(gt, top, axis=1).any(axis=1)
    return float(hits.mean())


def confusion_matrix(predictions: ArrayLike, targets: ArrayLike, num_classes: int) -> np.ndarray:
    """[K, K] counts; row = true class, column = predicted class (sklearn's convention)."""
    predictions = _np(predictions).astype(np.int64)
    targets = _np(targets).astype(np.int64)
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (targets, predictions), 1)
    return matrix


def per_class_accuracy(scores: ArrayLike, targets: ArrayLike) -> np.ndarray:
    """Recall of each class (diagonal / row sum of the confusion matrix); NaN for classes absent from
    ``targets``."""
    scores = _np(scores)
    matrix = confusion_matrix(class_ranks(scores)[:, 0], targets, scores.shape[1])
    support = matrix.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(support > 0, np.diag(matrix) / np.maximum(support, 1), np.nan)


def mean_class_accuracy(scores: ArrayLike, targets: ArrayLike) -> float:
    """Mean per-class accuracy (Toyota Smarthome's metric) over the classes present in ``targets``; equals
    ``sklearn.metrics.balanced_accuracy_score``."""
    return _nanmean(per_class_accuracy(scores, targets))


# -- everything at once ---------------------------------------------------------------------------------
def compute_metrics(scores: ArrayLike, targets: ArrayLike, *, multi_label: bool) -> dict[str, float]:
    """The standard report for video-level scores.

    Returns ``map`` (official Charades definition), ``map_sklearn``, ``top1``, ``top5`` (hit@k for
    multi-label), and for single-label data ``mean_class_accuracy``. ``num_videos`` is included.
    """
    scores = _np(scores).astype(np.float64)
    targets = _np(targets)
    num_classes = scores.shape[1]
    metrics = {
        "map": charades_map(scores, targets),
        "map_sklearn": sklearn_map(scores, targets),
        "top1": topk_accuracy(scores, targets, 1),
        "top5": topk_accuracy(scores, targets, min(5, num_classes)),
        "num_videos": float(len(scores)),
    }
    if not multi_label:
        metrics["mean_class_accuracy"] = mean_class_accuracy(scores, targets)
    return metrics


def primary_metric_name(metric: str, multi_label: bool) -> str:
    """Resolve ``eval.metric: auto``: Charades mAP for multi-label data, top-1 otherwise."""
    if metric != "auto":
        return metric
    return "map" if multi_label else "top1"
