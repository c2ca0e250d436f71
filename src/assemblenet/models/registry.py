"""Model registry in the style of timm: ``create_model(name, **overrides)`` and ``list_models()``."""

from __future__ import annotations

import fnmatch
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

from assemblenet.errors import CheckpointError, UnknownNameError
from assemblenet.graph import AssembleNetGraph, official_graph
from assemblenet.models.assemblenet import AssembleNet
from assemblenet.models.builders import build_from_graph

_PAPER = "Ryoo et al., AssembleNet, ICLR 2020 (arXiv 1905.13209)"
_PAPER_PLUS = "Ryoo et al., AssembleNet++, ECCV 2020 (arXiv 2008.08072)"
_TF1_PLUS = "google-research assemblenet/assemblenet_plus.py"
_TF1_LITE = "google-research assemblenet/assemblenet_plus_lite.py and model_structures.py"
_TF_CODE = "TF Model Garden official/projects/assemblenet"


@dataclass(frozen=True)
class ModelInfo:
    """What a preset is and what it costs.

    ``params`` counts trainable parameters at ``num_classes``; ``gflops`` counts convolution and matmul
    FLOPs (a multiply-add is 2) for one 32x224x224 clip, as ``torch.utils.flop_counter`` reports them.
    """

    name: str
    description: str
    structure: str
    depth: int
    learnable_weights: bool
    num_classes: int
    params: int
    gflops: float
    source: str
    attention: str | None = None  # AssembleNet++ connection attention: None, 'self' or 'peer'
    object_stem: bool = False  # reads per-frame object maps (model(clip, objects=...))


@dataclass(frozen=True)
class _Preset:
    info: ModelInfo
    graph_factory: Callable[[], AssembleNetGraph]
    defaults: dict[str, Any]


_REGISTRY: dict[str, _Preset] = {}


def register_model(info: ModelInfo, graph_factory: Callable[[], AssembleNetGraph], **defaults: Any) -> None:
    """Add a preset; ``defaults`` are keyword arguments of the builder :func:`build_from_graph` chooses for
    the preset's graph (:func:`~assemblenet.models.build_assemblenet`, or
    :func:`~assemblenet.models.lite.build_assemblenet_lite` for AssembleNet++lite)."""
    if info.name in _REGISTRY:
        raise ValueError(f"model {info.name!r} is already registered")
    _REGISTRY[info.name] = _Preset(info, graph_factory, dict(defaults))


def list_models(pattern: str = "*") -> list[str]:
    """Registered preset names matching a shell-style pattern, sorted."""
    return sorted(name for name in _REGISTRY if fnmatch.fnmatch(name, pattern))


def model_info(name: str) -> ModelInfo:
    return _preset(name).info


def preset_graph(name: str) -> AssembleNetGraph:
    """The wiring a preset builds (with its official edge weights where it has them)."""
    return _preset(name).graph_factory()


def create_model(
    name: str,
    *,
    num_classes: int | None = None,
    checkpoint_path: str | Path | None = None,
    **overrides: Any,
) -> AssembleNet:
    """Build a registered preset.

    Args:
        name: a name from :func:`list_models`.
        num_classes: logits per clip (default: the preset's, 157 for Charades).
        checkpoint_path: a ``.safetensors`` weights file (as written by ``assemblenet train``) to load.
        overrides: any keyword of the builder :func:`build_from_graph` chooses (``depth``,
            ``width_multiplier``, ``max_pool_predictions``, ``flow_mode``, ``flow_normalization``,
            ``learnable_weights``...), or ``graph`` to replace the preset's wiring.

    Returns the model in train mode, like timm.
    """
    preset = _preset(name)
    kwargs = dict(preset.defaults)
    kwargs.update(overrides)
    graph = kwargs.pop("graph", None) or preset.graph_factory()
    model = build_from_graph(
        graph, num_classes=num_classes if num_classes is not None else preset.info.num_classes, **kwargs
    )
    setattr(model, "model_name", name)  # for users; nn.Module's typed __setattr__ only takes tensors and modules
    if checkpoint_path is not None:
        load_weights(model, checkpoint_path)
    return model


