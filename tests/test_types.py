"""The type checker: mypy, configured in pyproject.toml ([tool.mypy]), finds no error in src/; and that
configuration is the one in force: strict on graph/, models/ and engine/, the default level elsewhere.

mypy keeps its cache in pytest's cache folder (``.pytest_cache/d/mypy``): the first run analyses torch, numpy
and the rest (about 20 s of CPU), later runs only what changed (about 2 s)."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(importlib.util.find_spec("mypy") is None,
                                reason="mypy is not installed (pip install -e '.[test]' installs it)")

_ERROR = re.compile(r"^(?P<path>[^:\n]+):(?P<line>\d+): error: .*\[(?P<code>[a-z-]+)\]$", re.MULTILINE)


@pytest.fixture(scope="module")
def cache_dir(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    cache = getattr(request.config, "cache", None)  # absent, not None, under -p no:cacheprovider
    if cache is not None:
        return cache.mkdir("mypy")
    return tmp_path_factory.mktemp("mypy_cache")  # pytest's cache provider is off (-p no:cacheprovider)


def run_mypy(cache_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # No file arguments: the files (src/) and every setting come from pyproject.toml.
    return subprocess.run([sys.executable, "-m", "mypy", "--cache-dir", str(cache_dir), "--no-error-summary",
                           "--show-error-codes", "--no-pretty", *args],
                          cwd=REPO, capture_output=True, text=True, timeout=600)


def test_src_has_no_type_errors(cache_dir: Path) -> None:
    result = run_mypy(cache_dir)
    errors = _ERROR.findall(result.stdout)
    if result.returncode != 0 or errors:
        pytest.fail(f"mypy found {len(errors)} error(s) in src/ (run `python -m mypy`; the settings are in "
                    f"pyproject.toml):\n{result.stdout}{result.stderr}", pytrace=False)


def test_strict_on_graph_models_engine_and_the_default_level_elsewhere(cache_dir: Path, tmp_path: Path) -> None:
    # The same two planted definitions at the end of a strict module and of a default-level one (mypy reads the
    # planted copies in their place): the untyped function is an error in the strict module only.
    planted = ["", "", "def planted_untyped(value):", "    return value", "", "", "PLANTED: int = 'text'"]
    strict, default = "src/assemblenet/graph/io.py", "src/assemblenet/search/toy.py"
    shadows: list[str] = []
    end = {}
    for module in (strict, default):
        lines = (REPO / module).read_text(encoding="utf-8").splitlines() + planted
        copy = tmp_path / Path(module).name
        copy.write_text("\n".join(lines) + "\n", encoding="utf-8")
        shadows += ["--shadow-file", module, str(copy)]
        end[module] = len(lines)  # the line of PLANTED; planted_untyped is 4 lines above
    result = run_mypy(cache_dir, *shadows)
    found = {(path, int(line), code) for path, line, code in _ERROR.findall(result.stdout)}
    expected = {(strict, end[strict] - 4, "no-untyped-def"), (strict, end[strict], "assignment"),
                (default, end[default], "assignment")}
    if result.returncode != 1 or found != expected:
        pytest.fail(f"expected exactly the planted errors {sorted(expected)}, mypy said:\n"
                    f"{result.stdout}{result.stderr}", pytrace=False)
