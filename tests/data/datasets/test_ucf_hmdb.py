"""UCF101 and HMDB51 read from a tiny tree in their exact official layout, quirks included, with 2-frame generated
videos. Each tree also lists one missing and one unreadable video, which ``check_split`` must count."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from assemblenet.data import ClipSampling, ClipViews, build_dataset
from assemblenet.data.annotations import read_class_list
from assemblenet.errors import ConfigError, DataError
from tests.data.datasets._official_trees import make_hmdb51, make_ucf101, write
from tests.data.datasets.conftest import assert_counts, labels_by_name


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
