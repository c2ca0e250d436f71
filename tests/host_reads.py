"""Counting the places where code reads a tensor's value back to the host (``.item()``, ``.tolist()``,
``float(t)``, ``int(t)``, ``bool(t)``). On a GPU each one makes the host wait until the device has caught up, so
the training step must make none. Shared by the engine and model tests."""

from __future__ import annotations

import contextlib
import traceback
from dataclasses import dataclass, field

import torch

_METHODS = ("item", "tolist", "__float__", "__int__", "__bool__")


@dataclass
class HostRead:
    method: str
    stack: list[traceback.FrameSummary]

    def in_function(self, *names: str) -> bool:
        return any(frame.name in names for frame in self.stack)

    def in_file(self, *fragments: str) -> bool:
        return any(fragment in frame.filename.replace("\\", "/") for frame in self.stack for fragment in fragments)

    def where(self) -> str:
        ours = [f for f in self.stack if "/assemblenet/" in f.filename.replace("\\", "/")]
        frame = (ours or self.stack)[-1]
        return f"{self.method} at {frame.filename}:{frame.lineno} ({frame.name})"


@dataclass
class HostReadLog:
    reads: list[HostRead] = field(default_factory=list)


@contextlib.contextmanager
def count_host_reads():
    """Record every host read of a tensor value made inside the block (with its call stack)."""
    log = HostReadLog()
    originals = {name: getattr(torch.Tensor, name) for name in _METHODS}

    def wrap(name):
        original = originals[name]

        def patched(self, *args, **kwargs):
            log.reads.append(HostRead(name, traceback.extract_stack()[:-1]))
            return original(self, *args, **kwargs)
        return patched

    for name in _METHODS:
        setattr(torch.Tensor, name, wrap(name))
    try:
        yield log
    finally:
        for name, original in originals.items():
            setattr(torch.Tensor, name, original)
