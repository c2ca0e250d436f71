"""The study's analysis as the renderer reads it: frozen dataclasses mirroring ``study.json`` field by field, in its
key order. :meth:`StudyAnalysis.from_dict` reads the analysis as written (non-finite floats already None), and
:meth:`StudyAnalysis.to_dict` gives back exactly that JSON, so ``study.md`` and the figures are a function of
``study.json``. The confirmatory family (search/study/confirmatory.py), the registration and the retrain records as
read from disk stay mappings."""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Mapping, Union

# metadata of a key study.json leaves out (rather than writing null) when it has no value
OMITTED_WHEN_NONE = {"omit_none": True}


def _optional_key() -> Any:
    return field(default=None, kw_only=True, metadata=OMITTED_WHEN_NONE)


class _Record:
    """``to_dict``/``from_dict`` over a frozen dataclass's fields, recursing into nested records, their tuples and
    their string-keyed dicts; any other value is kept as it is."""

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Any:
        fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(data) - set(fields))
        if unknown:
            raise ValueError(f"{cls.__name__}: unexpected keys {unknown}")
        hints = typing.get_type_hints(cls)
        return cls(**{name: _read(hints[name], data[name]) for name in fields if name in data})

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if value is None and f.metadata.get("omit_none"):
                continue
            out[f.name] = _write(value)
        return out


def _read(hint: Any, value: Any) -> Any:
    if value is None:
        return None
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (Union, types.UnionType):  # X | None (the value is not None here)
        present = [a for a in args if a is not type(None)]
        return _read(present[0], value) if len(present) == 1 else value
    if isinstance(hint, type) and issubclass(hint, _Record):
        return hint.from_dict(value)
    if origin is tuple:
        return tuple(_read(args[0], v) for v in value)
    if origin is dict:
        return {k: _read(args[1], v) for k, v in value.items()}
    return value


def _write(value: Any) -> Any:
    if isinstance(value, _Record):
        return value.to_dict()
    if isinstance(value, tuple):
        return [_write(v) for v in value]
    if isinstance(value, dict):
        return {k: _write(v) for k, v in value.items()}
    return value


Interval = tuple[float, float]


# ---------------------------------------------------------------------- the searches
@dataclass(frozen=True)
class RunRow(_Record):
    """One (strategy, seed) run as analysed."""
    strategy: str
    seed: int
    run: str
    path: str
    exists: bool
    evaluations: int
    complete: bool
    exhausted: bool
    final_best: float | None
    best_index: int | None
    best_graph_hash: str | None
    rescored_index: int | None
    rescored_graph_hash: str | None
    rescored_mean: float | None


@dataclass(frozen=True)
class Curve(_Record):
    """Best fitness so far per evaluation: the mean over seeds and its bootstrap band (None: no seed has a value)."""
    evaluations: tuple[int, ...]
    mean: tuple[float | None, ...]
    low: tuple[float | None, ...]
    high: tuple[float | None, ...]
    seeds_with_value: tuple[int, ...]


@dataclass(frozen=True)
class ReachRandom(_Record):
    """Evaluations each seed took to reach random search's mean final best (None: never)."""
    target: float
    per_seed: tuple[int | None, ...]
    median: float | None
    reached: int
    of: int


@dataclass(frozen=True)
class Mutations(_Record):
    children: int
    children_by_kind: dict[str, int]
    all_by_kind: dict[str, int]


@dataclass(frozen=True)
class ConnectionShare(_Record):
    children: int
    connection: int
    observed: float | None
    configured: float


@dataclass(frozen=True)
class Cost(_Record):
    evaluations: int
    run: int
    reused: int
    wall_time_s: float
    mean_wall_time_s: float | None
    finalist_evaluations: int
    finalist_run: int
    finalist_wall_time_s: float


@dataclass(frozen=True)
class Rescoring(_Record):
    runs: int
    changed_choice: int
    single_best_drop: tuple[float, ...]
    single_best_drop_mean: float | None


@dataclass(frozen=True)
class StrategySummary(_Record):
    """One strategy over its seeds."""
    runs: int
    seeds: tuple[int, ...]
    complete: int
    final_best: tuple[float | None, ...]
    final_best_mean: float | None
    final_best_std: float | None
    final_best_ci95_bootstrap: Interval | None
    final_best_ci95_t: Interval | None
    evals_to_reach_random: ReachRandom | None
    curve: Curve | None
    mutations: Mutations
    # strategies that mutate only (keyword-only: a default before the fields without one, in study.json's order)
    connection_share: ConnectionShare | None = field(default=None, kw_only=True, metadata=OMITTED_WHEN_NONE)
    cost: Cost
    rescoring: Rescoring


