"""Studies across several tasks (datasets): the same study on each task, analysed paired within task.

A study config with a ``tasks`` section runs the whole study once per task, into ``OUTPUT/<task>/`` (each a
complete single-task study with its own exploratory ``study.md``), and then writes the cross-task analysis to
``OUTPUT/study.json`` and ``OUTPUT/study.md``. A task is a dataset folder: the search config and the retrain
settings name one data root (``tasks.replaces``, e.g. ``data/compositional``); each task replaces it with its own
root (default ``<replaces>-<task name>``) in the proxy's and the final training's data paths.

Data (``tasks.data``): ``generate`` writes a task's missing folder with the compositional generator
(:func:`assemblenet.data.compositional.make_compositional`, seed ``data_seed`` and the keywords of
``tasks.make_synthetic``; written beside the final folder and renamed, so a killed study never leaves a half set
that looks done) and checks an existing one; ``check`` only checks (the folder must exist, its ``synthetic.json``
must say the task's seed and the ``make_synthetic`` parameters); ``none`` leaves data alone (a toy fitness).
The equivalent command for one task is printed by :func:`make_synthetic_command`.

The analysis (:func:`cross_task_analysis`) pairs within task: a search seed's runs of two strategies share their
initial population within a task, so the pairing unit is (task, search seed). The pre-registered hypotheses
(``hypotheses.confirmatory``, the schema of :mod:`assemblenet.search.study.config`) are tested across tasks:

- strategy vs strategy (paired): the per-(task, seed) differences, sign-flip permutation
  (:func:`assemblenet.search.stats.paired_permutation_test`), Wilcoxon signed-rank as a second view
  (``scipy.stats.wilcoxon``), a percentile bootstrap interval of the mean difference over pairs;
- strategy vs fixed wiring (independent samples within task): the effect is the mean over tasks of
  (mean of the strategy's runs - mean of the wiring's training seeds) in that task, tested with a permutation
  test stratified by task (:func:`stratified_permutation_test`; labels shuffled within each task only, so task
  difficulty cancels), its interval a bootstrap stratified by task and arm; a ``margin`` adds two one-sided
  stratified tests (TOST) for equivalence;
- Holm's step-down (:func:`assemblenet.search.stats.holm`) over every member of the family, computed only once
  every member is complete: until every
  run and training a hypothesis needs has finished, its entry holds counts only (no estimate, no p-value);
- the power reached (:mod:`assemblenet.search.study.power`): at the measured SD of the paired differences, and
  for a comparison with a wiring at each arm's measured within-task SD.

Tables are stratified by task (per-task means and paired differences). Run the stages as for one study:
``assemblenet search-study CONFIG [--stage STAGE]`` runs the stage on every task in turn.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import statistics
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence, cast

from assemblenet import fileio
from assemblenet.errors import ConfigError
from assemblenet.search.study.sections import TasksConfig, TaskSpec

if TYPE_CHECKING:
    from assemblenet.search.study.config import StudyConfig

logger = logging.getLogger(__name__)

PLANNED_DIFFERENCE = 0.015  # issue 27: 80% power at 0.015 with 24 pairs at a paired SD of 0.028
PENDING, COMPLETE = "pending", "complete"


def make_synthetic_command(tasks: TasksConfig, task: TaskSpec) -> str:
    """The ``assemblenet make-synthetic`` command that writes ``task``'s data (what ``tasks.data: generate``
    does)."""
    flags = {"train_videos": "--train-videos", "val_videos": "--val-videos", "test_videos": "--test-videos",
             "size": "--size", "num_frames": "--frames", "fps": "--fps"}
    extra = "".join(f" {flags[k]} {v}" for k, v in tasks.make_synthetic.items())
    return f"assemblenet make-synthetic {tasks.root(task)} --task compositional --seed {task.data_seed}{extra}"


def ensure_task_data(tasks: TasksConfig, index: int, *, source: str, progress: bool = False) -> str:
    """Make sure task ``index``'s data folder holds what its config says (generate or check it, per
    ``tasks.data``); return a line saying what was done."""
    from assemblenet.config_schema import key_error

    task = tasks.items[index]
    root = Path(tasks.root(task))
    if tasks.data == "none":
        return f"task {task.name}: data left alone (tasks.data: none)"
    from assemblenet.data.synthetic import MANIFEST_FILE

    manifest = root / MANIFEST_FILE
    if not manifest.is_file():
        if tasks.data == "check":
            raise key_error(source, f"tasks.items[{index}]", f"no task data at {root} (no {MANIFEST_FILE}); write "
                            f"it with: {make_synthetic_command(tasks, task)}")
        from assemblenet.data.compositional import make_compositional

        fileio.remove_stale_temporaries(root.absolute().parent)  # the half set of a killed study
        with fileio.atomic_dir(root) as partial:
            make_compositional(partial, seed=task.data_seed, progress=progress, **dict(tasks.make_synthetic))
        return f"task {task.name}: wrote {root} ({make_synthetic_command(tasks, task)})"
    parameters = json.loads(manifest.read_text()).get("parameters", {})
    wanted = {"seed": task.data_seed, **dict(tasks.make_synthetic)}
    wrong = {k: (parameters.get(k), v) for k, v in wanted.items() if parameters.get(k) != v}
    if wrong:
        details = ", ".join(f"{k} is {have!r}, the config wants {want!r}" for k, (have, want) in wrong.items())
        raise key_error(source, f"tasks.items[{index}]", f"{root} holds other data ({details}); remove it or "
                        "point root elsewhere")
    return f"task {task.name}: {root} checked"


def substitute_root(value: Any, replaces: str, root: str) -> Any:
    """``value`` with every string that is ``replaces`` or a path under it rewritten under ``root`` (mappings
    and lists are walked)."""
    if isinstance(value, str):
        base = replaces.rstrip("/")
        if value.rstrip("/") == base:
            return root
        if value.startswith(base + "/"):
            return root + value[len(base):]
        return value
    if isinstance(value, Mapping):
        return {k: substitute_root(v, replaces, root) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(substitute_root(v, replaces, root) for v in value)
    return value


def task_overrides(overrides: Mapping[str, Any], engine_config: str | None, replaces: str,
                   root: str) -> dict[str, Any]:
    """Engine overrides that point a training at the task: ``overrides`` with the data root substituted, plus
    ``data.<split>.root`` for each split whose root the engine config file names and no override sets."""
    from assemblenet.config_schema import read_yaml

    out = substitute_root(dict(overrides), replaces, root)
    if engine_config is not None:
        data = (read_yaml(engine_config) or {}).get("data") or {}
        for split in ("train", "val"):
            section = data.get(split)
            if not isinstance(section, Mapping) or f"data.{split}" in out or f"data.{split}.root" in out:
                continue
            moved = substitute_root(section.get("root"), replaces, root)
            if moved != section.get("root"):
                out[f"data.{split}.root"] = moved
    return out


def names_root(overrides: Mapping[str, Any], engine_config: str | None, replaces: str) -> bool:
    """Whether the overrides or the engine config file name the data root ``replaces``."""
    return task_overrides(overrides, engine_config, replaces, "\0") != dict(overrides)


# ---------------------------------------------------------------------- running
class MultiTaskStudy:
    """One study config run on every task of ``tasks.items``: one :class:`~.runner.Study` per task in
    ``OUTPUT/<task>/``, then the cross-task analysis in ``OUTPUT/``. ``options`` go to every Study."""

    def __init__(self, config: "StudyConfig", *, study_factory: Any, output: str | Path | None = None,
                 **options: Any) -> None:
        self.config = config
        self.study_factory = study_factory  # the runner's Study class (injected: the runner imports this module)
        self.output = Path(output or config.output_dir or Path("runs") / "study" / config.name)
        self.options = options
        self.progress = bool(options.get("progress", True))
        self.studies = [self.task_study(i) for i in range(len(config.tasks.items))]

    def task_config(self, index: int) -> "StudyConfig":
        """The single-task study config of task ``index``: no tasks, no hypotheses (a task's own study.md is
        exploratory; the confirmatory analysis is across tasks), retraining pointed at the task's data."""
        from assemblenet.search.study.config import HypothesesConfig

        config, tasks = self.config, self.config.tasks
        task = tasks.items[index]
        root = tasks.root(task)
        retrain = config.retrain
        train_config = None if retrain.config is None else str(config.resolve(retrain.config))
        return dataclasses.replace(
            config, name=f"{config.name}-{task.name}", output_dir=str(self.output / task.name), tasks=TasksConfig(),
            hypotheses=HypothesesConfig(),
            retrain=dataclasses.replace(retrain, overrides=task_overrides(retrain.overrides, train_config,
                                                                          tasks.replaces, root)))

    def task_base(self, index: int) -> Any:
        """The search config of task ``index``: the proxy's data paths moved to the task's root."""
        from assemblenet.search.config import load_search_config

        tasks = self.config.tasks
        base = load_search_config(self.config.search_path)
        proxy = base.fitness.proxy_training
        overrides = task_overrides(proxy.overrides, proxy.config, tasks.replaces, tasks.root(tasks.items[index]))
        return dataclasses.replace(base, fitness=dataclasses.replace(
            base.fitness, proxy_training=dataclasses.replace(proxy, overrides=overrides)))

    def task_study(self, index: int) -> Any:
        return self.study_factory(self.task_config(index), base=self.task_base(index), **self.options)

    def check_data_root(self) -> None:
        """A task study whose configs never name ``tasks.replaces`` would train every task on the same data."""
        from assemblenet.config_schema import key_error

        if self.config.tasks.data == "none":
            return
        base = load_base(self.config)
        proxy = base.fitness.proxy_training
        retrain = self.config.retrain
        train_config = None if retrain.config is None else str(self.config.resolve(retrain.config))
        if not (names_root(proxy.overrides, proxy.config, self.config.tasks.replaces)
                or names_root(retrain.overrides, train_config, self.config.tasks.replaces)):
            raise key_error(self.config.source, "tasks.replaces", f"{self.config.tasks.replaces!r} is named by "
                            "neither the search config's fitness data nor the retrain settings: every task would "
                            "use the same data")

    def check_provenance(self) -> None:
        """Refuse a dirty tree (without ``allow_dirty``) before writing any task's data, as each task's study
        would refuse it before its first stage."""
        from assemblenet import provenance

        code = provenance.code_provenance()
        if provenance.is_dirty(code) and not self.options.get("allow_dirty", False):
            raise ConfigError(
                f"the code's git tree ({code['root']}) has uncommitted changes to tracked files: a study records the "
                "commit it ran from; commit the changes, or pass --allow-dirty (recorded, and stated in study.md)")

    def run(self, stage: str = "all") -> tuple[Path, list[dict[str, Any]], list[dict[str, Any]], dict[str, Any]]:
        """Run ``stage`` on every task; return (output folder, search summaries, retrain entries, analysis)."""
        self.check_data_root()
        self.check_provenance()
        with fileio.hold_folder(self.output):
            if stage != "analyse":
                for i in range(len(self.studies)):
                    logger.info("study %s: %s", self.config.name,
                                ensure_task_data(self.config.tasks, i, source=self.config.source,
                                                 progress=self.progress))
            stages = [stage] if stage != "all" else self._stages()
            searched: list[dict[str, Any]] = []
            retrained: list[dict[str, Any]] = []
            for name in stages:
                for task, study in zip(self.config.tasks.items, self.studies):
                    logger.info("study %s: stage %s on task %s", self.config.name, name, task.name)
                    outcome = study.run(name)
                    searched += [{"task": task.name, **row} for row in outcome.searched]
                    retrained += [{"task": task.name, **row} for row in outcome.retrained]
            analysis = self.analyse()
        return self.output, searched, retrained, analysis

    def _stages(self) -> list[str]:
        config = self.config
        out = ["recipes"] if config.recipes.enabled else []
        out.append("search")
        out += ["retrain"] if config.retrain.enabled else []
        out += ["baselines"] if config.baselines.enabled else []
        out += ["proxy-validity"] if config.proxy_validity.enabled else []
        return out

    def analyse(self) -> dict[str, Any]:
        """Every task's own analysis (its folder's study.md), then the cross-task ``study.json``/``study.md``."""
        per_task = {task.name: study.analyse() for task, study in zip(self.config.tasks.items, self.studies)}
        runs = {task.name: study.collect() for task, study in zip(self.config.tasks.items, self.studies)}
        analysis = fileio.json_safe(cross_task_analysis(self.config, runs, per_task))
        self.output.mkdir(parents=True, exist_ok=True)
        fileio.atomic_write_text(self.output / "study.json", json.dumps(analysis, indent=1, allow_nan=False) + "\n")
        fileio.atomic_write_text(self.output / "study.md", cross_task_markdown(analysis))
        figure = self.output / "study.png"
        if analysis["confirmatory"]["complete"]:
            plot_cross_task(analysis, figure)
        else:  # a figure of the differences is an interim estimate: none until the family is complete
            figure.unlink(missing_ok=True)
        return analysis


