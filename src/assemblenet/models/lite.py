"""AssembleNet++lite: the AssembleNet++ graph with inverted-bottleneck 3-D blocks (the authors' TF1
``assemblenet_plus_lite.py``).

Compared with AssembleNet(++), per node of the graph:

- **Stems** (RGB and flow): a [1, 3, 3] stride-2 conv (TF 'SAME'), BN/ReLU, a temporal k=3 conv with the stem's
  dilation, BN/ReLU. 24 channels at half the input resolution. No max-pool, no object stem.
- **Blocks**: inverted bottlenecks with a filter triple ``(f0, f1, f2)``: 1x1x1 conv to f0; then either a
  [1, 3, 3] stride-s conv to f1 followed by a temporal k=3 conv (dilation d) when the block strides, or a
  3x3x3 conv with temporal dilation d; each with BN/ReLU; then a 1x1x1 conv to f2 whose BN starts at gamma = 0.
  Block 0 projects the shortcut (strided 1x1x1 conv + BN); the others add the identity.
- **Head**: on the (single) level-3 node, 1x1x1 convs to 432 and 2048 channels (BN/ReLU each), then the average
  over T, H, W and a linear layer (or per-frame logits with ``max_pool_predictions``).
- The fusion and the AssembleNet++ attention are the ones of :class:`~assemblenet.models.AssembleNet`.

Fusion width: the authors' 5-D fusion sets its width from ``inp.shape[3]``, which in their
``[B, T, H, W, C]`` layout is the input's spatial *width*, not its channel count (so the model's parameter count
depends on the input resolution). :func:`build_assemblenet_lite` uses the channel count, as the 4-D code and
the paper do; ``fusion_width="tf_spatial_width"`` with ``input_size`` reproduces the original for parity with
its references.
"""

from __future__ import annotations

import math
from typing import List, Literal, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from assemblenet.errors import ConfigError, GraphError
from assemblenet.graph import AssembleNetGraph, BlockNode, StemNode, StemType
from assemblenet.models.assemblenet import AssembleNet, AttentionMode, FlowMode
from assemblenet.models.heads import AssembleNetHead
from assemblenet.models.layers import (
    SpatialConv,
    TemporalConvImpl,
    batch_norm,
    set_temporal_conv,
    spatial_conv,
    temporal_conv,
    tf_same_padding,
)
from assemblenet.models.rep_flow import RepresentationFlow

# Blocks per level of the published AssembleNet++lite (run_asn.py's num_layers for it).
LITE_BLOCKS = (3, 5, 11, 7)
LITE_STEM_FILTERS = 24
LITE_HEAD_CHANNELS = (432, 2048)
FusionWidth = Literal["channels", "tf_spatial_width"]


