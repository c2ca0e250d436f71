"""Kinetics-400/600/700 from the official CSVs, with the common on-disk layouts or a path template."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Sequence

from assemblenet.data.annotations import (
    ClassList,
    KineticsRow,
    detect_kinetics_layout,
    format_kinetics_path,
    is_video_list,
    kinetics_template_uses_label,
    read_class_list,
    read_kinetics_csv,
    video_list_classes,
)
from assemblenet.data.datasets.base import VideoItem, key_for
from assemblenet.errors import ConfigError, DataError


def _label_key(label: str) -> str:
    """Spaces/underscores, quotes, brackets and case do not distinguish Kinetics labels (``passing American
    football (in game)`` = ``passing_American_football_in_game``, as MMAction's renamed folders spell them)."""
    return " ".join(re.sub(r"[_\"'()]", " ", label).lower().split())


def kinetics_classes(classes: ClassList | str | os.PathLike[str] | Sequence[str] | None, csv_path: Path,
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
    if not isinstance(classes, (str, os.PathLike)):
        raise DataError(f"classes: expected a class file, a list of names, a ClassList or None, "
                        f"got {type(classes).__name__}")
    classes = Path(classes)
    # By its first line, the official CSV (the CVDF Kinetics-600 CSVs end in .txt) or a path,label list: the
    # train list's sorted labels.
    if classes.is_file() and is_video_list(classes):
        return video_list_classes(classes)
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
        template = detect_kinetics_layout(rows, root)
    else:
        template = str(path_template)
        format_kinetics_path(template, rows[0])  # a bad field is a config error before anything else
    if kinetics_template_uses_label(template) and any(row.label is None for row in rows):
        raise ConfigError(f"path_template {template!r} uses the label, but {csv_path} has no label column "
                          "(the test CSV); use a layout without {label}")
    lookup = {_label_key(name): i for i, name in enumerate(class_list.names)}
    items = []
    for row in rows:
        labels: tuple[int, ...] = ()
        if row.label is not None:
            index: int | None
            try:
                index = class_list.index_of(row.label)
            except KeyError:
                index = lookup.get(_label_key(row.label))
            if index is None:
                raise DataError(f"{csv_path}:{row.line}: unknown class {row.label!r} "
                                f"(not among the {len(class_list)} classes)")
            labels = (index,)
        path = root / format_kinetics_path(template, row)
        video_id = f"{row.youtube_id}_{row.time_start:06d}_{row.time_end:06d}"
        items.append(VideoItem(str(path), labels, video_id, key_for(path, root)))
    return items, class_list, template


# The names the official downloads give their CSVs, per split, as globs: DeepMind's archives (kinetics400.tar.gz,
# kinetics700_2020.tar.gz: train.csv, validate.csv, test.csv), the CVDF mirror (annotations/train.csv, val.csv,
# test.csv; Kinetics-600: train.txt, val.txt) and the ActivityNet crawler (kinetics-400_train.csv,
# kinetics_700_val.csv, ...). The Kinetics-600 holdout test CSV is never picked by itself.
KINETICS_CSV_NAMES: dict[str, tuple[str, ...]] = {
    "train": ("train.csv", "train.txt", "kinetics*train.csv"),
    "val": ("validate.csv", "val.csv", "val.txt", "kinetics*validate.csv", "kinetics*val.csv"),
    "test": ("test.csv", "kinetics*test.csv"),
}


def find_kinetics_csv(root: str | os.PathLike, split: str) -> Path:
    """The official CSV of ``split`` (train, val or test) under ``root/annotations`` or ``root``, by the names
    of :data:`KINETICS_CSV_NAMES`; a clear error when none or several are found."""
    split = {"validate": "val", "validation": "val"}.get(split, split)
    if split not in KINETICS_CSV_NAMES:
        raise ConfigError(f"kinetics split must be train, val or test, got {split!r}")
    root = Path(root)
    for folder in (root / "annotations", root):
        found = sorted({path for pattern in KINETICS_CSV_NAMES[split] for path in folder.glob(pattern)
                        if path.is_file() and "holdout" not in path.name})
        if len(found) > 1:
            raise DataError(f"{folder}: several {split} CSVs ({', '.join(p.name for p in found)}); give csv_path")
        if found:
            return found[0]
    raise DataError(f"{root}: no Kinetics {split} CSV in annotations/ or the folder itself (looked for "
                    f"{', '.join(KINETICS_CSV_NAMES[split])}); give csv_path")
