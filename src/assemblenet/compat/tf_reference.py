"""Load variables exported from the authors' TensorFlow AssembleNet / AssembleNet++ code into our model.

A reference is an ``.npz`` of TF variables keyed by TF name plus a JSON manifest whose ``variables`` give each
name a ``role`` (``node{i}.stem.conv7x7_s2``, ``node{i}.fusion.agg_weights``, ``node{i}.block{s}.b_bn``,
``head.dense``, ``rep_flow.*``...) and whose ``config`` describes the model. :func:`build_model` builds the
described model, loads every variable by role, checks that nothing is left over on either side, and returns
the model in eval mode. It works for any graph and configuration of that schema, and for both kinds of
reference: the TF Model Garden AssembleNet (``tf_assemblenet``) and the original TF1 AssembleNet++
(``gr_assemblenet_plus``: ``attention_mode``, ``num_object_classes`` and the attention roles
``node{i}.attention.peer_dense_from_node{k}``, ``node{i}.attention.connection{C}_{idx}.{dense|peer_attention_weights}``
and ``node{i}.attention.single.*``). In self-attention mode the original code creates per-peer dense layers it
never reads; they are accepted and ignored.

TF layouts: Conv2D kernels are ``[kh, kw, in, out]``; the temporal conv is a Conv2D kernel ``[k, 1, in, out]``
applied over ``[B, T, H*W, C]``; Dense kernels are ``[in, out]``.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
from torch import nn

from assemblenet.errors import AssembleNetError
from assemblenet.graph import AssembleNetGraph
from assemblenet.graph.spec import BLOCKS_PER_DEPTH, NUM_OBJECT_CLASSES
from assemblenet.models.assemblenet import AssembleNet, AssembleNode, build_assemblenet
from assemblenet.models.fusion import SigmoidFusion

_BN_FIELDS = {"gamma": "weight", "beta": "bias", "moving_mean": "running_mean", "moving_variance": "running_var"}
_ROLE = re.compile(r"^node(?P<node>\d+)\.(?P<part>stem|fusion|attention|block(?P<step>\d+))\.(?P<what>.+)$")
_PEER_DENSE = re.compile(r"^peer_dense_from_node(?P<peer>\d+)$")
_CONNECTION = re.compile(
    r"^(?:connection(?P<width>\d+)_(?P<rank>\d+)|single)\.(?P<param>dense|peer_attention_weights)$")
_STANDARD_FLOW_KERNELS = {
    "img_grad_x": [-0.5, 0.0, 0.5], "img_grad_y": [-0.5, 0.0, 0.5],
    "f_grad_x": [-1.0, 1.0], "f_grad_y": [-1.0, 1.0], "f_grad_x2": [-1.0, 1.0], "f_grad_y2": [-1.0, 1.0],
}


class ReferenceFormatError(AssembleNetError):
    """A reference file that does not follow the manifest schema."""


def load_manifest(manifest_path: str | Path) -> dict[str, Any]:
    path = Path(manifest_path)
    if not path.is_file():
        raise FileNotFoundError(f"manifest not found: {path}")
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ReferenceFormatError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    for key in ("config", "variables"):
        if key not in manifest:
            raise ReferenceFormatError(f"{path}: missing '{key}'")
    return manifest


def graph_from_config(config: Mapping[str, Any]) -> AssembleNetGraph:
    structure = config["model_structure"]
    weights = config.get("model_edge_weights")
    # The TF1 FLAGS hold these as JSON strings ('[]' meaning learnable weights).
    if isinstance(structure, str):
        structure = json.loads(structure)
    if isinstance(weights, str):
        weights = json.loads(weights)
    # The authors' structures may hold nodes that feed nothing (asnp50's node 9); TF computes them anyway.
    return AssembleNetGraph.from_official(structure, weights or None, name=config.get("name"), allow_dead_nodes=True)


def build_model(npz_path: str | Path, manifest_path: str | Path) -> AssembleNet:
    """Build the model a manifest describes and load the TF variables from ``npz_path``; returns eval mode."""
    manifest = load_manifest(manifest_path)
    config = manifest["config"]
    npz_path = Path(npz_path)
    if not npz_path.is_file():
        raise FileNotFoundError(f"reference arrays not found: {npz_path}")
    arrays = np.load(npz_path, allow_pickle=False)

    graph = graph_from_config(config)
    if graph.uses_filter_triples:
        model: AssembleNet = _build_lite(graph, config)
    else:
        model = _build_standard(graph, config)
    _set_batch_norm_constants(model, config)
    _load_variables(model, graph, manifest["variables"], arrays, source=str(npz_path))
    return model.eval()


def _build_lite(graph: AssembleNetGraph, config: Mapping[str, Any]) -> AssembleNet:
    """An AssembleNet++lite reference (``assemblenet_plus_lite.py``): the original's fusion-width rule, which
    depends on the input size, so the manifest's ``input_shape`` ``[B, T, H, W, C]`` fixes the model."""
    from assemblenet.models.lite import build_assemblenet_lite

    input_shape = config.get("input_shape")
    if not input_shape or len(input_shape) != 5:
        raise ReferenceFormatError(f"an AssembleNet++lite reference needs config.input_shape [B, T, H, W, C], "
                                   f"got {input_shape!r}")
    return build_assemblenet_lite(
        graph=graph,
        num_classes=int(config["num_classes"]),
        num_blocks=config["num_blocks"],
        stem_filters=config.get("stem_filters"),
        learnable_weights=None,
        max_pool_predictions=bool(config.get("max_pool_predictions", False)),
        flow_normalization="batch",
        flow_iterations=int(config.get("rep_flow_num_iter", 20)),
        attention_mode=config.get("attention_mode") or None,
        fusion_width="tf_spatial_width",
        input_size=(int(input_shape[2]), int(input_shape[3])),
    )


