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
from assemblenet.search.finalists import FINALISTS_DIR, read_finalists
from assemblenet.search.registry import strategy_names, strategy_spec
from assemblenet.search.store import EvaluationMemo, EvaluationRecord, RunStore, mutation_kind_counts

log = logging.getLogger(__name__)

STUDY_FORMAT = "assemblenet-study/v1"
STAGES = ("recipes", "search", "analyse", "retrain", "baselines", "all")
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
    recipes: RecipesConfig = field(default_factory=RecipesConfig)
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

    @property
    def rescoring(self) -> bool:
        """Whether the searches re-score their finalists after the budget (``search.finalists``)."""
        return self.base.search.finalists.top_k > 0

    @property
    def finalist_evaluations(self) -> int:
        """Re-scoring evaluations per run (at most: a run with fewer distinct graphs makes fewer)."""
        options = self.base.search.finalists
        return options.top_k * options.seeds if self.rescoring else 0

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
        if stage == "recipes" or (stage == "all" and self.config.recipes.enabled):
            self._timed("recipes", self.train_recipes)
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
        if stage == "recipes":
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
        per_run = self.budget + self.finalist_evaluations
        initial = sum(per_run if done[spec] else self._recorded(spec) for spec in specs)
        summaries = []
        # One fitness and one executor for every run (they share the base config's fitness and executor), so a
        # process pool and the proxy data it caches are made once, not once per run.
        fitness = self.fitness if self.fitness is not None else build_fitness(self.base)
        memo = EvaluationMemo() if self.config.reuse_evaluations else None
        if memo is not None:
            for spec in specs:
                if self._matches_config(spec):  # never copy from a folder another config wrote
                    memo.add_run(self.run_dir(spec))
                    for record in RunStore(self.run_dir(spec) / FINALISTS_DIR).read_records().values():
                        memo.add(f"{spec.label}/{FINALISTS_DIR}", record)
        executor: Any = None
        with _StudyProgress(total=len(specs) * per_run, initial=initial, enabled=self.progress,
                            desc=f"study {self.config.name}") as progress:
            try:
                for spec in specs:
                    if done[spec] is not None:
                        summaries.append({**done[spec], "skipped": True})
                        continue
                    log.info("study %s: search %s -> %s", self.config.name, spec.label, self.run_dir(spec))
                    progress.watch(self.run_dir(spec), self.budget, self.finalist_evaluations)
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
        if self.rescoring and read_finalists(self.run_dir(spec)) is None:
            return None  # killed during the finalist re-scoring: SearchRunner resumes it
        history = state.get("history", [])[: self.budget]
        bests = [row.get("best_fitness") for row in history if row.get("best_fitness") is not None]
        return {"strategy": spec.strategy, "seed": spec.seed, "run_dir": str(self.run_dir(spec)),
                "evaluations": min(next_index, self.budget), "exhausted": bool(state.get("exhausted", False)),
                "best_fitness": bests[-1] if bests else None}

    def _recorded(self, spec: RunSpec) -> int:
        return _count_records(self.run_dir(spec), self.budget, self.finalist_evaluations)

    def _log(self, row: Mapping[str, Any]) -> None:
        path = self.output / LOG_FILE
        previous = path.read_text() if path.is_file() else ""
        line = json.dumps(fileio.json_safe(dict(row)), allow_nan=False)
        fileio.atomic_write_text(path, previous + line + "\n", fsync=True)

    # ------------------------------------------------------------------ stage: analyse
    def collect(self) -> list["RunResult"]:
        return [RunResult.load(spec, self.run_dir(spec), self.budget, finalists_expected=self.rescoring)
                for spec in self.specs()]

    def analyse(self) -> dict[str, Any]:
        """Write ``study.json``, ``study.png`` and ``study.md`` from the run folders (and the retrain folder);
        return the ``study.json`` content."""
        runs = self.collect()
        for run in runs:
            if not run.complete:
                log.warning("study %s: %s is %s; the analysis covers what is there", self.config.name, run.label,
                            "missing" if not run.exists else f"incomplete ({run.evaluations}/{self.budget}"
                            f"{', finalists pending' if run.evaluations >= self.budget else ''})")
        analysis = analyse_runs(runs, self.config, self.base)
        analysis["recipes"] = self._recipes_analysis()
        retrain = self._retrain_analysis(runs)
        analysis["retrain"] = retrain
        analysis["baselines"] = self._baselines_analysis()
        analysis["stage_wall_time_s"] = self.stage_times()
        analysis = fileio.json_safe(analysis)  # NaN (no value yet) as None, as written
        self.output.mkdir(parents=True, exist_ok=True)
        plot_study(runs, analysis, self.output / "study.png")
        if retrain is not None and retrain["graphs"]:
            plot_proxy_vs_test(retrain, self.output / "proxy_vs_test.png")
        if retrain is not None and retrain.get("choice_comparison"):
            plot_choices(retrain, self.output / "choices.png")
        fileio.atomic_write_text(self.output / "study.json", json.dumps(analysis, indent=1, allow_nan=False) + "\n")
        fileio.atomic_write_text(self.output / "study.md", study_markdown(analysis))
        log.info("study %s: %s", self.config.name, self.output / "study.md")
        return analysis

    def _retrain_analysis(self, runs: list["RunResult"]) -> dict[str, Any] | None:
        folder = self.output / RETRAIN_DIR
        if not folder.is_dir():
            return None
        settings = self._settings_if_known()
        entries, stale = [], []
        for run in runs:
            for choice, record_name, current in ((SINGLE_BEST_CHOICE, RETRAIN_RECORD, run.best),
                                                 (RESCORED_CHOICE, RESCORED_RECORD, run.rescored)):
                path = folder / run.label / record_name
                if not path.is_file():
                    continue
                entry = json.loads(path.read_text())
                if current is None or entry.get("graph_hash") != current.graph_hash or (
                        settings is not None and entry.get("recipe", "") != settings.tag):
                    # the run's graph changed since (e.g. a larger budget), or the recipe did: retrain again
                    stale.append(f"{run.label} ({choice})")
                    continue
                entries.append(entry)
        return retrain_statistics(entries, self.config, stale=stale, settings=settings)

    # ------------------------------------------------------------------ training settings
    def _settings(self, candidate: RecipeCandidate | None) -> "TrainingSettings":
        cfg = self.config.retrain
        if candidate is None:
            return TrainingSettings(cfg.steps, dict(cfg.overrides))
        overrides = dict(cfg.overrides)
        if candidate.lr is not None:
            overrides["optim.lr"] = candidate.lr
        return TrainingSettings(candidate.steps if candidate.steps is not None else cfg.steps, overrides,
                                candidate.name, candidate.lr)

    def retrain_settings(self) -> "TrainingSettings":
        """How the retrained graphs and the baselines train: ``retrain.recipe`` resolved (``auto``: the recipe
        the recipes stage measured best; it must have run)."""
        recipe = self.config.retrain.recipe
        candidates = {c.name: c for c in self.config.recipes.candidates}
        if recipe is None:
            return self._settings(None)
        if recipe != AUTO_RECIPE:
            return self._settings(candidates[recipe])
        analysis = self._recipes_analysis()
        if analysis is None or analysis["chosen"] is None:
            raise ConfigError("retrain.recipe is 'auto': run the recipes stage first (--stage recipes); "
                              "it has not measured every candidate yet")
        return self._settings(candidates[analysis["chosen"]])

    def _settings_if_known(self) -> "TrainingSettings | None":
        try:
            return self.retrain_settings()
        except ConfigError:
            return None

    # ------------------------------------------------------------------ stage: retrain
    def retrain(self) -> list[dict[str, Any]]:
        """Retrain every run's single best graph and, when the search re-scored its finalists, its re-scored
        choice, from scratch (identical graphs once); write and return the entries."""
        cfg = self.config.retrain
        if not cfg.enabled:
            raise key_error(self.config.source, "retrain.enabled",
                            "is false; set it to true to retrain the best graphs")
        runs = self.collect()
        unfinished = [run.label for run in runs if not run.complete]
        if unfinished:
            raise ConfigError(f"retrain needs finished searches; run the search stage first ({', '.join(unfinished)} "
                              "missing or incomplete)")
        settings = self.retrain_settings()
        train = self._run_training or _engine_run_training()
        train_config = self._train_config()
        width = self._width()
        choices = [(run, choice, record) for run in runs
                   for choice, record in ((SINGLE_BEST_CHOICE, run.best), (RESCORED_CHOICE, run.rescored))
                   if record is not None]
        owners: dict[str, tuple[RunResult, EvaluationRecord]] = {}
        for run, _, record in choices:
            owners.setdefault(record.graph_hash, (run, record))
        jobs = []
        for digest, (owner, record) in owners.items():
            for k in range(cfg.seeds):
                folder = self.output / RETRAIN_DIR / owner.label / settings.folder_name(digest[:HASH_CHARS], k)
                if not any((self.output / RETRAIN_DIR).glob(f"*/{folder.name}/{RESULT_FILE}")):
                    jobs.append((record.graph, folder, k, settings))
        self._train_in_parallel(jobs, train_config, width)
        results = {digest: [self._train_one(owner, record, k, train, train_config, width, settings)
                            for k in range(cfg.seeds)]
                   for digest, (owner, record) in owners.items()}
        entries = []
        for run, choice, record in choices:
            owner, _ = owners[record.graph_hash]
            entries.append(self._write_entry(run, owner, choice, record, results[record.graph_hash], settings))
        for run in runs:
            if run.best is None:
                log.warning("study %s: %s has no successful evaluation; nothing to retrain", self.config.name,
                            run.label)
        return entries

    def _train_config(self) -> str | None:
        cfg = self.config.retrain
        return None if cfg.config is None else str(self.config.resolve(cfg.config).resolve())

    def _width(self) -> float:
        cfg = self.config.retrain
        return cfg.width_multiplier if cfg.width_multiplier is not None else self.base.space.width_multiplier

    def _train_one(self, owner: "RunResult", record: EvaluationRecord, k: int, train: Callable[..., Any],
                   train_config: str | None, width: float, settings: "TrainingSettings") -> dict[str, Any]:
        digest = record.graph_hash
        name = settings.folder_name(digest[:HASH_CHARS], k)
        folder = self.output / RETRAIN_DIR / owner.label / name
        if not (folder / RESULT_FILE).is_file():
            for other in sorted((self.output / RETRAIN_DIR).glob(f"*/{name}/{RESULT_FILE}")):
                found = json.loads(other.read_text())
                if found.get("graph_hash") == digest:
                    return found  # trained before under another run that then had this graph
        return self._train_graph(record.graph, folder, k, train, train_config, width, what=owner.label,
                                 settings=settings)

    def _train_graph(self, graph: Any, folder: Path, k: int, train: Callable[..., Any], train_config: str | None,
                     width: float, *, what: str, settings: "TrainingSettings") -> dict[str, Any]:
        """Train ``graph`` from scratch with ``settings`` and training seed ``k`` into ``folder`` (resumable: a
        finished one is read back, a killed one resumes from the engine's checkpoints)."""
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
            log.info("study %s: training %s (graph %s, training seed %d%s) -> %s", self.config.name, what,
                     digest[:HASH_CHARS], k, f", recipe {settings.tag}" if settings.tag else "", folder)
            result = train(
                train_config,
                graph=graph.without_edge_weights(),
                output_dir=str(folder),
                seed=k,
                max_steps=settings.steps,
                width_multiplier=width,
                overrides=dict(settings.overrides),
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
            "steps": settings.steps, "lr": settings.lr, "recipe": settings.tag, "width_multiplier": width,
            "finished_at": time.time(),
            "wall_time_s": trained_for if trained_for is not None else round(time.time() - start, 3),
        }
        fileio.atomic_write_text(result_path, json.dumps(fileio.json_safe(record), indent=1) + "\n", fsync=True)
        self._log({"event": "training-finished", "time": time.time(), "what": what, "graph_hash": digest,
                   "training_seed": k, "recipe": settings.tag, "score": record["score"], "metric": cfg.metric,
                   "wall_time_s": record["wall_time_s"]})
        return record

    def _train_in_parallel(self, jobs: Sequence[tuple[Any, Path, int, "TrainingSettings"]], train_config: str | None,
                           width: float) -> None:
        """With ``retrain.workers`` > 1, run the engine trainings of ``jobs`` (graph, folder, seed, settings) that
        are not done in a process pool, one torch thread each; each leaves the engine's final metrics in its
        folder, which :meth:`_train_graph` then records. (Injected training functions run in-process instead.)"""
        cfg = self.config.retrain
        todo = [(g, f, k, s) for g, f, k, s in jobs
                if not (f / RESULT_FILE).is_file() and not (f / ENGINE_FINAL_METRICS).is_file()]
        if cfg.workers < 2 or self._run_training is not None or len(todo) < 2:
            return
        import concurrent.futures
        import multiprocessing

        from assemblenet.graph.io import graph_to_dict

        context = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(max_workers=cfg.workers, mp_context=context) as pool:
            futures = {pool.submit(_engine_training_job, train_config, graph_to_dict(g.without_edge_weights()),
                                   str(f), k, s.steps, width, dict(s.overrides)): f for g, f, k, s in todo}
            for future in concurrent.futures.as_completed(futures):
                future.result()  # re-raises a training error here
                log.info("study %s: trained %s", self.config.name, futures[future])

    def _train_named(self, folder_root: Path, names: Sequence[str], seeds: int, settings: "TrainingSettings",
                     what: str) -> list[dict[str, Any]]:
        """Train fixed wirings ``names`` (``search.baselines``) with ``seeds`` training seeds each into
        ``folder_root/NAME/``; one record per (name, seed)."""
        from assemblenet.graph.io import save_graph
        from assemblenet.search.baselines import baseline_graph

        train = self._run_training or _engine_run_training()
        train_config, width = self._train_config(), self._width()
        graphs = {name: baseline_graph(name, self.base.space) for name in names}
        self._train_in_parallel([(graphs[name], folder_root / name / settings.folder_name("", k), k, settings)
                                 for name in graphs for k in range(seeds)], train_config, width)
        records = []
        for name, graph in graphs.items():
            folder = folder_root / name
            folder.mkdir(parents=True, exist_ok=True)
            save_graph(graph, folder / "graph.yaml")
            for k in range(seeds):
                record = self._train_graph(graph, folder / settings.folder_name("", k), k, train, train_config,
                                           width, what=f"{what} {name}", settings=settings)
                records.append({"baseline": name, **record})
        return records

    def _named_scores(self, folder_root: Path, names: Sequence[str], seeds: int,
                      settings: "TrainingSettings") -> dict[str, list[float]]:
        out: dict[str, list[float]] = {}
        for name in names:
            scores = []
            for k in range(seeds):
                path = folder_root / name / settings.folder_name("", k) / RESULT_FILE
                if path.is_file():
                    scores.append(float(json.loads(path.read_text())["score"]))
            if scores:
                out[name] = scores
        return out

    # ------------------------------------------------------------------ stage: recipes
    def train_recipes(self) -> list[dict[str, Any]]:
        """Train every recipe candidate on every fixed wiring of ``recipes.graphs`` with ``recipes.seeds``
        training seeds (the seeds' spread per recipe is what the stage measures)."""
        cfg = self.config.recipes
        if not cfg.candidates:
            raise key_error(self.config.source, "recipes.candidates", "is empty; list the recipes to compare")
        records = []
        for candidate in cfg.candidates:
            settings = self._settings(candidate)
            for record in self._train_named(self.output / RECIPES_DIR / candidate.name, cfg.graphs, cfg.seeds,
                                            settings, f"recipe {candidate.name}"):
                records.append({"recipe": candidate.name, **record})
        return records

    def _recipes_analysis(self) -> dict[str, Any] | None:
        cfg = self.config.recipes
        if not cfg.candidates or not (self.output / RECIPES_DIR).is_dir():
            return None
        measured = {c.name: self._named_scores(self.output / RECIPES_DIR / c.name, cfg.graphs, cfg.seeds,
                                               self._settings(c)) for c in cfg.candidates}
        return recipe_statistics(measured, self.config)

    # ------------------------------------------------------------------ stage: baselines
    def train_baselines(self) -> list[dict[str, Any]]:
        """Train every fixed wiring of ``baselines.names`` for ``baselines.seeds`` seeds with the retrain
        settings; return one record per (baseline, seed)."""
        return self._train_named(self.output / BASELINES_DIR, self.config.baselines.names,
                                 self.config.baselines.seeds, self.retrain_settings(), "baseline")

    def _baselines_analysis(self) -> dict[str, Any] | None:
        folder = self.output / BASELINES_DIR
        settings = self._settings_if_known()
        if not folder.is_dir() or settings is None:
            return None
        out: dict[str, Any] = {}
        measured = self._named_scores(folder, self.config.baselines.names, self.config.baselines.seeds, settings)
        for name, scores in measured.items():
            out[name] = {"n": len(scores), "scores": scores, "mean": statistics.fmean(scores),
                         "std": statistics.stdev(scores) if len(scores) > 1 else None,
                         "ci95_t": (stats.t_interval(scores, confidence=CONFIDENCE).to_list()
                                    if len(scores) > 1 else None)}
        return {"metric": self.config.retrain.metric, "steps": settings.steps, "recipe": settings.tag or None,
                "baselines": out}

    def _write_entry(self, run: "RunResult", owner: "RunResult", choice: str, record: EvaluationRecord,
                     results: list[dict[str, Any]], settings: "TrainingSettings") -> dict[str, Any]:
        from assemblenet.graph.io import save_graph

        folder = self.output / RETRAIN_DIR / run.label
        scores = [float(r["score"]) for r in results]
        rescored = run.rescored_summary if choice == RESCORED_CHOICE else None
        entry = {
            "strategy": run.spec.strategy, "seed": run.spec.seed, "run": run.label, "choice": choice,
            "graph_hash": record.graph_hash, "best_index": record.index, "proxy_fitness": record.fitness,
            "rescored_mean": rescored["mean"] if rescored else None,
            "same_as_single_best": run.best is not None and record.graph_hash == run.best.graph_hash,
            "metric": self.config.retrain.metric, "scores": scores, "score": statistics.fmean(scores),
            "recipe": settings.tag, "steps": settings.steps, "lr": settings.lr,
            "trained_in": [r["folder"] for r in results],
            "duplicate_of": None if owner.label == run.label else owner.label,
        }
        suffix = "" if choice == SINGLE_BEST_CHOICE else f"-{choice}"
        save_graph(dataclasses.replace(record.graph.without_edge_weights(), name=f"{run.label}-eval{record.index}"),
                   folder / f"graph{suffix}.yaml")
        name = RETRAIN_RECORD if choice == SINGLE_BEST_CHOICE else RESCORED_RECORD
        fileio.atomic_write_text(folder / name, json.dumps(fileio.json_safe(entry), indent=1) + "\n", fsync=True)
        return entry


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
    finalists: dict[str, Any] | None = None  # finalists.json, when the search re-scored its finalists
    finalist_records: list[EvaluationRecord] = field(default_factory=list)
    finalists_expected: bool = False

    @property
    def label(self) -> str:
        return self.spec.label

    @property
    def complete(self) -> bool:
        searched = self.exists and (self.evaluations >= self.budget or self.exhausted)
        return searched and (self.finalists is not None or not self.finalists_expected)

    @classmethod
    def load(cls, spec: RunSpec, path: Path, budget: int, *, finalists_expected: bool = False) -> "RunResult":
        store = RunStore(path)
        state = store.read_state() if store.state_path.is_file() else None
        if state is None:
            return cls(spec, path, budget, False, 0, False, [], finalists_expected=finalists_expected)
        consumed = min(int(state.get("next_index", 0)), budget)
        records = store.read_records()
        ordered = [records[i] for i in range(consumed) if i in records]
        finalist_records = list(RunStore(path / FINALISTS_DIR).read_records().values())
        return cls(spec, path, budget, True, consumed, bool(state.get("exhausted", False)), ordered,
                   read_finalists(path), finalist_records, finalists_expected)

    @property
    def rescored_summary(self) -> dict[str, Any] | None:
        """The top finalist of ``finalists.json`` (its re-scored mean, std, evaluations), or None."""
        if not self.finalists or not self.finalists.get("finalists"):
            return None
        return dict(self.finalists["finalists"][0])

    @property
    def rescored(self) -> EvaluationRecord | None:
        """The search record of the graph finalist re-scoring chose (None without re-scoring)."""
        top = self.rescored_summary
        if top is None:
            return None
        return next((r for r in self.records if r.index == top["search_index"]), None)

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
        finalist_records = [rec for r in rs for rec in r.finalist_records]
        finalists_ran = [rec for rec in finalist_records if rec.reused_from is None]
        entry["cost"] = {
            "evaluations": len(records), "run": len(ran), "reused": len(records) - len(ran),
            "wall_time_s": sum(rec.wall_time for rec in ran),
            "mean_wall_time_s": statistics.fmean(rec.wall_time for rec in ran) if ran else None,
            "finalist_evaluations": len(finalist_records), "finalist_run": len(finalists_ran),
            "finalist_wall_time_s": sum(rec.wall_time for rec in finalists_ran),
        }
        entry["rescoring"] = {
            "runs": sum(1 for r in rs if r.finalists is not None),
            "changed_choice": sum(1 for r in rs if r.rescored is not None and r.best is not None
                                  and r.rescored.graph_hash != r.best.graph_hash),
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
            "rescored_index": r.rescored.index if r.rescored is not None else None,
            "rescored_graph_hash": r.rescored.graph_hash if r.rescored is not None else None,
            "rescored_mean": (r.rescored_summary or {}).get("mean"),
        } for r in runs],
        "strategies": out_strategies,
        "comparisons": comparisons,
    }


