"""The ``assemblenet demo`` pipeline: synthetic data, a short guided search, and the best graph against a fixed
two-stream baseline, trained and evaluated with the same budget, with a report folder.

Every step leaves its outputs in the demo folder and is skipped when they exist, so rerunning the command
resumes: the synthetic set is reused, the search resumes from its run folder, and a trained model whose
``demo_result.json`` exists is not trained again.
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

from assemblenet.fileio import atomic_path, atomic_write_json, atomic_write_text

log = logging.getLogger(__name__)

NUM_STEPS = 5
RESULT_FILE = "demo_result.json"  # training outcome, written when a model's training finished
EVAL_FILE = "demo_eval.json"  # step 4's metrics
SEARCHED = "searched"
BASELINE = "baseline"
# Metric names as the engine reports them (TrainResult.metrics), in table order.
TABLE_METRICS = (("top1", "val top-1"), ("map", "val mAP"), ("top5", "val top-5"),
                 ("mean_class_accuracy", "val mean class acc."))


@dataclass(frozen=True)
class DemoSettings:
    """The demo's budget. Search candidates and the two final models share the data and clip settings."""

    videos: int = 300
    video_frames: int = 32
    video_size: int = 64
    num_frames: int = 8
    crop_size: int = 32
    width_multiplier: float = 0.125
    depth: int = 26
    batch_size: int = 8
    evaluations: int = 16
    population_size: int = 6
    tournament_size: int = 3
    search_steps: int = 48
    train_steps: int = 400
    eval_clips: int = 2
    workers: int = 2  # local search processes (each with one torch thread)
    # One thread: on a shared 2-core CPU, two OpenMP threads ran the final training 5x slower (oversubscribed).
    train_threads: int = 1


FULL = DemoSettings()
# For tests and a first look: about a minute. The numbers mean little at this size.
QUICK = DemoSettings(videos=48, video_frames=16, video_size=32, num_frames=4, crop_size=32, evaluations=4,
                     population_size=2, tournament_size=2, search_steps=3, train_steps=6, eval_clips=1, workers=1)


@dataclass(frozen=True)
class ModelOutcome:
    name: str
    description: str
    metrics: dict[str, float]
    parameters: int
    train_seconds: float
    steps: int
    eval_views: int = 0  # views per val video in ``metrics`` (0: the training run's own final validation)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class DemoResult:
    output: Path
    searched: ModelOutcome
    baseline: ModelOutcome
    table: str
    report: Path
    wall_seconds: float


# ------------------------------------------------------------------------------------------- configuration
def engine_overrides(settings: DemoSettings, data_root: Path, *, seed: int) -> dict[str, Any]:
    """Dotted engine-config overrides shared by the search's proxy runs and the final training runs."""
    return {
        "name": "demo",
        "seed": seed,
        "model.name": "assemblenet50_searchable",
        "model.num_classes": 12,
        "model.depth": settings.depth,
        "model.width_multiplier": settings.width_multiplier,
        "model.flow_iterations": 10,
        "data.dataset": "synthetic",
        "data.train": {"root": str(data_root), "split": "train", "annotation": "kinetics", "scale": [0.5, 1.0]},
        "data.val": {"root": str(data_root), "split": "val", "annotation": "kinetics"},
        "data.num_frames": settings.num_frames,
        "data.crop_size": settings.crop_size,
        "data.batch_size": settings.batch_size,
        "data.num_workers": 0,
        "optim.lr": 0.1,
        "optim.reference_batch_size": 8,
        "optim.warmup_steps": 5,
        "train.device": "cpu",
        "train.eval_every_epochs": 0,
        "train.log_every_steps": 10,
        "train.checkpoint_every_steps": 100,
        "eval.num_clips": settings.eval_clips,
        "eval.num_crops": 1,
        "eval.metric": "top1",
        "output.tensorboard": False,
    }


