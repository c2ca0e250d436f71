"""Training, evaluation, prediction and export: the engine behind ``assemblenet train|evaluate|predict|export``.

Programmatic entry points:

- :func:`run_training` trains (and validates) what a config describes; returns a :class:`TrainResult`.
- :func:`run_evaluation` evaluates trained weights on a config's validation split and writes the report.
- :func:`load_config` validates a YAML file / mapping plus dotted overrides into a :class:`Config`.
- :func:`evaluate` runs multi-view evaluation of a model on a dataset.
- :func:`save_weights` / :func:`load_trained_model` handle safetensors weights with their JSON sidecar.

This package may import ``assemblenet.models``, ``data``, ``graph`` and the shared top-level modules
(``errors``, ``fileio``, ``config_schema``), never ``search`` or ``cli``.
Heavy submodules load lazily so that ``import assemblenet.engine`` stays cheap.
"""

from __future__ import annotations

from assemblenet.lazy import lazy_attributes

_EXPORTS = {
    "Config": "config", "load_config": "config", "save_config": "config", "describe_schema": "config",
    "run_training": "trainer", "Trainer": "trainer", "TrainResult": "results", "TrainingOutcome": "results",
    "run_evaluation": "evaluator", "TrainingDivergedError": "loss", "build_split": "datasets",
    "evaluate": "evaluator", "EvalResult": "evaluator", "write_eval_outputs": "evaluator",
    "compute_metrics": "metrics", "charades_map": "metrics", "sklearn_map": "metrics",
    "save_weights": "weights", "load_model": "weights", "load_trained_model": "weights",
    "read_sidecar": "weights",
    "export_model": "export", "predict_video": "predict",
}

__all__ = sorted(_EXPORTS)

__getattr__ = lazy_attributes(__name__, _EXPORTS)
