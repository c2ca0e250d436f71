"""The study's statistics: strategies over seeds (curves, final best, evaluations to reach random search's best,
tests of guided evolution against the others), the retrained graphs' test scores (single best against re-scored
choice, training-seed spread), and the final-training recipes. Pure functions of what the runner collected."""

from __future__ import annotations

import math
import statistics
import time
import zlib
from typing import Any, Mapping, Sequence

from assemblenet.search import stats
from assemblenet.search.config import SearchConfig
from assemblenet.search.history import SearchRun
from assemblenet.search.registry import strategy_spec
from assemblenet.search.study.config import (
    BASELINE,
    CONFIDENCE,
    GUIDED,
    RESCORED_CHOICE,
    SINGLE_BEST_CHOICE,
    STUDY_FORMAT,
    StudyConfig,
    TrainingSettings,
)


def is_connection_kind(kind: str) -> bool:
    """``connection`` and its variants (``connection-guided``, ``connection-random``, ``connection-matched``)."""
    return kind == "connection" or kind.startswith("connection-") or kind.startswith("connection_")


def analyse_runs(runs: Sequence[SearchRun], config: StudyConfig, base: SearchConfig) -> dict[str, Any]:
    """The study's statistics (the content of ``study.json`` without the retrain section)."""
    samples = config.bootstrap_samples
    strategies = [s for s in config.strategies if any(r.strategy == s for r in runs)]
    by_strategy = {s: [r for r in runs if r.strategy == s] for s in strategies}
    # A run's final best is its best within the whole budget: an unfinished run has none yet.
    finals = {s: [r.final_best for r in rs if r.complete and r.final_best is not None]
              for s, rs in by_strategy.items()}

    target = statistics.fmean(finals[BASELINE]) if finals.get(BASELINE) else None
    probabilities = dict(base.mutation.probabilities)
    configured_share = probabilities.get("connection", 0.0) / sum(probabilities.values())

    out_strategies: dict[str, Any] = {}
    for s, rs in by_strategy.items():
        seed = _stable_seed(s)
        values = finals[s]
        entry: dict[str, Any] = {
            "runs": len(rs), "seeds": [r.seed for r in rs], "complete": sum(r.complete for r in rs),
            "final_best": [r.final_best for r in rs],
        }
        if values:
            boot = stats.bootstrap_mean_ci(values, samples=samples, confidence=CONFIDENCE, seed=seed)
            t = stats.t_interval(values, confidence=CONFIDENCE)
            entry.update({
                "final_best_mean": boot.estimate,
                "final_best_std": statistics.stdev(values) if len(values) > 1 else 0.0,
                "final_best_ci95_bootstrap": boot.to_list(),
                "final_best_ci95_t": t.to_list() if t is not None else None,
            })
        else:
            entry.update({"final_best_mean": None, "final_best_std": None, "final_best_ci95_bootstrap": None,
                          "final_best_ci95_t": None})
        if target is not None:
            per_seed = [stats.evals_to_reach(r.curve, target) for r in rs]
            entry["evals_to_reach_random"] = {
                "target": target, "per_seed": per_seed, "median": stats.median_evals(per_seed),
                "reached": sum(v is not None for v in per_seed), "of": len(per_seed),
            }
        else:
            entry["evals_to_reach_random"] = None
        curves = [r.padded_curve(config.max_evaluations) for r in rs if r.exists]
        if curves:
            mean, low, high = stats.bootstrap_curve_band(curves, samples=samples, confidence=CONFIDENCE, seed=seed)
            entry["curve"] = {"evaluations": list(range(1, config.max_evaluations + 1)), "mean": mean,
                              "low": low, "high": high,
                              "seeds_with_value": [sum(1 for c in curves if not math.isnan(c[i]))
                                                   for i in range(config.max_evaluations)]}
        else:
            entry["curve"] = None
        children: dict[str, int] = {}
        everything: dict[str, int] = {}
        for r in rs:
            c, e = r.mutation_counts()
            for k, v in c.items():
                children[k] = children.get(k, 0) + v
            for k, v in e.items():
                everything[k] = everything.get(k, 0) + v
        n_children = sum(children.values())
        entry["mutations"] = {"children": n_children, "children_by_kind": dict(sorted(children.items())),
                              "all_by_kind": dict(sorted(everything.items()))}
        if strategy_spec(s).mutates:
            connection = sum(v for k, v in children.items() if is_connection_kind(k))
            entry["connection_share"] = {
                "children": n_children, "connection": connection,
                "observed": connection / n_children if n_children else None, "configured": configured_share,
            }
        records = [rec for r in rs for rec in r.records]
        ran = [rec for rec in records if rec.reused_from is None]
        finalist_records = [rec for r in rs for rec in r.finalist_records.values()]
        finalists_ran = [rec for rec in finalist_records if rec.reused_from is None]
        entry["cost"] = {
            "evaluations": len(records), "run": len(ran), "reused": len(records) - len(ran),
            "wall_time_s": sum(rec.wall_time for rec in ran),
            "mean_wall_time_s": statistics.fmean(rec.wall_time for rec in ran) if ran else None,
            "finalist_evaluations": len(finalist_records), "finalist_run": len(finalists_ran),
            "finalist_wall_time_s": sum(rec.wall_time for rec in finalists_ran),
        }
        drops = [drop for r in rs if (drop := _single_best_drop(r)) is not None]
        entry["rescoring"] = {
            "runs": sum(1 for r in rs if r.finalists is not None),
            "changed_choice": sum(1 for r in rs if r.rescored is not None and r.best is not None
                                  and r.rescored.graph_hash != r.best.graph_hash),
            # the winner's curse: the single best graph's search score minus its mean over fresh seeds
            "single_best_drop": drops, "single_best_drop_mean": statistics.fmean(drops) if drops else None,
        }
        out_strategies[s] = entry

    comparisons: list[dict[str, Any]] = []
    pending: list[dict[str, Any]] = []
    endpoints = ["final_best"] + (["rescored_mean"] if any(r.rescored_summary for r in runs) else [])
    if GUIDED in by_strategy:
        for other in strategies:
            if other == GUIDED:
                continue
            for endpoint in endpoints:
                row = paired_comparison(GUIDED, other, endpoint, by_strategy, samples=samples,
                                        seed=_stable_seed(f"{GUIDED}-{other}-{endpoint}"))
                (comparisons if "p_value" in row else pending).append(row)

    return {
        "format": STUDY_FORMAT,
        "name": config.name,
        "created": time.time(),
        "config": config.to_dict(),
        "search_config": str(config.search_path),
        "budget": config.max_evaluations,
        "confidence": CONFIDENCE,
        "bootstrap_samples": samples,
        "band": "95% percentile bootstrap band of the mean over seeds (seeds resampled), step by step",
        "random_final_best_mean": target,
        "runs": [{
            "strategy": r.strategy, "seed": r.seed, "run": r.label, "path": str(r.path),
            "exists": r.exists, "evaluations": r.evaluations, "complete": r.complete, "exhausted": r.exhausted,
            "final_best": r.final_best, "best_index": r.best.index if r.best is not None else None,
            "best_graph_hash": r.best.graph_hash if r.best is not None else None,
            "rescored_index": r.rescored.index if r.rescored is not None else None,
            "rescored_graph_hash": r.rescored.graph_hash if r.rescored is not None else None,
            "rescored_mean": (r.rescored_summary or {}).get("mean"),
        } for r in runs],
        "strategies": out_strategies,
        "comparisons": comparisons,
        "comparisons_pending": pending,
    }


