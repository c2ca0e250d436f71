"""Moments-in-Time and Multi-Moments read from a tiny tree in their exact official layout, quirks included, with
2-frame generated videos. Each tree also lists one missing and one unreadable video, which ``check_split`` must
count."""

from __future__ import annotations

from pathlib import Path

import pytest

from assemblenet.data import ClipSampling, ClipViews, build_dataset
from assemblenet.errors import DataError
from tests.data.datasets._official_trees import make_moments_in_time, write
from tests.data.datasets.conftest import assert_counts, labels_by_name


@pytest.fixture
def moments(tmp_path, tiny_videos) -> Path:
    return make_moments_in_time(tmp_path, tiny_videos)


def test_moments_in_time_official_layout(moments):
    train = build_dataset("moments", root=moments, split="train", sampling=ClipSampling(num_frames=2))
    assert train.class_names == ["adult+female+singing", "bathing", "clapping"]  # the file's indices, not sorted
    labels = labels_by_name(train)
    assert labels["yt-5of6ffo6-Bw_205"] == ["bathing"] and labels["0a8b6d8d6b8c6f_1"] == ["adult+female+singing"]
    val = build_dataset("mit", root=moments, split="val", sampling=ClipSampling(num_frames=2),
                        views=ClipViews(mode="test"))
    assert [Path(item.path).relative_to(moments).as_posix() for item in val.items] == [
        "validation/bathing/yt-val_1.mp4"]
    assert int(val[0][1]) == 1
    assert_counts(train, listed=5, missing=1, unreadable=1)


def test_multi_moments_lists(moments):
    (moments / "training").rename(moments / "videos")
    train = build_dataset("multi_moments", root=moments, split="train", sampling=ClipSampling(num_frames=2))
    assert train.multi_label and labels_by_name(train)["yt-5of6ffo6-Bw_205"] == ["bathing", "clapping"]
    clip, target, _ = train[0]
    assert target.tolist() == [0.0, 1.0, 1.0]
    assert_counts(train, listed=2, missing=1, unreadable=0)
    write(moments / "validationSet.txt", "bathing/a.mp4,0\nbathing/b.mp4,3\n")
    with pytest.raises(DataError, match=r"validationSet.txt:2: label 3 out of range 0..2"):
        build_dataset("mmit", root=moments, split="val")


def test_moments_errors(moments):
    write(moments / "validationSet.csv", "bathing/yt-val_1.mp4,bathing,3,0\nswimming/a.mp4,swimming,3,0\n")
    with pytest.raises(DataError, match=r"validationSet.csv:2: unknown class 'swimming'"):
        build_dataset("moments", root=moments, split="val")
    write(moments / "moments_categories.txt", "clapping,2\nbathing\n")
    with pytest.raises(DataError, match=r"moments_categories.txt:2: expected 'NAME,INDEX'"):
        build_dataset("moments", root=moments, split="val")
    (moments / "trainingSet.csv").unlink()
    write(moments / "moments_categories.txt", "bathing,0\n")
    with pytest.raises(DataError, match="trainingSet.csv not found"):
        build_dataset("moments", root=moments, split="train")
