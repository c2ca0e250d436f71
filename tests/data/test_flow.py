"""Optical flow: sign convention and accuracy on a known translation, storage formats, resumable precompute."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from assemblenet.data.flow import (
    FlowStore,
    check_unique_keys,
    clip_to_uint8_frames,
    compute_flow,
    dequantize_flow,
    flow_key,
    precompute_flow,
    quantize_flow,
    write_flow,
)
from assemblenet.data.synthetic import translating_texture_clip
from assemblenet.errors import DataError

from .conftest import VIDEO_DIR


def write_frame_folder(folder: Path, clip: torch.Tensor) -> Path:
    folder.mkdir(parents=True)
    for t, frame in enumerate(clip_to_uint8_frames(clip)):
        cv2.imwrite(str(folder / f"img_{t + 1:05d}.png"), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    return folder


def test_translating_texture_clip_is_an_exact_shift():
    clip = translating_texture_clip(num_frames=4, height=32, width=48, dx=2.0, dy=-1.0, seed=1)
    assert clip.shape == (3, 4, 32, 48) and clip.dtype == torch.float32
    assert 0.0 <= clip.min() and clip.max() <= 1.0 and clip.std() > 0.05
    # Frame t+1 is frame t moved 2 px right and 1 px up (wrapping around).
    torch.testing.assert_close(clip[:, 1], torch.roll(clip[:, 0], shifts=(-1, 2), dims=(1, 2)), atol=1e-5, rtol=0)


@pytest.mark.parametrize("method,fmt", [("tvl1", "jpeg"), ("tvl1", "float16"), ("tvl1-torch", "jpeg")])
def test_precomputed_tvl1_flow_of_a_right_translation(tmp_path, method, fmt):
    clip = translating_texture_clip(num_frames=5, height=64, width=64, dx=2.0, dy=0.0, seed=0)
    video = write_frame_folder(tmp_path / "data" / "right", clip)
    report = precompute_flow([video], tmp_path / "flow", root=tmp_path / "data", method=method, fmt=fmt,
                             progress=False)
    assert report.computed == [str(video)] and not report.failed
    store = FlowStore(tmp_path / "flow")
    assert store.num_fields("right") == 4
    flow = store.load("right", range(5))
    assert flow.shape == (2, 5, 64, 64)
    # Convention: x to the right is positive, y down is positive, flow t maps frame t to t + 1.
    mean_x, mean_y = float(flow[0].mean()), float(flow[1].mean())
    assert abs(mean_x - 2.0) < 0.3 and abs(mean_y) < 0.3
    torch.testing.assert_close(flow[:, 4], flow[:, 3])  # the last frame repeats the last flow field


@pytest.mark.parametrize("method", ["tvl1", "tvl1-torch"])
def test_tvl1_sign_convention_for_upward_motion(method):
    clip = translating_texture_clip(num_frames=3, height=48, width=48, dx=0.0, dy=-1.5, seed=2)
    flow = compute_flow(clip_to_uint8_frames(clip), method=method)
    assert flow.shape == (2, 48, 48, 2)
    assert abs(flow[..., 0].mean()) < 0.3 and abs(flow[..., 1].mean() + 1.5) < 0.3


def test_quantisation_round_trip():
    flow = np.linspace(-25, 25, 101, dtype=np.float32)
    restored = dequantize_flow(quantize_flow(flow, 20.0), 20.0)
    inside = np.abs(flow) <= 20
    assert np.abs(restored[inside] - flow[inside]).max() <= 20.0 / 255 + 1e-6
    assert restored.max() == pytest.approx(20.0) and restored.min() == pytest.approx(-20.0)
    assert quantize_flow(np.zeros(1), 20.0)[0] in (127, 128)


def test_png_storage_and_resize_on_load(tmp_path):
    flow = np.zeros((3, 8, 10, 2), dtype=np.float32)
    flow[..., 0], flow[..., 1] = 4.0, -2.0
    write_flow(tmp_path / "flow" / "clip", flow, fmt="png")
    assert sorted(p.name for p in (tmp_path / "flow" / "clip").iterdir())[:2] == ["flow_x_00001.png",
                                                                                 "flow_x_00002.png"]
    loaded = FlowStore(tmp_path / "flow").load("clip", [0, 1], size=(16, 20))
    assert loaded.shape == (2, 2, 16, 20)
    assert abs(float(loaded[0].mean()) - 8.0) < 0.2 and abs(float(loaded[1].mean()) + 4.0) < 0.2
    with pytest.raises(DataError, match="no precomputed flow for 'other'"):
        FlowStore(tmp_path / "flow").load("other", [0])


def test_precompute_on_a_real_video_is_resumable(tmp_path):
    video = VIDEO_DIR / "mpeg4_audio_320x240.avi"
    out = tmp_path / "flow"
    first = precompute_flow([video], out, root=VIDEO_DIR, method="tvl1", fmt="jpeg", short_side=48,
                            max_frames=6, progress=False)
    assert first.computed == [str(video)]
    key = flow_key(video, VIDEO_DIR)
    assert key == "mpeg4_audio_320x240"
    store = FlowStore(out)
    assert store.num_fields(key) == 5
    flow = store.load(key, [0, 2, 4])
    assert flow.shape == (2, 3, 48, 64) and torch.isfinite(flow).all()
    assert float(flow.abs().max()) <= 20.0 + 1e-4
    assert json.loads((out / "flow_meta.json").read_text())["method"] == "tvl1"
    stamp = (out / key / "flow_x_00001.jpg").stat().st_mtime_ns
    second = precompute_flow([video], out, root=VIDEO_DIR, method="tvl1", fmt="jpeg", short_side=48,
                             max_frames=6, progress=False)
    assert second.already_done == [str(video)] and second.computed == []
    assert (out / key / "flow_x_00001.jpg").stat().st_mtime_ns == stamp
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary leftovers


def test_farneback_full_real_video_in_parallel(tmp_path):
    videos = [VIDEO_DIR / "mpeg4_audio_320x240.avi", tmp_path / "missing.mp4"]
    report = precompute_flow(videos, tmp_path / "flow", root=VIDEO_DIR, method="farneback", fmt="float16",
                             short_side=60, workers=2, progress=False)
    assert report.computed == [str(videos[0])]
    assert list(report.failed) == [str(videos[1])] and "missing.mp4" in report.failed[str(videos[1])]
    stored = np.load(tmp_path / "flow" / "mpeg4_audio_320x240.flow.npy")
    assert stored.dtype == np.float16 and stored.shape == (163, 60, 80, 2)
    assert np.isfinite(stored).all() and np.abs(stored).max() > 0.1  # the scene moves


def test_mismatched_settings_are_refused(tmp_path):
    clip = translating_texture_clip(num_frames=3, height=32, width=32)
    video = write_frame_folder(tmp_path / "v", clip)
    precompute_flow([video], tmp_path / "flow", method="farneback", fmt="jpeg", progress=False)
    with pytest.raises(DataError, match="existing flow was made with"):
        precompute_flow([video], tmp_path / "flow", method="farneback", fmt="jpeg", bound=10, progress=False)


def test_flow_keys_are_unique_per_video_path(tmp_path):
    root = tmp_path / "data"
    assert flow_key(root / "train" / "a" / "clip.mp4", root) == "train/a/clip"
    outside = [tmp_path / "elsewhere" / "x" / "clip.mp4", tmp_path / "elsewhere" / "y" / "clip.mp4"]
    keys = [flow_key(path, root) for path in outside]
    assert keys[0] != keys[1] and all(k.startswith("_outside_root/clip-") for k in keys)
    assert flow_key(outside[0], None) == keys[0] == flow_key(str(outside[0]), root)  # stable, root-independent
    # Two same-named videos outside the root get two flow entries, each served back to its own video.
    clips = [translating_texture_clip(3, 16, 16, dx=dx, dy=0.0) for dx in (2.0, -2.0)]
    for path, clip in zip(outside, clips):
        write_frame_folder(path.with_suffix(""), clip)
    folders = [path.with_suffix("") for path in outside]
    report = precompute_flow(folders, tmp_path / "flow", root=root, method="farneback", fmt="float16", progress=False)
    assert len(report.computed) == 2
    store = FlowStore(tmp_path / "flow")
    means = [float(store.load(flow_key(folder, root), [0])[0].mean()) for folder in folders]
    assert means[0] > 0.5 and means[1] < -0.5


def test_two_videos_sharing_a_flow_key_are_refused_not_confused(tmp_path):
    root = tmp_path / "data"
    clip = translating_texture_clip(3, 16, 16)
    videos = [write_frame_folder(root / "a", clip), root / "a.avi"]  # keys drop the extension: both are "a"
    with pytest.raises(DataError, match=r"a.avi share the flow key 'a'"):
        precompute_flow(videos, tmp_path / "flow", root=root, method="farneback", fmt="float16", progress=False)
    assert not (tmp_path / "flow" / "a.flow.npy").exists()
    check_unique_keys([("x/a.mp4", "x/a"), ("x/a.mp4", "x/a"), ("x/b.mp4", "x/b")], where="test")  # fine


# -- the PyTorch TV-L1 -------------------------------------------------------------------------------------
def _endpoint_error(flow: np.ndarray, dx: float, dy: float) -> float:
    return float(np.sqrt((flow[..., 0] - dx) ** 2 + (flow[..., 1] - dy) ** 2).mean())


@pytest.mark.parametrize("dx,dy,size,smoothness", [(2.0, 0.0, 64, 2.0), (0.4, 0.2, 64, 2.0), (3.3, 1.7, 64, 2.0),
                                                   (6.0, -4.0, 96, 3.0)])
def test_torch_tvl1_recovers_a_known_shift_at_least_as_well_as_opencv(dx, dy, size, smoothness):
    clip = translating_texture_clip(num_frames=3, height=size, width=size + 16, dx=dx, dy=dy, seed=0,
                                    smoothness=smoothness)
    frames = clip_to_uint8_frames(clip)
    torch_error = _endpoint_error(compute_flow(frames, method="tvl1-torch"), dx, dy)
    opencv_error = _endpoint_error(compute_flow(frames, method="tvl1"), dx, dy)
    # Everywhere, borders included (content leaves the frame there): within a few hundredths of a pixel.
    assert torch_error < 0.07, torch_error
    assert torch_error <= 1.05 * opencv_error + 0.002, (torch_error, opencv_error)


def test_torch_tvl1_batches_pairs_without_changing_the_flow():
    from assemblenet.data.tvl1 import TorchTVL1

    clip = translating_texture_clip(num_frames=5, height=40, width=48, dx=1.5, dy=0.5, seed=3)
    grey = np.stack([cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY) for frame in clip_to_uint8_frames(clip)])
    grey[2:] = np.roll(grey[2:], 3, axis=2)  # pair 1 moves 4.5 px, the others 1.5 px: they converge apart
    one_at_a_time = TorchTVL1(pairs_per_batch=1).video_flow(grey)
    batched = TorchTVL1(pairs_per_batch=3).video_flow(grey)
    assert one_at_a_time.shape == batched.shape == (4, 40, 48, 2)
    assert abs(float(batched[1, ..., 0].mean()) - 4.5) < 0.1 and abs(float(batched[0, ..., 0].mean()) - 1.5) < 0.1
    # Each pair leaves its batch when it has converged, so batching does not change its flow.
    np.testing.assert_allclose(batched, one_at_a_time, atol=1e-5, rtol=0)
    with pytest.raises(DataError, match="at least 2 frames"):
        TorchTVL1().video_flow(grey[:1])


def test_torch_tvl1_precompute_in_parallel_workers(tmp_path):
    videos = [write_frame_folder(tmp_path / "data" / name, translating_texture_clip(
        num_frames=3, height=32, width=40, dx=dx, dy=0.0, seed=seed))
        for name, dx, seed in [("a", 1.0, 0), ("b", -1.0, 1)]]
    report = precompute_flow(videos, tmp_path / "flow", root=tmp_path / "data", fmt="float16", workers=2,
                             progress=False)
    assert sorted(report.computed) == sorted(map(str, videos)) and not report.failed
    store = FlowStore(tmp_path / "flow")
    assert json.loads((tmp_path / "flow" / "flow_meta.json").read_text())["method"] == "tvl1-torch"
    for key, dx in [("a", 1.0), ("b", -1.0)]:
        flow = store.load(key, range(3))
        assert abs(float(flow[0].mean()) - dx) < 0.1 and abs(float(flow[1].mean())) < 0.1


def test_torch_median_filter_used_on_gpus_matches_opencvs():
    from assemblenet.data.tvl1 import _median

    flow = torch.randn(2, 2, 9, 13, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(_median(flow, 5, use_opencv=False), _median(flow, 5, use_opencv=True))


def test_opencv_methods_refuse_a_gpu(tmp_path):
    with pytest.raises(DataError, match="runs on the CPU only"):
        precompute_flow([], tmp_path / "flow", method="tvl1", device="cuda", progress=False)