def _build_standard(graph: AssembleNetGraph, config: Mapping[str, Any]) -> AssembleNet:
    depth = int(config.get("depth", 50))
    if "num_blocks" in config and tuple(config["num_blocks"]) != BLOCKS_PER_DEPTH.get(depth):
        raise ReferenceFormatError(
            f"config num_blocks {config['num_blocks']} does not match depth {depth} ({BLOCKS_PER_DEPTH.get(depth)})"
        )
    model = build_assemblenet(
        graph=graph,
        num_classes=int(config["num_classes"]),
        depth=depth,
        stem_filters=config.get("stem_filters"),
        intermediate_channels=config.get("intermediate_channel_size"),
        learnable_weights=None,  # frozen where the config gives weights, learnable where it does not
        max_pool_predictions=bool(config.get("max_pool_predictions", False)),
        flow_normalization="batch",  # TF normalises over the whole batch
        flow_iterations=int(config.get("rep_flow_num_iter", 40)),
        attention_mode=config.get("attention_mode") or None,
        num_object_classes=int(config.get("num_object_classes") or NUM_OBJECT_CLASSES),
    )
    return model


def _set_batch_norm_constants(model: nn.Module, config: Mapping[str, Any]) -> None:
    # TF's fused batch norm raises epsilon to 1.001e-5; the AssembleNet++ references record that.
    eps = float(config.get("bn_effective_epsilon", config.get("bn_epsilon", 1e-5)))
    momentum = 1.0 - float(config.get("bn_momentum", 0.99))
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.eps = eps
            module.momentum = momentum


