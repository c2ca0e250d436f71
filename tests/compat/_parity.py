"""Helpers shared by the parity tests against the TF references (Model Garden and the authors' TF1 code)."""

from __future__ import annotations

import numpy as np
import torch


def relative_error(ours: torch.Tensor, reference: np.ndarray) -> float:
    """max |ours - reference| / max |reference| over the tensor."""
    reference = torch.from_numpy(reference)
    return ((ours - reference).abs().max() / reference.abs().max()).item()


def to_tf_layout(x: torch.Tensor) -> torch.Tensor:
    """[B, C, T, H, W] -> [B*T, H, W, C], the reference's row order b*T + t."""
    b, c, t, h, w = x.shape
    return x.permute(0, 2, 3, 4, 1).reshape(b * t, h, w, c)
