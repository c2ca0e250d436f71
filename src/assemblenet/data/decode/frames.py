"""Frames stored as one image per frame, read with OpenCV: :class:`FrameFolderReader`, a
:class:`~assemblenet.data.decode.source.FrameSource`."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from assemblenet.data.decode.source import (
    DEFAULT_FPS,
    IMAGE_EXTENSIONS,
    FrameCrop,
    FrameIndices,
    FrameSource,
    Region,
    checked_indices,
    shrink_image,
)
from assemblenet.errors import DataError


def _natural_key(name: str) -> list:
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def list_frame_files(folder: str | os.PathLike) -> list[Path]:
    """Image files of a frame folder, sorted naturally (``img_2`` before ``img_10``)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: frame folder not found")
    files = [p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()]
    return sorted(files, key=lambda p: _natural_key(p.name))


class FrameFolderReader(FrameSource):
    """Frames stored as one JPEG/PNG image per frame.

    Args:
        folder: a folder of images (sorted naturally), or ``None`` when ``frame_paths`` is given.
        frame_paths: explicit image paths in frame order (e.g. from a PySlowFast frame list).
        fps: frame rate of the folder, which images cannot record (Charades RGB frames are 24 fps).
    """

    def __init__(self, folder: str | os.PathLike | None = None, *,
                 frame_paths: Sequence[str | os.PathLike] | None = None, fps: float = DEFAULT_FPS) -> None:
        if frame_paths is None:
            if folder is None:
                raise ValueError("give a folder or frame_paths")
            frame_paths = list_frame_files(folder)
        self.path = Path(folder) if folder is not None else Path(frame_paths[0]).parent if frame_paths else Path()
        self.frame_paths = [Path(p) for p in frame_paths]
        if not self.frame_paths:
            raise DataError(f"{self.path}: no frame images (*.jpg, *.png) found")
        if fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        self._fps = float(fps)
        self._size: tuple[int, int] | None = None

    @property
    def num_frames(self) -> int:
        return len(self.frame_paths)

    @property
    def fps(self) -> float:
        return self._fps

    @property
    def timestamps(self) -> np.ndarray:
        return np.arange(self.num_frames, dtype=np.float64) / self.fps

    @property
    def duration(self) -> float:
        return self.num_frames / self.fps

    @property
    def rotation(self) -> int:
        return 0

    @property
    def can_seek(self) -> bool:
        return True

    @property
    def height(self) -> int:
        if self._size is None:
            self.get_frames([0])
        return self._size[0]  # type: ignore[index]

    @property
    def width(self) -> int:
        if self._size is None:
            self.get_frames([0])
        return self._size[1]  # type: ignore[index]

    def _read(self, path: Path) -> np.ndarray:
        import cv2

        if not path.is_file():
            raise DataError(f"{path}: frame image not found")
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            raise DataError(f"{path}: not a readable image")
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        if self._size is None:
            self._size = image.shape[:2]
        elif image.shape[:2] != self._size:
            raise DataError(f"{path}: frame size {image.shape[1]}x{image.shape[0]} differs from the first "
                            f"frame's {self._size[1]}x{self._size[0]}")
        return image

    def get_frames(self, indices: FrameIndices, *, seek: bool | None = None,
                   short_side: int | None = None, region: Region | None = None,
                   size: tuple[int, int] | None = None) -> np.ndarray:
        """uint8 [len(indices), H, W, 3], RGB. ``seek`` is accepted for interface parity and ignored;
        ``short_side``, ``region`` and ``size`` as in ``VideoReader.get_frames``."""
        crop = None if region is None else FrameCrop(region, size)
        indices = checked_indices(self.path, indices, self.num_frames)
        cache: dict[int, np.ndarray] = {}
        for i in indices:
            if i not in cache:
                image = self._read(self.frame_paths[i])
                cache[i] = crop.apply(image) if crop is not None else shrink_image(image, short_side)
        return np.stack([cache[i] for i in indices])

    def read_all(self, *, short_side: int | None = None) -> np.ndarray:
        return self.get_frames(range(self.num_frames), short_side=short_side)

    def iter_frames(self, *, short_side: int | None = None) -> Iterator[np.ndarray]:
        for path in self.frame_paths:
            yield shrink_image(self._read(path), short_side)

    def close(self) -> None:
        pass

    def __enter__(self) -> "FrameFolderReader":
        return self

    def __exit__(self, *exc_info: object) -> None:
        pass
