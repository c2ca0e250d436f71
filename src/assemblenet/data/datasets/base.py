"""The map-style dataset every video dataset builds on.

``VideoDataset[i]`` returns ``(clip, target, meta)``:

- ``clip``: float32 [3, T, H, W] in [0, 1] for RGB; with ``modalities=("rgb", "flow")`` a dict
  ``{"rgb": [3, T, H, W], "flow": [2, T, H, W]}`` (flow in pixels, frame-aligned, see ``assemblenet.data.flow``);
  with ``modalities=("flow",)`` the flow tensor alone. With object maps (``object_root``, AssembleNet++) the
  clip is a dict that also holds ``"objects"``: int64 label ids [1, T, H, W] or float32 scores [K, T, H, W]
  of the clip's frames, cropped, resized (nearest) and flipped with it (``assemblenet.data.objects``).
- ``target``: single-label: int64 scalar class index. Multi-label: float32 [K] multi-hot, or [T, K] for
  ``target_type="frame"``.
- ``meta``: dict with ``video_id``, ``path``, ``video_index``, ``clip_index``, ``crop_index``,
  ``frame_indices`` and ``skipped`` (the (path, reason) pairs skipped while producing this sample).

Training mode draws one random clip and a random crop per item. Test mode expands every video into
``num_clips x num_crops`` views (evenly spaced clips x left/centre/right crops), one item each, so
``len(dataset) = videos x views``; ``meta["video_index"]`` groups the views of a video.

Broken videos (missing, empty, not a video, truncated, undecodable) never stop a run: the item is logged with a
warning naming the file, recorded in ``skipped`` and replaced by the next good video, at most
``max_attempts`` times in a row. ``scan()`` checks every video up front and drops the bad ones.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import warnings
from dataclasses import dataclass, fields, replace
from pathlib import Path
from types import FrameType
from typing import Any, Callable, Sequence

import numpy as np
import torch

from assemblenet.data.annotations import ClassList
from assemblenet.data.decode import FrameFolderReader, FrameSource, crop_resize, open_video, shrink_to_short_side
from assemblenet.data.sampling import ClipSampling, ClipViews, clip_indices, random_clip, uniform_clip_positions
from assemblenet.data.transforms import SpatialPlan, Transform, eval_transform, plannable, spatial_plan, train_transform
from assemblenet.errors import ConfigError, DataError
from assemblenet.graph.spec import NUM_OBJECT_CLASSES
from assemblenet.input_spec import DEFAULT_INPUT

logger = logging.getLogger(__name__)

MODALITIES = ("rgb", "flow")
DEFAULT_HFLIP_PROB = 0.5
TARGET_TYPES = ("video", "clip", "frame")
# Active-interval comparisons allow for timestamps rounded to 2 decimals in Charades CSVs.
_TIME_EPS = 1e-6


@dataclass(frozen=True)
class VideoItem:
    """One video of a dataset.

    Args:
        path: video file or frame folder.
        labels: video-level class indices (empty for an unlabelled test list; the target is then -1).
        video_id: a name for reports.
        key: storage key for precomputed flow (path relative to the dataset root, no extension).
        intervals: (class index, start s, end s) per action, for clip/frame targets (Charades).
        frame_paths: explicit frame images (PySlowFast frame lists) instead of ``path``.
        frame_labels: class indices per frame, aligned with ``frame_paths``.
    """

    path: str
    labels: tuple[int, ...]
    video_id: str
    key: str
    intervals: tuple[tuple[int, float, float], ...] = ()
    frame_paths: tuple[str, ...] | None = None
    frame_labels: tuple[tuple[int, ...], ...] | None = None


@dataclass(frozen=True)
class _DecodedVideo:
    frames: np.ndarray  # [N, H, W, 3] uint8
    timestamps: np.ndarray
    fps: float

    @property
    def num_frames(self) -> int:
        return len(self.frames)


def _torch_seeded_rng() -> np.random.Generator:
    # Drawn from torch's generator: reproducible under torch.manual_seed, distinct in each DataLoader worker.
    return np.random.default_rng(int(torch.randint(0, 2**62, (1,)).item()))


_SAMPLING_FIELDS = tuple(f.name for f in fields(ClipSampling))
_VIEWS_FIELDS = tuple(f.name for f in fields(ClipViews))


def clip_options(owner: str, sampling: ClipSampling | None, views: ClipViews | None,
                 keywords: dict[str, Any]) -> tuple[ClipSampling, ClipViews]:
    """``(sampling, views)`` for a dataset, accepting for one more release their fields as separate keywords
    (``num_frames=8, crop_size=112``: the form before they were grouped) with one ``DeprecationWarning`` that
    names them and the fields they now go to. A keyword that is neither is a TypeError, as Python's own."""
    unknown = [name for name in keywords if name not in _SAMPLING_FIELDS + _VIEWS_FIELDS]
    if unknown:
        raise TypeError(f"{owner}.__init__() got an unexpected keyword argument {unknown[0]!r}")
    old_sampling = {name: value for name, value in keywords.items() if name in _SAMPLING_FIELDS}
    old_views = {name: value for name, value in keywords.items() if name in _VIEWS_FIELDS}
    for given, old, argument in ((sampling, old_sampling, "sampling"), (views, old_views, "views")):
        if given is not None and old:
            raise TypeError(f"{owner}: give {argument}= or its fields {sorted(old)} as keywords, not both")
    if keywords:
        groups = (("sampling", "ClipSampling", old_sampling), ("views", "ClipViews", old_views))
        grouped = [f"{argument}={cls}({', '.join(f'{name}=...' for name in old)})"
                   for argument, cls, old in groups if old]
        warnings.warn(f"{owner}: the keywords {', '.join(keywords)} are deprecated and will be removed in the next "
                      f"release; pass {' and '.join(grouped)}", DeprecationWarning, stacklevel=_caller_stacklevel())
    return (ClipSampling(**old_sampling) if sampling is None else sampling,
            ClipViews(**old_views) if views is None else views)


