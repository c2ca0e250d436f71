"""Generic video/label lists: CSV ``path,label`` (Kinetics, Moments-in-Time; a header row is optional),
whitespace separated ``path label`` lines (MMAction style), and the official Kinetics
``label,youtube_id,time_start,time_end,split`` CSV read as a list of paths."""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from typing import Iterable

from assemblenet.data.annotations.common import ClassList, _open_text, annotation_text
from assemblenet.errors import DataError
from assemblenet.fileio import atomic_path


@dataclass(frozen=True)
class LabeledPath:
    """One entry of a video list: a path (relative to the dataset root) and its label(s) as written."""

    path: str
    labels: tuple[str, ...]
    line: int


KINETICS_OFFICIAL_TEMPLATE = "{label}/{youtube_id}_{time_start:06d}_{time_end:06d}.mp4"


def read_video_list(path: str | os.PathLike, *, multi_label: bool = False, label_sep: str = ";",
                    kinetics_template: str = KINETICS_OFFICIAL_TEMPLATE) -> list[LabeledPath]:
    """Read a list of labelled videos.

    Accepted layouts (detected from the content):

    - CSV ``path,label[,more columns]``; a first row ``path,label`` is a header and skipped. Extra columns
      (Moments-in-Time's vote counts) are ignored.
    - whitespace separated ``path label`` lines (no comma in the line).
    - the official Kinetics CSV with header ``label,youtube_id,time_start,time_end,split``; paths follow
      ``kinetics_template``.

    With ``multi_label``, a label field may hold several labels separated by ``label_sep``.
    """
    path = _open_text(path)
    text = annotation_text(path)
    lines = text.splitlines()
    entries: list[LabeledPath] = []
    first = next((line for line in lines if line.strip()), "")
    if not first:
        raise DataError(f"{path}: empty video list")

    def split_labels(raw: str, where: str) -> tuple[str, ...]:
        parts = [p.strip() for p in raw.split(label_sep)] if multi_label else [raw.strip()]
        parts = [p for p in parts if p]
        if not parts:
            raise DataError(f"{where}: empty label")
        return tuple(parts)

    if "," in first:
        reader = csv.reader(lines)
        header = [h.strip().lower() for h in next(csv.reader([first]))]
        official = "youtube_id" in header
        if official:
            missing = [c for c in ("youtube_id", "time_start", "time_end") if c not in header]
            if missing:
                raise DataError(f"{path}:1: Kinetics header lacks {missing}")
            column = {name: i for i, name in enumerate(header)}
        skip_header = official or header[:2] == ["path", "label"] or header[:2] == ["path", "labels"]
        for row in reader:
            number = reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            if number == 1 and skip_header:
                continue
            where = f"{path}:{number}"
            if official:
                if len(row) != len(header):
                    raise DataError(f"{where}: {len(row)} fields, the header has {len(header)}")
                try:
                    start, end = int(float(row[column["time_start"]])), int(float(row[column["time_end"]]))
                except ValueError:
                    raise DataError(f"{where}: time_start/time_end must be numbers") from None
                label = row[column["label"]].strip() if "label" in column else ""
                rel = kinetics_template.format(label=label, youtube_id=row[column["youtube_id"]].strip(),
                                               time_start=start, time_end=end)
                entries.append(LabeledPath(rel, split_labels(label, where) if label else (), number))
                continue
            if len(row) < 2:
                raise DataError(f"{where}: expected 'path,label', got {len(row)} field(s)")
            rel = row[0].strip()
            if not rel:
                raise DataError(f"{where}: empty path")
            entries.append(LabeledPath(rel, split_labels(row[1], where), number))
    else:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            where = f"{path}:{number}"
            parts = line.strip().rsplit(maxsplit=1)
            if len(parts) != 2:
                raise DataError(f"{where}: expected 'path label', got {line.strip()!r}")
            entries.append(LabeledPath(parts[0], split_labels(parts[1], where), number))
    if not entries:
        raise DataError(f"{path}: no videos listed")
    return entries


def video_list_classes(path: str | os.PathLike) -> ClassList:
    """The sorted labels of a video list (``path,label`` rows or an official Kinetics CSV), as the classes of every
    dataset given that list as its ``classes`` (the val set given the train list)."""
    from assemblenet.data.annotations.kinetics import is_kinetics_csv, read_kinetics_csv

    if is_kinetics_csv(path):
        labels = [row.label for row in read_kinetics_csv(path) if row.label is not None]
    else:
        labels = [label for entry in read_video_list(path, multi_label=True) for label in entry.labels]
    if not labels:
        raise DataError(f"{path}: has no labels to take the classes from")
    return ClassList.from_labels(labels)


def write_video_list(path: str | os.PathLike, entries: Iterable[tuple[str, str]]) -> None:
    """Write a ``path,label`` CSV with a header, atomically."""
    with atomic_path(path) as tmp, tmp.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "label"])
        writer.writerows(entries)
