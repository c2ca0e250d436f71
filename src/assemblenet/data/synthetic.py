"""A synthetic action-recognition benchmark that exercises what AssembleNet is about.

The design (documented in docs/data.md) has four groups of classes, each group isolating one property:

- direction: the same textured patch slides right, left, up or down (2 px/frame). Any single frame shows
  the patch at a uniformly random place, so one RGB frame cannot tell these classes apart: motion (flow, or
  several frames) is required.
- speed: the patch slides right at 1, 2 or 4 px/frame (``slide_right_slow``, ``slide_right``,
  ``slide_right_fast``): same direction, same appearance, only the speed differs.
- appearance: a red square, green disk or blue triangle jitters in place with identical random motion;
  one frame is enough, motion is useless.
- temporal pattern: a textured patch that stays still and blinks every frame (``blink_fast``, period 2),
  blinks slowly (``blink_slow``, 8 frames on, 8 off) or stays on (``steady``). Sampling every 2nd frame makes
  ``blink_fast`` look like ``steady`` or like an empty scene, so temporal resolution matters; telling
  ``blink_slow`` from ``steady`` needs a long temporal span.

Every video has its own random static background texture. A share of the videos is multi-label: they hold 2
or 3 actions of different classes, each with its own object, in different (possibly overlapping) time
intervals, as in Charades. Single-action videos show one action for the whole clip.

Everything is a pure function of the seed: video ``v`` is drawn from ``numpy.random.default_rng([seed, v, 0])``
and its bytes are the same on every run and machine (``write_mp4``).

With ``objects=True`` the benchmark also writes the true object maps of every frame (AssembleNet++'s object
stream, ``assemblenet.data.objects``): ``objects/videos/syn_NNNNN.npz`` with ``labels`` uint8 [T, H, W] over the
classes of ``OBJECT_CLASSES`` (two background classes, split by the background texture's brightness, and one per
kind of moving object), listed in ``object_classes.txt``. Writing them draws no random numbers, so the videos are
the same with or without them.
"""

from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from assemblenet.data.annotations import (
    CharadesAction,
    ClassList,
    format_charades_actions,
    write_charades_csv,
    write_class_list,
    write_video_list,
)
from assemblenet.errors import DataError
from assemblenet.fileio import atomic_path, atomic_write_text

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SyntheticClass:
    name: str
    group: str  # direction | speed | appearance | temporal
    description: str


# Ordered so that any prefix of 6 or more classes holds a contrasting pair from each of the first three
# groups; --classes K takes the first K.
SYNTHETIC_CLASSES: tuple[SyntheticClass, ...] = (
    SyntheticClass("slide_right", "direction", "textured patch moves right, 2 px/frame"),
    SyntheticClass("slide_left", "direction", "textured patch moves left, 2 px/frame"),
    SyntheticClass("red_square", "appearance", "red square jittering in place"),
    SyntheticClass("green_disk", "appearance", "green disk jittering in place"),
    SyntheticClass("blink_fast", "temporal", "static textured patch, visible every other frame"),
    SyntheticClass("blink_slow", "temporal", "static textured patch, 8 frames visible, 8 hidden"),
    SyntheticClass("slide_right_fast", "speed", "textured patch moves right, 4 px/frame"),
    SyntheticClass("slide_right_slow", "speed", "textured patch moves right, 1 px/frame"),
    SyntheticClass("slide_up", "direction", "textured patch moves up, 2 px/frame"),
    SyntheticClass("slide_down", "direction", "textured patch moves down, 2 px/frame"),
    SyntheticClass("blue_triangle", "appearance", "blue triangle jittering in place"),
    SyntheticClass("steady", "temporal", "static textured patch, always visible"),
)

_VELOCITY = {  # (dx, dy) in pixels per frame at 64 px; scaled with the frame size
    "slide_right": (2, 0), "slide_left": (-2, 0), "slide_up": (0, -2), "slide_down": (0, 2),
    "slide_right_fast": (4, 0), "slide_right_slow": (1, 0),
}
_APPEARANCE_COLOUR = {"red_square": (220, 40, 40), "green_disk": (40, 200, 60), "blue_triangle": (50, 80, 230)}

# Object classes of the true object maps: background split by brightness, then one per kind of object.
OBJECT_CLASSES = ("background_dark", "background_light", "textured_patch", "red_square", "green_disk",
                  "blue_triangle")
