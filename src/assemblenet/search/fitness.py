"""The fitness interface of the search, and its proxy-training implementation.

A fitness function is any picklable callable ``fitness(graph, *, seed, workdir=None) -> FitnessResult``. It
receives the candidate at full scale (the space's filter counts) and a per-trial seed, and returns the
validation metric plus the sigmoid connection weights it learned, which guide the candidate's children.
Picklable means it can be shipped to a process pool or a Ray worker.

Implementations:

- :class:`ProxyTrainingFitness` (``fitness.kind: proxy-training``) trains the candidate with learnable
  connection weights for a fixed number of steps through the engine's one training loop
  (:func:`assemblenet.engine.run_training`) at the space's width multiplier, and reads the validation metric.
- :class:`assemblenet.search.toy.ToyFitness` (``fitness.kind: toy``) is an analytic benchmark function for
  testing the search mechanics without training.

:class:`FitnessResult` and :class:`FitnessFunction` live in :mod:`assemblenet.search.fitness_types` (which
implementations import) and are re-exported here.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from assemblenet.config_schema import PATH_RULE
from assemblenet.errors import AssembleNetError, ConfigError
from assemblenet.graph.spec import AssembleNetGraph, BlockNode
from assemblenet.search.config import SearchConfig
from assemblenet.search.fitness_types import (  # noqa: F401 - re-exported
    AttentionWeights,
    Edge,
    FitnessFunction,
    FitnessResult,
)
from assemblenet.search.registry import strategy_spec

if TYPE_CHECKING:
    from assemblenet.engine.results import TrainingOutcome

logger = logging.getLogger(__name__)


class FitnessUnavailableError(AssembleNetError):
    """The fitness cannot run at all (e.g. the training result lacks what the search needs), so every
    candidate would fail the same way. The search stops on it instead of recording the candidate as failed.
    """


def learned_weights_from_graph(graph: AssembleNetGraph) -> dict[Edge, float]:
    """Per-edge weights of a graph carrying learned weights; single-input nodes and unweighted nodes give 1.0
    (a single input passes through unchanged, so it is never a pruning candidate)."""
    weights: dict[Edge, float] = {}
    for target, node in enumerate(graph.nodes):
        if isinstance(node, BlockNode):
            edge_weights = node.edge_weights if len(node.inputs) > 1 else None
            for k, source in enumerate(node.inputs):
                weights[(source, target)] = float(edge_weights[k]) if edge_weights is not None else 1.0
    return weights


@dataclass(frozen=True)
class ProxyTrainingFitness:
    """Train the candidate on the proxy task with the engine's training loop and return its validation metric.

    The engine call is::

        run_training(train_config, graph=graph, output_dir=workdir or None, seed=seed, max_steps=steps,
                     width_multiplier=width_multiplier, overrides=overrides, device=device,
                     num_threads=num_threads, progress=False)

    where ``graph`` has no fixed edge weights (they are learned). It reads the result as a
    :class:`~assemblenet.engine.results.TrainingOutcome` (the engine's ``TrainResult`` is one): the validation
    ``metrics`` holding ``metric`` (the engine's ``"metric"`` is its primary metric), and the learned connection
    weights, ``connection_weights`` (``{(src, dst): weight}``) or else a graph with learned weights,
    ``learned_graph``. With peer attention (``model.attention_mode: peer`` in the engine config or
    ``overrides``) it also reads ``attention_weights`` (``{(src, dst): {peer: softmax weight}}``), which
    searches over attention sources need; the graph's ``attention_sources`` reach the model unchanged.
    """

    train_config: str | None
    steps: int
    metric: str
    width_multiplier: float
    device: str = "cpu"
    overrides: Mapping[str, Any] = field(default_factory=dict)
    num_threads: int | None = 1
    keep_outputs: bool = False  # False: the engine writes nothing per candidate
    frame_cache_mb: float = 0.0  # bound of the frame store with_frame_store writes (0: none)
    frame_store: str | None = None  # folder of the proxy splits' frame stores (see with_frame_store)

    requires_torch = True  # the executor fixes the torch thread count before calling it

    def __call__(self, graph: AssembleNetGraph, *, seed: int, workdir: str | None = None) -> FitnessResult:
        from assemblenet import engine

        run_training = engine.run_training  # looked up per call, so tests can replace it
        start = time.perf_counter()
        datasets = self._cached_datasets(run_training)
        result: TrainingOutcome = run_training(
            self.train_config,
            graph=graph.without_edge_weights(),
            output_dir=workdir if self.keep_outputs else None,
            seed=seed,
            max_steps=self.steps,
            width_multiplier=self.width_multiplier,
            overrides=dict(self.overrides),
            device=self.device,
            num_threads=self.num_threads,
            progress=False,
            **datasets,
        )
        wall_time = time.perf_counter() - start
        metrics = result.metrics
        if self.metric not in metrics:
            raise ConfigError(
                f"fitness.metric: the engine reported no validation metric {self.metric!r}; it has {sorted(metrics)}"
            )
        return FitnessResult(
            fitness=float(metrics[self.metric]),
            learned_weights=_learned_weights_of(result),
            metrics={k: float(v) for k, v in metrics.items() if isinstance(v, (int, float))},
            wall_time=wall_time,
            attention_weights={(int(s), int(t)): {int(p): float(w) for p, w in peers.items()}
                               for (s, t), peers in result.attention_weights.items()},
            contributions=_edge_values(result.connection_contributions),
        )

    def with_frame_store(self, folder: str | os.PathLike[str]) -> "ProxyTrainingFitness":
        """This fitness reading its proxy frames from stores in ``folder`` (``folder/train``, ``folder/val``),
        written here first (or reused when up to date): every worker then maps the decoded frames instead of
        decoding each video itself. Only splits with ``cache_frames`` are stored (the store serves exactly
        what that cache would), together at most ``frame_cache_mb``; a split that does not fit is decoded in
        each worker as before (logged). Unchanged (``self``) when nothing was stored."""
        from assemblenet import engine
        from assemblenet.data.frame_store import build_frame_store
        from assemblenet.engine import datasets, trainer
        from assemblenet.engine.config import load_config

        if self.frame_cache_mb <= 0 or engine.run_training is not trainer.run_training:
            return self
        cfg = load_config(self.train_config, list(dict(self.overrides).items()))
        budget = int(self.frame_cache_mb * 2**20)
        stored = []
        start = time.perf_counter()
        for split in ("train", "val"):
            dataset = datasets.build_split(cfg, split)
            if not getattr(dataset, "cache_frames", False) or not hasattr(dataset, "attach_frame_store"):
                continue
            built = build_frame_store(Path(folder) / split, dataset, limit_bytes=budget,
                                      what=f"proxy {split} split (fitness.frame_cache_mb={self.frame_cache_mb:g})")
            if built.store is not None:
                budget -= built.total_bytes
                stored.append(f"{split} {len(built.store)} videos {built.total_bytes / 2**20:.1f} MB")
        if not stored:
            return self
        logger.info("proxy frame store %s: %s (%.1f s)", folder, ", ".join(stored), time.perf_counter() - start)
        return dataclasses.replace(self, frame_store=str(folder))

    def _cached_datasets(self, run_training: Any) -> dict[str, Any]:
        """``train_dataset``/``val_dataset`` for the engine, built once per process (many candidates share them).

        Empty (the engine builds its own) unless ``run_training`` is the engine's own, whose data helpers we use.
        """
        from assemblenet.engine import datasets, trainer
        from assemblenet.engine.config import load_config

        if run_training is not trainer.run_training:
            return {}
        cfg = load_config(self.train_config, list(dict(self.overrides).items()))
        key = json.dumps([os.getcwd(), str(self.train_config), _plain(cfg.data), _plain(cfg.eval), self.frame_store],
                         sort_keys=True, default=str)
        cached = _DATASET_CACHE.get(key)
        if cached is None:
            cached = (datasets.build_split(cfg, "train"), datasets.build_split(cfg, "val"))
            if self.frame_store is not None:
                for split, dataset in zip(("train", "val"), cached):
                    _attach_frame_store(dataset, Path(self.frame_store) / split)
            _DATASET_CACHE.clear()  # one proxy task per process; do not hold several decoded sets
            _DATASET_CACHE[key] = cached
        return {"train_dataset": cached[0], "val_dataset": cached[1]}


# Per-process cache of the proxy datasets, keyed by the engine config's data and eval sections.
_DATASET_CACHE: dict[str, tuple[Any, Any]] = {}


def _attach_frame_store(dataset: Any, folder: Path) -> None:
    """Serve a ``cache_frames`` split from its frame store when there is one written for it (a split that did
    not fit has none, and one on another machine's disk is missing: both decode as before, logged)."""
    if not getattr(dataset, "cache_frames", False) or not hasattr(dataset, "attach_frame_store"):
        return
    from assemblenet.data.frame_store import INDEX_FILE, open_frame_store

    if not (folder / INDEX_FILE).is_file():  # did not fit, or a worker on another machine's disk
        logger.info("no frame store at %s; this worker decodes the %s videos itself", folder, folder.name)
        return
    store = open_frame_store(folder, dataset)
    if store is not None:
        dataset.attach_frame_store(store)


def _plain(section: Any) -> Any:
    if hasattr(section, "__dataclass_fields__"):
        from dataclasses import asdict

        return asdict(section)
    return section


def _learned_weights_of(result: TrainingOutcome) -> dict[Edge, float]:
    if result.connection_weights:
        return _edge_values(result.connection_weights)
    if result.learned_graph is not None:
        return learned_weights_from_graph(result.learned_graph)
    raise FitnessUnavailableError(
        "the engine's training result has neither 'connection_weights' nor 'learned_graph'; the search needs "
        "the learned connection weights to guide mutations"
    )


def _edge_values(values: Mapping[Any, Any]) -> dict[Edge, float]:
    """A per-edge mapping of the engine's result as plain ``{(int, int): float}``."""
    return {(int(s), int(t)): float(v) for (s, t), v in values.items()}


def searches_attention(config: SearchConfig) -> str | None:
    """Why a search config needs a fitness that learns peer attention (None: it does not)."""
    if strategy_spec(config.strategy).learns_attention:
        return f"strategy {config.strategy!r}"
    if config.space.attention_sources != "all":
        return f"space.attention_sources={config.space.attention_sources!r}"
    if config.mutation.probabilities.get("attention", 0) > 0:
        return "mutation.probabilities.attention > 0"
    return None


def check_peer_attention(config: SearchConfig, train_config: str | None) -> None:
    """A search over attention sources with a proxy that trains without peer attention would read weights that
    do not exist: refuse it before any evaluation, in one line."""
    reason = searches_attention(config)
    if reason is None:
        return
    from assemblenet.engine.config import load_config

    options = config.fitness.proxy_training
    mode = load_config(train_config, list(dict(options.overrides).items())).model.attention_mode
    if mode != "peer":
        raise ConfigError(
            f"fitness.overrides: {reason} needs a proxy that trains with peer attention; set "
            f"'model.attention_mode: peer' in fitness.overrides (the proxy's engine config gives {mode!r})"
        )


def check_contributions(config: SearchConfig, train_config: str | None) -> None:
    """``mutation.prune_signal: contribution`` reads what the proxy measures after training; refuse a proxy that
    measures nothing before any evaluation, in one line."""
    if config.mutation.prune_signal != "contribution":
        return
    from assemblenet.engine.config import load_config

    options = config.fitness.proxy_training
    batches = load_config(train_config, list(dict(options.overrides).items())).train.contribution_batches
    if batches < 1:
        raise ConfigError(
            "fitness.overrides: mutation.prune_signal 'contribution' needs a proxy that measures the connections' "
            "contributions; set 'train.contribution_batches' (e.g. 4) in fitness.overrides")


def build_fitness(config: SearchConfig) -> FitnessFunction:
    """The fitness function a :class:`~assemblenet.search.config.SearchConfig` names."""
    kind = config.fitness.kind
    if kind == "toy":
        from assemblenet.search.toy import ToyFitness

        toy = config.fitness.toy
        return ToyFitness(noise=toy.noise, sleep_seconds=toy.sleep_seconds)
    if kind == "proxy-training":
        options = config.fitness.proxy_training
        train_config = options.config
        if train_config is not None:
            path = Path(train_config)
            if not path.is_file():
                raise ConfigError(f"fitness.config: engine training config not found: {path} ({PATH_RULE}: "
                                  f"{Path.cwd()})")
            train_config = str(path.resolve())
        check_peer_attention(config, train_config)
        check_contributions(config, train_config)
        return ProxyTrainingFitness(
            train_config=train_config,
            steps=options.steps,
            metric=options.metric,
            width_multiplier=config.space.width_multiplier,
            device=options.device,
            overrides=dict(options.overrides),
            num_threads=config.executor.torch_threads,
            keep_outputs=options.keep_outputs,
            frame_cache_mb=options.frame_cache_mb,
        )
    raise ConfigError(f"fitness.kind: unknown fitness {kind!r}")
