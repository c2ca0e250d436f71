"""AssembleNet models: stems, blocks, fusion, representation flow, heads, builders and the registry."""

from assemblenet.graph.spec import BLOCKS_PER_DEPTH
from assemblenet.models.assemblenet import AssembleNet, AssembleNode, build_assemblenet
from assemblenet.models.blocks import INTERMEDIATE_CHANNELS, BlockGroup, BottleneckBlock
from assemblenet.models.builders import build_from_graph
from assemblenet.models.fusion import SigmoidFusion
from assemblenet.models.heads import AssembleNetHead
from assemblenet.models.inference import fold_batch_norm
from assemblenet.models.lite import AssembleNetLite, build_assemblenet_lite
from assemblenet.models.rep_flow import RepresentationFlow

__all__ = [
    "AssembleNet", "AssembleNode", "build_assemblenet", "BLOCKS_PER_DEPTH", "INTERMEDIATE_CHANNELS",
    "BlockGroup", "BottleneckBlock", "SigmoidFusion", "AssembleNetHead", "RepresentationFlow", "fold_batch_norm",
    "AssembleNetLite", "build_assemblenet_lite", "build_from_graph",
]

from assemblenet.models.registry import (  # noqa: E402
    ModelInfo,
    create_model,
    list_models,
    load_weights,
    model_info,
    model_table,
    preset_graph,
    register_model,
)

__all__ += ["ModelInfo", "create_model", "list_models", "load_weights", "model_info", "model_table", "preset_graph",
            "register_model"]