class SameSpatialConv(SpatialConv):
    """A per-frame k x k convolution with TF 'SAME' padding at any stride (the extra pad goes at the end).

    At stride 2 on even sizes TF pads 0 before and 1 after, which no symmetric torch padding reproduces.

    Shapes: ``[B, C_in, T, H, W]`` -> ``[B, C_out, T, ceil(H/s), ceil(W/s)]``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, *, stride: int = 1) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=0, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        b, c, t, h, w = x.shape
        top, bottom = tf_same_padding(h, self.kernel_size[0], self.stride[0])
        left, right = tf_same_padding(w, self.kernel_size[1], self.stride[1])
        frames = F.pad(x.transpose(1, 2).reshape(b * t, c, h, w), (left, right, top, bottom))
        y: Tensor = self._conv_forward(frames, self.weight, self.bias)
        return y.view(b, t, y.shape[1], y.shape[2], y.shape[3]).transpose(1, 2)


class DilatedConv3d(nn.Conv3d):
    """A 3x3x3 convolution with temporal dilation d and 'SAME' padding (d frames, 1 pixel each side), no bias.

    Shapes: ``[B, C_in, T, H, W]`` -> ``[B, C_out, T, H, W]`` (``channels_last_3d``).
    """

    def __init__(self, in_channels: int, out_channels: int, *, temporal_dilation: int = 1) -> None:
        d = int(temporal_dilation)
        super().__init__(in_channels, out_channels, 3, padding=(d, 1, 1), dilation=(d, 1, 1), bias=False)

    def forward(self, x: Tensor) -> Tensor:
        y: Tensor = self._conv_forward(x, self.weight, self.bias)
        return y.contiguous(memory_format=torch.channels_last_3d)


class LiteStem(nn.Module):
    """[1, 3, 3]/2 conv (TF 'SAME') -> BN/ReLU -> temporal k=3 conv (dilation d) -> BN/ReLU.

    Shapes: ``[B, C_in, T, H, W]`` -> ``[B, C, T, ceil(H/2), ceil(W/2)]``.
    """

    def __init__(self, out_channels: int, *, in_channels: int = 3, temporal_dilation: int = 1) -> None:
        super().__init__()
        self.conv = SameSpatialConv(in_channels, out_channels, 3, stride=2)
        self.bn1 = batch_norm(out_channels)
        self.temporal = temporal_conv(out_channels, out_channels, 3, dilation=max(1, int(temporal_dilation)))
        self.bn2 = batch_norm(out_channels)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        x = self.relu(self.bn1(self.conv(x)))
        x = self.relu(self.bn2(self.temporal(x)))
        return x


class InvertedBottleneck3D(nn.Module):
    """One inverted-bottleneck 3-D block with filters ``(f0, f1, f2)``.

    1x1x1 conv to f0 -> BN/ReLU; strided: [1, 3, 3]/s conv (TF 'SAME') to f1 -> BN/ReLU -> temporal k=3 conv
    (dilation d) -> BN/ReLU; not strided: 3x3x3 conv (temporal dilation d) to f1 -> BN/ReLU; then 1x1x1 conv to
    f2 -> BN (gamma starts at 0); plus the shortcut (projected with a strided 1x1x1 conv + BN in block 0); ReLU.

    Shapes: ``[B, C_in, T, H, W]`` -> ``[B, f2, T, ceil(H/s), ceil(W/s)]``.
    """

    def __init__(
        self,
        in_channels: int,
        filters: Sequence[int],
        *,
        stride: int = 1,
        temporal_dilation: int = 1,
        use_projection: bool = False,
    ) -> None:
        super().__init__()
        f0, f1, f2 = (int(f) for f in filters)
        if not use_projection and in_channels != f2:
            raise ValueError(f"an identity shortcut needs {f2} input channels, got {in_channels}")
        self.projection = (
            nn.Sequential(spatial_conv(in_channels, f2, 1, stride=stride), batch_norm(f2)) if use_projection else None
        )
        self.conv_a = spatial_conv(in_channels, f0, 1)
        self.bn_a = batch_norm(f0)
        if stride > 1:
            self.conv_b: nn.Module = SameSpatialConv(f0, f1, 3, stride=stride)
            self.bn_b = batch_norm(f1)
            self.conv_b_temporal: Optional[nn.Module] = temporal_conv(f1, f1, 3, dilation=temporal_dilation)
            self.bn_b_temporal: Optional[nn.Module] = batch_norm(f1)
        else:
            self.conv_b = DilatedConv3d(f0, f1, temporal_dilation=temporal_dilation)
            self.bn_b = batch_norm(f1)
            self.conv_b_temporal = None
            self.bn_b_temporal = None
        self.conv_c = spatial_conv(f1, f2, 1)
        self.bn_c = batch_norm(f2, zero_init=True)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        shortcut = x if self.projection is None else self.projection(x)
        x = self.relu(self.bn_a(self.conv_a(x)))
        x = self.relu(self.bn_b(self.conv_b(x)))
        if self.conv_b_temporal is not None and self.bn_b_temporal is not None:
            x = self.relu(self.bn_b_temporal(self.conv_b_temporal(x)))
        x = self.bn_c(self.conv_c(x))
        x += shortcut  # in place, as in BottleneckBlock
        x = self.relu(x)
        return x


class LiteBlockGroup(nn.Sequential):
    """``num_blocks`` inverted-bottleneck blocks; only the first strides and projects.

    Shapes: ``[B, C_in, T, H, W]`` -> ``[B, f2, T, ceil(H/stride), ceil(W/stride)]``.
    """

    def __init__(
        self, in_channels: int, filters: Sequence[int], *, num_blocks: int, temporal_dilation: int = 1,
        stride: int = 1,
    ) -> None:
        blocks = [
            InvertedBottleneck3D(
                in_channels if i == 0 else int(filters[-1]), filters, stride=stride if i == 0 else 1,
                temporal_dilation=temporal_dilation, use_projection=i == 0,
            )
            for i in range(num_blocks)
        ]
        super().__init__(*blocks)


class LiteHead(nn.Module):
    """1x1x1 conv to 432 -> BN/ReLU -> 1x1x1 conv to 2048 -> BN/ReLU -> average over T, H, W -> linear.

    It reads the graph's single output node. ``classifier`` is an :class:`AssembleNetHead` (float32 pooling and
    linear layer, dropout, ``max_pool_predictions``).

    Shapes: ``[[B, C, T, H, W]]`` -> ``[B, num_classes]`` (float32).
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        *,
        channels: Tuple[int, int] = LITE_HEAD_CHANNELS,
        max_pool_predictions: bool = False,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        c1, c2 = (int(c) for c in channels)
        self.conv1 = spatial_conv(in_channels, c1, 1)
        self.bn1 = batch_norm(c1)
        self.conv2 = spatial_conv(c1, c2, 1)
        self.bn2 = batch_norm(c2)
        self.relu = nn.ReLU(inplace=True)
        self.classifier = AssembleNetHead([c2], num_classes, max_pool_predictions=max_pool_predictions,
                                          dropout=dropout)

    def forward(self, outputs: List[Tensor]) -> Tensor:
        x = self.relu(self.bn1(self.conv1(outputs[0])))
        x = self.relu(self.bn2(self.conv2(x)))
        logits: Tensor = self.classifier([x])
        return logits


