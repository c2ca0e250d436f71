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
        for node in _runtime_nodes(ast.parse(path.read_text(encoding="utf-8"))):
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


def _runtime_nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node that can run on import or call: all of them except the bodies of ``if TYPE_CHECKING:`` blocks.
    Those hold imports for annotations only (the study's stage modules name the runner's ``Study`` type that way);
    they never execute, so they cannot close a circle at run time."""
    nodes: list[ast.AST] = []
    todo: list[ast.AST] = [tree]
    while todo:
        node = todo.pop()
        nodes.append(node)
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            todo.extend(node.orelse)
            continue
        todo.extend(ast.iter_child_nodes(node))
    return nodes


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


def test_annotation_only_imports_are_left_out_and_every_other_import_counts() -> None:
    source = (
        "from typing import TYPE_CHECKING\n"
        "import a\n"
        "if TYPE_CHECKING:\n"
        "    import b\n"
        "else:\n"
        "    import c\n"
        "def f():\n"
        "    import d\n"
        "if other:\n"
        "    import e\n"
    )
    imported = {alias.name for node in _runtime_nodes(ast.parse(source)) if isinstance(node, ast.Import)
                for alias in node.names}
    assert imported == {"a", "c", "d", "e"}
