"""The ``proxy-validity`` study stage: does the proxy fitness rank graphs as their final training does?

A search can only be as good as the proxy it climbs. The correlation between proxy fitness and test score over
a search's *winners* says little: the winners are a range-restricted sample (all good by the proxy), and both
axes carry seed noise that pulls any correlation towards zero. This stage measures the proxy on graphs drawn
**uniformly from the search space** (the sampler random search uses, :meth:`SearchSpace.sample`) plus the fixed
wirings of :mod:`assemblenet.search.baselines`, each scored

- ``proxy_seeds`` (k) times by the study's proxy fitness (the search config's ``fitness``), with trial seeds
  that differ from every search's, and
- ``final_seeds`` (m) times by a final training from scratch with the study's retrain settings (the recipe the
  retrain stage and the baselines use), test score ``retrain.metric``.

Layout (``OUTPUT/proxy_validity/``), every file written atomically the moment its work finishes, so a killed
stage (kill -9 included) resumes by running it again and redoes only what had not finished::

    graphs/LABEL-HASH.yaml                the graph (LABEL: s00..s49 for sampled graphs, or the wiring's name)
    proxy/LABEL-HASH/seedK.json           one proxy evaluation (fitness, metrics, trial seed, wall time)
    final/LABEL-HASH/seedK[-RECIPE]/      one final training (the engine's folder; result.json when done)
    proxy_validity.json, proxy_validity.png   the analysis and the scatter plot

The folder names carry the graph's hash, so a changed ``sample_seed`` or space never reuses another graph's
result. A proxy evaluation that fails is recorded as failed and not retried; its graph drops out of the analysis.

Statistics (:func:`validity_statistics`), over the graphs with every proxy and final score:

- x_i = mean proxy fitness of graph i over its k seeds, y_i = mean final test score over its m seeds;
- Kendall tau-b and Spearman rho of (x, y) (:func:`scipy.stats.kendalltau`, :func:`scipy.stats.spearmanr`),
  each with a percentile bootstrap interval over graphs (:func:`scipy.stats.bootstrap` resampling graph
  indices, so a graph's proxy and final scores stay together);
- reliabilities from the seeds. Every graph is scored with the same seeds (the same k proxy trial seeds, the
  same m engine seeds), so seeds are crossed with graphs, and a seed that shifts every graph's score alike (a
  kinder data order, an easier trial) moves every graph's mean by the same amount and cannot change their order.
  The reliability is therefore the two-way *consistency* intraclass correlation (McGraw and Wong's ICC(C,1) and
  ICC(C,k)), which leaves the seeds' common shifts out of the noise. With the table's two-way ANOVA mean squares
  MSR = k * sum_i (x_i. - x..)^2 / (n - 1) (graphs), MSC = n * sum_j (x_.j - x..)^2 / (k - 1) (seeds) and
  MSE = sum_ij (x_ij - x_i. - x_.j + x..)^2 / ((n - 1)(k - 1)) (residual):

  * single-seed reliability rho_1 = (MSR - MSE) / (MSR + (k - 1) MSE);
  * reliability of the k-seed mean by Spearman-Brown, rel_k = k rho_1 / (1 + (k - 1) rho_1), which equals
    (MSR - MSE) / MSR; likewise rel_m for the final side with its m seeds.

  The one-way ICC(1) (seeds nested in graphs, MSW = sum_ij (x_ij - x_i.)^2 / (n (k - 1)) in place of MSE, so
  the seeds' common shifts count as noise) is reported beside it: it is the right reliability only where each
  graph had seeds of its own, and here it would understate the reliability and over-correct the correlation.
  scipy has no intraclass correlation, hence the few lines of :func:`reliability`;

- the correlation corrected for attenuation (Spearman's disattenuation) r_c = r / sqrt(rel_k * rel_m), for
  Pearson r (where the classical formula holds) and for Spearman rho (the usual approximation); it estimates the
  correlation of the graphs' *true* proxy and final scores (infinitely many seeds each). It is undefined when a
  reliability is not positive, and may exceed 1 by sampling error (reported as is). Its bootstrap interval
  re-estimates both reliabilities in every resample;
- Kendall tau within the top quartile (``top_fraction``) of graphs by final test mean: whether the proxy orders
  the graphs worth finding, where the search operates.

Nothing here imports numpy or scipy at module level: :mod:`assemblenet.search.study.config` imports
:class:`ProxyValidityConfig` and stays light for the CLI.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from assemblenet import fileio
from assemblenet.search.study.config import HASH_CHARS, RESULT_FILE
from assemblenet.search.study.results import ProxyValiditySection, RankStatistic, ValidityStatistic
from assemblenet.search.study.sections import ProxyValidityConfig

if TYPE_CHECKING:  # (the runner imports this module, not the reverse)
    import numpy as np

    from assemblenet.search.study.runner import Study

logger = logging.getLogger(__name__)

STAGE = "proxy-validity"
FOLDER = "proxy_validity"
RESULT_JSON = "proxy_validity.json"
PLOT_FILE = "proxy_validity.png"
SAMPLED_PREFIX = "s"
SAMPLED_KIND = "sampled"
FIXED_KIND = "fixed"
MAX_SAMPLE_DRAWS = 100  # draws per wanted graph before the space is declared too small for distinct graphs


def proxy_trial_seed(sample_seed: int, k: int) -> int:
    """The trial seed of proxy seed ``k``: the same for every graph (common random numbers across graphs) and
    unlike any search's trial seeds (a different hash prefix than ``derive_trial_seed``)."""
    digest = hashlib.sha256(f"assemblenet-proxy-validity:{sample_seed}:{k}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


@dataclass(frozen=True)
class ValidityGraph:
    label: str
    kind: str  # "sampled" or "fixed"
    graph: Any  # AssembleNetGraph

    @property
    def digest(self) -> str:
        return self.graph.canonical_hash()

    @property
    def folder_name(self) -> str:
        return f"{self.label}-{self.digest[:HASH_CHARS]}"


def validity_graphs(section: ProxyValidityConfig, space_config: Any) -> list[ValidityGraph]:
    """The stage's graphs: ``graphs`` distinct uniform samples of the space, then the fixed wirings (a sample
    equal to a fixed wiring is drawn again)."""
    from assemblenet.errors import ConfigError
    from assemblenet.search.baselines import baseline_graph
    from assemblenet.search.space import SearchSpace

    fixed = [ValidityGraph(name, FIXED_KIND, baseline_graph(name, space_config)) for name in section.fixed]
    seen = {g.digest for g in fixed}
    space, rng = SearchSpace(space_config), random.Random(section.sample_seed)
    width = max(2, len(str(max(section.graphs - 1, 0))))
    sampled: list[ValidityGraph] = []
    draws = 0
    while len(sampled) < section.graphs:
        draws += 1
        if draws > MAX_SAMPLE_DRAWS * max(1, section.graphs):
            raise ConfigError(f"proxy_validity.graphs: the search space holds fewer than {section.graphs} distinct "
                              f"graphs besides the fixed wirings (found {len(sampled)})")
        graph = space.sample(rng)
        if graph.canonical_hash() in seen:
            continue
        seen.add(graph.canonical_hash())
        label = f"{SAMPLED_PREFIX}{len(sampled):0{width}d}"
        sampled.append(ValidityGraph(label, SAMPLED_KIND, dataclasses.replace(graph, name=label)))
    return sampled + fixed


# ---------------------------------------------------------------------- the stage
def run_proxy_validity(study: Study) -> dict[str, Any]:
    """Run (or resume) the stage for ``study``: every missing proxy evaluation, then every missing final
    training; return counts of what ran and what was already there."""
    from tqdm import tqdm

    from assemblenet.graph.io import save_graph

    section = study.config.proxy_validity
    root = study.output / FOLDER
    graphs = validity_graphs(section, study.base.space)
    for item in graphs:
        path = root / "graphs" / f"{item.folder_name}.yaml"
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            save_graph(item.graph.without_edge_weights(), path)
    settings = study.retrain_settings()
    proxy_todo = [(item, k) for item in graphs for k in range(section.proxy_seeds)
                  if not _proxy_path(root, item, k).is_file()]
    final_todo = [(item, k) for item in graphs for k in range(section.final_seeds)
                  if not (_final_folder(root, item, k, settings) / _result_file()).is_file()]
    total = len(graphs) * (section.proxy_seeds + section.final_seeds)
    done_before = total - len(proxy_todo) - len(final_todo)
    logger.info("study %s: proxy validity: %d graphs (%d sampled + %d fixed), %d proxy evaluations and %d final "
                "trainings to run, %d done before", study.config.name, len(graphs), section.graphs,
                len(section.fixed), len(proxy_todo), len(final_todo), done_before)
    with tqdm(total=total, initial=done_before, desc=f"proxy validity {study.config.name}", unit="run",
              disable=not study.progress, dynamic_ncols=True) as bar:
        _run_proxy_evaluations(study, root, proxy_todo, section, bar)
        _run_final_trainings(study, root, final_todo, settings, bar)
    return {"graphs": len(graphs), "proxy_evaluations_run": len(proxy_todo), "final_trainings_run": len(final_todo),
            "done_before": done_before}


def _proxy_path(root: Path, item: ValidityGraph, k: int) -> Path:
    return root / "proxy" / item.folder_name / f"seed{k}.json"


def _final_folder(root: Path, item: ValidityGraph, k: int, settings: Any) -> Path:
    return root / "final" / item.folder_name / settings.folder_name("", k)


def _result_file() -> str:
    return RESULT_FILE


def _run_proxy_evaluations(study: Study, root: Path, todo: Sequence[tuple[ValidityGraph, int]],
                           section: ProxyValidityConfig, bar: Any) -> None:
    """Run the missing proxy evaluations through the search config's executor; each record is written as soon
    as its evaluation finishes (in whatever order the executor returns them)."""
    if not todo:
        return
    from assemblenet.search.executors import Trial, make_executor
    from assemblenet.search.fitness import build_fitness

    fitness = study.fitness if study.fitness is not None else build_fitness(study.base)
    ex = study.base.executor
    executor = make_executor(ex.kind, fitness, workers=ex.workers, torch_threads=ex.torch_threads,
                             ray_address=ex.ray_address, cpus_per_trial=ex.cpus_per_trial,
                             gpus_per_trial=ex.gpus_per_trial, max_retries=ex.max_retries)
    trials = [Trial(i, item.graph.without_edge_weights(), proxy_trial_seed(section.sample_seed, k))
              for i, (item, k) in enumerate(todo)]
    try:
        for outcome in executor.run(trials):
            item, k = todo[outcome.index]
            if outcome.fatal:
                raise RuntimeError(f"proxy validity: the fitness cannot run: {outcome.error}")
            result = outcome.result
            record = {"label": item.label, "kind": item.kind, "graph_hash": item.digest, "proxy_seed": k,
                      "trial_seed": trials[outcome.index].seed,
                      "fitness": None if result is None else result.fitness,
                      "metrics": {} if result is None else dict(result.metrics),
                      "error": outcome.error, "wall_time_s": round(outcome.wall_time, 3), "finished_at": time.time()}
            path = _proxy_path(root, item, k)
            path.parent.mkdir(parents=True, exist_ok=True)
            fileio.atomic_write_text(path, json.dumps(fileio.json_safe(record), indent=1) + "\n", fsync=True)
            study.log({"event": "proxy-validity-evaluation", "time": time.time(), "label": item.label,
                        "graph_hash": item.digest, "proxy_seed": k, "fitness": record["fitness"],
                        "error": outcome.error, "wall_time_s": record["wall_time_s"]})
            bar.update(1)
    finally:
        executor.close()


def _run_final_trainings(study: Study, root: Path, todo: Sequence[tuple[ValidityGraph, int]], settings: Any,
                         bar: Any) -> None:
    """Train the missing (graph, seed) pairs from scratch with the retrain settings (``retrain.workers`` at once),
    each recorded by the study's one training path (resumable from the engine's checkpoints)."""
    if not todo:
        return
    from assemblenet.search.study.training import train_config, train_graph, train_in_parallel, training_function, width

    train = training_function(study)
    config_file, scale = train_config(study), width(study)
    jobs = [(item.graph, _final_folder(root, item, k, settings), k, settings) for item, k in todo]
    owners = {folder: (item, k) for (item, k), (_, folder, _, _) in zip(todo, jobs)}
    recorded: set[Path] = set()

    def record(folder: Path) -> None:
        item, k = owners[folder]
        train_graph(study, item.graph, folder, k, train, config_file, scale, what=f"proxy validity {item.label}",
                    settings=settings)
        recorded.add(folder)
        bar.update(1)

    train_in_parallel(study, jobs, config_file, scale, on_finished=record)
    for _, folder, _, _ in jobs:  # in this process: what is left (all of it without workers)
        if folder not in recorded:
            record(folder)


# ---------------------------------------------------------------------- reading and analysis
def proxy_validity_analysis(study: Study) -> dict[str, Any] | None:
    """The stage's statistics from its folder (None when the stage never ran); writes ``proxy_validity.json`` and
    the scatter plot ``proxy_validity.png`` beside it once a correlation can be computed."""
    section = study.config.proxy_validity
    root = study.output / FOLDER
    if not root.is_dir():
        return None
    graphs = validity_graphs(section, study.base.space)
    from assemblenet.search.study.recipes_stage import settings_if_known

    settings = settings_if_known(study)
    rows: list[dict[str, Any]] = []
    for item in graphs:
        proxy = [_read_score(_proxy_path(root, item, k), "fitness") for k in range(section.proxy_seeds)]
        final = ([_read_score(_final_folder(root, item, k, settings) / _result_file(), "score")
                  for k in range(section.final_seeds)] if settings is not None else [None] * section.final_seeds)
        rows.append({"label": item.label, "kind": item.kind, "graph_hash": item.digest, "proxy": proxy,
                     "final": final})
    complete = [r for r in rows if all(v is not None for v in r["proxy"] + r["final"])]
    analysis: dict[str, Any] = {
        "graphs_expected": len(graphs), "graphs_complete": len(complete),
        "proxy_evaluations_done": sum(v is not None for r in rows for v in r["proxy"]),
        "final_trainings_done": sum(v is not None for r in rows for v in r["final"]),
        "proxy_seeds": section.proxy_seeds, "final_seeds": section.final_seeds, "sample_seed": section.sample_seed,
        "metric": study.config.retrain.metric, "rows": rows, "statistics": None,
    }
    if len(complete) >= 4:
        analysis["statistics"] = validity_statistics(
            [r["proxy"] for r in complete], [r["final"] for r in complete],
            samples=study.config.bootstrap_samples, top_fraction=section.top_fraction, seed=section.sample_seed)
        plot_proxy_validity(complete, analysis["statistics"], root / PLOT_FILE, metric=analysis["metric"])
    analysis = fileio.json_safe(analysis)
    fileio.atomic_write_text(root / RESULT_JSON, json.dumps(analysis, indent=1, allow_nan=False) + "\n")
    return analysis


def _read_score(path: Path, key: str) -> float | None:
    if not path.is_file():
        return None
    value = json.loads(path.read_text()).get(key)
    return None if value is None or not math.isfinite(float(value)) else float(value)


def reliability(scores: Sequence[Sequence[float]] | np.ndarray) -> dict[str, Any]:
    """Reliability of an n x k table (rows: graphs, columns: seeds shared by every graph; k >= 2), see the module
    docstring: the two-way consistency single-seed ICC(C,1) ``single`` = (MSR - MSE) / (MSR + (k - 1) MSE) and
    the reliability of the k-seed mean ``mean_k`` = ICC(C,k) = (MSR - MSE) / MSR (both may be negative when the
    seeds reorder graphs more than graphs differ); for comparison the one-way ``one_way_single`` (ICC(1)) and
    ``one_way_mean_k``, which count the seeds' common shifts as noise. Also the mean squares, each seed's mean
    over graphs (``seed_means``: the common shifts) and the between-graph SD of the row means."""
    import numpy as np

    table = np.asarray(scores, dtype=float)
    n, k = table.shape
    if n < 2 or k < 2:
        raise ValueError(f"reliability: need at least 2 graphs and 2 seeds, got {n} x {k}")
    row_means, seed_means, grand = table.mean(axis=1), table.mean(axis=0), float(table.mean())
    msr = k * float(((row_means - grand) ** 2).sum()) / (n - 1)
    msc = n * float(((seed_means - grand) ** 2).sum()) / (k - 1)
    mse = float(((table - row_means[:, None] - seed_means[None, :] + grand) ** 2).sum()) / ((n - 1) * (k - 1))
    msw = float(((table - row_means[:, None]) ** 2).sum()) / (n * (k - 1))

    def single(within: float) -> float:
        return (msr - within) / (msr + (k - 1) * within) if msr + (k - 1) * within > 0 else math.nan

    def of_mean(within: float) -> float:
        return (msr - within) / msr if msr > 0 else math.nan

    return {"single": single(mse), "mean_k": of_mean(mse), "one_way_single": single(msw),
            "one_way_mean_k": of_mean(msw), "seeds": k, "msr": msr, "msc": msc, "mse": mse, "msw": msw,
            "seed_means": [float(v) for v in seed_means],
            "between_graph_sd_of_means": float(row_means.std(ddof=1))}


def disattenuate(r: float, reliability_x: float, reliability_y: float) -> float:
    """Spearman's correction for attenuation r / sqrt(rel_x rel_y); NaN when a reliability is not positive."""
    if not (reliability_x > 0 and reliability_y > 0) or not math.isfinite(r):
        return math.nan
    return r / math.sqrt(reliability_x * reliability_y)


def _correlations(proxy: Any, final: Any) -> list[float]:
    """[kendall tau, spearman rho, pearson r, corrected pearson, corrected spearman] of seed tables (rows:
    graphs)."""
    import numpy as np
    from scipy import stats as sps

    x, y = proxy.mean(axis=1), final.mean(axis=1)
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return [math.nan] * 5
    tau = float(sps.kendalltau(x, y).statistic)
    rho = float(sps.spearmanr(x, y).statistic)
    r = float(np.corrcoef(x, y)[0, 1])
    rel_x, rel_y = reliability(proxy)["mean_k"], reliability(final)["mean_k"]
    return [tau, rho, r, disattenuate(r, rel_x, rel_y), disattenuate(rho, rel_x, rel_y)]


STATISTIC_NAMES = ("kendall_tau", "spearman_rho", "pearson_r", "pearson_r_corrected", "spearman_rho_corrected")


def validity_statistics(proxy: Sequence[Sequence[float]], final: Sequence[Sequence[float]], *,
                        samples: int = 10000, confidence: float = 0.95, top_fraction: float = 0.25,
                        seed: int = 0) -> dict[str, Any]:
    """The stage's statistics (see the module docstring) for per-graph seed tables ``proxy`` (n x k) and
    ``final`` (n x m): each correlation with its percentile bootstrap interval over graphs, both sides'
    reliabilities, the p-values of tau and rho, and tau within the top ``top_fraction`` of graphs by final
    mean. Pure and deterministic given ``seed``."""
    import warnings

    import numpy as np
    from scipy import stats as sps

    x_table, y_table = np.asarray(proxy, dtype=float), np.asarray(final, dtype=float)
    if x_table.ndim != 2 or y_table.ndim != 2 or x_table.shape[0] != y_table.shape[0]:
        raise ValueError(f"validity_statistics: need two seed tables with one row per graph, got shapes "
                         f"{x_table.shape} and {y_table.shape}")
    n = x_table.shape[0]
    if n < 4:
        raise ValueError(f"validity_statistics: need at least 4 graphs, got {n}")
    estimates = _correlations(x_table, y_table)

    def statistic(index: Any) -> list[float]:
        index = np.asarray(index, dtype=int)
        return _correlations(x_table[index], y_table[index])

    with warnings.catch_warnings():  # resamples with constant columns give NaN; scipy warns about them
        warnings.simplefilter("ignore")
        result = sps.bootstrap((np.arange(n),), statistic, vectorized=False, n_resamples=samples,
                               confidence_level=confidence, method="percentile", rng=np.random.default_rng(seed))
        draws = np.asarray(result.bootstrap_distribution, dtype=float)
    out: dict[str, Any] = {"graphs": n, "confidence": confidence, "bootstrap_samples": samples}
    for j, name in enumerate(STATISTIC_NAMES):
        finite = draws[j][np.isfinite(draws[j])]
        # scipy's interval is NaN as soon as one resample is; the corrected correlation is undefined in
        # resamples where a reliability is not positive, so its interval is taken over the defined resamples
        # (their share is reported).
        interval = (np.quantile(finite, [(1 - confidence) / 2, (1 + confidence) / 2]).tolist()
                    if finite.size >= max(10, samples // 2) else None)
        out[name] = {"estimate": estimates[j], "ci": interval, "defined_share": finite.size / draws[j].size}
    x, y = x_table.mean(axis=1), y_table.mean(axis=1)
    out["kendall_tau"]["p"] = float(sps.kendalltau(x, y).pvalue) if np.ptp(x) and np.ptp(y) else None
    out["spearman_rho"]["p"] = float(sps.spearmanr(x, y).pvalue) if np.ptp(x) and np.ptp(y) else None
    out["reliability"] = {"proxy": reliability(x_table), "final": reliability(y_table)}
    top = max(3, math.ceil(top_fraction * n))
    order = np.argsort(-y, kind="stable")[:top]
    if top < n and np.ptp(x[order]) and np.ptp(y[order]):
        result_top = sps.kendalltau(x[order], y[order])
        out["top"] = {"fraction": top_fraction, "graphs": int(top), "kendall_tau": float(result_top.statistic),
                      "p": float(result_top.pvalue)}
    else:
        out["top"] = {"fraction": top_fraction, "graphs": int(top), "kendall_tau": None, "p": None}
    return out


# ---------------------------------------------------------------------- figure and markdown
def plot_proxy_validity(rows: Sequence[Mapping[str, Any]], statistics: Mapping[str, Any], path: Path, *,
                        metric: str = "metric") -> None:
    """Scatter of mean proxy fitness (x, bars: SD over proxy seeds) against mean final test score (y, bars: SD
    over training seeds); sampled graphs as dots, fixed wirings as labelled diamonds."""
    import numpy as np

    from assemblenet.search.plotting import finish_figure, new_figure

    figure = new_figure(6.4, 4.8)
    axes = figure.add_subplot(1, 1, 1)
    for kind, marker, colour, name in ((SAMPLED_KIND, "o", "C0", "sampled from the space"),
                                       (FIXED_KIND, "D", "C3", "fixed wirings")):
        chosen = [r for r in rows if r["kind"] == kind]
        if not chosen:
            continue
        x = np.array([np.mean(r["proxy"]) for r in chosen])
        y = np.array([np.mean(r["final"]) for r in chosen])
        axes.errorbar(x, y, xerr=[np.std(r["proxy"], ddof=1) for r in chosen],
                      yerr=[np.std(r["final"], ddof=1) for r in chosen], fmt=marker, color=colour, ecolor=colour,
                      alpha=0.75, elinewidth=0.8, capsize=0, markersize=5 if kind == SAMPLED_KIND else 7, label=name)
        if kind == FIXED_KIND:
            for r, xi, yi in zip(chosen, x, y):
                axes.annotate(r["label"], (xi, yi), textcoords="offset points", xytext=(5, 4), fontsize="small")
    tau = statistics["kendall_tau"]
    corrected = statistics["pearson_r_corrected"]
    axes.set_title(f"proxy vs final ({statistics['graphs']} graphs): Kendall tau {_num(tau['estimate'])} "
                   f"[{_interval(tau['ci'])}], corrected r {_num(corrected['estimate'])}", fontsize="medium")
    axes.set_xlabel(f"proxy fitness (mean of {len(rows[0]['proxy'])} seeds)")
    axes.set_ylabel(f"final test {metric} (mean of {len(rows[0]['final'])} seeds)")
    finish_figure(figure, axes, path, legend_loc="best")


def _num(value: Any, digits: int = 3) -> str:
    return "n/a" if value is None or (isinstance(value, float) and not math.isfinite(value)) else f"{value:.{digits}f}"


def _interval(ci: Sequence[float] | None) -> str:
    return "n/a" if ci is None else f"{ci[0]:.3f}, {ci[1]:.3f}"


def proxy_validity_markdown(analysis: ProxyValiditySection) -> list[str]:
    """The study.md section of the stage."""
    lines = ["## Does the proxy rank graphs? (proxy validity)", ""]
    sampled = sum(1 for r in analysis.rows if r.kind == SAMPLED_KIND)
    lines.append(f"{analysis.graphs_expected} graphs ({sampled} "
                 f"sampled uniformly from the search space with sample seed {analysis.sample_seed}, plus the fixed "
                 f"wirings), {analysis.proxy_seeds} proxy seeds and {analysis.final_seeds} final-training seeds "
                 f"each; {analysis.graphs_complete} complete ({analysis.proxy_evaluations_done} proxy "
                 f"evaluations, {analysis.final_trainings_done} final trainings done).")
    lines.append("")
    stats = analysis.statistics
    if stats is None:
        lines += ["Too few complete graphs for a correlation yet.", ""]
        return lines
    rel = stats.reliability
    conf = round(100 * stats.confidence)
    lines += [f"| statistic | estimate | {conf}% bootstrap interval over graphs | p |", "| --- | --- | --- | --- |"]
    labels = {"kendall_tau": "Kendall tau", "spearman_rho": "Spearman rho", "pearson_r": "Pearson r",
              "pearson_r_corrected": "Pearson r corrected for both reliabilities",
              "spearman_rho_corrected": "Spearman rho corrected for both reliabilities"}
    for name in STATISTIC_NAMES:
        entry: ValidityStatistic = getattr(stats, name)
        defined = "" if entry.defined_share >= 0.999 else f" (defined in {entry.defined_share:.0%} of resamples)"
        p = entry.p if isinstance(entry, RankStatistic) else None
        lines.append(f"| {labels[name]} | {_num(entry.estimate)} | {_interval(entry.ci)}{defined} | "
                     f"{'' if p is None else f'{p:.3g}'} |")
    top = stats.top
    lines += ["", f"Kendall tau within the top {top.graphs} graphs by final test mean: {_num(top.kendall_tau)}"
              + ("" if top.p is None else f" (p {top.p:.3g})") + ".",
              "",
              f"Reliabilities (two-way consistency ICC: every graph is scored with the same seeds, so a seed's "
              f"shift common to all graphs cannot change their order; Spearman-Brown for the mean): proxy single "
              f"seed {_num(rel.proxy.single)}, mean of {rel.proxy.seeds} {_num(rel.proxy.mean_k)}; final single "
              f"seed {_num(rel.final.single)}, mean of {rel.final.seeds} {_num(rel.final.mean_k)}. The one-way ICC, "
              f"which counts those shifts as noise, for comparison: proxy {_num(rel.proxy.one_way_single)} and "
              f"{_num(rel.proxy.one_way_mean_k)}, final {_num(rel.final.one_way_single)} and "
              f"{_num(rel.final.one_way_mean_k)}. Seed means over the graphs: proxy "
              f"{', '.join(_num(v, 4) for v in rel.proxy.seed_means)}; final "
              f"{', '.join(_num(v, 4) for v in rel.final.seed_means)}. Between-graph SD of the final means: "
              f"{_num(rel.final.between_graph_sd_of_means, 4)}. The corrected correlation estimates the "
              "correlation of the graphs' true (infinitely many seeds) proxy and final scores; it is undefined where "
              "a reliability is not positive and can exceed 1 by sampling error.",
              "", f"![proxy validity]({FOLDER}/{PLOT_FILE})", ""]
    return lines
