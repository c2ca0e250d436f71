"""The fast input path: decode less (skip_frame), convert only sampled frames, crop+resize in uint8 while
converting, uint8 through collation, float on the device."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from assemblenet.data import ClassList, ClipSampling, ClipViews, VideoDataset, VideoItem, collate
from assemblenet.data.decode import VideoReader, crop_resize
from assemblenet.data.transforms import RandomResizedCrop, spatial_plan, train_transform
from tests.data.conftest import encode_video


def textured_frames(num_frames: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    """Smooth random texture panning right, so every frame differs and lossy coding keeps detail."""
    import cv2

    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (height // 4 + 2, (width + 2 * num_frames) // 4 + 2, 3), dtype=np.uint8)
    texture = cv2.resize(coarse, ((width + 2 * num_frames), height), interpolation=cv2.INTER_CUBIC)
    return np.stack([texture[:, 2 * t:2 * t + width] for t in range(num_frames)])


@pytest.fixture(scope="module")
def bframe_video(tmp_path_factory) -> Path:
    """H.264 with B-frames (x264 veryfast: 3 B-frames, B-pyramid) and one keyframe every 30 frames."""
    path = tmp_path_factory.mktemp("fast") / "bframes.mp4"
    return encode_video(path, textured_frames(60, 48, 64), fps=30, gop=30)


def reference_rgb(path: Path) -> list[np.ndarray]:
    """Every frame through PyAV's own rgb24 conversion (swscale), decoded in order: the reference decode."""
    import av

    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


def test_skipping_unreferenced_frames_leaves_the_output_exact(bframe_video):
    indices = list(range(37, 59, 2))  # after the second keyframe's pre-roll, every other frame
    with VideoReader(bframe_video, skip_nonref=False) as reader:
        full = reader.get_frames(indices)
    with VideoReader(bframe_video, skip_nonref=True) as reader:
        skipped = reader.get_frames(indices)
        assert reader._stream.codec_context.skip_frame == "DEFAULT"  # left as found for the next call
    assert np.array_equal(full, skipped)


def test_skipping_decodes_fewer_frames(bframe_video):
    """The skip really happens: the decoder outputs fewer frames for the same clip."""
    import av

    counts = {}
    for skip in (False, True):
        with VideoReader(bframe_video, skip_nonref=skip) as reader:
            original = reader._decoded_frames
            produced = []

            def counting(*args, original=original, produced=produced):
                for frame in original(*args):
                    produced.append(frame.pts)
                    yield frame
            reader._decoded_frames = counting
            reader.get_frames([40, 50])
            counts[skip] = len(produced)
    assert counts[True] < counts[False]
    assert av  # PyAV decodes both


def test_frames_agree_with_the_reference_decode(bframe_video):
    """Tolerance: OpenCV's BT.601 YUV->RGB and swscale's differ by rounding: mean |diff| <= 1.5, max <= 6."""
    reference = reference_rgb(bframe_video)
    indices = [0, 5, 31, 44, 59]
    with VideoReader(bframe_video) as reader:
        frames = reader.get_frames(indices)
    expected = np.stack([reference[i] for i in indices]).astype(np.int16)
    diff = np.abs(frames.astype(np.int16) - expected)
    assert frames.dtype == np.uint8 and frames.shape == expected.shape
    assert diff.mean() <= 1.5 and diff.max() <= 6


def test_crop_and_resize_while_converting_agree_with_float_resize_of_the_reference(bframe_video):
    """uint8 crop+resize against the reference frames cropped and resized in float (antialiased bilinear):
    mean |diff| <= 3 grey levels."""
    reference = reference_rgb(bframe_video)
    indices = [3, 20, 50]
    region, size = (6, 10, 30, 40), (24, 24)
    with VideoReader(bframe_video) as reader:
        frames = reader.get_frames(indices, region=region, size=size)
    top, left, height, width = region
    crops = torch.from_numpy(np.stack([reference[i][top:top + height, left:left + width] for i in indices]))
    expected = torch.nn.functional.interpolate(crops.permute(0, 3, 1, 2).float(), size=size, mode="bilinear",
                                               antialias=True, align_corners=False).permute(0, 2, 3, 1)
    assert frames.shape == (3, 24, 24, 3) and frames.dtype == np.uint8
    assert float((torch.from_numpy(frames).float() - expected).abs().mean()) <= 3.0