def with_hflip_default(kwargs: dict[str, Any], hflip_prob: float) -> dict[str, Any]:
    """``kwargs`` for ``VideoDataset`` with the training flip probability ``hflip_prob`` where the caller left it
    unset (``views.hflip_prob`` None): for datasets whose classes depend on left and right."""
    if any(name in kwargs for name in _VIEWS_FIELDS):  # the deprecated one-keyword-per-field form
        kwargs.setdefault("hflip_prob", hflip_prob)
        return kwargs
    views = kwargs.get("views")
    views = ClipViews() if views is None else views
    kwargs["views"] = replace(views, hflip_prob=hflip_prob) if views.hflip_prob is None else views
    return kwargs


def _caller_stacklevel() -> int:
    """The ``stacklevel`` naming the first frame outside this package's dataset modules (the user's call,
    however many dataset constructors and ``build_dataset`` stand between)."""
    frame: FrameType | None = sys._getframe(1)
    level = 1
    while frame is not None and frame.f_globals.get("__name__", "").startswith("assemblenet.data.datasets"):
        frame, level = frame.f_back, level + 1
    return level


class VideoDataset(torch.utils.data.Dataset):
    """Clips from a list of ``VideoItem`` (see the module docstring for what an item returns).

    Args:
        items: the videos.
        classes: class names in label order.
        multi_label: targets are multi-hot (Charades) instead of a class index.
        sampling: which frames make a clip (``ClipSampling``: ``num_frames``, ``stride``, ``target_fps``,
            ``short_video``).
        views: train or test mode, the test views, the crop size and the training augmentation (``ClipViews``:
            ``mode``, ``num_clips``, ``num_crops``, ``crop_size``, ``scale``, ``ratio``, ``hflip_prob``,
            ``transform``).
        modalities: ``("rgb",)``, ``("flow",)`` or ``("rgb", "flow")``.
        flow_root: folder of precomputed flow (``assemblenet flow``), needed for the flow modality.
        object_root: folder of precomputed per-frame object maps (``assemblenet.data.objects``); each clip then
            carries the maps of its frames under ``"objects"``. A video whose maps are missing or mis-shaped is
            skipped and counted like a corrupt one.
        num_object_classes: K of the object maps (151 for ADE-20k).
        target_type: ``"video"`` (all labels of the video), ``"clip"`` (labels active during the clip's
            time span) or ``"frame"`` ([T, K], labels active at each sampled frame); the last two need
            time intervals or per-frame labels.
        frame_fps: frame rate of frame folders.
        decode_short_side: shrink frames to this shorter side while decoding (much cheaper than resizing
            full-size frames later).
        seek: seek inside video files (``None`` = where safe, ``False`` = decode from the start).
        max_attempts: consecutive broken videos tolerated for one item before raising ``DataError``.
        cache_frames: decode each video file once, in full, and keep its frames in memory (per process). For
            small sets read many times, such as an architecture search's proxy task; the memory is
            frames x H x W x 3 bytes per video.
        clips_per_video: training mode: each item holds this many clips of the same decoded frames, each with
            its own random crop and flip (``[k, C, T, H, W]`` and ``[k, ...]`` targets, which ``collate``
            flattens into the batch), so one decode feeds k clips. An epoch still visits every video once and
            yields k times the clips. Test mode ignores it.
        **deprecated_keywords: the fields of ``sampling`` and ``views`` given one by one, as before they were
            grouped: still accepted for one release, with a ``DeprecationWarning``.
    """

    def __init__(self, items: Sequence[VideoItem], *, classes: ClassList, multi_label: bool = False,
                 sampling: ClipSampling | None = None, views: ClipViews | None = None,
                 modalities: Sequence[str] = DEFAULT_INPUT.modalities, flow_root: str | os.PathLike | None = None,
                 target_type: str = "video", frame_fps: float = 30.0, decode_short_side: int | None = None,
                 seek: bool | None = None, max_attempts: int = 10, cache_frames: bool = False,
                 object_root: str | os.PathLike | None = None, num_object_classes: int = NUM_OBJECT_CLASSES,
                 clips_per_video: int = 1, **deprecated_keywords: Any) -> None:
        sampling, views = clip_options(type(self).__name__, sampling, views, deprecated_keywords)
        mode, crop_size = views.mode, views.crop_size
        modalities = tuple(modalities)
        if not modalities or any(m not in MODALITIES for m in modalities) or len(set(modalities)) != len(modalities):
            raise ConfigError(f"modalities must be a non-empty subset of {MODALITIES}, got {modalities}")
        if target_type not in TARGET_TYPES:
            raise ConfigError(f"target_type must be one of {TARGET_TYPES}, got {target_type!r}")
        if max_attempts < 1:
            raise ConfigError(f"max_attempts must be >= 1, got {max_attempts}")
        if not items:
            raise DataError("the dataset has no videos")
        self.items = list(items)
        self.classes = classes
        self.multi_label = bool(multi_label)
        self.sampling = sampling
        self.views = views
        self.mode = mode
        self.num_clips = views.num_clips if mode == "test" else 1
        self.num_crops = views.num_crops if mode == "test" else 1
        self.crop_size = crop_size
        self.modalities = modalities
        self.target_type = target_type
        self.frame_fps = float(frame_fps)
        self.decode_short_side = decode_short_side
        self.seek = seek
        self.max_attempts = max_attempts
        self.flow_store = None
        if "flow" in modalities:
            if flow_root is None:
                raise ConfigError("the flow modality needs flow_root (a folder made by `assemblenet flow`)")
            from assemblenet.data.flow import FlowStore, check_unique_keys

            check_unique_keys(((item.path, item.key) for item in self.items), where=f"flow_root {flow_root}")
            self.flow_store = FlowStore(flow_root)
        self.object_store = None
        if object_root is not None:
            from assemblenet.data.objects import ObjectMapStore

            self.object_store = ObjectMapStore(object_root, num_classes=num_object_classes)
        if mode == "train":
            hflip_prob = DEFAULT_HFLIP_PROB if views.hflip_prob is None else views.hflip_prob
            self.transforms = [views.transform if views.transform is not None
                               else train_transform(crop_size, scale=views.scale, ratio=views.ratio,
                                                    hflip_prob=hflip_prob)]
        else:
            positions = [1] if self.num_crops == 1 else [0, 1, 2]
            self.transforms = [eval_transform(crop_size, crop_position=p) for p in positions]
        self.skipped: dict[str, str] = {}
        self._bad: set[int] = set()
        self.cache_frames = bool(cache_frames)
        if clips_per_video < 1:
            raise ConfigError(f"clips_per_video must be >= 1, got {clips_per_video}")
        self.clips_per_video = int(clips_per_video) if mode == "train" else 1
        self._frame_cache: dict[int, _DecodedVideo] = {}
        self.frame_store: Any = None  # a FrameStore (attach_frame_store): cache_frames served from a shared file

    # -- sizes and labels --------------------------------------------------------------------------------
    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def class_names(self) -> list[str]:
        return list(self.classes.names)

    @property
    def num_videos(self) -> int:
        return len(self.items)

    @property
    def num_views(self) -> int:
        return self.num_clips * self.num_crops

    @property
    def num_skipped(self) -> int:
        return len(self.skipped)

    def __len__(self) -> int:
        return len(self.items) * self.num_views

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(videos={len(self.items)}, classes={self.num_classes}, mode={self.mode!r}, "
                f"views={self.num_views}, frames={self.sampling.num_frames}, skipped={self.num_skipped})")

    # -- robustness --------------------------------------------------------------------------------------
    def _record_skip(self, video_index: int, reason: str) -> tuple[str, str]:
        path = self.items[video_index].path
        self._bad.add(video_index)
        if path not in self.skipped:
            self.skipped[path] = reason
            logger.warning("skipping video %s: %s", path, reason)
        return path, reason

    def absorb_skipped(self, metas: Sequence[dict] | dict) -> None:
        """Merge the skips reported in sample metas (or a collated meta) from DataLoader worker processes,
        whose own copies of the dataset are invisible here."""
        if isinstance(metas, dict):
            groups = metas.get("skipped", [])
        else:
            groups = [m.get("skipped", []) for m in metas]
        for group in groups:
            for path, reason in group:
                self.skipped.setdefault(path, reason)

    def scan(self, *, workers: int = 1, min_frames: int = 1, full_decode: bool = False,
             drop: bool = True, progress: bool = False) -> dict[str, str]:
        """Check every video up front; bad ones are recorded in ``skipped`` and, with ``drop``, removed.

        Returns the newly found bad videos (path -> reason).
        """
        from assemblenet.data.check import check_videos

        listed = {str(prepared_path(item.path)): item.path for item in self.items if item.frame_paths is None}
        results = check_videos(list(listed), workers=workers, min_frames=min_frames, full_decode=full_decode,
                               frame_fps=self.frame_fps, progress=progress)
        bad = {listed.get(r.path, r.path): r.reason or "" for r in results if not r.ok}
        self.skip_videos(bad, drop=drop)
        return bad

    def skip_videos(self, reasons: dict[str, str], *, drop: bool = True) -> None:
        """Record videos found bad up front (path -> reason) in ``skipped``, so they are counted, and with
        ``drop`` remove them from ``items``; dropping every video is a ``DataError``."""
        for path, reason in reasons.items():
            if path not in self.skipped:
                logger.warning("skipping video %s: %s", path, reason)
            self.skipped.setdefault(path, reason)
        if drop and reasons:
            self.items = [item for item in self.items if item.path not in reasons]
            self._bad.clear()
            self._frame_cache.clear()
            if not self.items:
                raise DataError("every video of the dataset is unreadable")

    def keep_videos(self, count: int) -> None:
        """Keep ``count`` videos spread evenly over the list (so most classes stay represented), for quick runs
        (``data.max_videos``, ``train --smoke``). The class list is unchanged."""
        if count < 1:
            raise ConfigError(f"the number of videos to keep must be >= 1, got {count}")
        if count < len(self.items):
            step = len(self.items) / count
            self.items = [self.items[int(k * step)] for k in range(count)]
            self._bad.clear()
            self._frame_cache.clear()

    # -- loading -----------------------------------------------------------------------------------------
    def _open(self, item: VideoItem) -> FrameSource:
        if item.frame_paths is not None:
            return FrameFolderReader(frame_paths=item.frame_paths, fps=self.frame_fps)
        return open_video(prepared_path(item.path), fps=self.frame_fps, seek=self.seek)

    def _target(self, item: VideoItem, indices: np.ndarray, timestamps: np.ndarray, fps: float) -> torch.Tensor:
        if not self.multi_label:  # -1 for unlabelled test lists (Kinetics test CSV, SSv2 test JSON)
            return torch.tensor(item.labels[0] if item.labels else -1, dtype=torch.int64)
        K = self.num_classes
        if self.target_type == "video" or (not item.intervals and item.frame_labels is None):
            target = torch.zeros(K, dtype=torch.float32)
            target[list(item.labels)] = 1.0
            if self.target_type == "frame":
                return target.expand(len(indices), K).clone()
            return target
        per_frame: Sequence[Sequence[int]]
        if item.frame_labels is not None:
            per_frame = [item.frame_labels[min(int(i), len(item.frame_labels) - 1)] for i in indices]
            if self.target_type == "clip":
                first, last = int(indices.min()), int(indices.max())
                span = set().union(*item.frame_labels[first:last + 1])
                target = torch.zeros(K, dtype=torch.float32)
                target[sorted(span)] = 1.0
                return target
        else:
            times = timestamps[indices]
            per_frame = [[c for c, start, end in item.intervals
                          if start - _TIME_EPS <= t and t < end - _TIME_EPS] for t in times]
            if self.target_type == "clip":
                span_start, span_end = float(times.min()), float(times.max()) + 1.0 / fps
                active = [c for c, start, end in item.intervals
                          if start < span_end - _TIME_EPS and end > span_start + _TIME_EPS]
                target = torch.zeros(K, dtype=torch.float32)
                target[active] = 1.0
                return target
        target = torch.zeros(len(indices), K, dtype=torch.float32)
        for row, labels in enumerate(per_frame):
            target[row, list(labels)] = 1.0
        return target

    def decode_whole_video(self, video_index: int) -> "_DecodedVideo":
        """Every frame of a video file, decoded now (what ``cache_frames`` keeps and a frame store holds)."""
        with self._open(self.items[video_index]) as reader:
            everything = np.arange(reader.num_frames)
            frames = reader.get_frames(everything, short_side=self.decode_short_side)
            return _DecodedVideo(frames, np.asarray(reader.timestamps), float(reader.fps))

    def _decoded(self, video_index: int) -> "_DecodedVideo":
        """The whole video, decoded once and kept (``cache_frames``), or read from the attached frame store."""
        cached = self._frame_cache.get(video_index)
        if cached is None:
            stored = None
            if self.frame_store is not None:
                stored = self.frame_store.lookup(str(prepared_path(self.items[video_index].path)))
            if stored is not None:
                cached = _DecodedVideo(stored.frames, stored.timestamps, stored.fps)
            else:
                cached = self.decode_whole_video(video_index)
            self._frame_cache[video_index] = cached
        return cached

    # -- a frame store shared by processes (assemblenet.data.frame_store) ---------------------------------
    def frame_store_paths(self) -> list[str | None]:
        """The file each video is decoded from (None for frame folders, which are not stored)."""
        return [None if item.frame_paths is not None else str(prepared_path(item.path)) for item in self.items]

    def frame_store_options(self) -> dict[str, Any]:
        """The options that change decoded frames: a store written with others is not used."""
        return {"decode_short_side": self.decode_short_side, "frame_fps": self.frame_fps}

    def attach_frame_store(self, store: Any) -> None:
        """Serve ``cache_frames`` from ``store`` (a :class:`~assemblenet.data.frame_store.FrameStore` written for
        this dataset's videos): the frames are read from the shared file instead of decoded in this process.
        Videos not in it, or changed since, are decoded as before. Only a ``cache_frames`` dataset uses it, so
        the clips are exactly those of the per-process cache."""
        if not self.cache_frames:
            raise ConfigError("a frame store stands in for cache_frames; this dataset has cache_frames off")
        self.frame_store = store
        self._frame_cache.clear()

    def _planned_frames(self, source: FrameSource | _DecodedVideo, indices: np.ndarray,
                        transform: Transform | Callable[..., Any], rng: np.random.Generator,
                        count: int = 1) -> list[np.ndarray]:
        """``count`` uint8 [T, H, W, 3] clips of the frames at ``indices`` of a reader or a cached video, each
        with its own draw of ``transform``'s crop, resize and flip (its ``spatial_plan``, drawn from ``rng`` once
        the frame size is known). One clip is cropped while a reader converts; several are cut from the frames
        converted once."""
        import cv2

        short_side = self.decode_short_side

        def draw(height: int, width: int) -> SpatialPlan:
            shown_h, shown_w = (shrink_to_short_side(height, width, short_side) if short_side
                                else (height, width))
            plan = spatial_plan(transform, shown_h, shown_w, rng, scale=(height / shown_h, width / shown_w))
            assert plan is not None  # checked by plannable()
            return plan

        def flipped(frames: np.ndarray, plan: SpatialPlan) -> np.ndarray:
            if not plan.flip:
                return frames
            frames = frames if frames.flags.writeable and frames.flags.c_contiguous else frames.copy()
            for frame in frames:  # OpenCV mirrors in place, ~50x faster than numpy copies a reversed view
                cv2.flip(frame, 1, dst=frame)
            return frames

        if count == 1 and not isinstance(source, _DecodedVideo):
            plans: list[SpatialPlan] = []

            def region(height: int, width: int) -> tuple[tuple[int, int, int, int], tuple[int, int]]:
                plans.append(draw(height, width))
                return plans[0].region, plans[0].size

            frames = source.get_frames(indices, region=region)
            return [flipped(frames, plans[0])]
        full = source.frames[indices] if isinstance(source, _DecodedVideo) else source.get_frames(indices)
        clips = []
        for _ in range(count):
            plan = draw(*full.shape[1:3])
            clips.append(flipped(np.stack([crop_resize(frame, plan.region, plan.size) for frame in full]), plan))
        return clips

    def _load(self, video_index: int, clip_index: int, crop_index: int,
              rng: np.random.Generator) -> tuple[Any, torch.Tensor, dict]:
        item = self.items[video_index]
        # RGB frames are decoded for flow and object maps too: they give the size both are aligned to.
        need_rgb = "rgb" in self.modalities or self.flow_store is not None or self.object_store is not None
        with contextlib.ExitStack() as stack:
            source: FrameSource | _DecodedVideo
            if self.cache_frames and item.frame_paths is None:
                source = self._decoded(video_index)
            else:
                source = stack.enter_context(self._open(item))
            num_frames, timestamps = source.num_frames, source.timestamps
            if self.mode == "train":
                indices = random_clip(num_frames, self.sampling, rng, timestamps)
            else:
                position = uniform_clip_positions(self.num_clips)[clip_index]
                indices = clip_indices(num_frames, self.sampling, position, timestamps)
            transform = self.transforms[crop_index]
            count = self.clips_per_video
            sample: dict[str, torch.Tensor] = {}
            fast = need_rgb and self.flow_store is None and self.object_store is None and plannable(transform)
            if fast:
                # Crop, resize and flip worked out before decoding, applied in uint8 to the sampled frames only.
                samples = [{"rgb": torch.from_numpy(frames).permute(3, 0, 1, 2)}  # [3, T, H, W] uint8
                           for frames in self._planned_frames(source, indices, transform, rng, count)]
            elif need_rgb:
                frames = (source.frames[indices] if isinstance(source, _DecodedVideo)
                          else source.get_frames(indices, short_side=self.decode_short_side))
                sample["rgb"] = torch.from_numpy(np.ascontiguousarray(frames)).permute(3, 0, 1, 2)  # [3,T,H,W]
            fps = source.fps
        if not fast:
            if self.flow_store is not None:
                height, width = sample["rgb"].shape[-2:]
                sample["flow"] = self.flow_store.load(item.key, indices.tolist(), size=(height, width))
            if self.object_store is not None:
                height, width = sample["rgb"].shape[-2:]
                sample["objects"] = self.object_store.load(item.key, indices.tolist(), size=(height, width))
            if "rgb" not in self.modalities:
                del sample["rgb"]
            samples = [transform.apply(sample, rng) if isinstance(transform, Transform) else transform(sample, rng)
                       for _ in range(count)]
        clips: list[Any] = [s[self.modalities[0]] if len(s) == 1 else s for s in samples]
        target = self._target(item, indices, timestamps, fps)
        meta = {"video_id": item.video_id, "path": item.path, "video_index": video_index,
                "clip_index": clip_index, "crop_index": crop_index, "frame_indices": indices.tolist()}
        if count == 1:
            return clips[0], target, meta
        stacked: Any = ({key: torch.stack([c[key] for c in clips]) for key in clips[0]} if isinstance(clips[0], dict)
                        else torch.stack(clips))
        meta["clips"] = count  # collate flattens the k clips into the batch
        return stacked, target.expand(count, *target.shape).clone(), meta

    def __getitem__(self, index: int) -> tuple[Any, torch.Tensor, dict]:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} items")
        video_index, view = divmod(index, self.num_views)
        clip_index, crop_index = divmod(view, self.num_crops)
        rng = _torch_seeded_rng()
        skipped_here: list[tuple[str, str]] = []
        last_error = ""
        for _ in range(self.max_attempts):
            if video_index in self._bad:
                video_index = self._next_candidate(video_index)
                continue
            try:
                clip, target, meta = self._load(video_index, clip_index, crop_index, rng)
                meta["skipped"] = skipped_here
                return clip, target, meta
            except (DataError, OSError, ValueError, RuntimeError, IndexError) as exc:
                # ValueError/RuntimeError/IndexError come from codecs or images with unexpected layouts.
                reason = str(exc) if isinstance(exc, DataError) else f"{type(exc).__name__}: {exc}"
                skipped_here.append(self._record_skip(video_index, reason))
                last_error = reason
                video_index = self._next_candidate(video_index)
        raise DataError(f"{self.max_attempts} videos in a row failed to load while serving item {index}; "
                        f"last error: {last_error}")

    def _next_candidate(self, video_index: int) -> int:
        """The next video after ``video_index`` not known to be bad (wrapping around)."""
        count = len(self.items)
        for step in range(1, count + 1):
            candidate = (video_index + step) % count
            if candidate not in self._bad:
                return candidate
        raise DataError(f"every one of the {count} videos failed to load; see the warnings above")


