"""Finalist re-scoring: after the search budget, evaluate the top-k distinct graphs again with fresh trial seeds
and choose the search's result by their mean fitness.

Why: a proxy evaluation is noisy (the same graph with another seed moves by about 0.03 in docs/search.md), so the
single highest score of a search is biased upwards: it is the luckiest draw among many (the winner's curse). The
re-scoring ranks the finalists by the fresh evaluations alone, which carry no selection bias; the original score
is reported beside them.

Files (in the run folder): ``finalists/`` holds the re-scoring evaluations (records like ``evaluations/``, resumed
by graph and seed), ``finalists.json`` the ranking, and ``best_choice.json`` beside ``best.yaml`` says how the
graph there was chosen.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

from assemblenet import fileio
from assemblenet.search.store import EvaluationRecord

FINALISTS_DIR = "finalists"
FINALISTS_FILE = "finalists.json"
CHOICE_FILE = "best_choice.json"
SINGLE_BEST = "single best proxy evaluation"
RESCORED = "finalist re-scoring"


def finalist_seed(search_seed: int, graph_hash: str, k: int) -> int:
    """The k-th re-scoring seed of a graph: fixed by the search seed and the graph, never one the search used."""
    digest = hashlib.sha256(f"assemblenet-finalist:{search_seed}:{graph_hash}:{k}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def select_finalists(records: Iterable[EvaluationRecord], top_k: int) -> list[EvaluationRecord]:
    """The ``top_k`` distinct graphs with the highest single fitness (each by its best evaluation; among equal
    fitness the earliest evaluation)."""
    best_by_graph: dict[str, EvaluationRecord] = {}
    for record in sorted((r for r in records if r.ok), key=lambda r: (-r.fitness, r.index)):  # type: ignore[operator]
        best_by_graph.setdefault(record.graph_hash, record)
    return list(best_by_graph.values())[:top_k]


@dataclass(frozen=True)
class FinalistScore:
    """One finalist: its search evaluation and its re-scoring evaluations (fresh seeds only)."""

    source: EvaluationRecord
    evaluations: tuple[EvaluationRecord, ...]

    @property
    def fitnesses(self) -> list[float]:
        return [r.fitness for r in self.evaluations if r.ok]  # type: ignore[misc]

    @property
    def mean(self) -> float:
        return statistics.fmean(self.fitnesses) if self.fitnesses else -math.inf

    @property
    def std(self) -> float | None:
        return statistics.stdev(self.fitnesses) if len(self.fitnesses) > 1 else None

    def averaged_record(self) -> EvaluationRecord:
        """The search record carrying the learned connection weights averaged over the re-scoring runs (less
        seed noise than any single run's)."""
        runs = [r for r in self.evaluations if r.ok and r.learned_weights] or [self.source]
        edges = set.intersection(*(set(r.learned_weights) for r in runs))
        weights = {edge: statistics.fmean(r.learned_weights[edge] for r in runs) for edge in edges}
        return dataclasses.replace(self.source, learned_weights=weights)

    def to_dict(self, rank: int) -> dict[str, Any]:
        return {"rank": rank, "graph_hash": self.source.graph_hash, "search_index": self.source.index,
                "search_fitness": self.source.fitness, "fitness": self.fitnesses, "mean": self.mean,
                "std": self.std, "evaluations": len(self.fitnesses),
                "failed": sum(1 for r in self.evaluations if not r.ok),
                "records": [r.index for r in self.evaluations]}


def rank_finalists(scores: Sequence[FinalistScore]) -> list[FinalistScore]:
    """By mean re-scored fitness; ties by the search fitness, then the earlier evaluation."""
    return sorted(scores, key=lambda s: (-s.mean, -(s.source.fitness or -math.inf), s.source.index))


def write_finalists(run_dir: Path, ranked: Sequence[FinalistScore], *, top_k: int, seeds: int,
                    wall_time: float) -> dict[str, Any]:
    data = {"chosen_by": RESCORED, "top_k": top_k, "seeds": seeds,
            "evaluations": sum(len(s.evaluations) for s in ranked),
            "evaluations_run": sum(1 for s in ranked for r in s.evaluations if r.reused_from is None),
            "wall_time": wall_time,
            "finalists": [score.to_dict(rank) for rank, score in enumerate(ranked, start=1)]}
    fileio.atomic_write_json(run_dir / FINALISTS_FILE, fileio.json_safe(data))
    return data


def read_finalists(run_dir: str | Path) -> dict[str, Any] | None:
    path = Path(run_dir) / FINALISTS_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def write_choice(folder: Path, record: EvaluationRecord, *, chosen_by: str, **details: Any) -> None:
    """``best_choice.json``: how the graph in ``best.yaml`` was chosen."""
    fileio.atomic_write_json(folder / CHOICE_FILE, fileio.json_safe({
        "chosen_by": chosen_by, "graph_hash": record.graph_hash, "search_index": record.index,
        "search_fitness": record.fitness, **details}))