def test_region_function_is_called_with_the_frame_size(bframe_video):
    seen = []

    def region(height, width):
        seen.append((height, width))
        return (0, 0, height, width), (16, 20)

    with VideoReader(bframe_video) as reader:
        frames = reader.get_frames([1, 2, 3], region=region)
    assert seen == [(48, 64)] and frames.shape == (3, 16, 20, 3)


def test_region_function_returning_a_region_alone_needs_size(bframe_video):
    # Such a function leaves the output size to size=(H, W); without it the call used to fail deep in
    # crop_resize with "'NoneType' object is not subscriptable".
    with VideoReader(bframe_video) as reader, pytest.raises(ValueError, match=r"region needs size=\(H, W\)"):
        reader.get_frames([1, 2], region=lambda height, width: (0, 0, height, width))


def test_crop_resize_rejects_a_region_outside_the_frame():
    with pytest.raises(ValueError, match="outside"):
        crop_resize(np.zeros((10, 10, 3), np.uint8), (5, 5, 8, 8), (4, 4))


def test_spatial_plan_draws_what_the_transform_draws():
    """The plan uses the random numbers in the transform's order: same box and flip as applying it."""
    transform = train_transform(16, hflip_prob=0.5)
    for seed in range(20):
        plan = spatial_plan(transform, 40, 60, np.random.default_rng(seed))
        rng = np.random.default_rng(seed)
        box = transform.transforms[0].box(40, 60, rng)
        flip = rng.random() < 0.5
        assert plan.region == box and plan.flip == flip and plan.size == (16, 16)


def _dataset(path: Path, *, decode_short_side: int | None = None, clips_per_video: int = 1,
             **view_fields) -> VideoDataset:
    items = [VideoItem(path=str(path), labels=(0,), video_id="v", key="v")]
    return VideoDataset(items, classes=ClassList.from_names(["a"]), sampling=ClipSampling(num_frames=6, stride=2),
                        views=ClipViews(crop_size=24, **view_fields), decode_short_side=decode_short_side,
                        clips_per_video=clips_per_video)


@pytest.mark.parametrize("mode", ["train", "test"])
def test_planned_clips_equal_the_transform_applied_after_decoding(bframe_video, mode):
    """The fast path (crop planned before decoding) gives the clip the generic path (decode, then transform)
    gives, byte for byte: same frames, same box, same flip, same uint8 resize."""
    fast = _dataset(bframe_video, mode=mode, num_clips=2, num_crops=3)
    slow = _dataset(bframe_video, mode=mode, num_clips=2, num_crops=3)
    slow.transforms = [lambda sample, rng, t=t: t.apply(sample, rng) for t in slow.transforms]  # not plannable
    for index in range(len(fast)):
        torch.manual_seed(index)
        clip_fast, _, meta_fast = fast[index]
        torch.manual_seed(index)
        clip_slow, _, meta_slow = slow[index]
        assert meta_fast["frame_indices"] == meta_slow["frame_indices"]
        assert clip_fast.dtype == torch.uint8 and clip_fast.shape == (3, 6, 24, 24)
        assert torch.equal(clip_fast, clip_slow)


def test_planned_clip_with_decode_short_side_is_cut_from_the_full_frame(bframe_video):
    """With ``decode_short_side`` the plan is drawn at the shrunk size and cut from the full-size frame: close to
    shrinking first and cropping after (one resample instead of two)."""
    fast = _dataset(bframe_video, decode_short_side=32, hflip_prob=0.0)
    slow = _dataset(bframe_video, decode_short_side=32, hflip_prob=0.0)
    slow.transforms = [lambda sample, rng, t=t: t.apply(sample, rng) for t in slow.transforms]
    for seed in range(4):
        torch.manual_seed(seed)
        a, _, _ = fast[0]
        torch.manual_seed(seed)
        b, _, _ = slow[0]
        assert a.shape == b.shape == (3, 6, 24, 24)
        # Compared blurred: the resamplers (shrink then crop, or crop from the full frame) differ on this fine
        # texture.
        blur = torch.nn.functional.avg_pool2d
        a, b = (blur(x.float().reshape(18, 24, 24), 3, 1, 1) for x in (a, b))
        assert float((a - b).abs().mean()) <= 14.0  # another random draw differs by 27-47


