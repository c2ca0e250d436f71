"""Per-node shapes, parameters and FLOPs of a model, for ``assemblenet describe``."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Callable, TypeVar

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from assemblenet.graph import BlockNode, StemNode
from assemblenet.models.assemblenet import AssembleNet

ModuleT = TypeVar("ModuleT", bound=nn.Module)


@dataclass(frozen=True)
class NodeSummary:
    """One graph node. ``output_shape`` is ``[C, T, H, W]`` (batch dropped)."""

    index: int
    kind: str  # 'rgb stem', 'flow stem', 'object stem' or 'L0'..'L3' ('L2 pruned': reaches no output, not built)
    output_shape: tuple[int, ...]  # [C, T, H, W]; () for a pruned node (its output is an empty tensor)
    params: int  # trainable parameters of the stem, or of the node's fusion + block group
    flops: int  # flop_counter FLOPs of those modules
    temporal_dilation: int = 1
    inputs: tuple[int, ...] = ()  # block nodes only
    filters: int | tuple[int, int, int] | None = None  # block nodes only (as built, i.e. after width scaling);
    # AssembleNet++lite nodes have an (expand, expand, out) triple
    attention_sources: tuple[int, ...] = ()  # peer attention: the peers its connections mix (block nodes only)
    strongest_source: tuple[int, float] | None = None  # peer attention: (peer, mean softmax weight)


@dataclass(frozen=True)
class EdgeSummary:
    source: int
    target: int
    weight: float  # post-sigmoid connection strength (1.0 for a single input)
    learnable: bool  # False for weights frozen from the graph
    scaled: bool  # False for the single input of a node, which passes through unscaled


@dataclass(frozen=True)
class ModelSummary:
    """What :func:`summarize_model` measured.

    Shapes: ``input_shape`` is ``[B, 3, T, H, W]``; node shapes are ``[C, T, H', W']``; ``flow_shape`` is the
    representation-flow output ``[2, T, H, W]`` (``None`` without a flow layer); ``logits_shape`` is
    ``[B, num_classes]``. FLOPs are for the whole batch.
    """

    input_shape: tuple[int, ...]
    nodes: list[NodeSummary]
    edges: list[EdgeSummary]
    flow_shape: tuple[int, ...] | None
    flow_params: int
    flow_flops: int
    head_params: int
    head_flops: int
    logits_shape: tuple[int, ...]
    total_params: int
    total_flops: int
    attention_mode: str | None = None  # AssembleNet++ connection attention: None, 'self' or 'peer'

    @property
    def total_gflops(self) -> float:
        return self.total_flops / 1e9


def summarize_model(model: AssembleNet, *, frames: int, size: int, batch: int = 1) -> ModelSummary:
    """Trace ``model`` on a ``[batch, 3, frames, size, size]`` clip and report every node.

    Shapes and FLOPs come from a copy of the model on the meta device, so no real computation runs and
    ``model`` is untouched (AssembleNet-50 at 32x224x224 takes about a second). FLOPs are what
    ``torch.utils.flop_counter`` counts: convolutions and matmuls, a multiply-add being 2; the
    representation-flow layer is elementwise arithmetic, which it does not count. Parameters are trainable
    ones (``requires_grad``). Connection weights are read from ``model`` itself.
    """
    if frames < 2 or size < 1 or batch < 1:
        raise ValueError(f"need frames >= 2, size >= 1 and batch >= 1, got frames={frames}, size={size}, batch={batch}")
    meta_model = _meta_copy(model).eval()
    clip = torch.empty(batch, 3, frames, size, size, device="meta")
    flow = torch.empty(batch, 2, frames, size, size, device="meta") if model.flow_mode == "precomputed" else None
    objects = (torch.empty(batch, model.num_object_classes, frames, size, size, device="meta")
               if model.has_object_stem else None)

    # One pass gives everything: the counter keys FLOPs by module path below the called root module, and
    # forward hooks record each stem's and node's output shape.
    shapes: dict[str, tuple[int, ...]] = {}

    def remember(name: str) -> Callable[[nn.Module, object, torch.Tensor], None]:
        def hook(_module: nn.Module, _inputs: object, output: torch.Tensor) -> None:
            shapes[name] = tuple(output.shape)
        return hook

    handles = [module.register_forward_hook(remember(f"stems.{i}")) for i, module in enumerate(meta_model.stems)]
    handles += [module.register_forward_hook(remember(f"nodes.{i}")) for i, module in enumerate(meta_model.nodes)]
    if meta_model.flow_layer is not None:
        handles.append(meta_model.flow_layer.register_forward_hook(remember("flow_layer")))
    try:
        with FlopCounterMode(display=False) as counter:
            logits = meta_model(clip, flow, objects)
    finally:
        for handle in handles:
            handle.remove()
    per_module = counter.get_flop_counts()
    root = type(meta_model).__name__

    def flops_of(path: str) -> int:
        return int(sum(per_module.get(f"{root}.{path}", {}).values()))

    num_stems = len(model.stems)
    strongest = model.strongest_attention_sources() if model.attention_mode == "peer" else {}
    nodes = []
    built = model.graph.scaled(model.width_multiplier) if model.width_multiplier != 1.0 else model.graph
    for index, node in enumerate(built.nodes):
        if isinstance(node, StemNode):
            path = f"stems.{index}"
            nodes.append(NodeSummary(index, f"{node.modality} stem", shapes[path][1:],
                                     _trainable_params(model.stems[index]), flops_of(path),
                                     temporal_dilation=node.temporal_dilation))
        else:
            assert isinstance(node, BlockNode)
            path = f"nodes.{index - num_stems}"
            module = model.nodes[index - num_stems]
            kind = f"L{node.level}" + (" pruned" if index in model.pruned_nodes else "")
            nodes.append(NodeSummary(index, kind, shapes[path][1:], _trainable_params(module),
                                     flops_of(path), temporal_dilation=node.temporal_dilation,
                                     inputs=node.inputs, filters=node.filters,
                                     attention_sources=tuple(model.node_peers[index - num_stems]),
                                     strongest_source=strongest.get(index)))
    edges = []
    fusions = {num_stems + n: node.fusion for n, node in model.built_nodes()}
    for (source, target), weight in model.connection_weights().items():
        fusion = fusions[target]
        edges.append(EdgeSummary(source, target, weight, learnable=fusion.learnable, scaled=fusion.num_inputs > 1))
    flow_params = _trainable_params(model.flow_layer) if model.flow_layer is not None else 0
    head_params = _trainable_params(model.head)
    return ModelSummary(
        input_shape=tuple(clip.shape),
        nodes=nodes,
        edges=edges,
        flow_shape=shapes["flow_layer"][1:] if "flow_layer" in shapes else None,
        flow_params=flow_params,
        flow_flops=flops_of("flow_layer"),
        head_params=head_params,
        head_flops=flops_of("head"),
        logits_shape=tuple(logits.shape),
        total_params=_trainable_params(model),
        total_flops=int(counter.get_total_flops()),
        attention_mode=model.attention_mode,
    )


def format_summary(summary: ModelSummary) -> str:
    """A readable table: one row per node, the flow layer and head, totals, then the edges."""
    lines = [f"input {list(summary.input_shape)} -> logits {list(summary.logits_shape)}", ""]
    lines.append(f"{'node':>4}  {'kind':<11} {'output [C, T, H, W]':<22} {'params':>12} {'GFLOPs':>9}  details")

    def row(index: str, kind: str, shape: tuple[int, ...], params: int, flops: int, detail: str = "") -> str:
        return (f"{index:>4}  {kind:<11} {str(list(shape)):<22} {params:>12,} {flops / 1e9:>9.2f}  "
                f"{detail}").rstrip()

    if summary.flow_shape is not None:
        lines.append(row("", "flow layer", summary.flow_shape, summary.flow_params, summary.flow_flops,
                         "TV-L1 from RGB (elementwise: not counted)"))
    for node in summary.nodes:
        if node.filters is None:
            detail = f"dilation={node.temporal_dilation}"
        else:
            filters = list(node.filters) if isinstance(node.filters, tuple) else node.filters
            detail = f"inputs={list(node.inputs)} filters={filters} dilation={node.temporal_dilation}"
        lines.append(row(str(node.index), node.kind, node.output_shape, node.params, node.flops, detail))
    lines.append(row("", "head", summary.logits_shape[1:], summary.head_params, summary.head_flops))
    lines.append(f"total trainable params {summary.total_params:,}   total GFLOPs {summary.total_gflops:.2f}"
                 "   (flop_counter: conv and matmul, multiply-add = 2)")
    lines.append("")
    lines.append("edges (source -> target: sigmoid weight)")
    for edge in summary.edges:
        note = "single input, unscaled" if not edge.scaled else ("learnable" if edge.learnable else "fixed")
        lines.append(f"  {edge.source:>3} -> {edge.target:<3} {edge.weight:.3f}  {note}")
    if summary.attention_mode == "self":
        lines += ["", "attention: self (each connection gated by its own frame average)"]
    elif summary.attention_mode == "peer":
        lines += ["", "attention: peer (node <- its attention sources; strongest = largest mean softmax weight)"]
        for node in summary.nodes:
            if node.filters is None:
                continue
            strongest = ""
            if node.strongest_source is not None:
                strongest = f"  strongest {node.strongest_source[0]} ({node.strongest_source[1]:.3f})"
            lines.append(f"  {node.index:>3} <- {list(node.attention_sources)}{strongest}")
    return "\n".join(lines)


def _trainable_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def _meta_copy(model: ModuleT) -> ModuleT:
    """``copy.deepcopy(model).to('meta')`` without first copying every weight in memory."""
    memo: dict[int, object] = {}
    for tensor in model.parameters():
        memo[id(tensor)] = nn.Parameter(torch.empty_like(tensor, device="meta"), requires_grad=tensor.requires_grad)
    for buffer in model.buffers():
        memo[id(buffer)] = torch.empty_like(buffer, device="meta")
    return copy.deepcopy(model, memo).to("meta")
