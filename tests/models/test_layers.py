import pytest
import torch
from torch.nn import functional as F

from assemblenet.models.layers import (
    TemporalConv,
    max_pool_same,
    set_temporal_conv,
    spatial_conv,
    temporal_conv,
    tf_same_padding,
)


@pytest.mark.parametrize("size,kernel,stride,expected", [(56, 3, 2, (0, 1)), (57, 3, 2, (1, 1)), (28, 2, 2, (0, 0)),
                                                         (29, 2, 2, (0, 1)), (14, 4, 4, (1, 1)), (7, 3, 2, (1, 1))])
def test_tf_same_padding_puts_the_extra_pixel_at_the_end(size, kernel, stride, expected):
    assert tf_same_padding(size, kernel, stride) == expected


@pytest.mark.parametrize("size", [8, 9, 16])
def test_max_pool_same_matches_explicit_minus_inf_padding(size):
    x = torch.randn(2, 3, 4, size, size + 1)
    ours = max_pool_same(x, 3, 2)
    top, bottom = tf_same_padding(size, 3, 2)
    left, right = tf_same_padding(size + 1, 3, 2)
    padded = F.pad(x, (left, right, top, bottom), value=float("-inf"))
    expected = padded.unfold(-2, 3, 2).unfold(-2, 3, 2).amax(dim=(-1, -2))
    torch.testing.assert_close(ours, expected, rtol=0, atol=0)
    assert ours.shape[-2:] == (-(-size // 2), -(-(size + 1) // 2))


def test_torch_symmetric_padding_is_not_tf_same_on_even_sizes():
    x = torch.randn(1, 1, 1, 8, 8)
    torch_style = F.max_pool3d(x, (1, 3, 3), (1, 2, 2), padding=(0, 1, 1))
    assert torch_style.shape == max_pool_same(x, 3, 2).shape
    assert not torch.equal(torch_style, max_pool_same(x, 3, 2))


def test_spatial_conv_applies_the_same_2d_conv_to_every_frame():
    torch.manual_seed(0)
    conv = spatial_conv(4, 6, 3, stride=2)
    x = torch.randn(2, 4, 5, 9, 8).contiguous(memory_format=torch.channels_last_3d)
    out = conv(x)
    for t in range(5):
        torch.testing.assert_close(out[:, :, t], F.conv2d(x[:, :, t], conv.weight, stride=2, padding=1))


@pytest.mark.parametrize("implementation", ["conv3d", "conv2d"])
@pytest.mark.parametrize("dilation", [1, 2, 4])
def test_temporal_conv_is_zero_padded_inside_each_clip(dilation, implementation):
    torch.manual_seed(0)
    conv = temporal_conv(3, 2, 3, dilation=dilation)
    conv.implementation = implementation
    x = torch.randn(2, 3, 6, 2, 2)
    out = conv(x)
    weight = conv.weight[:, :, :, 0, 0]  # [out, in, k]
    expected = torch.zeros(2, 2, 6, 2, 2)
    for t in range(6):
        for k, offset in enumerate((-dilation, 0, dilation)):
            if 0 <= t + offset < 6:  # frames outside the clip are zeros, never the other clip's frames
                expected[:, :, t] += torch.einsum("oi,bihw->bohw", weight[:, :, k], x[:, :, t + offset])
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    assert out.is_contiguous(memory_format=torch.channels_last_3d)


@pytest.mark.parametrize("channels_last", [True, False])
@pytest.mark.parametrize(("kernel", "dilation", "shape"), [(3, 1, (4, 16, 8, 8, 8)), (5, 2, (2, 4, 8, 16, 16)),
                                                          (3, 1, (8, 64, 8, 1, 1))])
def test_the_conv2d_temporal_conv_computes_the_conv3d_forward_and_gradients(kernel, dilation, shape, channels_last):
    # The same weight read two ways: outputs and both gradients agree to float32 rounding, not bit for bit.
    torch.manual_seed(1)
    reference = temporal_conv(shape[1], 8, kernel, dilation=dilation)
    fast = temporal_conv(shape[1], 8, kernel, dilation=dilation)
    fast.load_state_dict(reference.state_dict())
    assert set_temporal_conv(fast, "conv2d") == 1
    x = torch.randn(shape)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last_3d)
        for conv in (reference, fast):
            conv.weight.data = conv.weight.data.contiguous(memory_format=torch.channels_last_3d)
    outputs, input_grads = [], []
    for conv in (reference, fast):
        x_in = x.clone().requires_grad_(True)
        y = conv(x_in)
        (y * torch.linspace(-1, 1, y.numel()).view(y.shape)).sum().backward()
        assert y.shape == (shape[0], 8) + shape[2:]
        assert y.is_contiguous(memory_format=torch.channels_last_3d)
        outputs.append(y.detach())
        input_grads.append(x_in.grad)
    torch.testing.assert_close(outputs[1], outputs[0], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(input_grads[1], input_grads[0], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(fast.weight.grad, reference.weight.grad, rtol=1e-4, atol=1e-4)


def test_set_temporal_conv_names_the_choices_and_the_default_is_conv3d():
    model = torch.nn.Sequential(temporal_conv(2, 2, 3), spatial_conv(2, 2, 3), temporal_conv(2, 2, 3))
    assert all(m.implementation == "conv3d" for m in model.modules() if isinstance(m, TemporalConv))
    assert "implementation" not in repr(model)
    assert set_temporal_conv(model, "conv2d") == 2
    assert repr(model).count("implementation=conv2d") == 2
    with pytest.raises(ValueError, match=r"temporal_conv 'fast': expected one of \['conv3d', 'conv2d'\]"):
        set_temporal_conv(model, "fast")
    # A Conv3d the Conv2d form cannot compute exactly is refused, not computed wrongly; it still works as a Conv3d.
    for odd in (TemporalConv(2, 2, (3, 1, 1), stride=(2, 1, 1), padding=(1, 0, 0)),
                TemporalConv(2, 2, (3, 1, 1), padding="same"), TemporalConv(2, 2, (3, 3, 1), padding=(1, 1, 0)),
                TemporalConv(2, 2, (3, 1, 1), padding=(1, 0, 0), groups=2)):
        with pytest.raises(ValueError, match=r"temporal_conv 'conv2d' cannot compute"):
            set_temporal_conv(torch.nn.Sequential(odd), "conv2d")
        assert odd.implementation == "conv3d" and odd(torch.randn(1, 2, 4, 2, 2)).dim() == 5


def test_a_strided_1x1_spatial_conv_equals_torchs_strided_conv_and_its_backward_runs_on_one_thread():
    # The subsampling path works around a oneDNN heap corruption in the strided 1 x 1 backward (AVX2, one thread,
    # small channel counts): this input aborted the process before. The reference is float64 (no oneDNN).
    from assemblenet.models.layers import spatial_conv

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(0)
        conv = spatial_conv(3, 3, 1, stride=2)
        x = torch.rand(2, 3, 4, 8, 8).contiguous(memory_format=torch.channels_last_3d).requires_grad_()
        y = conv(x)
        y.square().sum().backward()
        weight64 = conv.weight.detach().double()[:, :, None].requires_grad_()
        reference = torch.nn.functional.conv3d(x.detach().double(), weight64, stride=(1, 2, 2))
        reference.square().sum().backward()
        assert y.shape == reference.shape == (2, 3, 4, 4, 4)
        torch.testing.assert_close(y.detach().double(), reference.detach(), rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(conv.weight.grad.double(), weight64.grad[:, :, 0], rtol=1e-5, atol=1e-5)
        assert x.grad[..., 1::2, :].abs().sum() == 0 and x.grad[..., ::2, ::2].abs().sum() > 0  # odd rows unread
    finally:
        torch.set_num_threads(previous)
