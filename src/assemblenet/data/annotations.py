"""Parsers for the annotation files that video datasets ship.

Every parser raises ``DataError`` naming the file and the line of the first malformed row, so a user can fix
their annotations instead of guessing. Supported formats:

- class lists: one name per line, or Charades ``c000 Holding some clothes`` lines;
- Charades ``Charades_v1_{train,test}.csv`` (actions ``c092 11.90 21.20;c147 0.00 12.60``);
- PySlowFast frame lists (``original_vido_id video_id frame_id path labels``, space separated);
- video/label lists: CSV ``path,label`` (Kinetics, Moments-in-Time; a header row is optional), whitespace
  separated ``path label`` lines (MMAction style), and the official Kinetics
  ``label,youtube_id,time_start,time_end,split`` CSV;
- plain lists of file names (Toyota Smarthome split lists).
"""

from __future__ import annotations

import csv
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from assemblenet.errors import ConfigError, DataError
from assemblenet.fileio import atomic_path, atomic_write_text

logger = logging.getLogger(__name__)

_CHARADES_CLASS_LINE = re.compile(r"^(c\d+)\s+(\S.*)$")
_CHARADES_ACTION = re.compile(r"^(c\d+)\s+(-?\d+(?:\.\d*)?)\s+(-?\d+(?:\.\d*)?)$")


def _open_text(path: str | os.PathLike) -> Path:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: annotation file not found")
    return path


@dataclass(frozen=True)
class ClassList:
    """Class names in label-index order. ``ids`` are short codes (Charades ``c000``), else equal to names."""

    names: tuple[str, ...]
    ids: tuple[str, ...]

    def __post_init__(self) -> None:
        if len(self.names) != len(self.ids):
            raise ValueError("names and ids differ in length")

    @classmethod
    def from_names(cls, names: Iterable[str]) -> "ClassList":
        names = tuple(names)
        return cls(names, names)

    @classmethod
    def from_labels(cls, labels: Iterable[str]) -> "ClassList":
        """Sorted unique labels: the same set of labels always gives the same indices."""
        return cls.from_names(sorted(set(labels)))

    def __len__(self) -> int:
        return len(self.names)

    def index_of(self, label: str) -> int:
        """Index of a class id or name; raises KeyError."""
        lookup = self.__dict__.get("_lookup")
        if lookup is None:
            lookup = {name: i for i, name in enumerate(self.names)}
            lookup.update({cid: i for i, cid in enumerate(self.ids)})
            object.__setattr__(self, "_lookup", lookup)
        return lookup[label]

    def __contains__(self, label: object) -> bool:
        try:
            self.index_of(label)  # type: ignore[arg-type]
            return True
        except KeyError:
            return False


_INDEX_NAME_LINE = re.compile(r"^(\d+)\s+\S")
_NAME_INDEX_LINE = re.compile(r"^.*\S,\s*(\d+)$")


def _indexed_layout(lines: list[tuple[int, str]]) -> tuple[bool, int] | None:
    """(name first, first index) for indexed class files: UCF101 ``classInd.txt`` (``1 ApplyEyeMakeup``) or
    ``moments_categories.txt`` (``bathing,12``), where every line has an index and the indices are 0..K-1 or
    1..K. None for any other file."""
    for name_first, pattern in ((False, _INDEX_NAME_LINE), (True, _NAME_INDEX_LINE)):
        matches = [pattern.match(text) for _, text in lines]
        if lines and all(matches):
            indices = sorted(int(m.group(1)) for m in matches)  # type: ignore[union-attr]
            for first in (0, 1):
                if indices == list(range(first, first + len(lines))):
                    return name_first, first
    return None


