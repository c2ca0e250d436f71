"""The study config (``assemblenet search-study CONFIG``): schema, defaults and checks, and the study's constants
(stages, folder and file names). Free of torch and numpy, so the CLI's ``--help`` can read :data:`STAGES`."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from assemblenet.config_schema import (
    PATH_RULE,
    Checker,
    Override,
    dump_yaml,
    key_error,
    parse_dataclass,
    read_config,
    to_plain,
)
from assemblenet.search.registry import strategy_names
from assemblenet.search.study.proxy_validity import ProxyValidityConfig, validate_proxy_validity

STUDY_FORMAT = "assemblenet-study/v1"
STAGES = ("recipes", "search", "analyse", "retrain", "baselines", "proxy-validity", "all")
GUIDED = "evolution"
BASELINE = "random"
CONFIDENCE = 0.95
LOG_FILE = "study_log.jsonl"
TRAIN_TIME_FILE = "train_time.json"  # a worker process's training time, for the result it leaves behind
RETRAIN_DIR = "retrain"
BASELINES_DIR = "baselines"
RETRAIN_RECORD = "retrain.json"  # the run's single best graph
RESCORED_RECORD = "retrain_rescored.json"  # the run's finalist re-scoring choice
RECIPES_DIR = "recipes"
AUTO_RECIPE = "auto"
SINGLE_BEST_CHOICE = "single-best"
RESCORED_CHOICE = "rescored"
RESULT_FILE = "result.json"
ENGINE_FINAL_METRICS = "final_metrics.json"  # assemblenet.engine.trainer.FINAL_METRICS_FILE
HASH_CHARS = 12
# A study's default strategies: those that need nothing of the proxy (oneshot-attention needs peer attention).
DEFAULT_STRATEGIES = ("evolution", "evolution-unguided", "random", "oneshot")


@dataclass(frozen=True)
class RetrainConfig:
    """Retraining each run's best graph from scratch on the full budget (the test score the search never saw).

    ``config`` is the engine training config (relative to the working directory; None: the engine's defaults);
    ``overrides`` are dotted engine overrides (e.g. ``data.val`` pointing at the test split); ``steps`` is the
    training budget (None: the config's epochs); ``seeds`` the training seeds per graph (engine seeds 0..n-1);
    ``width_multiplier`` the model width (None: the search space's); ``metric`` the engine metric reported as
    the test score (``metric``: the engine's primary metric).
    """

    enabled: bool = False
    config: str | None = None
    overrides: Mapping[str, Any] = field(default_factory=dict)
    steps: int | None = None
    seeds: int = 1
    width_multiplier: float | None = None
    metric: str = "metric"
    workers: int = 1  # trainings run at once, each in its own process with one torch thread (1: in-process)
    # A candidate of ``recipes`` to train with instead of ``steps`` and the config's lr: its name, or "auto" for
    # the one the recipes stage measured best (see ``choose_recipe``); null: ``steps`` as configured.
    recipe: str | None = None


@dataclass(frozen=True)
class RecipeCandidate:
    """One final-training recipe: ``steps`` (null: ``retrain.steps``) and ``lr`` (null: the training config's)."""

    name: str = ""
    steps: int | None = None
    lr: float | None = None


@dataclass(frozen=True)
class RecipesConfig:
    """Which final-training recipe makes a fixed graph's training seeds agree: every candidate trains each fixed
    wiring of ``graphs`` with ``seeds`` training seeds (the same seeds for every candidate, so they pair)."""

    enabled: bool = False
    graphs: tuple[str, ...] = ("asn50", "late_fusion")
    seeds: int = 5
    candidates: tuple[RecipeCandidate, ...] = ()


@dataclass(frozen=True)
class BaselinesConfig:
    """Fixed wirings trained with the retrain settings (same budget, same test split), ``seeds`` seeds each."""

    enabled: bool = False
    names: tuple[str, ...] = ("rgb_only", "flow_only", "late_fusion", "asn50")
    seeds: int = 3


@dataclass(frozen=True)
class StudyConfig:
    name: str = "study"
    search: str = ""  # the base search config (required; relative paths: to the working directory)
    strategies: tuple[str, ...] = DEFAULT_STRATEGIES
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    max_evaluations: int = 40
    output_dir: str | None = None
    bootstrap_samples: int = 10000
    # Copy an evaluation that another run of the study already made (same exact graph, same trial seed: the
    # initial population that evolution, its control and random search share) instead of running it again.
    reuse_evaluations: bool = True
    retrain: RetrainConfig = field(default_factory=RetrainConfig)
    baselines: BaselinesConfig = field(default_factory=BaselinesConfig)
    recipes: RecipesConfig = field(default_factory=RecipesConfig)
    proxy_validity: ProxyValidityConfig = field(default_factory=ProxyValidityConfig)
    # The path of the study file, for messages; not a YAML key.
    source: str = field(default="study config", compare=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        data = to_plain(self)
        data.pop("source", None)
        return data

    def to_yaml(self) -> str:
        return dump_yaml(self.to_dict())

    def resolve(self, path: str) -> Path:
        """A path of the study file, made absolute (relative paths are relative to the working directory)."""
        return Path(path).absolute()

    @property
    def search_path(self) -> Path:
        return self.resolve(self.search)


def load_study_config(path: str | Path, overrides: Iterable[Override] = ()) -> StudyConfig:
    """The study config of a YAML file, with dotted ``overrides`` applied before validation. ``name``
    defaults to the file's stem."""
    data, source = read_config(path, overrides, what="study config", name_from_file=True)
    return study_config_from_dict(data, source=source)


def study_config_from_dict(data: Any, *, source: str = "study config") -> StudyConfig:
    """Parse and validate a study config with the shared schema layer (one-line errors naming the file and
    the dotted key)."""
    config = parse_dataclass(StudyConfig, data, source=source, skip={"source"})
    config = dataclasses.replace(config, source=source)
    if not data or "search" not in data:
        raise key_error(source, "search", "required: the base search config (a path relative to the working "
                        "directory)")
    validate_study_config(config)
    return config


def validate_study_config(config: StudyConfig) -> None:
    from assemblenet.search.baselines import BASELINES

    check = Checker(config.source, config)
    fail = check.fail
    if not config.name:
        fail("name", "must not be empty")
    if not config.search:
        fail("search", "must name the base search config")
    if not config.search_path.is_file():
        fail("search", f"search config not found: {config.search} ({PATH_RULE}: {Path.cwd()})")
    for i in range(len(config.strategies)):
        check.one_of(f"strategies[{i}]", strategy_names())
    for i in range(len(config.seeds)):
        check.at_least(f"seeds[{i}]", 0)
    for key, values in (("strategies", config.strategies), ("seeds", config.seeds)):
        if not values:
            fail(key, "must not be empty")
        if len(set(values)) != len(values):
            fail(key, f"must be distinct, got {list(values)}")
    for i in range(len(config.baselines.names)):
        check.one_of(f"baselines.names[{i}]", BASELINES)
    for key in ("max_evaluations", "retrain.steps", "retrain.seeds", "retrain.workers", "baselines.seeds"):
        check.at_least(key, 1)
    if config.bootstrap_samples < 100:
        fail("bootstrap_samples", f"must be at least 100 for a percentile interval, got {config.bootstrap_samples}")
    check.within("retrain.width_multiplier", 0, 1, low_open=True)
    if not config.retrain.metric:
        fail("retrain.metric", "must name an engine metric")
    for i in range(len(config.recipes.graphs)):
        check.one_of(f"recipes.graphs[{i}]", BASELINES)
    names = [c.name for c in config.recipes.candidates]
    for i, candidate in enumerate(config.recipes.candidates):
        if not candidate.name or candidate.name == AUTO_RECIPE:
            fail(f"recipes.candidates[{i}].name", f"must be a non-empty name other than {AUTO_RECIPE!r}")
        check.at_least(f"recipes.candidates[{i}].steps", 1)
        if candidate.lr is not None and not candidate.lr > 0:
            fail(f"recipes.candidates[{i}].lr", f"must be positive, got {candidate.lr}")
    if len(set(names)) != len(names):
        fail("recipes.candidates", f"names must be distinct, got {names}")
    check.at_least("recipes.seeds", 2)
    if config.recipes.enabled and not config.recipes.candidates:
        fail("recipes.candidates", "must list at least one recipe when recipes.enabled is true")
    recipe = config.retrain.recipe
    if recipe is not None and recipe != AUTO_RECIPE and recipe not in names:
        fail("retrain.recipe", f"must be {AUTO_RECIPE!r}, null or a name of recipes.candidates {names}, got {recipe!r}")
    if recipe == AUTO_RECIPE and not config.recipes.candidates:
        fail("retrain.recipe", "'auto' needs recipes.candidates to choose from")
    validate_proxy_validity(check, config.proxy_validity)
    retrain_config = config.retrain.config
    trains = config.retrain.enabled or config.proxy_validity.enabled
    if trains and retrain_config is not None and not config.resolve(retrain_config).is_file():
        fail("retrain.config", f"engine training config not found: {retrain_config} ({PATH_RULE}: {Path.cwd()})")


@dataclass(frozen=True)
class TrainingSettings:
    """How one final training runs: its step budget and engine overrides; ``tag`` is the recipe's name ('' for
    the plain ``retrain`` settings), which names its folders so that two recipes never share a result."""

    steps: int | None
    overrides: Mapping[str, Any]
    tag: str = ""
    lr: float | None = None

    def folder_name(self, stem: str, seed: int) -> str:
        parts = [p for p in (stem, self.tag) if p]
        return "-".join(parts + [f"seed{seed}"])
