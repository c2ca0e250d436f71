"""The retrain stage: each run's single best graph and, where the search re-scored its finalists, its re-scored
choice trained from scratch with ``retrain.seeds`` training seeds into ``OUTPUT/retrain/`` (identical graphs once;
resumable), and the retrain section of the analysis read back from those folders."""

from __future__ import annotations

import dataclasses
import json
import logging
import statistics
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assemblenet import fileio
from assemblenet.config_schema import key_error
from assemblenet.errors import ConfigError
from assemblenet.search.history import SearchRun
from assemblenet.search.store import EvaluationRecord
from assemblenet.search.study.analysis import retrain_statistics
from assemblenet.search.study.config import (
    HASH_CHARS,
    RESCORED_CHOICE,
    RESCORED_RECORD,
    RESULT_FILE,
    RETRAIN_DIR,
    RETRAIN_RECORD,
    SINGLE_BEST_CHOICE,
    TrainingSettings,
)
from assemblenet.search.study.recipes_stage import retrain_settings, settings_if_known
from assemblenet.search.study.training import (
    train_config,
    train_graph,
    train_in_parallel,
    trained,
    training_function,
    width,
)

if TYPE_CHECKING:
    from assemblenet.search.study.runner import Study

# the study's log lines keep one logger name (and so the command's output its wording) whichever module writes them
logger = logging.getLogger(__name__)


def retrain(study: Study) -> list[dict[str, Any]]:
    """Retrain every run's single best graph and, when the search re-scored its finalists, its re-scored
    choice, from scratch (identical graphs once); write and return the entries."""
    cfg = study.config.retrain
    if not cfg.enabled:
        raise key_error(study.config.source, "retrain.enabled",
                        "is false; set it to true to retrain the best graphs")
    runs = study.collect()
    unfinished = [run.label for run in runs if not run.complete]
    if unfinished:
        raise ConfigError(f"retrain needs finished searches; run the search stage first ({', '.join(unfinished)} "
                          "missing or incomplete)")
    settings = retrain_settings(study)
    train = training_function(study)
    config_file = train_config(study)
    scale = width(study)
    choices = [(run, choice, record) for run in runs
               for choice, record in ((SINGLE_BEST_CHOICE, run.best), (RESCORED_CHOICE, run.rescored))
               if record is not None and retrains(study, run, choice)]
    owners: dict[str, tuple[SearchRun, EvaluationRecord]] = {}
    for run, _, record in choices:
        owners.setdefault(record.graph_hash, (run, record))
    folders = {digest: [training_folder(study, owner, digest, k, settings) for k in range(cfg.seeds)]
               for digest, (owner, _) in owners.items()}
    written: dict[int, dict[str, Any]] = {}

    def record_choice(i: int) -> None:
        run, choice, record = choices[i]
        owner, _ = owners[record.graph_hash]
        results = [train_graph(study, record.graph, folder, k, train, config_file, scale, what=owner.label,
                               settings=settings)
                   for k, folder in enumerate(folders[record.graph_hash])]
        written[i] = write_entry(study, run, owner, choice, record, results, settings)

    finished = {folder for group in folders.values() for folder in group if trained(folder)}

    def record_finished(folder: Path) -> None:
        # a run's entries as soon as its graphs are trained: a study stopped mid-stage can be analysed
        finished.add(folder)  # (not trained(): a worker still running may have left its metrics already)
        for i, (_, _, record) in enumerate(choices):
            if i not in written and finished.issuperset(folders[record.graph_hash]):
                record_choice(i)

    jobs = [(record.graph, folder, k, settings) for digest, (_, record) in owners.items()
            for k, folder in enumerate(folders[digest])]  # train_in_parallel skips the trained ones
    train_in_parallel(study, jobs, config_file, scale, on_finished=record_finished)
    for i in range(len(choices)):  # in this process: what is left (all of it without workers), in run order
        if i not in written:
            record_choice(i)
    entries = [written[i] for i in range(len(choices))]
    for run in runs:
        if run.best is None:
            logger.warning("study %s: %s has no successful evaluation; nothing to retrain", study.config.name,
                           run.label)
    return entries