def read_class_list(path: str | os.PathLike) -> ClassList:
    """Read a class file: ``c000 Holding some clothes`` lines (Charades), one class name per line, or indexed
    lines (``1 ApplyEyeMakeup`` as in UCF101's ``classInd.txt``, ``bathing,12`` as in Moments-in-Time's
    ``moments_categories.txt``; the indices then give the label order, from 0 or 1).

    Blank lines are ignored; otherwise the order of the file is the label order; duplicates are an error.
    """
    path = _open_text(path)
    indexed = _indexed_layout(_numbered_lines(path))
    if indexed is not None:
        name_first, first = indexed
        return _indexed_class_list(path, name_first=name_first, first_index=first, expected="indexed class lines")
    entries = _numbered_lines(path)
    if not entries:
        raise DataError(f"{path}: class list is empty")
    charades = all(_CHARADES_CLASS_LINE.match(text) for _, text in entries)
    names: list[str] = []
    ids: list[str] = []
    seen: dict[str, int] = {}
    for number, text in entries:
        if charades:
            match = _CHARADES_CLASS_LINE.match(text)
            assert match is not None
            class_id, name = match.group(1), match.group(2).strip()
        else:
            class_id = name = text
        if class_id in seen:
            raise DataError(f"{path}:{number}: duplicate class {class_id!r} (first on line {seen[class_id]})")
        seen[class_id] = number
        ids.append(class_id)
        names.append(name)
    return ClassList(tuple(names), tuple(ids))


def write_class_list(path: str | os.PathLike, classes: ClassList) -> None:
    """Write ``id name`` lines when ids differ from names, else one name per line."""
    lines = [f"{cid} {name}" if cid != name else name for cid, name in zip(classes.ids, classes.names)]
    atomic_write_text(Path(path), "\n".join(lines) + "\n")


# -- Charades --------------------------------------------------------------------------------------------
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
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        try:
            header = next(reader)
        except StopIteration:
            raise DataError(f"{path}: empty file, expected a Charades CSV header") from None
        header = [h.strip() for h in header]
        missing = [c for c in ("id", "actions") if c not in header]
        if missing:
            raise DataError(f"{path}:1: header lacks column(s) {missing}; expected {','.join(CHARADES_COLUMNS)}")
        column = {name: i for i, name in enumerate(header)}
        line = reader.line_num
        while True:
            start_line = line + 1
            try:
                row = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                raise DataError(f"{path}:{start_line}: {exc}") from exc
            line = reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            where = f"{path}:{start_line}"
            if len(row) != len(header):
                raise DataError(f"{where}: {len(row)} fields, the header has {len(header)}")
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


# -- PySlowFast frame lists ------------------------------------------------------------------------------
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
    lines = path.read_text(encoding="utf-8").splitlines()
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


# -- video/label lists -----------------------------------------------------------------------------------
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
    text = path.read_text(encoding="utf-8")
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


def write_video_list(path: str | os.PathLike, entries: Iterable[tuple[str, str]]) -> None:
    """Write a ``path,label`` CSV with a header, atomically."""
    with atomic_path(path) as tmp, tmp.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "label"])
        writer.writerows(entries)


def read_name_list(path: str | os.PathLike) -> list[str]:
    """One entry per non-blank line (e.g. Toyota Smarthome split lists); surrounding spaces are dropped."""
    path = _open_text(path)
    names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not names:
        raise DataError(f"{path}: list is empty")
    return names


# -- Toyota Smarthome ------------------------------------------------------------------------------------
_SMARTHOME_NAME = re.compile(r"^(?P<activity>.+?)_p(?P<subject>\d+)_r(?P<repetition>\d+)_v(?P<view>\d+)"
                             r"_c(?P<camera>\d+)$")


@dataclass(frozen=True)
class SmarthomeClip:
    """Fields encoded in a Toyota Smarthome clip name such as ``Cook.Cleandishes_p02_r00_v02_c03.mp4``."""

    name: str
    activity: str
    subject: int
    camera: int


def parse_smarthome_name(name: str) -> SmarthomeClip:
    stem = Path(name).stem if Path(name).suffix.lower() in (".mp4", ".avi", ".mkv") else Path(name).name
    match = _SMARTHOME_NAME.match(stem)
    if match is None:
        raise DataError(f"{name}: not a Toyota Smarthome clip name (Activity_pNN_rNN_vNN_cNN)")
    return SmarthomeClip(Path(name).name, match.group("activity"), int(match.group("subject")),
                         int(match.group("camera")))


# -- shared helpers for the official lists ------------------------------------------------------------------
def _numbered_lines(path: Path) -> list[tuple[int, str]]:
    """Non-blank lines with their 1-based numbers. ``utf-8-sig`` drops a byte-order mark; ``splitlines``
    takes the CRLF endings UCF101's lists ship with."""
    text = path.read_text(encoding="utf-8-sig")
    return [(number, line.strip()) for number, line in enumerate(text.splitlines(), 1) if line.strip()]


