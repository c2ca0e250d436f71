"""Time AssembleNet's temporal (k, 1, 1) convolutions three ways (issue 28's profile; docs/search.md, "Where a
training step goes"), forward and backward on one thread, from and back to ``channels_last_3d`` as the model holds
its tensors: Conv3d as ``models/layers.py: TemporalConv`` runs it, Conv3d on a contiguous copy, and a (k, 1) Conv2d
over ``[B, C, T, H*W]``. Writes ``temporal_conv.json`` next to this file:

    python docs/search_results/temporal_conv/measure.py
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

from assemblenet import fileio
from assemblenet.runtime import machine_info

# (input [B, C, T, H, W], weight [O, C, k, 1, 1]): the temporal convolutions of the demo's networks at depth 26,
# width 1/8, batch 8 of 8 frames at 32x32.
CASES = [((8, 32, 8, 8, 8), (8, 32, 3, 1, 1)), ((8, 64, 8, 4, 4), (16, 64, 3, 1, 1)),
         ((8, 4, 8, 16, 16), (4, 4, 5, 1, 1)), ((8, 128, 8, 2, 2), (32, 128, 3, 1, 1)),
         ((8, 256, 8, 1, 1), (64, 256, 3, 1, 1))]
CL = torch.channels_last_3d
Conv = Callable[[torch.Tensor, torch.Tensor, int], torch.Tensor]


def conv3d(x: torch.Tensor, w: torch.Tensor, pad: int) -> torch.Tensor:
    return F.conv3d(x, w, padding=(pad, 0, 0)).contiguous(memory_format=CL)


def conv3d_contiguous(x: torch.Tensor, w: torch.Tensor, pad: int) -> torch.Tensor:
    return F.conv3d(x.contiguous(), w, padding=(pad, 0, 0)).contiguous(memory_format=CL)


def conv2d_over_time(x: torch.Tensor, w: torch.Tensor, pad: int) -> torch.Tensor:
    b, c, t, h, width = x.shape
    y = F.conv2d(x.contiguous().view(b, c, t, h * width), w.view(w.shape[0], c, w.shape[2], 1), padding=(pad, 0))
    return y.view(b, -1, t, h, width).contiguous(memory_format=CL)


def milliseconds(conv: Conv, x: torch.Tensor, w: torch.Tensor, pad: int, grad: torch.Tensor,
                 repeats: int = 40) -> float:
    xx, ww = x.detach().requires_grad_(True), w.detach().requires_grad_(True)
    for _ in range(5):
        conv(xx, ww, pad).backward(grad)
    start = time.perf_counter()
    for _ in range(repeats):
        conv(xx, ww, pad).backward(grad)
    return (time.perf_counter() - start) / repeats * 1e3


def main() -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    rows = []
    for shape, weight_shape in CASES:
        x = torch.rand(*shape).contiguous(memory_format=CL)
        w = torch.rand(*weight_shape)
        pad = weight_shape[2] // 2
        grad = torch.rand(shape[0], weight_shape[0], *shape[2:]).contiguous(memory_format=CL)
        reference = conv3d(x, w, pad)
        row = {"input": list(shape), "weight": list(weight_shape)}
        for name, conv in (("conv3d", conv3d), ("conv3d_contiguous", conv3d_contiguous),
                           ("conv2d_over_time", conv2d_over_time)):
            out = conv(x, w, pad)
            row[name] = {"ms_forward_backward": milliseconds(conv, x, w, pad, grad),
                         "bit_identical_output": bool(torch.equal(out, reference)),
                         "max_relative_difference": float((out - reference).abs().max() / reference.abs().max())}
        rows.append(row)
    here = Path(__file__).resolve().parent
    result = {"machine": machine_info(), "torch_threads": 1, "cases": rows}
    fileio.atomic_write_text(here / "temporal_conv.json", json.dumps(result, indent=1) + "\n")
    for row in rows:
        base = row["conv3d"]["ms_forward_backward"]
        parts = []
        for name in ("conv3d_contiguous", "conv2d_over_time"):
            entry = row[name]
            same = "identical" if entry["bit_identical_output"] else f"rel {entry['max_relative_difference']:.1e}"
            ms = entry["ms_forward_backward"]
            parts.append(f"{name} {ms:.2f} ms (x{base / ms:.1f}, {same})")
        print(row["input"], row["weight"], f"conv3d {base:.2f} ms;", "; ".join(parts))


if __name__ == "__main__":
    main()
