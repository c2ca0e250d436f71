"""The ``assemblenet demo`` pipeline, end to end on a 2-core CPU in a few minutes:

1. the compositional synthetic task (:mod:`assemblenet.data.compositional`: classes that need colour, motion
   and two temporal scales), with fixed train / val / test splits; its videos are 8 frames, so each model's one
   8-frame clip is the whole video in training, the proxy and the test (every view shows the turn and the
   blinks; docs/data.md);
2. connection-learning-guided evolution over the asn50 space (RGB and flow stems) on a short proxy, scored on
   val;
3. the best graph found, the late-fusion two-stream network of the same stems and the official asn50 wiring
   (:mod:`assemblenet.search.baselines`), each trained from scratch with several training seeds (the same seeds
   for every wiring) for the same budget with the same recipe, and each trained model evaluated on the test
   split, which neither the search nor the training saw; two worker processes;
4. the comparison: a winner is named only when the paired 95% t intervals over the training seeds of its lead
   over every other wiring exclude 0 (:func:`seed_verdict`); otherwise the demo says the difference is not
   measurable in its budget;
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
from typing import Any, Callable, Mapping, Sequence

from assemblenet import provenance
from assemblenet.errors import ConfigError
from assemblenet.fileio import atomic_dir, atomic_path, atomic_write_json, atomic_write_text, remove_stale_temporaries
from assemblenet.runtime import machine_info

logger = logging.getLogger(__name__)

NUM_STEPS = 5
RESULT_FILE = "demo_result.json"  # a model's outcome with its test metrics, written when its training finished
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
    """The demo's budget. The search's proxy and the final models share data, clips and recipe. A clip
    (``num_frames``) is the whole video (``video_frames``): the dataset refuses anything else on this task."""

    train_videos: int = 480
    val_videos: int = 160
    test_videos: int = 240
    video_size: int = 32
    video_frames: int = 8
    num_frames: int = 8
    crop_size: int = 32
    width_multiplier: float = 0.125
    depth: int = 26
    batch_size: int = 8
    evaluations: int = 8
    population_size: int = 4
    tournament_size: int = 3
    search_steps: int = 32
    connection_lr_multiplier: float = 10.0
    precise_bn_batches: int = 4
    search_lr: float = 0.1  # the proxy's SGD learning rate (configs/search/compositional.yaml's)
    train_steps: int = 250
    train_lr: float = 0.05  # the final trainings' learning rate
    training_seeds: int = 3  # per wiring, the same seeds for every wiring (paired), so the verdict sees seed noise
    eval_clips: int = 1  # the one clip is the whole video
    workers: int = 2  # local search processes, then training processes (each with one torch thread)
    train_threads: int = 1
    finalists_top_k: int = 2  # the search's result: the best mean of the top 2 graphs re-scored with 2 fresh seeds
    finalists_seeds: int = 2


FULL = DemoSettings()
# For tests and a first look: well under a minute. The numbers mean little at this size.
QUICK = DemoSettings(train_videos=32, val_videos=16, test_videos=16, video_size=32, video_frames=8, num_frames=8,
                     evaluations=4, population_size=2, tournament_size=2, search_steps=3, precise_bn_batches=1,
                     train_steps=4, training_seeds=2, eval_clips=1, workers=1, finalists_top_k=2,
                     finalists_seeds=1)
CHANCE = 1 / 16  # top-1 of a guess among the 16 classes
CONFIDENCE = 0.95


@dataclass(frozen=True)
class ModelOutcome:
    """One trained model: a wiring at one training seed, with its test metrics once evaluated."""

    name: str
    description: str
    metrics: dict[str, float]
    parameters: int
    train_seconds: float
    steps: int
    seed: int = 0  # the training seed
    eval_views: int = 1  # views (clips) per test video in ``metrics``

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class WiringOutcome:
    """One compared wiring: its models at every training seed (in seed order)."""

    name: str
    description: str
    runs: tuple[ModelOutcome, ...]

    @property
    def seeds(self) -> list[int]:
        return [run.seed for run in self.runs]

    def values(self, key: str) -> list[float]:
        return [_metric(run, key) for run in self.runs]

    def mean(self, key: str) -> float:
        values = self.values(key)
        return math.fsum(values) / len(values) if values else math.nan

    def top1_interval(self) -> Any:
        """Mean test top-1 and its 95% Student-t interval over the training seeds (None with one seed)."""
        return mean_t_interval(self.values("top1"))

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "runs": [run.to_dict() for run in self.runs]}


@dataclass(frozen=True)
class SeedVerdict:
    """Which wiring has the highest mean test top-1 over the training seeds, and whether that is measurable:
    ``winner`` is set only when the paired 95% t interval of the leader's lead over every other wiring (the
    per-seed differences; the wirings share their training seeds) lies above 0."""

    leader: str
    winner: str | None
    leads: dict[str, Any]  # other wiring -> Interval of (leader - other) over the shared seeds, None if < 2 seeds
    seeds: int
    confidence: float = CONFIDENCE

    def sentence(self, metric: str = "test top-1") -> str:
        level = f"{self.confidence:.0%}"
        from assemblenet.search.stats import format_interval

        leads = "; ".join(f"over {name} {format_interval(lead, 3) if lead is not None else 'n/a'}"
                          for name, lead in self.leads.items())
        if self.winner is not None:
            return (f"highest {metric}: {self.winner} (the paired {level} t intervals of its lead over "
                    f"{self.seeds} training seeds exclude 0: {leads})")
        why = ("one training seed gives no interval" if self.seeds < 2 else
               f"a paired {level} t interval of the leader's lead over {self.seeds} training seeds includes 0")
        return (f"no measurable difference in {metric} in the demo's budget ({why}; highest mean: {self.leader}; "
                f"leads: {leads})")


def mean_t_interval(values: Sequence[float], confidence: float = CONFIDENCE) -> Any:
    """The mean of ``values`` and its Student-t interval (``scipy.stats.ttest_1samp``); None for fewer than two
    values, [mean, mean] when they are all equal (scipy's interval is undefined there)."""
    from scipy import stats

    from assemblenet.search.stats import Interval

    data = [float(v) for v in values]
    if len(data) < 2:
        return None
    mean = math.fsum(data) / len(data)
    if all(v == data[0] for v in data):
        return Interval(mean, mean, mean)
    low, high = stats.ttest_1samp(data, 0.0).confidence_interval(confidence_level=confidence)
    return Interval(mean, float(low), float(high))


def seed_verdict(scores: Mapping[str, Sequence[float]], confidence: float = CONFIDENCE) -> SeedVerdict:
    """Name a winner only when the training-seed noise allows it: ``scores`` maps each wiring to its test top-1
    per training seed, in the same seed order for every wiring (paired). The leader is the highest mean; it wins
    when, for every other wiring, the Student-t interval of the mean per-seed difference (a paired t interval,
    ``scipy.stats.ttest_1samp`` on the differences) lies above 0. Requiring every comparison to exclude 0 (an
    intersection-union rule) needs no multiplicity correction. With fewer than two seeds nothing is named."""
    if len(scores) < 2:
        raise ValueError("seed_verdict: need at least two wirings")
    counts = {len(v) for v in scores.values()}
    if len(counts) != 1:
        raise ValueError(f"seed_verdict: every wiring needs the same training seeds, got counts {sorted(counts)}")
    (seeds,) = counts
    means = {name: math.fsum(v) / len(v) for name, v in scores.items()}
    leader = max(means, key=lambda name: means[name])
    leads = {name: mean_t_interval([a - b for a, b in zip(scores[leader], values)], confidence)
             for name, values in scores.items() if name != leader}
    measurable = seeds >= 2 and all(lead is not None and lead.low > 0 for lead in leads.values())
    return SeedVerdict(leader, leader if measurable else None, leads, seeds, confidence)


@dataclass(frozen=True)
class DemoResult:
    output: Path
    models: list[WiringOutcome]
    verdict: SeedVerdict
    mutations: dict[str, Any]
    table: str
    report: Path
    wall_seconds: float


# ------------------------------------------------------------------------------------------- configuration
def engine_overrides(settings: DemoSettings, data_root: Path, *, seed: int, eval_split: str = "val",
                     eval_clips: int | None = None, lr: float | None = None) -> dict[str, Any]:
    """Dotted engine-config overrides shared by the search's proxy runs and the final training runs (``lr``:
    the learning rate, by default the proxy's)."""
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
        # The demo wrote these videos itself a moment ago (step 1): a decode pre-flight of every split before each
        # of its nine trainings re-read 720 videos each time (about a fifth of the demo's wall time on 2 CPUs).
        "data.preflight": "exists",
        "optim.lr": settings.search_lr if lr is None else lr,
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
    from assemblenet.graph.io import graph_to_dict
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

    seeds = training_seeds(settings, seed)
    started = steps.begin(f"training three wirings from scratch, {len(seeds)} training seeds each "
                          f"({settings.train_steps} steps), each tested on the test split")
    graphs = {SEARCHED: best_graph, LATE_FUSION: baseline_graph("late_fusion", space),
              ASN50: baseline_graph("asn50", space)}
    train_dir = out / "train"
    jobs = [_Job(name, description, graph_to_dict(graphs[name]), k, str(train_dir / name / f"seed{k}"))
            for name, description in MODELS for k in seeds]
    runs = _run_jobs(jobs, settings, data_root, progress=progress, echo=echo)
    wirings = [WiringOutcome(name, description, tuple(runs[(name, k)] for k in seeds))
               for name, description in MODELS]
    steps.end(started, "trained " + ", ".join(f"{w.name} in {_seconds(w)}" for w in wirings))

    started = steps.begin(f"comparing on the test split across the {len(seeds)} training seeds")
    verdict = seed_verdict({w.name: w.values("top1") for w in wirings})
    table = comparison_table(wirings)
    steps.end(started, f"{int(wirings[0].runs[0].metrics.get('num_videos', 0))} test videos; "
                       f"{learning_line(wirings)}")
    echo(f"      {verdict.sentence()}")

    started = steps.begin("report")
    report = _write_report(out, settings, seed=seed, models=wirings, table=table, verdict=verdict,
                           mutations=mutations, progress=progress)
    steps.end(started, f"wrote {report}")

    wall = time.perf_counter() - steps.start
    echo("")
    echo(table)
    echo("")
    echo(verdict.sentence())
    echo(mutation_line(mutations))
    echo(f"report: {report}   (total {wall:.0f} s)")
    return DemoResult(output=out, models=wirings, verdict=verdict, mutations=mutations, table=table,
                      report=report, wall_seconds=wall)


def training_seeds(settings: DemoSettings, seed: int) -> list[int]:
    """The training seeds every wiring is trained with: ``seed``, ``seed + 1``, ... (shared: paired)."""
    return [seed + k for k in range(settings.training_seeds)]


def _seconds(wiring: WiringOutcome) -> str:
    times = [run.train_seconds for run in wiring.runs if math.isfinite(run.train_seconds)]
    return f"{math.fsum(times) / len(times):.0f} s per seed" if times else "- s (resumed)"


def learning_line(wirings: Sequence[WiringOutcome]) -> str:
    """Whether every wiring learned: its mean test top-1 at least twice chance."""
    bar = 2 * CHANCE
    below = [w.name for w in wirings if not w.mean("top1") >= bar]
    if not below:
        return f"every wiring learned (mean test top-1 >= {bar:.3f}, twice chance)"
    return f"below twice chance ({bar:.3f}) in mean test top-1: {', '.join(below)}"


def _make_data(data_root: Path, settings: DemoSettings, *, progress: bool) -> str:
    from assemblenet.data.compositional import make_compositional
    from assemblenet.data.synthetic import MANIFEST_FILE

    wanted = {"train_videos": settings.train_videos, "val_videos": settings.val_videos,
              "test_videos": settings.test_videos, "size": settings.video_size, "num_frames": settings.video_frames}
    if (data_root / MANIFEST_FILE).is_file():
        written = json.loads((data_root / MANIFEST_FILE).read_text(encoding="utf-8")).get("parameters", {})
        differ = {key: (written.get(key), value) for key, value in wanted.items() if written.get(key) != value}
        if differ:  # e.g. the 16-frame videos of a demo before issue 27
            raise ConfigError(f"{data_root}: the demo data there were written with other settings ("
                              + ", ".join(f"{k} {a} instead of {b}" for k, (a, b) in differ.items())
                              + "), by another version of the demo; use a new --output folder")
        return f"reusing {data_root}"
    # Written next to the final folder and renamed, so an interrupted run never leaves a half set that looks done.
    remove_stale_temporaries(data_root.parent)  # the half set of a killed run
    with atomic_dir(data_root) as partial:
        make_compositional(partial, train_videos=settings.train_videos, val_videos=settings.val_videos,
                           test_videos=settings.test_videos, size=settings.video_size,
                           num_frames=settings.video_frames, progress=progress)
    total = settings.train_videos + settings.val_videos + settings.test_videos
    return (f"wrote {total} videos ({settings.train_videos} train / {settings.val_videos} val / "
            f"{settings.test_videos} test, {settings.video_frames} frames each) to {data_root}")


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
    if summary.chosen is None or summary.best is None:
        raise SearchError(f"the demo search found no trainable graph; see {run_dir}/evaluations")
    best, chosen = summary.best, summary.chosen
    note = (f"{'resumed; ' if resumed else ''}{summary.evaluations} candidates, best single proxy val mAP "
            f"{best.fitness:.3f} (candidate {best.index})")
    if summary.finalists:
        top = summary.finalists[0]
        note += (f"; chosen by re-scoring the top {len(summary.finalists)} with {settings.finalists_seeds} fresh "
                 f"seeds: candidate {chosen.index}, mean {top.mean:.3f}")
    return chosen.graph.without_edge_weights(), note, mutation_counts(run_dir), config.space


@dataclass(frozen=True)
class _Job:
    """One wiring at one training seed, trained and tested in ``folder`` (picklable: it goes to a process)."""

    name: str
    description: str
    graph: dict[str, Any]
    seed: int
    folder: str


def _run_jobs(jobs: Sequence[_Job], settings: DemoSettings, data_root: Path, *, progress: bool,
              echo: Callable[[str], None]) -> dict[tuple[str, int], ModelOutcome]:
    """Train and test every job: in ``settings.workers`` processes (one torch thread each) when there are
    several, else here. Finished jobs are read back, not run again."""
    done: dict[tuple[str, int], ModelOutcome] = {}

    def finished(outcome: ModelOutcome, reused: bool) -> None:
        done[(outcome.name, outcome.seed)] = outcome
        what = "reusing its results" if reused else f"trained in {outcome.train_seconds:.0f} s"
        echo(f"      {outcome.name} seed {outcome.seed}: {what}, test top-1 {_metric(outcome, 'top1'):.3f}")

    todo = []
    for job in jobs:
        saved = _saved_outcome(Path(job.folder))
        if saved is not None:
            finished(saved, True)
        else:
            todo.append(job)
    if settings.workers < 2 or len(todo) < 2:
        for job in todo:
            finished(_train_and_test(job, settings, data_root, progress=progress), False)
        return done
    import concurrent.futures

    from assemblenet.runtime import process_pool

    with process_pool(settings.workers) as pool:
        futures = [pool.submit(_train_and_test, job, settings, data_root, progress=False) for job in todo]
        for future in concurrent.futures.as_completed(futures):
            finished(future.result(), False)  # re-raises a training error here
    return done


def _saved_outcome(folder: Path) -> ModelOutcome | None:
    """A job's outcome when its training (and so its test evaluation) finished."""
    result_path = folder / RESULT_FILE
    if not result_path.is_file():
        return None
    return ModelOutcome(**json.loads(result_path.read_text(encoding="utf-8")))


_DATASETS: dict[tuple[str, str], Any] = {}  # (data root, split) -> dataset, decoded once per process


def _dataset(cfg: Any, split: str, data_root: Path) -> Any:
    from assemblenet.engine.datasets import build_split

    key = (str(data_root), "train" if split == "train" else cfg.data.val["split"])
    if key not in _DATASETS:
        _DATASETS[key] = build_split(cfg, split)
    return _DATASETS[key]


def _train_and_test(job: _Job, settings: DemoSettings, data_root: Path, *, progress: bool) -> ModelOutcome:
    """Train ``job``'s graph from scratch (resuming a killed training from its checkpoints). The training's
    final evaluation is on the test split (``settings.eval_clips`` clips per video, after precise BN on training
    batches): the training never looks at it before, and nothing is chosen by it. The outcome is written to the
    job's folder, which marks it done."""
    import torch

    from assemblenet.engine import load_config, run_training
    from assemblenet.graph.io import graph_from_dict, save_graph

    torch.set_num_threads(settings.train_threads)
    folder = Path(job.folder)
    graph = graph_from_dict(job.graph)
    overrides = engine_overrides(settings, data_root, seed=job.seed, eval_split="test", lr=settings.train_lr)
    cfg = load_config(None, list(overrides.items()))
    datasets = {"train_dataset": _dataset(cfg, "train", data_root), "val_dataset": _dataset(cfg, "val", data_root)}
    folder.mkdir(parents=True, exist_ok=True)
    save_graph(graph, folder / "graph.yaml")
    start = time.perf_counter()
    result = run_training(None, graph=graph, output_dir=folder, seed=job.seed, max_steps=settings.train_steps,
                          overrides=overrides, num_threads=settings.train_threads, progress=progress, **datasets)
    seconds = time.perf_counter() - start
    if result.resumed_from is not None:  # only the resumed part was timed
        seconds = math.nan
    outcome = ModelOutcome(
        name=job.name, description=job.description,
        metrics={k: float(v) for k, v in result.metrics.items() if isinstance(v, (int, float))},
        parameters=sum(p.numel() for p in result.model.parameters()),
        train_seconds=seconds, steps=result.steps, seed=job.seed, eval_views=settings.eval_clips,
    )
    if result.learned_graph is not None:
        save_graph(result.learned_graph, folder / "learned_graph.yaml")
    atomic_write_json(folder / RESULT_FILE, outcome.to_dict())
    return outcome


def _metric(outcome: ModelOutcome, key: str) -> float:
    value = outcome.metrics.get(key)
    return -math.inf if value is None or not math.isfinite(value) else value


def comparison_table(wirings: Sequence[WiringOutcome]) -> str:
    """A Markdown table: one row per wiring, its mean test metrics over the training seeds (top-1 with its 95% t
    interval over the seeds, and each seed's top-1), parameters, steps and training time per seed."""
    from assemblenet.search.stats import format_interval

    seeds = len(wirings[0].runs) if wirings else 0
    header = ["model", f"test top-1, mean [95% t interval over {seeds} training seeds]", "top-1 per seed",
              *[f"{title}, mean" for key, title in TABLE_METRICS if key != "top1"],
              "parameters", "train steps", "train time per seed"]
    rows = [header, ["---"] * len(header)]
    for wiring in wirings:
        interval = wiring.top1_interval()
        top1 = format_interval(interval) if interval is not None else f"{wiring.mean('top1'):.3f}"
        cells = [f"{wiring.name}: {wiring.description}", top1,
                 " / ".join(f"{v:.3f}" for v in wiring.values("top1"))]
        for key, _ in TABLE_METRICS:
            if key != "top1":
                value = wiring.mean(key)
                cells.append(f"{value:.3f}" if math.isfinite(value) else "-")
        cells += [f"{wiring.runs[0].parameters:,}", str(wiring.runs[0].steps), _seconds(wiring).removesuffix(
            " per seed")]
        rows.append(cells)
    return "\n".join("| " + " | ".join(row) + " |" for row in rows)


def _write_report(out: Path, settings: DemoSettings, *, seed: int, models: list[WiringOutcome], table: str,
                  verdict: SeedVerdict, mutations: dict[str, Any], progress: bool) -> Path:
    from tqdm import tqdm

    from assemblenet.graph.io import load_graph
    from assemblenet.graph.plot import plot_graph
    from assemblenet.search.report import write_report

    report_dir = out / "report"
    report_dir.mkdir(parents=True, exist_ok=True)
    figures: list[str] = []
    warnings: list[str] = []

    def first_seed(model: WiringOutcome) -> Path:  # graphs and curves are drawn for the first training seed
        return out / "train" / model.name / f"seed{model.runs[0].seed}"

    def search_plots() -> None:
        search_report = write_report([out / "search"], report_dir / "search")
        for png in sorted((search_report.parent / "plots").glob("*.png")):
            figures.append(str(png.relative_to(report_dir)))

    def graph_plots() -> None:
        for model in models:
            path = first_seed(model) / "learned_graph.yaml"
            if not path.is_file():
                path = first_seed(model) / "graph.yaml"
            png = report_dir / f"graph_{model.name}.png"
            plot_graph(load_graph(path), png, title=f"{model.name} ({path.name}, training seed {model.runs[0].seed})")
            figures.append(png.name)

    def training_curves() -> None:
        for model in models:
            source = first_seed(model) / "training_curves.png"
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
    machine, code = machine_info(), provenance.code_provenance()
    lines = [
        "# AssembleNet demo", "",
        f"Compositional synthetic task ({total} videos of {settings.video_frames} frames, 16 classes: colour x "
        f"direction x blink x course; {settings.train_videos} train / {settings.val_videos} val / "
        f"{settings.test_videos} test), seed {seed}. "
        f"Guided evolution searched {settings.evaluations} graphs of the asn50 space (RGB and flow stems, four "
        f"levels), each trained {settings.search_steps} steps on the proxy and scored by val mAP. The best graph, "
        f"the late-fusion two-stream network of the same stems and the official asn50 wiring were then trained "
        f"from scratch for {settings.train_steps} steps each with the same recipe and the same "
        f"{settings.training_seeds} training seeds ({settings.num_frames} frames of "
        f"{settings.crop_size}x{settings.crop_size}, width x{settings.width_multiplier}, depth {settings.depth}, "
        f"batch {settings.batch_size}) and evaluated on the test split ({settings.eval_clips} clip per video: "
        f"the whole video). Chance is {CHANCE:.4f} top-1.",
        "", table, "", verdict.sentence() + ".", "", learning_line(models) + ".", "", mutation_line(mutations), "",
        "Children by mutation kind: " + ", ".join(f"{k} {v}" for k, v in mutations["by_kind"].items()), "",
        "Settings: `" + json.dumps(asdict(settings)) + "`", "",
        # The CPU too: another CPU's kernels round differently, and 250-step trainings amplify that into other
        # scores (docs/demo.md shows the same code on two CPUs).
        f"Ran on {machine['signature']} (torch {machine['torch']}), {provenance.describe(code)}.", "",
        "## Figures", "",
        *[f"![{Path(f).stem}]({f})" for f in figures],
    ]
    if warnings:
        lines += ["", "## Warnings", "", *[f"- {w}" for w in warnings]]
    report = report_dir / "report.md"
    atomic_write_text(report, "\n".join(lines) + "\n")
    atomic_write_json(report_dir / "comparison.json",
                      {"settings": asdict(settings), "seed": seed, "mutations": mutations, "machine": machine,
                       "code": code,
                       "verdict": {"leader": verdict.leader, "winner": verdict.winner, "seeds": verdict.seeds,
                                   "confidence": verdict.confidence,
                                   "leads": {name: None if lead is None else
                                             {"estimate": lead.estimate, "low": lead.low, "high": lead.high}
                                             for name, lead in verdict.leads.items()},
                                   "sentence": verdict.sentence()},
                       "models": [m.to_dict() for m in models]})
    return report
