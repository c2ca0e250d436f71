"""The search study: compare search strategies over seeds with sound statistics, in one resumable command
(``assemblenet search-study CONFIG``).

Stages (``stage="all"`` runs search, analyse, and, when ``retrain.enabled``, retrain and analyse again):

- **search**: every (strategy, seed) search with :class:`~assemblenet.search.evolution.SearchRunner` into
  ``OUTPUT/<strategy>-seed<N>/``, one after another (each uses its config's executor). A killed study is
  resumed by rerunning it: finished runs are skipped (checked from their ``state.json``), an interrupted run
  resumes where it stopped.
- **analyse**: ``study.json``, ``study.png`` and ``study.md``: best-so-far curves (mean over seeds with a 95%
  bootstrap band), final best per strategy with bootstrap and t intervals, evaluations needed to reach random
  search's final best, guided evolution against every other strategy (exact permutation test, exact
  Mann-Whitney U test, bootstrap interval of the difference), and mutation counts.
- **retrain**: each run's best graph trained from scratch with the engine's ``run_training`` for the full
  budget with ``retrain.overrides`` (the held-out split), into ``OUTPUT/retrain/``; identical graphs (canonical
  hash) are trained once. The analysis then adds test scores per strategy and the proxy-vs-test correlation.
- **baselines** (when ``baselines.enabled``; ``all`` runs it after retrain): fixed wirings of the space's stems
  (:mod:`assemblenet.search.baselines`: RGB-only, flow-only, late-fusion two-stream, the official asn50
  wiring) trained exactly as the retrained graphs, ``baselines.seeds`` seeds each, into ``OUTPUT/baselines/``:
  the table of what each modality and wiring gives on the task, beside the searched graphs' scores.

The statistics are the pure functions of :mod:`assemblenet.search.stats`. See ``docs/search.md``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import statistics
import threading
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from assemblenet import fileio
from assemblenet.config_schema import Checker, Override, dump_yaml, key_error, parse_dataclass, read_config, to_plain
from assemblenet.errors import ConfigError
from assemblenet.search import stats
from assemblenet.search.config import SearchConfig, load_search_config
from assemblenet.search.registry import strategy_names, strategy_spec
from assemblenet.search.store import EvaluationMemo, EvaluationRecord, RunStore, mutation_kind_counts

log = logging.getLogger(__name__)

STUDY_FORMAT = "assemblenet-study/v1"
STAGES = ("search", "analyse", "retrain", "baselines", "all")
GUIDED = "evolution"
BASELINE = "random"
CONFIDENCE = 0.95
LOG_FILE = "study_log.jsonl"
TRAIN_TIME_FILE = "train_time.json"  # a worker process's training time, for the result it leaves behind
RETRAIN_DIR = "retrain"
BASELINES_DIR = "baselines"
RETRAIN_RECORD = "retrain.json"
RESULT_FILE = "result.json"
ENGINE_FINAL_METRICS = "final_metrics.json"  # assemblenet.engine.trainer.FINAL_METRICS_FILE
HASH_CHARS = 12
# One colour per strategy, the same in every figure.
COLOURS = {"evolution": "C3", "evolution-unguided": "C1", "random": "C0", "oneshot": "C2", "oneshot-attention": "C4"}
# A study's default strategies: those that need nothing of the proxy (oneshot-attention needs peer attention).
DEFAULT_STRATEGIES = ("evolution", "evolution-unguided", "random", "oneshot")


# ---------------------------------------------------------------------- config
@dataclass(frozen=True)
class RetrainConfig:
    """Retraining each run's best graph from scratch on the full budget (the test score the search never saw).

    ``config`` is the engine training config (relative to the study file; None: the engine's defaults);
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


@dataclass(frozen=True)
class BaselinesConfig:
    """Fixed wirings trained with the retrain settings (same budget, same test split), ``seeds`` seeds each."""

    enabled: bool = False
    names: tuple[str, ...] = ("rgb_only", "flow_only", "late_fusion", "asn50")
    seeds: int = 3


@dataclass(frozen=True)
class StudyConfig:
    name: str = "study"
    search: str = ""  # the base search config, relative to the study file (required)
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
    # The folder and path of the study file, for relative paths and messages; not YAML keys.
    base_dir: str = field(default=".", compare=False, repr=False)
    source: str = field(default="study config", compare=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        data = to_plain(self)
        data.pop("base_dir", None)
        data.pop("source", None)
        return data

    def to_yaml(self) -> str:
        return dump_yaml(self.to_dict())

    def resolve(self, path: str) -> Path:
        """A path of the study file, relative to its folder."""
        candidate = Path(path)
        return candidate if candidate.is_absolute() else Path(self.base_dir) / candidate

    @property
    def search_path(self) -> Path:
        return self.resolve(self.search)


def load_study_config(path: str | Path, overrides: Iterable[Override] = ()) -> StudyConfig:
    """The study config of a YAML file, with dotted ``overrides`` applied before validation. ``name``
    defaults to the file's stem."""
    data, source = read_config(path, overrides, what="study config", name_from_file=True)
    return study_config_from_dict(data, source=source, base_dir=str(Path(path).parent))


def study_config_from_dict(data: Any, *, source: str = "study config", base_dir: str = ".") -> StudyConfig:
    """Parse and validate a study config with the shared schema layer (one-line errors naming the file and
    the dotted key)."""
    config = parse_dataclass(StudyConfig, data, source=source, skip={"base_dir", "source"})
    config = dataclasses.replace(config, base_dir=base_dir, source=source)
    if not data or "search" not in data:
        raise key_error(source, "search", "required: the base search config (a path relative to this file)")
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
        fail("search", f"search config not found: {config.search_path}")
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
    retrain_config = config.retrain.config
    if config.retrain.enabled and retrain_config is not None and not config.resolve(retrain_config).is_file():
        fail("retrain.config", f"engine training config not found: {config.resolve(retrain_config)}")


# ---------------------------------------------------------------------- the study
@dataclass(frozen=True)
class RunSpec:
    strategy: str
    seed: int

    @property
    def label(self) -> str:
        from assemblenet.search.evolution import run_dir_name

        return run_dir_name(self.strategy, self.seed)


@dataclass(frozen=True)
class StudyOutcome:
    output_dir: Path
    searched: list[dict[str, Any]]
    retrained: list[dict[str, Any]]
    analysis: dict[str, Any] | None


class Study:
    """One study in one output folder. ``fitness`` is passed to every search (a test double; default: what the
    search config names) and ``run_training`` replaces the engine's training entry point in the retrain stage
    (same signature as :func:`assemblenet.engine.run_training`)."""

    def __init__(
        self,
        config: StudyConfig,
        *,
        output: str | Path | None = None,
        executor: str | None = None,
        ray_address: str | None = None,
        progress: bool = True,
        fitness: Any = None,
        run_training: Callable[..., Any] | None = None,
    ) -> None:
        self.config = config
        self.output = Path(output or config.output_dir or Path("runs") / "study" / config.name)
        base = load_search_config(config.search_path)
        changes: dict[str, Any] = {"search.max_evaluations": config.max_evaluations}
        if executor is not None:
            changes["executor.kind"] = executor
        if ray_address is not None:
            if executor == "local":
                raise ConfigError("--ray-address needs --executor ray")
            changes["executor.kind"] = "ray"
            changes["executor.ray_address"] = ray_address
        self.base = base.replace(**changes)
        self.progress = progress
        self.fitness = fitness
        self._run_training = run_training

    # ------------------------------------------------------------------ layout
    @property
    def budget(self) -> int:
        return self.config.max_evaluations

    def specs(self) -> list[RunSpec]:
        return [RunSpec(strategy, seed) for strategy in self.config.strategies for seed in self.config.seeds]

    def run_dir(self, spec: RunSpec) -> Path:
        return self.output / spec.label

    def run_config(self, spec: RunSpec) -> SearchConfig:
        return self.base.replace(strategy=spec.strategy, seed=spec.seed)

    def run(self, stage: str = "all") -> StudyOutcome:
        if stage not in STAGES:
            raise ConfigError(f"stage: unknown stage {stage!r}; expected one of {list(STAGES)}")
        with fileio.hold_folder(self.output):  # one study per folder
            return self._run(stage)

    def _run(self, stage: str) -> StudyOutcome:
        searched: list[dict[str, Any]] = []
        retrained: list[dict[str, Any]] = []
        analysis = None
        if stage in ("search", "all"):
            searched = self._timed("search", self.search)
        if stage in ("analyse", "all"):
            analysis = self.analyse()
        if stage == "retrain" or (stage == "all" and self.config.retrain.enabled):
            retrained = self._timed("retrain", self.retrain)
            analysis = self.analyse()
        if stage == "baselines" or (stage == "all" and self.config.baselines.enabled):
            self._timed("baselines", self.train_baselines)
            analysis = self.analyse()
        return StudyOutcome(self.output, searched, retrained, analysis)

    def _timed(self, stage: str, work: Callable[[], Any]) -> Any:
        """Run one stage and log its wall time (``stage-finished``; a killed invocation logs nothing)."""
        start = time.time()
        out = work()
        self._log({"event": "stage-finished", "time": time.time(), "stage": stage,
                   "wall_time_s": round(time.time() - start, 3)})
        return out

    def stage_times(self) -> dict[str, float]:
        """Wall seconds per stage, summed over the invocations that finished it (``study_log.jsonl``)."""
        path = self.output / LOG_FILE
        times: dict[str, float] = {}
        for line in path.read_text().splitlines() if path.is_file() else ():
            row = json.loads(line)
            if row.get("event") == "stage-finished":
                times[row["stage"]] = times.get(row["stage"], 0.0) + float(row["wall_time_s"])
        return times

    # ------------------------------------------------------------------ stage: search
    def search(self) -> list[dict[str, Any]]:
        """Run (or resume) every search, one after another; return one summary per run."""
        from assemblenet.search.evolution import SearchRunner, executor_for
        from assemblenet.search.fitness import build_fitness

        specs = self.specs()
        self.output.mkdir(parents=True, exist_ok=True)
        done = {spec: self._finished(spec) for spec in specs}
        initial = sum(self.budget if done[spec] else self._recorded(spec) for spec in specs)
        summaries = []
        # One fitness and one executor for every run (they share the base config's fitness and executor), so a
        # process pool and the proxy data it caches are made once, not once per run.
        fitness = self.fitness if self.fitness is not None else build_fitness(self.base)
        memo = EvaluationMemo() if self.config.reuse_evaluations else None
        if memo is not None:
            for spec in specs:
                if self._matches_config(spec):  # never copy from a folder another config wrote
                    memo.add_run(self.run_dir(spec))
        executor: Any = None
        with _StudyProgress(total=len(specs) * self.budget, initial=initial, enabled=self.progress,
                            desc=f"study {self.config.name}") as progress:
            try:
                for spec in specs:
                    if done[spec] is not None:
                        summaries.append({**done[spec], "skipped": True})
                        continue
                    log.info("study %s: search %s -> %s", self.config.name, spec.label, self.run_dir(spec))
                    progress.watch(self.run_dir(spec), self.budget)
                    start = time.time()
                    if executor is None:
                        executor = executor_for(self.base, fitness)
                    summary = SearchRunner(self.run_config(spec), run_dir=self.run_dir(spec), fitness=fitness,
                                           executor=executor, progress=False, memo=memo).run()
                    progress.finish_run()
                    row = {
                        "event": "run-finished", "time": time.time(), "strategy": spec.strategy, "seed": spec.seed,
                        "run_dir": str(self.run_dir(spec)), "evaluations": summary.evaluations,
                        "exhausted": summary.exhausted,
                        "best_fitness": summary.best.fitness if summary.best is not None else None,
                        "best_index": summary.best.index if summary.best is not None else None,
                        "wall_time_s": round(time.time() - start, 3),
                    }
                    self._log(row)
                    summaries.append({**row, "skipped": False})
            finally:
                if executor is not None:
                    executor.close()
        return summaries

    def _matches_config(self, spec: RunSpec) -> bool:
        """Whether the run's folder was written by this study's config (False: no folder, or another config)."""
        try:
            manifest = RunStore(self.run_dir(spec)).read_manifest()
        except ConfigError:
            return False
        return bool(manifest) and (_json_plain(manifest.get("fingerprint"))
                                   == _json_plain(self.run_config(spec).fingerprint()))

    def _finished(self, spec: RunSpec) -> dict[str, Any] | None:
        """The summary of a run that already spent the budget with this config (skipped quickly), else None
        (SearchRunner then resumes it, or explains why the folder does not match)."""
        if not self._matches_config(spec):
            return None
        try:
            state = RunStore(self.run_dir(spec)).read_state()
        except ConfigError:
            return None
        if not state:
            return None
        next_index = int(state.get("next_index", 0))
        if next_index < self.budget and not state.get("exhausted", False):
            return None
        history = state.get("history", [])[: self.budget]
        bests = [row.get("best_fitness") for row in history if row.get("best_fitness") is not None]
        return {"strategy": spec.strategy, "seed": spec.seed, "run_dir": str(self.run_dir(spec)),
                "evaluations": min(next_index, self.budget), "exhausted": bool(state.get("exhausted", False)),
                "best_fitness": bests[-1] if bests else None}

    def _recorded(self, spec: RunSpec) -> int:
        return _count_records(self.run_dir(spec), self.budget)

    def _log(self, row: Mapping[str, Any]) -> None:
        path = self.output / LOG_FILE
        previous = path.read_text() if path.is_file() else ""
        line = json.dumps(fileio.json_safe(dict(row)), allow_nan=False)
        fileio.atomic_write_text(path, previous + line + "\n", fsync=True)

    # ------------------------------------------------------------------ stage: analyse
    def collect(self) -> list["RunResult"]:
        return [RunResult.load(spec, self.run_dir(spec), self.budget) for spec in self.specs()]

    def analyse(self) -> dict[str, Any]:
        """Write ``study.json``, ``study.png`` and ``study.md`` from the run folders (and the retrain folder);
        return the ``study.json`` content."""
        runs = self.collect()
        for run in runs:
            if not run.complete:
                log.warning("study %s: %s is %s; the analysis covers what is there", self.config.name, run.label,
                            "missing" if not run.exists else f"incomplete ({run.evaluations}/{self.budget})")
        analysis = analyse_runs(runs, self.config, self.base)
        retrain = self._retrain_analysis(runs)
        analysis["retrain"] = retrain
        analysis["baselines"] = self._baselines_analysis()
        analysis["stage_wall_time_s"] = self.stage_times()
        analysis = fileio.json_safe(analysis)  # NaN (no value yet) as None, as written
        self.output.mkdir(parents=True, exist_ok=True)
        plot_study(runs, analysis, self.output / "study.png")
        if retrain is not None and retrain["graphs"]:
            plot_proxy_vs_test(retrain, self.output / "proxy_vs_test.png")
        fileio.atomic_write_text(self.output / "study.json", json.dumps(analysis, indent=1, allow_nan=False) + "\n")
        fileio.atomic_write_text(self.output / "study.md", study_markdown(analysis))
        log.info("study %s: %s", self.config.name, self.output / "study.md")
        return analysis

    def _retrain_analysis(self, runs: list["RunResult"]) -> dict[str, Any] | None:
        folder = self.output / RETRAIN_DIR
        if not folder.is_dir():
            return None
        entries, stale = [], []
        for run in runs:
            path = folder / run.label / RETRAIN_RECORD
            if not path.is_file():
                continue
            entry = json.loads(path.read_text())
            if run.best is None or entry.get("graph_hash") != run.best.graph_hash:
                stale.append(run.label)  # the run's best changed since (e.g. a larger budget): retrain again
                continue
            entries.append(entry)
        return retrain_statistics(entries, self.config, stale=stale)

    # ------------------------------------------------------------------ stage: retrain
    def retrain(self) -> list[dict[str, Any]]:
        """Retrain every run's best graph from scratch (identical graphs once); write and return the entries."""
        cfg = self.config.retrain
        if not cfg.enabled:
            raise key_error(self.config.source, "retrain.enabled",
                            "is false; set it to true to retrain the best graphs")
        runs = self.collect()
        unfinished = [run.label for run in runs if not run.complete]
        if unfinished:
            raise ConfigError(f"retrain needs finished searches; run the search stage first ({', '.join(unfinished)} "
                              "missing or incomplete)")
        train = self._run_training or _engine_run_training()
        train_config = None if cfg.config is None else str(self.config.resolve(cfg.config).resolve())
        width = cfg.width_multiplier if cfg.width_multiplier is not None else self.base.space.width_multiplier
        owners: dict[str, RunResult] = {}
        for run in runs:
            if run.best is not None:
                owners.setdefault(run.best.graph_hash, run)
        jobs = []
        for digest, owner in owners.items():
            for k in range(cfg.seeds):
                folder = self.output / RETRAIN_DIR / owner.label / f"{digest[:HASH_CHARS]}-seed{k}"
                if not any((self.output / RETRAIN_DIR).glob(f"*/{folder.name}/{RESULT_FILE}")):
                    jobs.append((owner.best.graph, folder, k))  # type: ignore[union-attr]
        self._train_in_parallel(jobs, train_config, width)
        entries = []
        for digest, owner in owners.items():
            results = []
            for k in range(cfg.seeds):
                results.append(self._train_one(owner, k, train, train_config, width))
            for run in runs:
                if run.best is None or run.best.graph_hash != digest:
                    continue
                entry = self._write_entry(run, owner, results)
                entries.append(entry)
        for run in runs:
            if run.best is None:
                log.warning("study %s: %s has no successful evaluation; nothing to retrain", self.config.name,
                            run.label)
        return entries

    def _train_one(self, owner: "RunResult", k: int, train: Callable[..., Any], train_config: str | None,
                   width: float) -> dict[str, Any]:
        assert owner.best is not None
        digest = owner.best.graph_hash
        name = f"{digest[:HASH_CHARS]}-seed{k}"
        folder = self.output / RETRAIN_DIR / owner.label / name
        if not (folder / RESULT_FILE).is_file():
            for other in sorted((self.output / RETRAIN_DIR).glob(f"*/{name}/{RESULT_FILE}")):
                found = json.loads(other.read_text())
                if found.get("graph_hash") == digest:
                    return found  # trained before under another run that then had this best graph
        return self._train_graph(owner.best.graph, folder, k, train, train_config, width, what=owner.label)

    def _train_graph(self, graph: Any, folder: Path, k: int, train: Callable[..., Any], train_config: str | None,
                     width: float, *, what: str) -> dict[str, Any]:
        """Train ``graph`` from scratch with the retrain settings and training seed ``k`` into ``folder``
        (resumable: a finished one is read back, a killed one resumes from the engine's checkpoints)."""
        cfg = self.config.retrain
        digest = graph.canonical_hash()
        result_path = folder / RESULT_FILE
        if result_path.is_file():
            return json.loads(result_path.read_text())
        start = time.time()
        engine_final = folder / ENGINE_FINAL_METRICS
        trained_for = None
        if engine_final.is_file():  # trained by a worker process, or killed before our result file was written
            metrics = dict(json.loads(engine_final.read_text()).get("metrics", {}))
            if (folder / TRAIN_TIME_FILE).is_file():
                trained_for = float(json.loads((folder / TRAIN_TIME_FILE).read_text())["wall_time_s"])
        else:
            log.info("study %s: training %s (graph %s, training seed %d) -> %s", self.config.name, what,
                     digest[:HASH_CHARS], k, folder)
            result = train(
                train_config,
                graph=graph.without_edge_weights(),
                output_dir=str(folder),
                seed=k,
                max_steps=cfg.steps,
                width_multiplier=width,
                overrides=dict(cfg.overrides),
                progress=self.progress,
            )
            metrics = result.get("metrics") if isinstance(result, Mapping) else getattr(result, "metrics", None)
            if not isinstance(metrics, Mapping):
                raise ConfigError(f"retrain: the training result has no metrics mapping (got {type(result).__name__})")
        if cfg.metric not in metrics or not isinstance(metrics[cfg.metric], (int, float)):
            raise key_error(self.config.source, "retrain.metric",
                            f"the engine reported no metric {cfg.metric!r}; it has {sorted(metrics)}")
        record = {
            "graph_hash": digest, "training_seed": k, "folder": str(folder.relative_to(self.output)),
            "metric": cfg.metric, "score": float(metrics[cfg.metric]),
            "metrics": {key: value for key, value in metrics.items() if isinstance(value, (int, float))},
            "steps": cfg.steps, "width_multiplier": width, "finished_at": time.time(),
            "wall_time_s": trained_for if trained_for is not None else round(time.time() - start, 3),
        }
        fileio.atomic_write_text(result_path, json.dumps(fileio.json_safe(record), indent=1) + "\n", fsync=True)
        self._log({"event": "training-finished", "time": time.time(), "what": what, "graph_hash": digest,
                   "training_seed": k, "score": record["score"], "metric": cfg.metric,
                   "wall_time_s": record["wall_time_s"]})
        return record

    def _train_in_parallel(self, jobs: Sequence[tuple[Any, Path, int]], train_config: str | None,
                           width: float) -> None:
        """With ``retrain.workers`` > 1, run the engine trainings of ``jobs`` (graph, folder, seed) that are not
        done in a process pool, one torch thread each; each leaves the engine's final metrics in its folder,
        which :meth:`_train_graph` then records. (Injected training functions run in-process instead.)"""
        cfg = self.config.retrain
        todo = [(g, f, k) for g, f, k in jobs
                if not (f / RESULT_FILE).is_file() and not (f / ENGINE_FINAL_METRICS).is_file()]
        if cfg.workers < 2 or self._run_training is not None or len(todo) < 2:
            return
        import concurrent.futures
        import multiprocessing

        from assemblenet.graph.io import graph_to_dict

        context = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(max_workers=cfg.workers, mp_context=context) as pool:
            futures = {pool.submit(_engine_training_job, train_config, graph_to_dict(g.without_edge_weights()),
                                   str(f), k, cfg.steps, width, dict(cfg.overrides)): f for g, f, k in todo}
            for future in concurrent.futures.as_completed(futures):
                future.result()  # re-raises a training error here
                log.info("study %s: trained %s", self.config.name, futures[future])

    # ------------------------------------------------------------------ stage: baselines
    def train_baselines(self) -> list[dict[str, Any]]:
        """Train every fixed wiring of ``baselines.names`` for ``baselines.seeds`` seeds with the retrain
        settings; return one record per (baseline, seed)."""
        from assemblenet.graph.io import save_graph
        from assemblenet.search.baselines import baseline_graph

        cfg = self.config.retrain
        train = self._run_training or _engine_run_training()
        train_config = None if cfg.config is None else str(self.config.resolve(cfg.config).resolve())
        width = cfg.width_multiplier if cfg.width_multiplier is not None else self.base.space.width_multiplier
        graphs = {name: baseline_graph(name, self.base.space) for name in self.config.baselines.names}
        self._train_in_parallel([(graphs[name], self.output / BASELINES_DIR / name / f"seed{k}", k)
                                 for name in graphs for k in range(self.config.baselines.seeds)], train_config, width)
        records = []
        for name, graph in graphs.items():
            folder = self.output / BASELINES_DIR / name
            folder.mkdir(parents=True, exist_ok=True)
            save_graph(graph, folder / "graph.yaml")
            for k in range(self.config.baselines.seeds):
                record = self._train_graph(graph, folder / f"seed{k}", k, train, train_config, width,
                                           what=f"baseline {name}")
                records.append({"baseline": name, **record})
        return records

    def _baselines_analysis(self) -> dict[str, Any] | None:
        folder = self.output / BASELINES_DIR
        if not folder.is_dir():
            return None
        out: dict[str, Any] = {}
        for name in self.config.baselines.names:
            scores = []
            for k in range(self.config.baselines.seeds):
                path = folder / name / f"seed{k}" / RESULT_FILE
                if path.is_file():
                    scores.append(float(json.loads(path.read_text())["score"]))
            if scores:
                out[name] = {"n": len(scores), "scores": scores, "mean": statistics.fmean(scores),
                             "std": statistics.stdev(scores) if len(scores) > 1 else None,
                             "ci95_t": (stats.t_interval(scores, confidence=CONFIDENCE).to_list()
                                        if len(scores) > 1 else None)}
        return {"metric": self.config.retrain.metric, "steps": self.config.retrain.steps, "baselines": out}

    def _write_entry(self, run: "RunResult", owner: "RunResult", results: list[dict[str, Any]]) -> dict[str, Any]:
        from assemblenet.graph.io import save_graph

        assert run.best is not None
        folder = self.output / RETRAIN_DIR / run.label
        scores = [float(r["score"]) for r in results]
        entry = {
            "strategy": run.spec.strategy, "seed": run.spec.seed, "run": run.label,
            "graph_hash": run.best.graph_hash, "best_index": run.best.index, "proxy_fitness": run.best.fitness,
            "metric": self.config.retrain.metric, "scores": scores, "score": statistics.fmean(scores),
            "trained_in": [r["folder"] for r in results],
            "duplicate_of": None if owner.label == run.label else owner.label,
        }
        save_graph(dataclasses.replace(run.best.graph.without_edge_weights(), name=f"{run.label}-eval{run.best.index}"),
                   folder / "graph.yaml")
        fileio.atomic_write_text(folder / RETRAIN_RECORD, json.dumps(fileio.json_safe(entry), indent=1) + "\n",
                                 fsync=True)
        return entry


def run_study(config: StudyConfig | str | Path, *, stage: str = "all", **options: Any) -> StudyOutcome:
    """Load the study config (a path or a :class:`StudyConfig`) and run ``stage``; ``options`` go to
    :class:`Study` (``output``, ``executor``, ``ray_address``, ``progress``, ``fitness``, ``run_training``)."""
    if not isinstance(config, StudyConfig):
        config = load_study_config(config)
    return Study(config, **options).run(stage)


def _engine_training_job(train_config: str | None, graph: dict[str, Any], folder: str, seed: int,
                         steps: int | None, width: float, overrides: dict[str, Any]) -> None:
    """One training in a worker process (one torch thread); its outputs stay in ``folder``."""
    from assemblenet.engine.trainer import run_training
    from assemblenet.graph.io import graph_from_dict
    from assemblenet.runtime import keep_freed_memory

    keep_freed_memory()
    start = time.time()
    run_training(train_config, graph=graph_from_dict(graph), output_dir=folder, seed=seed, max_steps=steps,
                 width_multiplier=width, overrides=overrides, num_threads=1, progress=False)
    fileio.atomic_write_json(Path(folder) / TRAIN_TIME_FILE, {"wall_time_s": round(time.time() - start, 3)})


def _engine_run_training() -> Callable[..., Any]:
    from assemblenet.engine.trainer import run_training

    return run_training


# ---------------------------------------------------------------------- one run's results
@dataclass
class RunResult:
    """What the analysis needs from one run folder, cut to the study's budget."""

    spec: RunSpec
    path: Path
    budget: int
    exists: bool
    evaluations: int  # consumed evaluations within the budget
    exhausted: bool
    records: list[EvaluationRecord]  # consumed, in order

    @property
    def label(self) -> str:
        return self.spec.label

    @property
    def complete(self) -> bool:
        return self.exists and (self.evaluations >= self.budget or self.exhausted)

    @classmethod
    def load(cls, spec: RunSpec, path: Path, budget: int) -> "RunResult":
        store = RunStore(path)
        state = store.read_state() if store.state_path.is_file() else None
        if state is None:
            return cls(spec, path, budget, False, 0, False, [])
        consumed = min(int(state.get("next_index", 0)), budget)
        records = store.read_records()
        ordered = [records[i] for i in range(consumed) if i in records]
        return cls(spec, path, budget, True, consumed, bool(state.get("exhausted", False)), ordered)

    @property
    def curve(self) -> list[float]:
        """Best fitness so far after each evaluation (NaN before the first success)."""
        out, best = [], math.nan
        for record in self.records:
            if record.fitness is not None and (math.isnan(best) or record.fitness > best):
                best = record.fitness
            out.append(best)
        return out

    def padded_curve(self) -> list[float]:
        """The curve over the whole budget: an exhausted run keeps its final best (it can find no more graphs);
        an unfinished run is NaN past its end."""
        curve = self.curve
        fill = curve[-1] if (curve and self.exhausted) else math.nan
        return curve + [fill] * (self.budget - len(curve))

    @property
    def final_best(self) -> float | None:
        values = [v for v in self.curve if not math.isnan(v)]
        return values[-1] if values else None

    @property
    def best(self) -> EvaluationRecord | None:
        from assemblenet.search.evolution import best_record

        return best_record(self.records)

    def mutation_counts(self) -> tuple[dict[str, int], dict[str, int]]:
        """Counts of ``mutation.kind`` over the children (records with a parent) and over all records."""
        return mutation_kind_counts(self.records), mutation_kind_counts(self.records, children_only=False)


def is_connection_kind(kind: str) -> bool:
    """``connection`` and its variants (``connection-guided``, ``connection-random``, ``connection-matched``)."""
    return kind == "connection" or kind.startswith("connection-") or kind.startswith("connection_")


# ---------------------------------------------------------------------- statistics over runs
def analyse_runs(runs: Sequence[RunResult], config: StudyConfig, base: SearchConfig) -> dict[str, Any]:
    """The study's statistics (the content of ``study.json`` without the retrain section)."""
    samples = config.bootstrap_samples
    strategies = [s for s in config.strategies if any(r.spec.strategy == s for r in runs)]
    by_strategy = {s: [r for r in runs if r.spec.strategy == s] for s in strategies}
    finals = {s: [r.final_best for r in rs if r.final_best is not None] for s, rs in by_strategy.items()}

    target = statistics.fmean(finals[BASELINE]) if finals.get(BASELINE) else None
    probabilities = dict(base.mutation.probabilities)
    configured_share = probabilities.get("connection", 0.0) / sum(probabilities.values())

    out_strategies: dict[str, Any] = {}
    for s, rs in by_strategy.items():
        seed = _stable_seed(s)
        values = finals[s]
        entry: dict[str, Any] = {
            "runs": len(rs), "seeds": [r.spec.seed for r in rs], "complete": sum(r.complete for r in rs),
            "final_best": [r.final_best for r in rs],
        }
        if values:
            boot = stats.bootstrap_mean_ci(values, samples=samples, confidence=CONFIDENCE, seed=seed)
            t = stats.t_interval(values, confidence=CONFIDENCE)
            entry.update({
                "final_best_mean": boot.estimate,
                "final_best_std": statistics.stdev(values) if len(values) > 1 else 0.0,
                "final_best_ci95_bootstrap": boot.to_list(),
                "final_best_ci95_t": t.to_list() if t is not None else None,
            })
        else:
            entry.update({"final_best_mean": None, "final_best_std": None, "final_best_ci95_bootstrap": None,
                          "final_best_ci95_t": None})
        if target is not None:
            per_seed = [stats.evals_to_reach(r.curve, target) for r in rs]
            entry["evals_to_reach_random"] = {
                "target": target, "per_seed": per_seed, "median": stats.median_evals(per_seed),
                "reached": sum(v is not None for v in per_seed), "of": len(per_seed),
            }
        else:
            entry["evals_to_reach_random"] = None
        curves = [r.padded_curve() for r in rs if r.exists]
        if curves:
            mean, low, high = stats.bootstrap_curve_band(curves, samples=samples, confidence=CONFIDENCE, seed=seed)
            entry["curve"] = {"evaluations": list(range(1, config.max_evaluations + 1)), "mean": mean,
                              "low": low, "high": high,
                              "seeds_with_value": [sum(1 for c in curves if not math.isnan(c[i]))
                                                   for i in range(config.max_evaluations)]}
        else:
            entry["curve"] = None
        children: dict[str, int] = {}
        everything: dict[str, int] = {}
        for r in rs:
            c, e = r.mutation_counts()
            for k, v in c.items():
                children[k] = children.get(k, 0) + v
            for k, v in e.items():
                everything[k] = everything.get(k, 0) + v
        n_children = sum(children.values())
        entry["mutations"] = {"children": n_children, "children_by_kind": dict(sorted(children.items())),
                              "all_by_kind": dict(sorted(everything.items()))}
        if strategy_spec(s).mutates:
            connection = sum(v for k, v in children.items() if is_connection_kind(k))
            entry["connection_share"] = {
                "children": n_children, "connection": connection,
                "observed": connection / n_children if n_children else None, "configured": configured_share,
            }
        records = [rec for r in rs for rec in r.records]
        ran = [rec for rec in records if rec.reused_from is None]
        entry["cost"] = {
            "evaluations": len(records), "run": len(ran), "reused": len(records) - len(ran),
            "wall_time_s": sum(rec.wall_time for rec in ran),
            "mean_wall_time_s": statistics.fmean(rec.wall_time for rec in ran) if ran else None,
        }
        out_strategies[s] = entry

    comparisons = []
    if finals.get(GUIDED):
        for other in strategies:
            if other == GUIDED or not finals.get(other):
                continue
            a, b = finals[GUIDED], finals[other]
            seed = _stable_seed(f"{GUIDED}-{other}")
            perm = stats.permutation_test(a, b, alternative="greater", seed=seed)
            mwu = stats.mann_whitney(a, b, alternative="greater", seed=seed)
            diff = stats.bootstrap_diff_ci(a, b, samples=samples, confidence=CONFIDENCE, seed=seed)
            comparisons.append({
                "a": GUIDED, "b": other, "n_a": len(a), "n_b": len(b), "alternative": "greater",
                "mean_difference": diff.estimate, "difference_ci95_bootstrap": diff.to_list(),
                "permutation_p": perm.p_value, "permutation_exact": perm.exact,
                "mannwhitney_u": mwu.statistic, "mannwhitney_p": mwu.p_value, "mannwhitney_exact": mwu.exact,
            })

    return {
        "format": STUDY_FORMAT,
        "name": config.name,
        "created": time.time(),
        "config": config.to_dict(),
        "search_config": str(config.search_path),
        "budget": config.max_evaluations,
        "confidence": CONFIDENCE,
        "bootstrap_samples": samples,
        "band": "95% percentile bootstrap band of the mean over seeds (seeds resampled), step by step",
        "random_final_best_mean": target,
        "runs": [{
            "strategy": r.spec.strategy, "seed": r.spec.seed, "run": r.label, "path": str(r.path),
            "exists": r.exists, "evaluations": r.evaluations, "complete": r.complete, "exhausted": r.exhausted,
            "final_best": r.final_best, "best_index": r.best.index if r.best is not None else None,
            "best_graph_hash": r.best.graph_hash if r.best is not None else None,
        } for r in runs],
        "strategies": out_strategies,
        "comparisons": comparisons,
    }


def retrain_statistics(entries: Sequence[Mapping[str, Any]], config: StudyConfig, *,
                       stale: Sequence[str] = ()) -> dict[str, Any]:
    """Test scores per strategy (mean and bootstrap interval over seeds) and the proxy-vs-test correlation
    over the distinct graphs (entries sharing a graph are one point: mean proxy fitness, their shared score)."""
    by_strategy: dict[str, list[float]] = {}
    for entry in entries:
        by_strategy.setdefault(str(entry["strategy"]), []).append(float(entry["score"]))
    strategies = {}
    for s in [s for s in config.strategies if s in by_strategy]:
        values = by_strategy[s]
        boot = stats.bootstrap_mean_ci(values, samples=config.bootstrap_samples, confidence=CONFIDENCE,
                                       seed=_stable_seed(f"retrain-{s}"))
        t = stats.t_interval(values, confidence=CONFIDENCE)
        strategies[s] = {"n": len(values), "scores": values, "mean": boot.estimate,
                         "std": statistics.stdev(values) if len(values) > 1 else 0.0,
                         "ci95_bootstrap": boot.to_list(), "ci95_t": t.to_list() if t is not None else None}
    graphs: dict[str, dict[str, Any]] = {}
    for entry in entries:
        graph = graphs.setdefault(str(entry["graph_hash"]), {"graph_hash": entry["graph_hash"], "runs": [],
                                                             "strategies": [], "proxy": [], "score": entry["score"]})
        graph["runs"].append(entry["run"])
        graph["strategies"].append(entry["strategy"])
        graph["proxy"].append(float(entry["proxy_fitness"]))
    points = [{"graph_hash": g["graph_hash"], "runs": g["runs"], "strategies": sorted(set(g["strategies"])),
               "proxy_fitness": statistics.fmean(g["proxy"]), "test_score": float(g["score"])}
              for g in graphs.values()]
    proxy = [p["proxy_fitness"] for p in points]
    test = [p["test_score"] for p in points]
    r, rho = stats.pearson(proxy, test), stats.spearman(proxy, test)
    return {
        "metric": config.retrain.metric, "steps": config.retrain.steps, "training_seeds": config.retrain.seeds,
        "overrides": dict(config.retrain.overrides), "entries": list(entries), "stale": list(stale),
        "strategies": strategies, "graphs": points,
        "correlation": {"n": r.n, "pearson_r": r.r, "pearson_p": r.p_value, "spearman_rho": rho.r,
                        "spearman_p": rho.p_value},
    }


def _stable_seed(text: str) -> int:
    return zlib.crc32(text.encode())


def _json_plain(value: Any) -> Any:
    return json.loads(json.dumps(fileio.json_safe(value), sort_keys=True))


def _count_records(run_dir: Path, budget: int) -> int:
    folder = run_dir / "evaluations"
    if not folder.is_dir():
        return 0
    count = 0
    for path in folder.glob("*.json"):
        try:
            count += int(path.stem) < budget
        except ValueError:
            continue
    return count


# ---------------------------------------------------------------------- progress
class _StudyProgress:
    """One bar over every evaluation of the study, with ETA. A thread counts the record files of the run in
    progress (records are written the moment an evaluation finishes, whichever executor runs it)."""

    def __init__(self, *, total: int, initial: int, enabled: bool, desc: str, interval: float = 0.5) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=total, initial=initial, desc=desc, unit="eval", disable=not enabled,
                        dynamic_ncols=True)
        self.enabled = enabled
        self.credit = initial  # evaluations counted for runs that are not being watched
        self.watched: tuple[Path, int, int] | None = None  # run folder, budget, records when watching began
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.interval = interval
        self.thread = threading.Thread(target=self._poll, daemon=True) if enabled else None
        self._redirect: Any = None

    def __enter__(self) -> "_StudyProgress":
        if self.enabled:  # log lines go above the bar instead of through it
            from tqdm.contrib.logging import logging_redirect_tqdm

            self._redirect = logging_redirect_tqdm()
            self._redirect.__enter__()
        if self.thread is not None:
            self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop.set()
        if self.thread is not None:
            self.thread.join()
        self.bar.close()
        if self._redirect is not None:
            self._redirect.__exit__(None, None, None)

    def watch(self, run_dir: Path, budget: int) -> None:
        with self.lock:
            self.watched = (run_dir, budget, _count_records(run_dir, budget))

    def finish_run(self) -> None:
        with self.lock:
            if self.watched is not None:
                _, budget, before = self.watched
                self.credit += budget - before  # an exhausted run counts as done
            self.watched = None
            self._refresh()

    def _poll(self) -> None:
        while not self.stop.wait(self.interval):
            with self.lock:
                self._refresh()

    def _refresh(self) -> None:
        current = self.credit
        if self.watched is not None:
            run_dir, budget, before = self.watched
            current += _count_records(run_dir, budget) - before
        if current > self.bar.n:
            self.bar.update(current - self.bar.n)


# ---------------------------------------------------------------------- figures
def _figure(width: float = 6.4, height: float = 4.2) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=110)
    FigureCanvasAgg(figure)
    return figure


