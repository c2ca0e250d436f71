"""Per-node shapes, parameters and FLOPs of a model, for ``assemblenet describe``."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import torch
from torch.utils.flop_counter import FlopCounterMode

from assemblenet.graph import BlockNode, StemNode
from assemblenet.models.assemblenet import AssembleNet


@dataclass(frozen=True)
class NodeSummary:
    index: int
    kind: str  # 'rgb stem', 'flow stem', 'object stem' or 'L0'..'L3'
    output_shape: tuple[int, int, int, int]  # [C, T, H, W]
    params: int
    flops: int
    inputs: tuple[int, ...] = ()
    filters: int | None = None
    temporal_dilation: int = 1


@dataclass(frozen=True)
class EdgeSummary:
    source: int
    target: int
    weight: float
    learnable: bool
    scaled: bool  # False for the single input of a node, which passes through unscaled


@dataclass(frozen=True)
class ModelSummary:
    input_shape: tuple[int, ...]
    nodes: list[NodeSummary]
    edges: list[EdgeSummary]
    head_params: int
    head_flops: int
    flow_flops: int
    total_params: int
    total_flops: int
    logits_shape: tuple[int, ...] = field(default=())

    @property
    def total_gflops(self) -> float:
        return self.total_flops / 1e9


def summarize_model(model: AssembleNet, *, frames: int, size: int, batch: int = 1) -> ModelSummary:
    """Trace ``model`` on a ``[batch, 3, frames, size, size]`` clip and report every node.

    Shapes and FLOPs come from a copy of the model on the meta device, so no real computation runs (a
    32x224x224 AssembleNet-50 takes about a second). FLOPs are what ``torch.utils.flop_counter`` counts:
    convolutions and matmuls, a multiply-add being 2. Parameters are trainable ones (``requires_grad``).
    """
    if frames < 2 or size < 1 or batch < 1:
        raise ValueError(f"need frames >= 2, size >= 1 and batch >= 1, got frames={frames}, size={size}, batch={batch}")
    meta_model = copy.deepcopy(model).to("meta").eval()
    clip = torch.empty(batch, 3, frames, size, size, device="meta")
    flow = torch.empty(batch, 2, frames, size, size, device="meta") if model.flow_mode == "precomputed" else None
    objects = torch.empty(batch, 151, frames, size, size, device="meta") if model.has_object_stem else None
    # The counter names modules only below a root module that is called, so count on model(...) and take
    # the node shapes from a second (free, meta) pass.
    with FlopCounterMode(display=False) as counter:
        logits = meta_model(clip, flow, objects)
    outputs = meta_model.forward_nodes(clip, flow, objects)
    per_module = counter.get_flop_counts()
    root = type(meta_model).__name__

    def flops_of(path: str) -> int:
        return int(sum(per_module.get(f"{root}.{path}", {}).values()))

    def params_of(module: torch.nn.Module) -> int:
        return sum(p.numel() for p in module.parameters() if p.requires_grad)

    graph = model.graph
    num_stems = len(model.stems)
    nodes = []
    for index, node in enumerate(graph.nodes):
        shape = tuple(outputs[index].shape[1:])
        if isinstance(node, StemNode):
            module, path = model.stems[index], f"stems.{index}"
            nodes.append(NodeSummary(index, f"{node.modality} stem", shape, params_of(module), flops_of(path),
                                     temporal_dilation=node.temporal_dilation))
        else:
            assert isinstance(node, BlockNode)
            module, path = model.nodes[index - num_stems], f"nodes.{index - num_stems}"
            nodes.append(NodeSummary(index, f"L{node.level}", shape, params_of(module), flops_of(path),
                                     inputs=node.inputs, filters=node.filters,
                                     temporal_dilation=node.temporal_dilation))
    edges = []
    weights = model.connection_weights()
    for (source, target), weight in weights.items():
        fusion = model.nodes[target - num_stems].fusion
        edges.append(EdgeSummary(source, target, weight, learnable=fusion.learnable,
                                 scaled=fusion.num_inputs > 1))
    flow_params = params_of(model.flow_layer) if model.flow_layer is not None else 0
    return ModelSummary(
        input_shape=tuple(clip.shape),
        nodes=nodes,
        edges=edges,
        head_params=params_of(model.head),
        head_flops=flops_of("head"),
        flow_flops=flops_of("flow_layer"),
        total_params=sum(n.params for n in nodes) + params_of(model.head) + flow_params,
        total_flops=int(counter.get_total_flops()),
        logits_shape=tuple(logits.shape),
    )


def format_summary(summary: ModelSummary) -> str:
    """A readable table: one row per node, then totals and edges."""
    lines = [f"input {list(summary.input_shape)} -> logits {list(summary.logits_shape)}", ""]
    lines.append(f"{'node':>4}  {'kind':<11} {'output [C, T, H, W]':<22} {'params':>12} {'GFLOPs':>9}  inputs")
    for row in summary.nodes:
        detail = f"{list(row.inputs)}" if row.inputs else ""
        if row.filters is not None:
            detail += f"  filters={row.filters} dilation={row.temporal_dilation}"
        elif row.kind.startswith("rgb"):
            detail = f"dilation={row.temporal_dilation}"
        lines.append(f"{row.index:>4}  {row.kind:<11} {str(list(row.output_shape)):<22} {row.params:>12,} "
                     f"{row.flops / 1e9:>9.2f}  {detail}".rstrip())
    lines.append(f"{'':>4}  {'head':<11} {str(list(summary.logits_shape[1:])):<22} {summary.head_params:>12,} "
                 f"{summary.head_flops / 1e9:>9.2f}")
    lines.append(f"total trainable params {summary.total_params:,}   total GFLOPs {summary.total_gflops:.2f}"
                 "   (flop_counter: conv and matmul, multiply-add = 2)")
    lines.append("")
    lines.append("edges (source -> target: sigmoid weight)")
    for edge in summary.edges:
        note = "single input, unscaled" if not edge.scaled else ("learnable" if edge.learnable else "fixed")
        lines.append(f"  {edge.source:>3} -> {edge.target:<3} {edge.weight:.3f}  {note}")
    return "\n".join(lines)
