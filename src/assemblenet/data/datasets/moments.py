"""Moments-in-Time and Multi-Moments in Time, read from their official lists as they ship."""

from __future__ import annotations

import os
from pathlib import Path

from assemblenet.data.annotations import (
    ClassList,
    ListedVideo,
    read_moments_categories,
    read_moments_list,
    read_multi_moments_list,
)
from assemblenet.data.datasets.base import VideoDataset, VideoItem, key_for
from assemblenet.errors import ConfigError, DataError

_SPLITS = {"train": ("trainingSet", "training"), "val": ("validationSet", "validation"),
           "validation": ("validationSet", "validation")}


def _split_names(split: str) -> tuple[str, str]:
    if split not in _SPLITS:
        raise ConfigError(f"Moments-in-Time split must be 'train' or 'val' (the test set has no public labels), "
                          f"got {split!r}")
    return _SPLITS[split]


def _find(root: Path, names: list[str], what: str) -> Path:
    """The first of ``names`` under ``root`` or ``root/annotations`` (MMAction moves the lists there)."""
    for folder in (root, root / "annotations"):
        for name in names:
            if (folder / name).is_file():
                return folder / name
    raise DataError(f"{root}: {what} not found (looked for {', '.join(names)} in it and in annotations/)")


def _items(entries: list[ListedVideo], videos: Path) -> list[VideoItem]:
    items = []
    for entry in entries:
        path = videos / entry.path
        items.append(VideoItem(str(path), entry.labels, Path(entry.path).stem, key_for(path, videos)))
    return items


def _categories(root: Path, categories: ClassList | str | os.PathLike | None) -> ClassList:
    if isinstance(categories, ClassList):
        return categories
    path = Path(categories) if categories is not None else _find(root, ["moments_categories.txt"], "category list")
    return read_moments_categories(path)


class MomentsInTimeDataset(VideoDataset):
    """Moments-in-Time (v1/v2) as unpacked from ``Moments_in_Time_Raw.zip``::

        root/moments_categories.txt        adult+female+singing,0  (name,index; 339 classes in v1, 305 in v2)
        root/trainingSet.csv               adult+female+singing/0a8b6.mp4,adult+female+singing,3,0
        root/validationSet.csv             (filename, label, agreeing votes, disagreeing votes; no header)
        root/training/<class>/<file>.mp4   root/validation/<class>/<file>.mp4

    Args:
        root: the unpacked folder (the lists may also sit in ``root/annotations/``).
        split: ``train`` or ``val``.
        categories, list_path, video_dir: override the category file, the list and the video folder.
        **kwargs: ``VideoDataset`` options.
    """

    def __init__(self, root: str | os.PathLike, *, split: str = "train",
                 categories: ClassList | str | os.PathLike | None = None, list_path: str | os.PathLike | None = None,
                 video_dir: str | os.PathLike | None = None, **kwargs) -> None:
        list_name, folder = _split_names(split)
        root = Path(root)
        classes = _categories(root, categories)
        list_file = Path(list_path) if list_path else _find(root, [f"{list_name}.csv"], f"{list_name}.csv")
        videos = Path(video_dir) if video_dir else root / folder
        items = _items(read_moments_list(list_file, classes), videos)
        super().__init__(items, classes=classes, multi_label=False, **kwargs)
        self.root, self.split = root, split


class MultiMomentsDataset(VideoDataset):
    """Multi-Moments in Time (multi-label)::

        root/moments_categories.txt        name,index lines (313 classes), as in Moments-in-Time
        root/trainingSet.txt               class/file.mp4,12,45     (0-based indices; .csv accepted too)
        root/validationSet.txt
        root/videos/<class>/<file>.mp4     (or root/training/ and root/validation/; see video_dir)

    Args:
        root: the unpacked folder (the lists may also sit in ``root/annotations/``).
        split: ``train`` or ``val``.
        categories, list_path, video_dir: overrides. The video folder default is ``root/training`` or
            ``root/validation`` when it exists, else ``root/videos``.
        **kwargs: ``VideoDataset`` options. Targets are multi-hot [K]; train with ``loss: bce``.
    """

    def __init__(self, root: str | os.PathLike, *, split: str = "train",
                 categories: ClassList | str | os.PathLike | None = None, list_path: str | os.PathLike | None = None,
                 video_dir: str | os.PathLike | None = None, **kwargs) -> None:
        list_name, folder = _split_names(split)
        root = Path(root)
        classes = _categories(root, categories)
        list_file = Path(list_path) if list_path else _find(root, [f"{list_name}.txt", f"{list_name}.csv"],
                                                            f"{list_name}.txt")
        if video_dir:
            videos = Path(video_dir)
        else:
            videos = root / folder if (root / folder).is_dir() else root / "videos"
        items = _items(read_multi_moments_list(list_file, len(classes)), videos)
        super().__init__(items, classes=classes, multi_label=True, **kwargs)
        self.root, self.split = root, split