def search_config_dict(settings: DemoSettings, data_root: Path, *, seed: int) -> dict[str, Any]:
    """The demo search: the asn50 space (RGB and flow stems, 4 levels) with guided evolution on the proxy."""
    return {
        "name": "demo",
        "seed": seed,
        "strategy": "evolution",
        "space": {
            "stems": ["rgb", "rgb", "flow", "flow"],
            "stem_dilations": [1, 2, 4, 8],
            "dilations": [1, 2, 4, 8],
            "nodes_per_level": [4, 4, 2, 1],
            "min_nodes_per_level": [1, 1, 1, 1],
            "max_nodes_per_level": [8, 8, 4, 2],
            "level_filters": [128, 256, 512, 512],
            "filter_quantum": 8,
            "width_multiplier": settings.width_multiplier,
            "initial_edge_probability": 0.8,
        },
        "search": {
            "max_evaluations": settings.evaluations,
            "batch_size": 2,
            "population_size": settings.population_size,
            "tournament_size": settings.tournament_size,
        },
        "fitness": {
            "kind": "proxy-training",
            "config": None,
            "steps": settings.search_steps,
            "metric": "map",
            "device": "cpu",
            "overrides": engine_overrides(replace(settings, eval_clips=1), data_root, seed=seed),
        },
        "executor": {"kind": "local", "workers": settings.workers, "torch_threads": 1},
    }


def baseline_graph(level_filters: tuple[int, ...] = (128, 256, 512, 512), dilations: tuple[int, int] = (1, 4)) -> Any:
    """RGB-only two-stream late fusion: two RGB stems, each feeding its own chain of level-0..2 nodes, merged
    only at one level-3 node. Each level's channel budget is split between the streams as in the search space."""
    from assemblenet.graph.spec import AssembleNetGraph, BlockNode, StemNode, StemType
    from assemblenet.search.draft import spatial_stride_for_level

    nodes: list[Any] = [StemNode(StemType.RGB, d) for d in dilations]
    previous = [0, 1]
    for level in range(3):
        current = []
        for stream, dilation in enumerate(dilations):
            current.append(len(nodes))
            nodes.append(BlockNode(level=level, inputs=(previous[stream],), filters=level_filters[level] // 2,
                                   temporal_dilation=dilation, spatial_stride=spatial_stride_for_level(level)))
        previous = current
    nodes.append(BlockNode(level=3, inputs=tuple(previous), filters=level_filters[3], temporal_dilation=1,
                           spatial_stride=spatial_stride_for_level(3)))
    return AssembleNetGraph(nodes=tuple(nodes), name="rgb_two_stream_late_fusion")