def load_weights(model: AssembleNet, path: str | Path) -> AssembleNet:
    """Load a safetensors state dict into ``model`` (strictly), with one clear error on mismatch."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path}: not a readable safetensors file ({exc})") from None
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong_shape = [f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}" for k, v in expected.items()
                   if k in state and state[k].shape != v.shape]
    problems = []
    if missing:
        problems.append(f"missing {len(missing)} tensors, e.g. {missing[:3]}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected tensors, e.g. {unexpected[:3]}")
    if wrong_shape:
        problems.append(f"{len(wrong_shape)} tensors of another shape (file vs model), e.g. {wrong_shape[:2]}")
    if problems:
        raise CheckpointError(f"{path} does not fit this model: " + "; ".join(problems))
    model.load_state_dict(state)
    return model


def model_table() -> list[dict[str, Any]]:
    """Every preset's metadata as plain dicts (for ``assemblenet models --json``)."""
    return [asdict(_REGISTRY[name].info) for name in list_models()]


def _preset(name: str) -> _Preset:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownNameError("model", name, list_models(), key="model.name") from None


# Figures measured with FlopCounterMode on the meta device (tests/models/test_registry.py checks them).
register_model(
    ModelInfo(
        name="assemblenet50",
        description="AssembleNet-50: the evolved asn50 wiring with its official connection weights, frozen",
        structure="asn50", depth=50, learnable_weights=False, num_classes=157,
        params=36_900_957, gflops=500.91, source=f"{_PAPER}; structure and weights from {_TF_CODE}",
    ),
    lambda: official_graph("asn50"),
    depth=50,
)
register_model(
    ModelInfo(
        name="assemblenet101",
        description="AssembleNet-101: the asn50 wiring at depth 101 with official weights, frozen "
        "(the TF2 config's 'AssembleNet-101')",
        structure="asn50", depth=101, learnable_weights=False, num_classes=157,
        params=83_273_821, gflops=1081.30, source=f"{_PAPER}; {_TF_CODE} (UCF101 config uses this graph)",
    ),
    lambda: official_graph("asn50"),
    depth=101,
)
register_model(
    ModelInfo(
        name="assemblenet50_searchable",
        description="The asn50 wiring at depth 50 with learnable connection weights (for connection search "
        "and training from scratch)",
        structure="asn50", depth=50, learnable_weights=True, num_classes=157,
        params=36_900_985, gflops=500.91, source=f"{_PAPER}; structure from {_TF_CODE}",
    ),
    lambda: official_graph("asn50", with_weights=False),
    depth=50,
)
register_model(
    ModelInfo(
        name="assemblenet101_asn101",
        description="The narrow asn101 wiring (192/192/256 filters at nodes 12-14) at depth 101, official "
        "weights frozen",
        structure="asn101", depth=101, learnable_weights=False, num_classes=157,
        params=53_122_909, gflops=794.39, source=f"{_PAPER}; structure from {_TF_CODE}",
    ),
    lambda: official_graph("asn101"),
    depth=101,
)
register_model(
    ModelInfo(
        name="assemblenet_plus50",
        description="AssembleNet++-50: the evolved asnp50 wiring (RGB, flow and 151-class object stems) with its "
        "official connection weights frozen, peer attention",
        structure="asnp50", depth=50, learnable_weights=False, num_classes=157,
        params=48_054_173, gflops=549.28, source=f"{_PAPER_PLUS}; semantics of {_TF1_PLUS}",
        attention="peer", object_stem=True,
    ),
    lambda: official_graph("asnp50"),
    depth=50, attention_mode="peer",
)
register_model(
    ModelInfo(
        name="assemblenet_plus50_rgbflow",
        description="AssembleNet++ without objects: the asn50 wiring with learnable connections and peer attention "
        "(what the TF2 port's UCF101 config builds, with the original's trainable peer softmax)",
        structure="asn50", depth=50, learnable_weights=True, num_classes=157,
        params=44_562_189, gflops=501.40, source=f"{_PAPER_PLUS}; semantics of {_TF1_PLUS}",
        attention="peer",
    ),
    lambda: official_graph("asn50", with_weights=False),
    depth=50, attention_mode="peer",
)
register_model(
    ModelInfo(
        name="assemblenet_plus_lite",
        description="AssembleNet++lite: the asnp_lite wiring (RGB and flow stems, inverted-bottleneck 3-D blocks "
        "[3, 5, 11, 7], 432/2048 head) with its official connection weights frozen, peer attention",
        structure="asnp_lite", depth=87, learnable_weights=False, num_classes=157,
        params=50_042_581, gflops=376.75, source=f"{_PAPER_PLUS} (supplementary); semantics of {_TF1_LITE}",
        attention="peer",
    ),
    lambda: official_graph("asnp_lite"),
    attention_mode="peer",
)
