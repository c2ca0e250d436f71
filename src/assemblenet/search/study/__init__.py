"""The search study: compare search strategies over seeds with sound statistics, in one resumable command
(``assemblenet search-study CONFIG``).

Stages, in the order ``stage="all"`` runs them:

- **recipes** (when ``recipes.enabled``): every final-training recipe candidate (steps, lr) trains the fixed
  wirings of ``recipes.graphs`` with the same training seeds, into ``OUTPUT/recipes/``; the pooled spread over
  seeds says which recipe makes a fixed graph's seeds agree, and ``retrain.recipe: auto`` trains with it.
- **pre-registration**: the config's ``hypotheses`` (each: endpoint, comparison, test, alternative, alpha,
  margin; and the correction over them) are recorded at the study's first invocation in
  ``OUTPUT/registration.json`` with the config hash and the code's git commit; they cannot change once runs have
  data. ``study.md`` shows them first, then their confirmatory tests (:mod:`.confirmatory`: counts only until every
  run a hypothesis needs has finished), then everything else as exploratory. A study refuses to start from a git
  tree with uncommitted changes unless ``allow_dirty`` (``--allow-dirty``).
- **search**: every (strategy, seed) search with :class:`~assemblenet.search.evolution.SearchRunner` into
  ``OUTPUT/<strategy>-seed<N>/``, one after another, finalist re-scoring included when the search config has
  it. A killed study is resumed by rerunning it: finished runs are skipped, an interrupted one resumes.
- **analyse**: ``study.json``, ``study.png`` and ``study.md``: best-so-far curves (mean over seeds with a 95%
  bootstrap band), final best per strategy with intervals, evaluations to reach random search's final best,
  guided evolution against every other strategy paired by search seed (sign-flip permutation and Wilcoxon
  signed-rank tests, paired bootstrap intervals), mutation counts, cost.
- **retrain**: each run's single best graph and its re-scored choice trained from scratch with the engine, with
  ``retrain.seeds`` training seeds, into ``OUTPUT/retrain/``; identical graphs are trained once. The analysis
  then adds the test scores, the paired comparison of the two choices, the training-seed spread and the
  proxy-vs-test correlation.
- **baselines** (when ``baselines.enabled``): the fixed wirings of :mod:`assemblenet.search.baselines` trained
  exactly as the retrained graphs, into ``OUTPUT/baselines/``.

Modules: :mod:`.config` (the config and the study's constants; light, for the CLI), :mod:`.runner` (the
:class:`Study`: its folder, invocations, log and the analyse stage), one module per stage that trains or searches
(:mod:`.search_stage`, :mod:`.recipes_stage`, :mod:`.retrain_stage`, :mod:`.baselines_stage`,
:mod:`.proxy_validity`), :mod:`.training` (how the stages train a graph), :mod:`.analysis` (statistics, pure
functions over :class:`~assemblenet.search.history.SearchRun`), :mod:`.confirmatory` (the pre-registered
hypotheses' tests and correction), :mod:`.results` (the analysis as typed records, ``study.json`` field by field),
:mod:`.render` (figures and markdown from those records). The names below are re-exported lazily, so importing the
package stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

from assemblenet.search.study.config import (
    AUTO_RECIPE,
    STAGES,
    Arm,
    BaselinesConfig,
    Comparison,
    HypothesesConfig,
    Hypothesis,
    RecipeCandidate,
    RecipesConfig,
    RetrainConfig,
    StudyConfig,
    TrainingSettings,
    config_hash,
    load_study_config,
    study_config_from_dict,
    validate_study_config,
)

_LAZY = {
    "RunSpec": "runner", "Study": "runner", "StudyOutcome": "runner",
    "run_study": "runner",
    "analyse_runs": "analysis", "choose_recipe": "analysis", "recipe_statistics": "analysis",
    "retrain_statistics": "analysis", "RECIPE_RULE": "analysis", "is_connection_kind": "analysis",
    "confirmatory_analysis": "confirmatory",
    "plot_choices": "render", "plot_proxy_vs_test": "render", "plot_study": "render", "study_markdown": "render",
    "StudyAnalysis": "results",
}

__all__ = ["AUTO_RECIPE", "STAGES", "Arm", "BaselinesConfig", "Comparison", "HypothesesConfig", "Hypothesis",
           "RecipeCandidate", "RecipesConfig", "RetrainConfig", "StudyConfig", "TrainingSettings", "config_hash",
           "load_study_config", "study_config_from_dict",
           "validate_study_config", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
