"""Code the benchmarks share (imported as ``_common``: a script's own folder is first on ``sys.path``)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Callable

import torch


def loader_clips_per_second(dataset, *, workers: int, batch_size: int, batches: int) -> float:
    """Steady-state clips/s of a shuffled training DataLoader over ``dataset``: the first batch, which includes
    worker start-up, is not timed; an exhausted loader starts a new epoch."""
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
