"""The AssembleNet model, built from any valid :class:`~assemblenet.graph.AssembleNetGraph`."""

from __future__ import annotations

import warnings
from typing import Any, Dict, List, Literal, Optional, Sequence, Tuple

import torch
from torch import Tensor, nn

from assemblenet.errors import GraphError
from assemblenet.graph import AssembleNetGraph, BlockNode, StemNode, StemType
from assemblenet.graph.spec import BLOCKS_PER_DEPTH, DEFAULT_DEPTH, NUM_OBJECT_CLASSES
from assemblenet.models.attention import ATTENTION_MODES, ConnectionAttention, PeerFeatures
from assemblenet.models.blocks import INTERMEDIATE_CHANNELS, BlockGroup
from assemblenet.models.fusion import SigmoidFusion
from assemblenet.models.heads import AssembleNetHead
from assemblenet.models.layers import TemporalConvImpl, set_temporal_conv
from assemblenet.models.rep_flow import RepresentationFlow
from assemblenet.models.stems import FlowStem, ObjectStem, RGBStem

FlowMode = Literal["rgb", "precomputed"]
AttentionMode = Optional[Literal["self", "peer"]]


class AssembleNode(nn.Module):
    """One block node: fusion of its inputs followed by its block group.

    With peer attention the node also owns ``peer_features``, the dense layers from each peer's frame average
    that all its connections share; ``peers`` are then those peers' outputs, in the order of its attention
    sources.
    """

    def __init__(self, fusion: SigmoidFusion, blocks: nn.Module, peer_features: Optional[PeerFeatures] = None) -> None:
        super().__init__()
        self.fusion = fusion
        self.blocks = blocks
        self.peer_features = peer_features

    def forward(self, inputs: List[Tensor], peers: Optional[List[Tensor]] = None) -> Tensor:
        peer_vectors: Optional[Tensor] = None
        if self.peer_features is not None:
            assert peers is not None
            peer_vectors = self.peer_features(peers)
        output: Tensor = self.blocks(self.fusion(inputs, peer_vectors))
        return output


class PrunedNode(nn.Module):
    """Stands in for a node whose output reaches no output (see ``AssembleNetGraph.unreachable_nodes``): no
    parameters, no computation. It keeps the graph's indices (and so state-dict names) of the other nodes."""

    def forward(self, inputs: List[Tensor], peers: Optional[List[Tensor]] = None) -> Tensor:
        return inputs[0].new_zeros(0)


class PrunedStem(nn.Module):
    """A stem that feeds only pruned nodes: like :class:`PrunedNode`."""

    def forward(self, x: Tensor) -> Tensor:
        return x.new_zeros(0)


