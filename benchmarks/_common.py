"""Code the benchmarks share (imported as ``_common``: a script's own folder is first on ``sys.path``).

Importing it needs the standard library and ``assemblenet.argtypes`` only (torch is imported where it is used), so
that ``gpu_check.py`` can parse its arguments before anything it may install is there."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Callable

from assemblenet.argtypes import positive_int


def loader_clips_per_second(dataset, *, workers: int, batch_size: int, batches: int) -> float:
    """Steady-state clips/s of a shuffled training DataLoader over ``dataset``: the first batch, which includes
    worker start-up, is not timed; an exhausted loader starts a new epoch."""
    import torch

    from assemblenet.data import collate

    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=True, num_workers=workers,
                                         collate_fn=collate, generator=torch.Generator().manual_seed(0))
    iterator = iter(loader)
    next(iterator)
    count, begin = 0, time.perf_counter()
    for _ in range(batches):
        try:
            clips, _, _ = next(iterator)
        except StopIteration:
            iterator = iter(loader)
            clips, _, _ = next(iterator)
        count += clips.shape[0]
    elapsed = time.perf_counter() - begin
    del iterator
    return count / elapsed


def render_saved(path: str, markdown: Callable[[dict], str], readme: Path | None) -> str:
    """``--from-json``: render saved results with ``markdown`` and print them; with ``readme``, also replace that
    section of it (the section's own heading, up to the next "## ")."""
    from assemblenet.fileio import replace_markdown_section

    section = markdown(json.loads(Path(path).read_text(encoding="utf-8")))
    print(section)
    if readme is not None:
        replace_markdown_section(readme, section)
    return section


def model_benchmark_parser(description: str | None, *, device_help: str) -> argparse.ArgumentParser:
    """The parser of a GPU benchmark with the arguments every one of them takes: ``--device``, and the model and
    clip it times (``--model``, ``--num-classes``, ``--batch``, ``--frames``, ``--size``; by default AssembleNet-50,
    Charades' 157 classes, 8 clips of 32x224x224)."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda", help=device_help)
    parser.add_argument("--model", default="assemblenet50")
    parser.add_argument("--num-classes", type=positive_int, default=157)
    parser.add_argument("--batch", type=positive_int, default=8)
    parser.add_argument("--frames", type=positive_int, default=32)
    parser.add_argument("--size", type=positive_int, default=224)
    return parser
