"""Run logs: ``metrics.jsonl`` (one JSON record per line), TensorBoard scalars, and PNG plots.

Only rank 0 logs. On resume, records after the resumed step are dropped (the crashed run wrote them, the
resumed run will write them again) and TensorBoard purges them the same way.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

import numpy as np

from assemblenet.fileio import atomic_write_text, save_figure

if TYPE_CHECKING:  # TensorBoard loads only when a run writes to it
    from torch.utils.tensorboard import SummaryWriter

METRICS_FILE = "metrics.jsonl"


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item") and callable(value.item):
        return _clean(value.item())
    return value


def read_metrics(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The records of a ``metrics.jsonl``; a torn last line (from a killed run) is skipped."""
    path = Path(path)
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


class MetricsLogger:
    """Appends records to ``metrics.jsonl`` and mirrors scalars to TensorBoard.

    Args:
        run_dir: the output folder; ``None`` disables everything (in-memory runs, non-zero ranks).
        tensorboard: also write TensorBoard event files under ``run_dir/tensorboard``.
        resume_step: drop records with a larger ``step`` (see the module docstring).
    """

    def __init__(self, run_dir: str | os.PathLike[str] | None, *, tensorboard: bool = True,
                 resume_step: int | None = None) -> None:
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.path = self.run_dir / METRICS_FILE if self.run_dir is not None else None
        self.writer: SummaryWriter | None = None
        if self.run_dir is None or self.path is None:
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if resume_step is not None and self.path.exists():
            kept = [r for r in read_metrics(self.path) if int(r.get("step", 0)) <= resume_step]
            atomic_write_text(self.path, "".join(json.dumps(r) + "\n" for r in kept))
        elif resume_step is None and self.path.exists():
            self.path.unlink()
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(self.run_dir / "tensorboard"),
                                        purge_step=resume_step if resume_step else None)

    def log(self, kind: str, step: int, values: Mapping[str, Any]) -> None:
        """Write one record ``{"kind": kind, "step": step, **values}``; numeric values also go to
        TensorBoard as ``kind/name``."""
        if self.path is None:
            return
        record = {"kind": kind, "step": int(step), **{k: _clean(v) for k, v in values.items()}}
        # Appended, not rewritten through assemblenet.fileio: one line per step would make every write copy the
        # whole log. A line torn by a kill is skipped by read_metrics and dropped on resume (see __init__).
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
            handle.flush()
        if self.writer is not None:
            for key, value in values.items():
                value = _clean(value)
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    self.writer.add_scalar(f"{kind}/{key}", value, int(step))

    def flush(self) -> None:
        if self.writer is not None:
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


# -- plots ---------------------------------------------------------------------------------------------
def _pyplot() -> ModuleType:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_training_curves(records: Iterable[Mapping[str, Any]], path: str | os.PathLike[str],
                         primary_metric: str | None = None) -> Path:
    """Training loss and learning rate per step, and validation metrics per evaluation, as one PNG."""
    plt = _pyplot()
    records = list(records)
    train = [r for r in records if r.get("kind") == "train" and r.get("loss") is not None]
    evals = [r for r in records if r.get("kind") == "val"]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    if train:
        steps = [r["step"] for r in train]
        axes[0].plot(steps, [r["loss"] for r in train], lw=1)
        axes[1].plot(steps, [r.get("lr") for r in train], lw=1, color="tab:orange")
    axes[0].set(title="training loss", xlabel="step")
    axes[1].set(title="learning rate", xlabel="step")
    names = [n for n in ("map", "map_sklearn", "top1", "top5", "mean_class_accuracy")
             if any(r.get(n) is not None for r in evals)]
    for name in names:
        points = [(r["step"], r[name]) for r in evals if r.get(name) is not None]
        style = "-o" if name == primary_metric else "--."
        axes[2].plot(*zip(*points), style, label=name, ms=4)
    axes[2].set(title="validation", xlabel="step", ylim=(0, 1))
    if names:
        axes[2].legend(loc="lower right", fontsize=8)
    for ax in axes:
        ax.grid(alpha=0.3)
    path = Path(path)
    save_figure(fig, path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def plot_confusion_matrix(matrix: np.ndarray, class_names: Sequence[str], path: str | os.PathLike[str]) -> Path:
    """Row-normalised confusion matrix (rows: true class) as a PNG; counts are written in the cells when the
    matrix is small."""
    plt = _pyplot()
    matrix = np.asarray(matrix)
    k = len(matrix)
    with np.errstate(invalid="ignore", divide="ignore"):
        normalised = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    size = min(max(5.0, 0.35 * k + 2), 40.0)
    fig, ax = plt.subplots(figsize=(size, size))
    image = ax.imshow(normalised, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of the true class")
    if k <= 40:
        ax.set_xticks(range(k), labels=list(class_names), rotation=90, fontsize=7)
        ax.set_yticks(range(k), labels=list(class_names), fontsize=7)
    if k <= 20:
        for i in range(k):
            for j in range(k):
                if matrix[i, j]:
                    ax.text(j, i, str(int(matrix[i, j])), ha="center", va="center", fontsize=7,
                            color="white" if normalised[i, j] > 0.5 else "black")
    ax.set(xlabel="predicted class", ylabel="true class", title="confusion matrix")
    path = Path(path)
    save_figure(fig, path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path
