"""Input stems: RGB (with a temporal conv), optical flow, and object segmentation (AssembleNet++)."""

from __future__ import annotations

from torch import Tensor, nn

from assemblenet.models.layers import MaxPoolSame, batch_norm, spatial_conv, temporal_conv

NUM_OBJECT_CLASSES = 151  # ADE-20k classes of the AssembleNet++ segmentation input


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
        return self.pool(x)


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
        return self.pool(self.relu(self.bn1(self.conv(x))))


class ObjectStem(nn.Module):
    """4x4/4 max-pool of per-class segmentation maps; no parameters.

    Shapes: ``[B, 151, T, H, W]`` -> ``[B, 151, T, ceil(H/4), ceil(W/4)]``.
    """

    def __init__(self) -> None:
        super().__init__()
        self.pool = MaxPoolSame(4, 4)

    def forward(self, x: Tensor) -> Tensor:
        return self.pool(x)
