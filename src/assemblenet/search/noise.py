"""How much signal a fitness gives the search: re-evaluate one graph under several trial seeds.

It reports the spread of the fitness (the noise a tournament has to see through) and how well the learned
connection weights agree between seeds (the information the guided connection mutation relies on). Usage::

    python -m assemblenet.search.noise configs/search/synthetic_compare.yaml RUN_DIR [--seeds 4] [--index I]

``RUN_DIR`` is a search run folder; its best evaluation (or ``--index``) is the graph re-evaluated.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import statistics
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

from assemblenet.graph.spec import AssembleNetGraph
from assemblenet.search.fitness import FitnessFunction


@dataclass(frozen=True)
class NoiseReport:
    seeds: list[int]
    fitness: list[float]
    fitness_mean: float
    fitness_std: float
    weights_mean: float
    weights_std: float  # spread of the multi-input edge weights around their mean, over all seeds
    weight_seed_correlation: float  # mean Pearson correlation of the edge weights between pairs of seeds
    edges: int


def pearson(a: Sequence[float], b: Sequence[float]) -> float:
    mean_a, mean_b = statistics.fmean(a), statistics.fmean(b)
    cov = sum((x - mean_a) * (y - mean_b) for x, y in zip(a, b))
    var_a = sum((x - mean_a) ** 2 for x in a)
    var_b = sum((y - mean_b) ** 2 for y in b)
    return cov / math.sqrt(var_a * var_b) if var_a > 0 and var_b > 0 else math.nan


def measure_fitness_noise(fitness: FitnessFunction, graph: AssembleNetGraph, seeds: Sequence[int]) -> NoiseReport:
    """Evaluate ``graph`` once per seed; weights of single-input edges (always 1.0) are left out."""
    results = [fitness(graph, seed=seed) for seed in seeds]
    edges = sorted(e for e, w in results[0].learned_weights.items() if len(graph.predecessors(e[1])) > 1)
    vectors = [[r.learned_weights[e] for e in edges] for r in results]
    pairs = [pearson(vectors[i], vectors[j]) for i in range(len(vectors)) for j in range(i + 1, len(vectors))]
    pairs = [p for p in pairs if not math.isnan(p)]
    values = [w for vector in vectors for w in vector]
    fitnesses = [r.fitness for r in results]
    return NoiseReport(
        seeds=list(seeds), fitness=fitnesses, fitness_mean=statistics.fmean(fitnesses),
        fitness_std=statistics.stdev(fitnesses) if len(fitnesses) > 1 else 0.0,
        weights_mean=statistics.fmean(values) if values else math.nan,
        weights_std=statistics.pstdev(values) if values else math.nan,
        weight_seed_correlation=statistics.fmean(pairs) if pairs else math.nan, edges=len(edges),
    )


def main(argv: Sequence[str] | None = None) -> int:
    from assemblenet.search.config import load_search_config
    from assemblenet.search.fitness import build_fitness
    from assemblenet.search.report import RunData, find_runs
    from assemblenet.search.store import RunStore

    parser = argparse.ArgumentParser(prog="python -m assemblenet.search.noise", description=__doc__.split("\n")[0])
    parser.add_argument("config")
    parser.add_argument("run_dir")
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--index", type=int, help="evaluation to re-run (default: the run's best)")
    parser.add_argument("--steps", type=int, help="proxy-training steps per run (default: the config's)")
    parser.add_argument("--json", help="also write the report here")
    args = parser.parse_args(argv)
    config = load_search_config(args.config)
    if args.index is None:
        run: RunData = find_runs([args.run_dir])[0]
        record = run.best_record()
    else:
        record = RunStore(Path(args.run_dir)).read_record(args.index)
    assert record is not None, "the run has no successful evaluation"
    fitness = build_fitness(config)
    if args.steps is not None:  # e.g. does a longer proxy make the learned weights informative?
        fitness = dataclasses.replace(fitness, steps=args.steps)
    report = measure_fitness_noise(fitness, record.graph, [1000 + k for k in range(args.seeds)])
    steps = getattr(fitness, "steps", None)
    text = json.dumps({"run_dir": str(args.run_dir), "index": record.index, "steps": steps, **asdict(report)},
                      indent=1)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