def _score_summary(values: Sequence[float], samples: int, seed_text: str) -> dict[str, Any]:
    boot = stats.bootstrap_mean_ci(values, samples=samples, confidence=CONFIDENCE, seed=_stable_seed(seed_text))
    t = stats.t_interval(values, confidence=CONFIDENCE)
    return {"n": len(values), "scores": list(values), "mean": boot.estimate,
            "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "ci95_bootstrap": boot.to_list(), "ci95_t": t.to_list() if t is not None else None}


def retrain_statistics(entries: Sequence[Mapping[str, Any]], config: StudyConfig, *, stale: Sequence[str] = (),
                       settings: TrainingSettings | None = None) -> dict[str, Any]:
    """Test scores of the retrained graphs.

    - ``by_choice``: per choice (the run's single best graph; its finalist re-scoring choice) and strategy, the
      test score over runs (each run's score is the mean over its graph's training seeds);
    - ``strategies``: the same for each run's result (the re-scored choice where the run has one), and
      ``comparisons`` guided evolution against the others on it (one-sided permutation tests);
    - ``choice_comparison``: re-scored minus single best, paired by run, per strategy and over all runs (mean,
      bootstrap interval, exact sign-flip tests);
    - ``training_noise``: each distinct graph's spread over its training seeds and the split of one training's
      score variance into training-seed noise and differences between graphs;
    - ``correlation``: proxy fitness against test score over the distinct graphs (and the re-scored mean's).
    """
    samples = config.bootstrap_samples
    entries = [dict(e, choice=e.get("choice", SINGLE_BEST_CHOICE)) for e in entries]
    by_choice: dict[str, dict[str, Any]] = {}
    for choice in (SINGLE_BEST_CHOICE, RESCORED_CHOICE):
        per_strategy = {}
        for s in config.strategies:
            values = [float(e["score"]) for e in entries if e["choice"] == choice and e["strategy"] == s]
            if values:
                per_strategy[s] = _score_summary(values, samples, f"retrain-{choice}-{s}")
        if per_strategy:
            by_choice[choice] = per_strategy
    result_choice = RESCORED_CHOICE if RESCORED_CHOICE in by_choice else SINGLE_BEST_CHOICE
    results: dict[str, Mapping[str, Any]] = {}
    for e in entries:
        if e["choice"] == RESCORED_CHOICE or e["run"] not in results:
            results[e["run"]] = e
    result_scores: dict[str, list[float]] = {}
    for e in results.values():
        result_scores.setdefault(str(e["strategy"]), []).append(float(e["score"]))
    strategies = {s: _score_summary(result_scores[s], samples, f"retrain-{s}")
                  for s in config.strategies if s in result_scores}
    comparisons = []
    if len(result_scores.get(GUIDED, [])) > 1:
        for other in strategies:
            if other == GUIDED or len(result_scores[other]) < 2:
                continue
            a, b = result_scores[GUIDED], result_scores[other]
            seed = _stable_seed(f"test-{GUIDED}-{other}")
            perm = stats.permutation_test(a, b, alternative="greater", seed=seed)
            diff = stats.bootstrap_diff_ci(a, b, samples=samples, confidence=CONFIDENCE, seed=seed)
            comparisons.append({"a": GUIDED, "b": other, "n_a": len(a), "n_b": len(b), "alternative": "greater",
                                "mean_difference": diff.estimate, "difference_ci95_bootstrap": diff.to_list(),
                                "permutation_p": perm.p_value, "permutation_exact": perm.exact})
    return {
        "metric": config.retrain.metric,
        "steps": settings.steps if settings is not None else config.retrain.steps,
        "recipe": (settings.tag or None) if settings is not None else config.retrain.recipe,
        "lr": settings.lr if settings is not None else None,
        "training_seeds": config.retrain.seeds,
        "overrides": dict(settings.overrides if settings is not None else config.retrain.overrides),
        "entries": entries, "stale": list(stale), "result_choice": result_choice, "by_choice": by_choice,
        "strategies": strategies, "comparisons": comparisons,
        "choice_comparison": _choice_comparison(entries, config),
        "training_noise": _training_noise(entries),
        **_correlations(entries),
    }


def _choice_comparison(entries: Sequence[Mapping[str, Any]], config: StudyConfig) -> dict[str, Any] | None:
    """Re-scored choice minus single best, paired by run (a run whose two choices are one graph gives 0)."""
    pairs: dict[str, dict[str, Mapping[str, Any]]] = {}
    for e in entries:
        pairs.setdefault(str(e["run"]), {})[str(e["choice"])] = e
    complete = [(p[SINGLE_BEST_CHOICE], p[RESCORED_CHOICE]) for p in pairs.values()
                if SINGLE_BEST_CHOICE in p and RESCORED_CHOICE in p]
    if not complete:
        return None
    out: dict[str, Any] = {}
    groups = [(s, [(a, b) for a, b in complete if a["strategy"] == s]) for s in config.strategies]
    for name, group in [*groups, ("all", complete)]:
        if not group:
            continue
        diffs = [float(b["score"]) - float(a["score"]) for a, b in group]
        seed = _stable_seed(f"choice-{name}")
        greater = stats.paired_permutation_test(diffs, alternative="greater", seed=seed)
        less = stats.paired_permutation_test(diffs, alternative="less", seed=seed)
        boot = stats.bootstrap_mean_ci(diffs, samples=config.bootstrap_samples, confidence=CONFIDENCE, seed=seed)
        out[name] = {
            "runs": len(diffs), "same_graph": sum(a["graph_hash"] == b["graph_hash"] for a, b in group),
            "single_best_mean": statistics.fmean(float(a["score"]) for a, _ in group),
            "rescored_mean": statistics.fmean(float(b["score"]) for _, b in group),
            "mean_difference": boot.estimate, "difference_ci95_bootstrap": boot.to_list(), "differences": diffs,
            "p_rescored_better": greater.p_value, "p_rescored_worse": less.p_value,
            "p_two_sided": min(1.0, 2 * min(greater.p_value, less.p_value)), "exact": greater.exact,
        }
    return out


def _training_noise(entries: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """Each distinct graph's spread over its training seeds, and the variance split over graphs."""
    graphs: dict[str, list[float]] = {}
    for e in entries:
        graphs.setdefault(str(e["graph_hash"]), [float(v) for v in e.get("scores", [e["score"]])])
    spread = {h: {"scores": v, "mean": statistics.fmean(v), "std": statistics.stdev(v), "range": max(v) - min(v)}
              for h, v in graphs.items() if len(v) > 1}
    if not spread:
        return None
    out: dict[str, Any] = {"graphs": len(spread), "per_graph": spread,
                           "mean_std": statistics.fmean(g["std"] for g in spread.values()),
                           "max_range": max(g["range"] for g in spread.values())}
    if len(spread) > 1:
        split = stats.variance_split(list(graphs[h] for h in spread))
        out.update({"within_variance": split.within, "between_variance": split.between,
                    "within_std": math.sqrt(split.within), "between_std": math.sqrt(split.between),
                    "within_share": split.within_share,
                    "training_noise_dominates": split.training_noise_dominates})
    return out


def _correlations(entries: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Proxy fitness against test score over the distinct graphs (entries sharing a graph are one point: mean
    proxy fitness, their shared score), and the re-scored mean fitness against test score over the re-scored
    choices."""
    graphs: dict[str, dict[str, Any]] = {}
    for entry in entries:
        graph = graphs.setdefault(str(entry["graph_hash"]), {"graph_hash": entry["graph_hash"], "runs": [],
                                                             "strategies": [], "proxy": [], "score": entry["score"],
                                                             "rescored": []})
        graph["runs"].append(entry["run"])
        graph["strategies"].append(entry["strategy"])
        graph["proxy"].append(float(entry["proxy_fitness"]))
        if entry.get("rescored_mean") is not None and entry["choice"] == RESCORED_CHOICE:
            graph["rescored"].append(float(entry["rescored_mean"]))
    points = [{"graph_hash": g["graph_hash"], "runs": sorted(set(g["runs"])), "strategies": sorted(set(g["strategies"])),
               "proxy_fitness": statistics.fmean(g["proxy"]), "test_score": float(g["score"]),
               "rescored_fitness": statistics.fmean(g["rescored"]) if g["rescored"] else None}
              for g in graphs.values()]

    def correlation(xs: list[float], ys: list[float]) -> dict[str, Any]:
        r, rho = stats.pearson(xs, ys), stats.spearman(xs, ys)
        return {"n": r.n, "pearson_r": r.r, "pearson_p": r.p_value, "spearman_rho": rho.r, "spearman_p": rho.p_value}

    rescored = [p for p in points if p["rescored_fitness"] is not None]
    return {"graphs": points,
            "correlation": correlation([p["proxy_fitness"] for p in points], [p["test_score"] for p in points]),
            "correlation_rescored": (correlation([p["rescored_fitness"] for p in rescored],
                                                 [p["test_score"] for p in rescored]) if len(rescored) > 2 else None)}


def recipe_statistics(measured: Mapping[str, Mapping[str, Sequence[float]]], config: StudyConfig) -> dict[str, Any]:
    """Per recipe candidate: each fixed graph's scores over the training seeds, their pooled standard deviation
    (the spread one training has around its graph's mean), and the mean score with a 95% bootstrap interval
    (training seeds resampled within each graph). ``chosen`` applies :func:`choose_recipe` once every candidate
    has every seed."""
    cfg = config.recipes
    candidates = {c.name: c for c in cfg.candidates}
    rows: dict[str, Any] = {}
    for name, per_graph in measured.items():
        graphs = {g: {"scores": list(v), "mean": statistics.fmean(v),
                      "std": statistics.stdev(v) if len(v) > 1 else None} for g, v in per_graph.items() if v}
        complete = all(len(per_graph.get(g, ())) >= cfg.seeds for g in cfg.graphs)
        variances = [statistics.variance(v) for v in per_graph.values() if len(v) > 1]
        row: dict[str, Any] = {"steps": candidates[name].steps or config.retrain.steps, "lr": candidates[name].lr,
                               "complete": complete, "graphs": graphs,
                               "pooled_std": math.sqrt(statistics.fmean(variances)) if variances else None}
        if graphs:
            interval = stats.bootstrap_stratified_ci([per_graph[g] for g in graphs], samples=config.bootstrap_samples,
                                                     confidence=CONFIDENCE, seed=_stable_seed(f"recipe-{name}"))
            row.update({"mean": interval.estimate, "ci95_bootstrap": interval.to_list()})
        rows[name] = row
    return {"graphs": list(cfg.graphs), "seeds": cfg.seeds, "candidates": rows, "chosen": choose_recipe(rows),
            "rule": RECIPE_RULE}


RECIPE_RULE = ("the smallest pooled standard deviation over training seeds among the recipes whose mean score's 95% "
               "interval overlaps the highest mean's interval (no measurably lower score); ties: fewer steps")


def choose_recipe(rows: Mapping[str, Mapping[str, Any]]) -> str | None:
    """The recipe that makes a fixed graph's training seeds agree best without a measurably lower score
    (:data:`RECIPE_RULE`); None until every candidate is complete."""
    if not rows or not all(r["complete"] and r.get("pooled_std") is not None for r in rows.values()):
        return None
    top = max(rows.values(), key=lambda r: r["mean"])
    eligible = [name for name, r in rows.items() if r["ci95_bootstrap"][1] >= top["ci95_bootstrap"][0]]
    return min(eligible, key=lambda name: (rows[name]["pooled_std"], rows[name]["steps"] or 0))


def _stable_seed(text: str) -> int:
    return zlib.crc32(text.encode())


def _json_plain(value: Any) -> Any:
    return json.loads(json.dumps(fileio.json_safe(value), sort_keys=True))


def _count_records(run_dir: Path, budget: int, finalists: int = 0) -> int:
    """Evaluation records of a run within the budget, plus up to ``finalists`` re-scoring records."""
    count = 0
    for folder, limit in ((run_dir / "evaluations", budget), (run_dir / FINALISTS_DIR / "evaluations", finalists)):
        found = 0
        for path in folder.glob("*.json") if folder.is_dir() else ():
            try:
                found += int(path.stem) < limit
            except ValueError:
                continue
        count += found
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
        self.watched: tuple[Path, int, int, int] | None = None  # folder, budget, finalists, records at the start
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

    def watch(self, run_dir: Path, budget: int, finalists: int = 0) -> None:
        with self.lock:
            self.watched = (run_dir, budget, finalists, _count_records(run_dir, budget, finalists))

    def finish_run(self) -> None:
        with self.lock:
            if self.watched is not None:
                _, budget, finalists, before = self.watched
                self.credit += budget + finalists - before  # an exhausted run counts as done
            self.watched = None
            self._refresh()

    def _poll(self) -> None:
        while not self.stop.wait(self.interval):
            with self.lock:
                self._refresh()

    def _refresh(self) -> None:
        current = self.credit
        if self.watched is not None:
            run_dir, budget, finalists, before = self.watched
            current += _count_records(run_dir, budget, finalists) - before
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


def plot_choices(retrain: Mapping[str, Any], path: Path) -> None:
    """Per run: the single best graph's test score against the re-scored choice's (one point per run)."""
    figure = _figure(4.8, 4.6)
    axes = figure.add_subplot()
    pairs: dict[str, dict[str, Mapping[str, Any]]] = {}
    for e in retrain["entries"]:
        pairs.setdefault(e["run"], {})[e["choice"]] = e
    order = list(COLOURS)
    labelled: set[str] = set()
    values = []
    for p in pairs.values():
        if SINGLE_BEST_CHOICE not in p or RESCORED_CHOICE not in p:
            continue
        a, b = p[SINGLE_BEST_CHOICE], p[RESCORED_CHOICE]
        strategy = a["strategy"]
        same = a["graph_hash"] == b["graph_hash"]
        axes.scatter(a["score"], b["score"], color=_colour(strategy, order.index(strategy) if strategy in order else 0),
                     marker="o" if not same else "x", s=30, alpha=0.8, label=None if strategy in labelled else strategy)
        labelled.add(strategy)
        values += [a["score"], b["score"]]
    if values:
        low, high = min(values), max(values)
        pad = 0.05 * (high - low or 1.0)
        axes.plot([low - pad, high + pad], [low - pad, high + pad], color="0.5", lw=0.8, ls="--")
    axes.set_xlabel(f"single best graph: test {retrain['metric']}")
    axes.set_ylabel(f"re-scored choice: test {retrain['metric']}")
    axes.set_title("per run (x: both choices are one graph); above the line: re-scoring chose better",
                   fontsize="x-small")
    axes.grid(True, alpha=0.3)
    if labelled:
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
              "Finalist re-scoring: its evaluations (run / copied), their fitness time, and the runs whose "
              "re-scored choice differs from their single best graph.", "",
              "| strategy | evaluations | run | reused | fitness time (s) | s / evaluation run "
              "| finalist evaluations (run) | finalist time (s) | choice changed |", "|---|---|---|---|---|---|---|---|---|"]
    for strategy, entry in analysis["strategies"].items():
        cost = entry["cost"]
        rescoring = entry.get("rescoring") or {}
        changed = f"{rescoring.get('changed_choice', 0)}/{rescoring.get('runs', 0)}" if rescoring.get("runs") else "-"
        lines.append(f"| {strategy} | {cost['evaluations']} | {cost['run']} | {cost['reused']} "
                     f"| {_f(cost['wall_time_s'], 0)} | {_f(cost['mean_wall_time_s'], 1)} "
                     f"| {cost.get('finalist_evaluations', 0)} ({cost.get('finalist_run', 0)}) "
                     f"| {_f(cost.get('finalist_wall_time_s'), 0)} | {changed} |")
    lines += [""]
    stages = analysis.get("stage_wall_time_s") or {}
    if stages:
        lines += ["Wall time per stage, summed over the invocations that finished it: " + ", ".join(
            f"{name} {seconds / 60:.1f} min" for name, seconds in stages.items())
            + f"; {sum(stages.values()) / 60:.1f} min in all.", ""]

    recipes = analysis.get("recipes")
    if recipes is not None:
        lines += _recipes_markdown(recipes)
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
    recipe = f" (recipe `{retrain['recipe']}`, lr {_f(retrain.get('lr'), 3)})" if retrain.get("recipe") else ""
    lines = ["## Retrained graphs", "",
             f"Each run's single best graph and, where the search re-scored its finalists, its re-scored choice, "
             f"trained from scratch for {steps}{recipe}, {retrain['training_seeds']} training seed(s) each, with "
             f"the study's overrides; score: `{retrain['metric']}` on the evaluation split of the overrides (a run's "
             "score is the mean over its graph's training seeds). Identical graphs were trained once.", ""]
    if retrain["stale"]:
        lines += [f"Left out (their graph or the recipe changed since they were retrained): "
                  f"{', '.join(retrain['stale'])}.", ""]
    lines += ["| strategy | graph | runs | test score (mean ± std) | 95% CI (bootstrap) | 95% CI (t) |",
              "|---|---|---|---|---|---|"]
    for choice, per_strategy in retrain.get("by_choice", {}).items():
        for strategy, entry in per_strategy.items():
            lines.append(f"| {strategy} | {choice} | {entry['n']} | {_f(entry['mean'])} ± {_f(entry['std'])} "
                         f"| {_ci(entry['ci95_bootstrap'])} | {_ci(entry['ci95_t'])} |")
    verdict = _verdict({s: (e["mean"], e["ci95_bootstrap"]) for s, e in retrain["strategies"].items()
                        if e["n"] > 1}, "test score")
    if verdict:
        lines += ["", f"The search results ({retrain['result_choice']} graphs), 95% bootstrap intervals over runs: "
                  f"{verdict}."]
    if retrain.get("comparisons"):
        lines += ["", "Guided evolution against each strategy on the test score of the search results (one-sided "
                  "permutation test of H1: guided is higher; bootstrap interval of the difference):", "",
                  "| comparison | mean difference | 95% CI (bootstrap) | permutation p |", "|---|---|---|---|"]
        for c in retrain["comparisons"]:
            lines.append(f"| {c['a']} vs {c['b']} ({c['n_a']} vs {c['n_b']} runs) | {_f(c['mean_difference'])} "
                         f"| {_ci(c['difference_ci95_bootstrap'])} | {_p(c['permutation_p'])} |")
    choice = retrain.get("choice_comparison")
    if choice:
        lines += ["", "### Single best against finalist re-scoring", "",
                  "Test score of the re-scored choice minus that of the single best proxy evaluation, paired by run "
                  "(a run whose two choices are the same graph counts as 0). p: sign-flip permutation tests over the "
                  "runs (exact up to 16 runs).", "",
                  "| runs of | runs | same graph | single best | re-scored | difference | 95% CI (bootstrap) "
                  "| p (re-scored better) | p (two-sided) |", "|---|---|---|---|---|---|---|---|---|"]
        for name, c in choice.items():
            lines.append(f"| {name} | {c['runs']} | {c['same_graph']} | {_f(c['single_best_mean'])} "
                         f"| {_f(c['rescored_mean'])} | {_f(c['mean_difference'])} "
                         f"| {_ci(c['difference_ci95_bootstrap'])} | {_p(c['p_rescored_better'])} "
                         f"| {_p(c['p_two_sided'])} |")
        lines += ["", "![single best against re-scored choice, per run](choices.png)"]
    noise = retrain.get("training_noise")
    if noise:
        lines += ["", "### Training-seed spread", "",
                  f"Over {noise['graphs']} distinct retrained graphs: the standard deviation of one graph's test score "
                  f"across its training seeds is {_f(noise['mean_std'])} on average (largest range "
                  f"{_f(noise['max_range'])})."]
        if noise.get("within_variance") is not None:
            lines[-1] += (f" Split of one training's score variance: training seeds {_f(noise['within_std'])} "
                          f"(std), differences between graphs {_f(noise['between_std'])} (std); training-seed noise "
                          f"is {100 * noise['within_share']:.0f}% of it, so "
                          + ("**training-seed noise, not the choice of graph, dominates**."
                             if noise["training_noise_dominates"] else
                             "the choice of graph matters more than the training seed."))
    corr = retrain["correlation"]
    lines += ["", f"Proxy fitness against test score over {corr['n']} distinct graphs: Pearson r = "
              f"{_f(corr['pearson_r'], 3)} (p = {_p(corr['pearson_p'])}), Spearman ρ = {_f(corr['spearman_rho'], 3)} "
              f"(p = {_p(corr['spearman_p'])})."]
    rescored = retrain.get("correlation_rescored")
    if rescored:
        lines[-1] += (f" Re-scored mean fitness against test score over the {rescored['n']} re-scored choices: "
                      f"Pearson r = {_f(rescored['pearson_r'], 3)} (p = {_p(rescored['pearson_p'])}), Spearman ρ = "
                      f"{_f(rescored['spearman_rho'], 3)} (p = {_p(rescored['spearman_p'])}).")
    lines += [""]
    if retrain["graphs"]:
        lines += ["![proxy fitness against test score](proxy_vs_test.png)", ""]
    return lines


def _recipes_markdown(recipes: Mapping[str, Any]) -> list[str]:
    lines = ["## Final-training recipe", "",
             f"Fixed wirings {', '.join(recipes['graphs'])}, {recipes['seeds']} training seeds each (the same seeds "
             "for every recipe). Pooled std: the spread of one training's score around its graph's mean; the mean's "
             "interval resamples training seeds within each graph.", "",
             "| recipe | steps | lr | pooled std | mean | 95% CI (bootstrap) | per graph: mean ± std |",
             "|---|---|---|---|---|---|---|"]
    for name, row in recipes["candidates"].items():
        per_graph = "; ".join(f"{g} {_f(v['mean'], 3)} ± {_f(v['std'], 3)}" for g, v in row["graphs"].items())
        lines.append(f"| {name}{'' if row['complete'] else ' (incomplete)'} | {_f(row['steps'])} "
                     f"| {_f(row['lr'], 3) if row['lr'] is not None else 'config'} | {_f(row['pooled_std'])} "
                     f"| {_f(row.get('mean'))} | {_ci(row.get('ci95_bootstrap'))} | {per_graph} |")
    chosen = recipes["chosen"]
    lines += ["", (f"Chosen for retraining (`retrain.recipe: auto`): **{chosen}**, by {recipes['rule']}."
                   if chosen else "No recipe chosen yet: some candidates are incomplete."), ""]
    return lines
