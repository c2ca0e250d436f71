import pytest
import torch

from assemblenet.data.synthetic import translating_texture_clip
from assemblenet.models import RepresentationFlow, rep_flow
from assemblenet.models.rep_flow_kernel import kernel_available, kernel_status


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


# -- the fused implementation against the reference ---------------------------------------------------------
needs_kernel = pytest.mark.skipif(not kernel_available(), reason=f"fused flow kernel: {kernel_status()}")


def _fallback_only(monkeypatch):
    monkeypatch.setattr(rep_flow, "kernel_available", lambda: False)


@pytest.mark.parametrize("shape,iterations", [((2, 3, 5, 24, 24), 8), ((1, 3, 3, 40, 56), 40),
                                              ((3, 3, 2, 1, 7), 3), ((1, 3, 3, 6, 1), 3)])
@pytest.mark.parametrize("path", ["kernel", "torch fallback"])
def test_fused_flow_equals_the_reference(shape, iterations, path, monkeypatch):
    if path == "kernel" and not kernel_available():
        pytest.skip(f"fused flow kernel: {kernel_status()}")
    if path == "torch fallback":
        _fallback_only(monkeypatch)
    clip = torch.rand(*shape, generator=torch.Generator().manual_seed(3))
    reference = RepresentationFlow(num_iterations=iterations, implementation="reference")(clip)
    with torch.no_grad():
        fused = RepresentationFlow(num_iterations=iterations)(clip)
    assert reference.abs().max() > 1.0  # the clip moves: the comparison is not between zeros
    torch.testing.assert_close(fused, reference, rtol=1e-5, atol=1e-5)


@needs_kernel
def test_fused_gradients_pass_gradcheck_and_equal_the_reference_autograd():
    generator = torch.Generator().manual_seed(0)
    clip = torch.rand(1, 3, 3, 5, 6, dtype=torch.float64, generator=generator, requires_grad=True)
    fused = RepresentationFlow(num_iterations=3, trainable=True).double()
    assert torch.autograd.gradcheck(fused, (clip,))
    # against autograd through the reference ops, also for the hyper-parameters, on a larger input
    clip = torch.rand(2, 3, 4, 9, 7, dtype=torch.float64, generator=generator, requires_grad=True)
    reference = RepresentationFlow(num_iterations=10, trainable=True, implementation="reference").double()
    fused = RepresentationFlow(num_iterations=10, trainable=True).double()
    weights = torch.randn(2, 2, 4, 9, 7, dtype=torch.float64, generator=generator)
    expected = torch.autograd.grad((reference(clip) * weights).sum(), [clip, reference.hyper])
    actual = torch.autograd.grad((fused(clip) * weights).sum(), [clip, fused.hyper])
    assert expected[1].abs().min() > 1.0
    for got, want in zip(actual, expected):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)


def test_gradients_without_the_kernel_come_from_the_reference_ops(monkeypatch):
    _fallback_only(monkeypatch)
    clip = torch.rand(1, 3, 3, 5, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(0),
                      requires_grad=True)
    assert torch.autograd.gradcheck(RepresentationFlow(num_iterations=3, trainable=True).double(), (clip,))


def test_trainable_fused_flow_learns_its_hyper_parameters():
    # Fit theta/lambda/tau to the flow of other hyper-parameters: the loss must fall.
    clip = translating_texture_clip(num_frames=3, height=16, width=16, dx=1.0, smoothness=3)[None]
    with torch.no_grad():
        target = RepresentationFlow(num_iterations=10, theta=0.5, lambda_=0.3, tau=0.2)(clip)
    layer = RepresentationFlow(num_iterations=10, trainable=True)
    optimizer = torch.optim.Adam(layer.parameters(), lr=0.02)
    losses = []
    for _ in range(15):
        optimizer.zero_grad()
        loss = (layer(clip) - target).square().mean()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses


def test_unknown_implementation_is_rejected():
    with pytest.raises(ValueError, match="implementation must be 'fused' or 'reference'"):
        RepresentationFlow(implementation="cuda")


def test_environment_variable_turns_the_kernel_off(monkeypatch):
    from assemblenet.models import rep_flow_kernel

    monkeypatch.setenv("ASSEMBLENET_FLOW_KERNEL", "0")
    for name, value in (("_loaded", False), ("_library", None), ("_load_error", None)):
        monkeypatch.setattr(rep_flow_kernel, name, value)
    assert rep_flow_kernel.load_kernel() is None and not rep_flow_kernel.kernel_available()
    assert rep_flow_kernel.kernel_status() == "disabled by ASSEMBLENET_FLOW_KERNEL"
    clip = torch.rand(1, 3, 3, 12, 10, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        torch.testing.assert_close(RepresentationFlow(num_iterations=5)(clip),
                                   RepresentationFlow(num_iterations=5, implementation="reference")(clip),
                                   rtol=1e-5, atol=1e-5)


def test_a_bf16_model_keeps_the_flow_constants_and_output_in_fp32():
    layer = RepresentationFlow(num_iterations=3)
    clip = torch.rand(1, 3, 3, 16, 16)
    expected = layer(clip)
    layer.to(torch.bfloat16)
    assert layer.hyper.dtype == torch.float32 and torch.equal(layer.hyper, torch.tensor([0.3, 0.15, 0.25]))
    got = layer(clip.bfloat16())
    assert got.dtype == torch.float32
    # only the input's rounding to bf16 differs
    torch.testing.assert_close(got, layer(clip.bfloat16().float()), rtol=0, atol=0)
    assert (got - expected).abs().max() < 1.0