class AssembleNetLite(AssembleNet):
    """AssembleNet++lite: an :class:`AssembleNet` whose graph has filter triples, built with lite stems,
    inverted-bottleneck blocks and the lite head. Inputs, outputs and attention are those of AssembleNet.

    Build it with :func:`build_assemblenet_lite` or ``create_model("assemblenet_plus_lite")``.
    """

    def __init__(
        self,
        graph: AssembleNetGraph,
        *,
        num_classes: int,
        num_blocks: Sequence[int] = LITE_BLOCKS,
        stem_filters: int = LITE_STEM_FILTERS,
        head_channels: Sequence[int] = LITE_HEAD_CHANNELS,
        width_multiplier: float = 1.0,
        learnable_weights: Optional[bool] = None,
        max_pool_predictions: bool = False,
        dropout: float = 0.0,
        flow_mode: FlowMode = "rgb",
        flow_layer: Optional[RepresentationFlow] = None,
        attention_mode: AttentionMode = None,
        fusion_width: FusionWidth = "channels",
        input_size: Optional[Tuple[int, int]] = None,
    ) -> None:
        check_lite_graph(graph)
        if fusion_width not in ("channels", "tf_spatial_width"):
            raise ValueError(f"fusion_width must be 'channels' or 'tf_spatial_width', got {fusion_width!r}")
        if fusion_width == "tf_spatial_width" and input_size is None:
            raise ValueError("fusion_width='tf_spatial_width' takes its widths from the input: give input_size (H, W)")
        if len(head_channels) != 2:
            raise ValueError(f"head_channels needs 2 values (432, 2048 in the original), got {list(head_channels)}")
        # Plain settings read by the layer factories during AssembleNet.__init__ (nn.Module allows plain
        # attributes before its __init__; modules and parameters are only created afterwards).
        self.fusion_width_rule = fusion_width
        self.input_size = None if input_size is None else (int(input_size[0]), int(input_size[1]))
        self.head_channels = (int(head_channels[0]), int(head_channels[1]))
        super().__init__(
            graph, num_classes=num_classes, num_blocks=num_blocks, stem_filters=stem_filters,
            intermediate_channels=(), width_multiplier=width_multiplier, learnable_weights=learnable_weights,
            max_pool_predictions=max_pool_predictions, dropout=dropout, flow_mode=flow_mode, flow_layer=flow_layer,
            attention_mode=attention_mode,
        )

    @property
    def depth(self) -> int:
        """Convolutions on the path from the input to the logits: stem 2, 3 per block plus the temporal conv of
        each level's strided first block, head 3 (87 for the published [3, 5, 11, 7])."""
        return 2 + 3 * sum(self.num_blocks) + len(self.num_blocks) + 3

    def _make_stem(self, node: StemNode, stem_filters: int) -> nn.Module:
        in_channels = 3 if node.stem_type == StemType.RGB else 2
        return LiteStem(stem_filters, in_channels=in_channels, temporal_dilation=node.temporal_dilation)

    def _fusion_width(self, graph: AssembleNetGraph, index: int, in_channels: List[int]) -> Optional[int]:
        if self.fusion_width_rule == "channels":
            return None
        node = graph.nodes[index]
        assert isinstance(node, BlockNode) and self.input_size is not None
        if len(node.inputs) == 1:
            return None  # a single input passes through: no width to choose
        widths = spatial_widths(graph, self.input_size[1])
        # The original: start at 0; an input wider (in channels) than the running value sets it to its width.
        width = 0
        for source, channels in zip(node.inputs, in_channels):
            if channels > width:
                width = widths[source]
        return width

    def _make_block_group(self, node: BlockNode, in_channels: int, intermediate_channels: Sequence[int]) -> nn.Module:
        assert isinstance(node.filters, tuple)
        return LiteBlockGroup(in_channels, node.filters, num_blocks=self.num_blocks[node.level],
                              temporal_dilation=node.temporal_dilation, stride=node.spatial_stride)

    def _make_head(self, in_channels: List[int], num_classes: int, *, max_pool_predictions: bool,
                   dropout: float) -> nn.Module:
        c1, c2 = (max(1, int(round(c * self.width_multiplier))) for c in self.head_channels)
        return LiteHead(in_channels[0], num_classes, channels=(c1, c2),
                        max_pool_predictions=max_pool_predictions, dropout=dropout)


