"""One logger convention: a module that logs names its logger ``logger = logging.getLogger(__name__)`` (the stdlib
idiom), and no attribute or local name shadows it."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "assemblenet"

# Modules not yet renamed, with their offence (none should stay here).
KNOWN: dict[str, list[str]] = {}


def _module_loggers(tree: ast.Module) -> list[tuple[str, str]]:
    """``(name, argument)`` of every module-level ``X = logging.getLogger(...)``."""
    found = []
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
            func = node.value.func
            if isinstance(func, ast.Attribute) and func.attr == "getLogger":
                names = [t.id if isinstance(t, ast.Name) else ast.unparse(t) for t in node.targets]
                args = [ast.unparse(a) for a in node.value.args]
                found.append((",".join(names), ",".join(args)))
    return found


def _shadows(tree: ast.Module) -> list[str]:
    """Assignments to a ``logger`` attribute (``self.logger = ...``) or to a local ``logger`` inside a function."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr == "logger" and isinstance(node.ctx, ast.Store):
            out.append(f"line {node.lineno}: {ast.unparse(node)}")
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            args = node.args
            names = [a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs)]
            out += [f"line {node.lineno}: parameter logger of {node.name}" for n in names if n == "logger"]
            for inner in ast.walk(node):
                if isinstance(inner, ast.Name) and inner.id == "logger" and isinstance(inner.ctx, ast.Store):
                    out.append(f"line {inner.lineno}: local logger in {node.name}")
    return out


def test_module_loggers_are_named_logger_and_never_shadowed() -> None:
    offenders = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        problems = [f"{name} = getLogger({arg})" for name, arg in _module_loggers(tree)
                    if (name, arg) != ("logger", "__name__")]
        problems += _shadows(tree)
        if problems:
            offenders[str(path.relative_to(PACKAGE))] = problems
    assert offenders == KNOWN