def collate(batch: Sequence[tuple[Any, torch.Tensor, dict]]) -> tuple[Any, torch.Tensor, dict]:
    """Stack ``(clip, target, meta)`` samples: clips to [B, C, T, H, W] (or a dict of them), targets to
    [B] / [B, K] / [B, T, K], metas to a dict of lists. Items holding k clips (``meta["clips"] = k``, from
    ``clips_per_video``) are flattened: B items give B x k clips, each meta repeated k times."""
    if not batch:
        raise ValueError("empty batch")
    clips, targets, metas = zip(*batch)
    flatten = metas[0].get("clips", 1) > 1
    if isinstance(clips[0], dict):
        stacked: Any = {key: _join([c[key] for c in clips], flatten) for key in clips[0]}
    else:
        stacked = _join(list(clips), flatten)
    repeats = [m.get("clips", 1) for m in metas]
    meta = {key: [m[key] for m, k in zip(metas, repeats) for _ in range(k)] for key in metas[0] if key != "clips"}
    return stacked, _join(list(targets), flatten), meta


def _join(tensors: list[torch.Tensor], flatten: bool) -> torch.Tensor:
    """``torch.cat`` (``flatten``) or ``torch.stack``. In a DataLoader worker the result is built in shared
    memory, as torch's default_collate does, sparing the copy the worker's queue would otherwise make."""
    first = tensors[0]
    shape = ((sum(t.shape[0] for t in tensors), *first.shape[1:]) if flatten else (len(tensors), *first.shape))
    out = None
    if torch.utils.data.get_worker_info() is not None:
        storage = first._typed_storage()._new_shared(sum(t.numel() for t in tensors), device=first.device)
        out = first.new(storage).resize_(*shape)
    return torch.cat(tensors, out=out) if flatten else torch.stack(tensors, out=out)


