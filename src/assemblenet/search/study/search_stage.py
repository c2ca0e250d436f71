"""The search stage: every (strategy, seed) search of the study run (or resumed) one after another into
``OUTPUT/<strategy>-seed<N>/``, a run that already spent its budget with this config skipped, with one progress
bar over every evaluation of the study."""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assemblenet import fileio
from assemblenet.errors import ConfigError
from assemblenet.search.finalists import FINALISTS_DIR, read_finalists
from assemblenet.search.store import EvaluationMemo, RunStore

if TYPE_CHECKING:
    from assemblenet.search.study.runner import RunSpec, Study

# the study's log lines keep one logger name (and so the command's output its wording) whichever module writes them
logger = logging.getLogger(__name__)


def run_searches(study: Study) -> list[dict[str, Any]]:
    """Run (or resume) every search, one after another; return one summary per run."""
    from assemblenet.search.evolution import FRAME_STORE_DIR, SearchRunner, executor_for
    from assemblenet.search.fitness import build_fitness

    specs = study.specs()
    study.output.mkdir(parents=True, exist_ok=True)
    done = {spec: finished_summary(study, spec) for spec in specs}
    per_run = study.budget + study.finalist_evaluations
    initial = sum(per_run if done[spec] else study.recorded(spec) for spec in specs)
    summaries = []
    # One fitness and one executor for every run (they share the base config's fitness and executor), so a
    # process pool and the proxy data it caches are made once, not once per run.
    fitness = study.fitness if study.fitness is not None else build_fitness(study.base)
    memo = EvaluationMemo() if study.config.reuse_evaluations else None
    if memo is not None:
        for spec in specs:
            if matches_config(study, spec):  # never copy from a folder another config wrote
                memo.add_run(study.run_dir(spec))
                for record in RunStore(study.run_dir(spec) / FINALISTS_DIR).read_records().values():
                    memo.add(f"{spec.label}/{FINALISTS_DIR}", record)
    executor: Any = None
    with StudyProgress(total=len(specs) * per_run, initial=initial, enabled=study.progress,
                       desc=f"study {study.config.name}") as progress:
        try:
            for spec in specs:
                summary_done = done[spec]
                if summary_done is not None:
                    summaries.append({**summary_done, "skipped": True})
                    continue
                logger.info("study %s: search %s -> %s", study.config.name, spec.label, study.run_dir(spec))
                progress.watch(study.run_dir(spec), study.budget, study.finalist_evaluations)
                start = time.time()
                if executor is None:
                    # The proxy videos decoded once for the whole study, into a store every worker maps.
                    with_frame_store = getattr(fitness, "with_frame_store", None)
                    if callable(with_frame_store):
                        fitness = with_frame_store(study.output / FRAME_STORE_DIR)
                    executor = executor_for(study.base, fitness)
                summary = SearchRunner(study.run_config(spec), run_dir=study.run_dir(spec), fitness=fitness,
                                       executor=executor, progress=False, memo=memo).run()
                progress.finish_run()
                row = {
                    "event": "run-finished", "time": time.time(), "strategy": spec.strategy, "seed": spec.seed,
                    "run_dir": str(study.run_dir(spec)), "evaluations": summary.evaluations,
                    "exhausted": summary.exhausted,
                    "best_fitness": summary.best.fitness if summary.best is not None else None,
                    "best_index": summary.best.index if summary.best is not None else None,
                    "wall_time_s": round(time.time() - start, 3),
                }
                study.log(row)
                summaries.append({**row, "skipped": False})
        finally:
            if executor is not None:
                executor.close()
    return summaries


def matches_config(study: Study, spec: RunSpec) -> bool:
    """Whether the run's folder was written by this study's config (False: no folder, or another config)."""
    try:
        manifest = RunStore(study.run_dir(spec)).read_manifest()
    except ConfigError:
        return False
    if not manifest:
        return False
    return bool(_json_plain(manifest.get("fingerprint")) == _json_plain(study.run_config(spec).fingerprint()))


def finished_summary(study: Study, spec: RunSpec) -> dict[str, Any] | None:
    """The summary of a run that already spent the budget with this config (skipped quickly), else None
    (SearchRunner then resumes it, or explains why the folder does not match)."""
    if not matches_config(study, spec):
        return None
    try:
        state = RunStore(study.run_dir(spec)).read_state()
    except ConfigError:
        return None
    if not state:
        return None
    next_index = int(state.get("next_index", 0))
    if next_index < study.budget and not state.get("exhausted", False):
        return None
    if study.rescoring and read_finalists(study.run_dir(spec)) is None:
        return None  # killed during the finalist re-scoring: SearchRunner resumes it
    history = state.get("history", [])[: study.budget]
    bests = [row.get("best_fitness") for row in history if row.get("best_fitness") is not None]
    return {"strategy": spec.strategy, "seed": spec.seed, "run_dir": str(study.run_dir(spec)),
            "evaluations": min(next_index, study.budget), "exhausted": bool(state.get("exhausted", False)),
            "best_fitness": bests[-1] if bests else None}


def _json_plain(value: Any) -> Any:
    return json.loads(json.dumps(fileio.json_safe(value), sort_keys=True))


def count_records(run_dir: Path, budget: int, finalists: int = 0) -> int:
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


class StudyProgress:
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

    def __enter__(self) -> "StudyProgress":
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
            self.watched = (run_dir, budget, finalists, count_records(run_dir, budget, finalists))

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
            current += count_records(run_dir, budget, finalists) - before
        if current > self.bar.n:
            self.bar.update(current - self.bar.n)