def _indexed_class_list(path: str | os.PathLike, *, name_first: bool, first_index: int, expected: str) -> ClassList:
    """Class names from ``INDEX NAME`` or ``NAME,INDEX`` lines; the indices must be first_index..first_index+K-1."""
    path = _open_text(path)
    lines = _numbered_lines(path)
    if not lines:
        raise DataError(f"{path}: class list is empty")
    by_index: dict[int, tuple[str, int]] = {}
    by_name: dict[str, int] = {}
    for number, text in lines:
        parts = text.rsplit(",", 1) if name_first else text.split(maxsplit=1)
        if len(parts) != 2:
            raise DataError(f"{path}:{number}: expected {expected}, got {text!r}")
        name, index_text = (parts[0].strip(), parts[1].strip()) if name_first else (parts[1].strip(), parts[0])
        try:
            index = int(index_text)
        except ValueError:
            raise DataError(f"{path}:{number}: class index {index_text!r} is not an integer ({expected})") from None
        if index in by_index:
            raise DataError(f"{path}:{number}: duplicate class index {index} (first on line {by_index[index][1]})")
        if name in by_name:
            raise DataError(f"{path}:{number}: duplicate class {name!r} (first on line {by_name[name]})")
        by_index[index] = (name, number)
        by_name[name] = number
    count = len(by_index)
    for index, (name, number) in by_index.items():
        if not first_index <= index < first_index + count:
            raise DataError(f"{path}:{number}: class index {index} out of range {first_index}..{first_index + count - 1} "
                            f"(the file lists {count} classes)")
    names = tuple(by_index[first_index + i][0] for i in range(count))
    return ClassList.from_names(names)


def _lowercase_lookup(classes: ClassList) -> dict[str, int]:
    return {name.lower(): i for i, name in enumerate(classes.names)}


def find_class(classes: ClassList, name: str) -> int | None:
    """Index of ``name``: exact, else ignoring case (UCF101's ``HandStandPushups``/``HandstandPushups``)."""
    try:
        return classes.index_of(name)
    except KeyError:
        return _lowercase_lookup(classes).get(name.lower())


@dataclass(frozen=True)
class ListedVideo:
    """One video of an official split list: its path as written (relative to the video folder), its class
    indices (empty for unlabelled test lists) and where it is listed."""

    path: str
    labels: tuple[int, ...]
    source: str  # "file:line" (or "file: entry N" for JSON lists)


# -- UCF101 ----------------------------------------------------------------------------------------------
def read_ucf101_class_index(path: str | os.PathLike) -> ClassList:
    """``ucfTrainTestlist/classInd.txt``: ``1 ApplyEyeMakeup`` lines, indices from 1 (returned 0-based)."""
    return _indexed_class_list(path, name_first=False, first_index=1, expected="'INDEX CLASS' (e.g. '1 ApplyEyeMakeup')")


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


# -- HMDB51 ----------------------------------------------------------------------------------------------
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


# -- Kinetics (official CSV) -------------------------------------------------------------------------------
@dataclass(frozen=True)
class KineticsRow:
    """A row of an official Kinetics CSV. ``label`` is None in the test CSV, which has no label column."""

    label: str | None
    youtube_id: str
    time_start: int
    time_end: int
    split: str
    line: int


def is_kinetics_csv(path: str | os.PathLike) -> bool:
    """Whether the file's first line is an official Kinetics header (has ``youtube_id``)."""
    with open(path, encoding="utf-8-sig") as handle:
        first = handle.readline()
    return "youtube_id" in [h.strip().lower() for h in first.split(",")]


