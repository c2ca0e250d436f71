"""Sigmoid-weighted fusion of a node's inputs (the learned connections of AssembleNet)."""

from __future__ import annotations

import math
from typing import List, Optional, Sequence

import torch
from torch import Tensor, nn

from assemblenet.models.attention import ATTENTION_MODES, ConnectionAttention
from assemblenet.models.layers import max_pool_same, spatial_conv

_WEIGHT_CLAMP = 1e-7  # keeps logit(w) finite for weights of exactly 0 or 1


def weight_to_logit(weight: float) -> float:
    weight = min(max(float(weight), _WEIGHT_CLAMP), 1.0 - _WEIGHT_CLAMP)
    return -math.log(1.0 / weight - 1.0)


class SigmoidFusion(nn.Module):
    """Fuse inputs of different resolutions and widths into one tensor.

    1. Inputs larger than the smallest spatial size are max-pooled with kernel = stride = (H+1)//H_min
       (TF 'SAME').
    2. Input i is scaled by sigmoid(logit_i).
    3. Inputs of equal width are summed; each group narrower than the widest input is mapped to it with a
       1x1 conv (no bias, no BN); the groups are summed.

    A single input passes through unchanged and has no weight. Fixed weights are stored as a buffer of
    logits, learnable ones as a parameter initialised from TruncatedNormal(0, 0.01) (or from given weights).

    With an ``attention_mode`` (AssembleNet++), every connection, after its pooling and sigmoid weight and before
    the group sums, is scaled per frame and channel by its :class:`ConnectionAttention`; a single input gets its
    attention too. Without one, nothing of it exists (same parameters and arithmetic as AssembleNet).

    Args:
        in_channels: channels of each input, in the node's input order.
        edge_weights: post-sigmoid strengths, or ``None`` for a fresh learnable initialisation.
        learnable: whether the logits are trained.
        width_inputs: which inputs may set the output width (AssembleNet++ excludes the object stem);
            all by default.
        attention_mode: ``None``, ``"self"`` or ``"peer"``.
        num_peers, peer_width: peer mode: the node's peer vectors ``[P, B, T, peer_width]``.
        out_channels: the output width when it is not the widest counted input (the authors' AssembleNet++lite
            takes it from a spatial size; see models/lite.py). Groups of another width get a 1x1 conv.

    Shapes: a list of ``[B, C_i, T, H_i, W_i]`` (plus ``peers [P, B, T, L]`` in peer mode) ->
    ``[B, C_out, T, H_min, W_min]``.
    """

    def __init__(
        self,
        in_channels: Sequence[int],
        *,
        edge_weights: Sequence[float] | None = None,
        learnable: bool = True,
        width_inputs: Sequence[bool] | None = None,
        attention_mode: str | None = None,
        num_peers: int = 0,
        peer_width: int = 0,
        out_channels: int | None = None,
    ) -> None:
        super().__init__()
        if attention_mode is not None and attention_mode not in ATTENTION_MODES:
            raise ValueError(f"attention_mode must be None or one of {ATTENTION_MODES}, got {attention_mode!r}")
        in_channels = [int(c) for c in in_channels]
        if not in_channels:
            raise ValueError("fusion needs at least one input")
        if width_inputs is None or not any(width_inputs):
            width_inputs = [True] * len(in_channels)
        self.num_inputs = len(in_channels)
        self.out_channels = (max(c for c, counts in zip(in_channels, width_inputs) if counts)
                             if out_channels is None else int(out_channels))

        if self.num_inputs > 1:
            if edge_weights is not None:
                if len(edge_weights) != self.num_inputs:
                    raise ValueError(f"{len(edge_weights)} edge weights for {self.num_inputs} inputs")
                logits = torch.tensor([weight_to_logit(w) for w in edge_weights], dtype=torch.float32)
            else:
                if not learnable:
                    raise ValueError("frozen connection weights need given edge weights")
                logits = nn.init.trunc_normal_(torch.empty(self.num_inputs), std=0.01, a=-0.02, b=0.02)
        else:
            logits = torch.zeros(0)
        if learnable and self.num_inputs > 1:
            self.edge_logits = nn.Parameter(logits)
        else:
            self.register_buffer("edge_logits", logits)

        # Channel groups in order of first appearance, as the reference sums them.
        group_widths: List[int] = []
        for c in in_channels:
            if c not in group_widths:
                group_widths.append(c)
        self.group_members: List[List[int]] = [
            [i for i, c in enumerate(in_channels) if c == width] for width in group_widths
        ]
        self.group_widths = group_widths
        self.projections = nn.ModuleList(
            [nn.Identity() if width == self.out_channels else spatial_conv(width, self.out_channels, 1)
             for width in group_widths]
        )
        self.attention_mode = attention_mode
        self.has_attention = attention_mode is not None
        # One per input, in input order (empty, and absent from the state dict, without attention).
        self.attentions = nn.ModuleList(
            [ConnectionAttention(c, mode=attention_mode, num_peers=num_peers, peer_width=peer_width)
             for c in in_channels] if attention_mode is not None else []
        )

    @property
    def learnable(self) -> bool:
        return isinstance(self.edge_logits, nn.Parameter)

    def connection_strengths(self) -> Tensor:
        """Post-sigmoid weight of each input (1.0 for a single input, which is never scaled)."""
        if self.num_inputs == 1:
            return torch.ones(1)
        return torch.sigmoid(self.edge_logits.detach().float())

    def extra_repr(self) -> str:
        return (f"inputs={self.num_inputs}, groups={self.group_widths}, out={self.out_channels}, "
                f"learnable={self.learnable}, attention={self.attention_mode}")

    def _attend(self, connections: List[Tensor], peers: Optional[Tensor]) -> List[Tensor]:
        attended: List[Tensor] = []
        for j, attention in enumerate(self.attentions):
            attended.append(attention(connections[j], peers))
        return attended

    def _pool(self, inputs: List[Tensor]) -> List[Tensor]:
        """Max-pool every input down to the smallest spatial size among them."""
        min_h = inputs[0].shape[-2]
        min_w = inputs[0].shape[-1]
        for x in inputs:
            min_h = min(min_h, x.shape[-2])
            min_w = min(min_w, x.shape[-1])
        pooled: List[Tensor] = []
        for x in inputs:
            if x.shape[-2] != min_h or x.shape[-1] != min_w:
                ratio = (x.shape[-2] + 1) // min_h
                x = max_pool_same(x, ratio, ratio)
            pooled.append(x)
        return pooled

    @torch.jit.unused
    @torch.no_grad()
    def input_contributions(self, inputs: List[Tensor], peers: Optional[Tensor] = None) -> Tensor:
        """The mean square of each input's term in the fused sum: the input after pooling, its sigmoid weight,
        its attention and its group's 1x1 projection, which is what it adds to the output. ``[num_inputs]``.

        The sigmoid weight alone cannot say how much of the fused tensor an input makes up: the input's own
        scale (its source's last BatchNorm) multiplies it, and training trades one for the other freely.
        """
        if self.num_inputs == 1:
            term = self._attend(inputs, peers)[0] if self.has_attention else inputs[0]
            return term.float().pow(2).mean().reshape(1)
        terms = self._terms(self._pool(inputs), torch.sigmoid(self.edge_logits), peers)
        # Stacked on the inputs' device: filling a host tensor would read each value back (a sync per input).
        energies: List[Optional[Tensor]] = [None] * self.num_inputs
        for g, projection in enumerate(self.projections):
            for i in self.group_members[g]:
                energies[i] = projection(terms[i]).float().pow(2).mean()
        stacked = [e for e in energies if e is not None]
        assert len(stacked) == self.num_inputs, "every input belongs to one projection group"
        return torch.stack(stacked)

    def forward(self, inputs: List[Tensor], peers: Optional[Tensor] = None) -> Tensor:
        if self.num_inputs == 1:
            if self.has_attention:
                return self._attend(inputs, peers)[0]
            return inputs[0]
        weights = torch.sigmoid(self.edge_logits)
        pooled = self._pool(inputs)
        if self.has_attention:
            return self._forward_attended(pooled, weights, peers)
        output: Optional[Tensor] = None
        for g, projection in enumerate(self.projections):
            members = self.group_members[g]
            # Accumulate in place into a fresh tensor: one allocation per group instead of one per input.
            first = members[0]
            group = pooled[first] * weights[first].to(pooled[first].dtype)
            for k in range(1, len(members)):
                i = members[k]
                group.addcmul_(pooled[i], weights[i].to(pooled[i].dtype))
            group = projection(group)
            if output is None:
                output = group
            else:
                output.add_(group)
        assert output is not None
        return output

    def _terms(self, pooled: List[Tensor], weights: Tensor, peers: Optional[Tensor]) -> List[Tensor]:
        """Each input's term before its group's sum: pooled input times its sigmoid weight, then its attention."""
        weighted = [x * weights[i].to(x.dtype) for i, x in enumerate(pooled)]
        return self._attend(weighted, peers) if self.has_attention else weighted

    def _forward_attended(self, pooled: List[Tensor], weights: Tensor, peers: Optional[Tensor]) -> Tensor:
        """Weight, attend each connection, then sum each channel group and project it (AssembleNet++ order)."""
        attended = self._terms(pooled, weights, peers)
        output: Optional[Tensor] = None
        for g, projection in enumerate(self.projections):
            members = self.group_members[g]
            group = attended[members[0]]
            for k in range(1, len(members)):
                group = group + attended[members[k]]
            group = projection(group)
            output = group if output is None else output + group
        assert output is not None
        return output
