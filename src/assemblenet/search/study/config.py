"""The study config (``assemblenet search-study CONFIG``): schema, defaults and checks, and the study's constants
(stages, folder and file names). Free of torch and numpy, so the CLI's ``--help`` can read :data:`STAGES`."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Literal, Mapping

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
from assemblenet.search.study.sections import (
    ProxyValidityConfig,
    TasksConfig,
    validate_proxy_validity,
    validate_tasks,
)

STUDY_FORMAT = "assemblenet-study/v1"
STAGES = ("recipes", "search", "analyse", "retrain", "baselines", "proxy-validity", "all")
GUIDED = "evolution"
BASELINE = "random"
CONFIDENCE = 0.95
LOG_FILE = "study_log.jsonl"
REGISTRATION_FILE = "registration.json"  # the hypotheses as first declared, with the config and code of the time
STUDY_REGISTRATION_FORMAT = "assemblenet-study-registration/v1"
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
ENGINE_FINAL_METRICS = "final_metrics.json"  # assemblenet.engine.results.FINAL_METRICS_FILE
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
    # Which runs and choices are retrained: ``strategies`` null: every strategy's runs (else only these, e.g. the
    # guided one when only its test score is an endpoint); ``choices``: the single best and/or the re-scored choice.
    strategies: tuple[str, ...] | None = None
    choices: tuple[str, ...] = (SINGLE_BEST_CHOICE, RESCORED_CHOICE)


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
    """Fixed wirings trained with the retrain settings (same budget, same test split), ``seeds`` seeds each:
    engine training seeds ``first_seed .. first_seed + seeds - 1``. ``first_seed`` null: just past the recipe
    seeds (``recipes.seeds`` when recipes are configured, else 0), so that the trainings a recipe was chosen on
    are never the ones reported as baselines."""

    enabled: bool = False
    names: tuple[str, ...] = ("rgb_only", "flow_only", "late_fusion", "asn50")
    seeds: int = 3
    first_seed: int | None = None


# ---------------------------------------------------------------------- pre-registered hypotheses
# What a hypothesis measures, per run of a strategy (and, for test_score only, per training seed of a fixed wiring):
ENDPOINTS = {
    "rescored_mean": "the re-scored mean proxy fitness of the run's chosen graph (finalist re-scoring, fresh seeds)",
    "final_best": "the run's best proxy fitness within the budget (its single best evaluation)",
    "test_score": "the test score (retrain.metric) of the run's result (its re-scored choice where it has one), "
                  "mean over its training seeds; for a fixed wiring, one value per training seed",
}
PAIRED_TESTS = ("permutation", "wilcoxon", "t")  # strategy vs strategy: paired by search seed
UNPAIRED_TESTS = ("permutation", "mann_whitney", "t")  # anything vs a fixed wiring: independent samples
CORRECTIONS = ("holm", "bonferroni", "none")


@dataclass(frozen=True)
class Arm:
    """One side of a comparison: a search ``strategy`` of the study (its runs, one per search seed) or a fixed
    ``wiring`` of ``baselines.names`` (its baseline trainings, one per training seed). Exactly one is set."""

    strategy: str | None = None
    wiring: str | None = None

    @property
    def label(self) -> str:
        return self.strategy if self.strategy is not None else f"wiring {self.wiring}"


@dataclass(frozen=True)
class Comparison:
    """``a`` against ``b``: the effect is mean(a) - mean(b) (paired: the mean of the per-seed differences)."""

    a: Arm = field(default_factory=Arm)
    b: Arm = field(default_factory=Arm)

    @property
    def paired(self) -> bool:
        """Two strategies share their search seeds (and so their initial populations): their runs pair by seed."""
        return self.a.strategy is not None and self.b.strategy is not None


@dataclass(frozen=True)
class Hypothesis:
    """One pre-registered hypothesis: the alternative it would confirm, about ``endpoint``, for ``comparison``.

    ``test``: ``permutation`` (paired: sign-flip over the per-seed differences; unpaired: relabelling of the
    pooled values), ``wilcoxon`` (paired only, signed-rank), ``mann_whitney`` (unpaired only) or ``t`` (paired or
    Welch). ``alternative``: ``greater`` (a > b), ``less``, ``two-sided`` or ``equivalent`` (|a - b| < ``margin``,
    two one-sided tests, TOST). A ``margin`` given with a one- or two-sided alternative adds the TOST as a second
    member of the correction family (``NAME (equivalence)``), so that "level" can be shown, not only "not
    different". ``alpha`` is the family-wise level when the family is corrected (every hypothesis of a Holm or
    Bonferroni family must then give the same alpha)."""

    name: str = ""
    statement: str = ""  # the hypothesis in words, shown in study.md
    endpoint: Literal["rescored_mean", "final_best", "test_score"] = "rescored_mean"
    comparison: Comparison = field(default_factory=Comparison)
    test: Literal["permutation", "wilcoxon", "mann_whitney", "t"] = "permutation"
    alternative: Literal["greater", "less", "two-sided", "equivalent"] = "greater"
    alpha: float = 0.05
    margin: float | None = None

    @property
    def members(self) -> tuple[tuple[str, str], ...]:
        """The tests this hypothesis adds to the correction family: ``(member name, alternative)``."""
        if self.alternative == "equivalent":
            return ((self.name, "equivalent"),)
        if self.margin is not None:
            return ((self.name, self.alternative), (f"{self.name} (equivalence)", "equivalent"))
        return ((self.name, self.alternative),)


@dataclass(frozen=True)
class HypothesesConfig:
    """The study's pre-registered (confirmatory) hypotheses and the correction over them (``holm``: Holm's
    step-down, family-wise error at ``alpha``). Everything else the study reports is exploratory."""

    correction: Literal["holm", "bonferroni", "none"] = "holm"
    confirmatory: tuple[Hypothesis, ...] = ()


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
    hypotheses: HypothesesConfig = field(default_factory=HypothesesConfig)
    proxy_validity: ProxyValidityConfig = field(default_factory=ProxyValidityConfig)
    tasks: TasksConfig = field(default_factory=TasksConfig)  # several datasets in one study (search/study/tasks.py)
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

    @property
    def baseline_seeds(self) -> tuple[int, ...]:
        """The engine training seeds of every fixed-wiring baseline (disjoint from the recipe seeds)."""
        first = self.baselines.first_seed
        if first is None:
            first = self.recipes.seeds if self.recipes.candidates else 0
        return tuple(range(first, first + self.baselines.seeds))

    @property
    def recipe_seeds(self) -> tuple[int, ...]:
        return tuple(range(self.recipes.seeds))


def config_hash(data: Any) -> str:
    """The sha256 of a config's canonical JSON (a :class:`StudyConfig`, a section of it, or its plain dict):
    what the study records to tell whether the config (its hypotheses included) changed between invocations."""
    plain = data.to_dict() if isinstance(data, StudyConfig) else to_plain(data)
    return hashlib.sha256(json.dumps(plain, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


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
    check.at_least("baselines.first_seed", 0)
    overlap = sorted(set(config.baseline_seeds) & set(config.recipe_seeds)) if config.recipes.candidates else []
    if overlap:
        fail("baselines.first_seed", f"the baseline training seeds {list(config.baseline_seeds)} overlap the recipe "
             f"seeds {list(config.recipe_seeds)} (the recipe is chosen on those trainings: a baseline reported "
             f"from them would be chosen on its own data); use at least {config.recipes.seeds} or null")
    _validate_hypotheses(config, check)
    for i in range(len(config.retrain.strategies or ())):
        check.one_of(f"retrain.strategies[{i}]", config.strategies)
    for i in range(len(config.retrain.choices)):
        check.one_of(f"retrain.choices[{i}]", (SINGLE_BEST_CHOICE, RESCORED_CHOICE))
    if not config.retrain.choices:
        fail("retrain.choices", f"must name at least one of {[SINGLE_BEST_CHOICE, RESCORED_CHOICE]}")
    validate_proxy_validity(check, config.proxy_validity)
    validate_tasks(check, config.tasks)
    retrain_config = config.retrain.config
    trains = config.retrain.enabled or config.proxy_validity.enabled
    if trains and retrain_config is not None and not config.resolve(retrain_config).is_file():
        fail("retrain.config", f"engine training config not found: {retrain_config} ({PATH_RULE}: {Path.cwd()})")


def _validate_hypotheses(config: StudyConfig, check: Checker) -> None:
    fail = check.fail
    family = config.hypotheses.confirmatory
    names = [h.name for h in family]
    for i, h in enumerate(family):
        key = f"hypotheses.confirmatory[{i}]"
        if not h.name:
            fail(f"{key}.name", "must not be empty (e.g. H1)")
        if h.comparison.a.strategy is None:
            fail(f"{key}.comparison.a", "must be a strategy (the searched side; b may be a fixed wiring)")
        for side in ("a", "b"):
            arm = getattr(h.comparison, side)
            arm_key = f"{key}.comparison.{side}"
            if (arm.strategy is None) == (arm.wiring is None):
                fail(arm_key, f"give exactly one of strategy (one of {list(config.strategies)}) or wiring (one of "
                     f"baselines.names {list(config.baselines.names)}), got {to_plain(arm)}")
            if arm.strategy is not None and arm.strategy not in config.strategies:
                fail(f"{arm_key}.strategy", f"expected a strategy of the study {list(config.strategies)}, "
                     f"got {arm.strategy!r}")
            if arm.wiring is not None:
                if arm.wiring not in config.baselines.names:
                    fail(f"{arm_key}.wiring", f"expected one of baselines.names {list(config.baselines.names)}, "
                         f"got {arm.wiring!r}")
                if not config.baselines.enabled:
                    fail(f"{arm_key}.wiring", "needs baselines.enabled: true (the fixed wirings are trained there)")
                if h.endpoint != "test_score":
                    fail(f"{key}.endpoint", f"a fixed wiring has only a test score: use test_score, got {h.endpoint!r}")
        if h.comparison.a == h.comparison.b:
            fail(f"{key}.comparison", "a and b must differ")
        if h.endpoint == "test_score" and not config.retrain.enabled:
            fail(f"{key}.endpoint", "test_score needs retrain.enabled: true")
        allowed = PAIRED_TESTS if h.comparison.paired else UNPAIRED_TESTS
        if h.test not in allowed:
            design = "paired" if h.comparison.paired else "unpaired"
            fail(f"{key}.test", f"expected one of {list(allowed)} for a {design} comparison, got {h.test!r}")
        check.within(f"{key}.alpha", 0, 0.5, low_open=True, high_open=True)
        if h.alternative == "equivalent" and h.margin is None:
            fail(f"{key}.margin", "an equivalence hypothesis needs a margin (e.g. 0.02)")
        if h.margin is not None and not h.margin > 0:
            fail(f"{key}.margin", f"must be > 0, got {h.margin!r}")
    if len(set(names)) != len(names):
        fail("hypotheses.confirmatory", f"names must be distinct, got {names}")
    alphas = sorted({h.alpha for h in family})
    if config.hypotheses.correction != "none" and len(alphas) > 1:
        fail("hypotheses.correction", f"{config.hypotheses.correction} controls the family-wise error at one alpha; "
             f"give every hypothesis the same alpha (got {alphas}) or use correction: none")


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