def _load_variables(
    model: AssembleNet, graph: AssembleNetGraph, variables: list[Mapping[str, Any]], arrays: Any, *, source: str
) -> None:
    num_stems = len(graph.stem_indices)
    targets: dict[str, torch.Tensor] = dict(model.named_parameters())
    targets.update(dict(model.named_buffers()))
    loaded: set[str] = set()
    grouped: dict[str, dict[str, np.ndarray]] = defaultdict(dict)
    for variable in variables:
        name, role = variable["name"], variable["role"]
        if name not in arrays:
            raise ReferenceFormatError(f"{source}: variable {name} (role {role}) is missing from the arrays")
        # The manifest's 'param' where given (plain tf.Variable temporal kernels are named Variable_N).
        field = variable.get("param") or name.rsplit("/", 1)[-1].split(":")[0]
        grouped[role][field] = arrays[name]

    def assign(key: str, value: np.ndarray) -> None:
        if key not in targets:
            raise ReferenceFormatError(f"{source}: no model tensor {key} for a reference variable")
        target = targets[key]
        tensor = torch.from_numpy(np.ascontiguousarray(value)).to(target.dtype)
        if tuple(tensor.shape) != tuple(target.shape):
            raise ReferenceFormatError(
                f"{source}: {key} has shape {tuple(target.shape)} but the reference gives {tuple(tensor.shape)}"
            )
        with torch.no_grad():
            target.copy_(tensor)
        loaded.add(key)

    def assign_conv(prefix: str, kernel: np.ndarray) -> None:
        # [kh, kw, in, out] -> [out, in, kh, kw]; a temporal kernel [k, 1, in, out] becomes [out, in, k, 1]
        # and our (k, 1, 1) Conv3d takes one more axis. Lite Conv3D kernels [kt, kh, kw, in, out] become
        # [out, in, kt, kh, kw], and [1, kh, kw, in, out] our per-frame Conv2d [out, in, kh, kw].
        dims = targets[f"{prefix}.weight"].dim() if f"{prefix}.weight" in targets else 0
        if kernel.ndim == 5:
            torch_kernel = np.transpose(kernel, (4, 3, 0, 1, 2))
            if dims == 4 and torch_kernel.shape[2] == 1:
                torch_kernel = torch_kernel[:, :, 0]
        else:
            torch_kernel = np.transpose(kernel, (3, 2, 0, 1))
            if dims == 5:
                torch_kernel = torch_kernel[..., None]
        assign(f"{prefix}.weight", torch_kernel)

    def assign_bn(prefix: str, fields: Mapping[str, np.ndarray]) -> None:
        for tf_field, torch_field in _BN_FIELDS.items():
            if tf_field not in fields:
                raise ReferenceFormatError(f"{source}: batch norm {prefix} lacks {tf_field}")
            assign(f"{prefix}.{torch_field}", fields[tf_field])

    lite_head = {"head.conv1_to432": "conv1", "head.conv2_to2048": "conv2", "head.bn1": "bn1", "head.bn2": "bn2"}
    for role, fields in grouped.items():
        if role == "head.dense":
            fc = "head.classifier.fc" if "head.classifier.fc.weight" in targets else "head.fc"
            assign(f"{fc}.weight", fields["kernel"].T)
            assign(f"{fc}.bias", fields["bias"])
            continue
        if role in lite_head:
            if role.startswith("head.bn"):
                assign_bn(f"head.{lite_head[role]}", fields)
            else:
                assign_conv(f"head.{lite_head[role]}", fields["kernel"])
            continue
        if role.startswith("rep_flow."):
            _check_flow_constant(model, role.split(".", 1)[1], fields, source)
            continue
        match = _ROLE.match(role)
        if not match:
            raise ReferenceFormatError(f"{source}: unknown variable role {role!r}")
        node, what = int(match["node"]), match["what"]
        if match["part"] == "stem":
            prefix = f"stems.{node}"
            if what in ("conv7x7_s2", "conv1x3x3_s2"):
                assign_conv(f"{prefix}.conv", fields["kernel"])
            elif what in ("temporal_conv_k5", "temporal_conv_k3"):
                assign_conv(f"{prefix}.temporal", fields["kernel"])
            elif what in ("bn1", "bn2"):
                assign_bn(f"{prefix}.{what}", fields)
            else:
                raise ReferenceFormatError(f"{source}: unknown stem role {role!r}")
            continue
        prefix = f"nodes.{node - num_stems}"
        if match["part"] == "attention":
            _load_attention(model, node - num_stems, role, what, fields, assign, source)
            continue
        if match["part"] == "fusion":
            fusion = _fusion(model, node - num_stems, source)
            if what == "agg_weights":
                assign(f"{prefix}.fusion.edge_logits", fields["agg_weights"])
            elif what.startswith("conv1x1_from_") and what.endswith("ch"):
                width = int(what[len("conv1x1_from_"):-2])
                if width not in fusion.group_widths:
                    raise ReferenceFormatError(f"{source}: node {node} has no {width}-channel input group")
                assign_conv(f"{prefix}.fusion.projections.{fusion.group_widths.index(width)}", fields["kernel"])
            else:
                raise ReferenceFormatError(f"{source}: unknown fusion role {role!r}")
            continue
        step = int(match["step"])
        block = f"{prefix}.blocks.{step}"
        layer, kind = what.rsplit("_", 1)
        names = {"proj": ("projection.0", "projection.1"), "a": ("conv_a", "bn_a"), "b": ("conv_b", "bn_b"),
                 "c": ("conv_c", "bn_c"),
                 "b_temporal": ("conv_b_temporal", "bn_b_temporal")}
        if layer not in names or kind not in ("conv", "bn"):
            raise ReferenceFormatError(f"{source}: unknown block role {role!r}")
        conv_name, bn_name = names[layer]
        if kind == "conv":
            assign_conv(f"{block}.{conv_name}", fields["kernel"])
        else:
            assign_bn(f"{block}.{bn_name}", fields)

    expected = {
        key for key in targets
        if not key.endswith("num_batches_tracked") and not key.startswith("flow_layer.")
        and not (key.endswith("edge_logits") and targets[key].numel() == 0)
    }
    missing = sorted(expected - loaded)
    if missing:
        raise ReferenceFormatError(
            f"{source}: the reference does not provide {len(missing)} tensors, e.g. {missing[:5]}")