class AssembleNet(nn.Module):
    """A multi-stream AssembleNet.

    Inputs:
        x: RGB clip ``[B, 3, T, H, W]``, float in [0, 1].
        flow: optical flow ``[B, 2, T, H, W]`` in pixels; required when ``flow_mode='precomputed'`` and the
            graph has flow stems, ignored otherwise.
        objects: per-class object maps ``[B, K, T, H, W]`` (K = ``num_object_classes``, 151 for ADE-20k: class
            scores or one-hot maps), or integer label ids ``[B, 1, T, H, W]`` in 0..K-1; required when the graph
            has object stems.

    Output: logits ``[B, num_classes]``. :meth:`forward_nodes` returns every node's output instead.

    Nodes whose output reaches no output node (through inputs, or as a peer-attention source in peer mode) are
    pruned at build time, with a warning naming them: they get no layers and their ``forward_nodes`` entry is an
    empty tensor. The official ``asnp50`` node 9 is one without peer attention.

    Build it with :func:`build_assemblenet` or :func:`assemblenet.models.create_model`.
    """

    # A real type, not a postponed string, so TorchScript can type the attribute even when every list is empty.
    __annotations__ = {"node_peers": List[List[int]], "pruned_nodes": List[int]}

    def __init__(
        self,
        graph: AssembleNetGraph,
        *,
        num_classes: int,
        num_blocks: Sequence[int],
        stem_filters: int,
        intermediate_channels: Sequence[int],
        width_multiplier: float = 1.0,
        learnable_weights: Optional[bool] = None,
        max_pool_predictions: bool = False,
        dropout: float = 0.0,
        flow_mode: FlowMode = "rgb",
        flow_layer: Optional[RepresentationFlow] = None,
        attention_mode: AttentionMode = None,
        num_object_classes: int = NUM_OBJECT_CLASSES,
    ) -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes must be positive, got {num_classes}")
        if attention_mode is not None and attention_mode not in ATTENTION_MODES:
            raise ValueError(f"attention_mode must be None, 'self' or 'peer', got {attention_mode!r}")
        if num_object_classes < 1:
            raise ValueError(f"num_object_classes must be positive, got {num_object_classes}")
        if flow_mode not in ("rgb", "precomputed"):
            raise ValueError(f"flow_mode must be 'rgb' or 'precomputed', got {flow_mode!r}")
        # The graph as given; node filters are scaled by width_multiplier when the layers are built.
        self.graph = graph
        self.width_multiplier = float(width_multiplier)
        built_graph = graph.scaled(width_multiplier) if width_multiplier != 1.0 else graph
        self.num_classes = int(num_classes)
        self.num_blocks = tuple(int(n) for n in num_blocks)
        self.flow_mode = flow_mode
        self.attention_mode = attention_mode
        self.num_object_classes = int(num_object_classes)
        self.stem_kinds: List[int] = []
        self.node_inputs: List[List[int]] = []
        self.node_peers = []  # peer-attention sources of each block node (peer mode only)
        self.output_nodes: List[int] = built_graph.output_indices
        unreachable = set(built_graph.unreachable_nodes(through_attention=attention_mode == "peer"))
        if unreachable:
            warnings.warn(f"graph {graph.name or ''}: node(s) {sorted(unreachable)} reach no output "
                          f"(attention mode {attention_mode}); they are pruned: no layers, not computed",
                          stacklevel=3)
        self.pruned_nodes: List[int] = sorted(unreachable)

        channels: List[int] = []
        is_object: List[bool] = []
        stems: List[nn.Module] = []
        nodes: List[nn.Module] = []
        for index, node in enumerate(built_graph.nodes):
            if isinstance(node, StemNode):
                if node.stem_type == StemType.OBJECT:
                    stems.append(ObjectStem(self.num_object_classes))
                    channels.append(self.num_object_classes)
                else:
                    stems.append(self._make_stem(node, stem_filters))
                    channels.append(stem_filters)
                self.stem_kinds.append(int(node.stem_type))
                is_object.append(node.stem_type == StemType.OBJECT)
                if index in unreachable:
                    stems[-1] = PrunedStem()  # built first all the same: later layers draw the same init
                continue
            assert isinstance(node, BlockNode)
            in_channels = [channels[i] for i in node.inputs]
            learnable = node.edge_weights is None if learnable_weights is None else learnable_weights
            if not learnable and node.edge_weights is None and len(node.inputs) > 1:
                raise GraphError(f"node {index}: frozen connection weights requested but the graph gives none")
            peers = built_graph.attention_sources(index) if attention_mode == "peer" else []
            if attention_mode == "peer" and not peers:
                raise GraphError(f"node {index}: peer attention needs at least one attention source")
            # The peer vectors are as wide as the widest peer (object stems count here, as in the original).
            peer_width = max((channels[k] for k in peers), default=0)
            fusion = SigmoidFusion(
                in_channels, edge_weights=node.edge_weights, learnable=learnable,
                width_inputs=[not is_object[i] for i in node.inputs],
                attention_mode=attention_mode, num_peers=len(peers), peer_width=peer_width,
                out_channels=self._fusion_width(built_graph, index, in_channels),
            )
            blocks = self._make_block_group(node, fusion.out_channels, intermediate_channels)
            peer_features = PeerFeatures([channels[k] for k in peers], peer_width) if peers else None
            nodes.append(AssembleNode(fusion, blocks, peer_features))
            if index in unreachable:
                nodes[-1], peers = PrunedNode(), []  # built first all the same: later layers draw the same init
            self.node_inputs.append(list(node.inputs))
            self.node_peers.append(list(peers))
            channels.append(node.out_channels)
            is_object.append(False)
        self.stems = nn.ModuleList(stems)
        self.nodes = nn.ModuleList(nodes)
        self.node_channels = channels
        live_stem_kinds = [kind for k, kind in enumerate(self.stem_kinds) if k not in unreachable]
        self.has_flow_stem = int(StemType.FLOW) in live_stem_kinds
        self.has_object_stem = int(StemType.OBJECT) in live_stem_kinds
        self.flow_layer = flow_layer if (self.has_flow_stem and flow_mode == "rgb") else None
        if self.has_flow_stem and flow_mode == "rgb" and flow_layer is None:
            self.flow_layer = RepresentationFlow()
        self.head = self._make_head(
            [channels[i] for i in self.output_nodes], num_classes,
            max_pool_predictions=max_pool_predictions, dropout=dropout,
        )

    # ------------------------------------------------------------------ layer factories
    # AssembleNet++lite (models/lite.py) overrides these; everything else (fusion, attention, forward) is shared.
    def _make_stem(self, node: StemNode, stem_filters: int) -> nn.Module:
        """The RGB or flow stem of ``node`` (object stems are built by the caller)."""
        if node.stem_type == StemType.RGB:
            return RGBStem(stem_filters, temporal_dilation=node.temporal_dilation)
        return FlowStem(stem_filters)

    def _fusion_width(self, graph: AssembleNetGraph, index: int, in_channels: List[int]) -> Optional[int]:
        """The output width of node ``index``'s fusion; ``None``: the widest input that is not an object stem."""
        return None

    def _make_block_group(self, node: BlockNode, in_channels: int, intermediate_channels: Sequence[int]) -> nn.Module:
        assert isinstance(node.filters, int)  # build_assemblenet refuses filter triples (AssembleNet++lite's)
        return BlockGroup(
            in_channels, int(node.filters), num_blocks=self.num_blocks[node.level],
            intermediate_channels=int(intermediate_channels[node.level]),
            temporal_dilation=node.temporal_dilation, stride=node.spatial_stride,
        )

    def _make_head(self, in_channels: List[int], num_classes: int, *, max_pool_predictions: bool,
                   dropout: float) -> nn.Module:
        return AssembleNetHead(in_channels, num_classes, max_pool_predictions=max_pool_predictions, dropout=dropout)

    @property
    def depth(self) -> int:
        """The ResNet-style depth name: three convs per bottleneck block, plus the stem and the classifier."""
        return 3 * sum(self.num_blocks) + 2

    # ------------------------------------------------------------------ forward
    def compute_flow(self, x: Tensor, flow: Optional[Tensor] = None) -> Optional[Tensor]:
        """The flow the flow stems read: computed from ``x`` or the given precomputed flow."""
        if not self.has_flow_stem:
            return None
        if self.flow_layer is not None:
            computed: Tensor = self.flow_layer(x)
            return computed
        if flow is None:
            raise ValueError("this model takes precomputed flow: call model(x, flow) with flow [B, 2, T, H, W]")
        return flow

    def forward_nodes(
        self, x: Tensor, flow: Optional[Tensor] = None, objects: Optional[Tensor] = None
    ) -> List[Tensor]:
        """Every graph node's output in graph order (stems included), each ``[B, C, T, H', W']``."""
        if x.dim() != 5:
            raise ValueError(f"expected a clip batch [B, C, T, H, W], got shape {list(x.shape)}")
        flow_input = self.compute_flow(x, flow)
        x = x.contiguous(memory_format=torch.channels_last_3d)
        if flow_input is not None:
            flow_input = flow_input.to(x.dtype).contiguous(memory_format=torch.channels_last_3d)
        outputs: List[Tensor] = []
        for k, stem in enumerate(self.stems):
            kind = self.stem_kinds[k]
            if k in self.pruned_nodes:
                outputs.append(x.new_zeros(0))
            elif kind == -1:  # RGB (literals: TorchScript cannot read module globals)
                outputs.append(stem(x))
            elif kind == -2:  # optical flow
                assert flow_input is not None
                outputs.append(stem(flow_input))
            else:
                if objects is None:
                    raise ValueError("this graph has an object stem: pass objects [B, num_object_classes, T, H, W]")
                expected_channels = self.num_object_classes if objects.is_floating_point() else 1
                if objects.dim() != 5 or objects.shape[1] != expected_channels:
                    raise ValueError("objects must be float maps [B, num_object_classes, T, H, W] or integer label "
                                     "ids [B, 1, T, H, W]; got shape " + str(list(objects.shape)) + " for "
                                     + str(self.num_object_classes) + " object classes")
                if objects.is_floating_point():
                    objects = objects.to(x.dtype).contiguous(memory_format=torch.channels_last_3d)
                outputs.append(stem(objects).to(x.dtype))
        for n, node in enumerate(self.nodes):
            outputs.append(node([outputs[i] for i in self.node_inputs[n]], [outputs[i] for i in self.node_peers[n]]))
        return outputs

    def forward(self, x: Tensor, flow: Optional[Tensor] = None, objects: Optional[Tensor] = None) -> Tensor:
        outputs = self.forward_nodes(x, flow, objects)
        logits: Tensor = self.head([outputs[i] for i in self.output_nodes])
        return logits

    # ------------------------------------------------------------------ connection weights
    @torch.jit.unused
    def built_nodes(self) -> List[Tuple[int, AssembleNode]]:
        """The block nodes that have layers (every one but the pruned), each with its position ``n`` in
        :attr:`nodes` (its graph index less the number of stems)."""
        first_block = len(self.stems)
        built: List[Tuple[int, AssembleNode]] = []
        for n, node in enumerate(self.nodes):
            if first_block + n in self.pruned_nodes:
                continue
            assert isinstance(node, AssembleNode), f"node {first_block + n} is {type(node).__name__}"
            built.append((n, node))
        return built

    @torch.jit.unused
    def connection_weights(self) -> Dict[Tuple[int, int], float]:
        """Current post-sigmoid strength of every edge ``(source, target)``, in graph terms.

        Edges into single-input nodes are never scaled and report 1.0.
        """
        strengths: Dict[Tuple[int, int], float] = {}
        first_block = len(self.stems)
        for n, node in self.built_nodes():
            target = first_block + n
            values = node.fusion.connection_strengths().tolist()
            for source, value in zip(self.node_inputs[n], values):
                strengths[(source, target)] = float(value)
        return strengths

    @torch.jit.unused
    @torch.no_grad()
    def connection_contributions(
        self, x: Tensor, flow: Optional[Tensor] = None, objects: Optional[Tensor] = None
    ) -> Dict[Tuple[int, int], float]:
        """For one batch, the mean square of what each edge ``(source, target)`` adds to its target's fused input
        (see :meth:`SigmoidFusion.input_contributions`), in graph terms. Runs the nodes in the model's current
        mode (call ``eval()`` first to use the running BatchNorm statistics).

        Unlike :meth:`connection_weights` this includes the scale of the source's output, which the sigmoid
        weight is free to trade against; its square root, compared between a node's inputs, says how much of
        the node's input each edge makes up.
        """
        first_block = len(self.stems)
        per_node: List[Tuple[int, Tensor]] = []
        handles = []
        for n, node in self.built_nodes():

            def record(module: SigmoidFusion, args: Any, _output: Any, n: int = n) -> None:
                per_node.append((n, module.input_contributions(*args)))
            handles.append(node.fusion.register_forward_hook(record))
        try:
            self.forward_nodes(x, flow, objects)
        finally:
            for handle in handles:
                handle.remove()
        # Kept on the device until here: one transfer for the whole batch, not one per node.
        values = iter(torch.cat([v for _, v in per_node]).tolist() if per_node else [])
        energies: Dict[Tuple[int, int], float] = {}
        for n, _ in per_node:
            for source in self.node_inputs[n]:
                energies[(source, first_block + n)] = float(next(values))
        return energies

    @torch.jit.unused
    def attention_weights(self) -> Dict[Tuple[int, int], Dict[int, float]]:
        """Peer mode: for every connection ``(source, target)``, the softmax weight of each attention source
        (peer node -> weight). Empty without peer attention."""
        result: Dict[Tuple[int, int], Dict[int, float]] = {}
        if self.attention_mode != "peer":
            return result
        first_block = len(self.stems)
        for n, node in self.built_nodes():
            peers = self.node_peers[n]
            for source, attention in zip(self.node_inputs[n], node.fusion.attentions):
                assert isinstance(attention, ConnectionAttention)
                weights = attention.peer_weights().tolist()
                result[(source, first_block + n)] = {peer: float(w) for peer, w in zip(peers, weights)}
        return result

    @torch.jit.unused
    def strongest_attention_sources(self) -> Dict[int, Tuple[int, float]]:
        """Peer mode: each block node's strongest attention source and its softmax weight averaged over the
        node's connections (what the paper draws as the attention connection)."""
        per_node: Dict[int, Dict[int, List[float]]] = {}
        for (_, target), weights in self.attention_weights().items():
            for peer, w in weights.items():
                per_node.setdefault(target, {}).setdefault(peer, []).append(w)
        strongest: Dict[int, Tuple[int, float]] = {}
        for target, by_peer in per_node.items():
            means = {peer: sum(ws) / len(ws) for peer, ws in by_peer.items()}
            peer = max(means, key=lambda k: (means[k], -k))
            strongest[target] = (peer, means[peer])
        return strongest

    @torch.jit.unused
    def graph_with_learned_weights(self) -> AssembleNetGraph:
        """The model's graph (as given, before width scaling) carrying its current connection strengths on
        nodes with several inputs (a pruned node keeps the weights the graph gave it)."""
        strengths = self.connection_weights()
        per_node: List[Optional[List[float]]] = []
        for index, node in enumerate(self.graph.nodes):
            if not isinstance(node, BlockNode):  # a stem, pruned or not, carries no weights
                per_node.append(None)
            elif index in self.pruned_nodes:
                per_node.append(None if node.edge_weights is None else list(node.edge_weights))
            elif len(node.inputs) > 1:
                per_node.append([strengths[(source, index)] for source in node.inputs])
            else:
                per_node.append(None)
        return self.graph.with_edge_weights(per_node)


