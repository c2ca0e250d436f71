"""Precomputed per-frame object maps (AssembleNet++'s object stream), stored beside the videos.

AssembleNet++ reads, for every frame, a map of the objects in it: in the paper, the 151-class ADE-20k semantic
segmentation of the frame. The maps are precomputed (by any segmentation model) and stored under a folder that
mirrors the dataset, like precomputed flow: ``KEY`` is the video's path relative to the dataset root without its
extension (``assemblenet.data.flow.flow_key``). For each video, one of:

- ``KEY.npz`` holding ``labels``: integer class ids ``[N, H, W]`` (0..K-1), one map per video frame;
- ``KEY.npz`` holding ``scores``: float per-class scores ``[N, K, H, W]``;
- ``KEY/`` a folder of per-frame PNG label maps (8- or 16-bit grey, class id per pixel), one per video frame in
  name order (``00001.png``, ``00002.png``...).

(An ``.npz`` with a single array of either shape is accepted too.) A clip samples the maps of its own frames;
maps of another resolution than the video are resized to it with nearest-neighbour interpolation, so class ids
never blend, and the clip's crop, resize and flip are then applied to them as to the RGB frames
(``assemblenet.data.transforms`` treats the ``objects`` key with nearest-neighbour resampling).

Label ids travel as int64 ``[1, T, H, W]`` and reach the model as ``[B, 1, T, H, W]``; its object stem turns them
into the max-pooled one-hot maps without building the full-size one-hot tensor. Scores travel as float32
``[K, T, H, W]``. A missing or mis-shaped map raises :class:`~assemblenet.errors.DataError` naming the file; a
dataset turns that into a counted skip of the video, like a corrupt video.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from assemblenet.errors import DataError

OBJECTS_KEY = "objects"
_PNG = ".png"


class ObjectMapStore:
    """Object maps under ``root``, read per video key for a clip's frame indices.

    Args:
        root: the folder holding ``KEY.npz`` files or ``KEY/`` PNG folders.
        num_classes: K, the number of object classes (151 for ADE-20k). Label ids must be below it; score maps
            must have K channels.
    """

    def __init__(self, root: str | os.PathLike, *, num_classes: int) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise DataError(f"{self.root}: object map folder not found")
        if num_classes < 1:
            raise DataError(f"num_object_classes must be positive, got {num_classes}")
        self.num_classes = int(num_classes)

    def locate(self, key: str) -> Path:
        npz = self.root / (key + ".npz")
        if npz.is_file():
            return npz
        folder = self.root / key
        if folder.is_dir():
            return folder
        raise DataError(f"{npz}: object maps not found (nor a folder {folder} of PNG label maps)")

    def load(self, key: str, frame_indices: Sequence[int], *, size: tuple[int, int] | None = None) -> torch.Tensor:
        """The maps of frames ``frame_indices``: int64 label ids ``[1, T, H, W]`` or float32 scores
        ``[K, T, H, W]``, resized (nearest) to ``size = (H, W)`` when given."""
        path = self.locate(key)
        indices = [int(i) for i in frame_indices]
        if path.is_dir():
            maps = self._load_png_folder(path, indices)
        else:
            maps = self._load_npz(path, indices)
        if size is not None and tuple(maps.shape[-2:]) != tuple(size):
            height, width = size
            maps = resize_nearest(maps, (height, width))
        return maps

    # -- formats -------------------------------------------------------------------------------------------
    def _load_npz(self, path: Path, indices: list[int]) -> torch.Tensor:
        try:
            with np.load(path, allow_pickle=False) as archive:
                names = list(archive.files)
                if "labels" in names:
                    name = "labels"
                elif "scores" in names:
                    name = "scores"
                elif len(names) == 1:
                    name = names[0]
                else:
                    raise DataError(f"{path}: expected an array 'labels' [N, H, W] or 'scores' [N, K, H, W], "
                                    f"found {names}")
                array = archive[name]
        except (OSError, ValueError, zipfile.BadZipFile) as exc:
            raise DataError(f"{path}: unreadable object maps ({type(exc).__name__}: {exc})") from None
        if array.ndim == 3 and np.issubdtype(array.dtype, np.integer):
            return self._labels(array, indices, path)
        if array.ndim == 4 and np.issubdtype(array.dtype, np.floating):
            if array.shape[1] != self.num_classes:
                raise DataError(f"{path}: score maps have {array.shape[1]} classes (shape {list(array.shape)}), "
                                f"expected [N, {self.num_classes}, H, W]")
            self._check_frames(len(array), indices, path)
            picked = np.ascontiguousarray(array[indices].transpose(1, 0, 2, 3), dtype=np.float32)
            return torch.from_numpy(picked)
        raise DataError(f"{path}: expected integer label ids [N, H, W] or float scores [N, {self.num_classes}, H, W], "
                        f"got {array.dtype} {list(array.shape)}")

    def _load_png_folder(self, folder: Path, indices: list[int]) -> torch.Tensor:
        import cv2

        files = sorted(folder.glob(f"*{_PNG}"))
        if not files:
            raise DataError(f"{folder}: no PNG label maps in the object map folder")
        self._check_frames(len(files), indices, folder)
        frames: dict[int, np.ndarray] = {}
        for index in sorted(set(indices)):
            image = cv2.imread(str(files[index]), cv2.IMREAD_UNCHANGED)
            if image is None:
                raise DataError(f"{files[index]}: missing or unreadable label map")
            if image.ndim != 2:
                raise DataError(f"{files[index]}: a label map must be a single-channel image, got shape "
                                f"{list(image.shape)}")
            frames[index] = image
        sizes = {frame.shape for frame in frames.values()}
        if len(sizes) != 1:
            raise DataError(f"{folder}: label maps differ in size: {sorted(sizes)}")
        stacked = np.stack([frames[i] for i in indices])
        return self._labels(stacked, list(range(len(indices))), folder)

    def _labels(self, array: np.ndarray, indices: list[int], path: Path) -> torch.Tensor:
        self._check_frames(len(array), indices, path)
        picked = np.asarray(array[indices], dtype=np.int64)
        if picked.size and (picked.min() < 0 or picked.max() >= self.num_classes):
            raise DataError(f"{path}: label ids must be in 0..{self.num_classes - 1}, found "
                            f"{int(picked.min())}..{int(picked.max())}")
        return torch.from_numpy(np.ascontiguousarray(picked))[None]

    @staticmethod
    def _check_frames(count: int, indices: list[int], path: Path) -> None:
        if indices and max(indices) >= count:
            raise DataError(f"{path}: holds object maps for {count} frames, but the clip samples frame {max(indices)}")


def open_object_maps(path: str | os.PathLike, *, num_classes: int) -> tuple[ObjectMapStore, str]:
    """A store and key for one video's maps given directly as ``path`` (a ``.npz`` file or a PNG folder)."""
    path = Path(path)
    if path.suffix.lower() == ".npz":
        if not path.is_file():
            raise DataError(f"{path}: object maps not found")
        return ObjectMapStore(path.parent, num_classes=num_classes), path.stem
    if not path.is_dir():
        raise DataError(f"{path}: object maps not found (expected a .npz file or a folder of PNG label maps)")
    return ObjectMapStore(path.parent, num_classes=num_classes), path.name


def resize_nearest(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Nearest-neighbour resize of ``[C, T, H, W]`` maps (label ids or scores) to ``size = (H', W')``."""
    channels, frames, height, width = maps.shape
    x = maps.reshape(1, channels * frames, height, width)
    integer = not maps.is_floating_point()
    # 'nearest-exact' samples pixel centres (as OpenCV's INTER_NEAREST_EXACT), so a crop then resize samples the
    # same source pixels for the RGB frames and the maps.
    x = torch.nn.functional.interpolate(x.float() if integer else x, size=size, mode="nearest-exact")
    x = x.reshape(channels, frames, size[0], size[1])
    return x.round().to(maps.dtype) if integer else x
