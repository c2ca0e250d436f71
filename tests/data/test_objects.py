"""Object maps (AssembleNet++'s object stream): storage formats, clear errors, and alignment with the clip."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from assemblenet.data import ClipSampling, ClipViews, build_dataset
from assemblenet.data.objects import ObjectMapStore, resize_nearest
from assemblenet.data.synthetic import OBJECT_CLASSES, make_synthetic
from assemblenet.data.transforms import (
    CenterCrop,
    RandomHorizontalFlip,
    RandomResizedCrop,
    Resize,
    ShortSideResize,
    SpatialCrop,
    eval_transform,
    hflip,
    train_transform,
)
from assemblenet.errors import DataError

NUM_CLASSES = 9


def block_sample(height=64, width=80, frames=3, seed=0):
    """Labels constant on 16x16 blocks (random per block and frame) and RGB whose red channel encodes them."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, NUM_CLASSES, size=(frames, height // 16, width // 16))
    labels = torch.from_numpy(np.kron(blocks, np.ones((16, 16), dtype=np.int64)))[None]  # [1, T, H, W]
    red = (labels.float() * 20 + 30).to(torch.uint8)
    rgb = torch.cat([red, torch.full_like(red, 7), torch.full_like(red, 200)])
    return {"rgb": rgb, "objects": labels}


def assert_aligned(sample):
    rgb, labels = sample["rgb"], sample["objects"]
    assert labels.dtype == torch.int64 and labels.shape[0] == 1 and labels.shape[1:] == rgb.shape[1:]
    decoded = (rgb[0] * 255.0 - 30) / 20
    # Block interiors: the red channel is flat around the pixel (a blend across block edges is a ramp, and a ramp
    # value can coincide with another class's code).
    red = rgb[0].unsqueeze(1)  # [T, 1, H, W]
    spread = torch.nn.functional.max_pool2d(red, 3, 1, 1) + torch.nn.functional.max_pool2d(-red, 3, 1, 1)
    clean = (spread[:, 0] < 1e-4) & ((decoded - decoded.round()).abs() < 1e-3)
    assert clean.float().mean() > 0.25  # many pixels are block interiors, so the check below has teeth
    assert torch.equal(decoded.round().long()[clean], labels[0][clean])


TRANSFORMS = {
    "random_resized_crop": RandomResizedCrop(48, scale=(0.2, 1.0)),
    "random_resized_crop_upscale": RandomResizedCrop(96, scale=(0.3, 0.6)),
    "center_crop": CenterCrop(40),
    "spatial_crop_left": SpatialCrop(40, 0),
    "spatial_crop_right": SpatialCrop(40, 2),
    "short_side_resize": ShortSideResize(48),
    "resize": Resize((50, 30)),
    "flip": RandomHorizontalFlip(1.0),
    "train": train_transform(56, scale=(0.3, 1.0), hflip_prob=0.5),
    "eval_left": eval_transform(48, crop_position=0),
    "eval_right": eval_transform(48, crop_position=2),
}


@pytest.mark.parametrize("name", sorted(TRANSFORMS))
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_object_maps_stay_aligned_with_the_clip_under_every_transform(name, seed):
    sample = block_sample(seed=seed)
    out = TRANSFORMS[name](sample, np.random.default_rng(seed))
    if name not in ("flip", "center_crop", "spatial_crop_left", "spatial_crop_right"):
        assert out["rgb"].shape[-2:] != sample["rgb"].shape[-2:]
    assert_aligned({"rgb": out["rgb"].float() / 255 if out["rgb"].dtype == torch.uint8 else out["rgb"],
                    "objects": out["objects"]})


def test_a_flip_moves_the_maps_with_the_frames():
    sample = block_sample()
    flipped = hflip(sample)
    assert torch.equal(flipped["objects"], sample["objects"].flip(-1))
    assert not torch.equal(flipped["objects"], sample["objects"])


def test_score_maps_are_resampled_nearest_and_never_blended():
    scores = torch.rand(4, 2, 8, 8)
    out = resize_nearest(scores, (13, 5))
    values = set(scores.flatten().tolist())
    assert out.shape == (4, 2, 13, 5) and set(out.flatten().tolist()) <= values


# -- the store ------------------------------------------------------------------------------------------
def test_the_three_storage_formats_give_the_same_maps(tmp_path):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, NUM_CLASSES, size=(6, 10, 12)).astype(np.uint8)
    np.savez(tmp_path / "a.npz", labels=labels)
    scores = np.eye(NUM_CLASSES, dtype=np.float32)[labels].transpose(0, 3, 1, 2)  # one-hot [N, K, H, W]
    np.savez_compressed(tmp_path / "b.npz", scores=scores)
    (tmp_path / "c").mkdir()
    for t, frame in enumerate(labels):
        cv2.imwrite(str(tmp_path / "c" / f"{t + 1:05d}.png"), frame)
    store = ObjectMapStore(tmp_path, num_classes=NUM_CLASSES)
    frames = [5, 0, 0, 3]
    from_npz = store.load("a", frames)
    from_png = store.load("c", frames)
    from_scores = store.load("b", frames)
    assert from_npz.shape == (1, 4, 10, 12) and torch.equal(from_npz, from_png)
    assert from_scores.shape == (NUM_CLASSES, 4, 10, 12)
    assert torch.equal(from_scores.argmax(0), from_npz[0])
    assert torch.equal(from_npz[0, 0], torch.from_numpy(labels[5]).long())
    resized = store.load("a", frames, size=(20, 24))  # maps at half the video size: nearest upsampling
    assert torch.equal(resized[..., ::2, ::2], from_npz)


