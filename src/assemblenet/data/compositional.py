"""A compositional synthetic task: every class is a conjunction of four binary factors, each needing a different
modality or temporal scale, so that no stream restricted to flow, or to a coarse temporal resolution, can
solve it alone (a full-resolution RGB stream can: see the learnability probe in docs/data.md). Written by
``assemblenet make-synthetic OUT --task compositional``; documented in docs/data.md.

One square object (1/4 of the frame side, with a fine grey texture) moves horizontally over a random static
background texture; what varies between classes:

========== ================= =====================================================================
factor     values            what a model needs to read it
========== ================= =====================================================================
colour     teal, coral       appearance (RGB). One frame suffices. The two colours have the same
                             grey level under the representation-flow layer's grey conversion
                             (the channel mean; also under BT.601 luma), so flow is blind to it.
direction  right, left       motion: the direction of the first half. The start position is
                             uniform, so one frame cannot tell it; flow or several frames can.
pattern    steady, blink     short temporal scale: ``blink`` is visible on every other frame
                             (random phase). Needs frame-to-frame (dilation/stride 1) comparison:
                             sampled every 2nd frame it looks steady (or absent).
course     oneway, return    long temporal scale: ``return`` reverses the motion at frame T/2.
                             Any window inside one half of the video sees a single direction, and
                             ``right``-``return`` seen there is ``right``-``oneway`` (first half) or
                             ``left``-``oneway`` (second half): it takes a temporal view across the
                             midpoint, with order, to tell course and direction apart.
========== ================= =====================================================================

The 16 classes are the full factorial, named ``{colour}_{direction}_{pattern}_{course}``:

=================================  ======  =========  =======  =======
class                              colour  direction  pattern  course
=================================  ======  =========  =======  =======
``teal_right_steady_oneway``       teal    right      steady   oneway
``teal_right_steady_return``       teal    right      steady   return
``teal_right_blink_oneway``        teal    right      blink    oneway
``teal_right_blink_return``        teal    right      blink    return
``teal_left_steady_oneway``        teal    left       steady   oneway
``teal_left_steady_return``        teal    left       steady   return
``teal_left_blink_oneway``         teal    left       blink    oneway
``teal_left_blink_return``         teal    left       blink    return
``coral_...`` (same eight)         coral   ...        ...      ...
=================================  ======  =========  =======  =======

No factor, pair or triple of factors identifies a class: each class is told from its four nearest classes by
a different factor, one of each kind, so a model that reads k of the 4 factors (and guesses the rest) tops out
at 2**(k - 4) top-1 (50 % when one factor is missing, 6.25 % = chance with none). A design whose nearest
classes differ in two or more factors cannot do this: with every pair of classes differing in >= 2 factors,
dropping any one factor still separates all classes, so that factor would not be needed.

Videos are ``DEFAULT_NUM_FRAMES`` = 8 frames long by default (the turn at frame 4, four blinks), so that one
8-frame clip at stride 1 is the whole video: every view a model is trained on or scored on shows every
class-defining event. A dataset on a compositional folder refuses clips that are not the whole video
(:func:`check_views_show_whole_video`): a shorter clip can miss the turn, and then ``*_oneway`` and ``*_return``
cannot be told apart from what the model is shown (the protocol of issue 27; docs/data.md).

Splits are fixed and stratified: ``train``/``val``/``test`` hold the same number of videos of every class, and
video ``i`` of split ``s`` is drawn from ``numpy.random.default_rng([seed, SPLIT_STREAMS[s], i])`` (its own
background, start position, blink phase and object texture), so the val and test sets do not depend on the
train size, and the files are the same bytes for a given seed (see ``write_mp4``).
Videos are lossless H.264 4:4:4 (``ENCODING``), so the equal-grey colours stay equal grey once decoded.
"""

from __future__ import annotations

import itertools
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, TypedDict

import numpy as np