def load_base(config: "StudyConfig") -> Any:
    from assemblenet.search.config import load_search_config

    return load_search_config(config.search_path)


# ---------------------------------------------------------------------- statistics
def _stratum_arrays(strata: Mapping[Any, tuple[Sequence[float], Sequence[float]]]) -> list[tuple[Any, int]]:
    import numpy as np

    return [(np.asarray(list(a) + list(b), dtype=float), len(a)) for a, b in strata.values()]


def stratified_effect(strata: Mapping[Any, tuple[Sequence[float], Sequence[float]]]) -> float:
    """The mean over strata of mean(a) - mean(b) (each stratum weighs the same)."""
    return statistics.fmean(statistics.fmean(a) - statistics.fmean(b) for a, b in strata.values())


def stratified_permutation_test(strata: Mapping[Any, tuple[Sequence[float], Sequence[float]]], *,
                                alternative: str = "greater", shift: float = 0.0, samples: int = 20000,
                                seed: int = 0) -> float:
    """One-sided p-value of the stratified effect (:func:`stratified_effect`) of ``a - shift`` against ``b``:
    labels are shuffled within each stratum only (H0: within a stratum, a's and b's values are exchangeable),
    ``samples`` Monte Carlo shuffles, p = (hits + 1) / (samples + 1).

    Hand-written because ``scipy.stats.permutation_test`` permutes across the whole sample; it has no strata, and
    pooling tasks of different difficulty would let the task mix, not the arms, drive the test. ``shift`` serves
    the equivalence test: H0 effect <= -margin is tested as ``a + margin`` greater than ``b``."""
    import numpy as np

    if alternative not in ("greater", "less"):
        raise ValueError(f"alternative must be 'greater' or 'less', got {alternative!r}")
    shifted = {k: ([x - shift for x in a], list(b)) for k, (a, b) in strata.items()}
    arrays = _stratum_arrays(shifted)
    observed = stratified_effect(shifted)
    rng = np.random.default_rng(seed)
    total = np.zeros(samples)
    for pooled, n_a in arrays:
        draws = np.argsort(rng.random((samples, pooled.size)), axis=1)
        values = pooled[draws]
        total += values[:, :n_a].mean(axis=1) - values[:, n_a:].mean(axis=1)
    effects = total / len(arrays)
    sign = 1.0 if alternative == "greater" else -1.0
    slack = 1e-12 * max(1.0, abs(observed))
    hits = int(np.count_nonzero(sign * effects >= sign * observed - slack))
    return (hits + 1) / (samples + 1)


