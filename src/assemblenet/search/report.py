"""Search reports: ``report.md`` with fitness plots per run, an overlay per strategy (mean and spread over
seeds), and the best graph (``best.yaml``, ``best_official.json`` and its drawing).

A *run* is one folder written by :class:`~assemblenet.search.evolution.SearchRunner` (``<strategy>-seed<N>``);
a *search folder* holds runs. :func:`write_report` accepts either, several at once.
"""

from __future__ import annotations

import logging
import math
import re
import statistics
from pathlib import Path
from typing import Any, Sequence

from assemblenet import fileio
from assemblenet.graph.plot import plot_graph
from assemblenet.search.finalists import SINGLE_BEST
from assemblenet.search.history import SearchRun, find_runs
from assemblenet.search.plotting import finish_figure, new_figure, strategy_colour
from assemblenet.search.store import EvaluationRecord

__all__ = ["SearchRun", "best_curve_stats", "find_runs", "write_report"]

logger = logging.getLogger(__name__)


def write_report(folders: Sequence[str | Path], output: str | Path) -> Path:
    """Write ``report.md``, ``plots/*.png``, ``best.yaml`` and ``best_official.json`` into ``output``."""
    from assemblenet.search.evolution import write_best

    runs = find_runs(folders)
    output = Path(output)
    plots = output / "plots"
    plots.mkdir(parents=True, exist_ok=True)

    lines = ["# Search report", ""]
    lines += ["| run | strategy | seed | evaluations | failed | best fitness | found at | children by mutation kind |",
              "|---|---|---|---|---|---|---|---|"]
    for run in runs:
        failed = sum(1 for f in run.fitness if f is None)
        best = run.best
        found = str(best.index) if best else "-"
        best_text = f"{run.final_best:.4f}" if run.final_best is not None else "-"
        kinds = ", ".join(f"{k} {v}" for k, v in sorted(run.children_by_kind.items())) or "-"
        lines.append(f"| {run.label} | {run.strategy} | {run.seed} | {len(run.history)} | {failed} | {best_text} "
                     f"| {found} | {kinds} |")
    lines.append("")

    groups = _group_by_strategy(runs)
    if any(run.history for run in runs):
        _plot_overlay(groups, plots / "best_fitness.png")
        lines += ["## Best fitness against evaluations", "",
                  "Mean over the runs of each strategy; the band is the min-max spread "
                  "(curves are cut to the shortest run of the strategy).", "",
                  "![best fitness](plots/best_fitness.png)", ""]
        lines += _strategy_table(groups)
    lines += ["## Runs", ""]
    for run in runs:
        if not run.history:
            lines += [f"### {run.label}", "", "No finished evaluations yet.", ""]
            continue
        image = plots / f"run_{_slug(run.label)}.png"
        _plot_run(run, image)
        lines += [f"### {run.label}", "",
                  "Each dot is one evaluation; the line is the best so far; the band is the population's "
                  "fitness range and the dashed line its mean.", "",
                  f"![{run.label}](plots/{image.name})", ""]
        lines += _finalists_table(run)

    best_run, best = _overall_best(runs)
    if best is not None and best_run is not None:
        finalists = best_run.finalists
        if finalists:
            top = finalists["finalists"][0]
            how = (f"Chosen by finalist re-scoring: the top {finalists['top_k']} distinct graphs of "
                   f"`{best_run.label}` were evaluated again with {finalists['seeds']} fresh seeds each; this one "
                   f"has the highest mean, {_mean_std(top)} (its search score {top['search_fitness']:.4f}). ")
            details = {"mean": top["mean"], "std": top["std"], "evaluations": top["evaluations"],
                       "top_k": finalists["top_k"], "seeds": finalists["seeds"], "run": best_run.label}
            chosen_by = finalists["chosen_by"]
        else:
            how = "Chosen by its single proxy evaluation (no finalist re-scoring: `search.finalists.top_k` is 0). "
            details, chosen_by = {"run": best_run.label}, SINGLE_BEST
        write_best(best, output, name=f"{best_run.label.replace('/', '-')}", chosen_by=chosen_by, details=details)
        lines += ["## Best graph", "", how,
                  f"Fitness {best.fitness:.4f}, evaluation {best.index} of `{best_run.label}` "
                  f"(mutation: {best.mutation.get('kind')}, parent: {best.parent}). "
                  + ("`best.yaml` (our format) holds it with its learned connection weights and its attention "
                     "sources, which the official nested lists cannot hold; `assemblenet train` accepts it."
                     if best.graph.has_attention_sources else
                     "`best.yaml` (our format) and `best_official.json` (official nested lists) hold it with its "
                     "learned connection weights; `assemblenet train` accepts either."), ""]
        if _plot_best_graph(best, plots / "best_graph.png"):
            lines += ["![best graph](plots/best_graph.png)", ""]
        lines += ["```", best.graph_with_learned_weights().summary(), "```", ""]
    report = output / "report.md"
    fileio.atomic_write_text(report, "\n".join(lines))
    fileio.atomic_write_json(output / "summary.json", _summary(groups))
    return report


