"""Moments-in-Time (``moments_categories.txt``, ``trainingSet.csv``/``validationSet.csv``) and Multi-Moments."""

from __future__ import annotations

import os

from assemblenet.data.annotations.common import (
    ClassList,
    ListedVideo,
    _indexed_class_list,
    _open_text,
    csv_rows,
    find_class,
)
from assemblenet.errors import DataError


def read_moments_categories(path: str | os.PathLike) -> ClassList:
    """``moments_categories.txt``: ``name,index`` lines with indices from 0 (``adult+female+singing,0``)."""
    return _indexed_class_list(path, name_first=True, first_index=0, expected="'NAME,INDEX' (e.g. 'bathing,12')")


def read_moments_list(path: str | os.PathLike, classes: ClassList) -> list[ListedVideo]:
    """``trainingSet.csv`` / ``validationSet.csv``: ``class/file.mp4,label,positive votes,negative votes``
    rows, no header (one ``filename,label,...`` header row is tolerated)."""
    path = _open_text(path)
    entries = []
    for number, where, row in csv_rows(path):
        if number == 1 and len(row) >= 2 and row[1].strip().lower() == "label":
            continue
        if len(row) < 2:
            raise DataError(f"{where}: expected 'class/video.mp4,label[,votes...]', got {len(row)} field(s)")
        rel, label = row[0].strip(), row[1].strip()
        if not rel:
            raise DataError(f"{where}: empty path")
        index = find_class(classes, label)
        if index is None:
            raise DataError(f"{where}: unknown class {label!r} (not in the {len(classes)} categories)")
        entries.append(ListedVideo(rel, (index,), where))
    if not entries:
        raise DataError(f"{path}: no videos listed")
    return entries


def read_multi_moments_list(path: str | os.PathLike, num_classes: int) -> list[ListedVideo]:
    """Multi-Moments ``trainingSet``/``validationSet`` lists: ``class/file.mp4,INDEX[,INDEX...]`` rows with
    0-based indices into ``moments_categories.txt``."""
    path = _open_text(path)
    entries = []
    for _, where, row in csv_rows(path):
        cells = [cell.strip() for cell in row if cell.strip()]
        if len(cells) < 2:
            raise DataError(f"{where}: expected 'video.mp4,INDEX[,INDEX...]', got {len(cells)} field(s)")
        try:
            labels = tuple(int(cell) for cell in cells[1:])
        except ValueError:
            raise DataError(f"{where}: class indices {cells[1:]} must be integers") from None
        for label in labels:
            if not 0 <= label < num_classes:
                raise DataError(f"{where}: label {label} out of range 0..{num_classes - 1}")
        entries.append(ListedVideo(cells[0], tuple(dict.fromkeys(labels)), where))
    if not entries:
        raise DataError(f"{path}: no videos listed")
    return entries