from assemblenet.data.annotations import ClassList, write_class_list, write_video_list
from assemblenet.data.sampling import ClipSampling, DatasetMode, clip_indices, uniform_clip_positions
from assemblenet.data.synthetic import CLASSES_FILE, MANIFEST_FILE, VIDEO_DIR, periodic_texture, write_mp4
from assemblenet.errors import DataError
from assemblenet.fileio import atomic_write_json

TASK = "compositional"
SPLITS = ("train", "val", "test")
SPLIT_STREAMS = {"train": 0, "val": 1, "test": 2}
SPLIT_FILES = {split: f"kinetics_{split}.csv" for split in SPLITS}
# Frames per video: one 8-frame clip at stride 1 (the shipped configs' data.num_frames) is the whole video, so
# training, the search's proxy and the test all see the turn (frame 4) and four blinks in every view, at the
# compute of an 8-frame clip. 16-frame videos scored as two 8-frame clips (the protocol before issue 27) show
# no clip the turn (frame 8), which caps test top-1 near 0.5.
DEFAULT_NUM_FRAMES = 8

# Two colours with the same channel sum (450 = 3 x 150), so the same grey under the representation-flow
# layer's conversion (the plain channel mean, models/rep_flow.py). They lie on the line
# 150 + s * (-0.473, 0.185, 0.288) (s = +-180), the direction orthogonal to both (1, 1, 1) and the BT.601
# luma weights, so their BT.601 luma (OpenCV's RGB2GRAY, the H.264 Y plane) is also 150 within 0.12: the
# precomputed-flow path and the encoded Y plane do not see the colour either. Grey 150 sits above every
# background grey (<= 102), so the object always has contrast for flow; |s| = 180 keeps every channel at least
# 16 levels inside [0, 255] for the +-12 object texture.
COLOURS: dict[str, tuple[int, int, int]] = {"teal": (65, 183, 202), "coral": (235, 117, 98)}
OBJECT_GREY = 150


class Encoding(TypedDict):
    """The keywords :func:`~assemblenet.data.synthetic.write_mp4` takes for the task's videos."""

    pix_fmt: str
    crf: int


# Lossless H.264 in 4:4:4: the equal grey survives encoding within 1 level (the RGB -> YUV rounding; 0.7 at
# most, measured). Lossy 4:2:0 (crf 18, the benchmark's setting) quantises and subsamples the two colours'
# chroma differently and leaves up to ~16 grey levels of difference along the object's edges, enough to make
# the representation flow of the two colours differ. At 32 px a lossless video is about 10 KB.
ENCODING: Encoding = {"pix_fmt": "yuv444p", "crf": 0}
TEXTURE_AMPLITUDE = 12  # the object's texture: the same integer offset in [-12, 12] added to R, G and B

FACTORS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("colour", ("teal", "coral")),
    ("direction", ("right", "left")),
    ("pattern", ("steady", "blink")),
    ("course", ("oneway", "return")),
)
FACTOR_NEEDS: dict[str, dict[str, str]] = {
    "colour": {"modality": "rgb", "scale": "one frame",
               "why": "equal grey under the flow layer's conversion: flow is blind to it"},
    "direction": {"modality": "flow or several rgb frames", "scale": "two frames",
                  "why": "uniform random start position: one frame cannot tell it"},
    "pattern": {"modality": "rgb or flow", "scale": "short (dilation/stride 1)",
                "why": "blink = visible on every other frame; at stride 2 it looks steady or absent"},
    "course": {"modality": "flow or several rgb frames", "scale": "long (across the clip's midpoint)",
               "why": "return = motion reverses at frame T/2; each half alone looks like a oneway class"},
}


@dataclass(frozen=True)
class CompositionalClass:
    name: str
    colour: str
    direction: str
    pattern: str
    course: str

    @property
    def factors(self) -> dict[str, str]:
        return {"colour": self.colour, "direction": self.direction, "pattern": self.pattern, "course": self.course}


