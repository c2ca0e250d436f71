"""Toyota Smarthome: the fields encoded in a clip name (its split lists are plain name lists,
``common.read_name_list``)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from assemblenet.errors import DataError

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
