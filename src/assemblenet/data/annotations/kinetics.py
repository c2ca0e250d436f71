"""The official Kinetics CSV (``label,youtube_id,time_start,time_end,split[,is_cc]``) and the folder layouts
the usual download tools give its clips."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from assemblenet.data.annotations.common import _open_text, annotation_text, csv_table
from assemblenet.errors import ConfigError, DataError

logger = logging.getLogger(__name__)


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
    lines = annotation_text(path).splitlines()
    first = lines[0] if lines else ""
    return "youtube_id" in [h.strip().lower() for h in first.split(",")]


def read_kinetics_csv(path: str | os.PathLike) -> list[KineticsRow]:
    """``label,youtube_id,time_start,time_end,split[,is_cc]`` (Kinetics-400 adds ``is_cc``; the test CSV has no
    ``label``). Times may be written as ``14`` or ``14.0``; labels may be quoted."""
    path = _open_text(path)
    rows: list[KineticsRow] = []
    with csv_table(path, kind="Kinetics", required=("youtube_id", "time_start", "time_end"),
                   expected="label,youtube_id,time_start,time_end,split", lowercase=True) as (column, table):
        for number, where, row in table:
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
