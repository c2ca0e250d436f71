"""The search loop: runs the configured strategy (:mod:`assemblenet.search.strategies`, chosen through
:mod:`assemblenet.search.registry`), evaluates, records, keeps the population, and resumes.

Determinism: the search proposes a batch of ``search.batch_size`` candidates from its state (one seeded
``random.Random``), the executor runs them in any order and any place, and the batch is consumed in
submission order. The batch size is config, not the number of workers, so every executor evaluates the same
graphs in the same order. Each trial's seed is derived from (search seed, evaluation index).

Resume: each finished evaluation is written at once; the RNG, population and history are written after each
consumed batch. A restarted search loads that state, proposes the interrupted batch again (the same
candidates, since the RNG is restored), reuses the evaluations of it that finished, and runs only the rest.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import math
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from assemblenet.errors import AssembleNetError, ConfigError
from assemblenet.fileio import hold_folder
from assemblenet.graph.io import save_graph
from assemblenet.search.config import SearchConfig
from assemblenet.search.executors import Executor, Trial, TrialOutcome, make_executor
from assemblenet.search.finalists import (
    FINALISTS_DIR,
    RESCORED,
    SINGLE_BEST,
    FinalistScore,
    finalist_seed,
    rank_finalists,
    select_finalists,
    write_choice,
    write_finalists,
)
from assemblenet.search.fitness import FitnessFunction, FitnessUnavailableError, build_fitness
from assemblenet.search.registry import make_strategy
from assemblenet.search.space import SearchSpace
from assemblenet.search.store import EvaluationMemo, EvaluationRecord, RunStore
from assemblenet.search.strategies import Candidate, SearchContext, SearchState

logger = logging.getLogger(__name__)

FRAME_STORE_DIR = "frame_store"  # in the run folder: the proxy splits' decoded frames (fitness.frame_cache_mb)


class SearchError(AssembleNetError):
    """The search cannot go on (e.g. too many failed fitness runs in a row)."""


def derive_trial_seed(search_seed: int, index: int) -> int:
    """The seed of evaluation ``index``: fixed by the search seed and the index alone."""
    digest = hashlib.sha256(f"assemblenet-search:{search_seed}:{index}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def run_dir_name(strategy: str, seed: int) -> str:
    return f"{strategy}-seed{seed}"


# ---------------------------------------------------------------------- the runner
@dataclass(frozen=True)
class SearchSummary:
    """What a search produced. ``best`` is its single highest evaluation; ``chosen`` is its result: the
    re-scored finalist with the highest mean fitness (``finalists``, best first) when ``search.finalists`` is on,
    else ``best``. ``chosen`` carries the learned weights averaged over its re-scoring runs."""

    run_dir: Path
    evaluations: int
    best: EvaluationRecord | None
    exhausted: bool
    chosen: EvaluationRecord | None = None
    finalists: tuple[FinalistScore, ...] = ()

    @property
    def chosen_by(self) -> str:
        return RESCORED if self.finalists else SINGLE_BEST


class SearchRunner:
    """Runs (or resumes) one search in ``run_dir``.

    ``fitness`` and ``executor`` default to what the config names; pass them to inject test doubles. ``memo``
    (a study's :class:`EvaluationMemo`) supplies identical evaluations of sibling runs, which are copied into
    this run (``reused_from``) instead of being run again, and receives this run's own.
    """

    def __init__(
        self,
        config: SearchConfig,
        *,
        run_dir: str | Path,
        fitness: FitnessFunction | None = None,
        executor: Executor | None = None,
        progress: bool = False,
        memo: EvaluationMemo | None = None,
    ) -> None:
        self.config = config
        self.memo = memo
        self.run_dir = Path(run_dir)
        self.space = SearchSpace(config.space)
        self.strategy = make_strategy(config.strategy)
        self.fitness = fitness if fitness is not None else build_fitness(config)
        self._executor = executor
        self.progress = progress
        self.store = RunStore(self.run_dir)
        self._tensorboard: Any = None

    # ------------------------------------------------------------------ public
    def run(self) -> SearchSummary:
        with hold_folder(self.run_dir):  # one search per run folder
            return self._run()

    def _run(self) -> SearchSummary:
        cfg = self.config
        self.store.open({
            "strategy": cfg.strategy, "seed": cfg.seed, "name": cfg.name,
            "fingerprint": cfg.fingerprint(), "config": cfg.to_dict(),
        })
        records = self.store.read_records()
        saved = self.store.read_state()
        state = SearchState.from_dict(saved, source=str(self.store.state_path)) if saved else SearchState(cfg.seed)
        if saved:
            logger.info("resuming %s at evaluation %d (%d records on disk)",
                        self.run_dir, state.next_index, len(records))
        self.store.rewrite_metrics(state.history)  # drop lines of a batch that was not consumed
        ctx = SearchContext(cfg, self.space, state, records)
        budget = cfg.search.max_evaluations

        executor = self._executor
        owns_executor = executor is None
        progress = self._progress_bar(initial=min(state.next_index, budget), total=budget)
        try:
            while state.next_index < budget and not state.exhausted:
                count = min(cfg.search.batch_size, budget - state.next_index)
                ctx.batch_hashes.clear()
                candidates = self.strategy.propose(ctx, count)
                if not candidates:
                    logger.warning("search space exhausted: no new graph found after %d evaluations", state.next_index)
                    state.exhausted = True
                    self.store.write_state(state.to_dict())
                    break
                if executor is None:
                    executor = self._make_executor()
                batch = self._evaluate(candidates, ctx, executor, progress)
                for record in batch:
                    self._consume(ctx, record)
                state.next_index += len(batch)
                self.store.write_state(state.to_dict())
                self.store.append_metrics(state.history[-len(batch):])
                self._check_failures(state, batch)
            consumed = [records[i] for i in range(state.next_index) if i in records]
            finalists: list[FinalistScore] = []
            if cfg.search.finalists.top_k > 0 and any(r.ok for r in consumed):
                if executor is None:
                    executor = self._make_executor()
                finalists = self._rescore_finalists(consumed, executor)
        finally:
            progress.close()
            if owns_executor and executor is not None:
                executor.close()
            if self._tensorboard is not None:
                self._tensorboard.close()
        best = best_record(consumed)
        chosen = finalists[0].averaged_record() if finalists else best
        return SearchSummary(self.run_dir, state.next_index, best, state.exhausted, chosen, tuple(finalists))

    # ------------------------------------------------------------------ finalist re-scoring
    def _rescore_finalists(self, consumed: list[EvaluationRecord], executor: Executor) -> list[FinalistScore]:
        """Evaluate the top-k distinct graphs ``seeds`` more times with fresh seeds (resuming the evaluations
        already in ``finalists/``), rank them by mean fitness, and write the winner as ``best.yaml``."""
        options = self.config.search.finalists
        finalists = select_finalists(consumed, options.top_k)
        store = RunStore(self.run_dir / FINALISTS_DIR)
        store.records_dir.mkdir(parents=True, exist_ok=True)
        done = {(r.graph_hash, r.seed): r for r in store.read_records().values()}
        next_index = max((r.index for r in done.values()), default=-1) + 1
        plan: list[tuple[EvaluationRecord, int]] = [(source, finalist_seed(self.config.seed, source.graph_hash, k))
                                                    for source in finalists for k in range(options.seeds)]
        start = time.perf_counter()
        trials, pending = [], {}
        progress = self._progress_bar(initial=0, total=len(plan), desc="finalists")

        def keep(record: EvaluationRecord) -> None:
            store.write_record(record)  # each as it arrives: a kill loses only unfinished ones
            if self.memo is not None and record.reused_from is None:
                self.memo.add(f"{self.run_dir.name}/{FINALISTS_DIR}", record)
            done[(record.graph_hash, record.seed)] = record
            progress.update(1)

        try:
            for source, seed in plan:
                if (source.graph_hash, seed) in done:
                    progress.update(1)
                    continue
                index, next_index = next_index, next_index + 1
                known = self.memo.lookup(source.graph, seed) if self.memo is not None else None
                if known is None:
                    pending[index] = (source, seed)
                    trials.append(Trial(index, source.graph, seed,
                                        str(self.run_dir / FINALISTS_DIR / "trials" / f"{index:06d}")))
                    continue
                origin, copy = known
                outcome = TrialOutcome(index, copy.fitness_result(), 0.0, attempts=0)
                keep(dataclasses.replace(self._finalist_record(source, seed, outcome), reused_from=origin))
            fatal: TrialOutcome | None = None
            for outcome in executor.run(trials) if trials else ():
                if outcome.fatal:
                    fatal = fatal or outcome
                    continue
                source, seed = pending[outcome.index]
                keep(self._finalist_record(source, seed, outcome))
            if fatal is not None:
                raise FitnessUnavailableError(f"finalist evaluation {fatal.index}: {fatal.error}")
        finally:
            progress.close()
        scores = [FinalistScore(source, tuple(done[(source.graph_hash, seed)] for s, seed in plan if s is source))
                  for source in finalists]
        ranked = rank_finalists(scores)
        wall = sum(r.wall_time for s in ranked for r in s.evaluations)
        summary = write_finalists(self.run_dir, ranked, top_k=options.top_k, seeds=options.seeds, wall_time=wall)
        chosen = ranked[0]
        logger.info("finalist re-scoring (%d graphs x %d seeds, %.0f s): chose evaluation %d, mean %.4f over %d "
                 "(its search score %.4f); the single best was evaluation %d (%.4f)", len(ranked), options.seeds,
                 time.perf_counter() - start, chosen.source.index, chosen.mean, len(chosen.fitnesses),
                 chosen.source.fitness, finalists[0].index, finalists[0].fitness)
        write_best(chosen.averaged_record(), self.run_dir, name=self._best_name(), chosen_by=RESCORED,
                   details={"mean": chosen.mean, "std": chosen.std, "evaluations": len(chosen.fitnesses),
                            "top_k": options.top_k, "seeds": options.seeds,
                            "finalists": summary["finalists"]})
        return ranked

    def _finalist_record(self, source: EvaluationRecord, seed: int, outcome: TrialOutcome) -> EvaluationRecord:
        candidate = Candidate(source.graph, source.index, {"kind": "finalist", "of": source.index})
        return self._record(candidate, outcome, seed=seed)

    def _best_name(self) -> str:
        return f"{self.config.name}-{self.config.strategy}-seed{self.config.seed}"

    # ------------------------------------------------------------------ steps
    def _evaluate(
        self, candidates: list[Candidate], ctx: SearchContext, executor: Executor, progress: Any
    ) -> list[EvaluationRecord]:
        """Run the batch (reusing records that finished before an interruption) and return it in order."""
        start_index = ctx.state.next_index
        by_index = {start_index + k: c for k, c in enumerate(candidates)}
        trials = []
        for index, candidate in by_index.items():
            existing = ctx.records.get(index)
            digest = candidate.graph.canonical_hash()
            if existing is not None:
                if existing.graph_hash != digest:
                    raise ConfigError(
                        f"{self.store.record_path(index)}: holds a different graph than the resumed search proposes "
                        "(was the folder written by another version or config?); use another --output"
                    )
                progress.update(1)
                continue
            seed = derive_trial_seed(self.config.seed, index)
            known = self.memo.lookup(candidate.graph, seed) if self.memo is not None else None
            if known is not None:
                origin, source = known
                self._keep(dataclasses.replace(
                    self._record(candidate, TrialOutcome(index, source.fitness_result(), 0.0, attempts=0)),
                    reused_from=origin,
                ), ctx, progress)
                continue
            workdir = str(self.run_dir / "trials" / f"{index:06d}")  # used only by fitnesses that keep outputs
            trials.append(Trial(index, candidate.graph, seed, workdir))
        fatal: TrialOutcome | None = None
        for outcome in executor.run(trials) if trials else ():
            if outcome.fatal:
                fatal = fatal or outcome
                continue
            self._keep(self._record(by_index[outcome.index], outcome), ctx, progress)
        if fatal is not None:
            raise FitnessUnavailableError(f"evaluation {fatal.index}: {fatal.error}")
        return [ctx.records[index] for index in by_index]

    def _keep(self, record: EvaluationRecord, ctx: SearchContext, progress: Any) -> None:
        self.store.write_record(record)
        ctx.records[record.index] = record
        if self.memo is not None:
            self.memo.add(self.run_dir.name, record)
        progress.update(1)
        if record.ok:
            progress.set_postfix(fitness=f"{record.fitness:.4f}", refresh=False)
        else:
            logger.warning("evaluation %d failed: %s", record.index, (record.error or "").splitlines()[0])

    def _record(self, candidate: Candidate, outcome: TrialOutcome, *, seed: int | None = None) -> EvaluationRecord:
        """The record of ``outcome``; ``seed`` is the trial seed when it is not the search's own for the index
        (finalist re-scoring)."""
        result = outcome.result
        fitness = None
        if result is not None and math.isfinite(result.fitness):
            fitness = float(result.fitness)
        error = outcome.error
        if result is not None and fitness is None:
            error = f"non-finite fitness {result.fitness!r}"
        return EvaluationRecord(
            index=outcome.index,
            graph=candidate.graph,
            graph_hash=candidate.graph.canonical_hash(),
            seed=derive_trial_seed(self.config.seed, outcome.index) if seed is None else seed,
            parent=candidate.parent,
            mutation=candidate.mutation,
            fitness=fitness,
            learned_weights=dict(result.learned_weights) if result is not None else {},
            metrics=dict(result.metrics) if result is not None else {},
            wall_time=outcome.wall_time,
            error=error,
            finished_at=time.time(),
            attempts=outcome.attempts,
            attention_weights=dict(result.attention_weights) if result is not None else {},
            contributions=dict(result.contributions) if result is not None else {},
        )

    def _consume(self, ctx: SearchContext, record: EvaluationRecord) -> None:
        state = ctx.state
        ctx.seen_hashes.add(record.graph_hash)
        state.population.append(record.index)
        if len(state.population) > self.config.search.population_size:
            if self.config.search.replacement == "aging":
                state.population.pop(0)
            else:  # worst-out; among equals the oldest goes
                worst = min(state.population, key=lambda i: (ctx.records[i].sort_fitness, i))
                state.population.remove(worst)
        state.consecutive_failures = 0 if record.ok else state.consecutive_failures + 1
        kind = str(record.mutation.get("kind"))
        state.mutation_counts[kind] = state.mutation_counts.get(kind, 0) + 1
        self.strategy.observe(ctx, record)

        previous_best = state.history[-1]["best_fitness"] if state.history else None
        population = [ctx.records[i] for i in state.population]
        fitnesses = [r.fitness for r in population if r.fitness is not None]  # the ok records'
        best = max([f for f in (previous_best, record.fitness) if f is not None], default=None)
        row = {
            "index": record.index,
            "fitness": record.fitness,
            "best_fitness": best,
            "population_mean": statistics.fmean(fitnesses) if fitnesses else None,
            "population_min": min(fitnesses) if fitnesses else None,
            "population_max": max(fitnesses) if fitnesses else None,
            "population_size": len(state.population),
            "parent": record.parent,
            "mutation": record.mutation.get("kind"),
            "fallback_from": record.mutation.get("fallback_from"),
            "pruned": len(record.mutation.get("pruned", [])),
            "graph_hash": record.graph_hash,
            "nodes": len(record.graph.nodes),
            "edges": len(record.graph.edges()),
            "wall_time": record.wall_time,
            "reused_from": record.reused_from,
            "metrics": record.metrics,
        }
        state.history.append(row)
        if record.ok and (previous_best is None or record.fitness > previous_best):
            pending = " (finalist re-scoring follows the budget)" if self.config.search.finalists.top_k else ""
            write_best(record, self.run_dir, name=self._best_name(), chosen_by=SINGLE_BEST + pending)
        self._log_tensorboard(row)

    def _check_failures(self, state: SearchState, batch: list[EvaluationRecord]) -> None:
        limit = self.config.search.max_consecutive_failures
        if state.consecutive_failures >= limit:
            last = batch[-1].error or "unknown error"
            raise SearchError(
                f"{state.consecutive_failures} fitness runs failed in a row (search.max_consecutive_failures="
                f"{limit}); last: {last.splitlines()[0]}"
            )

    # ------------------------------------------------------------------ helpers
    def _make_executor(self) -> Executor:
        # Decode the proxy videos once per search, here, into a store every worker maps (proxy fitness only).
        with_frame_store = getattr(self.fitness, "with_frame_store", None)
        if callable(with_frame_store):
            self.fitness = with_frame_store(self.run_dir / FRAME_STORE_DIR)
        return executor_for(self.config, self.fitness)

    def _progress_bar(self, *, initial: int, total: int, desc: str | None = None) -> Any:
        from tqdm import tqdm

        return tqdm(total=total, initial=initial, desc=desc or f"search {self.config.strategy}", unit="eval",
                    disable=not self.progress, dynamic_ncols=True)

    def _log_tensorboard(self, row: dict[str, Any]) -> None:
        if not self.config.tensorboard:
            return
        if self._tensorboard is None:
            from torch.utils.tensorboard import SummaryWriter

            self._tensorboard = SummaryWriter(str(self.run_dir / "tensorboard"))
        for key in ("fitness", "best_fitness", "population_mean"):
            if row[key] is not None:
                self._tensorboard.add_scalar(f"search/{key}", row[key], row["index"])


def executor_for(config: SearchConfig, fitness: FitnessFunction) -> Executor:
    """The executor ``config.executor`` describes, running ``fitness`` (at most ``search.batch_size`` trials at
    a time, since that is all a batch holds)."""
    ex = config.executor
    if ex.kind == "local" and ex.workers > config.search.batch_size:
        logger.warning("executor.workers=%d > search.batch_size=%d: only %d trials run at a time",
                    ex.workers, config.search.batch_size, config.search.batch_size)
    return make_executor(
        ex.kind, fitness, workers=min(ex.workers, config.search.batch_size),
        torch_threads=ex.torch_threads, ray_address=ex.ray_address, cpus_per_trial=ex.cpus_per_trial,
        gpus_per_trial=ex.gpus_per_trial, max_retries=ex.max_retries,
    )


def best_record(records: Iterable[EvaluationRecord]) -> EvaluationRecord | None:
    """The highest fitness; among equals the earliest evaluation."""
    ok = [r for r in records if r.ok]
    return max(ok, key=lambda r: (r.fitness, -r.index)) if ok else None


def write_best(record: EvaluationRecord, folder: str | Path, *, name: str, chosen_by: str = SINGLE_BEST,
               details: dict[str, Any] | None = None) -> None:
    """``best.yaml`` (our format) and ``best_official.json`` (nested lists), both with learned weights, and
    ``best_choice.json``, which says how the graph was chosen (``chosen_by`` plus ``details``).

    The official format has no place for attention sources: a best graph with some gets ``best.yaml`` only
    (and an older ``best_official.json`` of the folder is removed, so it never names another graph)."""
    graph = dataclasses.replace(record.graph_with_learned_weights(), name=f"{name}-eval{record.index}")
    folder = Path(folder)
    save_graph(graph, folder / "best.yaml")
    official = folder / "best_official.json"
    if graph.has_attention_sources:
        official.unlink(missing_ok=True)
    else:
        save_graph(graph, official, official=True)
    write_choice(folder, record, chosen_by=chosen_by, **(details or {}))
