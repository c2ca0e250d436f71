"""Generic video lists, Kinetics-style CSVs and class folders (data/datasets/lists.py)."""

from __future__ import annotations

import shutil

import pytest

from assemblenet.data import ClipSampling, VideoFolderDataset, VideoListDataset, build_dataset
from assemblenet.errors import DataError


def test_video_folder_dataset(tmp_path, synthetic_root):
    sources = sorted((synthetic_root / "videos").glob("*.mp4"))
    for name, source in zip(["walk", "walk", "run"], sources):
        (tmp_path / name).mkdir(exist_ok=True)
        shutil.copy(source, tmp_path / name / source.name)
    dataset = build_dataset("kinetics", root=tmp_path, sampling=ClipSampling(num_frames=4))
    assert isinstance(dataset, VideoFolderDataset) and dataset.class_names == ["run", "walk"]
    assert sorted(int(dataset[i][1]) for i in range(3)) == [0, 1, 1]


def test_generic_multi_label_list(tmp_path, synthetic_root):
    sources = sorted((synthetic_root / "videos").glob("*.mp4"))[:2]
    (tmp_path / "list.csv").write_text(f"path,labels\n{sources[0]},b;a\n{sources[1]},c\n")
    dataset = VideoListDataset(tmp_path / "list.csv", multi_label=True, sampling=ClipSampling(num_frames=4))
    assert dataset.class_names == ["a", "b", "c"]
    assert dataset[0][1].tolist() == [1.0, 1.0, 0.0] and dataset[1][1].tolist() == [0.0, 0.0, 1.0]
    with pytest.raises(DataError, match=r"list2.csv:2: unknown class 'zzz'"):
        (tmp_path / "list2.csv").write_text(f"path,label\n{sources[0]},zzz\n")
        VideoListDataset(tmp_path / "list2.csv", classes=["a", "b"])


def test_classes_given_as_the_train_list_take_its_sorted_labels(tmp_path):
    """data.classes pointing at the train CSV (as docs/data.md suggests for the val set) is the train list's
    sorted labels, not one class per CSV row; a class file that is really a video list is refused naming it;
    and an unknown label names the class source it is missing from."""
    from assemblenet.data.annotations import read_class_list
    from assemblenet.data.datasets.lists import KineticsCsvDataset

    train = tmp_path / "train.csv"
    train.write_text("path,label\nv/a.mp4,slide_right\nv/b.mp4,blink\nv/c.mp4,slide_left\n")
    val = tmp_path / "val.csv"
    val.write_text("path,label\nv/d.mp4,slide_left\nv/e.mp4,slide_right\n")
    dataset = KineticsCsvDataset(val, classes=train)
    assert dataset.class_names == ["blink", "slide_left", "slide_right"]
    assert [item.labels for item in dataset.items] == [(1,), (2,)]
    with pytest.raises(DataError, match=r"train.csv:1: a video list \('path,label'\), not a class list"):
        read_class_list(train)
    headerless = tmp_path / "rows.csv"
    headerless.write_text("v/a.mp4,slide_right\n")
    with pytest.raises(DataError, match="rows.csv:1: a video list"):
        read_class_list(headerless)
    names = tmp_path / "classes.txt"
    names.write_text("blink\nslide_left\n")
    with pytest.raises(DataError, match=r"val.csv:3: unknown class 'slide_right' \(not among the 2 classes of "
                                        r".*classes.txt\)"):
        KineticsCsvDataset(val, classes=names)
