"""Spatial transforms applied identically to every modality of a clip.

A *sample* is a dict of clips, ``{"rgb": [3, T, H, W], "flow": [2, T, H, W]}``. RGB may be uint8 (0-255) or
float (0-1); uint8 RGB stays uint8 through every transform (resizing is done in uint8 by OpenCV, never in float
on the CPU), and reaches the model through ``engine.modeling.model_inputs``, which converts it to float in
[0, 1] on the training device. ``ToFloat`` converts on the CPU where a caller wants floats. Flow is float32 in
pixels, channel 0 the x component (right positive) and channel 1 the y component (down positive). Each transform
draws its random parameters once per call and applies them to all modalities, so RGB and flow stay aligned. Because
flow is measured in pixels, resizing scales its components with the image, and a horizontal flip negates x.

Object maps (AssembleNet++, key ``objects``: int64 label ids ``[1, T, H, W]`` or float scores ``[K, T, H, W]``)
follow the same crops, resizes and flips, resampled with nearest-neighbour interpolation so class ids never
blend; ``ToFloat`` leaves them as they are.

Calling a transform on a bare tensor treats it as RGB and returns a tensor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from assemblenet.errors import ConfigError

Sample = dict[str, torch.Tensor]
FLOW_KEYS = ("flow",)
OBJECT_KEYS = ("objects",)


def _pair(size: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(size, int):
        if size < 1:
            raise ConfigError(f"size must be positive, got {size}")
        return size, size
    height, width = (int(s) for s in size)
    if height < 1 or width < 1:
        raise ConfigError(f"size must be positive, got {tuple(size)}")
    return height, width


def _spatial_size(sample: Sample) -> tuple[int, int]:
    sizes = {tuple(clip.shape[-2:]) for clip in sample.values()}
    if len(sizes) != 1:
        raise ValueError(f"modalities differ in spatial size: {sorted(sizes)}")
    return sizes.pop()  # type: ignore[return-value]


def to_float(clip: torch.Tensor) -> torch.Tensor:
    """uint8 [C, T, H, W] 0-255 -> float32 in [0, 1]; float input is returned as float32."""
    if clip.dtype == torch.uint8:
        return clip.to(torch.float32).div_(255.0)
    return clip.to(torch.float32)


def resize_clip(clip: torch.Tensor, size: tuple[int, int], *, is_flow: bool = False) -> torch.Tensor:
    """Resize [C, T, H, W] to ``size = (H', W')``: uint8 RGB in uint8 (``decode.crop_resize``: area averaging
    when shrinking, else bilinear); float clips bilinearly, antialiased when shrinking.

    Flow components are rescaled by the same factors as the image, so they stay in pixels.
    """
    channels, frames, height, width = clip.shape
    if (height, width) == tuple(size):
        return clip
    if clip.dtype == torch.uint8 and not is_flow:
        from assemblenet.data.decode import crop_resize

        frames_hwc = clip.permute(1, 2, 3, 0).numpy()  # [T, H, W, C]
        out = np.stack([crop_resize(frame, (0, 0, height, width), size) for frame in frames_hwc])
        if out.ndim == 3:  # OpenCV drops a single channel
            out = out[..., None]
        return torch.from_numpy(out).permute(3, 0, 1, 2)
    x = to_float(clip).reshape(1, channels * frames, height, width)
    antialias = size[0] < height or size[1] < width
    x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=antialias)
    x = x.reshape(channels, frames, size[0], size[1])
    if is_flow:
        scale = torch.tensor([size[1] / width, size[0] / height], dtype=x.dtype).view(2, 1, 1, 1)
        return x * scale
    return x.clamp_(0.0, 1.0)


def _resize(key: str, clip: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resize one modality of a sample: nearest-neighbour for object maps, bilinear otherwise."""
    if key in OBJECT_KEYS:
        from assemblenet.data.objects import resize_nearest

        return clip if tuple(clip.shape[-2:]) == tuple(size) else resize_nearest(clip, size)
    return resize_clip(clip, size, is_flow=key in FLOW_KEYS)


