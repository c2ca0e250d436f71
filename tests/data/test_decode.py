"""Decoding: real videos, seeking against full decoding, container quirks, frame folders, broken files."""

from __future__ import annotations

from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from assemblenet.data.decode import (
    INDEX_CACHE,
    FrameFolderReader,
    FrameSource,
    VideoReader,
    list_frame_files,
    open_video,
)
from assemblenet.errors import DataError

from .conftest import REAL_VIDEOS, VIDEO_DIR, counter_frames, encode_video, frame_number


def plain_pyav_frames(path: Path, max_frames: int | None = None) -> list[np.ndarray]:
    frames = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            frames.append(frame.to_ndarray(format="rgb24"))
            if max_frames is not None and len(frames) >= max_frames:
                break
    return frames


def assert_close_to_reference(frames: np.ndarray, reference: np.ndarray) -> None:
    """The stated tolerance against PyAV's rgb24 (swscale): mean |diff| <= 1.5 grey levels, 99th percentile
    <= 4, max <= 24 (colour edges, where the two upsample chroma differently)."""
    assert frames.shape == reference.shape and frames.dtype == np.uint8
    diff = np.abs(frames.astype(np.int16) - reference.astype(np.int16))
    assert diff.mean() <= 1.5 and np.percentile(diff, 99) <= 4 and diff.max() <= 24


@pytest.mark.parametrize("name", sorted(REAL_VIDEOS))
def test_real_video_counts_shapes_and_values(name):
    frames_expected, height, width, fps = REAL_VIDEOS[name]
    path = VIDEO_DIR / name
    with VideoReader(path) as reader:
        assert reader.num_frames == frames_expected
        assert (reader.height, reader.width) == (height, width)
        assert reader.fps == pytest.approx(fps, rel=1e-3)
        assert reader.timestamps.shape == (frames_expected,)
        assert np.all(np.diff(reader.timestamps) > 0)
        short_side = 96 if height > 500 else None  # keep the 1080p video cheap to convert
        frames = np.stack(list(reader.iter_frames(short_side=short_side)))
    # The decoder, not the header, decides how many frames there are.
    with av.open(str(path)) as container:
        decoded = sum(1 for _ in container.decode(video=0))
    assert decoded == frames_expected == len(frames)
    assert frames.dtype == np.uint8
    if short_side is None:
        assert frames.shape == (frames_expected, height, width, 3)
    else:
        assert frames.shape == (frames_expected, 96, round(width * 96 / height), 3)
    assert 20 < frames.mean() < 235 and frames.std() > 10  # real content, neither blank nor saturated
    assert frames.min() < 40 and frames.max() > 200


@pytest.mark.parametrize("name", sorted(REAL_VIDEOS))
def test_real_video_random_access_matches_full_decode(name):
    frames_expected, height, *_ = REAL_VIDEOS[name]
    path = VIDEO_DIR / name
    short_side = 96 if height > 500 else None
    with VideoReader(path) as reader:
        full = reader.read_all(short_side=short_side)
        if short_side is None:
            # Frame order and content agree with plain PyAV decoding (presentation order), to the tolerance of
            # OpenCV's YUV->RGB versus swscale's (rounding, and chroma upsampling at colour edges).
            assert_close_to_reference(full, np.stack(plain_pyav_frames(path)))
        rng = np.random.default_rng(7)
        for _ in range(4):
            start = int(rng.integers(0, frames_expected - 16))
            indices = list(range(start, start + 16, 2))
            np.testing.assert_array_equal(reader.get_frames(indices, short_side=short_side), full[indices])
        scattered = rng.choice(frames_expected, size=6, replace=False).tolist()
        np.testing.assert_array_equal(reader.get_frames(scattered, short_side=short_side), full[scattered])
        np.testing.assert_array_equal(reader.get_frames([frames_expected - 1, 0, 0], short_side=short_side),
                                      full[[frames_expected - 1, 0, 0]])


def test_mp4_seeks_and_avi_decodes_sequentially():
    with VideoReader(VIDEO_DIR / "kinetics_armwrestling_340x256.mp4") as reader:
        assert reader.can_seek and len(reader.index.keyframes) > 1
    # AVI frame timestamps come in decode order, so seeking by them would return wrong frames.
    with VideoReader(VIDEO_DIR / "ntu_1080p_h264.avi") as reader:
        assert not reader.can_seek


def test_seek_returns_exact_frames_across_many_keyframes(tmp_path):
    path = encode_video(tmp_path / "counter.mp4", counter_frames(24), gop=4)
    with VideoReader(path) as reader:
        assert reader.can_seek and reader.index.keyframes[0] == 0 and len(reader.index.keyframes) >= 5
        for indices in ([13, 14, 15], [22, 3, 9], [5], [23, 0, 11, 11]):
            assert [frame_number(f) for f in reader.get_frames(indices)] == indices
        assert [frame_number(f) for f in reader.get_frames([6, 7], seek=False)] == [6, 7]


