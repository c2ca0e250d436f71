"""How much signal a proxy fitness gives the search, over a grid of proxy settings.

For each (proxy steps, connection learning-rate multiplier) cell it measures:

- (a) ``weight_agreement``: how well the learned *relative* connection weights of a reference graph agree
  between trial seeds (mean pairwise Pearson r of ``log w - mean log w`` over each node's inputs; the
  per-node common scale is removed because training cannot fix it, see ``PruneRule``), averaged over the
  ``--references`` reference graphs (the first random graphs; default one);
- (b) ``seed_std``: the fitness standard deviation of a reference graph across seeds (the noise a tournament
  sees), pooled over the references;
- (c) ``graph_std``: the fitness standard deviation across random graphs of the space, one seed each (the
  signal); ``signal_to_noise`` = (c) / (b);
- (d) ``seconds_per_eval``; and how many edges the relative prune rule condemns per graph.

With ``--contribution-batches N`` (default 4) the proxy also measures each edge's contribution (the RMS of its
term in the target's fused input, ``TrainResult.connection_contributions``), and every cell reports (a) and the
condemned edges for the contributions too (``contribution_agreement``, ``condemned_by_contribution``).

Usage (resumable: every evaluation is appended to ``OUTPUT/evaluations.jsonl`` and reused on rerun)::

    assemblenet proxy-noise CONFIG --steps 24,48,96 --lr-multipliers 1,10,30 \\
        --seeds 4 --graphs 16 [--references 3] --output OUTPUT
    assemblenet proxy-noise CONFIG --cells 24x10,48x10,96x10,48x1 ...   # chosen cells only
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from assemblenet.errors import ConfigError
from assemblenet.fileio import atomic_write_json, atomic_write_text, json_safe
from assemblenet.graph.spec import AssembleNetGraph
from assemblenet.search.fitness import FitnessFunction, FitnessResult, ProxyTrainingFitness

Edge = tuple[int, int]


def pearson(a: Sequence[float], b: Sequence[float]) -> float:
    mean_a, mean_b = statistics.fmean(a), statistics.fmean(b)
    cov = sum((x - mean_a) * (y - mean_b) for x, y in zip(a, b))
    var_a = sum((x - mean_a) ** 2 for x in a)
    var_b = sum((y - mean_b) ** 2 for y in b)
    return cov / math.sqrt(var_a * var_b) if var_a > 0 and var_b > 0 else math.nan


def relative_log_weights(graph: AssembleNetGraph, weights: Mapping[Edge, float]) -> dict[Edge, float]:
    """``log w - mean(log w)`` over each multi-input node's inputs: invariant to the node's common scale."""
    out: dict[Edge, float] = {}
    for target in range(len(graph.nodes)):
        inputs = [s for s in graph.predecessors(target) if (s, target) in weights]
        if len(inputs) > 1:
            logs = {s: math.log(max(weights[(s, target)], 1e-12)) for s in inputs}
            mean = statistics.fmean(logs.values())
            out.update({(s, target): v - mean for s, v in logs.items()})
    return out


def weight_agreement(graph: AssembleNetGraph, runs: Sequence[Mapping[Edge, float]]) -> float:
    """Mean pairwise Pearson r of the relative log weights between runs of the same graph."""
    vectors = [relative_log_weights(graph, w) for w in runs]
    edges = sorted(set.intersection(*(set(v) for v in vectors))) if vectors else []
    pairs = [pearson([vectors[i][e] for e in edges], [vectors[j][e] for e in edges])
             for i in range(len(vectors)) for j in range(i + 1, len(vectors))]
    pairs = [p for p in pairs if not math.isnan(p)]
    return statistics.fmean(pairs) if pairs else math.nan


@dataclass(frozen=True)
class CellReport:
    steps: int
    lr_multiplier: float
    weight_agreement: float
    seed_fitness: list[float]
    seed_std: float
    graph_fitness: list[float]
    graph_std: float
    signal_to_noise: float
    seconds_per_eval: float
    condemned_per_graph: float  # edges the relative prune rule condemns (without make-up), mean over graphs
    relative_spread: float  # std of the relative log weights over all multi-input edges and runs
    contribution_agreement: float = math.nan  # (a) for the measured contributions (NaN: none measured)
    condemned_by_contribution: float = math.nan  # the relative rule applied to the contributions
    reference_fitness: list[list[float]] = dataclasses.field(default_factory=list)  # per reference graph, per seed


def summarise_cell(steps: int, multiplier: float, references: Sequence[AssembleNetGraph],
                   seed_results: Sequence[Sequence[FitnessResult]], graphs: Sequence[AssembleNetGraph],
                   graph_results: Sequence[FitnessResult], rule: Any) -> CellReport:
    """One cell from its runs: ``seed_results[k]`` are reference graph ``k`` under every trial seed. (a) is the
    mean over the references; (b) pools their variances (the root of the mean variance)."""
    by_reference = [[r.fitness for r in runs] for runs in seed_results]
    variances = [statistics.variance(f) for f in by_reference if len(f) > 1]
    seed_std = math.sqrt(statistics.fmean(variances)) if variances else math.nan
    graph_fitness = [r.fitness for r in graph_results]
    graph_std = statistics.stdev(graph_fitness) if len(graph_fitness) > 1 else math.nan
    no_makeup = dataclasses.replace(rule, min_pruned=0)
    condemned = [len(no_makeup.select(g, r.learned_weights)) for g, r in zip(graphs, graph_results)]
    spread = [v for g, r in zip(graphs, graph_results) for v in relative_log_weights(g, r.learned_weights).values()]
    every = [r for runs in seed_results for r in runs] + list(graph_results)
    times = [r.wall_time for r in every]

    def agreement(signal: Callable[[FitnessResult], Mapping[Edge, float]]) -> float:
        values = [weight_agreement(g, [signal(r) for r in runs]) for g, runs in zip(references, seed_results)]
        values = [v for v in values if not math.isnan(v)]
        return statistics.fmean(values) if values else math.nan

    measured = all(r.contributions for r in every)
    by_contribution = (statistics.fmean(len(no_makeup.select(g, r.contributions))
                                        for g, r in zip(graphs, graph_results))
                       if measured else math.nan)
    return CellReport(
        steps=steps, lr_multiplier=multiplier,
        weight_agreement=agreement(lambda r: r.learned_weights),
        seed_fitness=by_reference[0], seed_std=seed_std, graph_fitness=graph_fitness, graph_std=graph_std,
        signal_to_noise=graph_std / seed_std if seed_std > 0 else math.inf,
        seconds_per_eval=statistics.fmean(times), condemned_per_graph=statistics.fmean(condemned),
        relative_spread=statistics.pstdev(spread) if spread else math.nan,
        contribution_agreement=agreement(lambda r: r.contributions) if measured else math.nan,
        condemned_by_contribution=by_contribution, reference_fitness=by_reference,
    )


def measure_fitness_noise(fitness: FitnessFunction, graph: AssembleNetGraph, seeds: Sequence[int]) -> dict[str, Any]:
    """One graph under several seeds: fitness spread and the seed agreement of its relative weights."""
    results = [fitness(graph, seed=seed) for seed in seeds]
    fitnesses = [r.fitness for r in results]
    return {"fitness": fitnesses, "fitness_std": statistics.stdev(fitnesses) if len(fitnesses) > 1 else 0.0,
            "weight_agreement": weight_agreement(graph, [r.learned_weights for r in results])}


class _Cache:
    """Evaluations already done, keyed by (steps, multiplier, graph hash, seed); one JSON line each."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows: dict[str, FitnessResult] = {}
        if path.is_file():
            for line in path.read_text().splitlines():
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line cut by a kill: that evaluation is redone
                self.rows[row["key"]] = FitnessResult.from_dict(row["result"])

    @staticmethod
    def key(steps: int, multiplier: float, graph: AssembleNetGraph, seed: int) -> str:
        return f"{steps}|{multiplier:g}|{graph.canonical_hash()}|{seed}"

    def add(self, key: str, result: FitnessResult) -> None:
        self.rows[key] = result
        with open(self.path, "a", encoding="utf-8") as handle:  # append-only log; a torn last line is skipped
            handle.write(json.dumps({"key": key, "result": result.to_dict()}) + "\n")
            handle.flush()