def _fusion(model: AssembleNet, position: int, source: str) -> SigmoidFusion:
    """The fusion of block node ``position`` (0 = the first block node)."""
    node = model.nodes[position]
    if not isinstance(node, AssembleNode):
        raise ReferenceFormatError(f"{source}: block node {position} reaches no output: the model built no layers "
                                   "for it")
    return node.fusion


def _load_attention(model: AssembleNet, position: int, role: str, what: str, fields: Mapping[str, np.ndarray],
                    assign: Any, source: str) -> None:
    """One attention variable of block node ``position`` (0 = the first block node)."""
    prefix = f"nodes.{position}"
    peer_dense = _PEER_DENSE.match(what)
    if peer_dense:
        if model.attention_mode != "peer":
            return  # self mode: the original creates these dense layers but never reads them
        peer = int(peer_dense["peer"])
        peers = model.node_peers[position]
        if peer not in peers:
            raise ReferenceFormatError(f"{source}: {role}: node {peer} is not an attention source of this node")
        slot = peers.index(peer)
        assign(f"{prefix}.peer_features.projections.{slot}.weight", fields["kernel"].T)
        assign(f"{prefix}.peer_features.projections.{slot}.bias", fields["bias"])
        return
    connection = _CONNECTION.match(what)
    if not connection:
        raise ReferenceFormatError(f"{source}: unknown attention role {role!r}")
    fusion = _fusion(model, position, source)
    if connection["width"] is None:
        if fusion.num_inputs != 1:
            raise ReferenceFormatError(f"{source}: {role}: a single-input attention on a node with "
                                       f"{fusion.num_inputs} inputs")
        index = 0
    else:
        # Connection_{C}_{idx}: the idx-th input of C channels, in the node's input order.
        width, rank = int(connection["width"]), int(connection["rank"])
        if width not in fusion.group_widths or rank >= len(fusion.group_members[fusion.group_widths.index(width)]):
            raise ReferenceFormatError(f"{source}: {role}: the node has no input {rank} of {width} channels")
        index = fusion.group_members[fusion.group_widths.index(width)][rank]
    target = f"{prefix}.fusion.attentions.{index}"
    if connection["param"] == "dense":
        assign(f"{target}.dense.weight", fields["kernel"].T)
        assign(f"{target}.dense.bias", fields["bias"])
    else:
        assign(f"{target}.peer_logits", fields["peer_attention_weights"])


def _check_flow_constant(model: AssembleNet, name: str, fields: Mapping[str, np.ndarray], source: str) -> None:
    value = next(iter(fields.values()))
    if name in _STANDARD_FLOW_KERNELS:
        if not np.allclose(value.ravel(), _STANDARD_FLOW_KERNELS[name]):
            raise ReferenceFormatError(
                f"{source}: representation-flow kernel {name} = {value.ravel().tolist()} is not the standard "
                f"{_STANDARD_FLOW_KERNELS[name]}; trained flow kernels are not supported"
            )
        return
    index = {"theta": 0, "lambda": 1, "tau": 2}.get(name)
    if index is None:
        raise ReferenceFormatError(f"{source}: unknown representation-flow variable {name!r}")
    if model.flow_layer is not None:
        with torch.no_grad():
            model.flow_layer.hyper[index] = float(np.asarray(value).ravel()[0])