def batch_bytes(batch_size: int, num_frames: int, crop_size: int, *, channels: int = 3,
                dtype: torch.dtype = torch.uint8) -> int:
    """Bytes of one collated clip batch ``[B, C, T, H, W]``: what a loader worker puts in ``/dev/shm`` per
    batch (``prefetch_factor`` of them in flight per worker) and the main process pins (see docs/data.md)."""
    item = torch.empty((), dtype=dtype).element_size()
    return batch_size * channels * num_frames * crop_size * crop_size * item


def average_views(scores: torch.Tensor, video_indices: Sequence[int] | torch.Tensor) -> tuple[torch.Tensor, list[int]]:
    """Average per-view scores [N, K] over the views of each video. Returns ([V, K], video index per row)."""
    video_indices = torch.as_tensor(video_indices, dtype=torch.int64)
    unique, inverse = torch.unique(video_indices, sorted=True, return_inverse=True)
    sums = torch.zeros(len(unique), scores.shape[-1], dtype=scores.dtype).index_add_(0, inverse, scores)
    counts = torch.bincount(inverse, minlength=len(unique)).to(scores.dtype).unsqueeze(1)
    return sums / counts, unique.tolist()


def prepared_path(path: str | os.PathLike) -> Path:
    """``path``, or the ``.mp4`` of the same stem when ``path`` is missing and that exists: the file
    ``assemblenet prepare-videos`` made from it, so list files naming ``x.avi`` work on a prepared copy."""
    path = Path(path)
    if path.suffix.lower() != ".mp4" and not path.exists():
        prepared = path.with_suffix(".mp4")
        if prepared.is_file():
            return prepared
    return path


def resolve_path(root: str | os.PathLike | None, relative: str) -> Path:
    path = Path(relative)
    return path if path.is_absolute() or root is None else Path(root) / path


def key_for(path: Path, root: str | os.PathLike | None) -> str:
    from assemblenet.data.flow import flow_key

    return flow_key(path, root)
