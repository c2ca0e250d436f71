"""The model spec: what a trained model is (a preset name or a graph, the class count and the build
options), as the weights sidecar and the checkpoints store it, and building the model from it.

Used by :mod:`assemblenet.engine.modeling` (building from a config) and :mod:`assemblenet.engine.weights`
(rebuilding from a sidecar or checkpoint); it imports neither.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from torch import nn

from assemblenet.engine.config import MODEL_BUILD_KEYS
from assemblenet.errors import ConfigError
from assemblenet.graph.spec import DEFAULT_DEPTH, NUM_OBJECT_CLASSES

if TYPE_CHECKING:
    from assemblenet.graph import AssembleNetGraph

# Build keys left out of the spec at these values (the builders' defaults), so that specs and weights sidecars made
# before the option existed read the same.
_OMIT_AT = {"num_object_classes": NUM_OBJECT_CLASSES, "temporal_conv": "conv3d"}


def resolve_graph(source: Any) -> AssembleNetGraph | None:
    """An :class:`AssembleNetGraph` from a graph, a graph file (YAML/JSON, ours or official) or an official
    structure name (``asn50``, ``asn101``, ``asnp50``)."""
    from assemblenet.graph import AssembleNetGraph, load_graph, official_graph, official_graph_names

    if source is None or isinstance(source, AssembleNetGraph):
        return source
    text = str(source)
    if text in official_graph_names():
        return official_graph(text)
    if not Path(text).is_file():
        raise ConfigError(f"key 'model.graph': {text!r} is neither a graph file nor one of "
                          f"{official_graph_names()}")
    # A node that reaches no output is pruned by the model (with a warning), so such a graph still trains.
    return load_graph(text, allow_dead_nodes=True)


def spec_graph(model_cfg: Any, *, graph: Any = None) -> AssembleNetGraph:
    """The graph a ``ModelConfig`` builds (its ``graph``, or its preset's), without building the model."""
    from assemblenet.models import preset_graph

    resolved = resolve_graph(graph if graph is not None else model_cfg.graph)
    return resolved if resolved is not None else preset_graph(model_cfg.name)


def model_spec_from_config(model_cfg: Any, num_classes: int, *, graph: Any = None) -> dict[str, Any]:
    """The sidecar ``model`` entry (see :mod:`assemblenet.engine.weights`) for a ``ModelConfig``.

    ``graph`` (an AssembleNetGraph) replaces ``model_cfg.graph`` and the preset.
    """
    from assemblenet.graph import graph_to_dict

    overrides: dict[str, Any] = {}
    for key in MODEL_BUILD_KEYS:  # the ModelConfig fields passed on to create_model / the builders when set
        value = getattr(model_cfg, key)
        if value is not None and not (key in _OMIT_AT and value == _OMIT_AT[key]):
            overrides[key] = value
    graph = resolve_graph(graph if graph is not None else model_cfg.graph)
    if graph is not None:
        if not graph.uses_filter_triples:  # AssembleNet++lite has no depth; its blocks follow num_blocks
            overrides.setdefault("depth", DEFAULT_DEPTH)
        return {"name": None, "graph": graph_to_dict(graph), "num_classes": int(num_classes), "overrides": overrides}
    return {"name": model_cfg.name, "graph": None, "num_classes": int(num_classes), "overrides": overrides}


def build_model_from_spec(spec: Mapping[str, Any]) -> nn.Module:
    """Build (untrained) the model a spec describes."""
    from assemblenet.errors import GraphError
    from assemblenet.graph import graph_from_dict
    from assemblenet.models import build_from_graph, create_model, list_models

    overrides = dict(spec.get("overrides") or {})
    num_classes = int(spec["num_classes"])
    try:
        if spec.get("graph") is not None:
            # Lenient: the graph was validated when the spec was made, and the official asnp50 keeps a node that
            # feeds nothing (as the authors' code computes it).
            graph = graph_from_dict(spec["graph"], source="model.graph", allow_dead_nodes=True)
            return build_from_graph(graph, num_classes=num_classes, **overrides)
        name = spec.get("name")
        if name not in list_models():
            raise ConfigError(f"key 'model.name': unknown model {name!r}; available: {list_models()}")
        return create_model(name, num_classes=num_classes, **overrides)
    except GraphError:
        raise
    except (TypeError, ValueError) as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"model section: {exc}") from exc
