"""Shared helpers for the search tests: a tiny space and config, and reading runs back."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from assemblenet.search.config import SearchConfig, search_config_from_dict
from assemblenet.search.store import RunStore

TINY: dict[str, Any] = {
    "name": "tiny",
    "seed": 0,
    "space": {
        "stems": ["rgb", "flow"],
        "stem_dilations": [1, 4],
        "dilations": [1, 2, 4],
        "nodes_per_level": [2, 2, 1, 1],
        "max_nodes_per_level": [4, 4, 2, 2],
        "level_filters": [64, 128, 256, 512],
        "filter_quantum": 16,
        "width_multiplier": 0.125,
    },
    "search": {"max_evaluations": 16, "batch_size": 2, "population_size": 6, "tournament_size": 3},
    "fitness": {"kind": "toy"},
}


def tiny_config(**changes: Any) -> SearchConfig:
    """The tiny config with dotted-key changes, e.g. ``tiny_config(**{"search.batch_size": 3})``."""
    data = copy.deepcopy(TINY)
    for key, value in changes.items():
        target = data
        *sections, leaf = key.split(".")
        for section in sections:
            target = target.setdefault(section, {})
        target[leaf] = value
    return search_config_from_dict(data)


def run_sequence(run_dir: Path) -> list[tuple[str, float | None]]:
    """(graph hash, fitness) of every record of a run, in evaluation order."""
    records = RunStore(run_dir).read_records()
    return [(records[i].graph_hash, records[i].fitness) for i in sorted(records)]


def assert_same_sequence(a: list[tuple[str, float | None]], b: list[tuple[str, float | None]], *,
                         tol: float = 1e-9) -> None:
    assert [h for h, _ in a] == [h for h, _ in b]
    for (_, fa), (_, fb) in zip(a, b):
        assert (fa is None) == (fb is None)
        if fa is not None:
            assert fa == pytest.approx(fb, abs=tol)


def proxy_overrides(root: Path) -> dict[str, object]:
    """Engine overrides for a few-second proxy on the tiny synthetic set."""
    return {
        "data.dataset": "synthetic", "data.train": {"root": str(root), "split": "train"},
        "data.val": {"root": str(root), "split": "val"}, "data.num_frames": 4, "data.crop_size": 32,
        "data.batch_size": 4, "data.num_workers": 0, "eval.num_clips": 1, "eval.num_crops": 1,
        "optim.warmup_steps": 1, "model.depth": 26,
    }

