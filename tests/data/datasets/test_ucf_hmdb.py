"""UCF101, HMDB51, Kinetics, Moments-in-Time (and Multi-Moments) and Something-Something v2 read from tiny trees in
their exact official layouts, quirks included, with 2-frame generated videos. Each tree also lists one missing and
one unreadable video, which ``check_split`` must count."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from assemblenet.data import ClipSampling, ClipViews, build_dataset
from assemblenet.data.annotations import read_class_list
from assemblenet.data.check import check_split, dataset_problems
from assemblenet.data.transforms import RandomHorizontalFlip
from assemblenet.errors import ConfigError, DataError
from tests.data._official_trees import (
    make_hmdb51,
    make_kinetics400,
    make_moments_in_time,
    make_ssv2,
    make_tiny_videos,
    make_ucf101,
    put,
    write,
)


@pytest.fixture(scope="module")
def tiny_videos(tmp_path_factory) -> dict[str, bytes]:
    return make_tiny_videos(tmp_path_factory.mktemp("tiny"))


def labels_by_name(dataset) -> dict[str, list[str]]:
    return {item.video_id: [dataset.class_names[i] for i in item.labels] for item in dataset.items}


def assert_counts(dataset, *, listed: int, missing: int, unreadable: int, name: str = "train"):
    split = check_split(dataset, name=name, workers=1, progress=False)
    assert (split.listed, split.found, len(split.missing), len(split.unreadable)) == (
        listed, listed - missing, missing, unreadable)
    assert split.usable == listed - missing - unreadable
    return split


# -- UCF101 --------------------------------------------------------------------------------------------------------
@pytest.fixture
def ucf101(tmp_path, tiny_videos) -> Path:
    return make_ucf101(tmp_path, tiny_videos)


def test_ucf101_official_layout(ucf101):
    train = build_dataset("ucf101", root=ucf101, split="train", fold=1, sampling=ClipSampling(num_frames=2))
    assert train.class_names == ["ApplyEyeMakeup", "HandstandPushups", "YoYo"] and train.num_classes == 3
    labels = labels_by_name(train)
    assert labels["v_HandStandPushups_g08_c01"] == ["HandstandPushups"] and labels["v_YoYo_g08_c01"] == ["YoYo"]
    assert [item.labels[0] for item in train.items] == [0, 1, 2, 2, 0]  # 1-based list labels, 0-based targets
    # The test list has no labels: the class comes from the folder.
    test = build_dataset("ucf101", root=ucf101, split="test", fold=1, sampling=ClipSampling(num_frames=2),
                         views=ClipViews(mode="test"))
    assert labels_by_name(test) == {"v_ApplyEyeMakeup_g01_c01": ["ApplyEyeMakeup"],
                                    "v_HandStandPushups_g01_c01": ["HandstandPushups"]}
    clip, target, _ = test[1]
    assert clip.shape == (3, 2, 16, 16) and int(target) == 1
    # Fold 2 selects other videos; its differently cased file name still finds the file on disk.
    fold2 = build_dataset("ucf101", root=ucf101, split="train", fold=2, sampling=ClipSampling(num_frames=2))
    assert len(fold2.items) == 2 and Path(fold2.items[0].path).name == "v_HandStandPushups_g01_c01.avi"
    assert Path(fold2.items[0].path).is_file()
    assert_counts(train, listed=5, missing=1, unreadable=1)
    # Loading skips the missing and the unreadable video (each once) and serves the others in their place.
    torch.manual_seed(0)
    targets = [int(train[i][1]) for i in range(len(train))]
    assert sorted(Path(path).name for path in train.skipped) == ["v_ApplyEyeMakeup_g09_c01.avi", "v_YoYo_g09_c01.avi"]
    assert len(targets) == 5 and set(targets) <= {0, 1, 2}


def test_indexed_class_files_read_as_class_lists(ucf101, tmp_path):
    # classInd.txt or moments_categories.txt given as a generic class file: names in index order.
    assert read_class_list(ucf101 / "ucfTrainTestlist/classInd.txt").names == (
        "ApplyEyeMakeup", "HandstandPushups", "YoYo")
    categories = write(tmp_path / "moments_categories.txt", "clapping,2\nadult+female+singing,0\nbathing,1\n")
    assert read_class_list(categories).names == ("adult+female+singing", "bathing", "clapping")
    plain = write(tmp_path / "classes.txt", "2 people talking\nrunning\n")
    assert read_class_list(plain).names == ("2 people talking", "running")


@pytest.mark.parametrize("line, message", [
    ("YoYo/v_YoYo_g08_c01.avi 3 extra", "expected 'Class/video.avi [LABEL]'"),
    ("YoYo/v_YoYo_g08_c01.avi 4", "label 4 out of range 1..3"),
    ("YoYo/v_YoYo_g08_c01.avi three", "label 'three' is not an integer"),
    ("Juggling/v_Juggling_g08_c01.avi 2", "unknown class 'Juggling'"),
    ("YoYo/v_YoYo_g08_c01.avi 1", "label 1 (ApplyEyeMakeup) disagrees with the folder 'YoYo'"),
])
def test_ucf101_errors_name_the_file_and_line(ucf101, line, message):
    lists = ucf101 / "ucfTrainTestlist"
    write(lists / "trainlist03.txt", f"ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1\n\n{line}\n", crlf=True)
    with pytest.raises(DataError) as error:
        build_dataset("ucf101", root=ucf101, split="train", fold=3)
    assert f"{lists / 'trainlist03.txt'}:3: " in str(error.value) and message in str(error.value)


def test_ucf101_train_lines_without_a_label_are_logged_once_with_a_count(ucf101, caplog):
    lists = ucf101 / "ucfTrainTestlist"
    write(lists / "trainlist03.txt", "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1\n"
                                     "YoYo/v_YoYo_g08_c01.avi\nHandstandPushups/v_HandStandPushups_g08_c01.avi\n")
    with caplog.at_level("WARNING", logger="assemblenet.data.annotations"):
        train = build_dataset("ucf101", root=ucf101, split="train", fold=3)
        build_dataset("ucf101", root=ucf101, split="test", fold=1)  # a test list has no labels: nothing to say
    assert [item.labels for item in train.items] == [(0,), (2,), (1,)]  # from the folders
    assert [r.getMessage() for r in caplog.records] == [
        f"{lists / 'trainlist03.txt'}: 2 of 3 lines have no label; their class is taken from the folder"]


def test_ucf101_missing_list_and_bad_class_index(ucf101):
    with pytest.raises(DataError, match="testlist03.txt: annotation file not found"):
        build_dataset("ucf101", root=ucf101, split="test", fold=3)
    with pytest.raises(ConfigError, match="fold must be 1, 2 or 3"):
        build_dataset("ucf101", root=ucf101, fold=4)
    write(ucf101 / "ucfTrainTestlist/classInd.txt", "1 ApplyEyeMakeup\n2 HandstandPushups\n4 YoYo\n")
    with pytest.raises(DataError, match=r"classInd.txt:3: class index 4 out of range 1..3"):
        build_dataset("ucf101", root=ucf101)


# -- HMDB51 --------------------------------------------------------------------------------------------------------
@pytest.fixture
def hmdb51(tmp_path, tiny_videos) -> Path:
    return make_hmdb51(tmp_path, tiny_videos)


def test_hmdb51_official_layout(hmdb51):
    train = build_dataset("hmdb51", root=hmdb51, split="train", fold=1, sampling=ClipSampling(num_frames=2))
    assert train.class_names == ["brush_hair", "sword_exercise"]
    labels = labels_by_name(train)
    assert set(labels) == {"April_09_brush_hair_u_nm_np1_ba_goo_0",
                           "atempting_to_brush_my_hair_brush_hair_u_nm_np2_le_goo_0",
                           "#20_Rhythm_sword_exercise_f_nm_np1_fr_goo_0",
                           "Brave_Heart_(1995)_sword_exercise_f_nm_np1_le_bad_0"}
    assert labels["#20_Rhythm_sword_exercise_f_nm_np1_fr_goo_0"] == ["sword_exercise"]
    test = build_dataset("hmdb51", root=hmdb51, split="test", fold=1)
    assert sorted(labels_by_name(test)) == ["April_09_brush_hair_u_nm_np1_ba_goo_1",
                                            "Blade_Of_Fury_-_Scene_1_sword_exercise_f_cm_np1_ri_med_3"]
    fold2_test = build_dataset("hmdb51", root=hmdb51, split="test", fold=2)
    assert "April_09_brush_hair_u_nm_np1_ba_goo_0" in labels_by_name(fold2_test)  # code 0 stays unused
    assert "Aussie_Brush_Hair_brush_hair_h_nm_np1_le_med_0" not in labels_by_name(fold2_test)
    clip, target, _ = train[0]
    assert clip.shape[:2] == (3, 2) and int(target) == 0
    assert_counts(train, listed=4, missing=1, unreadable=1)


def test_hmdb51_errors(hmdb51):
    split_file = hmdb51 / "testTrainMulti_7030_splits" / "brush_hair_test_split1.txt"
    write(split_file, "April_09_brush_hair_u_nm_np1_ba_goo_0.avi 1 \nApril_09_brush_hair_u_nm_np1_ba_goo_1.avi 3 \n")
    with pytest.raises(DataError, match=rf"{split_file}:2: code '3', expected 0 \(unused\), 1 \(train\) or 2"):
        build_dataset("hmdb51", root=hmdb51)
    write(split_file, "April_09_brush_hair_u_nm_np1_ba_goo_0.avi\n")
    with pytest.raises(DataError, match=rf"{split_file}:1: expected 'VIDEO.avi CODE'"):
        build_dataset("hmdb51", root=hmdb51)
    with pytest.raises(DataError, match="no '<class>_test_split3.txt' files"):
        build_dataset("hmdb51", root=hmdb51, fold=3)


# -- Kinetics ------------------------------------------------------------------------------------------------------
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


# -- Moments-in-Time and Multi-Moments ----------------------------------------------------------------------------
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


# -- Something-Something v2 ---------------------------------------------------------------------------------------
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
