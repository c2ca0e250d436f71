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
    assert summary.flow_shape == (2, 32, 224, 224) and summary.flow_params == 0
    assert [row.kind for row in summary.nodes[:5]] == ["rgb stem", "rgb stem", "flow stem", "flow stem", "L0"]
    assert summary.nodes[14].filters == 512 and summary.nodes[14].inputs == (12, 13)
    info = model_info("assemblenet50")
    assert summary.total_params == info.params
    assert summary.total_gflops == pytest.approx(info.gflops, rel=1e-3)
    # Per-node rows plus the head account for every counted FLOP (the flow layer is elementwise only).
    assert summary.flow_flops == 0
    assert sum(row.flops for row in summary.nodes) + summary.head_flops == summary.total_flops
    assert sum(row.params for row in summary.nodes) + summary.head_params == summary.total_params
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


@pytest.mark.filterwarnings("ignore:graph asnp50.*reach no output:UserWarning")  # asnp50's node 9: expected here
def test_summary_of_a_scaled_object_graph_with_a_batch():
    from assemblenet.graph import official_graph
    from assemblenet.models import build_assemblenet

    model = build_assemblenet(graph=official_graph("asnp50"), num_classes=5, depth=26, width_multiplier=0.25)
    summary = summarize_model(model, frames=4, size=64, batch=2)
    assert summary.input_shape == (2, 3, 4, 64, 64) and summary.logits_shape == (2, 5)
    object_stem = summary.nodes[4]
    assert object_stem.kind == "object stem" and object_stem.output_shape == (151, 4, 16, 16)
    assert object_stem.params == 0 and object_stem.flops == 0  # a max-pool only
    assert summary.nodes[11].filters == 32  # 128 filters scaled by 0.25
    # FLOPs scale with the batch: twice the clips, twice the FLOPs.
    single = summarize_model(model, frames=4, size=64, batch=1)
    assert summary.total_flops == 2 * single.total_flops
