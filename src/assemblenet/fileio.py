"""Atomic file writes, shared by every layer: a reader, or a run restarted after SIGKILL, sees either the old
file or the complete new one, never a torn one."""

from __future__ import annotations

import json
import math
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Mapping


def _default_file_mode() -> int:
    """The mode ``open(path, "w")`` gives a new file: 0o666 less the process umask (read once, at import)."""
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


_FILE_MODE = _default_file_mode()


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` (same folder and suffix, so writers that infer the format from
    the suffix still work); it replaces ``path`` when the block succeeds and is removed otherwise.

    The file gets the permissions a plain ``open(path, "w")`` would give it (0o666 less the umask), not the
    owner-only 0o600 of ``tempfile.mkstemp``, so datasets and run folders stay readable by others as usual."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{path.suffix}", dir=path.parent)
    os.close(fd)
    os.chmod(name, _FILE_MODE)
    tmp = Path(name)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes, *, fsync: bool = True) -> Path:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            handle.write(data)
            if fsync:
                handle.flush()
                os.fsync(handle.fileno())
    return Path(path)


def atomic_write_text(path: str | os.PathLike[str], text: str, *, fsync: bool = False) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"), fsync=fsync)


def atomic_write_json(path: str | os.PathLike[str], data: Any, *, indent: int | None = 1) -> Path:
    return atomic_write_text(path, json.dumps(data, indent=indent) + "\n")


def json_safe(value: Any) -> Any:
    """``value`` with non-finite floats as None (JSON has no NaN), tensor/NumPy scalars as Python numbers and
    mapping keys as strings, recursively."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if hasattr(value, "item") and callable(value.item):
        return json_safe(value.item())
    return value