COMPOSITIONAL_CLASSES: tuple[CompositionalClass, ...] = tuple(
    CompositionalClass("_".join(values), *values) for values in itertools.product(*(v for _, v in FACTORS))
)


def flow_layer_grey(rgb: np.ndarray) -> np.ndarray:
    """The grey image the representation-flow layer computes flow on: the mean over the channel axis (last
    axis here; ``rgb.mean(dim=1)`` on ``[B, 3, T, H, W]`` in models/rep_flow.py, before its min/max rescale).
    The tests check this against the layer itself."""
    return np.asarray(rgb, dtype=np.float64).mean(axis=-1)


def speed_for(size: int) -> int:
    """Pixels per frame: 1 at 32 px, scaled with the frame size."""
    return max(1, int(round(size / 32)))


def trajectory(direction: str, course: str, *, num_frames: int, speed: int) -> np.ndarray:
    """Horizontal offset of the object from its start, per frame (int64 [T]). ``return`` turns at frame T/2:
    the flow from frame t to t + 1 points the first-half way for t < T/2 and the other way for t >= T/2."""
    sign = 1 if direction == "right" else -1
    t = np.arange(num_frames)
    half = num_frames // 2
    steps = np.where(t <= half, t, 2 * half - t) if course == "return" else t
    return sign * speed * steps


def visibility(pattern: str, *, num_frames: int, phase: int) -> np.ndarray:
    """Whether the object is drawn in each frame (bool [T]); ``blink`` shows it on frames t with
    (t + phase) even."""
    t = np.arange(num_frames)
    if pattern == "blink":
        return (t + phase) % 2 == 0
    return np.ones(num_frames, dtype=bool)


@dataclass(frozen=True)
class RenderInfo:
    start: tuple[int, int]  # (y, x) of the object's top-left corner in frame 0 (before wrap-around)
    blink_phase: int