# ---------------------------------------------------------------------- statistics
def _group_by_strategy(runs: list[SearchRun]) -> dict[str, list[SearchRun]]:
    groups: dict[str, list[SearchRun]] = {}
    for run in runs:
        groups.setdefault(run.strategy, []).append(run)
    return groups


def best_curve_stats(runs: list[SearchRun]) -> tuple[list[float], list[float], list[float], list[float]]:
    """Mean, standard deviation, min and max of the best-so-far curves, cut to the shortest run."""
    curves = [run.curve for run in runs if run.history]
    length = min((len(c) for c in curves), default=0)
    mean: list[float] = []
    std: list[float] = []
    low: list[float] = []
    high: list[float] = []
    for step in range(length):
        values = [c[step] for c in curves if not math.isnan(c[step])]
        if not values:
            for series in (mean, std, low, high):
                series.append(math.nan)
            continue
        mean.append(statistics.fmean(values))
        std.append(statistics.pstdev(values) if len(values) > 1 else 0.0)
        low.append(min(values))
        high.append(max(values))
    return mean, std, low, high


def _strategy_table(groups: dict[str, list[SearchRun]]) -> list[str]:
    summary = _summary(groups)
    counts = sorted({int(n) for stats in summary.values() for n in stats["best_so_far_mean_at"]})
    from assemblenet.search.stats import bootstrap_mean_ci, format_interval

    header = "| strategy | runs | final best (mean ± std) | 95% interval over seeds | min | max |" + "".join(
        f" best after {n} (mean ± std) |" for n in counts)
    lines = [header, "|---|---|---|---|---|---|" + "---|" * len(counts)]
    intervals = {}
    for strategy, stats in summary.items():
        if stats["final_best_mean"] is None:
            lines.append(f"| {strategy} | {stats['runs']} | - | - | - | - |" + " - |" * len(counts))
            continue
        interval = bootstrap_mean_ci(stats["final_best"])
        intervals[strategy] = interval
        interval_text = format_interval(interval, 4) if len(stats["final_best"]) > 1 else "- (one seed)"
        at_counts = ""
        for n in counts:
            mean, std = stats["best_so_far_mean_at"].get(str(n)), stats["best_so_far_std_at"].get(str(n))
            at_counts += " - |" if mean is None else f" {mean:.4f} ± {std:.4f} |"
        lines.append(
            f"| {strategy} | {stats['runs']} | {stats['final_best_mean']:.4f} ± {stats['final_best_std']:.4f} "
            f"| {interval_text} | {stats['final_best_min']:.4f} | {stats['final_best_max']:.4f} |" + at_counts
        )
    lines.append("")
    if len(intervals) > 1:
        lines.append("The intervals describe each strategy's mean; whether two intervals overlap is not a test of "
                     "their difference. For tests (paired by search seed, pre-registered hypotheses), run the "
                     "strategies as a study: `assemblenet search-study`.")
        lines.append("")
    return lines


