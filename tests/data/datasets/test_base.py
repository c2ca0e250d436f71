"""VideoDataset (data/datasets/base.py): reproducible clips, the old clip keywords, multi-view testing, workers,
robustness to broken files, the flow modality and frame-rate sampling."""

from __future__ import annotations

import logging
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from assemblenet.data import ClipSampling, ClipViews, KineticsCsvDataset, average_views, build_dataset, collate
from assemblenet.data.annotations import write_video_list
from assemblenet.errors import ConfigError, DataError
from tests.data.conftest import counter_frames, encode_video, frame_number
from tests.data.test_decode import make_broken_files


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