def stratified_bootstrap_ci(strata: Mapping[Any, tuple[Sequence[float], Sequence[float]]], *,
                            samples: int = 10000, confidence: float = 0.95, seed: int = 0) -> list[float]:
    """Percentile bootstrap interval of the stratified effect, resampling each arm within each stratum (the
    strata are fixed)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    total = np.zeros(samples)
    for a, b in strata.values():
        for values, sign in ((np.asarray(a, dtype=float), 1.0), (np.asarray(b, dtype=float), -1.0)):
            total += sign * values[rng.integers(0, values.size, size=(samples, values.size))].mean(axis=1)
    effects = total / len(strata)
    return [float(q) for q in np.quantile(effects, [(1 - confidence) / 2, (1 + confidence) / 2])]


def _paired_member(h: Any, alternative: str, pairs: Mapping[tuple[str, int], tuple[float, float]], *, samples: int,
                   seed: int) -> dict[str, Any]:
    """A strategy-vs-strategy member over (task, seed) pairs, with the tests of :mod:`assemblenet.search.stats`
    (as the single-task confirmatory analysis uses them); Wilcoxon signed-rank as a second view."""
    from assemblenet.search import stats

    keys = sorted(pairs, key=str)
    a, b = [pairs[k][0] for k in keys], [pairs[k][1] for k in keys]
    interval = stats.paired_bootstrap_ci(a, b, samples=samples, seed=seed)
    row: dict[str, Any] = {"n_pairs": len(keys), "estimate": interval.estimate, "ci95": interval.to_list(),
                           "ci_method": "paired percentile bootstrap over (task, seed) pairs",
                           "differences": {f"{k[0]}/seed{k[1]}": x - y for k, x, y in zip(keys, a, b)}}
    if alternative == "equivalent":
        tost = stats.equivalence_test(a, b, margin=h.margin, paired=True, test=h.test, seed=seed)
        row.update({"p_value": tost.p_value, "p_lower": tost.p_lower, "p_upper": tost.p_upper})
        return row
    result = stats.difference_test(a, b, paired=True, test=h.test, alternative=alternative, seed=seed)
    row.update({"p_value": result.p_value, "statistic": result.statistic, "exact": result.exact})
    second = "wilcoxon" if h.test != "wilcoxon" else "permutation"
    if any(x != y for x, y in zip(a, b)):
        view = stats.difference_test(a, b, paired=True, test=second, alternative=alternative, seed=seed)
        row["second_view"] = {"test": second, "p_value": view.p_value}
    return row


def _stratified_member(h: Any, alternative: str, strata: Mapping[Any, tuple[Sequence[float], Sequence[float]]],
                       *, samples: int, seed: int) -> dict[str, Any]:
    """A strategy-vs-wiring member: independent samples within each task, stratified by task."""
    row: dict[str, Any] = {
        "n_a": sum(len(a) for a, _ in strata.values()), "n_b": sum(len(b) for _, b in strata.values()),
        "estimate": stratified_effect(strata),
        "ci95": stratified_bootstrap_ci(strata, samples=samples, seed=seed),
        "ci_method": "percentile bootstrap within task and arm (tasks fixed)",
        "test_used": "permutation stratified by task",
        "per_task": {str(k): {"mean_a": statistics.fmean(a), "mean_b": statistics.fmean(b), "n_a": len(a),
                              "n_b": len(b), "values_a": list(a), "values_b": list(b)}
                     for k, (a, b) in strata.items()},
    }
    perms = max(2000, samples)
    if alternative == "equivalent":
        low = stratified_permutation_test(strata, alternative="greater", shift=-h.margin, samples=perms, seed=seed)
        high = stratified_permutation_test(strata, alternative="less", shift=h.margin, samples=perms, seed=seed)
        row.update({"p_value": max(low, high), "p_lower": low, "p_upper": high})
    else:
        row["p_value"] = stratified_p_value(strata, alternative, samples=perms, seed=seed)
    return row


def stratified_p_value(strata: Mapping[Any, tuple[Sequence[float], Sequence[float]]], alternative: str, *,
                       samples: int, seed: int) -> float:
    """The stratified permutation test's p-value for ``greater``, ``less`` or ``two-sided`` (twice the smaller
    one-sided p, at most 1)."""
    if alternative != "two-sided":
        return stratified_permutation_test(strata, alternative=alternative, samples=samples, seed=seed)
    up = stratified_permutation_test(strata, alternative="greater", samples=samples, seed=seed)
    down = stratified_permutation_test(strata, alternative="less", samples=samples, seed=seed)
    return min(1.0, 2 * min(up, down))


def _members(h: Any) -> list[tuple[str, str]]:
    if h.alternative == "equivalent":
        return [(h.name, "equivalent")]
    if h.margin is not None:
        return [(h.name, h.alternative), (f"{h.name} (equivalence)", "equivalent")]
    return [(h.name, h.alternative)]


def strategy_values(runs_by_task: Mapping[str, Sequence[Any]], per_task: Mapping[str, Mapping[str, Any]],
                    strategy: str, endpoint: str) -> dict[tuple[str, int], float]:
    """A strategy's finished values of ``endpoint`` keyed by (task, search seed): each task's values as the
    single-task analysis reads them (``confirmatory.strategy_values``), finite ones only."""
    from assemblenet.search.study.confirmatory import strategy_values as task_strategy_values

    out: dict[tuple[str, int], float] = {}
    for task, runs in runs_by_task.items():
        retrain = (per_task.get(task) or {}).get("retrain") or {}
        values = task_strategy_values(strategy, endpoint, runs, retrain.get("entries", []))
        out.update({(task, seed): value for seed, value in values.items() if math.isfinite(value)})
    return out


def wiring_values(per_task: Mapping[str, Mapping[str, Any]], wiring: str) -> dict[str, list[float]]:
    """A fixed wiring's test scores per task (one per training seed)."""
    out: dict[str, list[float]] = {}
    for task, analysis in per_task.items():
        entry = (((analysis or {}).get("baselines") or {}).get("baselines") or {}).get(wiring)
        if entry:
            out[task] = [float(v) for v in entry["scores"]]
    return out


