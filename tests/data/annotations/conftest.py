"""Sample rows and a file writer shared by the annotation parser tests."""

from __future__ import annotations

from pathlib import Path

CHARADES_HEADER = "id,subject,scene,quality,relevance,verified,script,objects,descriptions,actions,length"
GOOD_CHARADES_ROWS = [
    '46GP8,HR43,Kitchen,6,7,Yes,"A person cooks, then eats.",food;dish,"A person, in a kitchen.",'
    '"c092 11.90 21.20;c147 0.00 12.60",24.83',
    "N11GT,0KZ7,Stairs,6,7,Yes,Walking up.,stairs,Climbs.,c098 8.60 14.20,11.12",
    "ZZZZZ,0KZ7,Hall,6,7,Yes,Nothing happens.,,Idle.,,9.50",
]


def write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