@pytest.mark.parametrize("write, message", [
    (lambda p: None, r"v\.npz: object maps not found"),
    (lambda p: np.savez(p / "v.npz", labels=np.zeros((2, 4, 4), np.uint8)), r"v\.npz: holds object maps for 2 frames"),
    (lambda p: np.savez(p / "v.npz", labels=np.full((4, 4, 4), 9, np.uint8)), r"label ids must be in 0\.\.8"),
    (lambda p: np.savez(p / "v.npz", scores=np.zeros((4, 3, 4, 4), np.float32)), r"v\.npz: score maps have 3 classes"),
    (lambda p: np.savez(p / "v.npz", maps=np.zeros((4, 4), np.float32)), r"v\.npz: expected integer label ids"),
    (lambda p: (p / "v.npz").write_bytes(b"not a zip"), r"v\.npz: unreadable object maps"),
])
def test_missing_or_mis_shaped_maps_are_clear_errors_naming_the_file(tmp_path, write, message):
    write(tmp_path)
    with pytest.raises(DataError, match=message):
        ObjectMapStore(tmp_path, num_classes=NUM_CLASSES).load("v", [0, 3])


# -- datasets -------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def synthetic_with_objects(tmp_path_factory):
    root = tmp_path_factory.mktemp("synthetic_plus")
    make_synthetic(root, num_videos=12, num_classes=4, num_frames=16, size=64, objects=True, progress=False,
                   multi_label_fraction=0.0)
    return root


def test_make_synthetic_objects_writes_true_masks_without_changing_the_videos(synthetic_with_objects, tmp_path):
    plain = tmp_path / "plain"
    make_synthetic(plain, num_videos=12, num_classes=4, num_frames=16, size=64, progress=False,
                   multi_label_fraction=0.0)
    for video in sorted((plain / "videos").glob("*.mp4")):
        assert video.read_bytes() == (synthetic_with_objects / "videos" / video.name).read_bytes()
    assert not (plain / "objects").exists()
    labels = np.load(synthetic_with_objects / "objects" / "videos" / "syn_00002.npz")["labels"]  # a red square
    assert labels.shape == (16, 64, 64) and labels.dtype == np.uint8
    assert set(np.unique(labels)) == {0, 1, OBJECT_CLASSES.index("red_square")}
    assert (synthetic_with_objects / "object_classes.txt").read_text().split() == list(OBJECT_CLASSES)


@pytest.mark.parametrize("split, views", [
    ("train", ClipViews(crop_size=48, scale=(0.3, 1.0), hflip_prob=0.5)),
    ("val", ClipViews(crop_size=40, mode="test", num_clips=2, num_crops=3)),
])
def test_dataset_maps_match_the_decoded_frames_after_crops_and_flips(synthetic_with_objects, split, views):
    torch.manual_seed(0)
    dataset = build_dataset("synthetic", root=synthetic_with_objects, split=split,
                            sampling=ClipSampling(num_frames=8), views=views,
                            object_root=synthetic_with_objects / "objects", num_object_classes=len(OBJECT_CLASSES))
    red_class = OBJECT_CLASSES.index("red_square")
    checked = 0
    for index in range(len(dataset)):
        clip, _, meta = dataset[index]
        assert set(clip) == {"rgb", "objects"} and clip["objects"].shape[1:] == clip["rgb"].shape[1:]
        red = clip["objects"][0] == red_class
        # Drop the mask's outline, where H.264 and resampling blend colours.
        eroded = (-torch.nn.functional.max_pool2d(-red.float(), 3, 1, 1)).bool()
        if eroded.sum() < 10:
            continue
        r, g, b = clip["rgb"].float().div(255)  # RGB arrives as uint8
        redness = ((r - g > 0.25) & (r - b > 0.25))[eroded].float().mean()
        assert redness > 0.9, (index, meta["video_id"], redness)
        assert ((r - g > 0.25) & (r - b > 0.25))[clip["objects"][0] < 2].float().mean() < 0.05  # background
        checked += 1
    assert checked >= 2


def test_a_video_without_maps_is_a_counted_skip(synthetic_with_objects, tmp_path):
    import shutil

    objects = tmp_path / "objects"
    shutil.copytree(synthetic_with_objects / "objects", objects)
    missing = sorted((objects / "videos").glob("*.npz"))[0]
    missing.unlink()
    dataset = build_dataset("synthetic", root=synthetic_with_objects, split="train",
                            sampling=ClipSampling(num_frames=4), views=ClipViews(crop_size=32), object_root=objects,
                            num_object_classes=len(OBJECT_CLASSES))
    for index in range(len(dataset)):
        dataset[index]
    assert dataset.num_skipped == 1
    (path, reason), = dataset.skipped.items()
    assert path.endswith(missing.stem + ".mp4") and f"{missing.name}: object maps not found" in reason