def cross_task_analysis(config: "StudyConfig", runs_by_task: Mapping[str, Sequence[Any]],
                        per_task: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The cross-task ``study.json``: the declared hypotheses, each member's counts (and once every member of the
    family is complete, its estimate, interval, p-value, Holm-adjusted p-value and verdict), the power reached,
    and the per-task (stratified) tables of every strategy and wiring."""
    import zlib

    from assemblenet.config_schema import to_plain

    tasks = [t.name for t in config.tasks.items]
    n_seeds = len(config.seeds)
    family = config.hypotheses.confirmatory
    members: list[dict[str, Any]] = []
    paired_differences: list[tuple[str, Any, str, list[float]]] = []  # member, hypothesis, alternative, values
    stratified_samples: list[tuple[str, Any, str, dict[str, tuple[list[float], list[float]]]]] = []
    gathered = []
    for h in family:
        a_arm, b_arm = h.comparison.a, h.comparison.b
        a_values = strategy_values(runs_by_task, per_task, cast(str, a_arm.strategy), h.endpoint)
        b_values: dict[tuple[str, int], float] = {}
        wiring: dict[str, list[float]] = {}
        if b_arm.strategy is not None:
            b_values = strategy_values(runs_by_task, per_task, b_arm.strategy, h.endpoint)
            need_b, have_b, unit_b = len(tasks) * n_seeds, len(b_values), "runs"
        else:
            wiring = wiring_values(per_task, cast(str, b_arm.wiring))
            need_b, have_b = len(tasks) * config.baselines.seeds, sum(len(v) for v in wiring.values())
            unit_b = "training seeds"
        progress = [{"arm": a_arm.strategy, "have": len(a_values), "need": len(tasks) * n_seeds, "unit": "runs"},
                    {"arm": b_arm.label, "have": have_b, "need": need_b, "unit": unit_b}]
        ready = len(a_values) >= len(tasks) * n_seeds and have_b >= need_b
        gathered.append((h, a_values, b_values, wiring, progress, ready))
    # The gate is the whole family: no member's estimate or p-value exists until every member has every value it
    # needs (an interim p-value of one hypothesis is exactly what pre-registration rules out).
    family_ready = bool(gathered) and all(g[-1] for g in gathered)
    for h, a_values, b_values, wiring, progress, ready in gathered:
        a_arm, b_arm = h.comparison.a, h.comparison.b
        for member, alternative in _members(h):
            row: dict[str, Any] = {"hypothesis": h.name, "member": member, "statement": h.statement,
                                   "endpoint": h.endpoint, "a": a_arm.label, "b": b_arm.label,
                                   "paired": b_arm.strategy is not None, "test": h.test, "alternative": alternative,
                                   "alpha": h.alpha, "margin": h.margin if alternative == "equivalent" else None,
                                   "progress": progress, "arms_ready": ready, "status": PENDING}
            if family_ready:
                seed = zlib.crc32(f"cross-task-{member}".encode())
                if b_arm.strategy is not None:
                    pairs = {k: (a_values[k], b_values[k]) for k in a_values if k in b_values}
                    row.update(_paired_member(h, alternative, pairs, samples=config.bootstrap_samples, seed=seed))
                    if alternative != "equivalent":
                        paired_differences.append((member, h, alternative, [a - b for a, b in pairs.values()]))
                else:
                    strata = {task: ([v for (t, _), v in a_values.items() if t == task], wiring[task])
                              for task in tasks}
                    row.update(_stratified_member(h, alternative, strata, samples=config.bootstrap_samples,
                                                  seed=seed))
                    if alternative != "equivalent":
                        stratified_samples.append((member, h, alternative, strata))
                row["status"] = COMPLETE
            members.append(row)
    complete = bool(members) and all(m["status"] == COMPLETE for m in members)
    correction = config.hypotheses.correction
    if complete:
        raw = [m["p_value"] for m in members]
        from assemblenet.search import stats

        adjusted = stats.holm(raw) if correction == "holm" else (
            stats.bonferroni(raw) if correction == "bonferroni" else raw)
        for m, p in zip(members, adjusted):
            m["p_adjusted"] = p
            m["supported"] = p <= m["alpha"]
    power = None
    if paired_differences or stratified_samples:
        from assemblenet.search.study.power import power_statement, stratified_power_statement

        family_size = len(members) if correction != "none" else 1
        # The reference difference: the hypothesis's equivalence margin where it has one (the smallest difference
        # it calls practical), else the planning figure.
        power = [{"member": member, "kind": "paired",
                  **power_statement(d, planned_difference=h.margin or PLANNED_DIFFERENCE, alpha=h.alpha,
                                    alternative=alternative, family_size=family_size)}
                 for member, h, alternative, d in paired_differences]
        power += [{"member": member, "kind": "stratified",
                   **stratified_power_statement(strata, planned_difference=h.margin or PLANNED_DIFFERENCE,
                                                alpha=h.alpha, alternative=alternative, family_size=family_size)}
                  for member, h, alternative, strata in stratified_samples]
    return {
        "name": config.name, "tasks": [{"name": t.name, "data_seed": t.data_seed, "root": config.tasks.root(t)}
                                       for t in config.tasks.items],
        "seeds": list(config.seeds), "strategies": list(config.strategies), "budget": config.max_evaluations,
        "confirmatory": {"correction": correction, "complete": complete, "members": members,
                         "declared": [to_plain(h) for h in family],
                         "pending": [m["member"] for m in members if m["status"] == PENDING]},
        "power": power,
        "per_task": _per_task_tables(config, runs_by_task, per_task),
    }


def _per_task_tables(config: "StudyConfig", runs_by_task: Mapping[str, Sequence[Any]],
                     per_task: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Per task: each strategy's mean endpoint values (re-scored mean, final best, test score) over its finished
    runs, and each fixed wiring's mean test score (exploratory description, no tests)."""
    out: dict[str, Any] = {}
    for task in (t.name for t in config.tasks.items):
        strategies = {}
        for s in config.strategies:
            row = {}
            for endpoint in ("rescored_mean", "final_best", "test_score"):
                values = [v for (t, _), v in strategy_values({task: runs_by_task.get(task, [])}, per_task, s,
                                                             endpoint).items()]
                row[endpoint] = {"n": len(values), "mean": statistics.fmean(values) if values else None}
            strategies[s] = row
        wirings = {}
        for name in config.baselines.names:
            scores = wiring_values(per_task, name).get(task)
            if scores:
                wirings[name] = {"n": len(scores), "mean": statistics.fmean(scores)}
        out[task] = {"strategies": strategies, "wirings": wirings}
    return out