# ------------------------------------------------------------------------------------------- the pipeline
def _settings_for(settings: DemoSettings, evaluations: int) -> DemoSettings:
    """``settings`` with another search budget; the population shrinks to leave evaluations for children."""
    if evaluations < 2:
        from assemblenet.errors import ConfigError

        raise ConfigError(f"--evaluations must be at least 2, got {evaluations}")
    population = min(settings.population_size, max(2, evaluations // 2))
    return replace(settings, evaluations=evaluations, population_size=population,
                   tournament_size=min(settings.tournament_size, population))


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
    settings = QUICK if quick else FULL
    if evaluations is not None:
        settings = _settings_for(settings, evaluations)
    out = Path(output).resolve()
    out.mkdir(parents=True, exist_ok=True)
    steps = _Steps(echo)
    mode = "quick" if quick else "full"
    echo(f"AssembleNet demo ({mode}) in {out}; rerun the same command to resume")

    started = steps.begin("synthetic data")
    data_root = out / "data" / "synthetic"
    note = _make_data(data_root, settings, progress=progress)
    steps.end(started, note)

    started = steps.begin(f"guided evolutionary search ({settings.evaluations} candidates, "
                          f"{settings.search_steps} proxy steps each)")
    best_graph, search_note = _search(out, settings, data_root, seed=seed, progress=progress)
    steps.end(started, search_note)

    started = steps.begin(f"training the best graph and the baseline ({settings.train_steps} steps each)")
    train_dir = out / "train"
    datasets: dict[str, Any] = {}
    searched = _train(train_dir / SEARCHED, SEARCHED, "best searched graph (learned connections)",
                      best_graph, settings, data_root, seed=seed, progress=progress, datasets=datasets, echo=echo)
    baseline = _train(train_dir / BASELINE, BASELINE, "RGB-only two-stream late fusion, same width",
                      baseline_graph(), settings, data_root, seed=seed, progress=progress, datasets=datasets,
                      echo=echo)
    steps.end(started, f"trained {SEARCHED} in {searched.train_seconds:.0f} s and {BASELINE} in "
                       f"{baseline.train_seconds:.0f} s")

    started = steps.begin(f"evaluating both on the val split ({settings.eval_clips} clips per video)")
    searched = _evaluate(train_dir / SEARCHED, searched, settings, data_root, seed=seed, progress=progress)
    baseline = _evaluate(train_dir / BASELINE, baseline, settings, data_root, seed=seed, progress=progress)
    table = comparison_table([searched, baseline])
    top1 = {m.name: _metric(m, "top1") for m in (searched, baseline)}
    leader = "tie" if top1[SEARCHED] == top1[BASELINE] else max(top1, key=top1.__getitem__)
    steps.end(started, f"both models evaluated on {int(searched.metrics.get('num_videos', 0))} val videos; "
                       f"higher top-1: {leader}")

    started = steps.begin("report")
    report = _write_report(out, settings, seed=seed, searched=searched, baseline=baseline, table=table,
                           best_graph=best_graph, progress=progress)
    steps.end(started, f"wrote {report}")

    wall = time.perf_counter() - steps.start
    echo("")
    echo(table)
    echo("")
    echo(f"report: {report}   (total {wall:.0f} s)")
    return DemoResult(output=out, searched=searched, baseline=baseline, table=table, report=report,
                      wall_seconds=wall)


def _make_data(data_root: Path, settings: DemoSettings, *, progress: bool) -> str:
    from assemblenet.data.synthetic import MANIFEST_FILE, make_synthetic

    if (data_root / MANIFEST_FILE).is_file():
        return f"reusing {data_root}"
    # Written next to the final folder and renamed, so an interrupted run never leaves a half set that looks done.
    partial = data_root.with_name(data_root.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    make_synthetic(partial, num_videos=settings.videos, size=settings.video_size,
                             num_frames=settings.video_frames, progress=progress)
    os.replace(partial, data_root)
    return f"wrote {settings.videos} videos to {data_root}"


def _search(out: Path, settings: DemoSettings, data_root: Path, *, seed: int, progress: bool) -> tuple[Any, str]:
    from assemblenet.search.config import search_config_from_dict
    from assemblenet.search.evolution import SearchRunner, run_dir_name

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
    if summary.best is None:
        from assemblenet.search.evolution import SearchError

        raise SearchError(f"the demo search found no trainable graph; see {run_dir}/evaluations")
    best = summary.best
    note = (f"{'resumed; ' if resumed else ''}{summary.evaluations} candidates, best proxy mAP "
            f"{best.fitness:.3f} (candidate {best.index})")
    return best.graph.without_edge_weights(), note


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

    overrides = engine_overrides(replace(settings, eval_clips=1), data_root, seed=seed)
    if not datasets:  # decoded once, shared by both models
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
    """Evaluate the saved model of ``folder`` (``model.safetensors``) on the val split with more views."""
    eval_path = folder / EVAL_FILE
    if eval_path.is_file():
        metrics = json.loads(eval_path.read_text(encoding="utf-8"))
    else:
        import torch

        from assemblenet.engine import evaluate, load_config, load_trained_model
        from assemblenet.engine.trainer import build_split

        torch.set_num_threads(settings.train_threads)
        model, _ = load_trained_model(folder)
        cfg = load_config(None, list(engine_overrides(settings, data_root, seed=seed).items()))
        result = evaluate(model, build_split(cfg, "val"), batch_size=cfg.eval.batch_size, progress=progress,
                          desc=f"eval {outcome.name}")
        metrics = {k: float(v) for k, v in result.metrics.items() if isinstance(v, (int, float))}
        atomic_write_json(eval_path, metrics)
    return replace(outcome, metrics=metrics, eval_views=settings.eval_clips)


def _metric(outcome: ModelOutcome, key: str) -> float:
    value = outcome.metrics.get(key)
    return -math.inf if value is None or not math.isfinite(value) else value


def comparison_table(outcomes: list[ModelOutcome]) -> str:
    """A Markdown table: one row per model, the engine's validation metrics, parameters and training time."""
    header = ["model", *[title for _, title in TABLE_METRICS], "parameters", "train steps", "train time"]
    rows = [header, ["---"] * len(header)]
    for outcome in outcomes:
        cells = [f"{outcome.name}: {outcome.description}"]
        for key, _ in TABLE_METRICS:
            value = outcome.metrics.get(key)
            cells.append("-" if value is None or not math.isfinite(value) else f"{value:.3f}")
        seconds = outcome.train_seconds
        cells += [f"{outcome.parameters:,}", str(outcome.steps),
                  "-" if seconds is None or not math.isfinite(seconds) else f"{seconds:.0f} s"]
        rows.append(cells)
    return "\n".join("| " + " | ".join(row) + " |" for row in rows)


def _write_report(out: Path, settings: DemoSettings, *, seed: int, searched: ModelOutcome,
                  baseline: ModelOutcome, table: str, best_graph: Any, progress: bool) -> Path:
    from tqdm import tqdm

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
        try:
            from assemblenet.graph.plot import plot_graph
        except ImportError:
            warnings.append("graph drawings skipped: assemblenet.graph.plot is not available")
            log.warning(warnings[-1])
            return
        for name, graph_file in ((SEARCHED, "learned_graph.yaml"), (BASELINE, "graph.yaml")):
            path = out / "train" / name / graph_file
            if not path.is_file():
                path = out / "train" / name / "graph.yaml"
            from assemblenet.graph.io import load_graph

            png = report_dir / f"graph_{name}.png"
            plot_graph(load_graph(path), png, title=f"{name} ({path.name})")
            figures.append(png.name)

    def training_curves() -> None:
        for name in (SEARCHED, BASELINE):
            source = out / "train" / name / "training_curves.png"
            if source.is_file():
                target = report_dir / f"training_curves_{name}.png"
                with atomic_path(target) as tmp:
                    shutil.copyfile(source, tmp)
                figures.append(target.name)
            else:
                warnings.append(f"no training curves for {name} (the engine wrote none)")

    tasks = (("search plots", search_plots), ("graph drawings", graph_plots), ("training curves", training_curves))
    for _, task in tqdm(tasks, desc="report", unit="part", disable=not progress):
        try:
            task()
        except Exception as exc:  # noqa: BLE001 - a figure must never fail a finished demo
            warnings.append(f"{task.__name__}: {exc}")
            log.warning("report: %s failed: %s", task.__name__, exc)

    lines = [
        "# AssembleNet demo", "",
        f"Synthetic benchmark ({settings.videos} videos, 12 classes), seed {seed}. Guided evolution searched "
        f"{settings.evaluations} graphs of the asn50 space (RGB and flow stems, four levels), each trained "
        f"{settings.search_steps} steps on the proxy. The best graph and the baseline were then trained from "
        f"scratch for {settings.train_steps} steps each with the same config "
        f"({settings.num_frames} frames of {settings.crop_size}x{settings.crop_size}, width x"
        f"{settings.width_multiplier}, depth {settings.depth}, batch {settings.batch_size}), and evaluated on the "
        f"val split ({settings.eval_clips} clip(s) per video).", "",
        table, "",
        "Settings: `" + json.dumps(asdict(settings)) + "`", "",
        "## Figures", "",
        *[f"![{Path(f).stem}]({f})" for f in figures],
    ]
    if warnings:
        lines += ["", "## Warnings", "", *[f"- {w}" for w in warnings]]
    report = report_dir / "report.md"
    atomic_write_text(report, "\n".join(lines) + "\n")
    atomic_write_json(report_dir / "comparison.json",
                       {"settings": asdict(settings), "seed": seed,
                        "models": [searched.to_dict(), baseline.to_dict()]})
    return report
