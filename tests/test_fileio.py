"""assemblenet.fileio: atomic writes leave whole files with ordinary permissions and no temporary files."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from assemblenet.fileio import atomic_path, atomic_write_json, atomic_write_text


def test_atomic_files_get_the_mode_open_would_give(tmp_path: Path) -> None:
    umask = os.umask(0o022)
    os.umask(umask)
    expected = 0o666 & ~umask
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    atomic_write_text(tmp_path / "a.txt", "x")
    atomic_write_json(tmp_path / "b.json", {"x": 1})
    with atomic_path(tmp_path / "c.bin") as tmp:
        tmp.write_bytes(b"x")
    for name in ("plain.txt", "a.txt", "b.json", "c.bin"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == expected, name


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "kept.txt"
    atomic_write_text(target, "old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept.txt"]