def check_lite_graph(graph: AssembleNetGraph) -> None:
    """Raise :class:`GraphError` unless ``graph`` can be an AssembleNet++lite."""
    if not graph.uses_filter_triples:
        raise GraphError("AssembleNet++lite needs [expand, expand, out] filter triples on every block node "
                         "(e.g. the asnp_lite structure); this graph has int filters: use build_assemblenet")
    objects = graph.stems_of(StemType.OBJECT)
    if objects:
        raise GraphError(f"node {objects[0]}: AssembleNet++lite has no object stem (the original has none either); "
                         "use AssembleNet++ (build_assemblenet) for object input")
    outputs = graph.output_indices
    if len(outputs) != 1:
        raise GraphError(f"the AssembleNet++lite head reads one level-3 node; the graph has {len(outputs)}: "
                         f"{outputs}")


def spatial_widths(graph: AssembleNetGraph, input_width: int) -> List[int]:
    """Every node's output width for an input ``input_width`` pixels wide (lite stems halve it; a fusion pools
    to its narrowest input; a block divides by its stride, rounding up)."""
    widths: List[int] = []
    for node in graph.nodes:
        if isinstance(node, StemNode):
            widths.append(math.ceil(input_width / 2))
        else:
            narrowest = min(widths[i] for i in node.inputs)
            widths.append(math.ceil(narrowest / node.spatial_stride))
    return widths


