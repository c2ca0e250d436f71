"""The on-disk state of one search run, written so that a killed search can resume exactly.

Layout of a run folder (``<search folder>/<strategy>-seed<seed>/``)::

    search.json              what was run: strategy, seed, the config and its fingerprint, and the code that ran
                             it (``provenance``: git commit, dirty tree, diff hash and the machine of the search's
                             main process; ``provenance_history``: one entry per distinct code state or machine
                             that ran or resumed it)
    evaluations/000012.json  one record per finished evaluation, written atomically the moment it finishes
    state.json               RNG state, population and history, written atomically after each consumed batch
    metrics.jsonl            one line per consumed evaluation (rebuilt from state.json on resume)
    best.yaml, best_official.json   the best graph so far, with its learned connection weights

Every file is JSON/YAML (never pickle) and is written through :mod:`assemblenet.fileio` with fsync (a
finished evaluation must survive a power loss as well as SIGKILL), so a reader or a restarted search sees
either the old or the new version, never a partial one. ``metrics.jsonl`` alone is appended to.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from assemblenet import fileio, provenance, runtime
from assemblenet.errors import ConfigError
from assemblenet.graph.io import graph_from_dict, graph_to_dict
from assemblenet.graph.spec import AssembleNetGraph
from assemblenet.search.fitness import FitnessResult
from assemblenet.search.fitness_types import (
    AttentionWeights,
    attention_weights_from_list,
    attention_weights_to_list,
    edge_values_from_list,
    edge_values_to_list,
)

FORMAT = "assemblenet-search/v1"
RECORD_DIGITS = 6


@dataclass(frozen=True)
class EvaluationRecord:
    """One finished fitness run. ``fitness`` is None when the run failed (``error`` says why).

    ``attention_weights`` is the peer attention the run learned (see :class:`FitnessResult`); empty without
    peer attention, and in records written before it existed."""

    index: int
    graph: AssembleNetGraph
    graph_hash: str
    seed: int
    parent: int | None
    mutation: dict[str, Any]
    fitness: float | None
    learned_weights: dict[tuple[int, int], float] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    wall_time: float = 0.0
    error: str | None = None
    finished_at: float = 0.0
    attempts: int = 1  # runs it took: more than 1 when its Ray worker died and it was retried
    attention_weights: AttentionWeights = field(default_factory=dict)
    contributions: dict[tuple[int, int], float] = field(default_factory=dict)  # see FitnessResult
    # "RUN/INDEX" of the identical evaluation (same graph, same trial seed) this record copies; None: it was run
    reused_from: str | None = None

    @property
    def ok(self) -> bool:
        return self.fitness is not None

    @property
    def sort_fitness(self) -> float:
        """Fitness for ranking: failed runs rank below everything."""
        return self.fitness if self.fitness is not None else -math.inf

    def fitness_result(self) -> FitnessResult:
        return FitnessResult(
            fitness=self.sort_fitness, learned_weights=dict(self.learned_weights), metrics=dict(self.metrics),
            wall_time=self.wall_time, attention_weights=dict(self.attention_weights),
            contributions=dict(self.contributions),
        )

    def graph_with_learned_weights(self) -> AssembleNetGraph:
        """The graph with its learned weights attached to multi-input nodes (single inputs stay unweighted)."""
        per_node: list[list[float] | None] = []
        for target, node in enumerate(self.graph.nodes):
            inputs = self.graph.predecessors(target)
            if len(inputs) > 1 and all((s, target) in self.learned_weights for s in inputs):
                per_node.append([min(1.0, max(0.0, self.learned_weights[(s, target)])) for s in inputs])
            else:
                per_node.append(None)
        return self.graph.with_edge_weights(per_node)

    def to_dict(self) -> dict[str, Any]:
        data = {
            "format": FORMAT,
            "index": self.index,
            "graph_hash": self.graph_hash,
            "seed": self.seed,
            "parent": self.parent,
            "mutation": self.mutation,
            "fitness": self.fitness,
            "metrics": fileio.json_safe(self.metrics),
            "wall_time": self.wall_time,
            "error": self.error,
            "finished_at": self.finished_at,
            "attempts": self.attempts,
            "graph": graph_to_dict(self.graph),
            "learned_weights": edge_values_to_list(self.learned_weights),
        }
        if self.attention_weights:  # only then, so records without peer attention keep their old form
            data["attention_weights"] = attention_weights_to_list(self.attention_weights)
        if self.contributions:
            data["contributions"] = edge_values_to_list(self.contributions)
        if self.reused_from is not None:
            data["reused_from"] = self.reused_from
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "record") -> "EvaluationRecord":
        try:
            return cls(
                index=int(data["index"]),
                graph=graph_from_dict(data["graph"], source=f"{source}: graph"),
                graph_hash=str(data["graph_hash"]),
                seed=int(data["seed"]),
                parent=None if data["parent"] is None else int(data["parent"]),
                mutation=dict(data["mutation"]),
                fitness=None if data["fitness"] is None else float(data["fitness"]),
                learned_weights=edge_values_from_list(data.get("learned_weights")),
                metrics=dict(data.get("metrics", {})),
                wall_time=float(data.get("wall_time", 0.0)),
                error=data.get("error"),
                finished_at=float(data.get("finished_at", 0.0)),
                attempts=int(data.get("attempts", 1)),
                attention_weights=attention_weights_from_list(data.get("attention_weights")),
                contributions=edge_values_from_list(data.get("contributions")),
                reused_from=None if data.get("reused_from") is None else str(data["reused_from"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"{source}: malformed evaluation record ({exc!r})") from None


class EvaluationMemo:
    """Finished evaluations of sibling runs that share one fitness (a study's runs), to be copied, not rerun.

    A proxy evaluation is a deterministic function of the exact graph (node numbering included: it orders the
    parameter initialisation) and the trial seed. Runs of a study with the same search seed draw the same
    initial graphs with the same trial seeds (evolution, its control and random search share one RNG stream),
    so their first ``population_size`` evaluations are identical; the memo runs each of them once. Only
    successful evaluations are kept; a failure is run again.
    """

    def __init__(self) -> None:
        self._records: dict[tuple[str, int], tuple[str, EvaluationRecord]] = {}

    @staticmethod
    def key(graph: AssembleNetGraph, seed: int) -> tuple[str, int]:
        return json.dumps(graph_to_dict(graph), sort_keys=True), int(seed)

    def add(self, run: str, record: EvaluationRecord) -> None:
        if record.ok:
            origin = record.reused_from or f"{run}/{record.index:06d}"
            self._records.setdefault(self.key(record.graph, record.seed), (origin, record))

    def add_run(self, run_dir: str | Path) -> None:
        """Every successful record of a run folder (nothing if it has none yet)."""
        run_dir = Path(run_dir)
        if (run_dir / "evaluations").is_dir():
            for record in RunStore(run_dir).read_records().values():
                self.add(run_dir.name, record)

    def lookup(self, graph: AssembleNetGraph, seed: int) -> tuple[str, EvaluationRecord] | None:
        """``(origin, record)`` of an identical finished evaluation, or None."""
        return self._records.get(self.key(graph, seed))


class RunStore:
    """Reads and writes one run folder."""

    def __init__(self, run_dir: str | Path) -> None:
        self.run_dir = Path(run_dir)
        self.records_dir = self.run_dir / "evaluations"

    # ------------------------------------------------------------------ manifest
    @property
    def manifest_path(self) -> Path:
        return self.run_dir / "search.json"

    def read_manifest(self) -> dict[str, Any] | None:
        return _read_json(self.manifest_path) if self.manifest_path.is_file() else None

    def open(self, manifest: dict[str, Any]) -> None:
        """Create the folder, or check that an existing one was made by the same search (same fingerprint)."""
        self.records_dir.mkdir(parents=True, exist_ok=True)
        self._remove_stale_temporaries()
        existing = self.read_manifest()
        # The machine as well as the code: a search resumed on another CPU rounds differently from then on. It is
        # the machine of this (the main) process: GPUs and the nodes of a Ray cluster are not described.
        code = {**provenance.code_provenance(), "machine": runtime.machine_info()["signature"]}
        if existing is None:
            _write_json(self.manifest_path, {"format": FORMAT, "created": time.time(), **manifest,
                                             "provenance": code, "provenance_history": [code]})
            return
        differences = _differences(existing.get("fingerprint"), manifest["fingerprint"])
        if differences:
            raise ConfigError(
                f"{self.run_dir}: this folder holds a search with a different config ({', '.join(differences[:5])}); "
                "use another --output or the original config"
            )
        # The budget and executor may change between runs; keep the latest for the report. A resume from other code
        # (another commit, or other uncommitted changes) or on another machine is added to the history.
        history = list(existing.get("provenance_history") or [])
        if not history or _code_key(history[-1]) != _code_key(code):
            history.append(code)
        _write_json(self.manifest_path, {**existing, "config": manifest["config"], "provenance_history": history})

    # ------------------------------------------------------------------ records
    def record_path(self, index: int) -> Path:
        return self.records_dir / f"{index:0{RECORD_DIGITS}d}.json"

    def write_record(self, record: EvaluationRecord) -> None:
        _write_json(self.record_path(record.index), record.to_dict())

    def read_record(self, index: int) -> EvaluationRecord | None:
        path = self.record_path(index)
        if not path.is_file():
            return None
        return EvaluationRecord.from_dict(_read_json(path), source=str(path))

    def read_records(self) -> dict[int, EvaluationRecord]:
        records = {}
        if self.records_dir.is_dir():
            for path in sorted(self.records_dir.glob("[0-9]*.json")):  # not a writer's ".000003.json.*.tmp.json"
                record = EvaluationRecord.from_dict(_read_json(path), source=str(path))
                records[record.index] = record
        return records

    # ------------------------------------------------------------------ state
    @property
    def state_path(self) -> Path:
        return self.run_dir / "state.json"

    def read_state(self) -> dict[str, Any] | None:
        return _read_json(self.state_path) if self.state_path.is_file() else None

    def write_state(self, state: dict[str, Any]) -> None:
        _write_json(self.state_path, state)

    # ------------------------------------------------------------------ metrics log
    @property
    def metrics_path(self) -> Path:
        return self.run_dir / "metrics.jsonl"

    def append_metrics(self, rows: Iterable[Mapping[str, Any]]) -> None:
        # Appended, not rewritten: a log line per evaluation, rebuilt from state.json on resume (rewrite_metrics),
        # so a line torn by a kill is replaced there.
        with open(self.metrics_path, "a") as handle:
            for row in rows:
                handle.write(json.dumps(fileio.json_safe(dict(row))) + "\n")

    def rewrite_metrics(self, rows: Iterable[Mapping[str, Any]]) -> None:
        text = "".join(json.dumps(fileio.json_safe(dict(row))) + "\n" for row in rows)
        fileio.atomic_write_text(self.metrics_path, text, fsync=True)

    def _remove_stale_temporaries(self) -> None:
        for folder in (self.run_dir, self.records_dir):
            fileio.remove_stale_temporaries(folder)


def mutation_kind_counts(entries: Iterable[EvaluationRecord | Mapping[str, Any]], *, children_only: bool = True,
                         mark_fallbacks: bool = False) -> dict[str, int]:
    """Evaluations counted by mutation kind, sorted by kind: the one count the demo, the report and the study show.

    ``entries`` are records or the history rows of ``state.json``. ``children_only`` skips evaluations without a
    parent (initial samples); ``mark_fallbacks`` counts a child whose planned kind had no valid move as
    ``kind<-planned``.
    """
    counts: dict[str, int] = {}
    for entry in entries:
        if isinstance(entry, EvaluationRecord):
            parent, kind = entry.parent, entry.mutation.get("kind", "unknown")
            fallback = entry.mutation.get("fallback_from")
        else:
            parent, kind, fallback = entry.get("parent"), entry.get("mutation", "unknown"), entry.get("fallback_from")
        if children_only and parent is None:
            continue
        label = f"{kind}<-{fallback}" if mark_fallbacks and fallback else str(kind)
        counts[label] = counts.get(label, 0) + 1
    return dict(sorted(counts.items()))


def is_run_dir(path: str | Path) -> bool:
    return (Path(path) / "search.json").is_file()


def _write_json(path: Path, data: Any) -> None:
    fileio.atomic_write_json(path, data, fsync=True)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None


def _code_key(record: Mapping[str, Any]) -> tuple[Any, ...]:
    return record.get("commit"), record.get("dirty"), record.get("diff_sha256"), record.get("machine")


def _differences(old: Any, new: Any, prefix: str = "") -> list[str]:
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        found = []
        for key in sorted(set(old) | set(new), key=str):
            found += _differences(old.get(key), new.get(key), f"{prefix}{key}.")
        return found
    return [] if old == new else [f"{prefix.rstrip('.')}: {old!r} -> {new!r}"]