def render_compositional(cls: CompositionalClass, rng: np.random.Generator, *, num_frames: int,
                         size: int) -> tuple[np.ndarray, RenderInfo]:
    """Draw one video of class ``cls``: uint8 [T, H, W, 3] RGB, and where the object started.

    The random draws do not depend on the class, so the same ``rng`` state gives the same background, start
    position, blink phase and object texture for every class (the tests compare classes that way)."""
    texture = periodic_texture(rng, size, size, smoothness=size / 16, channels=3)
    tint = rng.uniform(0.7, 1.0, size=3).astype(np.float32)
    background = (0.1 + 0.3 * texture) * tint  # grey <= 0.4 * 255 = 102 < OBJECT_GREY - TEXTURE_AMPLITUDE
    background = np.clip(np.rint(background * 255.0), 0, 255).astype(np.int16)
    sprite = max(4, size // 4)
    detail = periodic_texture(rng, sprite, sprite, smoothness=1.0)[..., 0]
    offset = np.rint(2 * TEXTURE_AMPLITUDE * (detail - 0.5)).astype(np.int16)
    y0, x0 = int(rng.integers(size)), int(rng.integers(size))
    phase = int(rng.integers(2))

    patch = np.asarray(COLOURS[cls.colour], dtype=np.int16)[None, None, :] + offset[..., None]
    frames = np.repeat(background[None], num_frames, axis=0)
    xs = trajectory(cls.direction, cls.course, num_frames=num_frames, speed=speed_for(size))
    shown = visibility(cls.pattern, num_frames=num_frames, phase=phase)
    rows = (y0 + np.arange(sprite)) % size
    for t in range(num_frames):
        if shown[t]:
            cols = (x0 + xs[t] + np.arange(sprite)) % size
            frames[t][np.ix_(rows, cols)] = patch
    return frames.astype(np.uint8), RenderInfo((y0, x0), phase)


def plan_split(split: str, count: int, *, seed: int) -> list[int]:
    """Class index of each video of a split: every class ``count / 16`` times, in a seeded order."""
    per_class = count // len(COMPOSITIONAL_CLASSES)
    labels = np.repeat(np.arange(len(COMPOSITIONAL_CLASSES)), per_class)
    return np.random.default_rng([seed, SPLIT_STREAMS[split], 2**31 - 1]).permutation(labels).tolist()


def video_id(split: str, index: int) -> str:
    return f"{split}_{index:05d}"


@dataclass
class CompositionalSummary:
    root: str
    num_classes: int
    train_videos: int
    val_videos: int
    test_videos: int
    seconds: float


def _check_count(flag: str, value: int) -> None:
    classes = len(COMPOSITIONAL_CLASSES)
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < classes or value % classes:
        raise DataError(f"{flag} must be a positive multiple of {classes} (the class count, so that every class "
                        f"has the same number of videos), got {value!r}")


def make_compositional(out_dir: str | os.PathLike, *, train_videos: int = 480, val_videos: int = 240,
                       test_videos: int = 240, size: int = 32, num_frames: int = DEFAULT_NUM_FRAMES, fps: int = 10,
                       seed: int = 0,
                       progress: bool = True) -> CompositionalSummary:
    """Write the compositional task to ``out_dir``.

    Layout: ``videos/{train,val,test}_NNNNN.mp4`` (H.264), ``classes.txt`` (16 names),
    ``kinetics_{train,val,test}.csv`` (``path,label``, paths relative to ``out_dir``) and ``synthetic.json``
    (task, parameters, factor table, colours, classes and every video's split, class, factors, start position
    and blink phase). Each count must be a multiple of 16.
    """
    from tqdm import tqdm

    for flag, value in (("--train-videos", train_videos), ("--val-videos", val_videos),
                        ("--test-videos", test_videos)):
        _check_count(flag, value)
    if size < 16 or size % 2:
        raise DataError(f"--size must be an even number >= 16, got {size}")
    if num_frames < 8 or num_frames % 2:
        raise DataError(f"--frames must be an even number >= 8 (two halves of >= 4 frames for the course "
                        f"factor), got {num_frames}")
    if fps < 1:
        raise DataError(f"--fps must be >= 1, got {fps}")
    began = time.perf_counter()
    out = Path(out_dir)
    (out / VIDEO_DIR).mkdir(parents=True, exist_ok=True)
    counts = {"train": train_videos, "val": val_videos, "test": test_videos}
    plans = {split: plan_split(split, counts[split], seed=seed) for split in SPLITS}
    jobs = [(split, i, label) for split in SPLITS for i, label in enumerate(plans[split])]

    videos = []
    rows: dict[str, list[tuple[str, str]]] = {split: [] for split in SPLITS}
    for split, i, label in tqdm(jobs, desc="compositional videos", unit="video", disable=not progress):
        cls = COMPOSITIONAL_CLASSES[label]
        rng = np.random.default_rng([seed, SPLIT_STREAMS[split], i])
        frames, info = render_compositional(cls, rng, num_frames=num_frames, size=size)
        vid = video_id(split, i)
        write_mp4(out / VIDEO_DIR / f"{vid}.mp4", frames, fps=fps, **ENCODING)
        rows[split].append((f"{VIDEO_DIR}/{vid}.mp4", cls.name))
        videos.append({"id": vid, "split": split, "class": cls.name, "factors": cls.factors,
                       "start_yx": list(info.start), "blink_phase": info.blink_phase})

    write_class_list(out / CLASSES_FILE, ClassList.from_names([c.name for c in COMPOSITIONAL_CLASSES]))
    for split in SPLITS:
        write_video_list(out / SPLIT_FILES[split], rows[split])
    atomic_write_json(out / MANIFEST_FILE, manifest(counts, size=size, num_frames=num_frames, fps=fps, seed=seed,
                                                    videos=videos))
    return CompositionalSummary(str(out), len(COMPOSITIONAL_CLASSES), train_videos, val_videos, test_videos,
                                time.perf_counter() - began)


def manifest(counts: Mapping[str, int], *, size: int, num_frames: int, fps: int, seed: int,
             videos: list[dict]) -> dict:
    """The ``synthetic.json`` of a compositional folder."""
    bt601 = (0.299, 0.587, 0.114)
    return {
        "generator": "assemblenet.data.compositional.make_compositional",
        "task": TASK,
        "parameters": {"train_videos": counts["train"], "val_videos": counts["val"], "test_videos": counts["test"],
                       "size": size, "num_frames": num_frames, "fps": fps, "seed": seed,
                       "encoding": {"codec": "libx264", **ENCODING}, "object_size": max(4, size // 4),
                       "speed_px_per_frame": speed_for(size), "return_turns_at_frame": num_frames // 2},
        "factors": [{"name": name, "values": list(values), **FACTOR_NEEDS[name]} for name, values in FACTORS],
        "colours": {name: {"rgb": list(rgb), "flow_layer_grey": float(flow_layer_grey(np.asarray(rgb))),
                           "bt601_luma": round(sum(w * c for w, c in zip(bt601, rgb)), 3)}
                    for name, rgb in COLOURS.items()},
        "classes": [{"name": c.name, "factors": c.factors} for c in COMPOSITIONAL_CLASSES],
        "splits": {split: {"file": SPLIT_FILES[split], "videos": counts[split],
                           "per_class": counts[split] // len(COMPOSITIONAL_CLASSES)} for split in SPLITS},
        "videos": videos,
    }


def check_views_show_whole_video(manifest: Mapping, sampling: ClipSampling, *, mode: DatasetMode, num_clips: int,
                                 source: str | os.PathLike) -> None:
    """Raise ``DataError`` unless every view a dataset with ``sampling`` yields of the compositional videos
    described by ``manifest`` (their ``synthetic.json``) is the whole video, every frame once and in order.

    The class-defining events are spread over the whole video: the ``return`` turn at its middle frame and a
    blink on every other frame. A clip shorter than the video, sampled at a stride or looped misses or
    distorts some of them (8-frame clips of 16-frame videos never show the turn to the test, and only
    sometimes to training), so what the model is shown no longer decides the class. ``mode`` "train" checks
    the random clips' whole range of starts, "test" the ``num_clips`` evenly spaced clips; the indices come
    from :func:`assemblenet.data.sampling.clip_indices`, as the dataset's own."""
    parameters = manifest.get("parameters", {})
    length, fps = int(parameters["num_frames"]), float(parameters.get("fps", 10))
    turn = int(parameters.get("return_turns_at_frame", length // 2))
    timestamps = np.arange(length, dtype=np.float64) / fps
    # Random training clips: the two ends of the range of starts are where a short clip misses the most; the
    # steps between them cover target_fps sampling, whose start moves continuously.
    positions = uniform_clip_positions(num_clips) if mode == "test" else np.linspace(0.0, 1.0, 11)
    whole = np.arange(length)
    for position in positions:
        indices = clip_indices(length, sampling, float(position), timestamps)
        if not np.array_equal(indices, whole):
            shown = (f"frames {indices[0]}-{indices[-1]}" if np.array_equal(indices, np.arange(indices[0],
                                                                                              indices[-1] + 1))
                     else f"frames {indices.tolist()}")
            how = "at a target_fps" if sampling.target_fps is not None else f"at stride {sampling.stride}"
            remedy = f"Set data.num_frames to {length} at stride 1 (and eval.num_clips to 1)"
            clip = sampling.num_frames
            if sampling.target_fps is None and sampling.stride == 1 and clip >= 8 and clip % 2 == 0:
                remedy += (f", or write the videos with --frames {clip} "
                           "(`assemblenet make-synthetic OUT --task compositional`)")
            raise DataError(
                f"{source}: the compositional videos have {length} frames (the return turn at frame {turn}, a "
                f"blink on every other frame), but a {mode} view of {clip} frames {how} shows {shown}: every "
                f"view must be the whole video, or it can miss the turn or the blinks that define the class. "
                f"{remedy}")