def test_uint8_batches_reach_the_model_as_normalised_floats(bframe_video):
    from assemblenet.engine.modeling import model_inputs

    dataset = _dataset(bframe_video)
    batch, _, _ = collate([dataset[0], dataset[0]])
    assert batch.dtype == torch.uint8 and batch.shape == (2, 3, 6, 24, 24)
    (rgb,) = model_inputs(batch, torch.device("cpu"))
    assert rgb.dtype == torch.float32 and torch.allclose(rgb, batch.float() / 255)
    assert 0 <= float(rgb.min()) and float(rgb.max()) <= 1
    (rgb16,) = model_inputs(batch, torch.device("cpu"), dtype=torch.bfloat16)
    assert rgb16.dtype == torch.bfloat16 and torch.allclose(rgb16.float(), batch.float() / 255, atol=4e-3)


def test_flow_and_object_inputs_are_not_rescaled():
    from assemblenet.engine.modeling import model_inputs

    rgb = torch.full((1, 3, 2, 4, 4), 255, dtype=torch.uint8)
    flow = torch.full((1, 2, 2, 4, 4), 3.5)
    objects = torch.full((1, 1, 2, 4, 4), 7, dtype=torch.int64)
    out_rgb, out_flow, out_objects = model_inputs({"rgb": rgb, "flow": flow, "objects": objects}, torch.device("cpu"))
    assert torch.equal(out_rgb, torch.ones(1, 3, 2, 4, 4))
    assert torch.equal(out_flow, flow) and torch.equal(out_objects, objects) and out_objects.dtype == torch.int64
    float_rgb = torch.rand(1, 3, 2, 4, 4)
    assert torch.equal(model_inputs(float_rgb, torch.device("cpu"))[0], float_rgb)  # float RGB: [0, 1] already


def test_random_resized_crop_box_is_inside_the_frame():
    crop = RandomResizedCrop(16)
    rng = np.random.default_rng(0)
    for _ in range(50):
        top, left, height, width = crop.box(30, 50, rng)
        assert 0 <= top and 0 <= left and top + height <= 30 and left + width <= 50


def test_clips_per_video_gives_k_differently_cropped_clips_of_one_span(bframe_video):
    dataset = _dataset(bframe_video, clips_per_video=3)
    torch.manual_seed(0)
    clip, target, meta = dataset[0]
    assert clip.shape == (3, 3, 6, 24, 24) and clip.dtype == torch.uint8 and target.shape == (3,)
    assert not torch.equal(clip[0], clip[1]) or not torch.equal(clip[1], clip[2])  # own crops
    batch, targets, metas = collate([dataset[0], dataset[0]])
    assert batch.shape == (6, 3, 6, 24, 24) and targets.shape == (6,)
    assert len(metas["frame_indices"]) == 6 and "clips" not in metas
    # The same span: each clip equals the one-clip path's crop of the same frames for the same draw.
    one = _dataset(bframe_video)
    torch.manual_seed(5)
    k_clips, _, k_meta = dataset[0]
    assert len(set(map(tuple, [k_meta["frame_indices"]]))) == 1
    assert _dataset(bframe_video, mode="test", clips_per_video=3).clips_per_video == 1  # test mode: one per view
    assert one.clips_per_video == 1


def test_batch_memory_at_32x224_batch_8():
    """What one batch weighs in /dev/shm (a worker's collated batch is shared with the main process): uint8
    RGB at 32x224, batch 8, is 38.5 MB, a quarter of float32's; prefetch 2 holds two per worker."""
    from assemblenet.data.datasets.base import batch_bytes

    assert batch_bytes(8, 32, 224) == 8 * 3 * 32 * 224 * 224 == 38_535_168
    assert batch_bytes(8, 32, 224, dtype=torch.float32) == 4 * batch_bytes(8, 32, 224)
    clip = torch.zeros(3, 32, 224, 224, dtype=torch.uint8)
    batch, _, _ = collate([(clip, torch.tensor(0), {}) for _ in range(8)])
    assert batch.numel() * batch.element_size() == batch_bytes(8, 32, 224)
