"""UCF101 (``classInd.txt``, ``trainlist0N.txt``/``testlist0N.txt``) and HMDB51 (``<class>_test_split<fold>.txt``)."""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

from assemblenet.data.annotations.common import (
    ClassList,
    ListedVideo,
    _indexed_class_list,
    _numbered_lines,
    _open_text,
    find_class,
)
from assemblenet.errors import DataError

logger = logging.getLogger(__name__)


def read_ucf101_class_index(path: str | os.PathLike) -> ClassList:
    """``ucfTrainTestlist/classInd.txt``: ``1 ApplyEyeMakeup`` lines, indices from 1 (returned 0-based)."""
    return _indexed_class_list(path, name_first=False, first_index=1,
                               expected="'INDEX CLASS' (e.g. '1 ApplyEyeMakeup')")


def read_ucf101_split(path: str | os.PathLike, classes: ClassList, *, labelled: bool = False) -> list[ListedVideo]:
    """``trainlist0N.txt`` (``Class/v_Class_gNN_cNN.avi LABEL``, LABEL from 1) or ``testlist0N.txt``
    (path only). The class is the list path's folder, matched to ``classes`` ignoring case; a train label
    must agree with it. With ``labelled`` (a trainlist), lines without a label are logged once, with a count."""
    path = _open_text(path)
    entries = []
    unlabelled = 0
    for number, text in _numbered_lines(path):
        where = f"{path}:{number}"
        parts = text.split()
        if len(parts) not in (1, 2):
            raise DataError(f"{where}: expected 'Class/video.avi [LABEL]', got {text!r}")
        rel = parts[0].replace("\\", "/")
        if "/" not in rel:
            raise DataError(f"{where}: path {rel!r} has no class folder (expected 'Class/v_Class_gNN_cNN.avi')")
        folder = rel.split("/", 1)[0]
        index = find_class(classes, folder)
        if index is None:
            raise DataError(f"{where}: unknown class {folder!r} (not in the {len(classes)} classes of classInd.txt)")
        if len(parts) == 1:
            unlabelled += 1
        else:
            try:
                label = int(parts[1])
            except ValueError:
                raise DataError(f"{where}: label {parts[1]!r} is not an integer") from None
            if not 1 <= label <= len(classes):
                raise DataError(f"{where}: label {label} out of range 1..{len(classes)}")
            if label - 1 != index:
                raise DataError(f"{where}: label {label} ({classes.names[label - 1]}) disagrees with the folder "
                                f"{folder!r} (label {index + 1})")
        entries.append(ListedVideo(rel, (index,), where))
    if not entries:
        raise DataError(f"{path}: no videos listed")
    if labelled and unlabelled:
        logger.warning("%s: %d of %d lines have no label; their class is taken from the folder", path, unlabelled,
                       len(entries))
    return entries


_HMDB_SPLIT_FILE = re.compile(r"^(?P<name>.+)_test_split(?P<fold>\d+)\.txt$")
HMDB51_CODES = {"0": "unused", "1": "train", "2": "test"}


@dataclass(frozen=True)
class HmdbVideo:
    class_name: str
    file_name: str
    subset: str  # "unused", "train" or "test"
    source: str


def read_hmdb51_splits(split_dir: str | os.PathLike, fold: int) -> tuple[ClassList, list[HmdbVideo]]:
    """The ``<class>_test_split<fold>.txt`` files of ``testTrainMulti_7030_splits/``: ``video.avi CODE`` lines
    (0 unused, 1 train, 2 test; trailing spaces as shipped). Class names come from the file names (they may
    hold underscores: ``sword_exercise``); the label order is the sorted class names."""
    split_dir = Path(split_dir)
    if not split_dir.is_dir():
        raise DataError(f"{split_dir}: HMDB51 split folder not found (expected testTrainMulti_7030_splits/)")
    files = {}
    for entry in split_dir.iterdir():
        match = _HMDB_SPLIT_FILE.match(entry.name)
        if match and int(match.group("fold")) == fold:
            files[match.group("name")] = entry
    if not files:
        raise DataError(f"{split_dir}: no '<class>_test_split{fold}.txt' files")
    classes = ClassList.from_names(sorted(files))
    videos = []
    for name in classes.names:
        file = files[name]
        seen: dict[str, int] = {}
        for number, text in _numbered_lines(file):
            where = f"{file}:{number}"
            parts = text.split()
            if len(parts) != 2:
                raise DataError(f"{where}: expected 'VIDEO.avi CODE', got {text!r}")
            video, code = parts
            if code not in HMDB51_CODES:
                raise DataError(f"{where}: code {code!r}, expected 0 (unused), 1 (train) or 2 (test)")
            if video in seen:
                raise DataError(f"{where}: {video} is listed twice (first on line {seen[video]})")
            seen[video] = number
            videos.append(HmdbVideo(name, video, HMDB51_CODES[code], where))
    return classes, videos
