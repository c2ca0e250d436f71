"""Which frames make a clip (``ClipSampling``), and which views of it a dataset yields (``ClipViews``): one
random clip with a random crop and flip for training, evenly spaced clips x fixed crops for testing.

A clip is ``num_frames`` frames taken either every ``stride`` source frames, or at ``target_fps`` using the
frame timestamps (which also handles variable frame rate). A video shorter than a clip is looped or padded
with its last frame, by option.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Literal

import numpy as np

from assemblenet.errors import ConfigError
from assemblenet.input_spec import DATASET_CLIP_FRAMES, DEFAULT_INPUT

if TYPE_CHECKING:
    from assemblenet.data.transforms import Transform

ShortVideoPolicy = Literal["loop", "pad"]
DatasetMode = Literal["train", "test"]


@dataclass(frozen=True)
class ClipSampling:
    """How to cut a clip out of a video.

    Args:
        num_frames: frames per clip (T); :data:`~assemblenet.input_spec.DATASET_CLIP_FRAMES` (16) when a dataset
            is built without ``sampling=``, half the model's default input (the engine always passes its
            ``data.num_frames``).
        stride: step between sampled source frames; ignored when ``target_fps`` is set.
        target_fps: sample at this rate in seconds of video time instead of a fixed frame step.
        short_video: ``"loop"`` wraps around to the start, ``"pad"`` repeats the last frame.
    """

    num_frames: int = DATASET_CLIP_FRAMES
    stride: int = DEFAULT_INPUT.stride
    target_fps: float | None = DEFAULT_INPUT.target_fps
    short_video: ShortVideoPolicy = "loop"

    def __post_init__(self) -> None:
        if self.num_frames < 1:
            raise ConfigError(f"num_frames must be >= 1, got {self.num_frames}")
        if self.stride < 1:
            raise ConfigError(f"stride must be >= 1, got {self.stride}")
        if self.target_fps is not None and not self.target_fps > 0:
            raise ConfigError(f"target_fps must be positive, got {self.target_fps}")
        if self.short_video not in ("loop", "pad"):
            raise ConfigError(f"short_video must be 'loop' or 'pad', got {self.short_video!r}")


@dataclass(frozen=True)
class ClipViews:
    """The views a dataset yields of each video, and the training augmentation.

    Args:
        mode: ``"train"``: one random clip per video with a random-resized crop and flip. ``"test"``: every
            video expands into ``num_clips x num_crops`` views (evenly spaced clips x fixed crops), one item each.
        num_clips, num_crops: the test views (``num_crops`` 1 = centre, 3 = left/centre/right); train mode
            ignores them.
        crop_size: output H = W. ``None`` keeps the decoded size (train mode then only flips).
        scale, ratio: random-resized-crop ranges for training (area share, aspect ratio).
        hflip_prob: training flip probability; ``None`` is the dataset's default: 0.5, or 0 for the synthetic
            sets, whose classes depend on left and right.
        transform: replaces the default train transform (a ``Transform`` or ``f(sample, rng) -> sample``).
    """

    mode: DatasetMode = "train"
    num_clips: int = 1
    num_crops: int = 1
    crop_size: int | None = None
    scale: tuple[float, float] = (0.25, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    hflip_prob: float | None = None
    transform: Transform | Callable | None = None

    def __post_init__(self) -> None:
        if self.mode not in ("train", "test"):
            raise ConfigError(f"mode must be 'train' or 'test', got {self.mode!r}")
        if self.num_crops not in (1, 3):
            raise ConfigError(f"num_crops must be 1 or 3, got {self.num_crops}")
        if self.num_clips < 1:
            raise ConfigError(f"num_clips must be >= 1, got {self.num_clips}")
        # Configs give lists (YAML); tuples keep the views hashable and comparable.
        object.__setattr__(self, "scale", tuple(self.scale))
        object.__setattr__(self, "ratio", tuple(self.ratio))


def clip_indices(num_video_frames: int, sampling: ClipSampling, position: float,
                 timestamps: np.ndarray | None = None) -> np.ndarray:
    """Frame indices of one clip.

    Args:
        num_video_frames: frames in the video (L).
        sampling: the clip definition.
        position: where the clip starts, in [0, 1] of the range of valid starts (0 = first frame,
            1 = the clip ends at the last frame).
        timestamps: float [L] seconds per frame; needed only with ``target_fps`` (defaults to 30 fps).

    Returns:
        int64 [T] indices in [0, L).
    """
    if num_video_frames < 1:
        raise ValueError("the video has no frames")
    position = float(min(max(position, 0.0), 1.0))
    T = sampling.num_frames
    if sampling.target_fps is None:
        offsets = np.arange(T, dtype=np.int64) * sampling.stride
        span = int(offsets[-1]) + 1
        if span <= num_video_frames:
            start = int(round(position * (num_video_frames - span)))
            return offsets + start
        if sampling.short_video == "loop":
            return offsets % num_video_frames
        return np.minimum(offsets, num_video_frames - 1)

    if timestamps is None:
        timestamps = np.arange(num_video_frames, dtype=np.float64) / 30.0
    timestamps = np.asarray(timestamps, dtype=np.float64)
    if len(timestamps) != num_video_frames:
        raise ValueError(f"{len(timestamps)} timestamps for {num_video_frames} frames")
    frame_duration = float(np.median(np.diff(timestamps))) if num_video_frames > 1 else 1.0 / 30.0
    video_duration = float(timestamps[-1] - timestamps[0]) + frame_duration
    clip_duration = T / sampling.target_fps
    times = np.arange(T, dtype=np.float64) / sampling.target_fps
    if clip_duration <= video_duration:
        times = times + timestamps[0] + position * (video_duration - clip_duration)
    elif sampling.short_video == "loop":
        # Wrap with a small tolerance so 0.1 * 3 counts as one full loop of a 0.3 s video.
        times = timestamps[0] + times - np.floor((times + 1e-9) / video_duration) * video_duration
    else:
        times = timestamps[0] + times
    # The frame on screen at time t is the last one whose timestamp is <= t.
    indices = np.searchsorted(timestamps, times + 1e-9, side="right") - 1
    return np.clip(indices, 0, num_video_frames - 1).astype(np.int64)


def random_clip(num_video_frames: int, sampling: ClipSampling, rng: np.random.Generator,
                timestamps: np.ndarray | None = None) -> np.ndarray:
    """Training clip at a uniformly random start. Returns int64 [T]."""
    if sampling.target_fps is None:
        span = (sampling.num_frames - 1) * sampling.stride + 1
        num_starts = num_video_frames - span + 1
        position = rng.integers(num_starts) / max(num_starts - 1, 1) if num_starts > 1 else 0.0
    else:
        position = rng.random()
    return clip_indices(num_video_frames, sampling, position, timestamps)


def uniform_clip_positions(num_clips: int) -> np.ndarray:
    """Evenly spaced start positions for ``num_clips`` test clips: the centre for one clip, else both ends
    and equal steps between them."""
    if num_clips < 1:
        raise ConfigError(f"num_clips must be >= 1, got {num_clips}")
    if num_clips == 1:
        return np.array([0.5])
    return np.linspace(0.0, 1.0, num_clips)


def uniform_clips(num_video_frames: int, sampling: ClipSampling, num_clips: int,
                  timestamps: np.ndarray | None = None) -> list[np.ndarray]:
    """``num_clips`` evenly spaced test clips, each int64 [T]."""
    return [clip_indices(num_video_frames, sampling, p, timestamps) for p in uniform_clip_positions(num_clips)]
