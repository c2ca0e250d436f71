"""The search configuration: a YAML file parsed into frozen dataclasses, strictly validated.

Every key is checked by the shared schema layer (:mod:`assemblenet.config_schema`): an unknown key, a wrong
type or an out-of-range value raises one :class:`~assemblenet.errors.ConfigError` that names the file and the
dotted key (``tiny.yaml: key 'search.tournament_size': must be at least 1, got 0``). See ``docs/search.md``
for the reference of every key and its default.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from assemblenet.config_schema import Checker, Override, dump_yaml, parse_dataclass, read_config, to_plain
from assemblenet.search.mutations import MUTATIONS, PRUNE_RULES
from assemblenet.search.registry import strategy_names
from assemblenet.search.space import SpaceConfig, validate_space_config

# The strategy names come from the strategy registry, the mutation kinds from the mutation table.
REPLACEMENTS = ("aging", "worst")
PRUNE_SIGNALS = ("weight", "contribution")
UNGUIDED_MODES = ("matched", "random")
FITNESS_KINDS = ("toy", "proxy-training")
EXECUTOR_KINDS = ("local", "ray")


@dataclass(frozen=True)
class AttentionConfig:
    """Reading learned peer attention: ``top_k`` strongest peers per node are kept (the one-shot attention
    read-off and the guided ``attention`` mutation)."""

    top_k: int = 1


@dataclass(frozen=True)
class FinalistsConfig:
    """Finalist re-scoring (``search/finalists.py``): after the budget, the ``top_k`` distinct graphs with the
    highest single fitness are evaluated ``seeds`` more times with fresh trial seeds, and the search's result is
    the graph with the highest mean of those. ``top_k: 0`` returns the single best evaluation instead."""

    top_k: int = 0
    seeds: int = 3


@dataclass(frozen=True)
class SearchLoopConfig:
    """Budget, batching and the population used by evolution (random and oneshot keep it for the plots), and the
    finalist re-scoring that chooses the result."""

    max_evaluations: int = 100
    batch_size: int = 1
    population_size: int = 20
    tournament_size: int = 5
    replacement: str = "aging"
    max_consecutive_failures: int = 5
    finalists: FinalistsConfig = field(default_factory=FinalistsConfig)


@dataclass(frozen=True)
class MutationConfig:
    """How children are made (``search/mutations.py``).

    ``prune_rule``: ``relative`` prunes edges whose learned weight is below ``relative_threshold`` times the
    strongest weight into the same node; ``absolute`` is the paper's sigmoid threshold ``prune_threshold``.
    Either way at least ``min_pruned`` edges (the weakest) are pruned. ``unguided`` is how
    ``evolution-unguided`` prunes: ``matched`` (as many edges at the same nodes as the guided rule, at
    random) or ``random`` (each edge with ``unguided_prune_probability``). Children's kinds follow
    ``probabilities`` by smooth weighted round robin (``mutations.next_kind``). ``prune_signal`` is what the
    rule reads: the sigmoid connection ``weight`` (the paper's) or each edge's measured ``contribution`` to its
    target's fused input (relative rule only; the proxy must measure it, ``train.contribution_batches``).
    """

    probabilities: Mapping[str, float] = field(
        default_factory=lambda: {"connection": 0.5, "dilation": 0.3, "split": 0.1, "merge": 0.1}
    )
    prune_rule: str = "relative"
    prune_signal: str = "weight"
    relative_threshold: float = 0.5
    prune_threshold: float = 0.2
    min_pruned: int = 1
    unguided: str = "matched"
    unguided_prune_probability: float = 0.2
    max_attempts: int = 20


@dataclass(frozen=True)
class ToyFitnessConfig:
    """Options of the analytic test-double fitness (:mod:`assemblenet.search.toy`)."""

    sleep_seconds: float = 0.0
    noise: float = 0.01


@dataclass(frozen=True)
class ProxyTrainingConfig:
    """Options of the proxy-training fitness: the engine trains each candidate on the proxy task.

    ``config`` is the engine's training config (a path relative to the working directory; None: the
    engine's defaults); ``overrides`` are dotted engine-config overrides applied on top (e.g. few frames and
    small crops for the proxy); ``steps`` is the fixed training budget per candidate; ``metric`` names the
    validation metric used as fitness (``metric``: the engine's primary one). ``keep_outputs`` keeps each
    candidate's engine output folder under ``trials/``. ``frame_cache_mb`` bounds the frame store a search
    writes in its run folder (``frame_store/``): the proxy splits with ``cache_frames`` decoded once, mapped by
    every worker (``assemblenet.data.frame_store``); 0 turns it off, and a split that does not fit is decoded in
    each worker as before (logged). It changes no fitness. ``device`` is where each candidate trains: ``auto``
    follows the executor (Ray: a GPU when ``executor.gpus_per_trial`` > 0, else the CPU; local: the GPU a
    worker is given, else the CPU), ``cpu``, or ``cuda`` (local workers take the visible GPUs in turn).
    """

    config: str | None = None
    overrides: Mapping[str, Any] = field(default_factory=dict)
    steps: int = 200
    metric: str = "metric"
    device: str = "auto"
    keep_outputs: bool = False
    frame_cache_mb: float = 1024.0


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
    attention: AttentionConfig = field(default_factory=AttentionConfig)
    fitness: FitnessConfig = field(default_factory=FitnessConfig)
    executor: ExecutorConfig = field(default_factory=ExecutorConfig)

    def to_dict(self) -> dict[str, Any]:
        return to_plain(self)

    def to_user_dict(self) -> dict[str, Any]:
        """The config as its YAML file holds it: ``fitness`` is ``kind`` plus that kind's options."""
        data = self.to_dict()
        fitness = data["fitness"]
        options = fitness["toy" if fitness["kind"] == "toy" else "proxy_training"]
        data["fitness"] = {"kind": fitness["kind"], **options}
        return data

    def to_yaml(self) -> str:
        return dump_yaml(self.to_user_dict())

    def fingerprint(self) -> dict[str, Any]:
        """The keys that decide which graphs are evaluated and their fitness (compared on resume).

        The budget may grow between runs, and the executor, output and logging never change results. The
        attention keys and ``mutation.prune_signal`` are left out at their defaults, so folders written before
        they existed still resume.
        """
        data = self.to_dict()
        for key in ("name", "output_dir", "tensorboard", "executor"):
            data.pop(key)
        data["search"].pop("max_evaluations")
        data["search"].pop("finalists")  # chooses among the evaluated graphs; changes none of them
        data["fitness"]["proxy_training"].pop("frame_cache_mb")  # where decoded frames are kept; changes no fitness
        if data["attention"] == to_plain(AttentionConfig()):
            data.pop("attention")
        if data["space"]["attention_sources"] == SpaceConfig.attention_sources:
            data["space"].pop("attention_sources")
        if data["mutation"]["prune_signal"] == MutationConfig.prune_signal:
            data["mutation"].pop("prune_signal")
        return data

    def replace(self, **changes: Any) -> "SearchConfig":
        """Return a copy with top-level keys or dotted section keys (``executor.kind``) replaced."""
        config = self
        for key, value in changes.items():
            section, _, leaf = key.partition(".")
            if leaf:
                updated = dataclasses.replace(getattr(config, section), **{leaf: value})
                config = dataclasses.replace(config, **{section: updated})
            else:
                config = dataclasses.replace(config, **{section: value})
        validate_config(config, source="config")
        return config


# ---------------------------------------------------------------------- loading
def load_search_config(path: str | Path, overrides: Iterable[Override] = ()) -> SearchConfig:
    """The search config of a YAML file, with dotted ``overrides`` (``"search.batch_size=4"`` strings or
    ``(key, value)`` pairs) applied before validation. ``name`` defaults to the file's stem."""
    data, source = read_config(path, overrides, what="search config", name_from_file=True)
    return search_config_from_dict(data, source=source)


def search_config_from_dict(data: Any, *, source: str = "config") -> SearchConfig:
    fitness = None
    if isinstance(data, Mapping):
        data = dict(data)
        fitness = data.pop("fitness", None)
    config = parse_dataclass(SearchConfig, data, source=source)
    config = dataclasses.replace(config, fitness=_parse_fitness(fitness, source))
    validate_config(config, source=source)
    return config


def _parse_fitness(data: Any, source: str) -> FitnessConfig:
    """``fitness`` is ``kind`` plus the options of that kind, in one mapping."""
    if data is None:
        return FitnessConfig()
    check = Checker(source)
    if not isinstance(data, Mapping):
        check.fail("fitness", f"expected a mapping with 'kind', got {data!r}")
    kind = data.get("kind", "toy")
    if kind not in FITNESS_KINDS:
        check.fail("fitness.kind", f"expected one of {list(FITNESS_KINDS)}, got {kind!r}")
    options = {k: v for k, v in data.items() if k != "kind"}
    hint = f" (for fitness kind {kind!r})"
    if kind == "toy":
        return FitnessConfig(kind=kind, toy=parse_dataclass(ToyFitnessConfig, options, source=source,
                                                            prefix="fitness.", hint=hint))
    return FitnessConfig(kind=kind, proxy_training=parse_dataclass(ProxyTrainingConfig, options, source=source,
                                                                   prefix="fitness.", hint=hint))


# ---------------------------------------------------------------------- semantic checks
def validate_config(config: SearchConfig, *, source: str = "config") -> None:
    check = Checker(source, config.to_user_dict())  # keys as the file writes them (fitness.steps)
    check.one_of("strategy", strategy_names())
    validate_space_config(config.space, check.fail)

    for key in ("max_evaluations", "batch_size", "population_size", "tournament_size", "max_consecutive_failures"):
        check.at_least(f"search.{key}", 1)
    check.at_least("search.finalists.top_k", 0)
    check.at_least("search.finalists.seeds", 1)
    loop = config.search
    if loop.tournament_size > loop.population_size:
        check.fail("search.tournament_size",
                   f"{loop.tournament_size} is larger than search.population_size {loop.population_size}")
    check.one_of("search.replacement", REPLACEMENTS)

    probabilities = config.mutation.probabilities
    unknown = sorted(set(probabilities) - set(MUTATIONS))
    if unknown:
        check.fail(f"mutation.probabilities.{unknown[0]}", f"unknown key; expected some of {list(MUTATIONS)}")
    for kind in probabilities:
        check.at_least(f"mutation.probabilities.{kind}", 0)
    if sum(probabilities.values()) <= 0:
        check.fail("mutation.probabilities", "at least one mutation needs a positive probability")
    check.within("mutation.prune_threshold", 0, 1, low_open=True, high_open=True)  # a sigmoid strength
    check.within("mutation.relative_threshold", 0, 1, low_open=True)  # a ratio to the strongest input
    check.within("mutation.unguided_prune_probability", 0, 1, low_open=True)
    check.at_least("mutation.max_attempts", 1)
    check.at_least("mutation.min_pruned", 0)
    check.one_of("mutation.prune_rule", PRUNE_RULES)
    check.one_of("mutation.prune_signal", PRUNE_SIGNALS)
    if config.mutation.prune_signal == "contribution" and config.mutation.prune_rule != "relative":
        check.fail("mutation.prune_signal", "'contribution' needs prune_rule 'relative': a contribution is an RMS, "
                   "not a sigmoid strength an absolute threshold could read")
    check.one_of("mutation.unguided", UNGUIDED_MODES)
    check.at_least("attention.top_k", 1)

    if config.fitness.kind == "toy":
        check.at_least("fitness.sleep_seconds", 0)
        check.at_least("fitness.noise", 0)
    else:
        check.at_least("fitness.steps", 1)
        check.at_least("fitness.frame_cache_mb", 0)

    check.one_of("executor.kind", EXECUTOR_KINDS)
    for key in ("workers", "torch_threads"):
        check.at_least(f"executor.{key}", 1)
    for key in ("gpus_per_trial", "max_retries"):
        check.at_least(f"executor.{key}", 0)
    check.positive("executor.cpus_per_trial")
    if config.fitness.kind == "proxy-training":
        _validate_fitness_device(config, check.fail)


def _validate_fitness_device(config: SearchConfig, fail: Any) -> None:
    """The proxy's device and the executor's GPUs must agree: a contradiction would silently train on the CPU
    (or find no GPU) in every trial."""
    device, ex = config.fitness.proxy_training.device, config.executor
    if not (device in ("auto", "cpu", "cuda") or (device.startswith("cuda:") and device[5:].isdigit())):
        fail("fitness.device", f"expected auto, cpu, cuda or cuda:N, got {device!r}")
    if ex.kind == "ray":
        if ex.gpus_per_trial > 0 and device == "cpu":
            fail("fitness.device", f"'cpu', but executor.gpus_per_trial is {ex.gpus_per_trial:g}: every trial would "
                 "reserve GPU time and train on the CPU; use 'auto' or 'cuda'")
        if ex.gpus_per_trial == 0 and device.startswith("cuda"):
            fail("fitness.device", f"{device!r}, but executor.gpus_per_trial is 0: Ray gives a trial no GPU unless it "
                 "reserves one; set gpus_per_trial (1, or a fraction such as 0.5 to share a GPU) or use 'auto'")
        if device.startswith("cuda:"):
            fail("fitness.device", f"{device!r}: Ray chooses each trial's GPU; use 'cuda' or 'auto'")
    elif ex.workers > 1 and device.startswith("cuda:"):
        fail("fitness.device", f"{device!r} would put all {ex.workers} local workers on one GPU; use 'cuda' "
             "(workers take the visible GPUs in turn) or 'auto'")
