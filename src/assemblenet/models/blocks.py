"""Bottleneck block groups: the interleaved 2D / (2+1)D ResNet blocks of an AssembleNet node."""

from __future__ import annotations

from torch import Tensor, nn

from assemblenet.models.layers import SpatialConv, TemporalConv, batch_norm, spatial_conv, temporal_conv

# Width of the 3x3 conv per level: fixed by the level, independent of the node's filters.
INTERMEDIATE_CHANNELS = (64, 128, 256, 512)


class BottleneckBlock(nn.Module):
    """One bottleneck block.

    The first conv is 1x1 for even ``index`` and a temporal k=3 conv (dilation ``temporal_dilation``) for odd
    ones; then a 3x3 conv to ``intermediate_channels`` carrying the stride; then a 1x1 to ``4 * filters`` whose
    BN starts at gamma = 0. Block 0 projects the shortcut with a strided 1x1 conv plus BN.

    Shapes: ``[B, C_in, T, H, W]`` -> ``[B, 4*filters, T, H/stride, W/stride]``.
    """

    def __init__(
        self,
        in_channels: int,
        filters: int,
        *,
        intermediate_channels: int,
        index: int,
        temporal_dilation: int = 1,
        stride: int = 1,
        use_projection: bool = False,
    ) -> None:
        super().__init__()
        out_channels = 4 * filters
        self.projection = (
            nn.Sequential(spatial_conv(in_channels, out_channels, 1, stride=stride), batch_norm(out_channels))
            if use_projection else None
        )
        self.conv_a: SpatialConv | TemporalConv
        if index % 2 == 0:
            self.conv_a = spatial_conv(in_channels, filters, 1)
        else:
            self.conv_a = temporal_conv(in_channels, filters, 3, dilation=temporal_dilation)
        self.bn_a = batch_norm(filters)
        self.conv_b = spatial_conv(filters, intermediate_channels, 3, stride=stride)
        self.bn_b = batch_norm(intermediate_channels)
        self.conv_c = spatial_conv(intermediate_channels, out_channels, 1)
        self.bn_c = batch_norm(out_channels, zero_init=True)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        shortcut = x if self.projection is None else self.projection(x)
        x = self.relu(self.bn_a(self.conv_a(x)))
        x = self.relu(self.bn_b(self.conv_b(x)))
        x = self.bn_c(self.conv_c(x))
        x += shortcut  # in place: BN's backward does not need its output, and this saves a 4f-wide tensor
        x = self.relu(x)
        return x


class BlockGroup(nn.Sequential):
    """``num_blocks`` bottleneck blocks; only the first strides and projects.

    Shapes: ``[B, C_in, T, H, W]`` -> ``[B, 4*filters, T, H/stride, W/stride]``.
    """

    def __init__(
        self,
        in_channels: int,
        filters: int,
        *,
        num_blocks: int,
        intermediate_channels: int,
        temporal_dilation: int = 1,
        stride: int = 1,
    ) -> None:
        blocks = [
            BottleneckBlock(
                in_channels if i == 0 else 4 * filters, filters,
                intermediate_channels=intermediate_channels, index=i, temporal_dilation=temporal_dilation,
                stride=stride if i == 0 else 1, use_projection=i == 0,
            )
            for i in range(num_blocks)
        ]
        super().__init__(*blocks)
