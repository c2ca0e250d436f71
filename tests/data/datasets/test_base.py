"""Datasets: targets, multi-view testing, robustness to broken files, workers, every dataset flavour."""

from __future__ import annotations

import json
import logging
import pickle
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from assemblenet.data import (
    CharadesDataset,
    CharadesFrameListDataset,
    ClipSampling,
    ClipViews,
    KineticsCsvDataset,
    SmarthomeDataset,
    VideoFolderDataset,
    VideoListDataset,
    average_views,
    build_dataset,
    collate,
)
from assemblenet.data.annotations import write_video_list
from assemblenet.errors import ConfigError, DataError

from .conftest import counter_frames, encode_video, frame_number
from .test_decode import make_broken_files


def manifest(root: Path) -> dict:
    return json.loads((root / "synthetic.json").read_text())


def test_synthetic_kinetics_dataset(synthetic_root):
    dataset = build_dataset("synthetic", root=synthetic_root, split="train",
                            sampling=ClipSampling(num_frames=8, stride=2))
    assert isinstance(dataset, KineticsCsvDataset)
    assert dataset.num_classes == 6 and not dataset.multi_label
    assert dataset.class_names[:2] == ["slide_right", "slide_left"]
    labels = {v["id"]: v["actions"][0]["class"] for v in manifest(synthetic_root)["videos"]}
    torch.manual_seed(0)
    for index in range(len(dataset)):
        clip, target, meta = dataset[index]
        assert clip.shape == (3, 8, 32, 32) and clip.dtype == torch.uint8  # floats on the device
        assert clip.max() > clip.min() and clip.float().std() > 5  # real content, 0-255
        assert target.dtype == torch.int64 and dataset.class_names[int(target)] == labels[meta["video_id"]]
        assert np.all(np.diff(meta["frame_indices"]) == 2)
    assert dataset.num_skipped == 0


def test_training_clips_are_reproducible_under_torch_seed(synthetic_root):
    dataset = build_dataset("synthetic", root=synthetic_root, split="train", sampling=ClipSampling(num_frames=4),
                            views=ClipViews(crop_size=24, hflip_prob=0.5))
    torch.manual_seed(5)
    first = [dataset[i][0] for i in range(4)]
    torch.manual_seed(5)
    second = [dataset[i][0] for i in range(4)]
    assert all(torch.equal(a, b) for a, b in zip(first, second))
    assert first[0].shape == (3, 4, 24, 24)


