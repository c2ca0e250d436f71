"""assemblenet.fileio: atomic writes leave whole files with ordinary permissions and no temporary files; an
interrupted write leaves the old file (or folder) as it was."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from assemblenet.errors import FolderInUseError
from assemblenet.fileio import (
    LOCK_FILE,
    atomic_dir,
    atomic_path,
    atomic_write_json,
    atomic_write_text,
    hold_folder,
    remove_stale_temporaries,
)


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


def test_a_write_interrupted_half_way_leaves_the_old_file_and_no_temporary(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "state.json"
    atomic_write_json(target, {"step": 1}, fsync=True)

    def torn_write(self: Path, data: bytes) -> int:
        with open(self, "wb") as handle:
            handle.write(data[: len(data) // 2])
        raise OSError("disk full")

    monkeypatch.setattr(Path, "write_bytes", torn_write)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_json(target, {"step": 2, "padding": "x" * 100}, fsync=True)
    monkeypatch.undo()
    assert json.loads(target.read_text()) == {"step": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]


def test_an_interrupted_folder_write_leaves_the_old_folder_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "flow"
    with atomic_dir(target) as tmp:
        (tmp / "a.jpg").write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic_dir(target) as tmp:
            (tmp / "a.jpg").write_bytes(b"new")
            raise RuntimeError("killed")
    assert [p.name for p in target.iterdir()] == ["a.jpg"] and (target / "a.jpg").read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["flow"]
    with atomic_dir(target) as tmp:
        (tmp / "b.jpg").write_bytes(b"new")
    assert [p.name for p in target.iterdir()] == ["b.jpg"]


def test_json_is_written_without_nan(tmp_path: Path) -> None:
    atomic_write_json(tmp_path / "x.json", {"a": float("nan"), "b": [float("inf"), 1.0]})
    assert json.loads((tmp_path / "x.json").read_text()) == {"a": None, "b": [None, 1.0]}


def test_stale_temporaries_of_killed_writers_are_recognised(tmp_path: Path) -> None:
    target = tmp_path / "000003.json"
    with atomic_path(target) as tmp:
        leftover = tmp.name  # the name a writer killed at this point would leave
        tmp.write_text("{}")
    (tmp_path / leftover).write_text("{partial")
    with atomic_dir(tmp_path / "frames") as tmp_dir:
        left_dir = tmp_dir.name
    (tmp_path / left_dir).mkdir()
    (tmp_path / ".hidden").write_text("kept")
    assert remove_stale_temporaries(tmp_path) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == [".hidden", "000003.json", "frames"]


def test_data_writers_go_through_fileio(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """write_flow's image folder: a failure at the second frame keeps the earlier flow and leaves nothing."""
    import cv2
    import numpy as np

    from assemblenet.data.flow import write_flow
    from assemblenet.errors import DataError

    destination = tmp_path / "video"
    write_flow(destination, np.zeros((2, 8, 8, 2), np.float32), fmt="png")
    before = sorted(p.name for p in destination.iterdir())
    calls = []
    real = cv2.imwrite

    def failing(name: str, image, params=None) -> bool:
        calls.append(name)
        return len(calls) < 2 and real(name, image, params)

    monkeypatch.setattr(cv2, "imwrite", failing)
    with pytest.raises(DataError, match="could not write flow image"):
        write_flow(destination, np.ones((3, 8, 8, 2), np.float32), fmt="png")
    assert sorted(p.name for p in destination.iterdir()) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["video"]


# -- one process per output folder ---------------------------------------------------------------------------
HOLDER = """
import sys, time
from assemblenet.fileio import hold_folder
with hold_folder(sys.argv[1]):
    print("held", flush=True)
    time.sleep(120)
"""


def start_holder(folder: Path) -> subprocess.Popen:
    """A real process that holds ``folder`` until killed; returns once it holds it."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    process = subprocess.Popen([sys.executable, "-c", HOLDER, str(folder)], stdout=subprocess.PIPE, text=True,
                               env=env)
    assert process.stdout.readline().strip() == "held"
    return process


def try_hold(folder: Path) -> subprocess.CompletedProcess:
    code = ("import sys\nfrom assemblenet.fileio import hold_folder\n"
            "with hold_folder(sys.argv[1]):\n    print('held')\n")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    return subprocess.run([sys.executable, "-c", code, str(folder)], capture_output=True, text=True, env=env,
                          timeout=60)


def test_a_held_folder_refuses_a_second_process_and_a_killed_holder_leaves_no_stale_lock(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    holder = start_holder(folder)
    try:
        second = try_hold(folder)
        assert second.returncode != 0 and "held" not in second.stdout
        assert f"FolderInUseError: {folder.resolve()} is in use by process {holder.pid} on " in second.stderr
        with pytest.raises(FolderInUseError, match=f"in use by process {holder.pid} "):
            with hold_folder(folder):  # this process is a second one too
                pass
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert (folder / LOCK_FILE).exists()  # a killed holder leaves the file, but the kernel dropped its lock
    rerun = try_hold(folder)
    assert rerun.returncode == 0 and rerun.stdout.strip() == "held", rerun.stderr
    assert list(folder.iterdir()) == []  # a holder that ends removes the file


def test_holding_a_folder_nests_in_one_process_and_releases_at_the_end(tmp_path: Path) -> None:
    with hold_folder(tmp_path / "run") as held:
        with hold_folder(tmp_path / "run"):
            pass
        assert held == (tmp_path / "run").resolve()
        assert try_hold(tmp_path / "run").returncode != 0  # still held after the inner block
    assert try_hold(tmp_path / "run").returncode == 0
    with hold_folder(None) as nothing, hold_folder(tmp_path / "other", enabled=False) as disabled:
        assert nothing is None and disabled is None and not (tmp_path / "other").exists()


def test_replace_markdown_section_replaces_its_own_section_only(tmp_path):
    from assemblenet.fileio import replace_markdown_section

    readme = tmp_path / "README.md"
    readme.write_text("# Benchmarks\n\n## Data loader\nold\n\n## Video decoding\nkept\n")
    replace_markdown_section(readme, "## Data loader\nnew table\n")
    assert readme.read_text() == "# Benchmarks\n\n## Data loader\nnew table\n\n## Video decoding\nkept\n"
    replace_markdown_section(readme, "## GPU\nadded\n")  # a section the file lacks is appended
    assert readme.read_text().endswith("## Video decoding\nkept\n\n## GPU\nadded\n")
    replace_markdown_section(tmp_path / "new.md", "## Data loader\nx\n")
    assert (tmp_path / "new.md").read_text() == "# Benchmarks\n\n## Data loader\nx\n"
