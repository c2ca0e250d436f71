"""Running a study: :class:`Study` runs its stages in one output folder (resumable), :func:`run_study` loads a
config and runs a stage."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import statistics
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from assemblenet import fileio, provenance
from assemblenet.config_schema import key_error, to_plain
from assemblenet.errors import ConfigError
from assemblenet.search import stats
from assemblenet.search.config import SearchConfig, load_search_config
from assemblenet.search.finalists import FINALISTS_DIR, read_finalists
from assemblenet.search.history import SearchRun
from assemblenet.search.store import EvaluationMemo, EvaluationRecord, RunStore
from assemblenet.search.study.analysis import analyse_runs, recipe_statistics, retrain_statistics
from assemblenet.search.study.config import (
    AUTO_RECIPE,
    BASELINES_DIR,
    CONFIDENCE,
    ENGINE_FINAL_METRICS,
    HASH_CHARS,
    LOG_FILE,
    RECIPES_DIR,
    REGISTRATION_FILE,
    RESCORED_CHOICE,
    RESCORED_RECORD,
    RESULT_FILE,
    RETRAIN_DIR,
    RETRAIN_RECORD,
    SINGLE_BEST_CHOICE,
    STAGES,
    STUDY_REGISTRATION_FORMAT,
    TRAIN_TIME_FILE,
    RecipeCandidate,
    StudyConfig,
    TrainingSettings,
    config_hash,
    load_study_config,
)
from assemblenet.search.study.confirmatory import confirmatory_analysis
from assemblenet.search.study.proxy_validity import proxy_validity_analysis, run_proxy_validity
from assemblenet.search.study.render import plot_choices, plot_proxy_vs_test, plot_study, study_markdown

logger = logging.getLogger(__name__)


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
    (same signature as :func:`assemblenet.engine.run_training`). ``allow_dirty``: run even when the code's git tree
    has uncommitted changes to tracked files (recorded, and stated in study.md); without it such a study refuses
    to start."""

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
        base: SearchConfig | None = None,
        allow_dirty: bool = False,
    ) -> None:
        self.config = config
        self.allow_dirty = allow_dirty
        self.output = Path(output or config.output_dir or Path("runs") / "study" / config.name)
        # ``base``: the search config to use instead of the file's (a task of a multi-task study: search/study/tasks.py)
        base = base if base is not None else load_search_config(config.search_path)
        changes: dict[str, Any] = {"search.max_evaluations": config.max_evaluations}
        if executor is not None:
            changes["executor.kind"] = executor
        if ray_address is not None:
            if executor == "local":
                raise ConfigError("--ray-address needs --executor ray")
            changes["executor.kind"] = "ray"
            changes["executor.ray_address"] = ray_address
        self.base = base.replace(**changes)
        for i, h in enumerate(config.hypotheses.confirmatory):
            if h.endpoint == "rescored_mean" and self.base.search.finalists.top_k < 1:
                raise key_error(config.source, f"hypotheses.confirmatory[{i}].endpoint",
                                f"rescored_mean needs finalist re-scoring, but {config.search} has "
                                "search.finalists.top_k 0; use final_best or enable re-scoring")
        self.progress = progress
        self.fitness = fitness
        self._run_training = run_training
        self._invocation = f"{os.getpid()}-{time.time_ns()}"  # tags this process's log rows

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
        code = provenance.code_provenance()
        if provenance.is_dirty(code) and not self.allow_dirty:
            raise ConfigError(
                f"the code's git tree ({code['root']}) has uncommitted changes to tracked files (diff sha256 "
                f"{str(code['diff_sha256'])[:12]}): a study records the commit it ran from; commit the changes, or "
                "pass --allow-dirty (recorded, and stated in study.md)")
        with fileio.hold_folder(self.output):  # one study per folder
            self._register(code)
            self._log({"event": "invocation-started", "time": time.time(), "stage": stage,
                       "config_hash": config_hash(self.config), "provenance": code, "allow_dirty": self.allow_dirty})
            return self._run(stage)

    # ------------------------------------------------------------------ pre-registration and provenance
    def _register(self, code: Mapping[str, Any]) -> None:
        """Record the hypotheses (and the config and code they were declared with) at the study's first
        invocation, in ``registration.json``; refuse a later invocation whose hypotheses differ once any run has
        data (changed hypotheses are not pre-registered). A folder whose runs had data before the first
        registration says so (its hypotheses were declared after data existed: study.md marks them)."""
        path = self.output / REGISTRATION_FILE
        hypotheses = to_plain(self.config.hypotheses)
        digest = config_hash(hypotheses)
        started = [spec.label for spec in self.specs() if self._recorded(spec) > 0]
        existing = json.loads(path.read_text()) if path.is_file() else None
        if existing is not None:
            if existing.get("hypotheses_hash") == digest:
                return
            if not started and not (self.output / RETRAIN_DIR).is_dir() and not (self.output / BASELINES_DIR).is_dir():
                logger.info("study %s: no run has data yet; registering the changed hypotheses", self.config.name)
            else:
                registered = str(existing.get("hypotheses_hash", "?"))[:12]
                raise key_error(self.config.source, "hypotheses",
                                f"differ from those registered in {path} (hash {registered}, now {digest[:12]}) after "
                                "runs have data; pre-registered hypotheses cannot change: restore them, or start a "
                                "new study (--output)")
        self.output.mkdir(parents=True, exist_ok=True)
        fileio.atomic_write_json(path, {
            "format": STUDY_REGISTRATION_FORMAT, "created": time.time(), "config_hash": config_hash(self.config),
            "hypotheses_hash": digest, "hypotheses": hypotheses, "config": self.config.to_dict(),
            "provenance": dict(code), "allow_dirty": self.allow_dirty,
            "runs_with_data_before_registration": started,
        }, fsync=True)

    def registration(self) -> dict[str, Any] | None:
        path = self.output / REGISTRATION_FILE
        return json.loads(path.read_text()) if path.is_file() else None

    def invocations(self) -> list[dict[str, Any]]:
        """The distinct (config hash, code, --allow-dirty) states the study's invocations ran with, oldest first,
        each with the stages run and how many invocations had it (from ``study_log.jsonl``)."""
        states: dict[tuple[Any, ...], dict[str, Any]] = {}
        for row in self._log_rows():
            if row.get("event") != "invocation-started":
                continue
            code = row.get("provenance") or {}
            key = (row.get("config_hash"), code.get("commit"), code.get("dirty"), code.get("diff_sha256"),
                   bool(row.get("allow_dirty")))
            state = states.setdefault(key, {"config_hash": key[0], "commit": key[1], "dirty": key[2],
                                            "diff_sha256": key[3], "allow_dirty": key[4], "invocations": 0,
                                            "stages": [], "first": row.get("time")})
            state["invocations"] += 1
            if row.get("stage") not in state["stages"]:
                state["stages"].append(row.get("stage"))
        return list(states.values())

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
        if stage == "proxy-validity" or (stage == "all" and self.config.proxy_validity.enabled):
            self._timed("proxy-validity", lambda: run_proxy_validity(self))
            analysis = self.analyse()
        if stage == "recipes":
            analysis = self.analyse()
        return StudyOutcome(self.output, searched, retrained, analysis)

    def _timed(self, stage: str, work: Callable[[], Any]) -> Any:
        """Run one stage and log its start and wall time (``stage-started``, ``stage-finished``)."""
        start = time.time()
        self._log({"event": "stage-started", "time": start, "stage": stage})
        out = work()
        self._log({"event": "stage-finished", "time": time.time(), "stage": stage,
                   "wall_time_s": round(time.time() - start, 3)})
        return out

    def stage_times(self) -> dict[str, float]:
        """Wall seconds per stage over every invocation (``study_log.jsonl``): a finished stage counts its
        logged wall time; one whose invocation was killed counts up to that invocation's last logged row, so
        a study resumed many times still adds up (the work in flight at the kill is not counted)."""
        rows = self._log_rows()
        times: dict[str, float] = {}
        open_stages: dict[str, dict[str, Any]] = {}  # invocation -> its started, unfinished stage row
        last_time: dict[str, float] = {}
        for row in rows:
            invocation, stage = row.get("invocation"), row.get("stage")
            if invocation is not None:
                last_time[invocation] = float(row["time"])
            if row.get("event") == "stage-started" and invocation is not None:
                open_stages[invocation] = row
            elif row.get("event") == "stage-finished":
                times[stage] = times.get(stage, 0.0) + float(row["wall_time_s"])
                open_stages.pop(invocation, None)
        for invocation, row in open_stages.items():
            times[row["stage"]] = times.get(row["stage"], 0.0) + last_time[invocation] - float(row["time"])
        return times

    def untagged_log_rows(self) -> int:
        """How many log rows carry no invocation tag (written before the tags existed): an untagged
        invocation killed mid-stage is invisible to :meth:`stage_times`, which then undercounts."""
        return sum(1 for row in self._log_rows() if row.get("invocation") is None)

    def _log_rows(self) -> list[dict[str, Any]]:
        path = self.output / LOG_FILE
        return [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []

    # ------------------------------------------------------------------ stage: search
    def search(self) -> list[dict[str, Any]]:
        """Run (or resume) every search, one after another; return one summary per run."""
        from assemblenet.search.evolution import FRAME_STORE_DIR, SearchRunner, executor_for
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
                    logger.info("study %s: search %s -> %s", self.config.name, spec.label, self.run_dir(spec))
                    progress.watch(self.run_dir(spec), self.budget, self.finalist_evaluations)
                    start = time.time()
                    if executor is None:
                        # The proxy videos decoded once for the whole study, into a store every worker maps.
                        with_frame_store = getattr(fitness, "with_frame_store", None)
                        if callable(with_frame_store):
                            fitness = with_frame_store(self.output / FRAME_STORE_DIR)
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
        line = json.dumps(fileio.json_safe({**row, "invocation": self._invocation}), allow_nan=False)
        fileio.atomic_write_text(path, previous + line + "\n", fsync=True)

    # ------------------------------------------------------------------ stage: analyse
    def collect(self) -> list[SearchRun]:
        return [SearchRun.load(self.run_dir(spec), label=spec.label, strategy=spec.strategy, seed=spec.seed,
                               budget=self.budget, finalists_expected=self.rescoring) for spec in self.specs()]

    def analyse(self) -> dict[str, Any]:
        """Write ``study.json``, ``study.png`` and ``study.md`` from the run folders (and the retrain folder);
        return the ``study.json`` content."""
        runs = self.collect()
        for run in runs:
            if not run.complete:
                logger.warning("study %s: %s is %s; the analysis covers what is there", self.config.name, run.label,
                            "missing" if not run.exists else f"incomplete ({run.evaluations}/{self.budget}"
                            f"{', finalists pending' if run.evaluations >= self.budget else ''})")
        analysis = analyse_runs(runs, self.config, self.base)
        analysis["recipes"] = self._recipes_analysis()
        retrain = self._retrain_analysis(runs)
        analysis["retrain"] = retrain
        analysis["baselines"] = self._baselines_analysis()
        analysis["proxy_validity"] = proxy_validity_analysis(self)
        analysis["confirmatory"] = confirmatory_analysis(
            self.config, runs, retrain["entries"] if retrain is not None else (), self._wiring_scores())
        analysis["config_hash"] = config_hash(self.config)
        analysis["registration"] = self.registration()
        analysis["provenance"] = {"analysed_with": provenance.code_provenance(), "invocations": self.invocations()}
        analysis["stage_wall_time_s"] = self.stage_times()
        analysis["stage_wall_time_untagged_rows"] = self.untagged_log_rows()
        analysis = fileio.json_safe(analysis)  # NaN (no value yet) as None, as written
        self.output.mkdir(parents=True, exist_ok=True)
        plot_study(runs, analysis, self.output / "study.png")
        if retrain is not None and retrain["graphs"]:
            plot_proxy_vs_test(retrain, self.output / "proxy_vs_test.png")
        if retrain is not None and retrain.get("choice_comparison"):
            plot_choices(retrain, self.output / "choices.png")
        fileio.atomic_write_text(self.output / "study.json", json.dumps(analysis, indent=1, allow_nan=False) + "\n")
        fileio.atomic_write_text(self.output / "study.md", study_markdown(analysis))
        logger.info("study %s: %s", self.config.name, self.output / "study.md")
        return analysis

    def _retrain_analysis(self, runs: list[SearchRun]) -> dict[str, Any] | None:
        folder = self.output / RETRAIN_DIR
        if not folder.is_dir():
            return None
        settings = self._settings_if_known()
        entries, stale, expected = [], [], 0
        for run in runs:
            for choice, record_name, current in ((SINGLE_BEST_CHOICE, RETRAIN_RECORD, run.best),
                                                 (RESCORED_CHOICE, RESCORED_RECORD, run.rescored)):
                if not self._retrains(run, choice):
                    continue
                expected += current is not None and run.complete
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
        return retrain_statistics(entries, self.config, stale=stale, settings=settings, expected=expected)

    # ------------------------------------------------------------------ training settings
    def _settings(self, candidate: RecipeCandidate | None) -> TrainingSettings:
        cfg = self.config.retrain
        if candidate is None:
            return TrainingSettings(cfg.steps, dict(cfg.overrides))
        overrides = dict(cfg.overrides)
        if candidate.lr is not None:
            overrides["optim.lr"] = candidate.lr
        return TrainingSettings(candidate.steps if candidate.steps is not None else cfg.steps, overrides,
                                candidate.name, candidate.lr)

    def retrain_settings(self) -> TrainingSettings:
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

    def _settings_if_known(self) -> TrainingSettings | None:
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
                   if record is not None and self._retrains(run, choice)]
        owners: dict[str, tuple[SearchRun, EvaluationRecord]] = {}
        for run, _, record in choices:
            owners.setdefault(record.graph_hash, (run, record))
        folders = {digest: [self._training_folder(owner, digest, k, settings) for k in range(cfg.seeds)]
                   for digest, (owner, _) in owners.items()}
        written: dict[int, dict[str, Any]] = {}

        def record_choice(i: int) -> None:
            run, choice, record = choices[i]
            owner, _ = owners[record.graph_hash]
            results = [self._train_graph(record.graph, folder, k, train, train_config, width, what=owner.label,
                                         settings=settings)
                       for k, folder in enumerate(folders[record.graph_hash])]
            written[i] = self._write_entry(run, owner, choice, record, results, settings)

        finished = {folder for group in folders.values() for folder in group if _trained(folder)}

        def record_finished(folder: Path) -> None:
            # a run's entries as soon as its graphs are trained: a study stopped mid-stage can be analysed
            finished.add(folder)  # (not _trained(): a worker still running may have left its metrics already)
            for i, (_, _, record) in enumerate(choices):
                if i not in written and finished.issuperset(folders[record.graph_hash]):
                    record_choice(i)

        jobs = [(record.graph, folder, k, settings) for digest, (_, record) in owners.items()
                for k, folder in enumerate(folders[digest])]  # _train_in_parallel skips the trained ones
        self._train_in_parallel(jobs, train_config, width, on_finished=record_finished)
        for i in range(len(choices)):  # in this process: what is left (all of it without workers), in run order
            if i not in written:
                record_choice(i)
        entries = [written[i] for i in range(len(choices))]
        for run in runs:
            if run.best is None:
                logger.warning("study %s: %s has no successful evaluation; nothing to retrain", self.config.name,
                            run.label)
        return entries

    def _retrains(self, run: SearchRun, choice: str) -> bool:
        """Whether the retrain stage trains this run's ``choice`` (``retrain.strategies`` and ``retrain.choices``)."""
        cfg = self.config.retrain
        return choice in cfg.choices and (cfg.strategies is None or run.strategy in cfg.strategies)

    def _train_config(self) -> str | None:
        cfg = self.config.retrain
        return None if cfg.config is None else str(self.config.resolve(cfg.config).resolve())

    def _width(self) -> float:
        cfg = self.config.retrain
        return cfg.width_multiplier if cfg.width_multiplier is not None else self.base.space.width_multiplier

    def _training_folder(self, owner: SearchRun, digest: str, k: int, settings: TrainingSettings) -> Path:
        """Where graph ``digest`` trains (or trained) with seed ``k``: under its owner run, unless a finished
        training of it lies under another run (its owner when that run's best was this graph)."""
        name = settings.folder_name(digest[:HASH_CHARS], k)
        own = self.output / RETRAIN_DIR / owner.label / name
        if _trained(own):
            return own
        for other in sorted((self.output / RETRAIN_DIR).glob(f"*/{name}/{RESULT_FILE}")):
            if json.loads(other.read_text()).get("graph_hash") == digest:
                return other.parent
        return own

    def _train_graph(self, graph: Any, folder: Path, k: int, train: Callable[..., Any], train_config: str | None,
                     width: float, *, what: str, settings: TrainingSettings) -> dict[str, Any]:
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
            logger.info("study %s: training %s (graph %s, training seed %d%s) -> %s", self.config.name, what,
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

    def _train_in_parallel(self, jobs: Sequence[tuple[Any, Path, int, TrainingSettings]], train_config: str | None,
                           width: float, on_finished: Callable[[Path], None] | None = None) -> None:
        """With ``retrain.workers`` > 1, run the engine trainings of ``jobs`` (graph, folder, seed, settings) that
        are not done in a process pool, one torch thread each; each leaves the engine's final metrics in its
        folder, which :meth:`_train_graph` then records; ``on_finished(folder)`` is called after each.
        (Injected training functions run in-process instead.)"""
        cfg = self.config.retrain
        todo = [(g, f, k, s) for g, f, k, s in jobs if not _trained(f)]
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
                logger.info("study %s: trained %s", self.config.name, futures[future])
                if on_finished is not None:
                    on_finished(futures[future])

    def _train_named(self, folder_root: Path, names: Sequence[str], seeds: Sequence[int], settings: TrainingSettings,
                     what: str) -> list[dict[str, Any]]:
        """Train fixed wirings ``names`` (``search.baselines``) with the training seeds ``seeds`` each into
        ``folder_root/NAME/``; one record per (name, seed)."""
        from assemblenet.graph.io import save_graph
        from assemblenet.search.baselines import baseline_graph

        train = self._run_training or _engine_run_training()
        train_config, width = self._train_config(), self._width()
        graphs = {name: baseline_graph(name, self.base.space) for name in names}
        self._train_in_parallel([(graphs[name], folder_root / name / settings.folder_name("", k), k, settings)
                                 for name in graphs for k in seeds], train_config, width)
        records = []
        for name, graph in graphs.items():
            folder = folder_root / name
            folder.mkdir(parents=True, exist_ok=True)
            save_graph(graph, folder / "graph.yaml")
            for k in seeds:
                record = self._train_graph(graph, folder / settings.folder_name("", k), k, train, train_config,
                                           width, what=f"{what} {name}", settings=settings)
                records.append({"baseline": name, **record})
        return records

    def _named_scores(self, folder_root: Path, names: Sequence[str], seeds: Sequence[int],
                      settings: TrainingSettings) -> dict[str, list[float]]:
        return {name: list(by_seed.values())
                for name, by_seed in self._named_scores_by_seed(folder_root, names, seeds, settings).items()}

    def _named_scores_by_seed(self, folder_root: Path, names: Sequence[str], seeds: Sequence[int],
                              settings: TrainingSettings) -> dict[str, dict[int, float]]:
        """Each fixed wiring's finished scores by training seed (a wiring with none is left out)."""
        out: dict[str, dict[int, float]] = {}
        for name in names:
            scores = {}
            for k in seeds:
                path = folder_root / name / settings.folder_name("", k) / RESULT_FILE
                if path.is_file():
                    scores[k] = float(json.loads(path.read_text())["score"])
            if scores:
                out[name] = scores
        return out

    def _wiring_scores(self) -> dict[str, dict[int, float]]:
        """The baselines' test scores by training seed (empty before the baselines stage)."""
        settings = self._settings_if_known()
        if not (self.output / BASELINES_DIR).is_dir() or settings is None:
            return {}
        return self._named_scores_by_seed(self.output / BASELINES_DIR, self.config.baselines.names,
                                          self.config.baseline_seeds, settings)

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
            for record in self._train_named(self.output / RECIPES_DIR / candidate.name, cfg.graphs,
                                            self.config.recipe_seeds, settings, f"recipe {candidate.name}"):
                records.append({"recipe": candidate.name, **record})
        return records

    def _recipes_analysis(self) -> dict[str, Any] | None:
        cfg = self.config.recipes
        if not cfg.candidates or not (self.output / RECIPES_DIR).is_dir():
            return None
        measured = {c.name: self._named_scores(self.output / RECIPES_DIR / c.name, cfg.graphs,
                                               self.config.recipe_seeds, self._settings(c)) for c in cfg.candidates}
        return recipe_statistics(measured, self.config)

    # ------------------------------------------------------------------ stage: baselines
    def train_baselines(self) -> list[dict[str, Any]]:
        """Train every fixed wiring of ``baselines.names`` with the baseline training seeds
        (:attr:`StudyConfig.baseline_seeds`: never the recipe seeds) and the retrain settings; return one record per
        (baseline, seed)."""
        return self._train_named(self.output / BASELINES_DIR, self.config.baselines.names,
                                 self.config.baseline_seeds, self.retrain_settings(), "baseline")

    def _baselines_analysis(self) -> dict[str, Any] | None:
        folder = self.output / BASELINES_DIR
        settings = self._settings_if_known()
        if not folder.is_dir() or settings is None:
            return None
        out: dict[str, Any] = {}
        measured = self._named_scores(folder, self.config.baselines.names, self.config.baseline_seeds, settings)
        for name, scores in measured.items():
            out[name] = {"n": len(scores), "scores": scores, "mean": statistics.fmean(scores),
                         "std": statistics.stdev(scores) if len(scores) > 1 else None,
                         "ci95_t": (stats.t_interval(scores, confidence=CONFIDENCE).to_list()
                                    if len(scores) > 1 else None)}
        return {"metric": self.config.retrain.metric, "steps": settings.steps, "recipe": settings.tag or None,
                "training_seeds": list(self.config.baseline_seeds), "baselines": out}

    def _write_entry(self, run: SearchRun, owner: SearchRun, choice: str, record: EvaluationRecord,
                     results: list[dict[str, Any]], settings: TrainingSettings) -> dict[str, Any]:
        from assemblenet.graph.io import save_graph

        folder = self.output / RETRAIN_DIR / run.label
        scores = [float(r["score"]) for r in results]
        rescored = run.rescored_summary if choice == RESCORED_CHOICE else None
        entry = {
            "strategy": run.strategy, "seed": run.seed, "run": run.label, "choice": choice,
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


def run_study(config: StudyConfig | str | Path, *, stage: str = "all", **options: Any) -> StudyOutcome:
    """Load the study config (a path or a :class:`StudyConfig`) and run ``stage``; ``options`` go to
    :class:`Study` (``output``, ``executor``, ``ray_address``, ``progress``, ``fitness``, ``run_training``)."""
    if not isinstance(config, StudyConfig):
        config = load_study_config(config)
    if config.tasks.items:  # several tasks: one study per task, analysed across tasks
        from assemblenet.search.study.tasks import MultiTaskStudy

        return StudyOutcome(*MultiTaskStudy(config, study_factory=Study, **options).run(stage))
    return Study(config, **options).run(stage)


def _trained(folder: Path) -> bool:
    """Whether a training in ``folder`` finished (recorded, or left by a worker process to be recorded)."""
    return (folder / RESULT_FILE).is_file() or (folder / ENGINE_FINAL_METRICS).is_file()


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