def _colour(strategy: str, k: int) -> str:
    return COLOURS.get(strategy, f"C{5 + k}")


def plot_study(runs: Sequence[RunResult], analysis: Mapping[str, Any], path: Path) -> None:
    """Best fitness so far against the number of evaluations: per strategy the mean over seeds and its 95%
    bootstrap band, one colour per strategy (the paper's comparison figure)."""
    figure = _figure()
    axes = figure.add_subplot()
    plotted = False
    for k, (strategy, entry) in enumerate(analysis["strategies"].items()):
        curve = entry.get("curve")
        if not curve:
            continue
        colour = _colour(strategy, k)
        x = curve["evaluations"]
        mean, low, high = ([math.nan if v is None else v for v in curve[key]] for key in ("mean", "low", "high"))
        axes.plot(x, mean, color=colour, linewidth=1.8, label=f"{strategy} (n={entry['runs']})")
        axes.fill_between(x, low, high, color=colour, alpha=0.18, linewidth=0)
        plotted = True
    axes.set_xlabel("number of evaluations")
    axes.set_ylabel("best fitness so far")
    axes.set_title(f"{analysis['name']}: mean over seeds, 95% bootstrap band")
    axes.grid(True, alpha=0.3)
    if plotted:
        axes.legend(loc="lower right", fontsize="small")
    figure.tight_layout()
    fileio.save_figure(figure, path, format="png")