def test_audio_track_is_ignored():
    path = VIDEO_DIR / "mpeg4_audio_320x240.avi"
    with av.open(str(path)) as container:
        assert container.streams.audio, "the fixture should carry an audio stream"
    with VideoReader(path) as reader:
        assert reader.num_frames == 164
        assert reader.get_frames([0, 163]).shape == (2, 240, 320, 3)


def test_rotation_metadata_is_applied(tmp_path):
    upright = np.zeros((4, 32, 48, 3), dtype=np.uint8)
    upright[:, :8, :8] = 255  # a white block in the top-left corner
    path = encode_video(tmp_path / "rotated.mp4", upright, rotation=90)
    with VideoReader(path) as reader:
        assert reader.rotation == 90
        assert (reader.height, reader.width) == (48, 32)
        frame = reader.get_frames([0])[0]
    assert frame.shape == (48, 32, 3)
    # 90 degrees counter-clockwise moves the top-left corner to the bottom-left.
    assert frame[-8:, :8].mean() > 200 and frame[:8, :8].mean() < 50


def test_odd_frame_size(tmp_path):
    frames = counter_frames(6, height=17, width=33)
    path = encode_video(tmp_path / "odd.mkv", frames, pix_fmt="yuv444p")
    with VideoReader(path) as reader:
        assert (reader.height, reader.width, reader.num_frames) == (17, 33, 6)
        decoded = reader.get_frames([5, 1])
    assert decoded.shape == (2, 17, 33, 3)
    assert [frame_number(f) for f in decoded] == [5, 1]


def test_variable_frame_rate_timestamps(tmp_path):
    pts_ms = [0, 40, 80, 300, 340, 1000, 1040]
    path = encode_video(tmp_path / "vfr.mp4", counter_frames(len(pts_ms)), pts=pts_ms)
    with VideoReader(path) as reader:
        np.testing.assert_allclose(reader.timestamps, np.array(pts_ms) / 1000.0, atol=1e-3)
        assert [frame_number(f) for f in reader.get_frames([3, 6])] == [3, 6]


def test_short_side_decoding(tmp_path):
    with VideoReader(VIDEO_DIR / "kinetics_armwrestling_340x256.mp4") as reader:
        small = reader.get_frames([10, 11], short_side=64)
    assert small.shape == (2, 64, 85, 3)


