"""The repository tracks sources only: no wheels or build outputs, and .gitignore keeps run outputs out without
hiding the source folders that share their names (src/assemblenet/data, tests/data)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(not (REPO / ".git").exists() or shutil.which("git") is None,
                                reason="needs a git checkout")


def git(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=60)


def test_no_packages_or_build_outputs_are_tracked() -> None:
    tracked = git("ls-files").stdout.splitlines()
    assert tracked and not [p for p in tracked if p.endswith((".whl", ".pyc", ".so", ".egg"))]
    assert git("ls-files", "-ci", "--exclude-standard").stdout == ""  # nothing tracked that .gitignore ignores


@pytest.mark.parametrize("path, ignored", [
    ("pyflakes-4.1.0-py2.py3-none-any.whl", True), ("dist/assemblenet-0.1.tar.gz", True),
    ("build/lib/x.py", True), ("src/assemblenet/__pycache__/x.cpython-311.pyc", True),
    ("runs/tiny/metrics.jsonl", True), ("demo_output/graph_asn50.png", True), ("data/kinetics/train.csv", True),
    ("src/assemblenet/data/new_module.py", False), ("tests/fixtures/new_fixture.json", False),
])
def test_gitignore_keeps_outputs_out_and_sources_in(path, ignored) -> None:
    assert (git("check-ignore", "-q", "--no-index", path).returncode == 0) == ignored
