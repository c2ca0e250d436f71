"""Clip sampling: strides, target fps, short videos, random and uniform clips."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assemblenet.data.sampling import ClipSampling, clip_indices, random_clip, uniform_clip_positions, uniform_clips
from assemblenet.errors import ConfigError


def test_stride_and_position():
    sampling = ClipSampling(num_frames=4, stride=3)
    np.testing.assert_array_equal(clip_indices(100, sampling, 0.0), [0, 3, 6, 9])
    np.testing.assert_array_equal(clip_indices(100, sampling, 1.0), [90, 93, 96, 99])
    np.testing.assert_array_equal(clip_indices(100, sampling, 0.5), [45, 48, 51, 54])


def test_short_video_loop_and_pad():
    loop = ClipSampling(num_frames=6, stride=2, short_video="loop")
    pad = ClipSampling(num_frames=6, stride=2, short_video="pad")
    np.testing.assert_array_equal(clip_indices(5, loop, 0.3), [0, 2, 4, 1, 3, 0])
    np.testing.assert_array_equal(clip_indices(5, pad, 0.3), [0, 2, 4, 4, 4, 4])


def test_target_fps_uses_timestamps():
    # 30 fps source sampled at 10 fps: every third frame.
    sampling = ClipSampling(num_frames=4, target_fps=10.0)
    timestamps = np.arange(60) / 30.0
    np.testing.assert_array_equal(clip_indices(60, sampling, 0.0, timestamps), [0, 3, 6, 9])
    # Variable frame rate: the frame on screen at each sample time is chosen.
    vfr = np.array([0.0, 0.04, 0.08, 0.30, 0.34, 1.00, 1.04])
    np.testing.assert_array_equal(clip_indices(7, ClipSampling(num_frames=4, target_fps=4.0), 0.0, vfr),
                                  [0, 2, 4, 4])


def test_target_fps_short_video_loops_in_time():
    sampling = ClipSampling(num_frames=6, target_fps=10.0, short_video="loop")
    timestamps = np.arange(3) / 10.0  # 0.3 s of video, 0.6 s of clip
    np.testing.assert_array_equal(clip_indices(3, sampling, 0.0, timestamps), [0, 1, 2, 0, 1, 2])


def test_uniform_clips_are_evenly_spaced_and_cover_the_video():
    sampling = ClipSampling(num_frames=8, stride=2)
    clips = uniform_clips(115, sampling, 3)
    starts = [int(c[0]) for c in clips]
    assert starts == [0, 50, 100] and int(clips[-1][-1]) == 114
    np.testing.assert_allclose(uniform_clip_positions(1), [0.5])


def test_invalid_sampling_is_rejected():
    with pytest.raises(ConfigError, match="num_frames"):
        ClipSampling(num_frames=0)
    with pytest.raises(ConfigError, match="short_video"):
        ClipSampling(short_video="stretch")  # type: ignore[arg-type]


@settings(max_examples=60, deadline=None)
@given(length=st.integers(1, 300), frames=st.integers(1, 32), stride=st.integers(1, 8), seed=st.integers(0, 10**6))
def test_random_clips_stay_in_range_with_constant_stride(length, frames, stride, seed):
    sampling = ClipSampling(num_frames=frames, stride=stride)
    indices = random_clip(length, sampling, np.random.default_rng(seed))
    assert indices.shape == (frames,)
    assert indices.min() >= 0 and indices.max() < length
    if (frames - 1) * stride + 1 <= length:
        assert np.all(np.diff(indices) == stride)


def test_random_clip_start_is_uniform_over_valid_starts():
    sampling = ClipSampling(num_frames=4, stride=1)
    rng = np.random.default_rng(0)
    starts = [int(random_clip(10, sampling, rng)[0]) for _ in range(2000)]
    counts = np.bincount(starts, minlength=7)
    assert len(counts) == 7 and counts.min() > 200  # starts 0..6, all about equally likely