@dataclass(frozen=True)
class PendingComparison(_Record):
    """Guided evolution against another strategy on an endpoint, before every run of both has its value."""
    a: str
    b: str
    endpoint: str
    paired: bool
    alternative: str
    have: dict[str, int]
    need: dict[str, int]


@dataclass(frozen=True)
class StrategyComparison(PendingComparison):
    """The same comparison once every run has its value: paired by search seed."""
    n_pairs: int
    seeds: tuple[int, ...]
    n_a: int
    n_b: int
    mean_a: float
    mean_b: float
    mean_difference: float | None
    difference_ci95_bootstrap: Interval | None
    differences: tuple[float, ...]
    p_value: float | None
    permutation_p: float | None
    permutation_exact: bool
    wilcoxon_statistic: float | None
    wilcoxon_p: float | None
    wilcoxon_exact: bool


# ---------------------------------------------------------------------- final training: recipes, retrain, baselines
@dataclass(frozen=True)
class RecipeGraphScores(_Record):
    scores: tuple[float, ...]
    mean: float
    std: float | None


@dataclass(frozen=True)
class RecipeRow(_Record):
    steps: int | None
    lr: float | None
    complete: bool
    graphs: dict[str, RecipeGraphScores]
    pooled_std: float | None
    mean: float | None = _optional_key()
    ci95_bootstrap: Interval | None = _optional_key()


@dataclass(frozen=True)
class RecipesSection(_Record):
    graphs: tuple[str, ...]
    seeds: int
    candidates: dict[str, RecipeRow]
    chosen: str | None
    rule: str


@dataclass(frozen=True)
class ScoreSummary(_Record):
    """Test scores over runs (retrain) with their bootstrap and t intervals."""
    n: int
    scores: tuple[float, ...]
    mean: float
    std: float | None
    ci95_bootstrap: Interval | None
    ci95_t: Interval | None


@dataclass(frozen=True)
class RetrainComparison(_Record):
    a: str
    b: str
    n_pairs: int
    seeds: tuple[int, ...]
    paired: bool
    alternative: str
    mean_difference: float | None
    difference_ci95_bootstrap: Interval | None
    permutation_p: float | None
    permutation_exact: bool
    wilcoxon_p: float | None


@dataclass(frozen=True)
class ChoiceComparison(_Record):
    """Re-scored choice minus single best, paired by run."""
    runs: int
    same_graph: int
    single_best_mean: float
    rescored_mean: float
    mean_difference: float | None
    difference_ci95_bootstrap: Interval | None
    differences: tuple[float, ...]
    p_rescored_better: float | None
    p_two_sided: float | None
    exact: bool


@dataclass(frozen=True)
class GraphSpread(_Record):
    scores: tuple[float, ...]
    mean: float
    std: float
    range: float


@dataclass(frozen=True)
class TrainingNoise(_Record):
    """Each retrained graph's spread over its training seeds (one graph: no variance split)."""
    graphs: int
    per_graph: dict[str, GraphSpread]
    mean_std: float
    max_range: float

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Any:
        if cls is TrainingNoise and "within_variance" in data:
            return TrainingNoiseSplit.from_dict(data)
        return super().from_dict(data)


@dataclass(frozen=True)
class TrainingNoiseSplit(TrainingNoise):
    """With two graphs or more: one training's score variance split into training seeds and graphs."""
    within_variance: float
    between_variance: float
    within_std: float
    between_std: float
    within_share: float | None
    training_noise_dominates: bool


@dataclass(frozen=True)
class Correlation(_Record):
    n: int
    pearson_r: float | None
    pearson_p: float | None
    spearman_rho: float | None
    spearman_p: float | None


@dataclass(frozen=True)
class GraphPoint(_Record):
    """One distinct retrained graph: its mean proxy fitness against its test score."""
    graph_hash: str
    runs: tuple[str, ...]
    strategies: tuple[str, ...]
    proxy_fitness: float
    test_score: float
    rescored_fitness: float | None


@dataclass(frozen=True)
class RetrainSection(_Record):
    """The retrained graphs' test scores. ``entries``: the retrain records as read from the run folders."""
    metric: str
    steps: int | None
    recipe: str | None
    lr: float | None
    training_seeds: int
    overrides: dict[str, Any]
    entries: tuple[Mapping[str, Any], ...]
    expected_entries: int
    stale: tuple[str, ...]
    result_choice: str
    by_choice: dict[str, dict[str, ScoreSummary]]
    strategies: dict[str, ScoreSummary]
    comparisons: tuple[RetrainComparison, ...]
    choice_comparison: dict[str, ChoiceComparison] | None
    training_noise: TrainingNoise | None
    graphs: tuple[GraphPoint, ...]
    correlation: Correlation
    correlation_rescored: Correlation | None


