"""The recipes stage: every final-training recipe candidate trains the fixed wirings of ``recipes.graphs`` with
the same training seeds (into ``OUTPUT/recipes/``), and ``retrain.recipe`` resolves to the settings the retrain
and baselines stages train with (``auto``: the recipe this stage measured best)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from assemblenet.config_schema import key_error
from assemblenet.errors import ConfigError
from assemblenet.search.study.analysis import recipe_statistics
from assemblenet.search.study.config import AUTO_RECIPE, RECIPES_DIR, TrainingSettings
from assemblenet.search.study.training import named_scores, settings_for, train_named

if TYPE_CHECKING:
    from assemblenet.search.study.runner import Study


def train_recipes(study: Study) -> list[dict[str, Any]]:
    """Train every recipe candidate on every fixed wiring of ``recipes.graphs`` with ``recipes.seeds``
    training seeds (the seeds' spread per recipe is what the stage measures)."""
    cfg = study.config.recipes
    if not cfg.candidates:
        raise key_error(study.config.source, "recipes.candidates", "is empty; list the recipes to compare")
    records = []
    for candidate in cfg.candidates:
        settings = settings_for(study.config, candidate)
        for record in train_named(study, study.output / RECIPES_DIR / candidate.name, cfg.graphs,
                                  study.config.recipe_seeds, settings, f"recipe {candidate.name}"):
            records.append({"recipe": candidate.name, **record})
    return records


def recipes_analysis(study: Study) -> dict[str, Any] | None:
    """The recipes section of ``study.json`` (None: no candidates, or the stage has not run)."""
    cfg = study.config.recipes
    if not cfg.candidates or not (study.output / RECIPES_DIR).is_dir():
        return None
    measured = {c.name: named_scores(study.output / RECIPES_DIR / c.name, cfg.graphs, study.config.recipe_seeds,
                                     settings_for(study.config, c)) for c in cfg.candidates}
    return recipe_statistics(measured, study.config)


def retrain_settings(study: Study) -> TrainingSettings:
    """How the retrained graphs and the baselines train: ``retrain.recipe`` resolved (``auto``: the recipe
    the recipes stage measured best; it must have run)."""
    recipe = study.config.retrain.recipe
    candidates = {c.name: c for c in study.config.recipes.candidates}
    if recipe is None:
        return settings_for(study.config, None)
    if recipe != AUTO_RECIPE:
        return settings_for(study.config, candidates[recipe])
    analysis = recipes_analysis(study)
    if analysis is None or analysis["chosen"] is None:
        raise ConfigError("retrain.recipe is 'auto': run the recipes stage first (--stage recipes); "
                          "it has not measured every candidate yet")
    return settings_for(study.config, candidates[analysis["chosen"]])


def settings_if_known(study: Study) -> TrainingSettings | None:
    """:func:`retrain_settings`, or None while ``auto`` has no measured recipe yet."""
    try:
        return retrain_settings(study)
    except ConfigError:
        return None
