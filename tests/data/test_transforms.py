"""Spatial transforms: RGB and flow stay aligned; flips and resizes keep flow in pixels."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from assemblenet.data.transforms import (
    CenterCrop,
    RandomHorizontalFlip,
    RandomResizedCrop,
    ShortSideResize,
    SpatialCrop,
    eval_transform,
    hflip,
    resize_clip,
    three_crop,
    train_transform,
)


def coordinate_sample(height: int = 40, width: int = 60, frames: int = 3):
    """RGB whose red/green channels hold each pixel's x/y, and a constant flow of (+3, -2) px."""
    ys, xs = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    rgb = torch.stack([xs, ys, torch.zeros_like(xs)]).to(torch.uint8).unsqueeze(1).repeat(1, frames, 1, 1)
    flow = torch.tensor([3.0, -2.0]).view(2, 1, 1, 1).repeat(1, frames, height, width)
    return {"rgb": rgb, "flow": flow}


def test_hflip_mirrors_and_negates_flow_x():
    sample = coordinate_sample()
    flipped = hflip(sample)
    assert torch.equal(flipped["rgb"][0, 0, 0, 0], sample["rgb"][0, 0, 0, -1])
    assert torch.all(flipped["flow"][0] == -3.0) and torch.all(flipped["flow"][1] == -2.0)


def test_random_flip_flips_rgb_and_flow_together():
    flip = RandomHorizontalFlip(p=0.5)
    for seed in range(20):
        out = flip(coordinate_sample(), np.random.default_rng(seed))
        rgb_flipped = out["rgb"][0, 0, 0, 0].item() == 59
        assert rgb_flipped == bool(out["flow"][0, 0, 0, 0].item() < 0)


def test_resize_rescales_flow_components():
    flow = torch.tensor([3.0, -2.0]).view(2, 1, 1, 1).repeat(1, 2, 40, 60)
    resized = resize_clip(flow, (20, 120), is_flow=True)
    assert resized.shape == (2, 2, 20, 120)
    torch.testing.assert_close(resized[0], torch.full((2, 20, 120), 6.0))
    torch.testing.assert_close(resized[1], torch.full((2, 20, 120), -1.0))


def test_resize_keeps_uint8_and_float_in_unit_range():
    coarse = torch.randint(0, 256, (12, 1, 6, 10)).float()  # smooth content: the filters agree where it is smooth
    rgb = torch.nn.functional.interpolate(coarse, size=(30, 50), mode="bilinear").round().to(torch.uint8)
    rgb = rgb.reshape(3, 4, 30, 50)
    out = resize_clip(rgb, (15, 25))
    assert out.dtype == torch.uint8 and out.shape == (3, 4, 15, 25)  # never resized in float on the CPU
    # Agrees with an antialiased float resize to within rounding and the filters' difference.
    reference = torch.nn.functional.interpolate(rgb.float().reshape(1, 12, 30, 50), size=(15, 25), mode="bilinear",
                                                antialias=True, align_corners=False).reshape(3, 4, 15, 25)
    assert float((out.float() - reference).abs().mean()) < 3
    out = resize_clip(rgb.float() / 255, (15, 25))
    assert out.dtype == torch.float32 and out.min() >= 0 and out.max() <= 1


def test_random_resized_crop_uses_one_box_for_all_frames_and_modalities():
    transform = RandomResizedCrop(16, scale=(0.2, 0.6))
    sample = coordinate_sample(frames=4)
    height, width = 40, 60
    for seed in range(10):
        box = transform.box(height, width, np.random.default_rng(seed))
        top, left, crop_h, crop_w = box
        assert 0 <= top and top + crop_h <= height and 0 <= left and left + crop_w <= width
        area = crop_h * crop_w / (height * width)
        assert 0.15 < area < 0.7 and 3 / 4 - 0.1 < crop_w / crop_h < 4 / 3 + 0.1
        out = transform(sample, np.random.default_rng(seed))
        assert out["rgb"].shape == (3, 4, 16, 16) and out["flow"].shape == (2, 4, 16, 16)
        # Every frame got the same crop, and flow was scaled by the crop-to-output zoom.
        assert torch.allclose(out["rgb"][:, 0], out["rgb"][:, 3])
        torch.testing.assert_close(out["flow"][0].mean(), torch.tensor(3.0 * 16 / crop_w), rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(out["flow"][1].mean(), torch.tensor(-2.0 * 16 / crop_h), rtol=1e-4, atol=1e-4)
        # The top-left output pixel shows the box's top-left source pixel (x in red, y in green).
        expected = torch.tensor([left, top], dtype=torch.float32)
        assert torch.allclose(out["rgb"][:2, 0, 0, 0].float(), expected, atol=1.5 * max(crop_w, crop_h) / 16 + 1)


def test_short_side_resize_and_center_crop():
    sample = coordinate_sample(height=40, width=60)
    resized = ShortSideResize(20)(sample)
    assert resized["rgb"].shape[-2:] == (20, 30) and resized["flow"].shape[-2:] == (20, 30)
    cropped = CenterCrop(20)(resized)
    assert cropped["rgb"].shape[-2:] == (20, 20)


def test_three_crop_covers_left_centre_right():
    sample = coordinate_sample(height=20, width=50)
    crops = three_crop(sample, 20)
    lefts = [int(c["rgb"][0, 0, 0, 0]) for c in crops]
    assert lefts == [0, 15, 30]
    portrait = {"rgb": sample["rgb"].transpose(-1, -2)}
    tops = [int(SpatialCrop(20, p)(portrait)["rgb"][0, 0, 0, 0]) for p in range(3)]
    assert tops == [0, 15, 30]


def test_bare_tensor_in_tensor_out_and_default_pipelines():
    clip = torch.randint(0, 256, (3, 4, 48, 64), dtype=torch.uint8)
    out = train_transform(32)(clip, np.random.default_rng(0))
    assert isinstance(out, torch.Tensor) and out.shape == (3, 4, 32, 32) and out.dtype == torch.uint8
    as_float = train_transform(32, to_float=True)(clip, np.random.default_rng(0))
    assert as_float.dtype == torch.float32 and torch.allclose(as_float, out.float() / 255)
    test_out = eval_transform(32, crop_position=2)(clip)
    assert test_out.shape == (3, 4, 32, 32)
    with pytest.raises(ValueError, match="larger than the clip"):
        CenterCrop(100)(clip)
