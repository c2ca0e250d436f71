"""Classification head over the level-3 (output) nodes."""

from __future__ import annotations

import math
from typing import List, Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F


class AssembleNetHead(nn.Module):
    """Global average pool each output node, average over nodes, then a linear layer.

    Default: features are averaged over H, W and T, then over the output nodes, then mapped to logits.
    With ``max_pool_predictions`` the linear layer is applied per frame to get z ``[B, T, K]`` and the logits
    are ``sum_t softmax_t(z / sqrt(T)) * z``, which helps with long clips.

    Output nodes of equal width are averaged as in the reference. If their widths differ (possible in
    searched graphs, impossible in the reference), their features are concatenated instead.

    The pooling and the linear layer compute in float32 whatever the model's dtype (a model converted with
    ``.to(torch.bfloat16)`` still returns float32 logits): averaging thousands of activations and the final
    scores are where bf16's 8-bit mantissa would cost accuracy, and the head is a negligible share of the work.

    Shapes: a list of ``[B, C, T, H, W]`` -> ``[B, num_classes]`` (float32).
    """

    def __init__(
        self,
        in_channels: Sequence[int],
        num_classes: int,
        *,
        max_pool_predictions: bool = False,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        in_channels = [int(c) for c in in_channels]
        self.concatenate = len(set(in_channels)) > 1
        self.num_features = sum(in_channels) if self.concatenate else in_channels[0]
        self.max_pool_predictions = bool(max_pool_predictions)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.fc = nn.Linear(self.num_features, num_classes)
        nn.init.normal_(self.fc.weight, std=0.01)
        nn.init.zeros_(self.fc.bias)

    def features(self, outputs: List[Tensor]) -> Tensor:
        """Pooled features: ``[B, F]``, or ``[B, T, F]`` with ``max_pool_predictions``."""
        pooled: List[Tensor] = []
        for x in outputs:
            per_frame = x.float().mean(dim=(-2, -1)).transpose(1, 2)  # [B, T, C]
            pooled.append(per_frame if self.max_pool_predictions else per_frame.mean(dim=1))
        if self.concatenate:
            return torch.cat(pooled, dim=-1)
        total = pooled[0]
        for k in range(1, len(pooled)):
            total = total + pooled[k]
        return total / len(pooled) if len(pooled) > 1 else total

    def _linear_fp32(self, features: Tensor) -> Tensor:
        bias = self.fc.bias
        return F.linear(features.float(), self.fc.weight.float(), None if bias is None else bias.float())

    @torch.jit.unused
    def _linear_fp32_eager(self, features: Tensor) -> Tensor:
        """:meth:`_linear_fp32`, also under autocast (which would otherwise run the layer in bf16/fp16)."""
        device_type = features.device.type
        if device_type in ("cpu", "cuda") and torch.is_autocast_enabled(device_type):
            with torch.autocast(device_type=device_type, enabled=False):
                return self._linear_fp32(features)
        return self._linear_fp32(features)

    def forward(self, outputs: List[Tensor]) -> Tensor:
        features = self.dropout(self.features(outputs))
        if torch.jit.is_scripting():
            logits = self._linear_fp32(features)
        else:
            logits = self._linear_fp32_eager(features)
        if self.max_pool_predictions:
            frames = logits.shape[1]
            attention = torch.softmax(logits / math.sqrt(frames), dim=1)
            logits = (logits * attention).sum(dim=1)
        return logits

