"""Kinetics-400 read from a tiny tree in its exact official layout, quirks included, with 2-frame generated videos.
Each tree also lists one missing and one unreadable video, which ``check_split`` must count."""

from __future__ import annotations

from pathlib import Path

import pytest

from assemblenet.data import ClipSampling, ClipViews, build_dataset
from assemblenet.errors import ConfigError, DataError
from tests.data.datasets._official_trees import make_kinetics400, put, write
from tests.data.datasets.conftest import assert_counts, labels_by_name


@pytest.fixture
def kinetics(tmp_path, tiny_videos) -> Path:
    return make_kinetics400(tmp_path, tiny_videos)


def test_kinetics_official_csv_and_layouts(kinetics):
    annotations = kinetics / "annotations"
    train = build_dataset("kinetics", csv_path=annotations / "train.csv", root=kinetics,
                          sampling=ClipSampling(num_frames=2))
    assert train.path_template == "{split}/{label}/{youtube_id}_{time_start:06d}_{time_end:06d}.mp4"
    assert train.class_names == ["abseiling", "passing American football (in game)", "zumba"]
    labels = labels_by_name(train)
    assert labels["-5MSmC2WxEI_000014_000024"] == ["passing American football (in game)"]
    assert labels["--Q8bHyD7h8_000000_000010"] == ["zumba"]
    # The val CSV holds one class only: with the train CSV as classes its label keeps the train index.
    val = build_dataset("kinetics", csv_path=annotations / "validate.csv", root=kinetics,
                        classes=annotations / "train.csv", sampling=ClipSampling(num_frames=2),
                        views=ClipViews(mode="test"))
    assert val.class_names == train.class_names and val.items[0].labels == (2,)
    assert Path(val.items[0].path).is_file()
    # The test CSV has no label: flat CVDF layout detected, targets are -1.
    test = build_dataset("kinetics", csv_path=annotations / "test.csv", root=kinetics,
                         classes=annotations / "train.csv", sampling=ClipSampling(num_frames=2),
                         views=ClipViews(mode="test"))
    assert test.path_template == "{split}/{youtube_id}_{time_start:06d}_{time_end:06d}.mp4"
    assert int(test[0][1]) == -1
    assert_counts(train, listed=5, missing=1, unreadable=1)


def test_kinetics_path_template_from_the_config(kinetics, tiny_videos):
    # MMAction's renamed folders: spaces become underscores, and a user-chosen template.
    renamed = kinetics / "videos_train" / "passing_American_football_(in_game)"
    put(tiny_videos, renamed / "-5MSmC2WxEI.mp4")
    dataset = build_dataset("kinetics", csv_path=kinetics / "annotations/train.csv", root=kinetics,
                            path_template="videos_train/{label_underscore}/{youtube_id}.mp4")
    assert dataset.items[0].path == str(renamed / "-5MSmC2WxEI.mp4")
    with pytest.raises(ConfigError, match=r"path_template '\{clip\}.mp4': KeyError 'clip'"):
        build_dataset("kinetics", csv_path=kinetics / "annotations/train.csv", root=kinetics,
                      path_template="{clip}.mp4")
    with pytest.raises(ConfigError, match="has no label column"):
        build_dataset("kinetics", csv_path=kinetics / "annotations/test.csv", root=kinetics,
                      classes=kinetics / "annotations/train.csv", path_template="{label}/{youtube_id}.mp4")


def test_kinetics_finds_each_official_download_s_csv_by_split(kinetics):
    """root + split finds the split's CSV by the names each official download gives it; the val and test sets
    then take the train CSV's classes."""
    notes = kinetics / "annotations"
    TWO_FRAMES = ClipSampling(num_frames=2)
    TEST_VIEW = {"sampling": TWO_FRAMES, "views": ClipViews(mode="test")}
    # DeepMind's archives: annotations/train.csv, validate.csv, test.csv (the tree as made)
    train = build_dataset("kinetics", root=kinetics, split="train", sampling=TWO_FRAMES)
    val = build_dataset("kinetics", root=kinetics, split="val", **TEST_VIEW)
    test = build_dataset("kinetics", root=kinetics, split="test", **TEST_VIEW)
    assert (train.list_path, val.list_path, test.list_path) == (notes / "train.csv", notes / "validate.csv",
                                                                notes / "test.csv")
    assert val.class_names == train.class_names and val.items[0].labels == (2,)
    # The ActivityNet crawler's kinetics-400_*.csv and kinetics_700_*.csv, the CVDF mirror's val.csv and
    # Kinetics-600's train.txt (a CSV by its header, also as the classes of the val set); never the holdout CSV.
    texts = [(notes / f"{split}.csv").read_text() for split in ("train", "validate", "test")]
    for names in (("kinetics-400_train.csv", "kinetics-400_val.csv", "kinetics-400_test.csv"),
                  ("kinetics_700_train.csv", "kinetics_700_val.csv", "kinetics_700_test.csv"),
                  ("train.txt", "val.csv", "test.csv")):
        for path in list(notes.iterdir()):
            path.unlink()
        for name, text in zip(names, texts):
            (notes / name).write_text(text)
        (notes / "kinetics600_holdout_test.csv").write_text("youtube_id,time_start,time_end,split\nzz,0,10,test\n")
        val = build_dataset("kinetics", root=kinetics, split="val", **TEST_VIEW)
        test = build_dataset("kinetics", root=kinetics, split="test", **TEST_VIEW)
        assert (val.list_path.name, test.list_path.name) == names[1:], names
        assert val.class_names == train.class_names and val.items[0].labels == (2,), names
    (notes / "kinetics_400_val.csv").write_text("")
    with pytest.raises(DataError, match=r"several val CSVs \(kinetics_400_val.csv, val.csv\); give csv_path"):
        build_dataset("kinetics", root=kinetics, split="val")
    with pytest.raises(DataError, match=r"no Kinetics train CSV in annotations/"):
        build_dataset("kinetics", root=kinetics / "train", split="train")


def test_kinetics_errors(kinetics):
    bad = write(kinetics / "bad.csv", "label,youtube_id,time_start,time_end,split\nzumba,abc,1,x,train\n")
    with pytest.raises(DataError, match=rf"{bad}:2: time_start/time_end must be numbers"):
        build_dataset("kinetics", csv_path=bad, root=kinetics)
    write(bad, "label,youtube_id,time_start,time_end,split\nzumba,abc,1,11\n")
    with pytest.raises(DataError, match=rf"{bad}:2: 4 fields, the header has 5"):
        build_dataset("kinetics", csv_path=bad, root=kinetics)
    write(bad, "label,youtube_id,time_start,time_end,split\nskydiving,abc,1,11,val\n")
    with pytest.raises(DataError, match=rf"{bad}:2: unknown class 'skydiving'"):
        build_dataset("kinetics", csv_path=bad, root=kinetics, classes=kinetics / "annotations/train.csv")
