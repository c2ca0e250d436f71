"""The study's figures (``study.png``, ``proxy_vs_test.png``, ``choices.png``) and ``study.md``."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping, Sequence

from assemblenet import provenance
from assemblenet.search.history import SearchRun
from assemblenet.search.plotting import STRATEGY_COLOURS, finish_figure, new_figure, strategy_colour
from assemblenet.search.study.config import ENDPOINTS, RESCORED_CHOICE, SINGLE_BEST_CHOICE
from assemblenet.search.study.confirmatory import COMPLETE, verdict
from assemblenet.search.study.results import (
    MACHINE_NOT_RECORDED,
    Correlation,
    GraphSpread,
    RecipesSection,
    RetrainSection,
    StudyAnalysis,
    TrainingNoiseSplit,
)


def plot_study(runs: Sequence[SearchRun], analysis: StudyAnalysis, path: Path) -> None:
    """Best fitness so far against the number of evaluations: per strategy the mean over seeds and its 95%
    bootstrap band, one colour per strategy (the paper's comparison figure)."""
    figure = new_figure(6.4, 4.2)
    axes = figure.add_subplot()
    plotted = False
    for k, (strategy, entry) in enumerate(analysis.strategies.items()):
        curve = entry.curve
        if curve is None:
            continue
        colour = strategy_colour(strategy, k)
        x = list(curve.evaluations)
        mean, low, high = ([math.nan if v is None else v for v in band] for band in (curve.mean, curve.low, curve.high))
        label = f"{strategy} ({entry.complete}/{entry.runs} runs finished)"
        axes.plot(x, mean, color=colour, linewidth=1.8, label=label)
        axes.fill_between(x, low, high, color=colour, alpha=0.18, linewidth=0)
        plotted = True
    axes.set_xlabel("number of evaluations")
    axes.set_ylabel("best fitness so far")
    axes.set_title(f"{analysis.name}: mean over seeds, 95% bootstrap band")
    finish_figure(figure, axes, path, legend_loc="lower right", legend=plotted)


def plot_proxy_vs_test(retrain: RetrainSection, path: Path) -> None:
    figure = new_figure(5.2, 4.4)
    axes = figure.add_subplot()
    order = list(STRATEGY_COLOURS) + sorted({s for p in retrain.graphs for s in p.strategies}
                                            - set(STRATEGY_COLOURS))
    labelled: set[str] = set()
    for point in retrain.graphs:
        strategy = point.strategies[0] if len(point.strategies) == 1 else "shared"
        colour = "k" if strategy == "shared" else strategy_colour(strategy, order.index(strategy))
        axes.scatter(point.proxy_fitness, point.test_score, color=colour, s=28, alpha=0.8,
                     label=None if strategy in labelled else strategy)
        labelled.add(strategy)
    corr = retrain.correlation
    text = ", ".join(f"{name} {value:.2f}" for name, value in (("Pearson r", corr.pearson_r),
                                                                ("Spearman ρ", corr.spearman_rho))
                     if value is not None) or "too few graphs for a correlation"
    axes.set_title(f"proxy vs test ({corr.n} graphs): {text}", fontsize="small")
    axes.set_xlabel("proxy fitness (search)")
    axes.set_ylabel(f"test {retrain.metric} (retrained)")
    finish_figure(figure, axes, path)


def plot_choices(retrain: RetrainSection, path: Path) -> None:
    """Per run: the single best graph's test score against the re-scored choice's (one point per run)."""
    figure = new_figure(4.8, 4.6)
    axes = figure.add_subplot()
    pairs: dict[str, dict[str, Mapping[str, Any]]] = {}
    for e in retrain.entries:
        pairs.setdefault(e["run"], {})[e["choice"]] = e
    order = list(STRATEGY_COLOURS)
    # each graph's std over training seeds
    spread = {h: g.std for h, g in retrain.training_noise.per_graph.items()} if retrain.training_noise else {}
    labelled: set[str] = set()
    values = []
    for p in pairs.values():
        if SINGLE_BEST_CHOICE not in p or RESCORED_CHOICE not in p:
            continue
        a, b = p[SINGLE_BEST_CHOICE], p[RESCORED_CHOICE]
        strategy = a["strategy"]
        same = a["graph_hash"] == b["graph_hash"]
        colour = strategy_colour(strategy, order.index(strategy) if strategy in order else 0)
        axes.errorbar(a["score"], b["score"], xerr=spread.get(a["graph_hash"], 0.0),
                      yerr=spread.get(b["graph_hash"], 0.0), color=colour,
                      marker="o" if not same else "x", markersize=5, alpha=0.8, elinewidth=0.6, linestyle="none",
                      label=None if strategy in labelled else strategy)
        labelled.add(strategy)
        values += [a["score"], b["score"]]
    if values:
        low, high = min(values), max(values)
        pad = 0.05 * (high - low or 1.0)
        axes.plot([low - pad, high + pad], [low - pad, high + pad], color="0.5", lw=0.8, ls="--")
    axes.set_xlabel(f"single best graph: test {retrain.metric}")
    axes.set_ylabel(f"re-scored choice: test {retrain.metric}")
    axes.set_title("per run (x: both choices are one graph; bars: ±1 std over training seeds);\n"
                   "above the line: re-scoring chose better", fontsize="x-small")
    finish_figure(figure, axes, path)


def _f(value: Any, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _ci(pair: Sequence[float] | None, digits: int = 4) -> str:
    return "-" if not pair else f"[{_f(pair[0], digits)}, {_f(pair[1], digits)}]"


def _p(value: float | None) -> str:
    return "-" if value is None else (f"{value:.3g}" if value >= 0.001 else f"{value:.1e}")


def study_markdown(analysis: StudyAnalysis) -> str:
    cfg = analysis.config
    budget = analysis.budget
    lines = [f"# Search study: {analysis.name}", ""]
    lines += [f"Base search config `{cfg['search']}`; strategies {', '.join(cfg['strategies'])}; seeds "
              f"{', '.join(map(str, cfg['seeds']))}; {budget} evaluations per run; "
              f"{analysis.bootstrap_samples} bootstrap resamples. Intervals are 95%.", ""]
    lines += _provenance_markdown(analysis)
    searched = any(r.exists for r in analysis.runs)  # a study may run only other stages (proxy validity)
    incomplete = [r.run for r in analysis.runs if not r.complete]
    if incomplete and searched:
        lines += [f"**Incomplete or missing runs** (analysed as far as they go): {', '.join(incomplete)}.", ""]
    lines += _confirmatory_markdown(analysis)

    lines += ["## Exploratory", "",
              "Everything below was not declared before the study ran: descriptive statistics and uncorrected tests "
              "that suggest, never confirm. A p-value here is shown only once every run it covers has finished.", ""]
    if searched:
        lines += _search_markdown(analysis)
    else:
        lines += [f"No search run of this study has started ({len(analysis.runs)} (strategy, seed) runs configured): "
                  "the search sections (best fitness, comparisons, mutations, cost, runs) are left out; the stages "
                  "that ran are below.", ""]
    lines += _wall_time_markdown(analysis)

    if analysis.recipes is not None:
        lines += _recipes_markdown(analysis.recipes)
    if analysis.retrain is not None:
        lines += _retrain_markdown(analysis.retrain)

    baselines = analysis.baselines
    if baselines is not None and baselines.baselines:
        steps = "the config's epochs" if baselines.steps is None else f"{baselines.steps} steps"
        seeds = baselines.training_seeds
        seeds_text = f", training seeds {', '.join(map(str, seeds))} (none of them a recipe seed)" if seeds else ""
        lines += ["### Fixed wirings (modality table)", "",
                  f"Trained exactly as the retrained graphs ({steps}{seeds_text}); score `{baselines.metric}` on "
                  "the same split.", "", "| wiring | seeds | score (mean ± std) | 95% CI (t) | per seed |",
                  "|---|---|---|---|---|"]
        for name, wiring in baselines.baselines.items():
            lines.append(f"| {name} | {wiring.n} | {_f(wiring.mean)} ± {_f(wiring.std)} | {_ci(wiring.ci95_t)} "
                         f"| {', '.join(_f(v) for v in wiring.scores)} |")
        lines += [""]

    if analysis.proxy_validity:
        from assemblenet.search.study.proxy_validity import proxy_validity_markdown

        lines += proxy_validity_markdown(analysis.proxy_validity)

    if searched:
        lines += _runs_markdown(analysis)
    return "\n".join(lines) + "\n"


def _search_markdown(analysis: StudyAnalysis) -> list[str]:
    """The exploratory sections about the searches themselves: curves, final bests, comparisons, mutations, cost."""
    budget = analysis.budget
    lines: list[str] = []
    lines += ["### Best fitness against evaluations", "",
              "Mean over seeds of the best fitness found so far; the band is the 95% percentile bootstrap band of "
              "that mean (seeds resampled). An exhausted run keeps its final best to the end of the budget.", "",
              "![best fitness so far against evaluations](study.png)", ""]

    target = analysis.random_final_best_mean
    reach_head = (f"evaluations to reach random's final best {_f(target)}: median (reached/seeds)"
                  if target is not None else "evaluations to reach random's final best")
    lines += ["### Final best fitness", "",
              "| strategy | seeds (finished/all) | final best (mean ± std) | 95% CI (bootstrap) | 95% CI (t) "
              f"| {reach_head} |",
              "|---|---|---|---|---|---|"]
    for strategy, entry in analysis.strategies.items():
        reach = entry.evals_to_reach_random
        reach_text = "-" if reach is None else (
            f"{_f(reach.median, 1) if reach.median is not None else f'not reached (>{budget})'} "
            f"({reach.reached}/{reach.of})")
        lines.append(f"| {strategy} | {entry.complete}/{entry.runs} | {_f(entry.final_best_mean)} "
                     f"± {_f(entry.final_best_std)} "
                     f"| {_ci(entry.final_best_ci95_bootstrap)} | {_ci(entry.final_best_ci95_t)} "
                     f"| {reach_text} |")
    lines += ["", "Final best: over the finished runs only (an unfinished run has no final best yet). "
              "Evaluations to reach: per seed, the first number of evaluations after which the best so far is at "
              "least random search's mean final best; the median counts seeds that never reach it as infinitely "
              "many.", ""]

    lines += ["### Guided evolution against each strategy", ""]
    if analysis.comparisons:
        lines += ["Guided `evolution` against each other strategy, paired by search seed (runs with one seed share "
                  "their initial population): the mean of the per-seed differences with its paired bootstrap "
                  "interval, the one-sided sign-flip permutation test (exact over the 2^n sign assignments; "
                  "alternative: guided is higher) and the Wilcoxon signed-rank test as a second view. Uncorrected.",
                  "", "| comparison | endpoint | pairs | mean difference | 95% CI (paired bootstrap) | permutation p "
                  "| Wilcoxon p |", "|---|---|---|---|---|---|---|"]
        for c in analysis.comparisons:
            lines.append(f"| {c.a} vs {c.b} | {c.endpoint} | {c.n_pairs} | {_f(c.mean_difference)} "
                         f"| {_ci(c.difference_ci95_bootstrap)} | {_p(c.permutation_p)} "
                         f"| {_p(c.wilcoxon_p)} |")
        lines.append("")
    for pending in analysis.comparisons_pending:
        counts = ", ".join(f"{s} {pending.have[s]}/{pending.need[s]} runs" for s in (pending.a, pending.b))
        lines.append(f"- {pending.a} vs {pending.b} ({pending.endpoint}): waiting for runs to finish ({counts}).")
    if analysis.comparisons_pending:
        lines.append("")
    if not analysis.comparisons and not analysis.comparisons_pending:
        lines += ["No comparison: the study needs `evolution` and another strategy.", ""]

    lines += ["### Mutations", "",
              "Counts of `mutation.kind` over the children (evaluations with a parent), all runs of a strategy; "
              "initial, random and fallback graphs have no parent.", "",
              "| strategy | children | by kind | connection share (observed / configured) |", "|---|---|---|---|"]
    for strategy, entry in analysis.strategies.items():
        m = entry.mutations
        kinds = ", ".join(f"{k} {v}" for k, v in m.children_by_kind.items()) or "-"
        share = entry.connection_share
        share_text = "-" if share is None else (
            f"{_f(share.observed, 3)} ({share.connection}/{share.children})"
            f" / {_f(share.configured, 3)}")
        lines.append(f"| {strategy} | {m.children} | {kinds} | {share_text} |")
    lines += [""]

    lines += ["### Cost", "",
              "Evaluations run, and those copied from an identical evaluation (same graph, same trial seed) of another "
              "run of the study (`reuse_evaluations`); fitness time summed over the evaluations run (seconds per "
              "evaluation, not wall time: workers run several at once).", "",
              "Finalist re-scoring: its evaluations (run / copied), their fitness time, and the runs whose "
              "re-scored choice differs from their single best graph.", "",
              "| strategy | evaluations | run | reused | fitness time (s) | s / evaluation run "
              "| finalist evaluations (run) | finalist time (s) | choice changed |",
              "|---|---|---|---|---|---|---|---|---|"]
    for strategy, entry in analysis.strategies.items():
        cost = entry.cost
        rescores = entry.rescoring
        changed = f"{rescores.changed_choice}/{rescores.runs}" if rescores.runs else "-"
        lines.append(f"| {strategy} | {cost.evaluations} | {cost.run} | {cost.reused} "
                     f"| {_f(cost.wall_time_s, 0)} | {_f(cost.mean_wall_time_s, 1)} "
                     f"| {cost.finalist_evaluations} ({cost.finalist_run}) "
                     f"| {_f(cost.finalist_wall_time_s, 0)} | {changed} |")
    lines += [""]
    drops = {s: e.rescoring.single_best_drop_mean for s, e in analysis.strategies.items()
             if e.rescoring.single_best_drop_mean is not None}
    if drops:
        lines += ["The winner's curse: each run's single best graph, evaluated again with the fresh finalist seeds, "
                  "scored below its search score by " + ", ".join(f"{_f(v)} ({s})" for s, v in drops.items())
                  + " on average.", ""]
    return lines


def _wall_time_markdown(analysis: StudyAnalysis) -> list[str]:
    lines: list[str] = []
    stages = analysis.stage_wall_time_s
    if stages:
        lines.append("Wall time per stage, summed over every invocation of the command (one killed mid-stage counts "
                     "up to its last logged row): " + ", ".join(
                         f"{name} {seconds / 60:.1f} min" for name, seconds in stages.items())
                     + f"; {sum(stages.values()) / 60:.1f} min in all.")
        untagged = analysis.stage_wall_time_untagged_rows
        if untagged:
            lines.append(f"These figures undercount: {untagged} log rows were written before rows named their "
                         "invocation, and an invocation of theirs killed mid-stage is not counted (the command's "
                         "own output has its timestamps).")
        lines.append("")

    return lines


def _runs_markdown(analysis: StudyAnalysis) -> list[str]:
    budget = analysis.budget
    lines: list[str] = []
    rescoring = any(r.rescored_index is not None for r in analysis.runs)
    head = "| run | evaluations | complete | final best | found at |"
    lines += ["### Runs", ""]
    if rescoring:
        lines += ["Re-scored choice: the evaluation finalist re-scoring chose and its mean over the fresh seeds (the "
                  "single best's own score is the final best).", ""]
    lines += [head + (" re-scored choice (mean) |" if rescoring else ""),
              "|---|---|---|---|---|" + ("---|" if rescoring else "")]
    for r in analysis.runs:
        row = (f"| {r.run} | {r.evaluations}/{budget}{' (exhausted)' if r.exhausted else ''} "
               f"| {'yes' if r.complete else 'no'} | {_f(r.final_best)} | {_f(r.best_index)} |")
        if rescoring:
            index = r.rescored_index
            row += " - |" if index is None else f" {index} ({_f(r.rescored_mean)}) |"
        lines.append(row)
    return lines


def _retrain_markdown(retrain: RetrainSection) -> list[str]:
    steps = "the config's epochs" if retrain.steps is None else f"{retrain.steps} steps"
    recipe = f" (recipe `{retrain.recipe}`, lr {_f(retrain.lr, 3)})" if retrain.recipe else ""
    lines = ["### Retrained graphs", "",
             f"Each run's single best graph and, where the search re-scored its finalists, its re-scored choice, "
             f"trained from scratch for {steps}{recipe}, {retrain.training_seeds} training seed(s) each, with "
             f"the study's overrides; score: `{retrain.metric}` on the evaluation split of the overrides (a run's "
             "score is the mean over its graph's training seeds). Identical graphs were trained once.", ""]
    done, expected = len(retrain.entries), retrain.expected_entries
    if done < expected:
        runs = len({e["run"] for e in retrain.entries})
        lines += [f"**Partial: {done} of the {expected} choices of the finished runs are retrained so far ({runs} "
                  "runs); every figure in this section covers those only.**", ""]
    if retrain.stale:
        lines += [f"Left out (their graph or the recipe changed since they were retrained): "
                  f"{', '.join(retrain.stale)}.", ""]
    lines += ["| strategy | graph | runs | test score (mean ± std) | 95% CI (bootstrap) | 95% CI (t) |",
              "|---|---|---|---|---|---|"]
    for choice, per_strategy in retrain.by_choice.items():
        for strategy, summary in per_strategy.items():
            lines.append(f"| {strategy} | {choice} | {summary.n} | {_f(summary.mean)} ± {_f(summary.std)} "
                         f"| {_ci(summary.ci95_bootstrap)} | {_ci(summary.ci95_t)} |")
    if retrain.comparisons:
        lines += ["", f"Guided evolution against each strategy on the test score of the search results "
                  f"({retrain.result_choice} graphs), paired by search seed: mean of the per-seed differences with "
                  "its paired bootstrap interval, one-sided sign-flip permutation test (guided is higher) and "
                  "Wilcoxon signed-rank test. Uncorrected.", "",
                  "| comparison | pairs | mean difference | 95% CI (paired bootstrap) | permutation p | Wilcoxon p |",
                  "|---|---|---|---|---|---|"]
        for c in retrain.comparisons:
            lines.append(f"| {c.a} vs {c.b} | {c.n_pairs} | {_f(c.mean_difference)} "
                         f"| {_ci(c.difference_ci95_bootstrap)} | {_p(c.permutation_p)} "
                         f"| {_p(c.wilcoxon_p)} |")
    choices = retrain.choice_comparison
    if choices:
        lines += ["", "#### Single best against finalist re-scoring", "",
                  "Test score of the re-scored choice minus that of the single best proxy evaluation, paired by run "
                  "(a run whose two choices are the same graph counts as 0). p: sign-flip permutation tests over the "
                  "runs (exact up to 16 runs).", "",
                  "| runs of | runs | same graph | single best | re-scored | difference | 95% CI (bootstrap) "
                  "| p (re-scored better) | p (two-sided) |", "|---|---|---|---|---|---|---|---|---|"]
        for name, pair in choices.items():
            lines.append(f"| {name} | {pair.runs} | {pair.same_graph} | {_f(pair.single_best_mean)} "
                         f"| {_f(pair.rescored_mean)} | {_f(pair.mean_difference)} "
                         f"| {_ci(pair.difference_ci95_bootstrap)} | {_p(pair.p_rescored_better)} "
                         f"| {_p(pair.p_two_sided)} |")
        lines += ["", "![single best against re-scored choice, per run](choices.png)"]
    noise = retrain.training_noise
    if noise is not None:
        lines += ["", "#### Training-seed spread", "",
                  f"Over {noise.graphs} distinct retrained graphs: the standard deviation of one graph's test score "
                  f"across its training seeds is {_f(noise.mean_std)} on average (largest range "
                  f"{_f(noise.max_range)})."]
        if isinstance(noise, TrainingNoiseSplit):
            within_share: Any = noise.within_share
            lines[-1] += (f" Split of one training's score variance: training seeds {_f(noise.within_std)} "
                          f"(std), differences between graphs {_f(noise.between_std)} (std); training-seed noise "
                          f"is {100 * within_share:.0f}% of it, so "
                          + ("**training-seed noise, not the choice of graph, dominates**."
                             if noise.training_noise_dominates else
                             "the choice of graph matters more than the training seed."))
        lines += _per_graph_spread_markdown(retrain.entries, noise.per_graph)
    lines += ["", f"Proxy fitness against test score over {retrain.correlation.n} distinct graphs: "
              + _correlation_text(retrain.correlation)]
    rescored = retrain.correlation_rescored
    if rescored is not None:
        lines[-1] += (f" Re-scored mean fitness against test score over the {rescored.n} re-scored choices: "
                      + _correlation_text(rescored))
    lines += [""]
    if retrain.graphs:
        lines += ["![proxy fitness against test score](proxy_vs_test.png)", ""]
    return lines


def _correlation_text(corr: Correlation) -> str:
    return (f"Pearson r = {_f(corr.pearson_r, 3)} (p = {_p(corr.pearson_p)}), Spearman ρ = "
            f"{_f(corr.spearman_rho, 3)} (p = {_p(corr.spearman_p)}).")


def _per_graph_spread_markdown(entries: Sequence[Mapping[str, Any]],
                               per_graph: Mapping[str, GraphSpread]) -> list[str]:
    """Every retrained graph's scores over its training seeds, widest range first (folded: it is long)."""
    chosen_by: dict[str, list[str]] = {}
    for e in entries:
        chosen_by.setdefault(str(e["graph_hash"]), []).append(f"{e['run']} ({e['choice']})")
    lines = ["", "<details><summary>Every retrained graph's training seeds (widest range first)</summary>", "",
             "| graph | chosen by | scores per training seed | mean ± std | range |", "|---|---|---|---|---|"]
    for digest, g in sorted(per_graph.items(), key=lambda item: -item[1].range):
        scores = ", ".join(_f(v, 3) for v in g.scores)
        lines.append(f"| `{digest[:10]}` | {'; '.join(chosen_by.get(digest, []))} | {scores} "
                     f"| {_f(g.mean, 3)} ± {_f(g.std, 3)} | {_f(g.range, 3)} |")
    return lines + ["", "</details>"]


def _recipes_markdown(recipes: RecipesSection) -> list[str]:
    lines = ["### Final-training recipe", "",
             f"Fixed wirings {', '.join(recipes.graphs)}, {recipes.seeds} training seeds each (the same seeds "
             "for every recipe). Pooled std: the spread of one training's score around its graph's mean; the mean's "
             "interval resamples training seeds within each graph.", "",
             "| recipe | steps | lr | pooled std | mean | 95% CI (bootstrap) | per graph: mean ± std |",
             "|---|---|---|---|---|---|---|"]
    for name, row in recipes.candidates.items():
        per_graph = "; ".join(f"{g} {_f(v.mean, 3)} ± {_f(v.std, 3)}" for g, v in row.graphs.items())
        lines.append(f"| {name}{'' if row.complete else ' (incomplete)'} | {_f(row.steps)} "
                     f"| {_f(row.lr, 3) if row.lr is not None else 'config'} | {_f(row.pooled_std)} "
                     f"| {_f(row.mean)} | {_ci(row.ci95_bootstrap)} | {per_graph} |")
    chosen = recipes.chosen
    lines += ["", (f"Chosen for retraining (`retrain.recipe: auto`): **{chosen}**, by {recipes.rule}."
                   if chosen else "No recipe chosen yet: some candidates are incomplete."), ""]
    return lines


def _code_line(state: Mapping[str, Any]) -> str:
    return provenance.describe({"commit": state.get("commit") or provenance.UNKNOWN, "dirty": state.get("dirty"),
                                "diff_sha256": state.get("diff_sha256")})


def _provenance_markdown(analysis: StudyAnalysis) -> list[str]:
    """Which code and config produced the study: every distinct state its invocations ran with, and a plain
    statement when one ran from uncommitted changes (``--allow-dirty``)."""
    states = analysis.provenance.invocations
    lines = []
    if states:
        parts = [f"{_code_line(s.to_dict())}, config {str(s.config_hash)[:12]} ({s.invocations} invocation(s): "
                 f"{', '.join(map(str, s.stages))}; machine(s): {'; '.join(s.machines) or MACHINE_NOT_RECORDED})"
                 for s in states]
        lines.append("Code and config of the invocations: " + "; ".join(parts) + ".")
    analysed = analysis.provenance.analysed_with
    if analysed:
        lines.append(f"Analysed with {_code_line(analysed)}; config hash {str(analysis.config_hash)[:12]}.")
    machines = sorted({m for s in states for m in s.machines if m != MACHINE_NOT_RECORDED})
    unrecorded = any(MACHINE_NOT_RECORDED in s.machines for s in states)
    if len(machines) > 1:
        lines.append(f"**The invocations ran on {len(machines)} machines ({'; '.join(machines)})"
                     + (", and some logged none" if unrecorded else "") + ".** Other CPUs run other kernels, whose "
                     "float32 sums differ in the last bits, and a training amplifies that as another seed would: a "
                     "run continued on another machine is not the run one machine would have made, though neither "
                     "is favoured.")
    dirty = [s for s in states if s.dirty is True]
    if dirty:
        lines.append(f"**{len(dirty)} of these code states had uncommitted changes (run with `--allow-dirty`): "
                     "the results they produced cannot be reproduced from a commit; the diff hashes above identify "
                     "the code.**")
    return lines + [""] if lines else []


def _arm_text(arm: Mapping[str, Any]) -> str:
    return f"`{arm['strategy']}`" if arm.get("strategy") is not None else f"fixed wiring `{arm['wiring']}`"


def _confirmatory_markdown(analysis: StudyAnalysis) -> list[str]:
    """``## Hypotheses`` (as declared in the config) and ``## Confirmatory results`` (exactly those, counts only
    until every run they need has finished)."""
    confirmatory = analysis.confirmatory
    lines = ["## Hypotheses (pre-registered)", ""]
    if not confirmatory:
        return lines + ["None declared in the study config (`hypotheses.confirmatory`): every result of this study "
                        "is exploratory.", ""]
    registration = analysis.registration or {}
    if registration.get("runs_with_data_before_registration"):
        late = registration["runs_with_data_before_registration"]
        lines += [f"**Declared after {len(late)} run(s) already had data (the folder predates its hypotheses): these "
                  "hypotheses were not fixed before the data, so the results below are exploratory in fact.**", ""]
    elif registration:
        lines += [f"Registered at the study's first invocation ({_code_line(registration.get('provenance') or {})}, "
                  f"config {str(registration.get('config_hash'))[:12]}); a later invocation with other hypotheses is "
                  "refused once any run has data.", ""]
    if registration and registration.get("config_hash") not in (None, analysis.config_hash):
        lines += [f"The config has changed since registration (hash {str(registration['config_hash'])[:12]} -> "
                  f"{str(analysis.config_hash)[:12]}; the hypotheses did not).", ""]
    lines += ["| name | hypothesis | endpoint | comparison (a vs b) | design | test | alternative | alpha | margin |",
              "|---|---|---|---|---|---|---|---|---|"]
    for h in confirmatory["declared"]:
        a, b = h["comparison"]["a"], h["comparison"]["b"]
        paired = a.get("strategy") is not None and b.get("strategy") is not None
        margin = "-" if h["margin"] is None else f"±{h['margin']:g}"
        lines.append(f"| {h['name']} | {h['statement'] or '-'} | {h['endpoint']} | {_arm_text(a)} vs {_arm_text(b)} "
                     f"| {'paired by search seed' if paired else 'independent samples'} | {h['test']} "
                     f"| {h['alternative']} | {h['alpha']:g} | {margin} |")
    correction = confirmatory["correction"]
    endpoints = sorted({h["endpoint"] for h in confirmatory["declared"]})
    lines += ["", "Endpoints: " + "; ".join(f"`{e}`: {ENDPOINTS[e]}" for e in endpoints) + ".",
              f"Correction over the {len(confirmatory['members'])} tests of the family: "
              + {"holm": "Holm (step-down; family-wise error at alpha)", "bonferroni": "Bonferroni",
                 "none": "none (each test at its own alpha)"}[correction]
              + ". A margin adds an equivalence test (two one-sided tests, TOST) to the family.", ""]

    lines += ["## Confirmatory results", ""]
    members = confirmatory["members"]
    pending = [m for m in members if m["status"] != COMPLETE]
    if pending:
        lines += [f"**Not every run these hypotheses need has finished: {len(pending)} of {len(members)} tests are "
                  "pending.** A pending test shows counts only (no estimate, no interval, no p-value); the "
                  "correction and the decisions wait for the whole family.", "",
                  "| test | a: finished | b: finished |", "|---|---|---|"]
        for m in pending:
            a, b = m["progress"]
            lines.append(f"| {m['member']} | {a['arm']} {a['have']}/{a['need']} {a['unit']} "
                         f"| {b['arm']} {b['have']}/{b['need']} {b['unit']} |")
        lines.append("")
    done = [m for m in members if m["status"] == COMPLETE]
    if done:
        adjusted = f"p ({correction})" if correction != "none" else "p (uncorrected)"
        lines += ["| test | n | mean a | mean b | difference a - b | 95% CI | p | "
                  f"{adjusted} | second view | result |", "|---|---|---|---|---|---|---|---|---|---|"]
        for m in done:
            n = f"{m['n_pairs']} pairs" if m["paired"] else f"{m['n_a']} vs {m['n_b']}"
            second = m.get("second_view")
            second_text = "-" if not second else f"{second['test']} p {_p(second['p_value'])}"
            lines.append(f"| {m['member']} | {n} | {_f(m['mean_a'])} | {_f(m['mean_b'])} | {_f(m['estimate'])} "
                         f"| {_ci(m['ci95'])} | {_p(m['p_value'])} | {_p(m.get('p_adjusted'))} | {second_text} "
                         f"| {verdict(m)} |")
        lines += ["", "Intervals: paired bootstrap over search seeds (strategy vs strategy), or each side resampled "
                  "(vs a fixed wiring). An equivalence test's p is the larger of its two one-sided p-values. "
                  "\"Not shown\" means this study could not detect a difference of this size at its sample size; it "
                  "is not evidence that there is none.", ""]
    return lines
