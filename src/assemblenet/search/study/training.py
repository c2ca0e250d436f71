"""How the study trains a graph from scratch (the retrain, baselines, recipes and proxy-validity stages): the
training settings of a recipe, one resumable training into a folder, trainings in worker processes, and fixed
wirings trained by name. Functions of a :class:`~assemblenet.search.study.runner.Study`."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

from assemblenet import fileio
from assemblenet.config_schema import key_error
from assemblenet.errors import ConfigError
from assemblenet.search.study.config import (
    ENGINE_FINAL_METRICS,
    HASH_CHARS,
    RESULT_FILE,
    TRAIN_TIME_FILE,
    RecipeCandidate,
    StudyConfig,
    TrainingSettings,
)

if TYPE_CHECKING:
    from assemblenet.search.study.runner import Study

# the study's log lines keep one logger name (and so the command's output its wording) whichever module writes them
logger = logging.getLogger(__name__)


def settings_for(config: StudyConfig, candidate: RecipeCandidate | None) -> TrainingSettings:
    """The retrain section's settings, with a recipe candidate's steps and lr when one is given."""
    cfg = config.retrain
    if candidate is None:
        return TrainingSettings(cfg.steps, dict(cfg.overrides))
    overrides = dict(cfg.overrides)
    if candidate.lr is not None:
        overrides["optim.lr"] = candidate.lr
    return TrainingSettings(candidate.steps if candidate.steps is not None else cfg.steps, overrides,
                            candidate.name, candidate.lr)


def train_config(study: Study) -> str | None:
    """The engine config file the trainings use (``retrain.config``), resolved; None: the engine's defaults."""
    cfg = study.config.retrain
    return None if cfg.config is None else str(study.config.resolve(cfg.config).resolve())


def width(study: Study) -> float:
    cfg = study.config.retrain
    return cfg.width_multiplier if cfg.width_multiplier is not None else study.base.space.width_multiplier


def training_function(study: Study) -> Callable[..., Any]:
    """The injected training function (tests), else the engine's :func:`~assemblenet.engine.run_training`."""
    return study.run_training or engine_run_training()


def trained(folder: Path) -> bool:
    """Whether a training in ``folder`` finished (recorded, or left by a worker process to be recorded)."""
    return (folder / RESULT_FILE).is_file() or (folder / ENGINE_FINAL_METRICS).is_file()


def train_graph(study: Study, graph: Any, folder: Path, k: int, train: Callable[..., Any], config_file: str | None,
                width: float, *, what: str, settings: TrainingSettings) -> dict[str, Any]:
    """Train ``graph`` from scratch with ``settings`` and training seed ``k`` into ``folder`` (resumable: a
    finished one is read back, a killed one resumes from the engine's checkpoints)."""
    cfg = study.config.retrain
    digest = graph.canonical_hash()
    result_path = folder / RESULT_FILE
    if result_path.is_file():
        return dict(json.loads(result_path.read_text()))
    start = time.time()
    engine_final = folder / ENGINE_FINAL_METRICS
    trained_for = None
    metrics: Any
    if engine_final.is_file():  # trained by a worker process, or killed before our result file was written
        metrics = dict(json.loads(engine_final.read_text()).get("metrics", {}))
        if (folder / TRAIN_TIME_FILE).is_file():
            trained_for = float(json.loads((folder / TRAIN_TIME_FILE).read_text())["wall_time_s"])
    else:
        logger.info("study %s: training %s (graph %s, training seed %d%s) -> %s", study.config.name, what,
                    digest[:HASH_CHARS], k, f", recipe {settings.tag}" if settings.tag else "", folder)
        result = train(
            config_file,
            graph=graph.without_edge_weights(),
            output_dir=str(folder),
            seed=k,
            max_steps=settings.steps,
            width_multiplier=width,
            overrides=dict(settings.overrides),
            progress=study.progress,
        )
        metrics = result.get("metrics") if isinstance(result, Mapping) else getattr(result, "metrics", None)
        if not isinstance(metrics, Mapping):
            raise ConfigError(f"retrain: the training result has no metrics mapping (got {type(result).__name__})")
    if cfg.metric not in metrics or not isinstance(metrics[cfg.metric], (int, float)):
        raise key_error(study.config.source, "retrain.metric",
                        f"the engine reported no metric {cfg.metric!r}; it has {sorted(metrics)}")
    record = {
        "graph_hash": digest, "training_seed": k, "folder": str(folder.relative_to(study.output)),
        "metric": cfg.metric, "score": float(metrics[cfg.metric]),
        "metrics": {key: value for key, value in metrics.items() if isinstance(value, (int, float))},
        "steps": settings.steps, "lr": settings.lr, "recipe": settings.tag, "width_multiplier": width,
        "finished_at": time.time(),
        "wall_time_s": trained_for if trained_for is not None else round(time.time() - start, 3),
    }
    fileio.atomic_write_text(result_path, json.dumps(fileio.json_safe(record), indent=1) + "\n", fsync=True)
    study.log({"event": "training-finished", "time": time.time(), "what": what, "graph_hash": digest,
               "training_seed": k, "recipe": settings.tag, "score": record["score"], "metric": cfg.metric,
               "wall_time_s": record["wall_time_s"]})
    return record


