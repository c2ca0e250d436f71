"""Run by ``torchrun`` in test_distributed.py: train from a JSON config, then save this rank's weights and the
gathered validation metrics. Not a test module."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
import torch.distributed as dist

from assemblenet.engine.trainer import run_training


def main() -> None:
    config = json.loads(Path(sys.argv[1]).read_text())
    out = Path(sys.argv[2])
    result = run_training(config)
    rank = dist.get_rank()
    torch.save(result.model.state_dict(), out / f"rank{rank}_state.pt")
    (out / f"rank{rank}_metrics.json").write_text(json.dumps({"metrics": result.metrics, "steps": result.steps,
                                                              "world_size": dist.get_world_size()}))
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
