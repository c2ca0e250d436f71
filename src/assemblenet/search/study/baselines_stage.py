"""The baselines stage: the fixed wirings of ``baselines.names`` (:mod:`assemblenet.search.baselines`) trained
exactly as the retrained graphs, with the baseline training seeds, into ``OUTPUT/baselines/``."""

from __future__ import annotations

import statistics
from typing import TYPE_CHECKING, Any

from assemblenet.search import stats
from assemblenet.search.study.config import BASELINES_DIR, CONFIDENCE
from assemblenet.search.study.recipes_stage import retrain_settings, settings_if_known
from assemblenet.search.study.training import named_scores, named_scores_by_seed, train_named

if TYPE_CHECKING:
    from assemblenet.search.study.runner import Study


def train_baselines(study: Study) -> list[dict[str, Any]]:
    """Train every fixed wiring of ``baselines.names`` with the baseline training seeds
    (:attr:`StudyConfig.baseline_seeds`: never the recipe seeds) and the retrain settings; return one record per
    (baseline, seed)."""
    return train_named(study, study.output / BASELINES_DIR, study.config.baselines.names,
                       study.config.baseline_seeds, retrain_settings(study), "baseline")


def baselines_analysis(study: Study) -> dict[str, Any] | None:
    """The baselines section of ``study.json`` (None before the stage, or while the recipe is unknown)."""
    folder = study.output / BASELINES_DIR
    settings = settings_if_known(study)
    if not folder.is_dir() or settings is None:
        return None
    out: dict[str, Any] = {}
    measured = named_scores(folder, study.config.baselines.names, study.config.baseline_seeds, settings)
    for name, scores in measured.items():
        interval = stats.t_interval(scores, confidence=CONFIDENCE)  # None for one score
        out[name] = {"n": len(scores), "scores": scores, "mean": statistics.fmean(scores),
                     "std": statistics.stdev(scores) if len(scores) > 1 else None,
                     "ci95_t": interval.to_list() if interval is not None else None}
    return {"metric": study.config.retrain.metric, "steps": settings.steps, "recipe": settings.tag or None,
            "training_seeds": list(study.config.baseline_seeds), "baselines": out}


def wiring_scores(study: Study) -> dict[str, dict[int, float]]:
    """The baselines' test scores by training seed (empty before the baselines stage)."""
    settings = settings_if_known(study)
    if not (study.output / BASELINES_DIR).is_dir() or settings is None:
        return {}
    return named_scores_by_seed(study.output / BASELINES_DIR, study.config.baselines.names,
                                study.config.baseline_seeds, settings)
