"""Input stems: RGB (with a temporal conv), optical flow, and object segmentation (AssembleNet++)."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from assemblenet.graph.spec import NUM_OBJECT_CLASSES
from assemblenet.models.layers import MaxPoolSame, batch_norm, spatial_conv, temporal_conv, tf_same_padding


class RGBStem(nn.Module):
    """7x7/2 conv -> BN/ReLU -> temporal conv k=5 (dilation d) -> BN/ReLU -> 3x3/2 TF-SAME max-pool.

    Shapes: ``[B, 3, T, H, W]`` -> ``[B, C, T, ceil(H/4), ceil(W/4)]``.
    """

    def __init__(self, out_channels: int, *, temporal_dilation: int = 1, in_channels: int = 3) -> None:
        super().__init__()
        self.conv = spatial_conv(in_channels, out_channels, 7, stride=2)
        self.bn1 = batch_norm(out_channels)
        self.temporal = temporal_conv(out_channels, out_channels, 5, dilation=max(1, temporal_dilation))
        self.bn2 = batch_norm(out_channels)
        self.pool = MaxPoolSame(3, 2)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        x = self.relu(self.bn1(self.conv(x)))
        x = self.relu(self.bn2(self.temporal(x)))
        x = self.pool(x)
        return x


class FlowStem(nn.Module):
    """7x7/2 conv on 2-channel flow -> BN/ReLU -> 2x2/2 max-pool (no temporal conv).

    Shapes: ``[B, 2, T, H, W]`` -> ``[B, C, T, ceil(H/4), ceil(W/4)]``.
    """

    def __init__(self, out_channels: int, *, in_channels: int = 2) -> None:
        super().__init__()
        self.conv = spatial_conv(in_channels, out_channels, 7, stride=2)
        self.bn1 = batch_norm(out_channels)
        self.pool = MaxPoolSame(2, 2)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        x = self.pool(self.relu(self.bn1(self.conv(x))))
        return x


class ObjectStem(nn.Module):
    """4x4/4 TF-SAME max-pool of per-class object maps; no parameters.

    The maps are either float scores / one-hot maps ``[B, K, T, H, W]`` or integer label ids ``[B, 1, T, H, W]``
    (0..K-1). Label ids give exactly the max-pool of their one-hot maps, without ever building the full-size
    one-hot tensor (which is 16x larger than the pooled one).

    Shapes: ``[B, K, T, H, W]`` or ``[B, 1, T, H, W]`` (integer) -> ``[B, K, T, ceil(H/4), ceil(W/4)]``.
    """

    def __init__(self, num_classes: int = NUM_OBJECT_CLASSES) -> None:
        super().__init__()
        self.num_classes = int(num_classes)
        self.pool = MaxPoolSame(4, 4)

    def forward(self, x: Tensor) -> Tensor:
        if x.is_floating_point():
            pooled: Tensor = self.pool(x)
            return pooled
        return pooled_one_hot(x, self.num_classes)


def pooled_one_hot(labels: Tensor, num_classes: int, window: int = 4) -> Tensor:
    """The ``window``x``window`` TF-SAME max-pool of the one-hot maps of ``labels [B, 1, T, H, W]``.

    Returns float32 ``[B, num_classes, T, ceil(H/window), ceil(W/window)]``: 1 where the class occurs in the window.
    """
    b, _, t, h, w = labels.shape
    top, bottom = tf_same_padding(h, window, window)
    left, right = tf_same_padding(w, window, window)
    # Padding takes an extra class id that is dropped at the end (as -inf padding never wins a max-pool).
    x = F.pad(labels[:, 0].long(), (left, right, top, bottom), value=float(num_classes))
    hp, wp = (h + top + bottom) // window, (w + left + right) // window
    x = x.reshape(b, t, hp, window, wp, window).permute(0, 1, 2, 4, 3, 5).reshape(b, t, hp, wp, window * window)
    out = torch.zeros(b, t, hp, wp, num_classes + 1, dtype=torch.float32, device=labels.device)
    out.scatter_(-1, x, 1.0)
    return out[..., :num_classes].permute(0, 4, 1, 2, 3)
