"""What a training run returns: :class:`TrainingOutcome`, the part a search reads (the validation metrics and the
wiring the run learned), and :class:`TrainResult`, all of it (the model, its files, its history); and the files a
finished run leaves in its folder (:func:`write_run_files`)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from assemblenet.engine.config import Config
from assemblenet.engine.evaluator import EvalResult, write_eval_outputs
from assemblenet.engine.runlog import plot_training_curves, read_metrics
from assemblenet.engine.weights import save_weights
from assemblenet.fileio import atomic_write_json, json_safe
from assemblenet.graph.spec import AssembleNetGraph, BlockNode

logger = logging.getLogger(__name__)

WEIGHTS_FILE = "model.safetensors"
FINAL_METRICS_FILE = "final_metrics.json"
EVAL_DIR = "eval"

Edge = tuple[int, int]


@dataclass
class TrainingOutcome:
    """What a training run reports to a search (``search/fitness.py`` reads exactly these fields).

    ``metrics`` are the final validation metrics plus ``metric``, the value of the run's primary metric.
    ``connection_weights`` maps each edge ``(source, target)`` to the learned connection strength (1.0 into a
    single-input node); ``learned_graph`` is the trained graph carrying those strengths (unscaled filters, as
    given). ``attention_weights`` (peer attention only, else empty) maps each connection to its learned softmax
    weight per attention source (peer node -> weight), in graph node indices. ``connection_contributions`` (with
    ``train.contribution_batches``) maps each edge to the RMS of what it adds to its target's fused input,
    measured in eval mode on that many training batches.
    """

    metrics: dict[str, float]
    learned_graph: AssembleNetGraph | None = None
    connection_weights: dict[Edge, float] = field(default_factory=dict)
    attention_weights: dict[Edge, dict[int, float]] = field(default_factory=dict)
    connection_contributions: dict[Edge, float] = field(default_factory=dict)

    @property
    def metric(self) -> float:
        return self.metrics["metric"]


@dataclass(kw_only=True)
class TrainResult(TrainingOutcome):
    """What a training run produced: its :class:`TrainingOutcome` plus the trained model (``eval.use_ema``'s
    choice of weights), the name of the primary metric (``map``, ``top1``, ...), the steps taken, the files it
    wrote (``None`` for an in-memory run), the metrics history, the final evaluation and, per split ("train",
    "val"), the videos skipped as missing or unreadable (path -> reason)."""

    primary_metric: str
    model: nn.Module
    steps: int = 0
    output_dir: Path | None = None
    weights_path: Path | None = None
    resumed_from: Path | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    eval_result: EvalResult | None = None
    skipped_videos: dict[str, dict[str, str]] = field(default_factory=dict)


def learned_wiring(model: nn.Module, input_graph: Any, cfg: Config, *, metrics: dict[str, float],
                   contributions: dict[Edge, float]) -> TrainingOutcome:
    """The outcome of training ``model`` (built from ``input_graph``, else from ``cfg.model``): ``metrics``, the
    connection strengths and peer attention the model learned, and the measured ``contributions``."""
    outcome = TrainingOutcome(metrics=metrics, connection_contributions=contributions)
    connection_weights = getattr(model, "connection_weights", None)  # every AssembleNet has them
    if connection_weights is not None:
        outcome.connection_weights = dict(connection_weights())
        outcome.learned_graph = learned_graph(model, input_graph, cfg, outcome.connection_weights)
    attention_weights = getattr(model, "attention_weights", None)
    if attention_weights is not None:
        outcome.attention_weights = dict(attention_weights())
    return outcome


def learned_graph(model: nn.Module, input_graph: Any, cfg: Config, weights: dict[Edge, float]) -> AssembleNetGraph:
    """The input graph (unscaled) carrying the learned strengths; the model's own graph when built from a
    preset."""
    from assemblenet.engine.model_spec import resolve_graph

    graph: AssembleNetGraph | None = resolve_graph(input_graph if input_graph is not None else cfg.model.graph)
    if graph is None:
        learned: AssembleNetGraph = getattr(model, "graph_with_learned_weights")()
        return learned
    per_node: list[list[float] | None] = []
    for index, node in enumerate(graph.nodes):
        if isinstance(node, BlockNode) and len(node.inputs) > 1 and (node.inputs[0], index) in weights:
            per_node.append([weights[(source, index)] for source in node.inputs])
        elif isinstance(node, BlockNode) and node.edge_weights is not None:  # pruned by the model: as given
            per_node.append(list(node.edge_weights))
        else:
            per_node.append(None)
    return graph.with_edge_weights(per_node)


def write_run_files(run_dir: Path, model: nn.Module, result: EvalResult, *, cfg: Config, model_spec: dict[str, Any],
                    class_names: list[str], multi_label: bool, num_classes: int, primary_metric: str, step: int,
                    epoch: int, skipped: dict[str, dict[str, str]]) -> Path:
    """The files of a finished run in ``run_dir``: the weights with their sidecar (``model.num_classes`` resolved,
    for predict and export), the final evaluation's report, ``final_metrics.json`` and the training curves.
    Returns the weights path."""
    sidecar_config = cfg.to_dict()
    sidecar_config["model"]["num_classes"] = num_classes  # 'auto' resolved, for predict/export
    weights_path = save_weights(model, run_dir / WEIGHTS_FILE, model_spec=model_spec, class_names=class_names,
                                multi_label=multi_label, config=sidecar_config, metrics=result.metrics,
                                input_spec=cfg.data.input_spec())
    write_eval_outputs(result, run_dir / EVAL_DIR, save_predictions=cfg.output.save_predictions,
                       extra={"step": step, "aggregation": cfg.eval.aggregation, "primary_metric": primary_metric})
    final = {"step": step, "epoch": epoch, "primary_metric": primary_metric, "metrics": result.metrics,
             "weights": str(weights_path), "skipped_videos": {split: len(videos) for split, videos in skipped.items()},
             "skipped": skipped}
    atomic_write_json(run_dir / FINAL_METRICS_FILE, json_safe(final))
    try:
        plot_training_curves(read_metrics(run_dir / "metrics.jsonl"), run_dir / "training_curves.png", primary_metric)
    except Exception as exc:  # noqa: BLE001 - a plot must never fail a finished run
        logger.warning("could not plot the training curves: %s", exc)
    return weights_path
