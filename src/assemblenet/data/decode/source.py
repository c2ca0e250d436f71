"""What every frame reader is (:class:`FrameSource`, the ``Protocol`` both readers implement), the files that hold
videos, and the image operations both readers share (crop and resize, shrinking to a short side)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Iterator, Protocol, Sequence

import numpy as np

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".webm", ".mov", ".m4v", ".mpg", ".mpeg", ".flv", ".wmv", ".3gp")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


def find_videos(root: str | os.PathLike, *, frame_folders: bool = False) -> list[Path]:
    """Video files under ``root``, recursively, hidden files and folders left out, in walk order (sorted within
    each folder); with ``frame_folders`` also every sub-folder of ``root`` holding images (a video stored as
    frames), after that folder's video files."""
    root = Path(root)
    found: list[Path] = []
    for directory, subdirs, files in os.walk(root):
        subdirs[:] = sorted(d for d in subdirs if not d.startswith("."))
        folder = Path(directory)
        found.extend(folder / f for f in sorted(files)
                     if not f.startswith(".") and Path(f).suffix.lower() in VIDEO_EXTENSIONS)
        if frame_folders and folder != root and any(Path(f).suffix.lower() in IMAGE_EXTENSIONS for f in files):
            found.append(folder)
    return found


# Frame rate assumed when a container declares none, and of a frame folder unless given (images record none).
DEFAULT_FPS = 30.0

# A crop as (top, left, height, width); an output size as (height, width).
CropBox = tuple[int, int, int, int]
FrameSize = tuple[int, int]
# A crop, or a function of the frame's (height, width) drawing one, or drawing (crop, output size) (see get_frames).
Region = CropBox | Callable[[int, int], CropBox | tuple[CropBox, FrameSize]]
# Frame indices: ints, or an integer array (what the clip samplers draw).
FrameIndices = Sequence[int] | np.ndarray


class FrameSource(Protocol):
    """The interface every frame reader offers (``VideoReader``, ``FrameFolderReader``), and the type of every
    parameter or result that is "a reader". The readers subclass it explicitly, so a type checker holds them to
    it; tests/data/test_decode.py checks that both implement each member with its signature.

    Not ``runtime_checkable``: on Python 3.11 ``isinstance`` against a Protocol with properties reads them, and
    ``rotation``/``height`` of a ``VideoReader`` decode a frame.
    """

    path: Path

    @property
    def num_frames(self) -> int:
        """Frames in the video, counted by demuxing (files) or listing (folders), never taken from a header."""
        ...

    @property
    def fps(self) -> float: ...

    @property
    def timestamps(self) -> np.ndarray:
        """float64 [num_frames]: presentation time of each frame in seconds, the first frame at 0."""
        ...

    @property
    def duration(self) -> float:
        """Seconds from the first frame to the end of the last one."""
        ...

    @property
    def rotation(self) -> int:
        """Counter-clockwise display rotation in degrees, already applied to the frames returned."""
        ...

    @property
    def height(self) -> int:
        """Height of the frames returned (after the display rotation)."""
        ...

    @property
    def width(self) -> int: ...

    @property
    def can_seek(self) -> bool: ...

    def get_frames(self, indices: FrameIndices, *, seek: bool | None = None,
                   short_side: int | None = None, region: Region | None = None,
                   size: tuple[int, int] | None = None) -> np.ndarray:
        """uint8 [len(indices), H, W, 3] RGB frames at ``indices`` (any order, repeats allowed); see
        ``VideoReader.get_frames`` for ``seek``, ``short_side``, ``region`` and ``size``."""
        ...

    def read_all(self, *, short_side: int | None = None) -> np.ndarray:
        """Every frame, uint8 [num_frames, H, W, 3]."""
        ...

    def iter_frames(self, *, short_side: int | None = None) -> Iterator[np.ndarray]:
        """Every frame in order as uint8 [H, W, 3], without holding the whole video."""
        ...

    def close(self) -> None: ...

    def __enter__(self) -> FrameSource: ...

    def __exit__(self, *exc_info: object) -> None: ...

