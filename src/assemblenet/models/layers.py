"""Primitive layers with the reference's exact padding and BatchNorm settings.

Every tensor is ``[B, C, T, H, W]``, kept in ``channels_last_3d`` memory format (physically ``[B, T, H, W, C]``,
the reference's layout). Convolutions run as 2-D convolutions on zero-copy views of it.
"""

from __future__ import annotations

from typing import Any, Callable, Literal, cast, get_args

import torch
from torch import Tensor, nn
from torch.nn import functional as F

# TF BatchNormalization(momentum=0.99) updates the running mean with weight 0.01.
BN_MOMENTUM = 0.01
BN_EPSILON = 1e-5


def batch_norm(channels: int, *, zero_init: bool = False) -> nn.BatchNorm3d:
    bn = nn.BatchNorm3d(channels, eps=BN_EPSILON, momentum=BN_MOMENTUM)
    if zero_init:
        nn.init.zeros_(bn.weight)
    return bn


class SpatialConv(nn.Conv2d):
    """A k x k convolution applied to every frame of ``[B, C, T, H, W]``, without bias.

    Frames are convolved as a batch of 2-D images. On ``channels_last_3d`` tensors the reshapes are views, and
    oneDNN's 2-D kernels are chosen even for batch 1, where Conv3d with a (1, k, k) kernel often falls back to
    a slow path.
    """

    def forward(self, x: Tensor) -> Tensor:
        if self.kernel_size == (1, 1) and self.stride != (1, 1):
            # A strided 1 x 1 convolution is the 1 x 1 convolution of the subsampled frames (no padding at k = 1).
            # Computed that way because oneDNN 3.12's backward of the strided 1 x 1 kernel corrupts the heap on
            # AVX2 CPUs with one thread for small channel counts (torch 2.13: a channels-last [8, 3, 8, 8] input,
            # weight [3, 3, 1, 1], stride 2 aborts with "double free or corruption"; tests/models/test_layers.py).
            x = x[:, :, :, :: self.stride[0], :: self.stride[1]]
            b, c, t, h, w = x.shape
            y = F.conv2d(x.transpose(1, 2).reshape(b * t, c, h, w), self.weight, self.bias)
        else:
            b, c, t, h, w = x.shape
            y = self._conv_forward(x.transpose(1, 2).reshape(b * t, c, h, w), self.weight, self.bias)
        return y.view(b, t, y.shape[1], y.shape[2], y.shape[3]).transpose(1, 2)


# How TemporalConv computes: "conv3d" (the default) or "conv2d"; see its docstring.
TemporalConvImpl = Literal["conv3d", "conv2d"]
TEMPORAL_CONV_IMPLS: tuple[str, ...] = get_args(TemporalConvImpl)


