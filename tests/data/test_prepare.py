"""``prepare-videos``: re-encoding for fast random access, resumable, verified, corrupt sources skipped."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from assemblenet.data.decode import VideoReader
from assemblenet.data.prepare import REPORT_NAME, prepare_videos
from tests.data.conftest import encode_video
from tests.data.test_fast_input import textured_frames

REPO = Path(__file__).resolve().parents[2]


def make_source(root: Path, count: int = 2, frames: int = 40) -> list[Path]:
    """``count`` 64x48 H.264 videos with a long GOP in two folders, plus one corrupt file."""
    paths = []
    for i in range(count):
        folder = root / ("a" if i % 2 == 0 else "b")
        folder.mkdir(parents=True, exist_ok=True)
        paths.append(encode_video(folder / f"clip_{i}.mp4", textured_frames(frames, 48, 64, seed=i), fps=25,
                                  gop=frames))
    (root / "a" / "broken.mp4").write_bytes(paths[0].read_bytes()[:3000])
    return paths


def test_prepare_reencodes_with_short_gop_same_layout_and_reports(tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    make_source(src)
    report = prepare_videos(src, dst, short_side=32, gop=8, workers=1, progress=False)
    assert report.files == 3 and report.converted == 2 and report.already_done == 0
    assert list(report.failed) == [str(src / "a" / "broken.mp4")]  # reported and skipped
    assert sorted(p.relative_to(dst).as_posix() for p in dst.rglob("*.mp4")) == ["a/clip_0.mp4", "b/clip_1.mp4"]
    for rel in ("a/clip_0.mp4", "b/clip_1.mp4"):
        with VideoReader(src / rel) as source, VideoReader(dst / rel) as out:
            assert out.num_frames == source.num_frames == 40
            assert (out.height, out.width) == (32, 42)  # short side 32, 64 * 32 / 48 = 42.7 -> even 42
            assert out.index.keyframes[:5] == (0, 8, 16, 24, 32)
            assert out.fps == pytest.approx(25.0)
            # Same frames, downscaled: near the source resized to the same size (compared blurred, as the two
            # resamplers differ on this fine texture; a frame off by one differs by ~30 here).
            def blurred(frames):
                return np.stack([cv2.GaussianBlur(f, (0, 0), 1.5) for f in frames]).astype(int)
            theirs = [cv2.resize(f, (42, 32), interpolation=cv2.INTER_AREA) for f in source.get_frames([5, 30])]
            assert np.abs(blurred(out.get_frames([5, 30])) - blurred(theirs)).mean() < 8
    saved = json.loads((dst / REPORT_NAME).read_text())
    assert saved["converted"] == 2 and saved["bytes_before"] > 0 and saved["bytes_after"] > 0
    assert saved["hours"] == pytest.approx(2 * 40 / 25 / 3600, rel=0.05)


def test_rerun_skips_finished_files_and_removes_half_written_ones(tmp_path):
    """The state a kill -9 leaves (one finished file, one half-written temporary): the rerun keeps the finished
    file as it is, drops the temporary, and converts the rest."""
    src, dst = tmp_path / "src", tmp_path / "dst"
    make_source(src)
    prepare_videos(src, dst, short_side=32, gop=8, workers=1, progress=False)
    finished = dst / "a" / "clip_0.mp4"
    before = finished.stat()
    (dst / "b" / "clip_1.mp4").unlink()
    half_written = dst / "b" / ".clip_1.mp4.x1y2.tmp.mp4"
    half_written.write_bytes(b"\x00" * 100)
    report = prepare_videos(src, dst, short_side=32, gop=8, workers=2, progress=False)
    assert report.already_done == 1 and report.converted == 1 and len(report.failed) == 1
    assert finished.stat().st_ino == before.st_ino and finished.stat().st_mtime_ns == before.st_mtime_ns
    assert not half_written.exists()
    with VideoReader(dst / "b" / "clip_1.mp4") as reader:
        assert reader.num_frames == 40


def test_killed_run_resumes(tmp_path):
    """kill -9 once the first output is in place; the rerun finishes the rest and redoes nothing finished."""
    src, dst = tmp_path / "src", tmp_path / "dst"
    make_source(src, count=6, frames=60)
    code = ("import sys; from assemblenet.data.prepare import prepare_videos; "
            "prepare_videos(sys.argv[1], sys.argv[2], short_side=32, gop=8, workers=1, progress=False)")
    env = {**os.environ, "PYTHONPATH": str(REPO / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    process = subprocess.Popen([sys.executable, "-c", code, str(src), str(dst)], env=env)
    first = None
    while process.poll() is None and first is None:
        done = sorted(dst.rglob("clip_*.mp4")) if dst.is_dir() else []
        first = done[0] if done else None
    if process.poll() is None:
        os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert first is not None
    inode = first.stat().st_ino
    report = prepare_videos(src, dst, short_side=32, gop=8, workers=1, progress=False)
    assert report.converted + report.already_done == 6 and report.already_done >= 1
    assert first.stat().st_ino == inode  # not redone
    assert not [p for p in dst.rglob("*") if p.name.startswith(".")]  # no temporaries left
    for path in dst.rglob("clip_*.mp4"):
        with VideoReader(path) as reader:
            assert reader.num_frames == 60


def test_dataset_lists_naming_other_extensions_find_the_prepared_mp4(tmp_path):
    from assemblenet.data.datasets.base import prepared_path

    (tmp_path / "x.mp4").write_bytes(b"video")
    assert prepared_path(tmp_path / "x.avi") == tmp_path / "x.mp4"
    assert prepared_path(tmp_path / "y.avi") == tmp_path / "y.avi"  # nothing prepared: the name as listed


def test_destination_inside_source_is_refused(tmp_path):
    from assemblenet.errors import DataError

    make_source(tmp_path / "src", count=1)
    with pytest.raises(DataError, match="outside the source"):
        prepare_videos(tmp_path / "src", tmp_path / "src" / "out", progress=False)


def test_cli_prepare_videos_prints_the_summary_and_fails_on_a_corrupt_source(tmp_path, capsys):
    from assemblenet.cli.main import main

    src, dst = tmp_path / "src", tmp_path / "dst"
    make_source(src, count=1)
    code = main(["prepare-videos", str(src), str(dst), "--short-side", "32", "--gop", "8", "--workers", "1",
                 "--no-progress"])
    out = capsys.readouterr().out
    assert code == 1 and "1 converted" in out and "1 failed" in out and "broken.mp4" in out
    assert (dst / "a" / "clip_0.mp4").is_file()


def test_a_second_run_into_the_same_destination_is_refused(tmp_path):
    """Another process holds DST (a run in progress): this one stops with one error naming the folder, before
    touching that run's temporaries."""
    from assemblenet.errors import FolderInUseError

    src, dst = tmp_path / "src", tmp_path / "dst"
    make_source(src, count=1)
    code = ("import sys, time; from assemblenet.fileio import hold_folder\n"
            "with hold_folder(sys.argv[1]):\n    print('held', flush=True); time.sleep(60)")
    env = {**os.environ, "PYTHONPATH": str(REPO / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}
    holder = subprocess.Popen([sys.executable, "-c", code, str(dst)], env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        in_progress = dst / "a" / ".clip_0.mp4.abc.tmp.mp4"  # what the holder is writing
        in_progress.parent.mkdir()
        in_progress.write_bytes(b"in progress")
        with pytest.raises(FolderInUseError, match=str(dst.name)):
            prepare_videos(src, dst, short_side=32, gop=8, workers=1, progress=False)
        assert in_progress.exists()
    finally:
        holder.kill()
        holder.wait()