class Transform:
    """Base class: subclasses implement ``apply(sample, rng) -> sample``."""

    def apply(self, sample: Sample, rng: np.random.Generator) -> Sample:
        raise NotImplementedError

    def __call__(self, sample: Sample | torch.Tensor, rng: np.random.Generator | None = None):
        if rng is None:
            rng = np.random.default_rng(int(torch.randint(0, 2**62, ()).item()))
        if isinstance(sample, torch.Tensor):
            return self.apply({"rgb": sample}, rng)["rgb"]
        return self.apply(dict(sample), rng)

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({fields})"


class Compose(Transform):
    def __init__(self, transforms: Sequence[Callable]) -> None:
        self.transforms = list(transforms)

    def apply(self, sample: Sample, rng: np.random.Generator) -> Sample:
        for transform in self.transforms:
            sample = transform.apply(sample, rng) if isinstance(transform, Transform) else transform(sample, rng)
        return sample


class ToFloat(Transform):
    """RGB uint8 -> float32 in [0, 1]; flow to float32."""

    def apply(self, sample: Sample, rng: np.random.Generator) -> Sample:
        return {key: clip if key in OBJECT_KEYS else to_float(clip) for key, clip in sample.items()}


class Resize(Transform):
    """Resize to a fixed (H, W)."""

    def __init__(self, size: int | Sequence[int]) -> None:
        self.size = _pair(size)

    def apply(self, sample: Sample, rng: np.random.Generator) -> Sample:
        return {k: _resize(k, v, self.size) for k, v in sample.items()}


def short_side_size(height: int, width: int, short_side: int) -> tuple[int, int]:
    if height <= width:
        return short_side, max(1, int(round(width * short_side / height)))
    return max(1, int(round(height * short_side / width))), short_side


