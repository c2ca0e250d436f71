"""docs/architecture.md against the code. The page is the one place that says where things live, so it is checked:

- every repository path it names in backticks exists (``engine/trainer.py`` is under ``src/assemblenet/``;
  ``tests/...``, ``benchmarks/...``, ``docs/...``, ``configs/...`` under the repository; ``<name>`` placeholders
  and ``*`` patterns need their folder);
- every ``path.py: Name, Other`` names what that module defines at top level;
- every module and package of ``src/assemblenet/`` has a line (a new module fails until the page names it);
- its layer table is the order ``tests/test_layering.py`` enforces (``ALLOWED``).

When the code moves, the failure names the page's line; the fix is an edit of docs/architecture.md alone."""

from __future__ import annotations

import ast
import re
import shutil
from pathlib import Path

from tests.test_layering import ALLOWED

REPOSITORY = Path(__file__).resolve().parents[1]
PACKAGE = REPOSITORY / "src" / "assemblenet"
DOC = REPOSITORY / "docs" / "architecture.md"

_SPAN = re.compile(r"`([^`\n]+)`")
_PATH = re.compile(r"[\w.*<>-]+(?:/[\w.*<>-]*)*")
_SUFFIXES = (".py", ".md", ".yaml", ".cpp", ".json", ".toml")


def _named(text: str) -> list[tuple[int, str, list[str]]]:
    """(line, path, names) for every backticked path, ``path`` or ``path: Name, Other``."""
    found = []
    for number, line in enumerate(text.splitlines(), start=1):
        for span in _SPAN.findall(line):
            path, _, names = span.partition(": ")
            if not _PATH.fullmatch(path) or not ("/" in path or path.endswith(_SUFFIXES)):
                continue
            found.append((number, path, [n.strip() for n in names.split(",") if n.strip()]))
    return found


def _resolve(path: str, package: Path, repository: Path) -> Path:
    first = path.split("/")[0]
    return package / path if (package / first).exists() else repository / path


def _defined_names(module: Path) -> set[str]:
    names = set()
    for node in ast.parse(module.read_text(encoding="utf-8")).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
    return names


def wrong_paths(text: str, package: Path = PACKAGE, repository: Path = REPOSITORY) -> list[str]:
    """``docs/architecture.md:LINE: ...`` for every named path that does not exist or does not define a name."""
    problems = []
    for line, path, names in _named(text):
        target = _resolve(path, package, repository)
        where = f"{DOC.relative_to(REPOSITORY)}:{line}: `{path}`"
        if "<" in path:  # a template (data/annotations/<name>.py): its folder must exist
            folder = Path(str(target).split("<")[0]).parent
            if not folder.is_dir():
                problems.append(f"{where}: no folder {folder}")
            continue
        if "*" in path:  # a pattern (cli/*_cmd.py): it must match
            if not list(target.parent.glob(target.name)):
                problems.append(f"{where}: matches no file")
            continue
        if not target.exists():
            problems.append(f"{where}: does not exist")
            continue
        if names:
            defined = _defined_names(target)
            problems += [f"{where}: defines no {name!r}" for name in names if name.split(".")[0] not in defined]
    return problems


def undocumented(text: str, package: Path = PACKAGE) -> list[str]:
    """Every module (``engine/trainer.py``) and package (``search/study/``) of ``package`` the page does not name."""
    named = {path.rstrip("/") for _, path, _ in _named(text)}
    missing = []
    for path in sorted(package.rglob("*.py")):
        relative = path.relative_to(package)
        if path.name == "__init__.py" and relative.parent != Path("."):
            relative = relative.parent  # a sub-package: named as its folder
        if "__pycache__" not in relative.parts and relative.as_posix() not in named:
            missing.append(relative.as_posix() + ("/" if (package / relative).is_dir() else ""))
    return missing


def layer_table(text: str) -> dict[str, frozenset[str]]:
    """The ``| layer | what it is | may import |`` table of the page's "Layers" section."""
    section = text.split("\n## Layers", 1)[1].split("\n## ", 1)[0]
    table = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0] not in ("layer", "---"):
            table[cells[0]] = frozenset(n.strip() for n in cells[2].split(","))
    return table


def test_every_path_the_page_names_exists_and_defines_what_it_says() -> None:
    assert wrong_paths(DOC.read_text(encoding="utf-8")) == []


def test_every_module_and_package_has_a_line() -> None:
    missing = undocumented(DOC.read_text(encoding="utf-8"))
    assert missing == [], f"docs/architecture.md names no line for {missing}: add one where it belongs"


def test_the_layer_table_is_the_enforced_order() -> None:
    assert layer_table(DOC.read_text(encoding="utf-8")) == ALLOWED


def test_a_planted_wrong_path_or_name_fails_naming_the_line() -> None:
    text = DOC.read_text(encoding="utf-8")
    planted = text + ("\nplanted: `engine/no_such_module.py`, `tests/no_such_test.py`, "
                      "`engine/trainer.py: Trainer, gone`, `cli/*_nothing.py`, `tests/gone/test_<name>.py`\n")
    line = len(planted.splitlines())
    assert wrong_paths(planted) == [f"docs/architecture.md:{line}: `engine/no_such_module.py`: does not exist",
                                    f"docs/architecture.md:{line}: `tests/no_such_test.py`: does not exist",
                                    f"docs/architecture.md:{line}: `engine/trainer.py`: defines no 'gone'",
                                    f"docs/architecture.md:{line}: `cli/*_nothing.py`: matches no file",
                                    f"docs/architecture.md:{line}: `tests/gone/test_<name>.py`: no folder "
                                    f"{REPOSITORY / 'tests' / 'gone'}"]


def test_a_new_module_without_a_line_fails(tmp_path) -> None:
    package = tmp_path / "assemblenet"
    shutil.copytree(PACKAGE, package, ignore=shutil.ignore_patterns("*.so", "*.cpp", "__pycache__"))
    text = DOC.read_text(encoding="utf-8")
    assert undocumented(text, package) == []
    (package / "engine" / "planted.py").write_text('"""A module nobody documented."""\n', encoding="utf-8")
    (package / "search" / "planted_pkg").mkdir()
    (package / "search" / "planted_pkg" / "__init__.py").write_text("", encoding="utf-8")
    assert undocumented(text, package) == ["engine/planted.py", "search/planted_pkg/"]


def test_a_layer_table_that_differs_from_the_enforced_order_fails() -> None:
    text = DOC.read_text(encoding="utf-8")
    row = next(line for line in text.splitlines() if line.startswith("| data |"))
    planted = layer_table(text.replace(row, row.replace("base, graph, data", "base, data")))
    assert planted != ALLOWED and planted["data"] == frozenset({"base", "data"})