class TemporalConv(nn.Conv3d):
    """A 1-D convolution over T of ``[B, C, T, H, W]`` (a (k, 1, 1) Conv3d), without bias.

    ``implementation`` chooses how it is computed; both read the same ``[O, C, k, 1, 1]`` weight, so weights
    move freely between them:

    - ``"conv3d"`` (default): the Conv3d. The numbers every reference test, stored output and finished study
      was made with.
    - ``"conv2d"``: a (k, 1) Conv2d over the zero-copy view ``[B, C, T, H*W]``. On a CPU at the search's proxy
      sizes PyTorch sends many of these Conv3d shapes to its slow ``slow_conv3d`` path while the Conv2d runs
      on oneDNN: forward and backward 1.9-3.7x faster there (docs/search_results/temporal_conv). The sums are
      taken in another order, so outputs differ in the last bits (relative 1e-7 to 1e-6): an option, off by
      default, that changes the numbers (set ``model.temporal_conv: conv2d``; :func:`set_temporal_conv`).

    Small inputs take a path that returns a plain contiguous tensor, so the output is put back into
    ``channels_last_3d`` (a no-op otherwise).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.implementation = "conv3d"
        # The (k, 1) Conv2d's padding and dilation as plain ints (TorchScript cannot index Conv3d's padding). A
        # string padding ("same") gets a placeholder: conv2d_problem refuses the Conv2d form for it.
        self.padding_over_time = (0, 0) if isinstance(self.padding, str) else (int(self.padding[0]), 0)
        self.dilation_over_time = (int(self.dilation[0]), 1)

    def conv2d_problem(self) -> str | None:
        """Why ``implementation="conv2d"`` cannot compute this convolution, or None: the Conv2d over ``[B, C, T,
        H*W]`` is exact only for a (k, 1, 1) kernel with stride 1, one group, zero padding over T alone."""
        if tuple(self.kernel_size[1:]) != (1, 1):
            return f"its kernel {tuple(self.kernel_size)} is not (k, 1, 1)"
        if isinstance(self.padding, str) or tuple(self.padding[1:]) != (0, 0):
            return f"its padding {self.padding!r} is not (p, 0, 0)"
        if tuple(self.stride) != (1, 1, 1) or self.groups != 1 or self.padding_mode != "zeros":
            return (f"stride {tuple(self.stride)}, groups {self.groups} and padding mode {self.padding_mode!r} must "
                    "be (1, 1, 1), 1 and 'zeros'")
        return None

    def extra_repr(self) -> str:
        text = cast(Callable[[], str], super().extra_repr)()  # nn.Conv3d.extra_repr is untyped
        return text if self.implementation == "conv3d" else f"{text}, implementation={self.implementation}"

    def forward(self, x: Tensor) -> Tensor:
        if self.implementation == "conv2d":
            b, c, t, h, w = x.shape
            y = F.conv2d(x.reshape(b, c, t, h * w), self.weight.squeeze(-1), self.bias,
                         padding=self.padding_over_time, dilation=self.dilation_over_time)
            y = y.reshape(b, y.shape[1], t, h, w)
        else:
            y = self._conv_forward(x, self.weight, self.bias)
        return y.contiguous(memory_format=torch.channels_last_3d)


def set_temporal_conv(model: nn.Module, implementation: str) -> int:
    """Make every :class:`TemporalConv` in ``model`` compute with ``implementation`` (``"conv3d"`` or
    ``"conv2d"``); returns how many there are. The weights are not touched."""
    if implementation not in TEMPORAL_CONV_IMPLS:
        raise ValueError(f"temporal_conv {implementation!r}: expected one of {list(TEMPORAL_CONV_IMPLS)}")
    convs = [module for module in model.modules() if isinstance(module, TemporalConv)]
    if implementation == "conv2d":
        for conv in convs:
            problem = conv.conv2d_problem()
            if problem is not None:
                raise ValueError(f"temporal_conv 'conv2d' cannot compute {conv!r}: {problem}")
    for conv in convs:
        conv.implementation = implementation
    return len(convs)


def spatial_conv(in_channels: int, out_channels: int, kernel_size: int, *, stride: int = 1) -> SpatialConv:
    """A k x k per-frame convolution without bias.

    Stride 1 uses 'same' padding; stride 2 pads (k-1)//2 before and the rest after. For the odd kernels used
    here both are symmetric, so torch's ``padding=(k-1)//2`` is exact.
    """
    if kernel_size % 2 != 1:
        raise ValueError(f"only odd spatial kernels are supported, got {kernel_size}")
    return SpatialConv(in_channels, out_channels, kernel_size, stride=stride, padding=kernel_size // 2, bias=False)


def temporal_conv(in_channels: int, out_channels: int, kernel_size: int, *, dilation: int = 1) -> TemporalConv:
    """A 1-D convolution over time with zero 'same' padding inside each clip, without bias."""
    total = (kernel_size - 1) * dilation
    if total % 2:
        raise ValueError(f"temporal kernel {kernel_size} with dilation {dilation} has no symmetric 'same' padding")
    return TemporalConv(
        in_channels, out_channels, (kernel_size, 1, 1), padding=(total // 2, 0, 0), dilation=(dilation, 1, 1),
        bias=False,
    )


def tf_same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TF 'SAME' padding of one dimension: the extra pixel goes at the end."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class MaxPoolSame(nn.Module):
    """Per-frame k x k max-pool with stride s and TF 'SAME' padding (pads with -inf, extra pad at the end).

    Torch's symmetric ``padding=`` differs from this whenever the total pad is odd, e.g. 3x3/2 on even sizes.
    """

    def __init__(self, kernel_size: int, stride: int) -> None:
        super().__init__()
        self.kernel_size = int(kernel_size)
        self.stride = int(stride)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding='SAME'"

    def forward(self, x: Tensor) -> Tensor:
        return max_pool_same(x, self.kernel_size, self.stride)


def max_pool_same(x: Tensor, kernel_size: int, stride: int) -> Tensor:
    """Functional form of :class:`MaxPoolSame` for ``[B, C, T, H, W]``."""
    top, bottom = tf_same_padding(x.shape[-2], kernel_size, stride)
    left, right = tf_same_padding(x.shape[-1], kernel_size, stride)
    if top == bottom and left == right:
        padding = (0, top, left)
    else:
        x = F.pad(x, (left, right, top, bottom), value=float("-inf"))
        padding = (0, 0, 0)
    return F.max_pool3d(x, (1, kernel_size, kernel_size), (1, stride, stride), padding=padding)
