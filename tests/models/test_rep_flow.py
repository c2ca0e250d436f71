import pytest
import torch

from assemblenet.data.synthetic import translating_texture_clip
from assemblenet.models import RepresentationFlow


@pytest.mark.parametrize("dx,dy", [(2.0, 0.0), (0.0, -1.5)])
def test_flow_of_a_translating_texture(dx, dy):
    # Single-scale TV-L1 linearises the image: it is accurate while the texture is smooth at the scale of the
    # motion, hence smoothness=4 for a 2 px shift (at smoothness 2 it underestimates 2 px as 1.6 px).
    clip = translating_texture_clip(num_frames=6, height=64, width=64, dx=dx, dy=dy, smoothness=4)
    flow = RepresentationFlow()(clip[None])
    assert flow.shape == (1, 2, 6, 64, 64)
    mean_x, mean_y = flow[0, 0, :-1].mean().item(), flow[0, 1, :-1].mean().item()
    assert abs(mean_x - dx) < 0.3 and abs(mean_y - dy) < 0.3, (mean_x, mean_y)
    torch.testing.assert_close(flow[:, :, -1], flow[:, :, -2])  # last flow frame repeated


def test_per_clip_normalisation_ignores_batch_mates_and_batch_mode_does_not():
    torch.manual_seed(0)
    clip = translating_texture_clip(num_frames=4, height=32, width=32, dx=1.0, smoothness=3)[None]
    dim_mate = torch.rand(1, 3, 4, 32, 32) * 0.2
    alone = RepresentationFlow(num_iterations=10)(clip)
    with_mate = RepresentationFlow(num_iterations=10)(torch.cat([clip, dim_mate]))[:1]
    torch.testing.assert_close(alone, with_mate, rtol=1e-5, atol=1e-5)
    batch_mode = RepresentationFlow(num_iterations=10, normalization="batch")
    assert not torch.allclose(batch_mode(clip), batch_mode(torch.cat([clip, dim_mate]))[:1], atol=1e-3)


def test_trainable_hyper_parameters_receive_gradients():
    layer = RepresentationFlow(num_iterations=5, trainable=True)
    clip = translating_texture_clip(num_frames=3, height=16, width=16, dx=1.0)[None]
    layer(clip).square().mean().backward()
    assert layer.hyper.grad is not None and torch.all(layer.hyper.grad != 0)
    assert not RepresentationFlow().trainable and RepresentationFlow().hyper.requires_grad is False


def test_chunking_does_not_change_the_result():
    clip = torch.rand(2, 3, 5, 24, 24)
    whole = RepresentationFlow(num_iterations=8, chunk_pixels=10**9)(clip)
    chunked = RepresentationFlow(num_iterations=8, chunk_pixels=1)(clip)
    torch.testing.assert_close(whole, chunked, rtol=1e-5, atol=1e-5)


def test_bad_inputs_are_rejected_with_clear_messages():
    with pytest.raises(ValueError, match=r"expects \[B, 3, T, H, W\]"):
        RepresentationFlow()(torch.rand(1, 2, 4, 8, 8))
    with pytest.raises(ValueError, match="at least 2 frames"):
        RepresentationFlow()(torch.rand(1, 3, 1, 8, 8))
    with pytest.raises(ValueError, match="normalization must be 'clip' or 'batch'"):
        RepresentationFlow(normalization="frame")