def read_kinetics_csv(path: str | os.PathLike) -> list[KineticsRow]:
    """``label,youtube_id,time_start,time_end,split[,is_cc]`` (Kinetics-400 adds ``is_cc``; the test CSV has no
    ``label``). Times may be written as ``14`` or ``14.0``; labels may be quoted."""
    path = _open_text(path)
    rows: list[KineticsRow] = []
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        try:
            header = [h.strip().lower() for h in next(reader)]
        except StopIteration:
            raise DataError(f"{path}: empty file, expected a Kinetics CSV header") from None
        missing = [c for c in ("youtube_id", "time_start", "time_end") if c not in header]
        if missing:
            raise DataError(f"{path}:1: Kinetics header lacks {missing}; expected "
                            "label,youtube_id,time_start,time_end,split")
        column = {name: i for i, name in enumerate(header)}
        for row in reader:
            number = reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            where = f"{path}:{number}"
            if len(row) != len(header):
                raise DataError(f"{where}: {len(row)} fields, the header has {len(header)}")
            try:
                start, end = int(float(row[column["time_start"]])), int(float(row[column["time_end"]]))
            except ValueError:
                raise DataError(f"{where}: time_start/time_end must be numbers, got "
                                f"{row[column['time_start']]!r}, {row[column['time_end']]!r}") from None
            if start < 0 or end < start:
                raise DataError(f"{where}: invalid interval time_start {start}, time_end {end}")
            youtube_id = row[column["youtube_id"]].strip()
            if not youtube_id:
                raise DataError(f"{where}: empty youtube_id")
            label = row[column["label"]].strip().strip('"') if "label" in column else None
            if label == "":
                raise DataError(f"{where}: empty label")
            split = row[column["split"]].strip() if "split" in column else ""
            rows.append(KineticsRow(label, youtube_id, start, end, split, number))
    if not rows:
        raise DataError(f"{path}: no videos listed")
    return rows


_KINETICS_CLIP = "{youtube_id}_{time_start:06d}_{time_end:06d}.mp4"
# The layouts the usual download tools produce, tried in this order by path_template="auto":
# ActivityNet crawler / MMAction (<split>/<label>/<clip>, label folders with spaces or underscores), one
# folder per label, CVDF's tarballs (<split>/<clip>, flat), a flat folder, and bare <youtube_id>.mp4 files.
KINETICS_LAYOUTS = (
    "{split}/{label}/" + _KINETICS_CLIP,
    "{split}/{label_underscore}/" + _KINETICS_CLIP,
    "{label}/" + _KINETICS_CLIP,
    "{label_underscore}/" + _KINETICS_CLIP,
    "{split}/" + _KINETICS_CLIP,
    _KINETICS_CLIP,
    "{split}/{youtube_id}.mp4",
    "{youtube_id}.mp4",
)
KINETICS_TEMPLATE_FIELDS = ("label", "label_underscore", "youtube_id", "time_start", "time_end", "split")
_KINETICS_PROBE_ROWS = 48


def _kinetics_fields(row: KineticsRow) -> dict[str, object]:
    label = row.label or ""
    return {"label": label, "label_underscore": label.replace(" ", "_"), "youtube_id": row.youtube_id,
            "time_start": row.time_start, "time_end": row.time_end, "split": row.split}


def kinetics_template_uses_label(template: str) -> bool:
    return "{label" in template


def format_kinetics_path(template: str, row: KineticsRow) -> str:
    try:
        return template.format(**_kinetics_fields(row))
    except (KeyError, IndexError, ValueError) as exc:
        raise ConfigError(f"path_template {template!r}: {type(exc).__name__} {exc}; the fields are "
                          f"{', '.join('{' + f + '}' for f in KINETICS_TEMPLATE_FIELDS)}") from None


