"""The package order as a test: every import of an ``assemblenet`` module, at module level or inside a function,
points down the layers (docs/architecture.md):

    base <- graph <- {models, data} <- engine <- search <- cli;   compat on models;   benchmarks on all but cli

``base`` is the top-level modules (``errors``, ``fileio``, ``config_schema``, ``argtypes``, ...). ``models`` and
``data`` sit side by side and never import each other. A new arrow against the order fails with the file and
line of the import."""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]
PACKAGE = REPOSITORY / "src" / "assemblenet"
BENCHMARKS = REPOSITORY / "benchmarks"

_BELOW_ENGINE = {"base", "graph", "models", "data"}
# What each layer may import (its own layer always included).
ALLOWED: dict[str, frozenset[str]] = {
    "base": frozenset({"base"}),
    "graph": frozenset({"base", "graph"}),
    "models": frozenset({"base", "graph", "models"}),
    "data": frozenset({"base", "graph", "data"}),
    "engine": frozenset(_BELOW_ENGINE | {"engine"}),
    "search": frozenset(_BELOW_ENGINE | {"engine", "search"}),
    "cli": frozenset(_BELOW_ENGINE | {"engine", "search", "cli", "compat"}),
    "compat": frozenset({"base", "graph", "models", "compat"}),
    "benchmarks": frozenset(_BELOW_ENGINE | {"engine", "search", "compat"}),
}


def _layer_of_module(dotted: str, package: Path) -> str:
    """The layer of ``assemblenet[.X[...]]``: X when X is a sub-package, else ``base``."""
    parts = dotted.split(".")
    if len(parts) > 1 and (package / parts[1]).is_dir():
        return parts[1]
    return "base"


def _imported_layers(node: ast.AST, package: Path) -> list[str]:
    if isinstance(node, ast.Import):
        return [_layer_of_module(a.name, package) for a in node.names if a.name.split(".")[0] == "assemblenet"]
    if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
        if node.module == "assemblenet":  # from assemblenet import engine, fileio
            return [_layer_of_module(f"assemblenet.{a.name}", package) for a in node.names]
        if node.module.split(".")[0] == "assemblenet":
            return [_layer_of_module(node.module, package)]
    return []


def _sources(package: Path, benchmarks: Path | None) -> list[tuple[Path, str]]:
    files = []
    for path in sorted(package.rglob("*.py")):
        parts = path.relative_to(package).parts
        files.append((path, parts[0] if len(parts) > 1 else "base"))
    if benchmarks is not None:
        files += [(path, "benchmarks") for path in sorted(benchmarks.rglob("*.py"))]
    return files


def layering_violations(package: Path = PACKAGE, benchmarks: Path | None = BENCHMARKS) -> list[str]:
    """``file:line: layer imports layer`` for every import against ``ALLOWED``."""
    found = []
    for path, layer in _sources(package, benchmarks):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level > 0:
                found.append(f"{path}:{node.lineno}: relative import (the layering check reads absolute ones)")
                continue
            for target in _imported_layers(node, package):
                if target not in ALLOWED[layer]:
                    found.append(f"{path}:{node.lineno}: {layer} imports {target} "
                                 f"(allowed: {', '.join(sorted(ALLOWED[layer]))})")
    return found


def test_every_import_follows_the_package_order() -> None:
    assert layering_violations() == []


def test_every_layer_is_known() -> None:
    packages = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").is_file()}
    assert packages <= set(ALLOWED), f"a new package needs a row in ALLOWED: {sorted(packages - set(ALLOWED))}"


def _copy_tree(tmp_path: Path) -> tuple[Path, Path]:
    package = tmp_path / "src" / "assemblenet"
    shutil.copytree(PACKAGE, package, ignore=shutil.ignore_patterns("*.so", "*.cpp", "__pycache__"))
    benchmarks = tmp_path / "benchmarks"
    shutil.copytree(BENCHMARKS, benchmarks, ignore=shutil.ignore_patterns("results", "__pycache__"))
    return package, benchmarks


def test_a_planted_upward_import_inside_a_function_fails_with_file_and_line(tmp_path) -> None:
    package, benchmarks = _copy_tree(tmp_path)
    assert layering_violations(package, benchmarks) == []
    module = package / "models" / "registry.py"
    lines = module.read_text(encoding="utf-8").splitlines()
    lines += ["", "", "def _planted():", "    from assemblenet.engine.config import load_config",
              "    return load_config"]
    module.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert layering_violations(package, benchmarks) == [
        f"{module}:{len(lines) - 1}: models imports engine (allowed: base, graph, models)"]


def test_data_and_models_never_import_each_other(tmp_path) -> None:
    package, benchmarks = _copy_tree(tmp_path)
    module = package / "data" / "sampling.py"
    module.write_text(module.read_text(encoding="utf-8") + "\nfrom assemblenet import models  # noqa\n",
                      encoding="utf-8")
    (violation,) = layering_violations(package, benchmarks)
    assert f"{module}:" in violation and "data imports models" in violation


def test_a_benchmark_importing_the_cli_fails(tmp_path) -> None:
    package, benchmarks = _copy_tree(tmp_path)
    planted = benchmarks / "planted_speed.py"
    planted.write_text("import assemblenet.cli.main\n", encoding="utf-8")
    assert layering_violations(package, benchmarks) == [f"{planted}:1: benchmarks imports cli "
                                                        f"(allowed: {', '.join(sorted(ALLOWED['benchmarks']))})"]