def build_assemblenet(
    *,
    graph: AssembleNetGraph,
    num_classes: int,
    depth: int = DEFAULT_DEPTH,
    width_multiplier: float = 1.0,
    stem_filters: Optional[int] = None,
    intermediate_channels: Optional[Sequence[int]] = None,
    learnable_weights: Optional[bool] = None,
    max_pool_predictions: bool = False,
    dropout: float = 0.0,
    flow_mode: FlowMode = "rgb",
    flow_normalization: Literal["clip", "batch"] = "clip",
    flow_iterations: int = 40,
    flow_trainable: bool = False,
    attention_mode: AttentionMode = None,
    num_object_classes: int = NUM_OBJECT_CLASSES,
    temporal_conv: TemporalConvImpl = "conv3d",
) -> AssembleNet:
    """Build an AssembleNet from a graph.

    Args:
        graph: the architecture (see :mod:`assemblenet.graph`).
        num_classes: logits per clip.
        depth: one of :data:`~assemblenet.graph.SUPPORTED_DEPTHS`; sets the blocks per level.
        width_multiplier: scales node filters, the stem width and the fixed 3x3 widths, e.g. 0.125 for a
            tiny CPU proxy. 1.0 is the published model.
        stem_filters: stem width; default ``round(128 * width_multiplier) // number_of_stems``.
        intermediate_channels: 3x3 widths per level; default ``(64, 128, 256, 512) * width_multiplier``.
        learnable_weights: ``None`` learns the connections of nodes whose graph carries no weights and freezes
            the given ones; ``True`` learns all (starting from given weights where present); ``False`` freezes
            all (every multi-input node then needs weights).
        max_pool_predictions: per-frame logits with softmax-over-time pooling.
        dropout: dropout before the classifier.
        flow_mode: ``'rgb'`` computes representation flow from the clip; ``'precomputed'`` takes ``flow``.
        flow_normalization: ``'clip'`` (per clip) or ``'batch'`` (the TF behaviour) min/max normalisation.
        flow_iterations, flow_trainable: representation-flow settings.
        attention_mode: AssembleNet++ connection attention: ``None`` (AssembleNet, no attention), ``"self"`` or
            ``"peer"`` (every connection is conditioned on a learned softmax mix of the node's attention
            sources: by default every stem and every node of a lower level).
        num_object_classes: channels of the object maps an object stem (``-3``) reads (151: ADE-20k). The
            object stem counts among the stems for the stem width, but never sets a fusion's width.
        temporal_conv: how the temporal convolutions compute: ``"conv3d"`` (default, the reference numbers) or
            ``"conv2d"`` (faster on a CPU at small sizes, equal to 1e-6 relative, not bit-identical; see
            :class:`~assemblenet.models.layers.TemporalConv`).

    Shapes: ``model(x [B, 3, T, H, W]) -> [B, num_classes]``; node outputs keep all T frames; a level-L node
    at stride 2 halves H and W (the stems already divide them by 4).
    """
    if graph.uses_filter_triples:
        raise GraphError("this graph has AssembleNet++lite filter triples: build it with "
                         "assemblenet.models.build_assemblenet_lite, or let assemblenet.models.build_from_graph "
                         "choose the builder")
    if depth not in BLOCKS_PER_DEPTH:
        raise ValueError(f"depth {depth} is not supported; expected one of {sorted(BLOCKS_PER_DEPTH)}")
    if not width_multiplier > 0:
        raise ValueError(f"width_multiplier must be positive, got {width_multiplier}")
    num_stems = len(graph.stem_indices)
    if stem_filters is None:
        stem_filters = max(1, int(round(128 * width_multiplier)) // num_stems)
    if intermediate_channels is None:
        intermediate_channels = [max(1, int(round(c * width_multiplier))) for c in INTERMEDIATE_CHANNELS]
    if len(intermediate_channels) != 4:
        raise ValueError(f"intermediate_channels needs 4 values, got {list(intermediate_channels)}")
    flow_layer = None
    if flow_mode == "rgb" and graph.stems_of(StemType.FLOW):
        flow_layer = RepresentationFlow(
            num_iterations=flow_iterations, normalization=flow_normalization, trainable=flow_trainable
        )
    model = AssembleNet(
        graph, num_classes=num_classes, num_blocks=BLOCKS_PER_DEPTH[depth], stem_filters=stem_filters,
        intermediate_channels=intermediate_channels, width_multiplier=width_multiplier,
        learnable_weights=learnable_weights,
        max_pool_predictions=max_pool_predictions, dropout=dropout, flow_mode=flow_mode, flow_layer=flow_layer,
        attention_mode=attention_mode, num_object_classes=num_object_classes,
    )
    set_temporal_conv(model, temporal_conv)
    return model