def plot_proxy_vs_test(retrain: Mapping[str, Any], path: Path) -> None:
    figure = _figure(5.2, 4.4)
    axes = figure.add_subplot()
    order = list(COLOURS) + sorted({s for p in retrain["graphs"] for s in p["strategies"]} - set(COLOURS))
    labelled: set[str] = set()
    for point in retrain["graphs"]:
        strategy = point["strategies"][0] if len(point["strategies"]) == 1 else "shared"
        colour = "k" if strategy == "shared" else _colour(strategy, order.index(strategy))
        axes.scatter(point["proxy_fitness"], point["test_score"], color=colour, s=28, alpha=0.8,
                     label=None if strategy in labelled else strategy)
        labelled.add(strategy)
    corr = retrain["correlation"]
    text = ", ".join(f"{name} {value:.2f}" for name, value in (("Pearson r", corr["pearson_r"]),
                                                                ("Spearman ρ", corr["spearman_rho"]))
                     if value is not None) or "too few graphs for a correlation"
    axes.set_title(f"proxy vs test ({corr['n']} graphs): {text}", fontsize="small")
    axes.set_xlabel("proxy fitness (search)")
    axes.set_ylabel(f"test {retrain['metric']} (retrained)")
    axes.grid(True, alpha=0.3)
    axes.legend(loc="best", fontsize="small")
    figure.tight_layout()
    fileio.save_figure(figure, path, format="png")