def build_assemblenet_lite(
    *,
    graph: AssembleNetGraph,
    num_classes: int,
    num_blocks: Sequence[int] = LITE_BLOCKS,
    width_multiplier: float = 1.0,
    stem_filters: Optional[int] = None,
    head_channels: Sequence[int] = LITE_HEAD_CHANNELS,
    learnable_weights: Optional[bool] = None,
    max_pool_predictions: bool = False,
    dropout: float = 0.0,
    flow_mode: FlowMode = "rgb",
    flow_normalization: Literal["clip", "batch"] = "clip",
    flow_iterations: int = 20,
    flow_trainable: bool = False,
    attention_mode: AttentionMode = None,
    fusion_width: FusionWidth = "channels",
    input_size: Optional[Tuple[int, int]] = None,
    depth: Optional[int] = None,
    temporal_conv: TemporalConvImpl = "conv3d",
) -> AssembleNetLite:
    """Build an AssembleNet++lite from a graph with filter triples (e.g. ``official_graph("asnp_lite")``).

    Args:
        graph: the architecture; every block node has an ``(expand, expand, out)`` filter triple, there is
            exactly one level-3 node and no object stem.
        num_classes: logits per clip.
        num_blocks: blocks per level; (3, 5, 11, 7) is the published model.
        width_multiplier: scales the filter triples, the stem width and the head widths (each at least 1).
        stem_filters: stem width; default ``round(24 * width_multiplier)`` (24 in the original, whatever the
            number of stems).
        head_channels: the head's two 1x1x1 conv widths before the width multiplier (432, 2048 in the original).
        learnable_weights: as :func:`~assemblenet.models.build_assemblenet`.
        max_pool_predictions, dropout: head options, as for AssembleNet.
        flow_mode, flow_normalization, flow_iterations, flow_trainable: representation-flow settings; the lite
            original runs 20 TV-L1 iterations.
        attention_mode: ``None``, ``"self"`` or ``"peer"`` (the published lite model uses peer attention).
        fusion_width: ``"channels"``: a fusion outputs its widest input's channel count (default);
            ``"tf_spatial_width"``: the original code's width rule (an input's spatial width), which needs
            ``input_size`` and is for parity with its references.
        input_size: ``(H, W)`` of the clips, only for ``fusion_width="tf_spatial_width"``.
        depth: not an option of the lite model (its depth follows ``num_blocks``); accepted only to say so.
        temporal_conv: ``"conv3d"`` (default) or ``"conv2d"``, as :func:`~assemblenet.models.build_assemblenet`.

    Shapes: ``model(x [B, 3, T, H, W]) -> [B, num_classes]``. Stems output ``[B, 24, T, H/2, W/2]``; a block node
    with stride 2 halves H and W and outputs ``f2`` channels (rounding up).
    """
    if depth is not None:
        raise ConfigError(f"depth {depth}: AssembleNet++lite has no depth option; its blocks per level are "
                          f"num_blocks (default {list(LITE_BLOCKS)})")
    if not width_multiplier > 0:
        raise ValueError(f"width_multiplier must be positive, got {width_multiplier}")
    if len(num_blocks) != 4 or any(int(n) < 1 for n in num_blocks):
        raise ValueError(f"num_blocks needs 4 positive values, got {list(num_blocks)}")
    if stem_filters is None:
        stem_filters = max(1, int(round(LITE_STEM_FILTERS * width_multiplier)))
    flow_layer = None
    if flow_mode == "rgb" and graph.stems_of(StemType.FLOW):
        flow_layer = RepresentationFlow(
            num_iterations=flow_iterations, normalization=flow_normalization, trainable=flow_trainable
        )
    model = AssembleNetLite(
        graph, num_classes=num_classes, num_blocks=num_blocks, stem_filters=stem_filters,
        head_channels=head_channels, width_multiplier=width_multiplier, learnable_weights=learnable_weights,
        max_pool_predictions=max_pool_predictions, dropout=dropout, flow_mode=flow_mode, flow_layer=flow_layer,
        attention_mode=attention_mode, fusion_width=fusion_width, input_size=input_size,
    )
    set_temporal_conv(model, temporal_conv)
    return model
