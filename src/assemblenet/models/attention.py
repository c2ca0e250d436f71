"""AssembleNet++ channel attention on the connections of a node (peer and self attention).

Both act per frame on any ``[B, C, T, H, W]`` stream (the 4-D bottleneck blocks' and, later, the lite model's
3-D blocks alike): a vector per frame is mapped by a dense layer to the connection's channel count, squashed by a
sigmoid and multiplies that connection's channels, frame by frame.

- ``self``: the vector is the connection's own spatial average.
- ``peer``: the node owns one dense layer per candidate peer (every node at a lower level, stems included), from
  the peer's spatial average to ``L`` channels (the widest peer). Each connection mixes these peer vectors with its
  own trainable softmax weights, which is what the one-shot attention search reads off.

Semantics follow the authors' TF1 ``assemblenet_plus.py`` (dense kernels N(0, 0.01), zero biases, softmax logits
truncated normal with std 0.01).
"""

from __future__ import annotations

from typing import List, Literal, Optional, Sequence

import torch
from torch import Tensor, nn

AttentionMode = Literal["self", "peer"]
ATTENTION_MODES = ("self", "peer")


def _dense(in_features: int, out_features: int) -> nn.Linear:
    layer = nn.Linear(in_features, out_features)
    nn.init.normal_(layer.weight, std=0.01)
    nn.init.zeros_(layer.bias)
    return layer


def frame_average(x: Tensor) -> Tensor:
    """Spatial average of every frame: ``[B, C, T, H, W]`` -> ``[B, T, C]``.

    The model's activations are channels-last; reducing over H and W of such a tensor directly takes a slow
    strided kernel (20x slower at 256x32x56x56, which made peer attention half again as slow as the network).
    As a ``[B, T, H*W, C]`` view the same mean is a contiguous reduction."""
    if x.dim() == 5 and x.is_contiguous(memory_format=torch.channels_last_3d):
        return x.permute(0, 2, 3, 4, 1).flatten(2, 3).mean(dim=2)
    return x.mean(dim=(-2, -1)).transpose(1, 2)


class PeerFeatures(nn.Module):
    """The per-node peer vectors: one dense layer per candidate peer, from its frame average to ``width``.

    Shapes: a list of ``[B, C_k, T, H_k, W_k]`` (one per peer) -> ``[P, B, T, width]``.
    """

    def __init__(self, peer_channels: Sequence[int], width: int) -> None:
        super().__init__()
        if not peer_channels:
            raise ValueError("peer attention needs at least one peer")
        self.width = int(width)
        self.projections = nn.ModuleList([_dense(int(c), self.width) for c in peer_channels])

    def forward(self, peers: List[Tensor]) -> Tensor:
        vectors: List[Tensor] = []
        for k, projection in enumerate(self.projections):
            peer = peers[k]
            weight = projection.weight
            assert isinstance(weight, Tensor)  # a Linear layer's: for the type checker (and TorchScript) alike
            vectors.append(projection(frame_average(peer).to(weight.dtype)))
        return torch.stack(vectors)


class ConnectionAttention(nn.Module):
    """Channel attention of one connection.

    Args:
        channels: the connection's channel count (the dense layer's output).
        mode: ``"self"`` or ``"peer"``.
        num_peers, peer_width: peer mode only: how many peer vectors, and their width ``L``.

    Shapes: ``x [B, C, T, H, W]`` and, in peer mode, ``peers [P, B, T, L]`` -> ``[B, C, T, H, W]``.
    """

    def __init__(self, channels: int, *, mode: str, num_peers: int = 0, peer_width: int = 0) -> None:
        super().__init__()
        if mode not in ATTENTION_MODES:
            raise ValueError(f"attention mode must be one of {ATTENTION_MODES}, got {mode!r}")
        self.mode = mode
        if mode == "peer":
            if num_peers < 1 or peer_width < 1:
                raise ValueError("peer attention needs at least one peer and a positive peer width")
            # Softmax logits over the peers: the connection's choice of attention source.
            self.peer_logits = nn.Parameter(
                nn.init.trunc_normal_(torch.empty(num_peers), std=0.01, a=-0.02, b=0.02)
            )
            self.dense = _dense(peer_width, channels)
        else:
            self.register_parameter("peer_logits", None)
            self.dense = _dense(channels, channels)

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}"

    def peer_weights(self) -> Tensor:
        """Softmax weight of each peer (peer mode), detached."""
        assert self.peer_logits is not None
        return torch.softmax(self.peer_logits.detach().float(), dim=0)

    def forward(self, x: Tensor, peers: Optional[Tensor] = None) -> Tensor:
        # A None check on the attribute (not the mode string): TorchScript then compiles only the live branch.
        if self.peer_logits is not None:
            assert peers is not None
            mix = torch.softmax(self.peer_logits, dim=0).to(peers.dtype)
            vector = torch.tensordot(mix, peers, dims=1)  # [B, T, L]
        else:
            vector = frame_average(x)
        gate = torch.sigmoid(self.dense(vector.to(self.dense.weight.dtype)))  # [B, T, C]
        return x * gate.transpose(1, 2).unsqueeze(-1).unsqueeze(-1).to(x.dtype)
