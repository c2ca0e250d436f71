"""What a training loader worker holds: /dev/shm and RAM at 32x224, batch 8, prefetch_factor 2.

A DataLoader worker collates each batch into shared memory (/dev/shm) and keeps up to ``prefetch_factor``
batches in flight; the main process maps them (and, on a GPU, pins a copy). This script builds the training
pipeline on generated 340x256 files (``decode_speed.make_video``), lets the workers fill their prefetch queue,
and reads:

- the /dev/shm space in use (``statvfs``) against before the loader started;
- each worker's resident memory: RSS and USS (its private pages; what fork shares with the parent is not in it),
  from ``/proc/PID/smaps_rollup``;
- the expected shared memory: (workers x prefetch_factor + 1 held by the main process) x ``batch_bytes``
  (uint8 [B, 3, T, H, W]).

Usage:
    python benchmarks/loader_memory.py --json benchmarks/results/loader_memory.json
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))


def shm_used_bytes() -> int:
    stats = os.statvfs("/dev/shm")
    return (stats.f_blocks - stats.f_bfree) * stats.f_frsize


def process_memory(pid: int) -> dict[str, int]:
    """RSS, PSS and USS (private clean + dirty) of ``pid`` in bytes, from /proc/PID/smaps_rollup."""
    values: dict[str, int] = {}
    with open(f"/proc/{pid}/smaps_rollup") as handle:
        for line in handle:
            key, _, rest = line.partition(":")
            parts = rest.split()
            if len(parts) == 2 and parts[1] == "kB":
                values[key] = int(parts[0]) * 1024
    return {"rss": values.get("Rss", 0), "pss": values.get("Pss", 0),
            "uss": values.get("Private_Clean", 0) + values.get("Private_Dirty", 0)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=32)
    parser.add_argument("--crop", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--prefetch", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--wait", type=float, default=8.0, help="seconds to let the workers fill their queues")
    parser.add_argument("--workdir", help="generated files (default: a temporary folder)")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args(argv)

    import decode_speed
    from assemblenet.data import collate
    from assemblenet.data.datasets.base import batch_bytes
    from assemblenet.fileio import atomic_write_json
    from assemblenet.runtime import machine_info

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.workdir or tmp) / "340x256"
        folder.mkdir(parents=True, exist_ok=True)
        paths = []
        for i in range(2):
            path = folder / f"video_{i:02d}.mp4"
            if not path.is_file():
                decode_speed.make_video(path, 340, 256, seed=i)
            paths.append(path)
        dataset = decode_speed.pipeline_dataset(paths, num_frames=args.frames, stride=2, crop_size=args.crop)
        before = shm_used_bytes()
        loader = torch.utils.data.DataLoader(dataset, batch_size=args.batch_size, shuffle=True,
                                             num_workers=args.workers, collate_fn=collate,
                                             prefetch_factor=args.prefetch, persistent_workers=True)
        iterator = iter(loader)
        held, _, _ = next(iterator)  # the main process holds this one, as a training step would
        time.sleep(args.wait)  # the workers refill: prefetch_factor batches each in flight
        shm_in_use = shm_used_bytes() - before
        workers = [process_memory(w.pid) for w in iterator._workers]
        main_memory = process_memory(os.getpid())
        del iterator, loader
    # workers x prefetch_factor batches in flight, plus the one the main process holds
    expected = (args.workers * args.prefetch + 1) * batch_bytes(args.batch_size, args.frames, args.crop)
    results = {"command": "python benchmarks/loader_memory.py " + " ".join(argv if argv is not None else sys.argv[1:]),
               "machine": machine_info(), "batch": list(held.shape), "dtype": str(held.dtype),
               "batch_mb": batch_bytes(args.batch_size, args.frames, args.crop) / 1e6,
               "workers": args.workers, "prefetch_factor": args.prefetch,
               "shm_in_use_mb": shm_in_use / 1e6, "shm_expected_mb": expected / 1e6,
               "worker_memory_mb": [{k: v / 1e6 for k, v in w.items()} for w in workers],
               "main_memory_mb": {k: v / 1e6 for k, v in main_memory.items()}}
    for key, value in results.items():
        if key != "machine":
            print(f"{key}: {value}")
    print(f"machine: {results['machine']['signature']}")
    if args.json:
        atomic_write_json(args.json, results, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
