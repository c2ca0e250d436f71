"""Something-Something v2 read from a tiny tree in its exact official layout, quirks included, with 2-frame generated
videos. Each tree also lists one missing and one unreadable video, which ``check_split`` must count."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assemblenet.data import ClipSampling, ClipViews, build_dataset
from assemblenet.data.check import check_split, dataset_problems
from assemblenet.data.transforms import RandomHorizontalFlip
from assemblenet.errors import DataError
from tests.data.datasets._official_trees import make_ssv2, write
from tests.data.datasets.conftest import assert_counts, labels_by_name


@pytest.fixture
def ssv2(tmp_path, tiny_videos) -> Path:
    return make_ssv2(tmp_path, tiny_videos)


def test_ssv2_official_layout(ssv2):
    train = build_dataset("ssv2", root=ssv2, split="train", sampling=ClipSampling(num_frames=2))
    assert train.class_names == ["Approaching something with your camera", "Pushing something from left to right",
                                 "Putting something on a surface"]
    assert labels_by_name(train)["78687"] == ["Pushing something from left to right"]
    assert labels_by_name(train)["42326"] == ["Putting something on a surface"]
    # No flips by default: a flip turns "from left to right" into "from right to left".
    assert not any(isinstance(t, RandomHorizontalFlip) for t in train.transforms[0].transforms)
    clip, target, meta = train[0]
    assert clip.shape == (3, 2, 16, 16) and int(target) == 1 and meta["video_id"] == "78687"
    val = build_dataset("ssv2", root=ssv2, split="val")
    assert [item.video_id for item in val.items] == ["78687"]
    test = build_dataset("something_something_v2", root=ssv2, split="test", sampling=ClipSampling(num_frames=2),
                         views=ClipViews(mode="test"))
    assert [item.labels for item in test.items] == [(), ()] and int(test[1][1]) == -1
    split = assert_counts(train, listed=5, missing=1, unreadable=1)
    assert split.per_class == [1, 1, 1]
    problems = dataset_problems([split, check_split(test, name="val", progress=False)], num_classes=3)
    assert problems == ["val: 2 of 2 videos have no label (a test list?); training and evaluation need labels"]


def test_ssv2_errors(ssv2):
    path = ssv2 / "something-something-v2-validation.json"
    write(path, json.dumps([{"id": "1", "template": "Juggling [something]"}]))
    with pytest.raises(DataError, match=rf"{path}: entry 1 \(id 1\): unknown class 'Juggling something'"):
        build_dataset("ssv2", root=ssv2, split="val")
    # A labelled split's entry without its template is an error naming it, not a video of target -1.
    for split, name in (("train", "train"), ("val", "validation")):
        listed = ssv2 / f"something-something-v2-{name}.json"
        write(listed, json.dumps([{"id": "5", "template": "Approaching [something] with your camera"},
                                  {"id": "7", "label": "a cup"}]))
        with pytest.raises(DataError, match=rf"{listed}: entry 2 \(id 7\): no 'template'"):
            build_dataset("ssv2", root=ssv2, split=split)
    write(path, '[{"id": "1",\n "template": }]')
    with pytest.raises(DataError, match=rf"{path}:2: invalid JSON"):
        build_dataset("ssv2", root=ssv2, split="val")
    write(ssv2 / "something-something-v2-labels.json", json.dumps({"a": "0", "b": "2"}))
    with pytest.raises(DataError, match=r"class ids must be 0..1; missing \[1\]"):
        build_dataset("ssv2", root=ssv2, split="val")
