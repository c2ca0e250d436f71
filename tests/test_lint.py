"""The tree is clean under the ruff configuration in pyproject.toml ([tool.ruff]), and that configuration is the
one in force: a snippet breaking each selected rule family is caught."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(importlib.util.find_spec("ruff") is None,
                                reason="ruff is not installed (pip install -e '.[test]' installs it)")


def ruff_check(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    # --no-cache: a test run leaves no .ruff_cache in the checkout
    return subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "--output-format", "concise", *args],
                          cwd=REPO, input=stdin, capture_output=True, text=True, timeout=120)


def test_every_python_file_is_clean() -> None:
    result = ruff_check("src", "tests", "benchmarks", "docs", "setup.py")
    assert result.returncode == 0, f"ruff check found problems (fix them, or run `ruff check --fix`):\n" \
                                   f"{result.stdout}{result.stderr}"


def test_the_project_configuration_is_in_force() -> None:
    bad = ("import os\n"
           "import assemblenet\n"
           "import sys\n\n\n"
           "def f():\n"
           "    try:\n"
           "        return undefined_name\n"
           "    except Exception:\n"
           "        return '" + "x" * 120 + "'\n")
    result = ruff_check("--stdin-filename", "src/assemblenet/_lint_probe.py", "-", stdin=bad)
    assert result.returncode == 1, result.stderr
    found = {line.split()[1] for line in result.stdout.splitlines() if line.startswith("src/")}
    assert {"I001", "F401", "F821", "BLE001", "E501"} <= found, result.stdout