class ShortSideResize(Transform):
    """Resize so the shorter side equals ``size``, keeping the aspect ratio."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ConfigError(f"short side must be positive, got {size}")
        self.size = int(size)

    def apply(self, sample: Sample, rng: np.random.Generator) -> Sample:
        target = short_side_size(*_spatial_size(sample), self.size)
        return {k: _resize(k, v, target) for k, v in sample.items()}


def _crop(sample: Sample, top: int, left: int, height: int, width: int) -> Sample:
    return {k: v[..., top:top + height, left:left + width] for k, v in sample.items()}


def _check_fits(sample: Sample, size: tuple[int, int]) -> tuple[int, int]:
    height, width = _spatial_size(sample)
    if size[0] > height or size[1] > width:
        raise ValueError(f"crop {size[0]}x{size[1]} larger than the clip {height}x{width}; resize first")
    return height, width


class CenterCrop(Transform):
    def __init__(self, size: int | Sequence[int]) -> None:
        self.size = _pair(size)

    def apply(self, sample: Sample, rng: np.random.Generator) -> Sample:
        height, width = _check_fits(sample, self.size)
        return _crop(sample, (height - self.size[0]) // 2, (width - self.size[1]) // 2, *self.size)


class SpatialCrop(Transform):
    """One of three square-ish crops along the longer side: 0 = left/top, 1 = centre, 2 = right/bottom.

    This is the test-time "three-crop" of SlowFast/AssembleNet evaluation, one crop per view.
    """

    def __init__(self, size: int | Sequence[int], position: int = 1) -> None:
        if position not in (0, 1, 2):
            raise ConfigError(f"crop position must be 0, 1 or 2, got {position}")
        self.size = _pair(size)
        self.position = position

    def apply(self, sample: Sample, rng: np.random.Generator) -> Sample:
        height, width = _check_fits(sample, self.size)
        top, left = (height - self.size[0]) // 2, (width - self.size[1]) // 2
        if width >= height:
            left = [0, left, width - self.size[1]][self.position]
        else:
            top = [0, top, height - self.size[0]][self.position]
        return _crop(sample, top, left, *self.size)


def three_crop(sample: Sample | torch.Tensor, size: int | Sequence[int]) -> list:
    """The three test crops (left/top, centre, right/bottom) of one sample or RGB tensor."""
    return [SpatialCrop(size, position)(sample) for position in range(3)]


class RandomResizedCrop(Transform):
    """Crop a random area fraction in ``scale`` with aspect ratio (w/h) in ``ratio``, resized to ``size``.

    The same box is used for every frame (and modality), so motion inside the clip is preserved.
    """

    def __init__(self, size: int | Sequence[int], scale: tuple[float, float] = (0.25, 1.0),
                 ratio: tuple[float, float] = (3 / 4, 4 / 3), attempts: int = 10) -> None:
        if not 0 < scale[0] <= scale[1] <= 1:
            raise ConfigError(f"scale must satisfy 0 < min <= max <= 1, got {scale}")
        if not 0 < ratio[0] <= ratio[1]:
            raise ConfigError(f"ratio must satisfy 0 < min <= max, got {ratio}")
        self.size = _pair(size)
        self.scale = (float(scale[0]), float(scale[1]))
        self.ratio = (float(ratio[0]), float(ratio[1]))
        self.attempts = attempts

    def box(self, height: int, width: int, rng: np.random.Generator) -> tuple[int, int, int, int]:
        """(top, left, crop_height, crop_width) drawn as torchvision does, with a centre-crop fallback."""
        area = height * width
        log_ratio = (math.log(self.ratio[0]), math.log(self.ratio[1]))
        for _ in range(self.attempts):
            target_area = area * rng.uniform(*self.scale)
            aspect = math.exp(rng.uniform(*log_ratio))
            crop_w = int(round(math.sqrt(target_area * aspect)))
            crop_h = int(round(math.sqrt(target_area / aspect)))
            if 0 < crop_w <= width and 0 < crop_h <= height:
                top = int(rng.integers(0, height - crop_h + 1))
                left = int(rng.integers(0, width - crop_w + 1))
                return top, left, crop_h, crop_w
        aspect = width / height
        if aspect < self.ratio[0]:
            crop_w, crop_h = width, int(round(width / self.ratio[0]))
        elif aspect > self.ratio[1]:
            crop_h, crop_w = height, int(round(height * self.ratio[1]))
        else:
            crop_w, crop_h = width, height
        return (height - crop_h) // 2, (width - crop_w) // 2, crop_h, crop_w

    def apply(self, sample: Sample, rng: np.random.Generator) -> Sample:
        top, left, crop_h, crop_w = self.box(*_spatial_size(sample), rng)
        cropped = _crop(sample, top, left, crop_h, crop_w)
        return {k: _resize(k, v, self.size) for k, v in cropped.items()}


def hflip(sample: Sample) -> Sample:
    """Mirror left-right; the x component of flow changes sign."""
    flipped = {}
    for key, clip in sample.items():
        clip = torch.flip(clip, dims=(-1,))
        if key in FLOW_KEYS:
            clip = clip.clone()
            clip[0].neg_()
        flipped[key] = clip
    return flipped


class RandomHorizontalFlip(Transform):
    """Flip with probability ``p``. Do not use it where a class depends on left/right direction."""

    def __init__(self, p: float = 0.5) -> None:
        if not 0 <= p <= 1:
            raise ConfigError(f"flip probability must be in [0, 1], got {p}")
        self.p = float(p)

    def apply(self, sample: Sample, rng: np.random.Generator) -> Sample:
        return hflip(sample) if rng.random() < self.p else sample


def train_transform(crop_size: int | None, *, scale: tuple[float, float] = (0.25, 1.0),
                    ratio: tuple[float, float] = (3 / 4, 4 / 3), hflip_prob: float = 0.5,
                    to_float: bool = False) -> Transform:
    """Random resized crop to ``crop_size`` (skipped when None), random flip; RGB stays uint8 unless
    ``to_float`` (the model's inputs are converted on the device by ``engine.modeling.model_inputs``)."""
    steps: list[Transform] = []
    if crop_size is not None:
        steps.append(RandomResizedCrop(crop_size, scale=scale, ratio=ratio))
    if hflip_prob > 0:
        steps.append(RandomHorizontalFlip(hflip_prob))
    if to_float:
        steps.append(ToFloat())
    return Compose(steps)


def eval_transform(crop_size: int | None, *, crop_position: int = 1, to_float: bool = False) -> Transform:
    """Short-side resize to ``crop_size`` and one of the three crops (centre by default); RGB stays uint8
    unless ``to_float``."""
    steps: list[Transform] = []
    if crop_size is not None:
        steps += [ShortSideResize(crop_size), SpatialCrop(crop_size, crop_position)]
    if to_float:
        steps.append(ToFloat())
    return Compose(steps)


_PLANNABLE: tuple[type, ...] = ()  # filled below, once the classes exist


def plannable(transform: Transform | Callable) -> bool:
    """Whether ``spatial_plan`` can work out ``transform`` before decoding (a chain of this module's geometric
    transforms)."""
    steps = transform.transforms if isinstance(transform, Compose) else [transform]
    return all(isinstance(step, _PLANNABLE) for step in steps)


@dataclass(frozen=True)
class SpatialPlan:
    """What a chain of geometric transforms does to a frame, worked out before decoding it: crop ``region``
    ``(top, left, height, width)`` of the frame, resize the crop to ``size`` and mirror it if ``flip``."""

    region: tuple[int, int, int, int]
    size: tuple[int, int]
    flip: bool


def spatial_plan(transform: Transform | Callable, height: int, width: int, rng: np.random.Generator, *,
                 scale: tuple[float, float] = (1.0, 1.0)) -> SpatialPlan | None:
    """The ``SpatialPlan`` of ``transform`` for a clip of ``height x width`` frames, drawing its random numbers
    from ``rng`` in the same order as ``transform.apply`` would, so the result is the same crop and flip.

    ``scale`` maps the clip's pixels to the frame's the region refers to (y, x): a clip decoded with a smaller
    short side is planned in its own size and cut from the full-size frame. Returns None when the transform is
    not a chain of the geometric transforms of this module (``Compose``, ``Resize``, ``ShortSideResize``,
    ``CenterCrop``, ``SpatialCrop``, ``RandomResizedCrop``, ``RandomHorizontalFlip``, ``ToFloat``)."""
    steps = transform.transforms if isinstance(transform, Compose) else [transform]
    # The current image is the frame region (top, left, h, w) in frame pixels, shown at (cur_h, cur_w).
    top, left, region_h, region_w = 0.0, 0.0, height * scale[0], width * scale[1]
    cur_h, cur_w = height, width
    flip = False

    def sub(box_top: float, box_left: float, box_h: float, box_w: float) -> None:
        nonlocal top, left, region_h, region_w
        sy, sx = region_h / cur_h, region_w / cur_w
        if flip:  # a crop of the mirrored image is the mirrored crop of the other side
            box_left = cur_w - box_left - box_w
        top, left, region_h, region_w = top + box_top * sy, left + box_left * sx, box_h * sy, box_w * sx

    for step in steps:
        if isinstance(step, ToFloat):
            continue
        if isinstance(step, Resize):
            cur_h, cur_w = step.size
        elif isinstance(step, ShortSideResize):
            cur_h, cur_w = short_side_size(cur_h, cur_w, step.size)
        elif isinstance(step, (CenterCrop, SpatialCrop)):
            if step.size[0] > cur_h or step.size[1] > cur_w:
                return None  # the transform itself raises; leave it to do so
            box_top, box_left = (cur_h - step.size[0]) // 2, (cur_w - step.size[1]) // 2
            if isinstance(step, SpatialCrop):
                if cur_w >= cur_h:
                    box_left = [0, box_left, cur_w - step.size[1]][step.position]
                else:
                    box_top = [0, box_top, cur_h - step.size[0]][step.position]
            sub(box_top, box_left, *step.size)
            cur_h, cur_w = step.size
        elif isinstance(step, RandomResizedCrop):
            box_top, box_left, box_h, box_w = step.box(cur_h, cur_w, rng)
            sub(box_top, box_left, box_h, box_w)
            cur_h, cur_w = step.size
        elif isinstance(step, RandomHorizontalFlip):
            if rng.random() < step.p:
                flip = not flip
        else:
            return None
    frame_h, frame_w = int(round(height * scale[0])), int(round(width * scale[1]))
    y0, x0 = int(round(top)), int(round(left))
    y1, x1 = min(frame_h, int(round(top + region_h))), min(frame_w, int(round(left + region_w)))
    return SpatialPlan((y0, x0, max(1, y1 - y0), max(1, x1 - x0)), (int(cur_h), int(cur_w)), flip)


_PLANNABLE = (ToFloat, Resize, ShortSideResize, CenterCrop, SpatialCrop, RandomResizedCrop, RandomHorizontalFlip)
