"""The search configuration: a YAML file parsed into frozen dataclasses, strictly validated.

Every key is checked: an unknown key, a wrong type or an out-of-range value raises one
:class:`~assemblenet.errors.ConfigError` that names the file and the dotted key (``search.tournament_size``).
See ``docs/search.md`` for the reference of every key and its default.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from assemblenet.errors import ConfigError, GraphError
from assemblenet.graph.spec import NUM_LEVELS, StemType

STRATEGIES = ("evolution", "evolution-unguided", "random", "oneshot")
MUTATION_KINDS = ("connection", "dilation", "split", "merge")
REPLACEMENTS = ("aging", "worst")
PRUNE_RULES = ("relative", "absolute")
UNGUIDED_MODES = ("matched", "random")
FITNESS_KINDS = ("toy", "proxy-training")
EXECUTOR_KINDS = ("local", "ray")


@dataclass(frozen=True)
class SpaceConfig:
    """The architecture space. Filters are at full scale; ``width_multiplier`` is the proxy scale.

    The defaults are the asn50 space: four stems (two RGB, two flow), 4/4/2/1 nodes per level with per-level
    budgets of 128/256/512/512 filters, and temporal dilations {1, 2, 4, 8}.
    """

    stems: tuple[str, ...] = ("rgb", "rgb", "flow", "flow")
    stem_dilations: tuple[int, ...] = (1, 2, 4, 8)
    dilations: tuple[int, ...] = (1, 2, 4, 8)
    nodes_per_level: tuple[int, ...] = (4, 4, 2, 1)
    min_nodes_per_level: tuple[int, ...] = (1, 1, 1, 1)
    max_nodes_per_level: tuple[int, ...] = (8, 8, 4, 2)
    level_filters: tuple[int, ...] = (128, 256, 512, 512)
    filter_quantum: int = 8
    width_multiplier: float = 0.125
    initial_edge_probability: float = 0.8


@dataclass(frozen=True)
class SearchLoopConfig:
    """Budget, batching and the population used by evolution (random and oneshot keep it for the plots)."""

    max_evaluations: int = 100
    batch_size: int = 1
    population_size: int = 20
    tournament_size: int = 5
    replacement: str = "aging"
    max_consecutive_failures: int = 5


@dataclass(frozen=True)
class MutationConfig:
    """How children are made (``search/mutations.py``).

    ``prune_rule``: ``relative`` prunes edges whose learned weight is below ``relative_threshold`` times the
    strongest weight into the same node; ``absolute`` is the paper's sigmoid threshold ``prune_threshold``.
    Either way at least ``min_pruned`` edges (the weakest) are pruned. ``unguided`` is how
    ``evolution-unguided`` prunes: ``matched`` (as many edges at the same nodes as the guided rule, at
    random) or ``random`` (each edge with ``unguided_prune_probability``). Children's kinds follow
    ``probabilities`` by smooth weighted round robin (``mutations.next_kind``).
    """

    probabilities: Mapping[str, float] = field(
        default_factory=lambda: {"connection": 0.5, "dilation": 0.3, "split": 0.1, "merge": 0.1}
    )
    prune_rule: str = "relative"
    relative_threshold: float = 0.5
    prune_threshold: float = 0.2
    min_pruned: int = 1
    unguided: str = "matched"
    unguided_prune_probability: float = 0.2
    max_attempts: int = 20

    def rule(self) -> Any:
        from assemblenet.search.mutations import PruneRule

        return PruneRule(self.prune_rule, threshold=self.prune_threshold,
                         relative_threshold=self.relative_threshold, min_pruned=self.min_pruned)


@dataclass(frozen=True)
class ToyFitnessConfig:
    """Options of the analytic test-double fitness (:mod:`assemblenet.search.toy`)."""

    sleep_seconds: float = 0.0
    noise: float = 0.01


@dataclass(frozen=True)
class ProxyTrainingConfig:
    """Options of the proxy-training fitness: the engine trains each candidate on the proxy task.

    ``config`` is the engine's training config (path relative to the search config's folder; None: the
    engine's defaults); ``overrides`` are dotted engine-config overrides applied on top (e.g. few frames and
    small crops for the proxy); ``steps`` is the fixed training budget per candidate; ``metric`` names the
    validation metric used as fitness (``metric``: the engine's primary one). ``keep_outputs`` keeps each
    candidate's engine output folder under ``trials/``.
    """

    config: str | None = None
    overrides: Mapping[str, Any] = field(default_factory=dict)
    steps: int = 200
    metric: str = "metric"
    device: str = "cpu"
    keep_outputs: bool = False


@dataclass(frozen=True)
class FitnessConfig:
    kind: str = "toy"
    toy: ToyFitnessConfig = field(default_factory=ToyFitnessConfig)
    proxy_training: ProxyTrainingConfig = field(default_factory=ProxyTrainingConfig)


@dataclass(frozen=True)
class ExecutorConfig:
    """Where fitness runs happen. None of these change which graphs are evaluated or their fitness."""

    kind: str = "local"
    workers: int = 1
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    torch_threads: int = 1
    ray_address: str | None = None
    max_retries: int = 1  # ray: runs again a trial whose worker died, at most this many times


@dataclass(frozen=True)
class SearchConfig:
    name: str = "search"
    seed: int = 0
    strategy: str = "evolution"
    output_dir: str | None = None
    tensorboard: bool = False
    space: SpaceConfig = field(default_factory=SpaceConfig)
    search: SearchLoopConfig = field(default_factory=SearchLoopConfig)
    mutation: MutationConfig = field(default_factory=MutationConfig)
    fitness: FitnessConfig = field(default_factory=FitnessConfig)
    executor: ExecutorConfig = field(default_factory=ExecutorConfig)
    # The folder of the config file, for relative paths inside it; not a YAML key.
    base_dir: str = field(default=".", compare=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        data = _to_plain(self)
        data.pop("base_dir", None)
        return data

    def fingerprint(self) -> dict[str, Any]:
        """The keys that decide which graphs are evaluated and their fitness (compared on resume).

        The budget may grow between runs, and the executor, output and logging never change results.
        """
        data = self.to_dict()
        for key in ("name", "output_dir", "tensorboard", "executor"):
            data.pop(key)
        data["search"].pop("max_evaluations")
        return data

    def replace(self, **changes: Any) -> "SearchConfig":
        """Return a copy with top-level keys or dotted section keys (``executor.kind``) replaced."""
        config = self
        for key, value in changes.items():
            section, _, leaf = key.partition(".")
            if leaf:
                config = dataclasses.replace(config, **{section: dataclasses.replace(getattr(config, section), **{leaf: value})})
            else:
                config = dataclasses.replace(config, **{section: value})
        validate_config(config, source="config")
        return config


# ---------------------------------------------------------------------- loading
def read_yaml_mapping(path: str | Path, *, what: str) -> tuple[Path, Any]:
    """The YAML document of a config file (``{}`` when empty), with one-line errors naming the file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{what} not found: {path}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        first_line = str(exc).strip().splitlines()[0]
        raise ConfigError(f"{path}: not valid YAML: {first_line}") from None
    return path, {} if data is None else data


def load_search_config(path: str | Path) -> SearchConfig:
    path, data = read_yaml_mapping(path, what="search config")
    config = search_config_from_dict(data, source=str(path), base_dir=str(path.parent))
    if "name" not in data:
        config = dataclasses.replace(config, name=path.stem)
    return config


def search_config_from_dict(data: Any, *, source: str = "config", base_dir: str = ".") -> SearchConfig:
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: expected a mapping at the top level, got {type(data).__name__}")
    data = dict(data)
    fitness = data.pop("fitness", None)
    config = _parse_dataclass(SearchConfig, data, f"{source}: ", skip={"base_dir"})
    config = dataclasses.replace(config, fitness=_parse_fitness(fitness, f"{source}: fitness"), base_dir=base_dir)
    validate_config(config, source=source)
    return config


def _parse_fitness(data: Any, where: str) -> FitnessConfig:
    if data is None:
        return FitnessConfig()
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: expected a mapping with 'kind', got {data!r}")
    kind = data.get("kind", "toy")
    if kind not in FITNESS_KINDS:
        raise ConfigError(f"{where}.kind: unknown fitness {kind!r}; expected one of {list(FITNESS_KINDS)}")
    options = {k: v for k, v in data.items() if k != "kind"}
    if kind == "toy":
        return FitnessConfig(kind=kind, toy=_parse_dataclass(ToyFitnessConfig, options, f"{where}."))
    return FitnessConfig(kind=kind, proxy_training=_parse_dataclass(ProxyTrainingConfig, options, f"{where}."))


def _parse_dataclass(cls: type, data: Any, prefix: str, *, skip: set[str] = frozenset()) -> Any:
    """Build ``cls`` from a mapping, checking every key against the declared field types."""
    where = prefix.rstrip(".: ") or "config"
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    allowed = [f.name for f in dataclasses.fields(cls) if f.name not in skip]
    values: dict[str, Any] = {}
    for key, value in data.items():
        if key not in allowed:
            raise ConfigError(f"{prefix}{key}: unknown key; allowed keys here: {allowed}")
        values[key] = _convert(value, hints[key], f"{prefix}{key}")
    return cls(**values)


def _convert(value: Any, hint: Any, key: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if dataclasses.is_dataclass(hint):
        return _parse_dataclass(hint, value, f"{key}.")
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _convert(value, inner, key)
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return value
    if hint is Any:
        return value
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        return tuple(_convert(v, args[0], f"{key}[{i}]") for i, v in enumerate(value))
    if origin in (collections.abc.Mapping, dict):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return {
            _convert(k, args[0], f"{key} key"): _convert(v, args[1], f"{key}.{k}") for k, v in value.items()
        }
    raise TypeError(f"unsupported config type {hint!r} for {key}")  # a bug in the schema, not user input


def _to_plain(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj):
        return {f.name: _to_plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, Mapping):
        return {k: _to_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_to_plain(v) for v in obj]
    return obj


# ---------------------------------------------------------------------- semantic checks
def validate_config(config: SearchConfig, *, source: str = "config") -> None:
    def fail(key: str, message: str) -> None:
        raise ConfigError(f"{source}: {key}: {message}")

    if config.strategy not in STRATEGIES:
        fail("strategy", f"unknown strategy {config.strategy!r}; expected one of {list(STRATEGIES)}")
    _validate_space(config.space, fail)

    loop = config.search
    for key in ("max_evaluations", "batch_size", "population_size", "tournament_size", "max_consecutive_failures"):
        if getattr(loop, key) < 1:
            fail(f"search.{key}", f"must be at least 1, got {getattr(loop, key)}")
    if loop.tournament_size > loop.population_size:
        fail("search.tournament_size",
             f"{loop.tournament_size} is larger than search.population_size {loop.population_size}")
    if loop.replacement not in REPLACEMENTS:
        fail("search.replacement", f"unknown policy {loop.replacement!r}; expected one of {list(REPLACEMENTS)}")

    mutation = config.mutation
    unknown = sorted(set(mutation.probabilities) - set(MUTATION_KINDS))
    if unknown:
        fail(f"mutation.probabilities.{unknown[0]}", f"unknown mutation; expected some of {list(MUTATION_KINDS)}")
    for kind, p in mutation.probabilities.items():
        if p < 0:
            fail(f"mutation.probabilities.{kind}", f"must be >= 0, got {p}")
    if sum(mutation.probabilities.values()) <= 0:
        fail("mutation.probabilities", "at least one mutation needs a positive probability")
    if not 0.0 < mutation.prune_threshold < 1.0:
        fail("mutation.prune_threshold", f"must be a sigmoid strength in (0, 1), got {mutation.prune_threshold}")
    if not 0.0 < mutation.unguided_prune_probability <= 1.0:
        fail("mutation.unguided_prune_probability", f"must be in (0, 1], got {mutation.unguided_prune_probability}")
    if mutation.max_attempts < 1:
        fail("mutation.max_attempts", f"must be at least 1, got {mutation.max_attempts}")
    if mutation.prune_rule not in PRUNE_RULES:
        fail("mutation.prune_rule", f"unknown rule {mutation.prune_rule!r}; expected one of {list(PRUNE_RULES)}")
    if not 0.0 < mutation.relative_threshold <= 1.0:
        fail("mutation.relative_threshold", f"must be a ratio in (0, 1], got {mutation.relative_threshold}")
    if mutation.min_pruned < 0:
        fail("mutation.min_pruned", f"must be >= 0, got {mutation.min_pruned}")
    if mutation.unguided not in UNGUIDED_MODES:
        fail("mutation.unguided", f"unknown mode {mutation.unguided!r}; expected one of {list(UNGUIDED_MODES)}")

    toy = config.fitness.toy
    if toy.sleep_seconds < 0:
        fail("fitness.sleep_seconds", f"must be >= 0, got {toy.sleep_seconds}")
    if toy.noise < 0:
        fail("fitness.noise", f"must be >= 0, got {toy.noise}")
    proxy = config.fitness.proxy_training
    if config.fitness.kind == "proxy-training" and proxy.steps < 1:
        fail("fitness.steps", f"must be at least 1, got {proxy.steps}")

    executor = config.executor
    if executor.kind not in EXECUTOR_KINDS:
        fail("executor.kind", f"unknown executor {executor.kind!r}; expected one of {list(EXECUTOR_KINDS)}")
    if executor.workers < 1:
        fail("executor.workers", f"must be at least 1, got {executor.workers}")
    if executor.torch_threads < 1:
        fail("executor.torch_threads", f"must be at least 1, got {executor.torch_threads}")
    if executor.cpus_per_trial <= 0:
        fail("executor.cpus_per_trial", f"must be > 0, got {executor.cpus_per_trial}")
    if executor.gpus_per_trial < 0:
        fail("executor.gpus_per_trial", f"must be >= 0, got {executor.gpus_per_trial}")
    if executor.max_retries < 0:
        fail("executor.max_retries", f"must be >= 0, got {executor.max_retries}")


def _validate_space(space: SpaceConfig, fail: Any) -> None:
    if not space.stems:
        fail("space.stems", "needs at least one stem")
    for i, stem in enumerate(space.stems):
        try:
            StemType.parse(stem, where=f"space.stems[{i}]")
        except GraphError as exc:  # re-raised as a config error naming the key
            fail(f"space.stems[{i}]", str(exc).split(": ", 1)[-1])
    for key in ("stem_dilations", "dilations"):
        values = getattr(space, key)
        if not values:
            fail(f"space.{key}", "needs at least one temporal dilation")
        if any(d < 1 for d in values) or len(set(values)) != len(values):
            fail(f"space.{key}", f"must be distinct positive integers, got {list(values)}")
    for key in ("nodes_per_level", "min_nodes_per_level", "max_nodes_per_level", "level_filters"):
        values = getattr(space, key)
        if len(values) != NUM_LEVELS:
            fail(f"space.{key}", f"needs one value per level ({NUM_LEVELS}), got {list(values)}")
    if space.filter_quantum < 1:
        fail("space.filter_quantum", f"must be at least 1, got {space.filter_quantum}")
    for level in range(NUM_LEVELS):
        low, n, high = space.min_nodes_per_level[level], space.nodes_per_level[level], space.max_nodes_per_level[level]
        if not 1 <= low <= n <= high:
            fail(f"space.nodes_per_level[{level}]",
                 f"need 1 <= min ({low}) <= nodes ({n}) <= max ({high}) at level {level}")
        budget = space.level_filters[level]
        if budget % space.filter_quantum:
            fail(f"space.level_filters[{level}]", f"{budget} is not a multiple of filter_quantum {space.filter_quantum}")
        if budget // space.filter_quantum < high:
            fail(f"space.max_nodes_per_level[{level}]",
                 f"{high} nodes cannot each get at least filter_quantum={space.filter_quantum} of {budget} filters")
    if not 0.0 < space.width_multiplier <= 1.0:
        fail("space.width_multiplier", f"must be in (0, 1], got {space.width_multiplier}")
    scaled_quantum = space.filter_quantum * space.width_multiplier
    if abs(scaled_quantum - round(scaled_quantum)) > 1e-9 or round(scaled_quantum) < 1:
        fail("space.width_multiplier",
             f"filter_quantum * width_multiplier = {scaled_quantum:g} must be a whole number >= 1 so that proxy "
             "widths keep the channel budget exactly")
    if not 0.0 < space.initial_edge_probability <= 1.0:
        fail("space.initial_edge_probability", f"must be in (0, 1], got {space.initial_edge_probability}")
