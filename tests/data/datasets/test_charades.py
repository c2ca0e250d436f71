"""Charades from videos, frame folders and PySlowFast frame lists: video-, clip- and frame-level targets."""

from __future__ import annotations

import logging

import cv2

from assemblenet.data import CharadesDataset, CharadesFrameListDataset, ClipSampling, ClipViews, build_dataset
from tests.data.conftest import counter_frames, frame_number
from tests.data.datasets.conftest import manifest


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
