"""What every annotation parser shares: class lists, the listed-video record, numbered lines and plain name lists.

Class files: one name per line, Charades ``c000 Holding some clothes`` lines, or indexed lines (UCF101's
``classInd.txt``, Moments-in-Time's ``moments_categories.txt``).
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Sequence

from assemblenet.errors import DataError
from assemblenet.fileio import atomic_write_text, read_text

_CHARADES_CLASS_LINE = re.compile(r"^(c\d+)\s+(\S.*)$")
# The suffixes of the video files a list may name (data.decode.VIDEO_EXTENSIONS; the parsers stay torch-free).
LISTED_VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".webm", ".mov", ".m4v", ".mpg", ".mpeg", ".flv", ".wmv", ".3gp")
_VIDEO_LIST_HEADERS = (["path", "label"], ["path", "labels"])


def _open_text(path: str | os.PathLike) -> Path:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: annotation file not found")
    return path


def annotation_text(path: str | os.PathLike) -> str:
    """The text of an annotation file, through the one reader of user text (``fileio.read_text``): UTF-8 with or
    without a byte-order mark; other encodings are a ``DataError`` naming the file, line and byte offset."""
    return read_text(path, what="annotation file")


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


def _names_a_video(field: str) -> bool:
    return Path(field.strip().strip('"')).suffix.lower() in LISTED_VIDEO_SUFFIXES


def video_list_line(text: str) -> bool:
    """Whether a line is a row of a video list rather than a class name: a ``path,label`` header, the official
    Kinetics header, or a row whose first field (comma or space separated) names a video file."""
    fields = [f.strip().lower() for f in text.split(",")]
    if fields[:2] in _VIDEO_LIST_HEADERS or "youtube_id" in fields:
        return True
    first = text.split(",", 1)[0] if "," in text else text.split(maxsplit=1)[0]
    return _names_a_video(first) and len(text.split(",") if "," in text else text.split()) >= 2


def is_video_list(path: str | os.PathLike) -> bool:
    """Whether a file is a video list (``path,label`` rows, ``path label`` lines or an official Kinetics CSV),
    judged by its first non-blank line; a dataset given one as its ``classes`` takes the list's sorted labels."""
    lines = _numbered_lines(_open_text(path))
    return bool(lines) and video_list_line(lines[0][1])


def read_class_list(path: str | os.PathLike) -> ClassList:
    """Read a class file: ``c000 Holding some clothes`` lines (Charades), one class name per line, or indexed
    lines (``1 ApplyEyeMakeup`` as in UCF101's ``classInd.txt``, ``bathing,12`` as in Moments-in-Time's
    ``moments_categories.txt``; the indices then give the label order, from 0 or 1).

    Blank lines are ignored; otherwise the order of the file is the label order; duplicates are an error. A
    video list (``path,label`` rows, see :func:`video_list_line`) is refused, naming its first line, rather than
    read as one class per row.
    """
    path = _open_text(path)
    indexed = _indexed_layout(_numbered_lines(path))
    if indexed is not None:
        name_first, first = indexed
        return _indexed_class_list(path, name_first=name_first, first_index=first, expected="indexed class lines")
    entries = _numbered_lines(path)
    if not entries:
        raise DataError(f"{path}: class list is empty")
    if video_list_line(entries[0][1]):
        raise DataError(f"{path}:{entries[0][0]}: a video list ({entries[0][1]!r}), not a class list; a class list "
                        "has one class name per line (pass the train list itself as a dataset's classes to take "
                        "its sorted labels)")
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



def _numbered_lines(path: Path) -> list[tuple[int, str]]:
    """Non-blank lines with their 1-based numbers (``annotation_text`` drops a byte-order mark); ``splitlines``
    takes the CRLF endings UCF101's lists ship with."""
    text = annotation_text(path)
    return [(number, line.strip()) for number, line in enumerate(text.splitlines(), 1) if line.strip()]


def csv_rows(path: Path) -> Iterator[tuple[int, str, list[str]]]:
    """``(line, "file:line", row)`` for each non-blank row of a CSV file without a header (see ``_rows``)."""
    yield from _rows(csv.reader(_csv_lines(path)), path)


def _csv_lines(path: Path) -> io.StringIO:
    """The file's text for ``csv.reader``, line endings kept (``newline=""``), so a quoted field may hold one."""
    return io.StringIO(annotation_text(path), newline="")


def _rows(reader: Iterator[list[str]], path: Path, *, width: int | None = None) -> Iterator[tuple[int, str, list[str]]]:
    """``(line, "file:line", row)`` for each non-blank row of a ``csv.reader``, ``line`` being where the row
    starts (a quoted field may span lines). A malformed row, or with ``width`` a row of another width, is a
    ``DataError`` naming its line."""
    line = reader.line_num  # type: ignore[attr-defined]
    while True:
        start = line + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise DataError(f"{path}:{start}: {exc}") from exc
        line = reader.line_num  # type: ignore[attr-defined]
        if not any(cell.strip() for cell in row):
            continue
        where = f"{path}:{start}"
        if width is not None and len(row) != width:
            raise DataError(f"{where}: {len(row)} fields, the header has {width}")
        yield start, where, row


@contextlib.contextmanager
def csv_table(path: Path, *, kind: str, required: Sequence[str], expected: str,
              lowercase: bool = False) -> Iterator[tuple[dict[str, int], Iterator[tuple[int, str, list[str]]]]]:
    """An open CSV with a header row: ``(column index by header name, ``_rows`` of the rows below it)``. The
    header names are stripped (and lowercased with ``lowercase``); a missing file header or ``required``
    column is a ``DataError`` naming ``kind`` or the ``expected`` header."""
    reader = csv.reader(_csv_lines(path))
    try:
        header = [h.strip().lower() if lowercase else h.strip() for h in next(reader)]
    except StopIteration:
        raise DataError(f"{path}: empty file, expected a {kind} CSV header") from None
    except csv.Error as exc:
        raise DataError(f"{path}:1: {exc}") from None
    missing = [c for c in required if c not in header]
    if missing:
        raise DataError(f"{path}:1: header lacks column(s) {missing}; expected the {kind} header {expected}")
    yield {name: i for i, name in enumerate(header)}, _rows(reader, path, width=len(header))


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
            raise DataError(f"{path}:{number}: class index {index} out of range "
                            f"{first_index}..{first_index + count - 1} "
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



def read_name_list(path: str | os.PathLike) -> list[str]:
    """One entry per non-blank line (e.g. Toyota Smarthome split lists); surrounding spaces are dropped."""
    path = _open_text(path)
    names = [line.strip() for line in annotation_text(path).splitlines() if line.strip()]
    if not names:
        raise DataError(f"{path}: list is empty")
    return names