def test_frame_folder_reader_has_the_same_interface(tmp_path):
    frames = counter_frames(12, height=24, width=20)
    folder = tmp_path / "frames"
    folder.mkdir()
    for t, image in enumerate(frames):  # unpadded names: natural order must still hold
        cv2.imwrite(str(folder / f"img_{t + 1}.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    (folder / "notes.txt").write_text("not a frame")
    assert [p.name for p in list_frame_files(folder)][:3] == ["img_1.png", "img_2.png", "img_3.png"]
    reader = open_video(folder, fps=24.0)
    assert isinstance(reader, FrameFolderReader)
    assert (reader.num_frames, reader.height, reader.width, reader.fps) == (12, 24, 20, 24.0)
    np.testing.assert_allclose(reader.timestamps[:3], [0, 1 / 24, 2 / 24])
    np.testing.assert_array_equal(reader.get_frames([11, 10, 2]), frames[[11, 10, 2]])
    assert reader.get_frames([0], short_side=12).shape == (1, 14, 12, 3)


def test_both_readers_implement_every_frame_source_member(tmp_path):
    """``FrameSource`` is the readers' one interface. Each reader defines every member itself (a member the
    Protocol gains and a reader lacks would silently inherit the Protocol's empty stub), its methods with the
    Protocol's parameters, and reads the same values through it."""
    import inspect

    members = {name for name in vars(FrameSource) if not name.startswith("_")} | {"__enter__", "__exit__"}
    members |= set(FrameSource.__annotations__)
    assert {"path", "num_frames", "fps", "timestamps", "get_frames", "iter_frames", "close"} <= members
    folder = tmp_path / "frames"
    folder.mkdir()
    frames = counter_frames(3, height=24, width=20)
    for t, image in enumerate(frames):
        cv2.imwrite(str(folder / f"{t}.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    video = tmp_path / "clip.mp4"
    encode_video(video, frames, fps=10)
    for path in (video, folder):
        with open_video(path, fps=10.0) as reader:
            assert isinstance(reader, (VideoReader, FrameFolderReader))
            for name in sorted(members):
                owner = next((k for k in type(reader).__mro__ if name in vars(k)), None)
                if owner is None or owner is FrameSource or owner is object:
                    assert name in vars(reader), f"{type(reader).__name__} lacks FrameSource.{name}"
                    continue
                declared = inspect.getattr_static(FrameSource, name)
                if callable(declared):
                    expected = [(p.name, p.kind, p.default) for p in inspect.signature(declared).parameters.values()]
                    actual = [(p.name, p.kind, p.default)
                              for p in inspect.signature(getattr(type(reader), name)).parameters.values()]
                    assert actual == expected, (type(reader).__name__, name)
                else:
                    assert isinstance(vars(owner)[name], property), (type(reader).__name__, name)
            assert (reader.num_frames, reader.height, reader.width, reader.fps) == (3, 24, 20, 10.0)
            assert reader.read_all().shape == (3, 24, 20, 3)
            assert [frame_number(f) for f in reader.iter_frames()] == [0, 1, 2]


def test_frame_folder_errors_name_the_file(tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    cv2.imwrite(str(folder / "0001.jpg"), np.zeros((8, 8, 3), np.uint8))
    (folder / "0002.jpg").write_bytes(b"broken jpeg")
    reader = FrameFolderReader(folder)
    with pytest.raises(DataError, match="0002.jpg"):
        reader.get_frames([1])
    with pytest.raises(DataError, match="missing_dir: frame folder not found"):
        FrameFolderReader(tmp_path / "missing_dir")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="empty: no frame images"):
        FrameFolderReader(tmp_path / "empty")


def make_broken_files(folder: Path) -> dict[str, Path]:
    """A truncated MP4, a zero-byte file, a text file named .mp4 and a missing path."""
    folder.mkdir(parents=True, exist_ok=True)
    good = encode_video(folder / "source.mp4", counter_frames(20), faststart=True)
    data = good.read_bytes()
    truncated = folder / "truncated.mp4"
    truncated.write_bytes(data[: len(data) // 2])
    empty = folder / "empty.mp4"
    empty.write_bytes(b"")
    text = folder / "text.mp4"
    text.write_text("this is not a video\n" * 20)
    good.unlink()
    return {"truncated": truncated, "empty": empty, "text": text, "missing": folder / "missing.mp4"}


@pytest.mark.parametrize("kind", ["truncated", "empty", "text", "missing"])
def test_broken_files_raise_data_error_naming_the_file(tmp_path, kind):
    INDEX_CACHE.clear()
    path = make_broken_files(tmp_path)[kind]
    with pytest.raises(DataError) as info:
        with VideoReader(path) as reader:
            reader.get_frames(range(reader.num_frames))
    assert str(path) in str(info.value)


def test_truncated_file_without_index_at_front(tmp_path):
    good = encode_video(tmp_path / "source.mp4", counter_frames(20))  # moov atom at the end
    truncated = tmp_path / "cut.mp4"
    truncated.write_bytes(good.read_bytes()[:-200])
    with pytest.raises(DataError, match="cut.mp4"):
        VideoReader(truncated)


def test_out_of_range_indices(tmp_path):
    path = encode_video(tmp_path / "counter.mp4", counter_frames(5))
    with VideoReader(path) as reader:
        with pytest.raises(IndexError, match="out of range"):
            reader.get_frames([5])


@pytest.mark.parametrize("suffix", [".mkv", ".webm"])
def test_a_truncated_file_of_a_container_without_a_frame_count_is_refused(tmp_path, suffix):
    """Matroska and WebM declare no frame count, only a duration: a file cut short is checked against
    duration x frame rate, so it is refused instead of being scored on the frames it still holds."""
    codec = "libx264" if suffix == ".mkv" else "libvpx-vp9"
    good = encode_video(tmp_path / f"good{suffix}", counter_frames(40, 32, 32), fps=10, codec=codec)
    with av.open(str(good)) as container:
        assert container.streams.video[0].frames == 0  # what makes the case: no frame count
    with VideoReader(good, use_cache=False) as reader:
        assert reader.num_frames == 40
    data = good.read_bytes()
    for share in (0.6, 0.4):
        cut = tmp_path / f"cut{int(share * 100)}{suffix}"
        cut.write_bytes(data[: int(len(data) * share)])
        with pytest.raises(DataError, match=r"truncated video: the container declares no frame count but 4.00 s"):
            VideoReader(cut, use_cache=False)


_FORK_AFTER_DECODING = """
import multiprocessing, sys
from assemblenet.data.decode import VideoReader

def decode(_):
    with VideoReader(sys.argv[1]) as reader:
        return sum(1 for _ in reader.iter_frames(short_side=60))

parent = decode(0)
with multiprocessing.get_context("fork").Pool(1) as pool:  # as a DataLoader worker or a fork-started pool
    child = pool.map(decode, [0])[0]
print(parent, child)
"""


def test_a_process_forked_after_decoding_decodes_without_hanging(tmp_path):
    # PyAV 17's default slice threads left a cached conversion context that a forked child hung on (precompute_flow
    # with workers=2 hung the suite); every conversion runs on one thread since (swscale_options). Run in a fresh
    # interpreter in its own process group, so that a hang is killed and reported instead of stopping the suite.
    import os
    import signal
    import subprocess
    import sys

    video = VIDEO_DIR / "mpeg4_audio_320x240.avi"
    script = tmp_path / "fork_after_decoding.py"
    script.write_text(_FORK_AFTER_DECODING)
    process = subprocess.Popen([sys.executable, str(script), str(video)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = process.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        pytest.fail("a process forked after decoding hung in its first frame conversion")
    assert process.returncode == 0, err
    parent, child = map(int, out.split())
    assert parent == child > 100