# ---------------------------------------------------------------------- markdown
def _f(value: Any, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _ci(pair: Sequence[float] | None, digits: int = 4) -> str:
    return "-" if not pair else f"[{_f(pair[0], digits)}, {_f(pair[1], digits)}]"


def _p(value: float | None) -> str:
    return "-" if value is None else (f"{value:.3g}" if value >= 0.001 else f"{value:.1e}")


def study_markdown(analysis: Mapping[str, Any]) -> str:
    cfg = analysis["config"]
    budget = analysis["budget"]
    lines = [f"# Search study: {analysis['name']}", ""]
    lines += [f"Base search config `{cfg['search']}`; strategies {', '.join(cfg['strategies'])}; seeds "
              f"{', '.join(map(str, cfg['seeds']))}; {budget} evaluations per run; "
              f"{analysis['bootstrap_samples']} bootstrap resamples. Intervals are 95%.", ""]
    incomplete = [r["run"] for r in analysis["runs"] if not r["complete"]]
    if incomplete:
        lines += [f"**Incomplete or missing runs** (analysed as far as they go): {', '.join(incomplete)}.", ""]

    lines += ["## Best fitness against evaluations", "",
              "Mean over seeds of the best fitness found so far; the band is the 95% percentile bootstrap band of "
              "that mean (seeds resampled). An exhausted run keeps its final best to the end of the budget.", "",
              "![best fitness so far against evaluations](study.png)", ""]

    target = analysis["random_final_best_mean"]
    reach_head = (f"evaluations to reach random's final best {_f(target)}: median (reached/seeds)"
                  if target is not None else "evaluations to reach random's final best")
    lines += ["## Final best fitness", "",
              f"| strategy | seeds | final best (mean ± std) | 95% CI (bootstrap) | 95% CI (t) | {reach_head} |",
              "|---|---|---|---|---|---|"]
    for strategy, entry in analysis["strategies"].items():
        reach = entry.get("evals_to_reach_random")
        reach_text = "-" if reach is None else (
            f"{_f(reach['median'], 1) if reach['median'] is not None else f'not reached (>{budget})'} "
            f"({reach['reached']}/{reach['of']})")
        lines.append(f"| {strategy} | {entry['runs']} | {_f(entry['final_best_mean'])} ± {_f(entry['final_best_std'])} "
                     f"| {_ci(entry['final_best_ci95_bootstrap'])} | {_ci(entry['final_best_ci95_t'])} | {reach_text} |")
    lines += ["", "Evaluations to reach: per seed, the first number of evaluations after which the best so far is at "
              "least random search's mean final best; the median counts seeds that never reach it as infinitely "
              "many.", ""]

    lines += ["## Guided evolution against each strategy", ""]
    if analysis["comparisons"]:
        lines += ["One-sided tests of H1: guided `evolution` finds a higher final best than the other strategy, on the "
                  "per-seed final bests. Permutation: exact over every relabelling of the seeds, statistic the "
                  "difference of means. Mann-Whitney U: exact permutation distribution of U (ties included).", "",
                  "| comparison | mean difference | 95% CI (bootstrap) | permutation p | U | Mann-Whitney p |",
                  "|---|---|---|---|---|---|"]
        for c in analysis["comparisons"]:
            lines.append(f"| {c['a']} vs {c['b']} ({c['n_a']} vs {c['n_b']} seeds) | {_f(c['mean_difference'])} "
                         f"| {_ci(c['difference_ci95_bootstrap'])} | {_p(c['permutation_p'])} "
                         f"| {_f(c['mannwhitney_u'], 1)} | {_p(c['mannwhitney_p'])} |")
        lines.append("")
    else:
        lines += ["No comparison: the study needs `evolution` and another strategy with finished runs.", ""]

    lines += ["## Mutations", "",
              "Counts of `mutation.kind` over the children (evaluations with a parent), all runs of a strategy; "
              "initial, random and fallback graphs have no parent.", "",
              "| strategy | children | by kind | connection share (observed / configured) |", "|---|---|---|---|"]
    for strategy, entry in analysis["strategies"].items():
        m = entry["mutations"]
        kinds = ", ".join(f"{k} {v}" for k, v in m["children_by_kind"].items()) or "-"
        share = entry.get("connection_share")
        share_text = "-" if share is None else (f"{_f(share['observed'], 3)} ({share['connection']}/{share['children']})"
                                                f" / {_f(share['configured'], 3)}")
        lines.append(f"| {strategy} | {m['children']} | {kinds} | {share_text} |")
    lines += [""]

    lines += ["## Cost", "",
              "Evaluations run, and those copied from an identical evaluation (same graph, same trial seed) of another "
              "run of the study (`reuse_evaluations`); fitness time summed over the evaluations run (seconds per "
              "evaluation, not wall time: workers run several at once).", "",
              "| strategy | evaluations | run | reused | fitness time (s) | s / evaluation run |", "|---|---|---|---|---|---|"]
    for strategy, entry in analysis["strategies"].items():
        cost = entry["cost"]
        lines.append(f"| {strategy} | {cost['evaluations']} | {cost['run']} | {cost['reused']} "
                     f"| {_f(cost['wall_time_s'], 0)} | {_f(cost['mean_wall_time_s'], 1)} |")
    lines += [""]
    stages = analysis.get("stage_wall_time_s") or {}
    if stages:
        lines += ["Wall time per stage, summed over the invocations that finished it: " + ", ".join(
            f"{name} {seconds / 60:.1f} min" for name, seconds in stages.items())
            + f"; {sum(stages.values()) / 60:.1f} min in all.", ""]

    retrain = analysis.get("retrain")
    if retrain is not None:
        lines += _retrain_markdown(retrain)

    baselines = analysis.get("baselines")
    if baselines is not None and baselines["baselines"]:
        steps = "the config's epochs" if baselines["steps"] is None else f"{baselines['steps']} steps"
        lines += ["## Fixed wirings (modality table)", "",
                  f"Trained exactly as the retrained graphs ({steps}); score `{baselines['metric']}` on the same "
                  "split.", "", "| wiring | seeds | score (mean ± std) | 95% CI (t) | per seed |", "|---|---|---|---|---|"]
        for name, entry in baselines["baselines"].items():
            lines.append(f"| {name} | {entry['n']} | {_f(entry['mean'])} ± {_f(entry['std'])} | {_ci(entry['ci95_t'])} "
                         f"| {', '.join(_f(v) for v in entry['scores'])} |")
        lines += [""]
        verdict = _verdict({name: (e["mean"], e["ci95_t"]) for name, e in baselines["baselines"].items()},
                           f"`{baselines['metric']}`")
        if verdict:
            lines += [f"95% t intervals over seeds: {verdict}.", ""]

    lines += ["## Runs", "", "| run | evaluations | complete | final best | found at |", "|---|---|---|---|---|"]
    for r in analysis["runs"]:
        lines.append(f"| {r['run']} | {r['evaluations']}/{budget}{' (exhausted)' if r['exhausted'] else ''} "
                     f"| {'yes' if r['complete'] else 'no'} | {_f(r['final_best'])} | {_f(r['best_index'])} |")
    return "\n".join(lines) + "\n"


def _verdict(estimates: Mapping[str, tuple[float, Sequence[float] | None]], metric: str) -> str | None:
    """"highest ..." only when one interval lies above every other, else "no measurable difference" (None with
    fewer than two intervals)."""
    intervals = {name: stats.Interval(mean, ci[0], ci[1]) for name, (mean, ci) in estimates.items() if ci}
    if len(intervals) < 2:
        return None
    return stats.compare_intervals(intervals, confidence=CONFIDENCE).sentence(metric)


def _retrain_markdown(retrain: Mapping[str, Any]) -> list[str]:
    steps = "the config's epochs" if retrain["steps"] is None else f"{retrain['steps']} steps"
    lines = ["## Retrained best graphs", "",
             f"Each run's best graph trained from scratch for {steps}, {retrain['training_seeds']} training seed(s), "
             f"with the study's overrides; score: `{retrain['metric']}` on the evaluation split of the overrides. "
             "Identical graphs were trained once.", ""]
    if retrain["stale"]:
        lines += [f"Left out (their best graph changed since they were retrained): {', '.join(retrain['stale'])}.", ""]
    lines += ["| strategy | graphs | test score (mean ± std) | 95% CI (bootstrap) | 95% CI (t) |", "|---|---|---|---|---|"]
    for strategy, entry in retrain["strategies"].items():
        lines.append(f"| {strategy} | {entry['n']} | {_f(entry['mean'])} ± {_f(entry['std'])} "
                     f"| {_ci(entry['ci95_bootstrap'])} | {_ci(entry['ci95_t'])} |")
    verdict = _verdict({s: (e["mean"], e["ci95_bootstrap"]) for s, e in retrain["strategies"].items()
                        if e["n"] > 1}, "test score")
    if verdict:
        lines += ["", f"95% bootstrap intervals over the retrained graphs: {verdict}."]
    corr = retrain["correlation"]
    lines += ["", f"Proxy fitness against test score over {corr['n']} distinct graphs: Pearson r = "
              f"{_f(corr['pearson_r'], 3)} (p = {_p(corr['pearson_p'])}), Spearman ρ = {_f(corr['spearman_rho'], 3)} "
              f"(p = {_p(corr['spearman_p'])}).", ""]
    if retrain["graphs"]:
        lines += ["![proxy fitness against test score](proxy_vs_test.png)", ""]
    return lines