def detect_kinetics_layout(rows: Sequence[KineticsRow], root: Path) -> str:
    """The first of ``KINETICS_LAYOUTS`` under which the most of up to 48 evenly spaced rows exist."""
    step = max(1, len(rows) // _KINETICS_PROBE_ROWS)
    probe = list(rows[::step])[:_KINETICS_PROBE_ROWS]
    labelled = all(row.label is not None for row in probe)
    candidates = [t for t in KINETICS_LAYOUTS if labelled or not kinetics_template_uses_label(t)]
    hits = [sum((root / format_kinetics_path(t, row)).exists() for row in probe) for t in candidates]
    best = max(range(len(candidates)), key=lambda i: (hits[i], -i))
    if hits[best] == 0:
        logger.warning("%s: none of the %d probed Kinetics videos exists under any known layout; assuming %r "
                       "(set path_template)", root, len(probe), candidates[0])
        return candidates[0]
    return candidates[best]


# -- Moments-in-Time and Multi-Moments ----------------------------------------------------------------------
def read_moments_categories(path: str | os.PathLike) -> ClassList:
    """``moments_categories.txt``: ``name,index`` lines with indices from 0 (``adult+female+singing,0``)."""
    return _indexed_class_list(path, name_first=True, first_index=0, expected="'NAME,INDEX' (e.g. 'bathing,12')")


def read_moments_list(path: str | os.PathLike, classes: ClassList) -> list[ListedVideo]:
    """``trainingSet.csv`` / ``validationSet.csv``: ``class/file.mp4,label,positive votes,negative votes``
    rows, no header (one ``filename,label,...`` header row is tolerated)."""
    path = _open_text(path)
    entries = []
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        for row in reader:
            number = reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            where = f"{path}:{number}"
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
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        for row in reader:
            number = reader.line_num
            cells = [cell.strip() for cell in row if cell.strip()]
            if not cells:
                continue
            where = f"{path}:{number}"
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


# -- Something-Something v2 ---------------------------------------------------------------------------------
def _read_json(path: Path):
    import json

    try:
        return json.loads(path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}:{exc.lineno}: invalid JSON ({exc.msg})") from None


def ssv2_class_name(template: str) -> str:
    """The class of an SSv2 template: ``Putting [something] on [something]`` -> ``Putting something on something``."""
    return " ".join(template.replace("[", "").replace("]", "").split())


def read_ssv2_labels(path: str | os.PathLike) -> ClassList:
    """``something-something-v2-labels.json``: ``{"Approaching something with your camera": "0", ...}`` (ids are
    strings in the release, 0..173)."""
    path = _open_text(path)
    data = _read_json(path)
    if not isinstance(data, dict) or not data:
        raise DataError(f"{path}: expected a JSON object mapping class names to ids")
    by_index: dict[int, str] = {}
    for name, value in data.items():
        try:
            index = int(value)
        except (TypeError, ValueError):
            raise DataError(f"{path}: class {name!r} has id {value!r}, expected an integer") from None
        if index in by_index:
            raise DataError(f"{path}: classes {by_index[index]!r} and {name!r} share id {index}")
        by_index[index] = name
    if sorted(by_index) != list(range(len(by_index))):
        missing = sorted(set(range(len(by_index))) - set(by_index))
        raise DataError(f"{path}: class ids must be 0..{len(by_index) - 1}; missing {missing[:5]}")
    return ClassList.from_names(by_index[i] for i in range(len(by_index)))


def read_ssv2_split(path: str | os.PathLike, classes: ClassList | None, *,
                    labelled: bool = False) -> list[ListedVideo]:
    """``something-something-v2-{train,validation}.json`` (``id``, ``label``, ``template``, ``placeholders``; the
    class is the template without brackets) or ``-test.json`` (``id`` only: unlabelled). Paths are ``<id>``;
    the caller adds the extension. With ``labelled`` (train and validation), an entry without its
    ``template`` is an error naming it, rather than a video of target -1."""
    path = _open_text(path)
    data = _read_json(path)
    if not isinstance(data, list) or not data:
        raise DataError(f"{path}: expected a non-empty JSON list of videos")
    lookup = {ssv2_class_name(name).lower(): i for i, name in enumerate(classes.names)} if classes else {}
    entries = []
    for number, entry in enumerate(data, 1):
        where = f"{path}: entry {number}"
        if not isinstance(entry, dict) or "id" not in entry:
            raise DataError(f"{where}: expected an object with an 'id'")
        video_id = str(entry["id"]).strip()
        if not video_id:
            raise DataError(f"{where}: empty id")
        where = f"{where} (id {video_id})"
        template = entry.get("template")
        if template is None:
            if labelled:
                raise DataError(f"{where}: no 'template' (its class); every entry of a labelled split needs one")
            entries.append(ListedVideo(video_id, (), where))
            continue
        if classes is None:
            raise DataError(f"{where}: labelled entry but no labels JSON given")
        name = ssv2_class_name(str(template))
        index = find_class(classes, name)
        if index is None:
            index = lookup.get(name.lower())
        if index is None:
            raise DataError(f"{where}: unknown class {name!r} (template {template!r} is not in the labels JSON)")
        entries.append(ListedVideo(video_id, (index,), where))
    return entries
