"""The package's modules import each other one way: no circle, counting imports inside functions too."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "assemblenet"

KNOWN: set[frozenset[str]] = set()  # circles not yet broken (none)


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _import_graph() -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
            else:
                continue
            # A module importing its own package (or a package its submodule) is not a circle between modules.
            graph[name] |= {t for t in targets if t in modules and t != name and not name.startswith(f"{t}.")
                            and not t.startswith(f"{name}.")}
    return graph


def _circles(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[frozenset[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(frozenset(component))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_no_import_circles() -> None:
    circles = set(_circles(_import_graph()))
    assert circles - KNOWN == set(), sorted(sorted(c) for c in circles - KNOWN)
    assert KNOWN <= circles, "a known circle is gone: remove it from KNOWN"


def test_the_broken_circles_stay_broken() -> None:
    graph = _import_graph()
    assert "assemblenet.engine.modeling" not in graph["assemblenet.engine.weights"]
    assert "assemblenet.search.fitness" not in graph["assemblenet.search.toy"]