def crop_resize(image: np.ndarray, region: tuple[int, int, int, int], size: tuple[int, int]) -> np.ndarray:
    """Crop uint8 [H, W, C] to ``region = (top, left, height, width)`` and resize to ``size = (H', W')`` in uint8
    with OpenCV: area averaging when shrinking, bilinear when enlarging. A shrink by 2x or more first averages
    k x k blocks (k the integer part of the ratio; OpenCV's fast path, the crop trimmed by < k pixels), then
    area-resamples the rest: about 2x faster than one area resampling at a fractional ratio, as accurate."""
    import cv2

    top, left, height, width = (int(v) for v in region)
    if height < 1 or width < 1 or top < 0 or left < 0 or top + height > image.shape[0] or left + width > image.shape[1]:
        raise ValueError(f"crop region {region} outside the {image.shape[1]}x{image.shape[0]} frame")
    out_h, out_w = int(size[0]), int(size[1])
    block = int(min(height / out_h, width / out_w))
    if block >= 2:
        height, width = height // block * block, width // block * block
    patch = image[top:top + height, left:left + width]
    if (height, width) == (out_h, out_w):
        return np.ascontiguousarray(patch)
    if patch.strides[-1] != patch.itemsize or patch.strides[-2] != patch.itemsize * patch.shape[-1]:
        patch = np.ascontiguousarray(patch)  # a rotated frame; OpenCV reads row-strided crops as they are
    if block >= 2:
        patch = cv2.resize(patch, (width // block, height // block), interpolation=cv2.INTER_AREA)
        if patch.shape[:2] == (out_h, out_w):
            return patch
    shrink = out_h < patch.shape[0] and out_w < patch.shape[1]
    return cv2.resize(patch, (out_w, out_h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


class FrameCrop:
    """A crop region (fixed, or drawn once from the frame size) and the output size, for ``get_frames``."""

    def __init__(self, region: Region, size: FrameSize | None) -> None:
        if size is None and not callable(region):
            raise ValueError("region needs size=(H, W)")
        self._region = region
        self._fixed: tuple[int, ...] | None = None if callable(region) else tuple(int(v) for v in region)
        self.size = None if size is None else (int(size[0]), int(size[1]))

    def apply(self, image: np.ndarray) -> np.ndarray:
        if self._fixed is None:
            assert callable(self._region)  # only a function leaves the region to draw
            drawn = self._region(image.shape[0], image.shape[1])
            if len(drawn) == 2:  # (region, size): the function chose the output size too
                region, size = drawn
                drawn, self.size = region, (int(size[0]), int(size[1]))
            self._fixed = tuple(int(v) for v in drawn)
        if self.size is None:  # a function that returned a region alone, and no size=(H, W) given
            raise ValueError("region needs size=(H, W)")
        top, left, height, width = self._fixed  # a region of other than 4 values fails here as in crop_resize
        return crop_resize(image, (top, left, height, width), self.size)


def checked_indices(path: Path, indices: FrameIndices, num_frames: int) -> list[int]:
    """``indices`` as ints; none, or one outside ``[0, num_frames)``, is an error naming ``path``."""
    as_ints = [int(i) for i in indices]
    if not as_ints:
        raise ValueError("indices must not be empty")
    bad = [i for i in as_ints if not 0 <= i < num_frames]
    if bad:
        raise IndexError(f"{path}: frame indices {bad[:5]} out of range [0, {num_frames})")
    return as_ints


def shrink_to_short_side(height: int, width: int, short_side: int) -> tuple[int, int]:
    """(H, W) scaled so the shorter side is ``short_side``; sizes already that small are kept."""
    shorter = min(height, width)
    if short_side <= 0 or shorter <= short_side:
        return height, width
    scale = short_side / shorter
    return max(1, int(round(height * scale))), max(1, int(round(width * scale)))


def shrink_image(image: np.ndarray, short_side: int | None) -> np.ndarray:
    if short_side is None:
        return image
    import cv2

    height, width = shrink_to_short_side(image.shape[0], image.shape[1], short_side)
    if (height, width) == image.shape[:2]:
        return image
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)


