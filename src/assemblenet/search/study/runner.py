"""Running a study: :class:`Study` runs its stages in one output folder (resumable), :func:`run_study` loads a
config and runs a stage."""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from assemblenet import fileio, provenance, runtime
from assemblenet.config_schema import key_error, to_plain
from assemblenet.errors import ConfigError
from assemblenet.search.config import SearchConfig, load_search_config
from assemblenet.search.history import SearchRun
from assemblenet.search.study.analysis import analyse_runs
from assemblenet.search.study.baselines_stage import baselines_analysis, train_baselines, wiring_scores
from assemblenet.search.study.config import (
    BASELINES_DIR,
    LOG_FILE,
    REGISTRATION_FILE,
    RETRAIN_DIR,
    STAGES,
    STUDY_REGISTRATION_FORMAT,
    StudyConfig,
    TrainingSettings,
    config_hash,
    load_study_config,
)
from assemblenet.search.study.confirmatory import confirmatory_analysis
from assemblenet.search.study.proxy_validity import proxy_validity_analysis, run_proxy_validity
from assemblenet.search.study.recipes_stage import recipes_analysis, retrain_settings, train_recipes
from assemblenet.search.study.render import plot_choices, plot_proxy_vs_test, plot_study, study_markdown
from assemblenet.search.study.results import MACHINE_NOT_RECORDED, StudyAnalysis
from assemblenet.search.study.retrain_stage import retrain, retrain_analysis
from assemblenet.search.study.search_stage import count_records, run_searches

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
        self.run_training = run_training  # None: the engine's (search/study/training.py)
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
            # The machine too: a study resumed on another CPU computes in other kernels, whose float32 sums differ
            # in the last bits (docs/search.md), so which machine ran which invocation is part of the provenance.
            self.log({"event": "invocation-started", "time": time.time(), "stage": stage,
                      "config_hash": config_hash(self.config), "provenance": code, "allow_dirty": self.allow_dirty,
                      "machine": runtime.machine_info()["signature"]})
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
        started = [spec.label for spec in self.specs() if self.recorded(spec) > 0]
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
        each with the stages run, how many invocations had it and the machines they ran on (``machine_info()``
        signatures; invocations logged before machines were recorded count as not recorded), from
        ``study_log.jsonl``."""
        states: dict[tuple[Any, ...], dict[str, Any]] = {}
        for row in self._log_rows():
            if row.get("event") != "invocation-started":
                continue
            code = row.get("provenance") or {}
            key = (row.get("config_hash"), code.get("commit"), code.get("dirty"), code.get("diff_sha256"),
                   bool(row.get("allow_dirty")))
            state = states.setdefault(key, {"config_hash": key[0], "commit": key[1], "dirty": key[2],
                                            "diff_sha256": key[3], "allow_dirty": key[4], "invocations": 0,
                                            "stages": [], "first": row.get("time"), "machines": []})
            state["invocations"] += 1
            machine = row.get("machine") or MACHINE_NOT_RECORDED
            if machine not in state["machines"]:
                state["machines"].append(machine)
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
        self.log({"event": "stage-started", "time": start, "stage": stage})
        out = work()
        self.log({"event": "stage-finished", "time": time.time(), "stage": stage,
                   "wall_time_s": round(time.time() - start, 3)})
        return out

    def stage_times(self) -> dict[str, float]:
        """Wall seconds per stage over every invocation (``study_log.jsonl``): a finished stage counts its
        logged wall time; one whose invocation was killed counts up to that invocation's last logged row, so
        a study resumed many times still adds up (the work in flight at the kill is not counted)."""
        rows = self._log_rows()
        times: dict[str, float] = {}
        open_stages: dict[Any, dict[str, Any]] = {}  # invocation -> its started, unfinished stage row
        last_time: dict[str, float] = {}
        for row in rows:
            invocation, stage = row.get("invocation"), str(row.get("stage"))
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

    # ------------------------------------------------------------------ the stages (each in its own module)
    def search(self) -> list[dict[str, Any]]:
        """Run (or resume) every search, one after another; return one summary per run (:mod:`.search_stage`)."""
        return run_searches(self)

    def train_recipes(self) -> list[dict[str, Any]]:
        """Train every recipe candidate on the fixed wirings of ``recipes.graphs`` (:mod:`.recipes_stage`)."""
        return train_recipes(self)

    def retrain_settings(self) -> TrainingSettings:
        """How the retrained graphs and the baselines train: ``retrain.recipe`` resolved (``auto``: the recipe
        the recipes stage measured best; it must have run)."""
        return retrain_settings(self)

    def retrain(self) -> list[dict[str, Any]]:
        """Retrain every run's single best graph and its re-scored choice; write and return the entries
        (:mod:`.retrain_stage`)."""
        return retrain(self)

    def train_baselines(self) -> list[dict[str, Any]]:
        """Train every fixed wiring of ``baselines.names``; one record per (baseline, seed)
        (:mod:`.baselines_stage`)."""
        return train_baselines(self)

    def recorded(self, spec: RunSpec) -> int:
        """Evaluation records the run has (within the budget and its finalist re-scoring)."""
        return count_records(self.run_dir(spec), self.budget, self.finalist_evaluations)

    def log(self, row: Mapping[str, Any]) -> None:
        """Append one row to ``study_log.jsonl``, tagged with this invocation."""
        path = self.output / LOG_FILE
        previous = path.read_text() if path.is_file() else ""
        line = json.dumps(fileio.json_safe({**row, "invocation": self._invocation}), allow_nan=False)
        fileio.atomic_write_text(path, previous + line + "\n", fsync=True)

    # ------------------------------------------------------------------ stage: analyse
    def collect(self) -> list[SearchRun]:
        return [SearchRun.load(self.run_dir(spec), label=spec.label, strategy=spec.strategy, seed=spec.seed,
                               budget=self.budget, finalists_expected=self.rescoring) for spec in self.specs()]

    def analyse(self) -> dict[str, Any]:
        """Write ``study.json``, ``study.png`` (once a search run has started) and ``study.md`` from the run folders
        (and the other stages' folders); return the ``study.json`` content."""
        runs = self.collect()
        searched = any(run.exists for run in runs)  # none: the study ran only other stages (proxy validity)
        if not searched:
            logger.info("study %s: no search run has started; the analysis covers the other stages",
                        self.config.name)
        for run in runs if searched else ():
            if not run.complete:
                logger.warning("study %s: %s is %s; the analysis covers what is there", self.config.name, run.label,
                            "missing" if not run.exists else f"incomplete ({run.evaluations}/{self.budget}"
                            f"{', finalists pending' if run.evaluations >= self.budget else ''})")
        analysis = analyse_runs(runs, self.config, self.base)
        analysis["recipes"] = recipes_analysis(self)
        retrain = retrain_analysis(self, runs)
        analysis["retrain"] = retrain
        analysis["baselines"] = baselines_analysis(self)
        analysis["proxy_validity"] = proxy_validity_analysis(self)
        analysis["confirmatory"] = confirmatory_analysis(
            self.config, runs, retrain["entries"] if retrain is not None else (), wiring_scores(self))
        analysis["config_hash"] = config_hash(self.config)
        analysis["registration"] = self.registration()
        analysis["provenance"] = {"analysed_with": provenance.code_provenance(), "invocations": self.invocations()}
        analysis["stage_wall_time_s"] = self.stage_times()
        analysis["stage_wall_time_untagged_rows"] = self.untagged_log_rows()
        analysis = fileio.json_safe(analysis)  # NaN (no value yet) as None, as written
        typed = StudyAnalysis.from_dict(analysis)  # what the figures and study.md read: study.json, typed
        self.output.mkdir(parents=True, exist_ok=True)
        if searched:
            plot_study(runs, typed, self.output / "study.png")
        if typed.retrain is not None and typed.retrain.graphs:
            plot_proxy_vs_test(typed.retrain, self.output / "proxy_vs_test.png")
        if typed.retrain is not None and typed.retrain.choice_comparison:
            plot_choices(typed.retrain, self.output / "choices.png")
        fileio.atomic_write_text(self.output / "study.json", json.dumps(analysis, indent=1, allow_nan=False) + "\n")
        fileio.atomic_write_text(self.output / "study.md", study_markdown(typed))
        logger.info("study %s: %s", self.config.name, self.output / "study.md")
        return analysis



def run_study(config: StudyConfig | str | Path, *, stage: str = "all", **options: Any) -> StudyOutcome:
    """Load the study config (a path or a :class:`StudyConfig`) and run ``stage``; ``options`` go to
    :class:`Study` (``output``, ``executor``, ``ray_address``, ``progress``, ``fitness``, ``run_training``)."""
    if not isinstance(config, StudyConfig):
        config = load_study_config(config)
    if config.tasks.items:  # several tasks: one study per task, analysed across tasks
        from assemblenet.search.study.tasks import MultiTaskStudy

        return StudyOutcome(*MultiTaskStudy(config, study_factory=Study, **options).run(stage))
    return Study(config, **options).run(stage)

