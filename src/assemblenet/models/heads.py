"""Classification head over the level-3 (output) nodes."""

from __future__ import annotations

import math
from typing import List, Sequence

import torch
from torch import Tensor, nn


class AssembleNetHead(nn.Module):
    """Global average pool each output node, average over nodes, then a linear layer.

    Default: features are averaged over H, W and T, then over the output nodes, then mapped to logits.
    With ``max_pool_predictions`` the linear layer is applied per frame to get z ``[B, T, K]`` and the logits
    are ``sum_t softmax_t(z / sqrt(T)) * z``, which helps with long clips.

    Output nodes of equal width are averaged as in the reference. If their widths differ (possible in
    searched graphs, impossible in the reference), their features are concatenated instead.

    Shapes: a list of ``[B, C, T, H, W]`` -> ``[B, num_classes]``.
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

    def forward(self, outputs: List[Tensor]) -> Tensor:
        features = self.dropout(self.features(outputs))
        logits = self.fc(features)
        if self.max_pool_predictions:
            frames = logits.shape[1]
            attention = torch.softmax(logits / math.sqrt(frames), dim=1)
            logits = (logits * attention).sum(dim=1)
        return logits
