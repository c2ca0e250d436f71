"""UCF101 and HMDB51, read from their official split files as they ship."""

from __future__ import annotations

import os
from pathlib import Path

from assemblenet.data.annotations import (
    read_hmdb51_splits,
    read_ucf101_class_index,
    read_ucf101_split,
)
from assemblenet.data.datasets.base import VideoDataset, VideoItem, key_for
from assemblenet.errors import ConfigError, DataError

FOLDS = (1, 2, 3)


class CaseInsensitivePaths:
    """Finds ``root/rel`` when the case of a folder or file name differs from the list (UCF101 lists
    ``HandstandPushups/v_HandStandPushups_g01_c01.avi``; re-packaged copies rename one or the other).
    Folder listings are read once and cached."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._listings: dict[Path, dict[str, str] | None] = {}

    def _listing(self, folder: Path) -> dict[str, str] | None:
        if folder not in self._listings:
            try:
                self._listings[folder] = {name.lower(): name for name in os.listdir(folder)}
            except OSError:
                self._listings[folder] = None
        return self._listings[folder]

    def find(self, rel: str) -> Path:
        """The existing path for ``rel``, or ``root/rel`` as written when nothing matches (a missing video)."""
        exact = self.root / rel
        if exact.exists():
            return exact
        current = self.root
        for part in Path(rel).parts:
            listing = self._listing(current)
            if listing is None or part.lower() not in listing:
                return exact
            current = current / listing[part.lower()]
        return current


def _check_fold(fold: int) -> int:
    if fold not in FOLDS:
        raise ConfigError(f"fold must be 1, 2 or 3 (the official splits), got {fold!r}")
    return int(fold)


def _first_existing(*candidates: Path) -> Path:
    for candidate in candidates:
        if candidate.exists():
            return candidate
    return candidates[0]


class UCF101Dataset(VideoDataset):
    """UCF101 as downloaded: ``UCF101TrainTestSplits-RecognitionTask.zip`` and ``UCF101.rar`` unpacked side by side.

    ::

        root/ucfTrainTestlist/classInd.txt             1 ApplyEyeMakeup ... 101 YoYo (1-based)
        root/ucfTrainTestlist/trainlist0{1,2,3}.txt    ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1
        root/ucfTrainTestlist/testlist0{1,2,3}.txt     ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi
        root/UCF-101/<Class>/v_<Class>_gNN_cNN.avi

    Args:
        root: the folder holding ``ucfTrainTestlist/`` and ``UCF-101/``.
        split: ``train`` (trainlist) or ``test``/``val`` (testlist; labels from the class folder).
        fold: official split 1, 2 or 3.
        annotation_dir, video_dir: override ``root/ucfTrainTestlist`` and ``root/UCF-101``.
        **kwargs: ``VideoDataset`` options.

    Labels are 0-based (classInd index - 1). Class folders are matched ignoring case, and so are the files
    (``HandstandPushups/v_HandStandPushups_*.avi``).
    """

    def __init__(self, root: str | os.PathLike, *, split: str = "train", fold: int = 1,
                 annotation_dir: str | os.PathLike | None = None, video_dir: str | os.PathLike | None = None,
                 **kwargs) -> None:
        fold = _check_fold(fold)
        if split not in ("train", "test", "val"):
            raise ConfigError(f"UCF101 split must be 'train' or 'test' ('val' = 'test'), got {split!r}")
        root = Path(root)
        annotations = Path(annotation_dir) if annotation_dir else root / "ucfTrainTestlist"
        videos = Path(video_dir) if video_dir else root / "UCF-101"
        classes = read_ucf101_class_index(annotations / "classInd.txt")
        list_name = f"trainlist0{fold}.txt" if split == "train" else f"testlist0{fold}.txt"
        entries = read_ucf101_split(annotations / list_name, classes, labelled=split == "train")
        finder = CaseInsensitivePaths(videos)
        items = []
        for entry in entries:
            path = finder.find(entry.path)
            items.append(VideoItem(str(path), entry.labels, Path(entry.path).stem, key_for(path, videos)))
        super().__init__(items, classes=classes, multi_label=False, **kwargs)
        self.root, self.split, self.fold = root, split, fold


class HMDB51Dataset(VideoDataset):
    """HMDB51 as downloaded: ``hmdb51_org.rar`` (one rar per class, unpacked to ``<class>/``) and
    ``test_train_splits.rar``.

    ::

        root/testTrainMulti_7030_splits/<class>_test_split{1,2,3}.txt   April_09_brush_hair_u_nm_np1_ba_goo_0.avi 1
        root/<class>/<video>.avi          (or root/hmdb51_org/<class>/, or video_dir)

    Codes: 1 train, 2 test, 0 unused in that split. Labels are the sorted class names (0..50).

    Args:
        root: the folder holding the split folder and the class folders.
        split: ``train`` or ``test``/``val``.
        fold: official split 1, 2 or 3.
        split_dir, video_dir: override the two folders (the video folder default is ``root/hmdb51_org`` if it
            exists, else ``root``).
        **kwargs: ``VideoDataset`` options.
    """

    def __init__(self, root: str | os.PathLike, *, split: str = "train", fold: int = 1,
                 split_dir: str | os.PathLike | None = None, video_dir: str | os.PathLike | None = None,
                 **kwargs) -> None:
        fold = _check_fold(fold)
        if split not in ("train", "test", "val"):
            raise ConfigError(f"HMDB51 split must be 'train' or 'test' ('val' = 'test'), got {split!r}")
        root = Path(root)
        split_folder = Path(split_dir) if split_dir else root / "testTrainMulti_7030_splits"
        videos = Path(video_dir) if video_dir else _first_existing(root / "hmdb51_org", root)
        classes, listed = read_hmdb51_splits(split_folder, fold)
        wanted = "train" if split == "train" else "test"
        finder = CaseInsensitivePaths(videos)
        items = []
        for video in listed:
            if video.subset != wanted:
                continue
            path = finder.find(f"{video.class_name}/{video.file_name}")
            items.append(VideoItem(str(path), (classes.index_of(video.class_name),), Path(video.file_name).stem,
                                   key_for(path, videos)))
        if not items:
            raise DataError(f"{split_folder}: no {wanted} videos in split {fold}")
        super().__init__(items, classes=classes, multi_label=False, **kwargs)
        self.root, self.split, self.fold = root, split, fold


__all__ = ["CaseInsensitivePaths", "HMDB51Dataset", "UCF101Dataset"]