# ---------------------------------------------------------------------- markdown
def _f(value: Any, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _verdict(m: Mapping[str, Any]) -> str:
    if m["status"] != COMPLETE:
        return "pending"
    if "supported" not in m:
        return "awaiting the rest of the family"
    if m["alternative"] == "equivalent":
        margin = f"±{m['margin']:g}"
        return f"equivalent within {margin}" if m["supported"] else f"equivalence within {margin} not shown"
    return "supported" if m["supported"] else "not shown at this sample size"


def cross_task_markdown(analysis: Mapping[str, Any]) -> str:
    """The cross-task study.md: Hypotheses, Confirmatory results (counts only until the family is complete),
    the power reached, then Exploratory per-task tables."""
    conf = analysis["confirmatory"]
    tasks = analysis["tasks"]
    task_list = ", ".join(f"{t['name']} (data seed {t['data_seed']}, {t['root']})" for t in tasks)
    lines = [f"# Search study across tasks: {analysis['name']}", "",
             f"{len(tasks)} tasks ({task_list}) x {len(analysis['seeds'])} search seeds x "
             f"{', '.join(analysis['strategies'])}; {analysis['budget']} "
             "evaluations per run. The pairing unit is (task, search seed); each task's own study is in its folder.",
             "", "## Hypotheses (pre-registered in the study config)", ""]
    for h in conf["declared"]:
        arms = h["comparison"]
        b = arms["b"].get("strategy") or f"wiring {arms['b'].get('wiring')}"
        margin = f", equivalence margin ±{h['margin']:g}" if h.get("margin") is not None else ""
        lines.append(f"- **{h['name']}**: {h['statement']} (endpoint `{h['endpoint']}`, {arms['a']['strategy']} vs "
                     f"{b}, {h['test']}, {h['alternative']}, alpha {h['alpha']}{margin})")
    lines += ["", f"Correction: {conf['correction']} over all {len(conf['members'])} tests of the family.", "",
              "## Confirmatory results", ""]
    if not conf["complete"]:
        lines += ["Not every run the hypotheses need has finished, so no estimate or p-value is shown yet "
                  "(progress only):", "", "| test | arm a (have/need) | arm b (have/need) |", "|---|---|---|"]
        for m in conf["members"]:
            pa, pb = m["progress"]
            lines.append(f"| {m['member']} | {pa['arm']} {pa['have']}/{pa['need']} {pa['unit']} | {pb['arm']} "
                         f"{pb['have']}/{pb['need']} {pb['unit']} |")
        lines.append("")
    else:
        lines += ["| test | a vs b | estimate (a - b) | 95% interval | p | p (Holm) | result |",
                  "|---|---|---|---|---|---|---|"]
        for m in conf["members"]:
            ci = m.get("ci95")
            lines.append(f"| {m['member']} | {m['a']} vs {m['b']} | {_f(m['estimate'])} | "
                         f"{'-' if ci is None else f'{ci[0]:.4f}, {ci[1]:.4f}'} | {m['p_value']:.4g} | "
                         f"{m['p_adjusted']:.4g} | {_verdict(m)} |")
        lines += ["", "Paired members: sign-flip permutation over (task, seed) differences (Wilcoxon signed-rank "
                  "as a second view in study.json); members against a fixed wiring: permutation stratified by task. "
                  "'Not shown' means the difference was not measurable at this power, not that there is none.", ""]
        for m in conf["members"]:
            if m.get("second_view"):
                lines.append(f"- {m['member']}: Wilcoxon signed-rank p {m['second_view']['p_value']:.4g}")
        lines.append("")
    if analysis.get("power"):
        lines += ["## Power reached", ""]
        for p in analysis["power"]:
            if p.get("kind") == "stratified":
                lines.append(_stratified_power_line(p))
                continue
            if p.get("sd") is None or p.get("detectable") is None:
                lines.append(f"- {p['member']}: {p['n_pairs']} pairs whose differences have no spread (SD "
                             f"{_f(p.get('sd'))}): no power figure.")
                continue
            lines.append(f"- {p['member']}: {p['n_pairs']} pairs, measured paired SD {p['sd']:.4f}: "
                         f"{_power_reached(p)}.")
        lines.append("")
    lines += ["## Exploratory: per task", "",
              "Means over each task's finished runs (no tests; the confirmatory tests above are the ones declared).",
              "", "| task | strategy | runs | re-scored mean | final best | test score |", "|---|---|---|---|---|---|"]
    for task, table in analysis["per_task"].items():
        for s, row in table["strategies"].items():
            lines.append(f"| {task} | {s} | {row['rescored_mean']['n']} | {_f(row['rescored_mean']['mean'])} | "
                         f"{_f(row['final_best']['mean'])} | {_f(row['test_score']['mean'])} |")
        for name, row in table["wirings"].items():
            lines.append(f"| {task} | wiring {name} | {row['n']} seeds | - | - | {_f(row['mean'])} |")
    lines += ["", "Each task's study: " + ", ".join(f"[{t['name']}]({t['name']}/study.md)" for t in tasks), ""]
    return "\n".join(lines)


def _stratified_power_line(p: Mapping[str, Any]) -> str:
    counts = f"{p['n_a']} runs against {p['n_b']} training seeds over {p['tasks']} tasks"
    if p.get("detectable") is None:
        return f"- {p['member']}: {counts}: no power figure ({p.get('reason', 'no spread')})."
    per_task = "; ".join(f"{task} {a:.3f} and {b:.3f}" for task, (a, b) in p["sd_per_task"].items())
    return (f"- {p['member']}: {counts}, pooled within-task SDs {p['sd_a']:.4f} and {p['sd_b']:.4f} (per task: "
            f"{per_task}; standard error of the effect {p['se']:.4f}): "
            f"{_power_reached(p, method='Welch t approximation of the stratified permutation test')}.")


def _power_reached(p: Mapping[str, Any], method: str | None = None) -> str:
    """The sentence both kinds of power statement end with: the detectable difference at alpha and at the strictest
    corrected level, and the power at the reference difference."""
    sides = "two-sided" if p.get("alternative") == "two-sided" else "one-sided"
    return (f"80% power at a difference of {p['detectable']:.4f} ({sides} alpha {p['alpha']}; "
            f"{p['detectable_holm_strictest']:.4f} at the strictest corrected level "
            f"{p['alpha'] / p['family_size']:.4g}{'; ' + method if method else ''}); power at "
            f"{p['planned_difference']}: {p['power_at_planned']:.2f}")


# ---------------------------------------------------------------------- figure
def figure_columns(members: Sequence[Mapping[str, Any]]) -> list[tuple[Mapping[str, Any], Mapping[str, Any] | None]]:
    """One column per hypothesis: its directional member with its equivalence twin (or None), or, for a hypothesis
    that is only an equivalence test, that member alone."""
    by_hypothesis: dict[str, list[Mapping[str, Any]]] = {}
    for m in members:
        by_hypothesis.setdefault(m["hypothesis"], []).append(m)
    columns: list[tuple[Mapping[str, Any], Mapping[str, Any] | None]] = []
    for group in by_hypothesis.values():
        directional = [m for m in group if m["alternative"] != "equivalent"]
        equivalence = [m for m in group if m["alternative"] == "equivalent"]
        if directional:
            columns.append((directional[0], equivalence[0] if equivalence else None))
        else:
            columns.append((equivalence[0], None))
    return columns


def plot_cross_task(analysis: Mapping[str, Any], path: Path) -> None:
    """The confirmatory results as ``study.png``, drawn only once the family is complete: one column per hypothesis
    (:func:`figure_columns`), each task's contribution as coloured points (paired tests: every (task, seed)
    difference; tests against a wiring: each task's difference of means), the estimate with its 95% interval in
    black, zero as a line, the equivalence margin as a grey band, and the corrected p-values under each column."""
    from assemblenet.search.plotting import finish_figure, new_figure

    conf = analysis["confirmatory"]
    columns = figure_columns(conf["members"])
    tasks = [t["name"] for t in analysis["tasks"]]
    correction = conf.get("correction", "holm")
    figure = new_figure(max(4.8, 1.7 * len(columns) + 1.6), 4.6)
    axes = figure.add_subplot()
    labelled: set[str] = set()
    labels = []
    for x, (m, twin) in enumerate(columns):
        equivalence = twin if twin is not None else (m if m["alternative"] == "equivalent" else None)
        if equivalence is not None and equivalence.get("margin") is not None:
            margin = equivalence["margin"]
            axes.fill_between([x - 0.4, x + 0.4], -margin, margin, color="0.85", linewidth=0,
                              label=None if "margin" in labelled else "equivalence margin")
            labelled.add("margin")
        for k, task in enumerate(tasks):
            if m["paired"]:
                points = [d for key, d in m.get("differences", {}).items() if key.split("/")[0] == task]
            else:
                row = (m.get("per_task") or {}).get(task)
                points = [row["mean_a"] - row["mean_b"]] if row else []
            offsets = [0.25 * ((i + 0.5) / len(points) - 0.5) for i in range(len(points))]
            axes.scatter([x - 0.15 + 0.15 * k / max(1, len(tasks) - 1) + o * 0.5 for o in offsets], points,
                         color=f"C{k}", s=14, alpha=0.75, label=None if task in labelled else task)
            labelled.add(task)
        low, high = m["ci95"]
        axes.errorbar([x + 0.3], [m["estimate"]], yerr=[[m["estimate"] - low], [high - m["estimate"]]],
                      color="k", marker="D", markersize=5, capsize=3, linestyle="none",
                      label=None if "estimate" in labelled else "estimate, 95% interval")
        labelled.add("estimate")
        label = f"{m['hypothesis']}: {m['endpoint']}\n{m['a']} - {m['b']}"
        label += f"\n{'equivalence ' if m is equivalence else ''}p ({correction}) {m['p_adjusted']:.3g}"
        if twin is not None:
            label += f"\nequivalence p ({correction}) {twin['p_adjusted']:.3g}"
        labels.append(label)
    axes.axhline(0.0, color="0.4", linewidth=0.8)
    axes.set_xticks(range(len(columns)))
    axes.set_xticklabels(labels, fontsize="x-small")
    axes.set_ylabel("difference a - b in the test's endpoint")
    axes.set_title(f"{analysis['name']}: confirmatory tests (points: per task)", fontsize="small")
    finish_figure(figure, axes, path, legend_loc="best")
