"""Charades: ``Charades_v1_{train,test}.csv`` (actions ``c092 11.90 21.20;c147 0.00 12.60``) and PySlowFast
frame lists (``original_vido_id video_id frame_id path labels``, space separated)."""

from __future__ import annotations

import csv
import os
import re
from dataclasses import dataclass, field
from typing import Iterable, Sequence

from assemblenet.data.annotations.common import ClassList, _open_text, annotation_text, csv_table
from assemblenet.errors import DataError
from assemblenet.fileio import atomic_path

_CHARADES_ACTION = re.compile(r"^(c\d+)\s+(-?\d+(?:\.\d*)?)\s+(-?\d+(?:\.\d*)?)$")


CHARADES_COLUMNS = ("id", "subject", "scene", "quality", "relevance", "verified", "script", "objects",
                    "descriptions", "actions", "length")


@dataclass(frozen=True)
class CharadesAction:
    class_id: str
    start: float  # seconds
    end: float


@dataclass(frozen=True)
class CharadesRecord:
    """One row of a Charades CSV."""

    video_id: str
    actions: tuple[CharadesAction, ...]
    length: float | None  # seconds, as the CSV states it
    line: int
    fields: dict[str, str] = field(default_factory=dict, compare=False)


def parse_charades_actions(text: str, *, where: str = "actions") -> tuple[CharadesAction, ...]:
    """Parse ``c092 11.90 21.20;c147 0.00 12.60`` (empty text means no actions)."""
    actions = []
    for part in text.split(";"):
        part = part.strip()
        if not part:
            continue
        match = _CHARADES_ACTION.match(part)
        if match is None:
            raise DataError(f"{where}: malformed action {part!r}, expected 'cNNN START END' in seconds")
        start, end = float(match.group(2)), float(match.group(3))
        if start < 0 or end < start:
            raise DataError(f"{where}: action {part!r} has an invalid interval (start {start}, end {end})")
        actions.append(CharadesAction(match.group(1), start, end))
    return tuple(actions)


def read_charades_csv(path: str | os.PathLike, classes: ClassList | None = None) -> list[CharadesRecord]:
    """Read ``Charades_v1_train.csv`` / ``Charades_v1_test.csv``.

    Only ``id`` and ``actions`` are required; ``length`` is used for frame-level targets when present.
    With ``classes``, every action's class id must be in it.
    """
    path = _open_text(path)
    records: list[CharadesRecord] = []
    seen: dict[str, int] = {}
    with csv_table(path, kind="Charades", required=("id", "actions"),
                   expected=",".join(CHARADES_COLUMNS)) as (column, rows):
        for start_line, where, row in rows:
            video_id = row[column["id"]].strip()
            if not video_id:
                raise DataError(f"{where}: empty video id")
            if video_id in seen:
                raise DataError(f"{where}: duplicate video id {video_id!r} (first on line {seen[video_id]})")
            seen[video_id] = start_line
            actions = parse_charades_actions(row[column["actions"]], where=where)
            if classes is not None:
                for action in actions:
                    if action.class_id not in classes:
                        raise DataError(f"{where}: unknown action class {action.class_id!r}")
            length = None
            if "length" in column and row[column["length"]].strip():
                try:
                    length = float(row[column["length"]])
                except ValueError:
                    raise DataError(f"{where}: length {row[column['length']]!r} is not a number") from None
                if not length >= 0:
                    raise DataError(f"{where}: negative length {length}")
            fields = {name: row[i] for name, i in column.items()}
            records.append(CharadesRecord(video_id, actions, length, start_line, fields))
    return records


def write_charades_csv(path: str | os.PathLike, rows: Sequence[dict[str, str]]) -> None:
    """Write rows (dicts with the Charades columns) atomically, in the official column order."""
    with atomic_path(path) as tmp, tmp.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(CHARADES_COLUMNS))
        writer.writeheader()
        for row in rows:
            writer.writerow({c: row.get(c, "") for c in CHARADES_COLUMNS})


def format_charades_actions(actions: Iterable[CharadesAction]) -> str:
    return ";".join(f"{a.class_id} {a.start:.2f} {a.end:.2f}" for a in actions)


@dataclass(frozen=True)
class FrameListVideo:
    """One video of a PySlowFast frame list: frame image paths in frame order and labels per frame."""

    video_id: str
    frame_paths: tuple[str, ...]
    frame_labels: tuple[tuple[int, ...], ...]
    line: int


def _parse_label_indices(text: str, where: str) -> tuple[int, ...]:
    text = text.strip().strip('"')
    if not text:
        return ()
    try:
        labels = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise DataError(f"{where}: labels {text!r} must be comma-separated integers") from None
    if any(label < 0 for label in labels):
        raise DataError(f"{where}: negative label in {text!r}")
    return labels


def read_frame_list(path: str | os.PathLike) -> list[FrameListVideo]:
    """Read a PySlowFast Charades frame list (``train.csv``/``val.csv``).

    Lines: ``original_vido_id video_id frame_id path labels`` after one header line, space separated, labels
    comma separated (``""`` for none). Videos keep the order of first appearance; frames are sorted by
    ``frame_id``.
    """
    path = _open_text(path)
    lines = annotation_text(path).splitlines()
    if not lines:
        raise DataError(f"{path}: empty frame list")
    header = lines[0].split()
    if len(header) != 5 or header[0] not in ("original_vido_id", "original_video_id"):
        raise DataError(f"{path}:1: expected the header 'original_vido_id video_id frame_id path labels'")
    frames: dict[str, list[tuple[int, str, tuple[int, ...]]]] = {}
    first_line: dict[str, int] = {}
    for number, line in enumerate(lines[1:], 2):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        parts = line.split()
        if len(parts) == 4:  # an unquoted empty label field
            parts.append("")
        if len(parts) != 5:
            raise DataError(f"{where}: {len(parts)} fields, expected 5 "
                            "(original_vido_id video_id frame_id path labels)")
        video_id, _, frame_id, frame_path, labels = parts
        try:
            frame_number = int(frame_id)
        except ValueError:
            raise DataError(f"{where}: frame_id {frame_id!r} is not an integer") from None
        frames.setdefault(video_id, []).append((frame_number, frame_path, _parse_label_indices(labels, where)))
        first_line.setdefault(video_id, number)
    videos = []
    for video_id, entries in frames.items():
        entries.sort(key=lambda entry: entry[0])
        numbers = [entry[0] for entry in entries]
        if len(set(numbers)) != len(numbers):
            raise DataError(f"{path}:{first_line[video_id]}: video {video_id!r} repeats a frame_id")
        videos.append(FrameListVideo(video_id, tuple(e[1] for e in entries), tuple(e[2] for e in entries),
                                     first_line[video_id]))
    return videos
