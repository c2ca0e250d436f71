"""Fixtures and checks shared by the dataset tests: the tiny videos the official trees are made of, a synthetic
set's manifest, the labels a dataset gives each video, and what ``check_split`` counts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assemblenet.data.check import check_split
from tests.data.datasets._official_trees import make_tiny_videos


@pytest.fixture(scope="module")
def tiny_videos(tmp_path_factory) -> dict[str, bytes]:
    return make_tiny_videos(tmp_path_factory.mktemp("tiny"))


def manifest(root: Path) -> dict:
    return json.loads((root / "synthetic.json").read_text())


def labels_by_name(dataset) -> dict[str, list[str]]:
    return {item.video_id: [dataset.class_names[i] for i in item.labels] for item in dataset.items}


def assert_counts(dataset, *, listed: int, missing: int, unreadable: int, name: str = "train"):
    split = check_split(dataset, name=name, workers=1, progress=False)
    assert (split.listed, split.found, len(split.missing), len(split.unreadable)) == (
        listed, listed - missing, missing, unreadable)
    assert split.usable == listed - missing - unreadable
    return split
