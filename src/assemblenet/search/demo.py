"""The ``assemblenet demo`` pipeline, end to end on a 2-core CPU in a few minutes:

1. the compositional synthetic task (:mod:`assemblenet.data.compositional`: classes that need colour, motion
   and two temporal scales), with fixed train / val / test splits;
2. connection-learning-guided evolution over the asn50 space (RGB and flow stems) on a short proxy, scored on
   val;
3. the best graph found, the late-fusion two-stream network of the same stems and the official asn50 wiring
   (:mod:`assemblenet.search.baselines`), each trained from scratch for the same budget with the same recipe;
4. all three evaluated on the test split, which neither the search nor the training saw;
5. a report folder with the comparison, the search curves, the graphs and the training curves.

It also prints how many of the search's children were guided connection mutations, the method's core.

Every step leaves its outputs in the demo folder and is skipped when they exist, so rerunning the command
resumes: the data are reused, the search resumes from its run folder, and a model whose result file exists is
not trained again.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable

from assemblenet.errors import ConfigError
from assemblenet.fileio import atomic_dir, atomic_path, atomic_write_json, atomic_write_text, remove_stale_temporaries

logger = logging.getLogger(__name__)

NUM_STEPS = 5
RESULT_FILE = "demo_result.json"  # training outcome, written when a model's training finished
EVAL_FILE = "demo_eval.json"  # step 4's test metrics
SEARCHED = "searched"
LATE_FUSION = "late_fusion"
ASN50 = "asn50"
MODELS = ((SEARCHED, "best graph of the guided search"),
          (LATE_FUSION, "late-fusion two-stream, same stems"),
          (ASN50, "official asn50 wiring"))
# Metric names as the engine reports them, in table order.
TABLE_METRICS = (("top1", "test top-1"), ("map", "test mAP"), ("top5", "test top-5"),
                 ("mean_class_accuracy", "test mean class acc."))
SPACE = {  # the asn50 space: it holds the official asn50 graph and the late-fusion network
    "stems": ["rgb", "rgb", "flow", "flow"], "stem_dilations": [1, 2, 4, 8], "dilations": [1, 2, 4, 8],
    "nodes_per_level": [4, 4, 2, 1], "min_nodes_per_level": [1, 1, 1, 1], "max_nodes_per_level": [8, 8, 4, 2],
    "level_filters": [128, 256, 512, 512], "filter_quantum": 8, "initial_edge_probability": 0.8,
}


@dataclass(frozen=True)
class DemoSettings:
    """The demo's budget. The search's proxy and the final models share data, clips and recipe."""

    train_videos: int = 480
    val_videos: int = 160
    test_videos: int = 240
    video_size: int = 32
    video_frames: int = 16
    num_frames: int = 8
    crop_size: int = 32
    width_multiplier: float = 0.125
    depth: int = 26
    batch_size: int = 8
    evaluations: int = 12
    population_size: int = 6
    tournament_size: int = 3
    search_steps: int = 48
    connection_lr_multiplier: float = 10.0
    precise_bn_batches: int = 4
    train_steps: int = 250
    eval_clips: int = 2
    workers: int = 2  # local search processes (each with one torch thread)
    train_threads: int = 1
    finalists_top_k: int = 3  # the search's result: the best mean of the top 3 graphs re-scored with 2 fresh seeds
    finalists_seeds: int = 2


FULL = DemoSettings()
# For tests and a first look: well under a minute. The numbers mean little at this size.
QUICK = DemoSettings(train_videos=32, val_videos=16, test_videos=16, video_size=32, video_frames=8, num_frames=4,
                     evaluations=4, population_size=2, tournament_size=2, search_steps=3, precise_bn_batches=1,
                     train_steps=4, eval_clips=1, workers=1, finalists_top_k=2, finalists_seeds=1)


@dataclass(frozen=True)
class ModelOutcome:
    name: str
    description: str
    metrics: dict[str, float]
    parameters: int
    train_seconds: float
    steps: int
    eval_views: int = 0  # views per test video in ``metrics`` (0: the training run's own final validation)
    top1_hits: tuple[int, ...] = ()  # per test video: 1 when its top-1 prediction is right (for the interval)

    def top1_interval(self) -> Any:
        """Test top-1 with its 95% bootstrap interval over the test videos (None without per-video hits)."""
        from assemblenet.search.stats import bootstrap_mean_ci

        return bootstrap_mean_ci(self.top1_hits) if self.top1_hits else None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class DemoResult:
    output: Path
    models: list[ModelOutcome]
    mutations: dict[str, Any]
    table: str
    report: Path
    wall_seconds: float


# ------------------------------------------------------------------------------------------- configuration
def engine_overrides(settings: DemoSettings, data_root: Path, *, seed: int, eval_split: str = "val",
                     eval_clips: int | None = None) -> dict[str, Any]:
    """Dotted engine-config overrides shared by the search's proxy runs and the final training runs."""
    return {
        "name": "demo",
        "seed": seed,
        "model.name": "assemblenet50_searchable",
        "model.num_classes": 16,
        "model.depth": settings.depth,
        "model.width_multiplier": settings.width_multiplier,
        "model.flow_iterations": 10,
        "data.dataset": "synthetic",
        "data.train": {"root": str(data_root), "split": "train", "annotation": "kinetics", "cache_frames": True},
        "data.val": {"root": str(data_root), "split": eval_split, "annotation": "kinetics", "cache_frames": True},
        "data.num_frames": settings.num_frames,
        "data.crop_size": settings.crop_size,
        "data.batch_size": settings.batch_size,
        "data.num_workers": 0,
        "optim.lr": 0.1,
        "optim.reference_batch_size": 8,
        "optim.warmup_steps": 5,
        "optim.connection_lr_multiplier": settings.connection_lr_multiplier,
        "train.device": "cpu",
        "train.eval_every_epochs": 0,
        "train.log_every_steps": 10,
        "train.checkpoint_every_steps": 100,
        "train.precise_bn_batches": settings.precise_bn_batches,
        "eval.num_clips": settings.eval_clips if eval_clips is None else eval_clips,
        "eval.num_crops": 1,
        "eval.metric": "top1",
        "output.tensorboard": False,
    }


