"""Kinetics-400/600/700 from the official CSVs, with the common on-disk layouts or a path template."""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Sequence

from assemblenet.data.annotations import (
    ClassList,
    KineticsRow,
    is_kinetics_csv,
    read_class_list,
    read_kinetics_csv,
)
from assemblenet.data.datasets.base import VideoItem, key_for
from assemblenet.errors import ConfigError, DataError

logger = logging.getLogger(__name__)

_CLIP = "{youtube_id}_{time_start:06d}_{time_end:06d}.mp4"
# The layouts the usual download tools produce, tried in this order by path_template="auto":
# ActivityNet crawler / MMAction (<split>/<label>/<clip>, label folders with spaces or underscores), one
# folder per label, CVDF's tarballs (<split>/<clip>, flat), a flat folder, and bare <youtube_id>.mp4 files.
KINETICS_LAYOUTS = (
    "{split}/{label}/" + _CLIP,
    "{split}/{label_underscore}/" + _CLIP,
    "{label}/" + _CLIP,
    "{label_underscore}/" + _CLIP,
    "{split}/" + _CLIP,
    _CLIP,
    "{split}/{youtube_id}.mp4",
    "{youtube_id}.mp4",
)
TEMPLATE_FIELDS = ("label", "label_underscore", "youtube_id", "time_start", "time_end", "split")
_PROBE_ROWS = 48


def _fields(row: KineticsRow) -> dict[str, object]:
    label = row.label or ""
    return {"label": label, "label_underscore": label.replace(" ", "_"), "youtube_id": row.youtube_id,
            "time_start": row.time_start, "time_end": row.time_end, "split": row.split}


def _uses_label(template: str) -> bool:
    return "{label" in template


def format_template(template: str, row: KineticsRow) -> str:
    try:
        return template.format(**_fields(row))
    except (KeyError, IndexError, ValueError) as exc:
        raise ConfigError(f"path_template {template!r}: {type(exc).__name__} {exc}; the fields are "
                          f"{', '.join('{' + f + '}' for f in TEMPLATE_FIELDS)}") from None


def detect_layout(rows: Sequence[KineticsRow], root: Path) -> str:
    """The first of ``KINETICS_LAYOUTS`` under which the most of up to 48 evenly spaced rows exist."""
    step = max(1, len(rows) // _PROBE_ROWS)
    probe = list(rows[::step])[:_PROBE_ROWS]
    labelled = all(row.label is not None for row in probe)
    candidates = [t for t in KINETICS_LAYOUTS if labelled or not _uses_label(t)]
    hits = [sum((root / format_template(t, row)).exists() for row in probe) for t in candidates]
    best = max(range(len(candidates)), key=lambda i: (hits[i], -i))
    if hits[best] == 0:
        logger.warning("%s: none of the %d probed Kinetics videos exists under any known layout; assuming %r "
                       "(set path_template)", root, len(probe), candidates[0])
        return candidates[0]
    return candidates[best]


def _label_key(label: str) -> str:
    """Spaces/underscores, quotes, brackets and case do not distinguish Kinetics labels (``passing American
    football (in game)`` = ``passing_American_football_in_game``, as MMAction's renamed folders spell them)."""
    return " ".join(re.sub(r"[_\"'()]", " ", label).lower().split())


def kinetics_classes(classes: ClassList | str | os.PathLike | Sequence[str] | None, csv_path: Path,
                     rows: Sequence[KineticsRow]) -> ClassList:
    """A class file (one name per line), an official CSV (its sorted labels: pass the train CSV to the val
    set), a list of names, or None: ``classes.txt`` beside the CSV, else this CSV's sorted labels."""
    if isinstance(classes, ClassList):
        return classes
    if isinstance(classes, (list, tuple)):
        return ClassList.from_names(classes)
    if classes is None:
        beside = csv_path.parent / "classes.txt"
        if beside.is_file():
            return read_class_list(beside)
        labels = [row.label for row in rows if row.label is not None]
        if not labels:
            raise DataError(f"{csv_path}: an unlabelled (test) CSV needs classes= (the train CSV or a class file)")
        return ClassList.from_labels(labels)
    classes = Path(classes)
    if classes.suffix.lower() == ".csv" and classes.is_file() and is_kinetics_csv(classes):
        labels = [row.label for row in read_kinetics_csv(classes) if row.label is not None]
        if not labels:
            raise DataError(f"{classes}: has no labels to take the classes from")
        return ClassList.from_labels(labels)
    return read_class_list(classes)


def kinetics_items(csv_path: str | os.PathLike, *, root: str | os.PathLike | None,
                   classes: ClassList | str | os.PathLike | Sequence[str] | None = None,
                   path_template: str | None = "auto") -> tuple[list[VideoItem], ClassList, str]:
    """The videos of an official Kinetics CSV: (items, classes, template used)."""
    csv_path = Path(csv_path)
    rows = read_kinetics_csv(csv_path)
    root = Path(root) if root is not None else csv_path.parent
    class_list = kinetics_classes(classes, csv_path, rows)
    if path_template in (None, "auto"):
        template = detect_layout(rows, root)
    else:
        template = str(path_template)
        format_template(template, rows[0])  # a bad field is a config error before anything else
    if _uses_label(template) and any(row.label is None for row in rows):
        raise ConfigError(f"path_template {template!r} uses the label, but {csv_path} has no label column "
                          "(the test CSV); use a layout without {label}")
    lookup = {_label_key(name): i for i, name in enumerate(class_list.names)}
    items = []
    for row in rows:
        labels: tuple[int, ...] = ()
        if row.label is not None:
            try:
                index = class_list.index_of(row.label)
            except KeyError:
                index = lookup.get(_label_key(row.label))
            if index is None:
                raise DataError(f"{csv_path}:{row.line}: unknown class {row.label!r} "
                                f"(not among the {len(class_list)} classes)")
            labels = (index,)
        path = root / format_template(template, row)
        video_id = f"{row.youtube_id}_{row.time_start:06d}_{row.time_end:06d}"
        items.append(VideoItem(str(path), labels, video_id, key_for(path, root)))
    return items, class_list, template