def _checkpoint_counts(length: int) -> list[int]:
    """Evaluation counts at which the table reports the best so far: a quarter, half, three quarters, all."""
    return sorted({n for n in (length // 4, length // 2, 3 * length // 4, length) if n >= 1})


def _summary(groups: dict[str, list[SearchRun]]) -> dict[str, Any]:
    summary = {}
    for strategy, runs in groups.items():
        finals = [r.final_best for r in runs if r.final_best is not None]
        summary[strategy] = {
            "runs": len(runs),
            "seeds": [r.seed for r in runs],
            "evaluations": [len(r.history) for r in runs],
            "final_best": finals,
            "final_best_mean": statistics.fmean(finals) if finals else None,
            "final_best_std": statistics.pstdev(finals) if len(finals) > 1 else 0.0 if finals else None,
            "final_best_min": min(finals) if finals else None,
            "final_best_max": max(finals) if finals else None,
        }
        # Best so far after n evaluations (over the runs that reached n), for comparing equal budgets.
        mean, std, _, _ = best_curve_stats(runs)
        summary[strategy]["best_so_far_mean_at"] = {
            str(n): None if math.isnan(mean[n - 1]) else mean[n - 1] for n in _checkpoint_counts(len(mean))}
        summary[strategy]["best_so_far_std_at"] = {
            str(n): None if math.isnan(std[n - 1]) else std[n - 1] for n in _checkpoint_counts(len(mean))}
    return summary


def _overall_best(runs: list[SearchRun]) -> tuple[SearchRun | None, EvaluationRecord | None]:
    """The report's graph: the re-scored finalist with the highest mean among runs that re-scored (a mean of
    fresh evaluations is not comparable with a single search score); else the single best evaluation."""
    rescored = [(run, f) for run in runs if (f := run.finalists) and f["finalists"]]
    if rescored:
        run, _ = max(rescored, key=lambda pair: pair[1]["finalists"][0]["mean"])
        return run, run.chosen_record()
    best_run, best, best_fitness = None, None, -math.inf
    for run in runs:
        record = run.best
        if record is not None and record.fitness is not None and (best is None or record.fitness > best_fitness):
            best_run, best, best_fitness = run, record, record.fitness
    return best_run, best


def _mean_std(row: dict[str, Any]) -> str:
    std = f" ± {row['std']:.4f}" if row.get("std") is not None else ""
    return f"{row['mean']:.4f}{std} (n={row['evaluations']})"


def _finalists_table(run: SearchRun) -> list[str]:
    finalists = run.finalists
    if not finalists:
        return []
    lines = [f"Finalist re-scoring: the top {finalists['top_k']} distinct graphs, each evaluated with "
             f"{finalists['seeds']} fresh seeds ({finalists['evaluations_run']} evaluations run, "
             f"{finalists['wall_time']:.0f} s of fitness time); ranked by the mean of those, the first is the "
             "run's result.", "",
             "| rank | evaluation | search fitness | re-scored mean ± std (n) |", "|---|---|---|---|"]
    for row in finalists["finalists"]:
        lines.append(f"| {row['rank']} | {row['search_index']} | {row['search_fitness']:.4f} | {_mean_std(row)} |")
    return lines + [""]


# ---------------------------------------------------------------------- figures
def _plot_run(run: SearchRun, path: Path) -> None:
    figure = new_figure(6.4, 4.0)
    axes = figure.add_subplot()
    steps = [row["index"] for row in run.history]
    ok = [(row["index"], row["fitness"]) for row in run.history if row["fitness"] is not None]
    if ok:
        axes.scatter([i for i, _ in ok], [f for _, f in ok], s=10, alpha=0.5, label="evaluation")
    axes.plot(steps, run.curve, color="C3", label="best so far")
    mean = [math.nan if row["population_mean"] is None else row["population_mean"] for row in run.history]
    low = [math.nan if row["population_min"] is None else row["population_min"] for row in run.history]
    high = [math.nan if row["population_max"] is None else row["population_max"] for row in run.history]
    axes.plot(steps, mean, color="C2", linestyle="--", label="population mean")
    axes.fill_between(steps, low, high, color="C2", alpha=0.15, label="population range")
    axes.set_xlabel("evaluation")
    axes.set_ylabel("fitness")
    axes.set_title(run.label)
    finish_figure(figure, axes, path, legend_loc="lower right")


def _plot_overlay(groups: dict[str, list[SearchRun]], path: Path) -> None:
    figure = new_figure(6.4, 4.0)
    axes = figure.add_subplot()
    for k, (strategy, runs) in enumerate(sorted(groups.items())):
        mean, _, low, high = best_curve_stats(runs)
        if not mean:
            continue
        steps = list(range(len(mean)))
        color = strategy_colour(strategy, k)
        axes.plot(steps, mean, color=color, label=f"{strategy} (n={len(runs)})")
        axes.fill_between(steps, low, high, color=color, alpha=0.2)
    axes.set_xlabel("evaluation")
    axes.set_ylabel("best fitness so far")
    finish_figure(figure, axes, path, legend_loc="lower right")


def _plot_best_graph(record: EvaluationRecord, path: Path) -> bool:
    try:
        plot_graph(record.graph_with_learned_weights(), path)
    except Exception as exc:  # noqa: BLE001 - a figure must never fail the report
        logger.warning("best-graph figure skipped: %s", exc)
        return False
    return path.is_file()


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)