@pytest.mark.parametrize("split, old, sampling, views", [
    ("train", dict(num_frames=4, stride=2, crop_size=24, scale=(0.3, 1.0), hflip_prob=0.5),
     ClipSampling(num_frames=4, stride=2), ClipViews(crop_size=24, scale=(0.3, 1.0), hflip_prob=0.5)),
    ("val", dict(num_frames=4, short_video="pad", mode="test", num_clips=2, num_crops=3, crop_size=24),
     ClipSampling(num_frames=4, short_video="pad"), ClipViews(mode="test", num_clips=2, num_crops=3, crop_size=24)),
])
def test_the_old_clip_keywords_still_work_warn_once_and_give_the_same_samples(synthetic_root, split, old, sampling,
                                                                              views):
    """For one release every dataset (and build_dataset) still takes the fields of ``sampling=`` and ``views=``
    as keywords of their own: one DeprecationWarning, naming them and where they go, attributed to the caller;
    and the same samples for the same seeds as the new form."""
    with pytest.warns(DeprecationWarning) as caught:
        legacy = build_dataset("synthetic", root=synthetic_root, split=split, **old)
    assert len(caught) == 1 and caught[0].filename == __file__
    message = str(caught[0].message)
    assert all(f"{name}=..." in message for name in old), message
    assert "sampling=ClipSampling(" in message and "views=ClipViews(" in message and "next release" in message
    new = build_dataset("synthetic", root=synthetic_root, split=split, sampling=sampling, views=views)
    assert len(legacy) == len(new) and legacy.sampling == new.sampling
    for index in range(0, len(new), max(1, len(new) // 5)):
        torch.manual_seed(index)
        clip_old, target_old, meta_old = legacy[index]
        torch.manual_seed(index)
        clip_new, target_new, meta_new = new[index]
        assert torch.equal(clip_old, clip_new) and torch.equal(target_old, target_new) and meta_old == meta_new
    with pytest.raises(TypeError, match="not both"):
        KineticsCsvDataset(legacy.list_path, root=synthetic_root, sampling=sampling, num_frames=8)
    with pytest.raises(TypeError, match="unexpected keyword argument 'num_frame'"):
        KineticsCsvDataset(legacy.list_path, root=synthetic_root, num_frame=8)


def test_charades_targets_follow_the_intervals(synthetic_root):
    videos = {v["id"]: v for v in manifest(synthetic_root)["videos"]}
    common = dict(root=synthetic_root, split="train", annotation="charades",
                  sampling=ClipSampling(num_frames=6, stride=2), views=ClipViews(mode="test"))
    video_level = build_dataset("synthetic", target_type="video", **common)
    frame_level = build_dataset("synthetic", target_type="frame", **common)
    clip_level = build_dataset("synthetic", target_type="clip", **common)
    assert isinstance(video_level, CharadesDataset) and video_level.multi_label
    names = video_level.class_names
    seen_multi = False
    for index in range(len(video_level)):
        _, target, meta = video_level[index]
        actions = videos[meta["video_id"]]["actions"]
        assert {names[i] for i in target.nonzero().flatten().tolist()} == {a["class"] for a in actions}
        _, frame_target, frame_meta = frame_level[index]
        assert frame_target.shape == (6, len(names))
        for row, frame in enumerate(frame_meta["frame_indices"]):
            active = {a["class"] for a in actions if a["start_frame"] <= frame < a["end_frame"]}
            assert {names[i] for i in frame_target[row].nonzero().flatten().tolist()} == active
        _, clip_target, _ = clip_level[index]
        first, last = frame_meta["frame_indices"][0], frame_meta["frame_indices"][-1]
        overlapping = {a["class"] for a in actions if a["start_frame"] <= last and a["end_frame"] > first}
        assert {names[i] for i in clip_target.nonzero().flatten().tolist()} == overlapping
        seen_multi |= len(actions) > 1 and len(overlapping) < len(actions) or frame_target.sum(1).unique().numel() > 1
    assert seen_multi, "the fixture should include actions that do not span the whole clip"


def test_multi_view_testing(synthetic_root):
    dataset = build_dataset("synthetic", root=synthetic_root, split="val", sampling=ClipSampling(num_frames=4),
                            views=ClipViews(mode="test", num_clips=2, num_crops=3, crop_size=24))
    assert len(dataset) == dataset.num_videos * 6 and dataset.num_views == 6
    views = [dataset[i] for i in range(6)]
    assert {v[2]["video_index"] for v in views} == {0}
    assert [(v[2]["clip_index"], v[2]["crop_index"]) for v in views] == [(c, k) for c in range(2) for k in range(3)]
    assert views[0][2]["frame_indices"][0] == 0 and views[3][2]["frame_indices"][-1] == 15
    assert all(v[0].shape == (3, 4, 24, 24) for v in views)
    assert not torch.equal(views[0][0], views[3][0])  # the two clips show different times
    scores = torch.stack([torch.full((3,), float(i)) for i in range(6)] + [torch.ones(3)])
    averaged, videos = average_views(scores, [0] * 6 + [1])
    assert videos == [0, 1] and torch.allclose(averaged[0], torch.full((3,), 2.5))


def test_collate_and_dataloader_workers(synthetic_root):
    dataset = build_dataset("synthetic", root=synthetic_root, split="train", sampling=ClipSampling(num_frames=4))
    pickle.loads(pickle.dumps(dataset))
    loader = torch.utils.data.DataLoader(dataset, batch_size=4, num_workers=2, collate_fn=collate)
    clips, targets, meta = next(iter(loader))
    assert clips.shape == (4, 3, 4, 32, 32) and targets.shape == (4,)
    assert len(meta["video_id"]) == 4 and meta["skipped"] == [[], [], [], []]


def good_and_broken_list(tmp_path: Path, synthetic_root: Path) -> tuple[Path, list[str], dict[str, Path]]:
    good = []
    for i, source in enumerate(sorted((synthetic_root / "videos").glob("*.mp4"))[:3]):
        target = tmp_path / f"good_{i}.mp4"
        shutil.copy(source, target)
        good.append(str(target))
    broken = make_broken_files(tmp_path / "broken")
    rows = [(p, "good") for p in good[:2]] + [(str(p), "good") for p in broken.values()] + [(good[2], "good")]
    list_path = tmp_path / "list.csv"
    write_video_list(list_path, rows)
    return list_path, good, broken


def test_broken_videos_are_skipped_counted_and_reported(tmp_path, synthetic_root, caplog):
    list_path, good, broken = good_and_broken_list(tmp_path, synthetic_root)
    dataset = KineticsCsvDataset(list_path, root=tmp_path, sampling=ClipSampling(num_frames=4))
    assert len(dataset) == 7
    served = []
    with caplog.at_level(logging.WARNING):
        for index in range(len(dataset)):
            clip, _, meta = dataset[index]
            assert clip.shape == (3, 4, 32, 32)
            served.append(meta["path"])
    assert set(served) == set(good)  # every good video loads; bad slots are served by good ones
    assert dataset.num_skipped == 4
    assert set(dataset.skipped) == {str(p) for p in broken.values()}
    for path in broken.values():
        assert str(path) in caplog.text
    # Bad files are remembered: a second pass raises no new warnings and keeps the count.
    caplog.clear()
    for index in range(len(dataset)):
        dataset[index]
    assert dataset.num_skipped == 4 and "skipping video" not in caplog.text


def test_skips_in_worker_processes_reach_the_main_process(tmp_path, synthetic_root):
    list_path, _, broken = good_and_broken_list(tmp_path, synthetic_root)
    dataset = KineticsCsvDataset(list_path, root=tmp_path, sampling=ClipSampling(num_frames=4))
    loader = torch.utils.data.DataLoader(dataset, batch_size=7, num_workers=1, collate_fn=collate)
    for _, _, meta in loader:
        dataset.absorb_skipped(meta)
    assert set(dataset.skipped) == {str(p) for p in broken.values()}


def test_scan_drops_exactly_the_broken_videos(tmp_path, synthetic_root):
    list_path, good, broken = good_and_broken_list(tmp_path, synthetic_root)
    dataset = KineticsCsvDataset(list_path, root=tmp_path, sampling=ClipSampling(num_frames=4))
    bad = dataset.scan(workers=1)
    assert set(bad) == {str(p) for p in broken.values()} and dataset.num_skipped == 4
    assert [item.path for item in dataset.items] == good and len(dataset) == 3


def test_all_broken_gives_up_with_a_clear_error(tmp_path):
    broken = make_broken_files(tmp_path)
    write_video_list(tmp_path / "bad.csv", [(str(p), "x") for p in broken.values()])
    dataset = KineticsCsvDataset(tmp_path / "bad.csv", max_attempts=3)
    with pytest.raises(DataError, match="3 videos in a row failed"):
        dataset[0]


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


def test_smarthome_protocols(tmp_path, synthetic_root):
    source = sorted((synthetic_root / "videos").glob("*.mp4"))[0]
    names = ["Cook_p03_r00_v01_c01.mp4", "Drink.Frombottle_p05_r00_v02_c02.mp4", "Eat_p04_r01_v01_c02.mp4",
             "Walk_p08_r00_v03_c01.mp4"]
    (tmp_path / "mp4").mkdir()
    for name in names:
        shutil.copy(source, tmp_path / "mp4" / name)
    train = SmarthomeDataset(tmp_path, split="train", protocol="CS", sampling=ClipSampling(num_frames=4))
    test = SmarthomeDataset(tmp_path, split="test", protocol="CS", sampling=ClipSampling(num_frames=4))
    assert {i.video_id for i in train.items} == {"Cook_p03_r00_v01_c01", "Eat_p04_r01_v01_c02"}
    assert train.class_names == test.class_names == ["Cook", "Drink.Frombottle", "Eat", "Walk"]
    cv_test = SmarthomeDataset(tmp_path, split="test", protocol="CV1", sampling=ClipSampling(num_frames=4))
    assert {i.video_id for i in cv_test.items} == {"Drink.Frombottle_p05_r00_v02_c02", "Eat_p04_r01_v01_c02"}
    (tmp_path / "train_CS.txt").write_text("Walk_p08_r00_v03_c01\n")
    listed = SmarthomeDataset(tmp_path, split_file=tmp_path / "train_CS.txt", sampling=ClipSampling(num_frames=4))
    assert len(listed) == 1 and int(listed[0][1]) == 3
    with pytest.raises(ConfigError, match="protocol"):
        SmarthomeDataset(tmp_path, protocol="XX")


def test_charades_frame_list_dataset(tmp_path):
    frames = counter_frames(10, height=20, width=20)
    lines = ["original_vido_id video_id frame_id path labels"]
    for t, image in enumerate(frames):
        (tmp_path / "VID01").mkdir(exist_ok=True)
        cv2.imwrite(str(tmp_path / "VID01" / f"VID01-{t + 1:06d}.png"), image)
        labels = '"2"' if t < 5 else '"4,1"'
        lines.append(f"VID01 0 {t} VID01/VID01-{t + 1:06d}.png {labels}")
    (tmp_path / "val.csv").write_text("\n".join(lines) + "\n")
    dataset = CharadesFrameListDataset(tmp_path / "val.csv", root=tmp_path, num_classes=5,
                                       sampling=ClipSampling(num_frames=4, stride=3), views=ClipViews(mode="test"),
                                       target_type="frame")
    clip, target, meta = dataset[0]
    assert clip.shape == (3, 4, 20, 20)
    assert meta["frame_indices"] == [0, 3, 6, 9]
    assert [frame_number(clip[:, t].permute(1, 2, 0).numpy()) for t in range(4)] == [0, 3, 6, 9]
    assert target.tolist() == [[0, 0, 1, 0, 0], [0, 0, 1, 0, 0], [0, 1, 0, 0, 1], [0, 1, 0, 0, 1]]
    clip_level = CharadesFrameListDataset(tmp_path / "val.csv", root=tmp_path, num_classes=5,
                                          sampling=ClipSampling(num_frames=2, stride=1), views=ClipViews(mode="test"))
    assert clip_level[0][1].tolist() == [0, 1, 1, 0, 1]  # the centre clip (frames 4 and 5) spans both


def test_charades_from_frame_folders_and_without_class_file(tmp_path, caplog):
    for video_id in ("AAAAA", "BBBBB"):
        (tmp_path / "frames" / video_id).mkdir(parents=True)
        for t, image in enumerate(counter_frames(8, 16, 16)):
            cv2.imwrite(str(tmp_path / "frames" / video_id / f"{video_id}-{t + 1:06d}.jpg"), image)
    (tmp_path / "Charades_v1_test.csv").write_text(
        "id,subject,scene,quality,relevance,verified,script,objects,descriptions,actions,length\n"
        "AAAAA,S,K,6,7,Yes,s,o,d,c003 0.00 0.10,0.33\n"
        "BBBBB,S,K,6,7,Yes,s,o,d,,0.33\n")
    with caplog.at_level(logging.WARNING):
        dataset = CharadesDataset(tmp_path / "Charades_v1_test.csv", root=tmp_path / "frames",
                                  sampling=ClipSampling(num_frames=4), views=ClipViews(mode="test"),
                                  target_type="frame")
    assert "no class file found" in caplog.text and dataset.num_classes == 4
    clip, target, meta = dataset[0]
    assert clip.shape == (3, 4, 16, 16) and meta["frame_indices"] == [2, 3, 4, 5]
    # At 24 fps frame 2 (0.083 s) falls inside [0.00, 0.10) s, frame 3 (0.125 s) does not.
    assert target[:, 3].tolist() == [1.0, 0.0, 0.0, 0.0] and target[:, :3].sum() == 0
    assert dataset[1][1].sum() == 0


def test_flow_modality_is_aligned_with_rgb(tmp_path, synthetic_root):
    from assemblenet.data.flow import precompute_flow

    videos = sorted((synthetic_root / "videos").glob("*.mp4"))
    chosen = [synthetic_root / "videos" / "syn_00000.mp4"]  # slide_right, 2 px/frame at 64 px -> 1 px at 32
    report = precompute_flow(chosen, tmp_path / "flow", root=synthetic_root, method="farneback", fmt="float16",
                             progress=False)
    assert report.computed == [str(chosen[0])] and videos
    write_video_list(tmp_path / "one.csv", [("videos/syn_00000.mp4", "slide_right")])
    dataset = KineticsCsvDataset(tmp_path / "one.csv", root=synthetic_root, sampling=ClipSampling(num_frames=4),
                                 views=ClipViews(mode="test", crop_size=16), modalities=("rgb", "flow"),
                                 flow_root=tmp_path / "flow")
    clip, _, meta = dataset[0]
    assert clip["rgb"].shape == (3, 4, 16, 16) and clip["flow"].shape == (2, 4, 16, 16)
    # Short-side resize 32 -> 16 halves the flow; the patch moves right, so mean x flow is positive.
    assert clip["flow"][0].mean() > 0.05 and abs(float(clip["flow"][1].mean())) < 0.05
    flow_only = KineticsCsvDataset(tmp_path / "one.csv", root=synthetic_root, sampling=ClipSampling(num_frames=4),
                                   views=ClipViews(mode="test"), modalities=("flow",), flow_root=tmp_path / "flow")
    assert flow_only[0][0].shape == (2, 4, 32, 32)
    with pytest.raises(ConfigError, match="flow_root"):
        KineticsCsvDataset(tmp_path / "one.csv", root=synthetic_root, modalities=("flow",))


def test_target_fps_sampling_in_a_dataset(tmp_path):
    encode_video(tmp_path / "v.mp4", counter_frames(20), fps=10)
    write_video_list(tmp_path / "l.csv", [("v.mp4", "x")])
    dataset = KineticsCsvDataset(tmp_path / "l.csv", sampling=ClipSampling(num_frames=4, target_fps=5.0),
                                 views=ClipViews(mode="test"))
    clip, _, meta = dataset[0]
    assert np.all(np.diff(meta["frame_indices"]) == 2)
    assert [frame_number(clip[:, t].permute(1, 2, 0).numpy()) for t in range(4)] == meta["frame_indices"]


def test_factory_errors():
    with pytest.raises(ConfigError, match="unknown dataset 'imagenet'"):
        build_dataset("imagenet")
    with pytest.raises(ConfigError, match="csv_path"):
        build_dataset("kinetics")
    with pytest.raises(DataError, match="not a synthetic benchmark folder"):
        build_dataset("synthetic", root="/nonexistent")


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
