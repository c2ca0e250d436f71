import pytest
import torch

from assemblenet.models import create_model, model_info
from assemblenet.models.summary import format_summary, summarize_model


def test_summary_of_assemblenet50_walks_the_spec_shapes_and_totals():
    model = create_model("assemblenet50")
    summary = summarize_model(model, frames=32, size=224)
    shapes = {row.index: row.output_shape for row in summary.nodes}
    assert shapes[0] == (32, 32, 56, 56) and shapes[2] == (32, 32, 56, 56)
    assert shapes[7] == (128, 32, 56, 56) and shapes[11] == (256, 32, 28, 28)
    assert shapes[13] == (1024, 32, 14, 14) and shapes[14] == (2048, 32, 7, 7)
    info = model_info("assemblenet50")
    assert summary.total_params == info.params
    assert summary.total_gflops == pytest.approx(info.gflops, rel=1e-3)
    # Per-node FLOPs account for everything but the head's tiny matmul.
    assert sum(row.flops for row in summary.nodes) + summary.head_flops == summary.total_flops
    assert summary.logits_shape == (1, 157)
    fixed = {(e.source, e.target): e for e in summary.edges}
    assert fixed[(0, 6)].weight == pytest.approx(0.1381, abs=1e-4) and not fixed[(0, 6)].learnable
    assert not fixed[(1, 4)].scaled


def test_summary_does_not_touch_the_real_model():
    model = create_model("assemblenet50_searchable", num_classes=3, depth=26, width_multiplier=0.125)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    text = format_summary(summarize_model(model, frames=4, size=32))
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.device.type == "cpu" for p in model.parameters())
    assert "learnable" in text and "  14  L3" in text


def test_summary_rejects_a_single_frame():
    with pytest.raises(ValueError, match="frames >= 2"):
        summarize_model(create_model("assemblenet50", depth=26, width_multiplier=0.125), frames=1, size=32)
