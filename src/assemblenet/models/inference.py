"""Inference-only model transforms."""

from __future__ import annotations

from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from assemblenet.models.blocks import BottleneckBlock
from assemblenet.models.lite import InvertedBottleneck3D, LiteHead, LiteStem
from assemblenet.models.stems import FlowStem, RGBStem

# (conv attribute, batch-norm attribute) pairs where the BN directly follows the conv.
_CONV_BN_PAIRS: dict[type, tuple[tuple[str, str], ...]] = {
    RGBStem: (("conv", "bn1"), ("temporal", "bn2")),
    FlowStem: (("conv", "bn1"),),
    BottleneckBlock: (("conv_a", "bn_a"), ("conv_b", "bn_b"), ("conv_c", "bn_c")),
    LiteStem: (("conv", "bn1"), ("temporal", "bn2")),
    InvertedBottleneck3D: (("conv_a", "bn_a"), ("conv_b", "bn_b"), ("conv_b_temporal", "bn_b_temporal"),
                           ("conv_c", "bn_c")),
    LiteHead: (("conv1", "bn1"), ("conv2", "bn2")),
}


def fold_batch_norm(model: nn.Module) -> nn.Module:
    """Fold every eval-mode BatchNorm into the convolution before it, in place, and return the model.

    The result computes the same function (to float rounding) with one pass less over each activation, which
    matters on memory-bound CPUs. It is for inference: the folded model can no longer update BN statistics.
    """
    if model.training:
        raise ValueError("fold_batch_norm is for inference: call model.eval() first")
    for module in list(model.modules()):
        for conv_name, bn_name in _CONV_BN_PAIRS.get(type(module), ()):
            bn = getattr(module, bn_name)
            if bn is None or isinstance(bn, nn.Identity):
                continue  # absent (a lite block that does not stride) or already folded
            setattr(module, conv_name, fuse_conv_bn_eval(getattr(module, conv_name), bn))
            setattr(module, bn_name, nn.Identity())
        if isinstance(module, (BottleneckBlock, InvertedBottleneck3D)) and module.projection is not None:
            conv, bn = module.projection[0], module.projection[1]
            if not isinstance(bn, nn.Identity):
                assert isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm3d)  # spatial_conv, batch_norm
                module.projection = nn.Sequential(fuse_conv_bn_eval(conv, bn), nn.Identity())
    return model
