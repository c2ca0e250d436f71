"""assemblenet.data must stay importable without the model, engine, search and CLI layers."""

from __future__ import annotations

import subprocess
import sys


def test_data_package_imports_no_higher_layer():
    code = (
        "import sys, assemblenet.data, assemblenet.data.check, assemblenet.data.flow;"
        "print(sorted(m for m in sys.modules if m.startswith(('assemblenet.models', 'assemblenet.engine',"
        " 'assemblenet.search', 'assemblenet.cli'))))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_annotation_parsers_are_torch_free():
    """The parsers in data/annotations/ import only the standard library and assemblenet's errors and fileio,
    so checking a dataset's lists never needs torch or numpy."""
    import ast
    from pathlib import Path

    import assemblenet.data.annotations as annotations

    allowed_prefixes = ("assemblenet.data.annotations", "assemblenet.errors", "assemblenet.fileio")
    modules = sorted(Path(annotations.__file__).parent.glob("*.py"))
    assert len(modules) >= 9, [m.name for m in modules]  # __init__, common and one module per dataset family
    offenders = []
    for module in modules:
        for node in ast.walk(ast.parse(module.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if name.startswith("assemblenet"):
                    if not name.startswith(allowed_prefixes):
                        offenders.append((module.name, name))
                elif top not in sys.stdlib_module_names:
                    offenders.append((module.name, name))
    assert offenders == []