def run_grid(config: Any, *, steps: Sequence[int], multipliers: Sequence[float], seeds: int, graphs: int,
             output: Path, reference_seed: int = 0, progress: bool = True, contribution_batches: int = 4,
             references: int = 1, cells: Sequence[tuple[int, float]] | None = None,
             make_fitness: Callable[[int, float], FitnessFunction] | None = None) -> list[CellReport]:
    """Measure every cell (see the module docstring): every (steps, multiplier) pair, or the given ``cells``;
    ``make_fitness(steps, multiplier)`` replaces the config's proxy (tests)."""
    from tqdm import tqdm

    from assemblenet.search.executors import Trial, make_executor
    from assemblenet.search.fitness import build_fitness
    from assemblenet.search.mutations import rule_from_config
    from assemblenet.search.space import SearchSpace

    output.mkdir(parents=True, exist_ok=True)
    space = SearchSpace(config.space)
    rng = random.Random(reference_seed)
    sample = [space.sample(rng) for _ in range(graphs)]
    cache = _Cache(output / "evaluations.jsonl")
    if make_fitness is None:
        if config.fitness.kind != "proxy-training":
            raise ConfigError("fitness.kind: the noise grid varies proxy training; it needs 'proxy-training'")
        base = build_fitness(config)
        assert isinstance(base, ProxyTrainingFitness)  # fitness.kind is proxy-training (checked above)

        def make_fitness(steps: int, multiplier: float) -> FitnessFunction:
            overrides = {**base.overrides, "optim.connection_lr_multiplier": multiplier,
                         "train.contribution_batches": contribution_batches}
            return dataclasses.replace(base, steps=steps, overrides=overrides)
    if not 1 <= references <= graphs:
        raise ConfigError(f"references: must be between 1 and the number of graphs ({graphs}), got {references}")
    reference_graphs = sample[:references]
    cell = ([(g, 1000 + k) for g in reference_graphs for k in range(seeds)] + [(g, 0) for g in sample])
    grid = list(cells) if cells is not None else [(s, m) for s in steps for m in multipliers]
    ex = config.executor
    reports = []
    jobs = [(s, m, g, seed) for s, m in grid for g, seed in cell]
    bar = tqdm(total=len(jobs), disable=not progress, desc="noise grid", unit="eval")
    bar.update(sum(_Cache.key(s, m, g, seed) in cache.rows for s, m, g, seed in jobs))
    for s, m in grid:
        fitness = make_fitness(s, m)
        todo = [(k, g, seed) for k, (g, seed) in enumerate(cell) if _Cache.key(s, m, g, seed) not in cache.rows]
        if todo:
            executor = make_executor(ex.kind, fitness, workers=ex.workers, torch_threads=ex.torch_threads,
                                     ray_address=ex.ray_address, cpus_per_trial=ex.cpus_per_trial,
                                     gpus_per_trial=ex.gpus_per_trial)
            try:
                for outcome in executor.run([Trial(k, g, seed) for k, g, seed in todo]):
                    if outcome.result is None:
                        raise RuntimeError(f"evaluation failed: {outcome.error}")
                    g, seed = cell[outcome.index]
                    cache.add(_Cache.key(s, m, g, seed), outcome.result)
                    bar.update(1)
            finally:
                executor.close()
        results = [cache.rows[_Cache.key(s, m, g, seed)] for g, seed in cell]
        runs = [results[k * seeds:(k + 1) * seeds] for k in range(references)]
        reports.append(summarise_cell(s, m, reference_graphs, runs, sample, results[references * seeds:],
                                      rule_from_config(config.mutation)))
        atomic_write_json(output / "noise_grid.json", json_safe({
            "config": config.to_dict(), "seeds": seeds, "graphs": graphs, "references": references,
            "cells": [dataclasses.asdict(r) for r in reports]}))
    bar.close()
    return reports