def train_in_parallel(study: Study, jobs: Sequence[tuple[Any, Path, int, TrainingSettings]],
                      config_file: str | None, width: float,
                      on_finished: Callable[[Path], None] | None = None) -> None:
    """With ``retrain.workers`` > 1, run the engine trainings of ``jobs`` (graph, folder, seed, settings) that
    are not done in a process pool, one torch thread each; each leaves the engine's final metrics in its
    folder, which :func:`train_graph` then records; ``on_finished(folder)`` is called after each.
    (Injected training functions run in-process instead.)"""
    cfg = study.config.retrain
    todo = [(g, f, k, s) for g, f, k, s in jobs if not trained(f)]
    if cfg.workers < 2 or study.run_training is not None or len(todo) < 2:
        return
    import concurrent.futures

    from assemblenet.graph.io import graph_to_dict
    from assemblenet.runtime import process_pool

    with process_pool(cfg.workers) as pool:
        futures = {pool.submit(engine_training_job, config_file, graph_to_dict(g.without_edge_weights()),
                               str(f), k, s.steps, width, dict(s.overrides)): f for g, f, k, s in todo}
        for future in concurrent.futures.as_completed(futures):
            future.result()  # re-raises a training error here
            logger.info("study %s: trained %s", study.config.name, futures[future])
            if on_finished is not None:
                on_finished(futures[future])


def train_named(study: Study, folder_root: Path, names: Sequence[str], seeds: Sequence[int],
                settings: TrainingSettings, what: str) -> list[dict[str, Any]]:
    """Train fixed wirings ``names`` (``search.baselines``) with the training seeds ``seeds`` each into
    ``folder_root/NAME/``; one record per (name, seed)."""
    from assemblenet.graph.io import save_graph
    from assemblenet.search.baselines import baseline_graph

    train = training_function(study)
    config_file, scale = train_config(study), width(study)
    graphs = {name: baseline_graph(name, study.base.space) for name in names}
    train_in_parallel(study, [(graphs[name], folder_root / name / settings.folder_name("", k), k, settings)
                              for name in graphs for k in seeds], config_file, scale)
    records = []
    for name, graph in graphs.items():
        folder = folder_root / name
        folder.mkdir(parents=True, exist_ok=True)
        save_graph(graph, folder / "graph.yaml")
        for k in seeds:
            record = train_graph(study, graph, folder / settings.folder_name("", k), k, train, config_file, scale,
                                 what=f"{what} {name}", settings=settings)
            records.append({"baseline": name, **record})
    return records


def named_scores(folder_root: Path, names: Sequence[str], seeds: Sequence[int],
                 settings: TrainingSettings) -> dict[str, list[float]]:
    return {name: list(by_seed.values())
            for name, by_seed in named_scores_by_seed(folder_root, names, seeds, settings).items()}


def named_scores_by_seed(folder_root: Path, names: Sequence[str], seeds: Sequence[int],
                         settings: TrainingSettings) -> dict[str, dict[int, float]]:
    """Each fixed wiring's finished scores by training seed (a wiring with none is left out)."""
    out: dict[str, dict[int, float]] = {}
    for name in names:
        scores = {}
        for k in seeds:
            path = folder_root / name / settings.folder_name("", k) / RESULT_FILE
            if path.is_file():
                scores[k] = float(json.loads(path.read_text())["score"])
        if scores:
            out[name] = scores
    return out


def engine_training_job(config_file: str | None, graph: dict[str, Any], folder: str, seed: int,
                        steps: int | None, width: float, overrides: dict[str, Any]) -> None:
    """One training in a worker process (one torch thread); its outputs stay in ``folder``."""
    from assemblenet.engine.trainer import run_training
    from assemblenet.graph.io import graph_from_dict
    from assemblenet.runtime import keep_freed_memory

    keep_freed_memory()
    start = time.time()
    run_training(config_file, graph=graph_from_dict(graph), output_dir=folder, seed=seed, max_steps=steps,
                 width_multiplier=width, overrides=overrides, num_threads=1, progress=False)
    fileio.atomic_write_json(Path(folder) / TRAIN_TIME_FILE, {"wall_time_s": round(time.time() - start, 3)})


def engine_run_training() -> Callable[..., Any]:
    from assemblenet.engine.trainer import run_training

    return run_training