@dataclass(frozen=True)
class BaselineSummary(_Record):
    n: int
    scores: tuple[float, ...]
    mean: float
    std: float | None
    ci95_t: Interval | None


@dataclass(frozen=True)
class BaselinesSection(_Record):
    metric: str
    steps: int | None
    recipe: str | None
    training_seeds: tuple[int, ...]
    baselines: dict[str, BaselineSummary]


# ---------------------------------------------------------------------- proxy validity (search/study/proxy_validity.py)
@dataclass(frozen=True)
class ValidityRow(_Record):
    """One graph of the proxy-validity stage: its proxy fitness per proxy seed and final score per training seed
    (None: not run yet)."""
    label: str
    kind: str
    graph_hash: str
    proxy: tuple[float | None, ...]
    final: tuple[float | None, ...]


@dataclass(frozen=True)
class ValidityStatistic(_Record):
    """A correlation with its bootstrap interval over graphs."""
    estimate: float | None
    ci: Interval | None
    defined_share: float


@dataclass(frozen=True)
class RankStatistic(ValidityStatistic):
    """Kendall tau or Spearman rho: also the p-value of the graphs' mean ranks (None: a side is constant)."""
    p: float | None


@dataclass(frozen=True)
class Reliability(_Record):
    """One side's reliability over its seeds (proxy_validity.reliability): two-way consistency ICC, the seeds
    being shared by every graph (``single``, ``mean_k``), and the one-way ICC for comparison."""
    single: float | None
    mean_k: float | None
    one_way_single: float | None
    one_way_mean_k: float | None
    seeds: int
    msr: float
    msc: float
    mse: float
    msw: float
    seed_means: tuple[float, ...]
    between_graph_sd_of_means: float


@dataclass(frozen=True)
class SideReliabilities(_Record):
    proxy: Reliability
    final: Reliability


@dataclass(frozen=True)
class TopRanking(_Record):
    """Kendall tau within the top graphs by final mean."""
    fraction: float
    graphs: int
    kendall_tau: float | None
    p: float | None


@dataclass(frozen=True)
class ValidityStatistics(_Record):
    graphs: int
    confidence: float
    bootstrap_samples: int
    kendall_tau: RankStatistic
    spearman_rho: RankStatistic
    pearson_r: ValidityStatistic
    pearson_r_corrected: ValidityStatistic
    spearman_rho_corrected: ValidityStatistic
    reliability: SideReliabilities
    top: TopRanking


@dataclass(frozen=True)
class ProxyValiditySection(_Record):
    """The proxy-validity stage as analysed (``statistics``: None until four graphs are complete)."""
    graphs_expected: int
    graphs_complete: int
    proxy_evaluations_done: int
    final_trainings_done: int
    proxy_seeds: int
    final_seeds: int
    sample_seed: int
    metric: str
    rows: tuple[ValidityRow, ...]
    statistics: ValidityStatistics | None


# ---------------------------------------------------------------------- provenance and the whole analysis
# What an invocation logged before machines were recorded counts as, in ``CodeState.machines``.
MACHINE_NOT_RECORDED = "not recorded"


@dataclass(frozen=True)
class CodeState(_Record):
    """One distinct (config hash, code, ``--allow-dirty``) state the study's invocations ran with."""
    config_hash: str | None
    commit: str | None
    dirty: bool | str | None
    diff_sha256: str | None
    allow_dirty: bool
    invocations: int
    stages: tuple[str, ...]
    first: float | None
    machines: tuple[str, ...] = ()  # machine_info() signatures, "not recorded" before they were logged


@dataclass(frozen=True)
class StudyProvenance(_Record):
    analysed_with: Mapping[str, Any]
    invocations: tuple[CodeState, ...]


@dataclass(frozen=True)
class StudyAnalysis(_Record):
    """The content of ``study.json``."""
    format: str
    name: str
    created: float
    config: Mapping[str, Any]
    search_config: str
    budget: int
    confidence: float
    bootstrap_samples: int
    band: str
    random_final_best_mean: float | None
    runs: tuple[RunRow, ...]
    strategies: dict[str, StrategySummary]
    comparisons: tuple[StrategyComparison, ...]
    comparisons_pending: tuple[PendingComparison, ...]
    recipes: RecipesSection | None
    retrain: RetrainSection | None
    baselines: BaselinesSection | None
    proxy_validity: ProxyValiditySection | None
    confirmatory: Mapping[str, Any] | None  # the family of search/study/confirmatory.py
    config_hash: str
    registration: Mapping[str, Any] | None  # registration.json as written
    provenance: StudyProvenance
    stage_wall_time_s: dict[str, float]
    stage_wall_time_untagged_rows: int