def search_config_dict(settings: DemoSettings, data_root: Path, *, seed: int) -> dict[str, Any]:
    """The demo search: guided evolution over the asn50 space, proxy fitness = val mAP."""
    return {
        "name": "demo",
        "seed": seed,
        "strategy": "evolution",
        "space": {**SPACE, "width_multiplier": settings.width_multiplier},
        "search": {
            "max_evaluations": settings.evaluations,
            "batch_size": 2,
            "population_size": settings.population_size,
            "tournament_size": settings.tournament_size,
            "finalists": {"top_k": settings.finalists_top_k, "seeds": settings.finalists_seeds},
        },
        "fitness": {
            "kind": "proxy-training",
            "config": None,
            "steps": settings.search_steps,
            "metric": "map",
            "device": "cpu",
            "overrides": engine_overrides(settings, data_root, seed=seed, eval_clips=1),
        },
        "executor": {"kind": "local", "workers": settings.workers, "torch_threads": 1},
    }


def settings_for(settings: DemoSettings, evaluations: int) -> DemoSettings:
    """``settings`` with another search budget; the population shrinks to leave evaluations for children."""
    if evaluations < 2:
        raise ConfigError(f"--evaluations must be at least 2, got {evaluations}")
    population = min(settings.population_size, max(2, evaluations // 2))
    return replace(settings, evaluations=evaluations, population_size=population,
                   tournament_size=min(settings.tournament_size, population))


# ------------------------------------------------------------------------------------------- the pipeline
class _Steps:
    """One line per step with its elapsed time and the total so far."""

    def __init__(self, echo: Callable[[str], None]) -> None:
        self.echo = echo
        self.start = time.perf_counter()
        self.number = 0

    def begin(self, title: str) -> float:
        self.number += 1
        self.echo(f"[{self.number}/{NUM_STEPS}] {title} ...")
        return time.perf_counter()

    def end(self, started: float, note: str) -> None:
        now = time.perf_counter()
        self.echo(f"[{self.number}/{NUM_STEPS}] {note} ({now - started:.1f} s; total {now - self.start:.1f} s)")


def run_demo(output: str | os.PathLike = "demo_output", *, quick: bool = False, seed: int = 0,
             evaluations: int | None = None, progress: bool = True,
             echo: Callable[[str], None] = print) -> DemoResult:
    """Run the whole demo in ``output`` (resuming what a previous run left) and return the comparison."""
    from assemblenet.search.baselines import baseline_graph

    settings = QUICK if quick else FULL
    if evaluations is not None:
        settings = settings_for(settings, evaluations)
    out = Path(output).resolve()
    out.mkdir(parents=True, exist_ok=True)
    steps = _Steps(echo)
    echo(f"AssembleNet demo ({'quick' if quick else 'full'}) in {out}; rerun the same command to resume")

    started = steps.begin("compositional synthetic task (colour x direction x blink x course, 16 classes)")
    data_root = out / "data" / "compositional"
    steps.end(started, _make_data(data_root, settings, progress=progress))

    started = steps.begin(f"guided evolutionary search ({settings.evaluations} candidates, "
                          f"{settings.search_steps} proxy steps each, fitness: val mAP)")
    best_graph, search_note, mutations, space = _search(out, settings, data_root, seed=seed, progress=progress)
    steps.end(started, search_note)
    echo(f"      {mutation_line(mutations)}")

    started = steps.begin(f"training three wirings from scratch ({settings.train_steps} steps each)")
    graphs = {SEARCHED: best_graph, LATE_FUSION: baseline_graph("late_fusion", space),
              ASN50: baseline_graph("asn50", space)}
    train_dir = out / "train"
    datasets: dict[str, Any] = {}
    trained = [_train(train_dir / name, name, description, graphs[name], settings, data_root, seed=seed,
                      progress=progress, datasets=datasets, echo=echo) for name, description in MODELS]
    steps.end(started, "trained " + ", ".join(f"{m.name} in {m.train_seconds:.0f} s" for m in trained))

    started = steps.begin(f"evaluating on the test split ({settings.eval_clips} clips per video)")
    evaluated = [_evaluate(train_dir / m.name, m, settings, data_root, seed=seed, progress=progress) for m in trained]
    table = comparison_table(evaluated)
    steps.end(started, f"evaluated on {int(evaluated[0].metrics.get('num_videos', 0))} test videos; "
                       f"{top1_verdict(evaluated)}")

    started = steps.begin("report")
    report = _write_report(out, settings, seed=seed, models=evaluated, table=table, mutations=mutations,
                           progress=progress)
    steps.end(started, f"wrote {report}")

    wall = time.perf_counter() - steps.start
    echo("")
    echo(table)
    echo("")
    echo(mutation_line(mutations))
    echo(f"report: {report}   (total {wall:.0f} s)")
    return DemoResult(output=out, models=evaluated, mutations=mutations, table=table, report=report,
                      wall_seconds=wall)


def _make_data(data_root: Path, settings: DemoSettings, *, progress: bool) -> str:
    from assemblenet.data.compositional import make_compositional
    from assemblenet.data.synthetic import MANIFEST_FILE

    if (data_root / MANIFEST_FILE).is_file():
        return f"reusing {data_root}"
    # Written next to the final folder and renamed, so an interrupted run never leaves a half set that looks done.
    remove_stale_temporaries(data_root.parent)  # the half set of a killed run
    with atomic_dir(data_root) as partial:
        make_compositional(partial, train_videos=settings.train_videos, val_videos=settings.val_videos,
                           test_videos=settings.test_videos, size=settings.video_size,
                           num_frames=settings.video_frames, progress=progress)
    total = settings.train_videos + settings.val_videos + settings.test_videos
    return (f"wrote {total} videos ({settings.train_videos} train / {settings.val_videos} val / "
            f"{settings.test_videos} test) to {data_root}")


def mutation_counts(run_dir: Path) -> dict[str, Any]:
    """Children of the search by mutation kind, and the guided connection mutations among them."""
    from assemblenet.search.store import RunStore, mutation_kind_counts

    store = RunStore(run_dir)
    config = (store.read_manifest() or {}).get("config", {})
    share = float(config.get("mutation", {}).get("probabilities", {}).get("connection", 0.0))
    total_p = sum(config.get("mutation", {}).get("probabilities", {}).values()) or 1.0
    by_kind = mutation_kind_counts(store.read_records().values())
    children = sum(by_kind.values())
    return {"children": children, "by_kind": by_kind,
            "guided_connection": by_kind.get("connection-guided", 0), "configured_share": share / total_p}


def mutation_line(mutations: dict[str, Any]) -> str:
    children, fired = mutations["children"], mutations["guided_connection"]
    share = fired / children if children else 0.0
    return (f"guided connection mutations: {fired} of {children} children ({share:.0%}; configured share "
            f"{mutations['configured_share']:.0%})")


def _search(out: Path, settings: DemoSettings, data_root: Path, *, seed: int,
            progress: bool) -> tuple[Any, str, dict[str, Any], Any]:
    from assemblenet.search.config import search_config_from_dict
    from assemblenet.search.evolution import SearchError, SearchRunner, run_dir_name

    config = search_config_from_dict(search_config_dict(settings, data_root, seed=seed), source="demo search")
    run_dir = out / "search" / run_dir_name(config.strategy, config.seed)
    resumed = (run_dir / "state.json").is_file()
    # The search's progress bar shows each candidate's fitness; the engine's per-candidate lines would bury it.
    engine_log = logging.getLogger("assemblenet.engine")
    level = engine_log.level
    engine_log.setLevel(logging.WARNING)
    try:
        summary = SearchRunner(config, run_dir=run_dir, progress=progress).run()
    finally:
        engine_log.setLevel(level)
    if summary.chosen is None:
        raise SearchError(f"the demo search found no trainable graph; see {run_dir}/evaluations")
    best, chosen = summary.best, summary.chosen
    note = (f"{'resumed; ' if resumed else ''}{summary.evaluations} candidates, best single proxy val mAP "
            f"{best.fitness:.3f} (candidate {best.index})")
    if summary.finalists:
        top = summary.finalists[0]
        note += (f"; chosen by re-scoring the top {len(summary.finalists)} with {settings.finalists_seeds} fresh "
                 f"seeds: candidate {chosen.index}, mean {top.mean:.3f}")
    return chosen.graph.without_edge_weights(), note, mutation_counts(run_dir), config.space


def _train(folder: Path, name: str, description: str, graph: Any, settings: DemoSettings, data_root: Path, *,
           seed: int, progress: bool, datasets: dict[str, Any], echo: Callable[[str], None]) -> ModelOutcome:
    result_path = folder / RESULT_FILE
    if result_path.is_file():
        data = json.loads(result_path.read_text(encoding="utf-8"))
        echo(f"      {name}: reusing {result_path}")
        return ModelOutcome(**data)
    from assemblenet.engine import load_config, run_training
    from assemblenet.engine.trainer import build_split
    from assemblenet.graph.io import save_graph

    overrides = engine_overrides(settings, data_root, seed=seed, eval_clips=1)
    if not datasets:  # decoded once, shared by every model
        cfg = load_config(None, list(overrides.items()))
        datasets.update(train_dataset=build_split(cfg, "train"), val_dataset=build_split(cfg, "val"))
    folder.mkdir(parents=True, exist_ok=True)
    save_graph(graph, folder / "graph.yaml")
    echo(f"      {name}: {description}")
    start = time.perf_counter()
    result = run_training(None, graph=graph, output_dir=folder, seed=seed, max_steps=settings.train_steps,
                          overrides=overrides, num_threads=settings.train_threads, progress=progress, **datasets)
    seconds = time.perf_counter() - start
    if result.resumed_from is not None:  # only the resumed part was timed
        seconds = math.nan
    outcome = ModelOutcome(
        name=name, description=description,
        metrics={k: float(v) for k, v in result.metrics.items() if isinstance(v, (int, float))},
        parameters=sum(p.numel() for p in result.model.parameters()),
        train_seconds=seconds, steps=result.steps,
    )
    if result.learned_graph is not None:
        save_graph(result.learned_graph, folder / "learned_graph.yaml")
    atomic_write_json(result_path, outcome.to_dict())
    return outcome


def _evaluate(folder: Path, outcome: ModelOutcome, settings: DemoSettings, data_root: Path, *, seed: int,
              progress: bool) -> ModelOutcome:
    """Evaluate the saved model of ``folder`` (``model.safetensors``) on the test split."""
    eval_path = folder / EVAL_FILE
    saved = json.loads(eval_path.read_text(encoding="utf-8")) if eval_path.is_file() else {}
    if "top1_hits" in saved:  # written by this version (older files lack the per-video hits: evaluated again)
        metrics = saved
    else:
        import torch

        from assemblenet.engine import evaluate, load_config, load_trained_model
        from assemblenet.engine.trainer import build_split

        torch.set_num_threads(settings.train_threads)
        model, _ = load_trained_model(folder)
        cfg = load_config(None, list(engine_overrides(settings, data_root, seed=seed, eval_split="test").items()))
        result = evaluate(model, build_split(cfg, "val"), batch_size=cfg.eval.batch_size, progress=progress,
                          desc=f"test {outcome.name}")
        metrics = {k: float(v) for k, v in result.metrics.items() if isinstance(v, (int, float))}
        metrics["top1_hits"] = [int(h) for h in (result.scores.argmax(axis=1) == result.targets)]
        atomic_write_json(eval_path, metrics)
    hits = tuple(int(h) for h in metrics.pop("top1_hits"))
    return replace(outcome, metrics=metrics, eval_views=settings.eval_clips, top1_hits=hits)


def _metric(outcome: ModelOutcome, key: str) -> float:
    value = outcome.metrics.get(key)
    return -math.inf if value is None or not math.isfinite(value) else value


def top1_verdict(outcomes: list[ModelOutcome]) -> str:
    """The highest test top-1 by point estimate, with no winner named: each model is one training seed, an
    interval over test videos leaves the training-seed noise out, and whether intervals overlap is not a test of a
    difference (issue 27), so the demo tests no difference between models."""
    best = max(outcomes, key=lambda m: _metric(m, "top1"))
    return (f"highest test top-1 by point estimate: {best.name} ({_metric(best, 'top1'):.3f}); one training seed per "
            "model, so no difference between the models is tested here")


def comparison_table(outcomes: list[ModelOutcome]) -> str:
    """A Markdown table: one row per model, its test metrics (top-1 with its 95% bootstrap interval over the test
    videos), parameters and training time."""
    from assemblenet.search.stats import format_interval

    header = ["model", *[title + (" [95% interval]" if key == "top1" else "") for key, title in TABLE_METRICS],
              "parameters", "train steps", "train time"]
    rows = [header, ["---"] * len(header)]
    for outcome in outcomes:
        cells = [f"{outcome.name}: {outcome.description}"]
        for key, _ in TABLE_METRICS:
            value = outcome.metrics.get(key)
            interval = outcome.top1_interval() if key == "top1" else None
            if interval is not None:
                cells.append(format_interval(interval))
                continue
            cells.append("-" if value is None or not math.isfinite(value) else f"{value:.3f}")
        seconds = outcome.train_seconds
        cells += [f"{outcome.parameters:,}", str(outcome.steps),
                  "-" if seconds is None or not math.isfinite(seconds) else f"{seconds:.0f} s"]
        rows.append(cells)
    return "\n".join("| " + " | ".join(row) + " |" for row in rows)


def _write_report(out: Path, settings: DemoSettings, *, seed: int, models: list[ModelOutcome], table: str,
                  mutations: dict[str, Any], progress: bool) -> Path:
    from tqdm import tqdm

    from assemblenet.graph.io import load_graph
    from assemblenet.graph.plot import plot_graph
    from assemblenet.search.report import write_report

    report_dir = out / "report"
    report_dir.mkdir(parents=True, exist_ok=True)
    figures: list[str] = []
    warnings: list[str] = []

    def search_plots() -> None:
        search_report = write_report([out / "search"], report_dir / "search")
        for png in sorted((search_report.parent / "plots").glob("*.png")):
            figures.append(str(png.relative_to(report_dir)))

    def graph_plots() -> None:
        for model in models:
            path = out / "train" / model.name / "learned_graph.yaml"
            if not path.is_file():
                path = out / "train" / model.name / "graph.yaml"
            png = report_dir / f"graph_{model.name}.png"
            plot_graph(load_graph(path), png, title=f"{model.name} ({path.name})")
            figures.append(png.name)

    def training_curves() -> None:
        for model in models:
            source = out / "train" / model.name / "training_curves.png"
            if source.is_file():
                target = report_dir / f"training_curves_{model.name}.png"
                with atomic_path(target) as tmp:
                    shutil.copyfile(source, tmp)
                figures.append(target.name)
            else:
                warnings.append(f"no training curves for {model.name} (the engine wrote none)")

    tasks = (("search plots", search_plots), ("graph drawings", graph_plots), ("training curves", training_curves))
    for _, task in tqdm(tasks, desc="report", unit="part", disable=not progress):
        try:
            task()
        except Exception as exc:  # noqa: BLE001 - a figure must never fail a finished demo
            warnings.append(f"{task.__name__}: {exc}")
            logger.warning("report: %s failed: %s", task.__name__, exc)

    total = settings.train_videos + settings.val_videos + settings.test_videos
    lines = [
        "# AssembleNet demo", "",
        f"Compositional synthetic task ({total} videos, 16 classes: colour x direction x blink x course; "
        f"{settings.train_videos} train / {settings.val_videos} val / {settings.test_videos} test), seed {seed}. "
        f"Guided evolution searched {settings.evaluations} graphs of the asn50 space (RGB and flow stems, four "
        f"levels), each trained {settings.search_steps} steps on the proxy and scored by val mAP. The best graph, "
        f"the late-fusion two-stream network of the same stems and the official asn50 wiring were then trained "
        f"from scratch for {settings.train_steps} steps each with the same recipe ({settings.num_frames} frames of "
        f"{settings.crop_size}x{settings.crop_size}, width x{settings.width_multiplier}, depth {settings.depth}, "
        f"batch {settings.batch_size}) and evaluated on the test split ({settings.eval_clips} clip(s) per video).",
        "", table, "", mutation_line(mutations), "",
        "Children by mutation kind: " + ", ".join(f"{k} {v}" for k, v in mutations["by_kind"].items()), "",
        "Settings: `" + json.dumps(asdict(settings)) + "`", "",
        "## Figures", "",
        *[f"![{Path(f).stem}]({f})" for f in figures],
    ]
    if warnings:
        lines += ["", "## Warnings", "", *[f"- {w}" for w in warnings]]
    report = report_dir / "report.md"
    atomic_write_text(report, "\n".join(lines) + "\n")
    atomic_write_json(report_dir / "comparison.json",
                      {"settings": asdict(settings), "seed": seed, "mutations": mutations,
                       "models": [m.to_dict() for m in models]})
    return report