def paired_comparison(a: str, b: str, endpoint: str, by_strategy: Mapping[str, Sequence[SearchRun]], *,
                      samples: int, seed: int, retrain_entries: Sequence[Mapping[str, Any]] = ()) -> dict[str, Any]:
    """Strategy ``a`` against ``b`` on ``endpoint`` (one value per run), paired by search seed (runs with one seed
    share their initial population): mean of the per-seed differences with its paired bootstrap interval, the
    one-sided sign-flip permutation test (H1: a is higher) and the Wilcoxon signed-rank test as a second view.
    Until every run of both strategies has its value the row holds counts only (no p-value: an interim test is
    not reported)."""
    from assemblenet.search.study.confirmatory import strategy_values

    runs = [*by_strategy.get(a, ()), *by_strategy.get(b, ())]
    values = {s: strategy_values(s, endpoint, runs, retrain_entries) for s in (a, b)}
    need = {s: len(by_strategy.get(s, ())) for s in (a, b)}
    row: dict[str, Any] = {"a": a, "b": b, "endpoint": endpoint, "paired": True, "alternative": "greater",
                           "have": {s: len(values[s]) for s in (a, b)}, "need": need}
    keys = sorted(set(values[a]) & set(values[b]))
    if any(len(values[s]) < need[s] for s in (a, b)) or len(keys) < 2:
        return row
    x, y = [values[a][k] for k in keys], [values[b][k] for k in keys]
    diffs = [u - v for u, v in zip(x, y)]
    interval = stats.paired_bootstrap_ci(x, y, samples=samples, confidence=CONFIDENCE, seed=seed)
    perm = stats.paired_permutation_test(diffs, alternative="greater", seed=seed)
    wilcoxon = stats.wilcoxon_signed_rank(diffs, alternative="greater")
    row.update({"n_pairs": len(keys), "seeds": keys, "n_a": len(x), "n_b": len(y),
                "mean_a": statistics.fmean(x), "mean_b": statistics.fmean(y),
                "mean_difference": interval.estimate, "difference_ci95_bootstrap": interval.to_list(),
                "differences": diffs, "p_value": perm.p_value, "permutation_p": perm.p_value,
                "permutation_exact": perm.exact, "wilcoxon_statistic": wilcoxon.statistic,
                "wilcoxon_p": wilcoxon.p_value, "wilcoxon_exact": wilcoxon.exact})
    return row


