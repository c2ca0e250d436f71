"""The engine builds AssembleNet++lite from a graph with filter triples, as from the preset."""

import torch

from assemblenet.engine.config import ModelConfig
from assemblenet.engine.model_spec import build_model_from_spec, model_spec_from_config
from assemblenet.graph import graph_to_dict, official_graph
from assemblenet.models import AssembleNetLite


def test_a_lite_graph_spec_builds_the_lite_model_without_a_depth():
    cfg = ModelConfig(name=None, graph=official_graph("asnp_lite"), width_multiplier=0.125, attention_mode="peer")
    spec = model_spec_from_config(cfg, num_classes=7)
    assert spec["graph"] == graph_to_dict(official_graph("asnp_lite")) and "depth" not in spec["overrides"]
    with torch.device("meta"):
        model = build_model_from_spec(spec)
        preset = build_model_from_spec({"name": "assemblenet_plus_lite", "graph": None, "num_classes": 7,
                                        "overrides": {"width_multiplier": 0.125}})
    assert isinstance(model, AssembleNetLite) and model.attention_mode == "peer" and model.num_classes == 7
    assert model.num_blocks == (3, 5, 11, 7) and model.nodes[-1].blocks[0].conv_c.out_channels == 24
    assert isinstance(preset, AssembleNetLite)
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in preset.parameters())