def retrains(study: Study, run: SearchRun, choice: str) -> bool:
    """Whether the retrain stage trains this run's ``choice`` (``retrain.strategies`` and ``retrain.choices``)."""
    cfg = study.config.retrain
    return choice in cfg.choices and (cfg.strategies is None or run.strategy in cfg.strategies)


def training_folder(study: Study, owner: SearchRun, digest: str, k: int, settings: TrainingSettings) -> Path:
    """Where graph ``digest`` trains (or trained) with seed ``k``: under its owner run, unless a finished
    training of it lies under another run (its owner when that run's best was this graph)."""
    name = settings.folder_name(digest[:HASH_CHARS], k)
    own = study.output / RETRAIN_DIR / owner.label / name
    if trained(own):
        return own
    for other in sorted((study.output / RETRAIN_DIR).glob(f"*/{name}/{RESULT_FILE}")):
        if json.loads(other.read_text()).get("graph_hash") == digest:
            return other.parent
    return own


def write_entry(study: Study, run: SearchRun, owner: SearchRun, choice: str, record: EvaluationRecord,
                results: list[dict[str, Any]], settings: TrainingSettings) -> dict[str, Any]:
    """Record one retrained choice of a run (its record and graph in the run's retrain folder) from its trainings'
    results."""
    from assemblenet.graph.io import save_graph

    folder = study.output / RETRAIN_DIR / run.label
    scores = [float(r["score"]) for r in results]
    rescored = run.rescored_summary if choice == RESCORED_CHOICE else None
    entry = {
        "strategy": run.strategy, "seed": run.seed, "run": run.label, "choice": choice,
        "graph_hash": record.graph_hash, "best_index": record.index, "proxy_fitness": record.fitness,
        "rescored_mean": rescored["mean"] if rescored else None,
        "same_as_single_best": run.best is not None and record.graph_hash == run.best.graph_hash,
        "metric": study.config.retrain.metric, "scores": scores, "score": statistics.fmean(scores),
        "recipe": settings.tag, "steps": settings.steps, "lr": settings.lr,
        "trained_in": [r["folder"] for r in results],
        "duplicate_of": None if owner.label == run.label else owner.label,
    }
    suffix = "" if choice == SINGLE_BEST_CHOICE else f"-{choice}"
    save_graph(dataclasses.replace(record.graph.without_edge_weights(), name=f"{run.label}-eval{record.index}"),
               folder / f"graph{suffix}.yaml")
    name = RETRAIN_RECORD if choice == SINGLE_BEST_CHOICE else RESCORED_RECORD
    fileio.atomic_write_text(folder / name, json.dumps(fileio.json_safe(entry), indent=1) + "\n", fsync=True)
    return entry


def retrain_analysis(study: Study, runs: list[SearchRun]) -> dict[str, Any] | None:
    """The retrain section of ``study.json`` from the retrain folder: the entries whose graph and recipe are
    still the run's (the others are listed as stale); None before the stage."""
    folder = study.output / RETRAIN_DIR
    if not folder.is_dir():
        return None
    settings = settings_if_known(study)
    entries, stale, expected = [], [], 0
    for run in runs:
        for choice, record_name, current in ((SINGLE_BEST_CHOICE, RETRAIN_RECORD, run.best),
                                             (RESCORED_CHOICE, RESCORED_RECORD, run.rescored)):
            if not retrains(study, run, choice):
                continue
            expected += current is not None and run.complete
            path = folder / run.label / record_name
            if not path.is_file():
                continue
            entry = json.loads(path.read_text())
            if current is None or entry.get("graph_hash") != current.graph_hash or (
                    settings is not None and entry.get("recipe", "") != settings.tag):
                # the run's graph changed since (e.g. a larger budget), or the recipe did: retrain again
                stale.append(f"{run.label} ({choice})")
                continue
            entries.append(entry)
    return retrain_statistics(entries, study.config, stale=stale, settings=settings, expected=expected)