def _single_best_drop(run: SearchRun) -> float | None:
    """The run's single best graph: its search score minus its re-scored mean (None without re-scoring)."""
    if not run.finalists or run.best is None:
        return None
    row = next((f for f in run.finalists["finalists"] if f["graph_hash"] == run.best.graph_hash), None)
    if row is None or not row.get("evaluations"):
        return None
    return float(run.best.fitness) - float(row["mean"])  # type: ignore[arg-type]


def _score_summary(values: Sequence[float], samples: int, seed_text: str) -> dict[str, Any]:
    boot = stats.bootstrap_mean_ci(values, samples=samples, confidence=CONFIDENCE, seed=_stable_seed(seed_text))
    t = stats.t_interval(values, confidence=CONFIDENCE)
    return {"n": len(values), "scores": list(values), "mean": boot.estimate,
            "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "ci95_bootstrap": boot.to_list(), "ci95_t": t.to_list() if t is not None else None}


def retrain_statistics(entries: Sequence[Mapping[str, Any]], config: StudyConfig, *, stale: Sequence[str] = (),
                       settings: TrainingSettings | None = None, expected: int | None = None) -> dict[str, Any]:
    """Test scores of the retrained graphs (``expected``: how many choices the finished runs have, of which
    ``entries`` may be only the part retrained so far).

    - ``by_choice``: per choice (the run's single best graph; its finalist re-scoring choice) and strategy, the
      test score over runs (each run's score is the mean over its graph's training seeds);
    - ``strategies``: the same for each run's result (the re-scored choice where the run has one), and
      ``comparisons`` guided evolution against the others on it, paired by search seed (over the seeds both have
      retrained: exploratory; one-sided sign-flip permutation and Wilcoxon signed-rank tests);
    - ``choice_comparison``: re-scored minus single best, paired by run, per strategy and over all runs (mean,
      bootstrap interval, exact sign-flip tests);
    - ``training_noise``: each distinct graph's spread over its training seeds and the split of one training's
      score variance into training-seed noise and differences between graphs;
    - ``correlation``: proxy fitness against test score over the distinct graphs (and the re-scored mean's).
    """
    samples = config.bootstrap_samples
    entries = [dict(e, choice=e.get("choice", SINGLE_BEST_CHOICE)) for e in entries]
    by_choice: dict[str, dict[str, Any]] = {}
    for choice in (SINGLE_BEST_CHOICE, RESCORED_CHOICE):
        per_strategy = {}
        for s in config.strategies:
            values = [float(e["score"]) for e in entries if e["choice"] == choice and e["strategy"] == s]
            if values:
                per_strategy[s] = _score_summary(values, samples, f"retrain-{choice}-{s}")
        if per_strategy:
            by_choice[choice] = per_strategy
    result_choice = RESCORED_CHOICE if RESCORED_CHOICE in by_choice else SINGLE_BEST_CHOICE
    results: dict[str, Mapping[str, Any]] = {}
    for e in entries:
        if e["choice"] == RESCORED_CHOICE or e["run"] not in results:
            results[e["run"]] = e
    result_scores: dict[str, list[float]] = {}
    for e in results.values():
        result_scores.setdefault(str(e["strategy"]), []).append(float(e["score"]))
    strategies = {s: _score_summary(result_scores[s], samples, f"retrain-{s}")
                  for s in config.strategies if s in result_scores}
    comparisons = []
    by_seed: dict[str, dict[int, float]] = {}
    for e in results.values():
        by_seed.setdefault(str(e["strategy"]), {})[int(e["seed"])] = float(e["score"])
    retrained_all = expected is None or len(entries) >= expected  # no test on a partial retrain
    if retrained_all and len(by_seed.get(GUIDED, {})) > 1:
        for other in strategies:
            if other == GUIDED:
                continue
            keys = sorted(set(by_seed[GUIDED]) & set(by_seed.get(other, {})))
            if len(keys) < 2:
                continue
            a, b = [by_seed[GUIDED][k] for k in keys], [by_seed[other][k] for k in keys]
            seed = _stable_seed(f"test-{GUIDED}-{other}")
            diffs = [u - v for u, v in zip(a, b)]
            perm = stats.paired_permutation_test(diffs, alternative="greater", seed=seed)
            wilcoxon = stats.wilcoxon_signed_rank(diffs, alternative="greater")
            diff = stats.paired_bootstrap_ci(a, b, samples=samples, confidence=CONFIDENCE, seed=seed)
            comparisons.append({"a": GUIDED, "b": other, "n_pairs": len(keys), "seeds": keys, "paired": True,
                                "alternative": "greater", "mean_difference": diff.estimate,
                                "difference_ci95_bootstrap": diff.to_list(), "permutation_p": perm.p_value,
                                "permutation_exact": perm.exact, "wilcoxon_p": wilcoxon.p_value})
    return {
        "metric": config.retrain.metric,
        "steps": settings.steps if settings is not None else config.retrain.steps,
        "recipe": (settings.tag or None) if settings is not None else config.retrain.recipe,
        "lr": settings.lr if settings is not None else None,
        "training_seeds": config.retrain.seeds,
        "overrides": dict(settings.overrides if settings is not None else config.retrain.overrides),
        "entries": entries, "expected_entries": len(entries) if expected is None else expected,
        "stale": list(stale), "result_choice": result_choice, "by_choice": by_choice,
        "strategies": strategies, "comparisons": comparisons,
        "choice_comparison": _choice_comparison(entries, config),
        "training_noise": _training_noise(entries),
        **_correlations(entries),
    }


def _choice_comparison(entries: Sequence[Mapping[str, Any]], config: StudyConfig) -> dict[str, Any] | None:
    """Re-scored choice minus single best, paired by run (a run whose two choices are one graph gives 0)."""
    pairs: dict[str, dict[str, Mapping[str, Any]]] = {}
    for e in entries:
        pairs.setdefault(str(e["run"]), {})[str(e["choice"])] = e
    complete = [(p[SINGLE_BEST_CHOICE], p[RESCORED_CHOICE]) for p in pairs.values()
                if SINGLE_BEST_CHOICE in p and RESCORED_CHOICE in p]
    if not complete:
        return None
    out: dict[str, Any] = {}
    groups = [(s, [(a, b) for a, b in complete if a["strategy"] == s]) for s in config.strategies]
    for name, group in [*groups, ("all", complete)]:
        if not group:
            continue
        diffs = [float(b["score"]) - float(a["score"]) for a, b in group]
        seed = _stable_seed(f"choice-{name}")
        greater = stats.paired_permutation_test(diffs, alternative="greater", seed=seed)
        two_sided = stats.paired_permutation_test(diffs, alternative="two-sided", seed=seed)
        boot = stats.bootstrap_mean_ci(diffs, samples=config.bootstrap_samples, confidence=CONFIDENCE, seed=seed)
        out[name] = {
            "runs": len(diffs), "same_graph": sum(a["graph_hash"] == b["graph_hash"] for a, b in group),
            "single_best_mean": statistics.fmean(float(a["score"]) for a, _ in group),
            "rescored_mean": statistics.fmean(float(b["score"]) for _, b in group),
            "mean_difference": boot.estimate, "difference_ci95_bootstrap": boot.to_list(), "differences": diffs,
            "p_rescored_better": greater.p_value, "p_two_sided": two_sided.p_value, "exact": greater.exact,
        }
    return out


def _training_noise(entries: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """Each distinct graph's spread over its training seeds, and the variance split over graphs."""
    graphs: dict[str, list[float]] = {}
    for e in entries:
        graphs.setdefault(str(e["graph_hash"]), [float(v) for v in e.get("scores", [e["score"]])])
    spread: dict[str, dict[str, Any]] = {
        h: {"scores": v, "mean": statistics.fmean(v), "std": statistics.stdev(v), "range": max(v) - min(v)}
        for h, v in graphs.items() if len(v) > 1}
    if not spread:
        return None
    out: dict[str, Any] = {"graphs": len(spread), "per_graph": spread,
                           "mean_std": statistics.fmean(g["std"] for g in spread.values()),
                           "max_range": max(g["range"] for g in spread.values())}
    if len(spread) > 1:
        split = stats.variance_split(list(graphs[h] for h in spread))
        out.update({"within_variance": split.within, "between_variance": split.between,
                    "within_std": math.sqrt(split.within), "between_std": math.sqrt(split.between),
                    "within_share": split.within_share,
                    "training_noise_dominates": split.training_noise_dominates})
    return out


def _correlations(entries: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Proxy fitness against test score over the distinct graphs (entries sharing a graph are one point: mean
    proxy fitness, their shared score), and the re-scored mean fitness against test score over the re-scored
    choices."""
    graphs: dict[str, dict[str, Any]] = {}
    for entry in entries:
        graph = graphs.setdefault(str(entry["graph_hash"]), {"graph_hash": entry["graph_hash"], "runs": [],
                                                             "strategies": [], "proxy": [], "score": entry["score"],
                                                             "rescored": []})
        graph["runs"].append(entry["run"])
        graph["strategies"].append(entry["strategy"])
        graph["proxy"].append(float(entry["proxy_fitness"]))
        if entry.get("rescored_mean") is not None and entry["choice"] == RESCORED_CHOICE:
            graph["rescored"].append(float(entry["rescored_mean"]))
    points = [{"graph_hash": g["graph_hash"], "runs": sorted(set(g["runs"])),
               "strategies": sorted(set(g["strategies"])),
               "proxy_fitness": statistics.fmean(g["proxy"]), "test_score": float(g["score"]),
               "rescored_fitness": statistics.fmean(g["rescored"]) if g["rescored"] else None}
              for g in graphs.values()]

    def correlation(xs: list[float], ys: list[float]) -> dict[str, Any]:
        r, rho = stats.pearson(xs, ys), stats.spearman(xs, ys)
        return {"n": r.n, "pearson_r": r.r, "pearson_p": r.p_value, "spearman_rho": rho.r, "spearman_p": rho.p_value}

    rescored = [p for p in points if p["rescored_fitness"] is not None]
    return {"graphs": points,
            "correlation": correlation([p["proxy_fitness"] for p in points], [p["test_score"] for p in points]),
            "correlation_rescored": (correlation([p["rescored_fitness"] for p in rescored],
                                                 [p["test_score"] for p in rescored]) if len(rescored) > 2 else None)}


def recipe_statistics(measured: Mapping[str, Mapping[str, Sequence[float]]], config: StudyConfig) -> dict[str, Any]:
    """Per recipe candidate: each fixed graph's scores over the training seeds, their pooled standard deviation
    (the spread one training has around its graph's mean), and the mean score with a 95% bootstrap interval
    (training seeds resampled within each graph). ``chosen`` applies :func:`choose_recipe` once every candidate
    has every seed."""
    cfg = config.recipes
    candidates = {c.name: c for c in cfg.candidates}
    rows: dict[str, Any] = {}
    for name, per_graph in measured.items():
        graphs = {g: {"scores": list(v), "mean": statistics.fmean(v),
                      "std": statistics.stdev(v) if len(v) > 1 else None} for g, v in per_graph.items() if v}
        complete = all(len(per_graph.get(g, ())) >= cfg.seeds for g in cfg.graphs)
        variances = [statistics.variance(v) for v in per_graph.values() if len(v) > 1]
        row: dict[str, Any] = {"steps": candidates[name].steps or config.retrain.steps, "lr": candidates[name].lr,
                               "complete": complete, "graphs": graphs,
                               "pooled_std": math.sqrt(statistics.fmean(variances)) if variances else None}
        if graphs:
            interval = stats.bootstrap_stratified_ci([per_graph[g] for g in graphs], samples=config.bootstrap_samples,
                                                     confidence=CONFIDENCE, seed=_stable_seed(f"recipe-{name}"))
            row.update({"mean": interval.estimate, "ci95_bootstrap": interval.to_list()})
        rows[name] = row
    return {"graphs": list(cfg.graphs), "seeds": cfg.seeds, "candidates": rows, "chosen": choose_recipe(rows),
            "rule": RECIPE_RULE}


RECIPE_ALPHA = 0.05
RECIPE_RULE = ("the smallest pooled standard deviation over training seeds among the recipes not measurably below "
               "the highest mean (one-sided sign-flip permutation test of the paired differences, per fixed graph "
               f"and training seed, from the highest-mean recipe: p > {RECIPE_ALPHA}); ties: fewer steps")


def choose_recipe(rows: Mapping[str, Mapping[str, Any]]) -> str | None:
    """The recipe that makes a fixed graph's training seeds agree best without a measurably lower score
    (:data:`RECIPE_RULE`); None until every candidate is complete. Every candidate trains the same graphs with the
    same training seeds, so two recipes pair by (graph, seed): the test is on those differences, never on
    whether intervals overlap."""
    if not rows or not all(r["complete"] and r.get("pooled_std") is not None for r in rows.values()):
        return None
    top_name = max(rows, key=lambda name: rows[name]["mean"])
    top = rows[top_name]

    def measurably_lower(name: str) -> bool:
        if name == top_name:
            return False
        diffs = [t - c for graph, entry in top["graphs"].items()
                 for t, c in zip(entry["scores"], rows[name]["graphs"][graph]["scores"])]
        test = stats.paired_permutation_test(diffs, alternative="greater", seed=_stable_seed(f"recipe-{name}"))
        return test.p_value <= RECIPE_ALPHA

    eligible = [name for name in rows if not measurably_lower(name)]
    return min(eligible, key=lambda name: (rows[name]["pooled_std"], rows[name]["steps"] or 0))


def _stable_seed(text: str) -> int:
    return zlib.crc32(text.encode())
