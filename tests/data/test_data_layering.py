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
