"""One search run folder as ``search-report`` and ``search-study`` read it: :class:`SearchRun`, the single model
of a run's history (evaluations in order, best so far, finalist re-scoring), and :func:`find_runs`.

A run folder is what :class:`~assemblenet.search.evolution.SearchRunner` writes (``search.json``, ``state.json``,
``evaluations/``, ``finalists/`` and ``finalists.json``); this module only reads it.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from assemblenet.errors import ConfigError
from assemblenet.search.finalists import FINALISTS_DIR, FinalistScore, read_finalists
from assemblenet.search.store import EvaluationRecord, RunStore, is_run_dir, mutation_kind_counts


@dataclass
class SearchRun:
    """A run's consumed evaluations (cut to ``budget`` when given) and what the report and the study derive
    from them. ``exists`` is False for a folder without ``state.json`` (a run not started yet)."""

    path: Path
    label: str
    strategy: str
    seed: int
    exists: bool = False
    exhausted: bool = False
    history: list[dict[str, Any]] = field(default_factory=list)  # state.json's rows, one per consumed evaluation
    budget: int | None = None
    finalists_expected: bool = False  # the study's searches re-score: a run is complete only with finalists.json

    @classmethod
    def load(cls, path: str | Path, *, label: str | None = None, strategy: str | None = None,
             seed: int | None = None, budget: int | None = None, finalists_expected: bool = False) -> "SearchRun":
        """Read a run folder; ``strategy`` and ``seed`` default to its manifest's, ``label`` to the folder name."""
        path = Path(path)
        store = RunStore(path)
        manifest = store.read_manifest() or {}
        state = store.read_state() if store.state_path.is_file() else None
        run = cls(path, label or path.name, strategy if strategy is not None else str(manifest.get("strategy", "?")),
                  seed if seed is not None else int(manifest.get("seed", 0)), budget=budget,
                  finalists_expected=finalists_expected)
        if state is not None:
            consumed = int(state.get("next_index", 0))
            consumed = consumed if budget is None else min(consumed, budget)
            run.exists, run.exhausted = True, bool(state.get("exhausted", False))
            run.history = list(state.get("history", []))[:consumed]
        return run

    # ------------------------------------------------------------------ evaluations
    @property
    def evaluations(self) -> int:
        return len(self.history)

    @property
    def complete(self) -> bool:
        searched = self.exists and (self.exhausted or (self.budget is not None and self.evaluations >= self.budget))
        return searched and (self.finalists is not None or not self.finalists_expected)

    @functools.cached_property
    def records(self) -> list[EvaluationRecord]:
        """The consumed evaluation records, in order (read once)."""
        stored = RunStore(self.path).read_records() if self.exists else {}
        return [stored[row["index"]] for row in self.history if row["index"] in stored]

    @property
    def fitness(self) -> list[float | None]:
        return [row["fitness"] for row in self.history]

    @property
    def curve(self) -> list[float]:
        """Best fitness so far after each evaluation (NaN before the first success)."""
        out, best = [], math.nan
        for value in self.fitness:
            if value is not None and (math.isnan(best) or value > best):
                best = value
            out.append(best)
        return out

    def padded_curve(self, budget: int) -> list[float]:
        """The curve over ``budget`` evaluations: an exhausted run keeps its final best (it can find no more
        graphs); an unfinished run is NaN past its end."""
        curve = self.curve
        fill = curve[-1] if (curve and self.exhausted) else math.nan
        return curve + [fill] * (budget - len(curve))

    @property
    def final_best(self) -> float | None:
        values = [v for v in self.curve if not math.isnan(v)]
        return values[-1] if values else None

    @property
    def best(self) -> EvaluationRecord | None:
        """The single highest evaluation; among equals the earliest (read from its record file)."""
        rows = [r for r in self.history if r["fitness"] is not None]
        if not rows:
            return None
        top = max(rows, key=lambda r: (r["fitness"], -r["index"]))
        return next((r for r in self.records if r.index == top["index"]), None)

    @property
    def children_by_kind(self) -> dict[str, int]:
        """Evaluations with a parent counted by mutation kind (``fallback_from`` children as ``kind<-from``)."""
        return mutation_kind_counts(self.history, mark_fallbacks=True)

    def mutation_counts(self) -> tuple[dict[str, int], dict[str, int]]:
        """Counts of the mutation kind over the children (evaluations with a parent) and over all evaluations."""
        return mutation_kind_counts(self.records), mutation_kind_counts(self.records, children_only=False)

    # ------------------------------------------------------------------ finalist re-scoring
    @functools.cached_property
    def finalists(self) -> dict[str, Any] | None:
        """``finalists.json`` when the run re-scored its finalists, else None (read once)."""
        return read_finalists(self.path)

    @functools.cached_property
    def finalist_records(self) -> dict[int, EvaluationRecord]:
        folder = self.path / FINALISTS_DIR
        return RunStore(folder).read_records() if folder.is_dir() else {}

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

    def chosen_record(self) -> EvaluationRecord | None:
        """The run's result: its top re-scored finalist carrying the re-scoring runs' averaged weights, else its
        single best evaluation."""
        top, source = self.rescored_summary, self.rescored
        if top is None or source is None:
            return self.best
        reruns = self.finalist_records
        return FinalistScore(source, tuple(reruns[i] for i in top["records"] if i in reruns)).averaged_record()


def find_runs(folders: Sequence[str | Path]) -> list[SearchRun]:
    """Every run in ``folders`` (each a run folder or a folder of runs), labelled uniquely."""
    paths: list[Path] = []
    for folder in folders:
        folder = Path(folder)
        if not folder.is_dir():
            raise FileNotFoundError(f"search folder not found: {folder}")
        if is_run_dir(folder):
            paths.append(folder)
        else:
            found = sorted(p for p in folder.iterdir() if p.is_dir() and is_run_dir(p))
            if not found:
                raise ConfigError(f"{folder}: no search runs here (expected <strategy>-seed<N>/search.json)")
            paths.extend(found)
    unique: dict[Path, Path] = {}
    for path in paths:
        unique.setdefault(path.resolve(), path)  # a run named twice is reported once
    paths = list(unique.values())
    names = [p.name for p in paths]
    runs: list[SearchRun] = []
    for path in paths:
        label = path.name if names.count(path.name) == 1 else f"{path.parent.name}/{path.name}"
        if any(run.label == label for run in runs):
            label = f"{label}#{len(runs)}"
        runs.append(SearchRun.load(path, label=label))
    return runs
