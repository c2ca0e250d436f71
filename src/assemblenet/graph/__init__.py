"""Architecture graphs: typed nodes, validation, official structures, and serialisation."""

from assemblenet.graph.io import graph_from_dict, graph_to_dict, load_graph, save_graph
from assemblenet.graph.official import official_graph, official_graph_names
from assemblenet.graph.spec import (
    BLOCKS_PER_DEPTH,
    DEFAULT_DEPTH,
    NUM_LEVELS,
    NUM_OBJECT_CLASSES,
    OUTPUT_LEVEL,
    SUPPORTED_DEPTHS,
    AssembleNetGraph,
    BlockNode,
    Edge,
    Node,
    StemNode,
    StemType,
    validate_nodes,
)

__all__ = [
    "AssembleNetGraph", "BlockNode", "Edge", "Node", "StemNode", "StemType", "NUM_LEVELS", "OUTPUT_LEVEL",
    "BLOCKS_PER_DEPTH", "SUPPORTED_DEPTHS", "DEFAULT_DEPTH", "NUM_OBJECT_CLASSES",
    "validate_nodes", "official_graph", "official_graph_names", "load_graph", "save_graph", "graph_to_dict",
    "graph_from_dict",
]