def grid_markdown(reports: Sequence[CellReport]) -> str:
    lines = ["| steps | conn. lr x | r, weights (a) | r, contributions | fitness std, 1 graph x seeds (b) | "
             "fitness std, random graphs (c) | (c)/(b) | condemned / graph, weights | condemned / graph, "
             "contributions | s / eval |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in reports:
        lines.append(f"| {r.steps} | {r.lr_multiplier:g} | {r.weight_agreement:.2f} "
                     f"| {_num(r.contribution_agreement, 2)} "
                     f"| {r.seed_std:.4f} | {r.graph_std:.4f} | {r.signal_to_noise:.1f} | {r.condemned_per_graph:.1f} "
                     f"| {_num(r.condemned_by_contribution, 1)} | {r.seconds_per_eval:.1f} |")
    return "\n".join(lines) + "\n"


def _num(value: float, digits: int) -> str:
    return "-" if math.isnan(value) else f"{value:.{digits}f}"


def write_grid_markdown(reports: Sequence[CellReport], output: Path) -> str:
    """Write ``OUTPUT/noise_grid.md`` (``run_grid`` writes ``noise_grid.json``) and return the table."""
    table = grid_markdown(reports)
    atomic_write_text(output / "noise_grid.md", table)
    return table


def parse_cells(text: str) -> list[tuple[int, float]]:
    """``24x10,48x1`` -> ``[(24, 10.0), (48, 1.0)]``; a malformed list is a ConfigError naming it."""
    try:
        return [(int(steps), float(multiplier)) for steps, multiplier in (cell.split("x") for cell in text.split(","))]
    except ValueError:
        raise ConfigError(f"--cells: expected STEPSxMULTIPLIER pairs such as 24x10,48x1, got {text!r}") from None
