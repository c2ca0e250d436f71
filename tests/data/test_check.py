"""The dataset pre-flight's verdicts (data/check.py: dataset_problems)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from assemblenet.data import build_dataset
from assemblenet.data.check import check_split, dataset_problems
from tests.data.datasets._official_trees import make_kinetics400, make_tiny_videos


@pytest.fixture
def kinetics(tmp_path) -> Path:
    """A tiny Kinetics-400 tree (tests/data/datasets/_official_trees.py)."""
    (tmp_path / "tiny").mkdir()
    return make_kinetics400(tmp_path, make_tiny_videos(tmp_path / "tiny"))


def test_classes_that_differ_between_splits_are_a_problem(kinetics):
    annotations = kinetics / "annotations"
    train = build_dataset("kinetics", csv_path=annotations / "train.csv", root=kinetics)
    val = build_dataset("kinetics", csv_path=annotations / "validate.csv", root=kinetics)  # its own sorted labels
    splits = [check_split(train, name="train", progress=False), check_split(val, name="val", progress=False)]
    problems = dataset_problems(splits, num_classes=400)
    assert problems[0] == "model.num_classes is 400, but the train set has 3 classes"
    assert problems[1].startswith("val has 1 classes and train 3; they first differ at label 0")
    assert torch.tensor(splits[0].per_class).sum() == 3


def test_multi_label_videos_without_actions_are_not_a_problem():
    # Charades-style multi-label sets hold videos with no action; a single-label set cannot train on them.
    from dataclasses import replace

    from assemblenet.data.check import SplitCheck

    split = SplitCheck("train", listed=2, found=2, missing=[], unreadable={}, unlabeled=1, class_names=["a", "b"],
                       per_class=[1, 0], multi_label=True)
    assert dataset_problems([split], num_classes=2) == []
    assert dataset_problems([replace(split, multi_label=False)], num_classes=2) == [
        "train: 1 of 2 videos have no label (a test list?); training and evaluation need labels"]