_OBJECT_CLASS_OF = {"red_square": 3, "green_disk": 4, "blue_triangle": 5}  # any other action: textured_patch (2)
OBJECT_DIR = "objects"
OBJECT_CLASSES_FILE = "object_classes.txt"

TRAIN_FILES = {"kinetics": "kinetics_train.csv", "charades": "charades_train.csv"}
VAL_FILES = {"kinetics": "kinetics_val.csv", "charades": "charades_val.csv"}
TEST_FILES = {"kinetics": "kinetics_test.csv"}  # only ``make-synthetic --task compositional`` writes a test split
CLASSES_FILE = "classes.txt"
CHARADES_CLASSES_FILE = "charades_classes.txt"
MANIFEST_FILE = "synthetic.json"
VIDEO_DIR = "videos"


def synthetic_classes(num_classes: int) -> tuple[SyntheticClass, ...]:
    if not 2 <= num_classes <= len(SYNTHETIC_CLASSES):
        raise DataError(f"--classes must be between 2 and {len(SYNTHETIC_CLASSES)}, got {num_classes}")
    return SYNTHETIC_CLASSES[:num_classes]


# -- textures --------------------------------------------------------------------------------------------
def periodic_texture(rng: np.random.Generator, height: int, width: int, *, smoothness: float = 3.0,
                     channels: int = 1) -> np.ndarray:
    """Random smooth texture that tiles seamlessly (band-limited noise), float32 [H, W, C] in [0, 1]."""
    fy = np.fft.fftfreq(height)[:, None]
    fx = np.fft.rfftfreq(width)[None, :]
    envelope = np.exp(-0.5 * (fy**2 + fx**2) * (2 * np.pi * smoothness) ** 2)
    layers = []
    for _ in range(channels):
        spectrum = (rng.standard_normal((height, width // 2 + 1))
                    + 1j * rng.standard_normal((height, width // 2 + 1))) * envelope
        spectrum[0, 0] = 0
        layer = np.fft.irfft2(spectrum, s=(height, width))
        layer = (layer - layer.min()) / max(float(layer.max() - layer.min()), 1e-8)
        layers.append(layer)
    return np.stack(layers, axis=-1).astype(np.float32)


def translating_texture_clip(num_frames: int = 8, height: int = 64, width: int = 64, *, dx: float = 2.0,
                             dy: float = 0.0, seed: int = 0, smoothness: float = 2.0):
    """A smooth periodic colour texture translating by (dx, dy) pixels per frame, with wrap-around.

    The shift is applied in the Fourier domain, so it is exact for any sub-pixel (dx, dy). The true optical
    flow from frame t to t + 1 is (dx, dy) everywhere (x right positive, y down positive).

    Returns:
        float32 tensor [3, T, H, W] in [0, 1].
    """
    import torch

    rng = np.random.default_rng(seed)
    fy = np.fft.fftfreq(height)[:, None]
    fx = np.fft.fftfreq(width)[None, :]
    envelope = np.exp(-0.5 * (fy**2 + fx**2) * (2 * np.pi * smoothness) ** 2)
    grey = (rng.standard_normal((height, width)) + 1j * rng.standard_normal((height, width))) * envelope
    grey[0, 0] = 0
    tints = [grey * weight for weight in (1.0, 0.8, 0.6)]  # correlated channels: one luminance pattern
    frames = np.empty((3, num_frames, height, width), dtype=np.float64)
    for t in range(num_frames):
        phase = np.exp(-2j * np.pi * (fx * dx * t + fy * dy * t))
        for c in range(3):
            frames[c, t] = np.real(np.fft.ifft2(tints[c] * phase))
    scale = max(float(np.abs(frames).max()), 1e-8)
    frames = 0.5 + 0.4 * frames / scale
    return torch.from_numpy(frames.astype(np.float32))


# -- rendering -------------------------------------------------------------------------------------------
def _shape_mask(kind: str, size: int) -> np.ndarray:
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    if kind == "red_square":
        margin = size * 0.12
        return ((xx > margin) & (xx < size - margin) & (yy > margin) & (yy < size - margin)).astype(np.float32)
    if kind == "green_disk":
        return (((xx - size / 2) ** 2 + (yy - size / 2) ** 2) <= (size * 0.42) ** 2).astype(np.float32)
    # blue_triangle: apex up
    apex_y, base_y = size * 0.1, size * 0.9
    half_width = (yy - apex_y) / (base_y - apex_y) * size * 0.45
    return ((yy >= apex_y) & (yy <= base_y) & (np.abs(xx - size / 2) <= half_width)).astype(np.float32)


@dataclass(frozen=True)
class SyntheticAction:
    class_index: int
    start_frame: int
    end_frame: int  # exclusive


@dataclass(frozen=True)
class SyntheticVideoSpec:
    video_id: str
    actions: tuple[SyntheticAction, ...]


def render_video(actions: Sequence[SyntheticAction], classes: Sequence[SyntheticClass], rng: np.random.Generator,
                 *, num_frames: int, size: int, with_objects: bool = False):
    """Draw one video: uint8 [T, H, W, 3] RGB; with ``with_objects``, also its true object map per frame, uint8
    [T, H, W] class ids of ``OBJECT_CLASSES`` (same random draws either way)."""
    texture = periodic_texture(rng, size, size, smoothness=size / 16, channels=3)
    background = 0.35 + 0.3 * texture
    background = background * rng.uniform(0.7, 1.0, size=3).astype(np.float32)
    frames = np.repeat(background[None], num_frames, axis=0)
    labels = None
    if with_objects:
        brightness = texture.mean(axis=-1)
        labels = np.repeat((brightness > np.median(brightness)).astype(np.uint8)[None], num_frames, axis=0)
    sprite = max(4, size // 4)
    scale = size / 64.0
    for action in actions:
        name = classes[action.class_index].name
        layer = np.zeros((size, size, 3), dtype=np.float32)
        alpha = np.zeros((size, size), dtype=np.float32)
        if name in _APPEARANCE_COLOUR:
            mask = _shape_mask(name, sprite)
            shade = 0.85 + 0.15 * periodic_texture(rng, sprite, sprite, smoothness=sprite / 6)[..., 0]
            colour = np.asarray(_APPEARANCE_COLOUR[name], dtype=np.float32) / 255.0
            layer[:sprite, :sprite] = shade[..., None] * colour
        else:
            mask = np.ones((sprite, sprite), dtype=np.float32)
            texture = periodic_texture(rng, sprite, sprite, smoothness=1.0)[..., 0]
            layer[:sprite, :sprite] = (0.1 + 0.8 * texture)[..., None]
        alpha[:sprite, :sprite] = mask
        y0, x0 = int(rng.integers(size)), int(rng.integers(size))
        velocity = _VELOCITY.get(name, (0, 0))
        velocity = (int(round(velocity[0] * scale)) or int(np.sign(velocity[0])),
                    int(round(velocity[1] * scale)) or int(np.sign(velocity[1])))
        jitter = rng.integers(-1, 2, size=(num_frames, 2))
        position = np.array([y0, x0], dtype=np.int64)
        for t in range(action.start_frame, action.end_frame):
            local = t - action.start_frame
            if name in _APPEARANCE_COLOUR:
                y, x = position + np.clip(np.cumsum(jitter[: local + 1], axis=0)[-1], -2, 2)
            else:
                y, x = y0 + velocity[1] * local, x0 + velocity[0] * local
            visible = True
            if name == "blink_fast":
                visible = local % 2 == 0
            elif name == "blink_slow":
                visible = (local // 8) % 2 == 0
            if not visible:
                continue
            shifted_alpha = np.roll(alpha, (int(y), int(x)), axis=(0, 1))[..., None]
            shifted_layer = np.roll(layer, (int(y), int(x)), axis=(0, 1))
            frames[t] = frames[t] * (1 - shifted_alpha) + shifted_layer * shifted_alpha
            if labels is not None:
                labels[t][shifted_alpha[..., 0] > 0.5] = _OBJECT_CLASS_OF.get(name, 2)
    video = np.clip(np.rint(frames * 255.0), 0, 255).astype(np.uint8)
    return (video, labels) if with_objects else video


# x264 picks its own (lookahead) thread counts unless told, so pin them; and ``asm=0``: x264's AVX-512 kernels
# encode identical frames into different bytes from run to run (measured on an AVX-512 EPYC: 10 of 40 encodes
# of one clip differed, only in the I-frame), and its SIMD and C code do not agree bit for bit, so only the
# portable C code gives the same bytes on every run and every CPU. It costs ~4 ms per 64x64x32 clip.
X264_DETERMINISTIC_PARAMS = "threads=1:lookahead-threads=1:sliced-threads=0:asm=0"


def write_mp4(path: str | os.PathLike, frames: np.ndarray, *, fps: int = 10, gop: int = 16, crf: int = 18,
              pix_fmt: str = "yuv420p") -> None:
    """Encode uint8 [T, H, W, 3] RGB frames as H.264 MP4 through PyAV, atomically (``fileio.atomic_path``).

    ``crf=0`` is lossless (for 8-bit x264); with ``pix_fmt="yuv444p"`` the only loss left is the rounding of
    the RGB -> YUV conversion (the compositional task uses this). The bytes are a function of the frames and
    the arguments alone (``X264_DETERMINISTIC_PARAMS``)."""
    import av

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    height, width = frames.shape[1:3]
    if height % 2 or width % 2:
        raise DataError(f"{path}: H.264 needs even frame sizes, got {width}x{height}")
    with atomic_path(path) as tmp, av.open(str(tmp), mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        stream.codec_context.thread_count = 1  # bit-exact output for a given seed
        stream.options = {"crf": str(crf), "preset": "veryfast", "g": str(gop), "keyint_min": str(gop),
                          "threads": "1", "x264-params": X264_DETERMINISTIC_PARAMS}
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


# -- the benchmark ---------------------------------------------------------------------------------------
def plan_videos(*, num_videos: int, classes: Sequence[SyntheticClass], num_frames: int, seed: int,
                multi_label_fraction: float) -> list[SyntheticVideoSpec]:
    """Which actions each video holds. Primary classes go round-robin, so classes are balanced."""
    specs = []
    min_length = max(2, num_frames // 3)
    for v in range(num_videos):
        rng = np.random.default_rng([seed, v, 1])
        primary = v % len(classes)
        if len(classes) >= 2 and rng.random() < multi_label_fraction:
            count = int(rng.integers(2, min(3, len(classes)) + 1))
            others = rng.choice([c for c in range(len(classes)) if c != primary], size=count - 1, replace=False)
            actions = []
            for class_index in [primary, *others.tolist()]:
                length = int(rng.integers(min_length, max(min_length, (2 * num_frames) // 3) + 1))
                start = int(rng.integers(0, num_frames - length + 1))
                actions.append(SyntheticAction(int(class_index), start, start + length))
        else:
            actions = [SyntheticAction(primary, 0, num_frames)]
        specs.append(SyntheticVideoSpec(f"syn_{v:05d}", tuple(actions)))
    return specs


def split_videos(specs: Sequence[SyntheticVideoSpec], *, val_fraction: float, seed: int) -> set[str]:
    """Video ids of the validation split, stratified by each video's first (primary) action."""
    by_class: dict[int, list[str]] = {}
    for spec in specs:
        by_class.setdefault(spec.actions[0].class_index, []).append(spec.video_id)
    rng = np.random.default_rng([seed, 2**31 - 1])
    val: set[str] = set()
    for class_index in sorted(by_class):
        ids = list(by_class[class_index])
        rng.shuffle(ids)
        count = int(math.ceil(val_fraction * len(ids))) if val_fraction > 0 and len(ids) > 1 else 0
        val.update(ids[:count])
    return val


@dataclass
class SyntheticSummary:
    root: str
    num_videos: int
    num_classes: int
    train_videos: int
    val_videos: int
    multi_label_videos: int


def make_synthetic(out_dir: str | os.PathLike, *, num_videos: int = 300, num_classes: int = 12, size: int = 64,
                   num_frames: int = 32, fps: int = 10, seed: int = 0, multi_label_fraction: float = 0.3,
                   val_fraction: float = 0.2, progress: bool = True, objects: bool = False) -> SyntheticSummary:
    """Write the synthetic benchmark to ``out_dir``.

    Layout: ``videos/syn_NNNNN.mp4`` (H.264), ``classes.txt`` and ``kinetics_{train,val}.csv`` (``path,label``;
    single-action videos only), ``charades_classes.txt`` and ``charades_{train,val}.csv`` (Charades columns;
    all videos, actions with time intervals in seconds), and ``synthetic.json`` (parameters and per-video
    actions in frames). With ``objects``, also ``objects/videos/syn_NNNNN.npz`` (true object maps, ``labels``
    uint8 [T, H, W]) and ``object_classes.txt``; give ``objects`` as a dataset's ``object_root``.
    """
    from tqdm import tqdm

    if num_videos < 1:
        raise DataError(f"--videos must be >= 1, got {num_videos}")
    if size < 16 or size % 2:
        raise DataError(f"--size must be an even number >= 16, got {size}")
    if num_frames < 4:
        raise DataError(f"--frames must be >= 4, got {num_frames}")
    if not 0 <= multi_label_fraction <= 1 or not 0 <= val_fraction < 1:
        raise DataError("multi_label_fraction must be in [0, 1] and val_fraction in [0, 1)")
    classes = synthetic_classes(num_classes)
    out = Path(out_dir)
    (out / VIDEO_DIR).mkdir(parents=True, exist_ok=True)
    specs = plan_videos(num_videos=num_videos, classes=classes, num_frames=num_frames, seed=seed,
                        multi_label_fraction=multi_label_fraction)
    val_ids = split_videos(specs, val_fraction=val_fraction, seed=seed)

    for v, spec in enumerate(tqdm(specs, desc="synthetic videos", unit="video", disable=not progress)):
        rng = np.random.default_rng([seed, v, 0])
        if objects:
            frames, labels = render_video(spec.actions, classes, rng, num_frames=num_frames, size=size,
                                          with_objects=True)
            target = out / OBJECT_DIR / VIDEO_DIR / f"{spec.video_id}.npz"
            target.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(target) as tmp, open(tmp, "wb") as handle:
                np.savez_compressed(handle, labels=labels)
        else:
            frames = render_video(spec.actions, classes, rng, num_frames=num_frames, size=size)
        write_mp4(out / VIDEO_DIR / f"{spec.video_id}.mp4", frames, fps=fps)

    names = [c.name for c in classes]
    write_class_list(out / CLASSES_FILE, ClassList.from_names(names))
    if objects:
        write_class_list(out / OBJECT_CLASSES_FILE, ClassList.from_names(list(OBJECT_CLASSES)))
    charades_ids = tuple(f"c{i:03d}" for i in range(len(classes)))
    write_class_list(out / CHARADES_CLASSES_FILE, ClassList(tuple(names), charades_ids))
    length = num_frames / fps
    for split, keep in (("train", lambda vid: vid not in val_ids), ("val", lambda vid: vid in val_ids)):
        chosen = [s for s in specs if keep(s.video_id)]
        kinetics_rows = [(f"{VIDEO_DIR}/{s.video_id}.mp4", names[s.actions[0].class_index])
                         for s in chosen if len(s.actions) == 1]
        write_video_list(out / f"kinetics_{split}.csv", kinetics_rows)
        charades_rows = []
        for s in chosen:
            actions = [CharadesAction(charades_ids[a.class_index], a.start_frame / fps, a.end_frame / fps)
                       for a in sorted(s.actions, key=lambda a: (a.start_frame, a.class_index))]
            charades_rows.append({
                "id": s.video_id, "subject": "SYN", "scene": "synthetic", "quality": "7", "relevance": "7",
                "verified": "Yes", "script": "", "objects": "",
                "descriptions": "; ".join(f"{names[a.class_index]} from frame {a.start_frame} to {a.end_frame}"
                                          for a in s.actions),
                "actions": format_charades_actions(actions), "length": f"{length:.2f}"})
        write_charades_csv(out / f"charades_{split}.csv", charades_rows)

    manifest = {
        "generator": "assemblenet.data.synthetic.make_synthetic",
        "parameters": {"num_videos": num_videos, "num_classes": num_classes, "size": size,
                       "num_frames": num_frames, "fps": fps, "seed": seed,
                       "multi_label_fraction": multi_label_fraction, "val_fraction": val_fraction,
                       **({"objects": True} if objects else {})},
        **({"object_classes": list(OBJECT_CLASSES), "object_maps": f"{OBJECT_DIR}/{VIDEO_DIR}/<id>.npz"}
           if objects else {}),
        "classes": [asdict(c) for c in classes],
        "videos": [{"id": s.video_id, "split": "val" if s.video_id in val_ids else "train",
                    "actions": [{"class": names[a.class_index], "start_frame": a.start_frame,
                                 "end_frame": a.end_frame} for a in s.actions]} for s in specs],
    }
    atomic_write_text(out / MANIFEST_FILE, json.dumps(manifest, indent=1))  # no trailing newline, as ever
    multi = sum(1 for s in specs if len(s.actions) > 1)
    return SyntheticSummary(str(out), num_videos, len(classes), num_videos - len(val_ids), len(val_ids), multi)
