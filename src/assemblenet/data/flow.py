"""Optical flow: precompute it for a dataset, store it compactly, and serve it aligned with RGB frames.

Sign convention: flow ``t`` maps frame ``t`` to frame ``t + 1``; channel 0 is x (positive to the right) and
channel 1 is y (positive downwards), in pixels of the stored resolution. A point at (x, y) in frame t is at
(x + u, y + v) in frame t + 1. A video of N frames has N - 1 flow fields; when a clip samples frame index
``i``, it receives flow ``min(i, N - 2)``, so the last frame repeats the last flow field (as AssembleNet's
representation-flow layer does).

Storage, under an output folder that mirrors the dataset (``KEY`` is the video's path relative to the
dataset root, without its extension):

- ``jpeg`` / ``png``: ``KEY/flow_x_00001.jpg`` and ``KEY/flow_y_00001.jpg``, ... (1-based, one pair per
  frame pair), quantised to uint8 as ``q = round(255 * (f + bound) / (2 * bound))`` clipped to [0, 255], the
  format of TSN/MMAction's ``denseflow`` with bound 20; decoded as ``(q - 127.5) * 2 * bound / 255``.
- ``float16``: ``KEY.flow.npy``, float16 [N - 1, H, W, 2].

``flow_meta.json`` at the top of the output folder records method, format and bound. Each video is written to
a temporary name and renamed into place, so an interrupted run leaves no half-written video and a rerun skips
the videos already done.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from concurrent.futures import as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Literal, Sequence

import numpy as np

from assemblenet.errors import DataError
from assemblenet.fileio import atomic_dir, atomic_path, atomic_write_json, hold_folder
from assemblenet.runtime import process_pool

logger = logging.getLogger(__name__)

FlowMethod = Literal["tvl1-torch", "tvl1", "farneback"]
FlowFormat = Literal["jpeg", "png", "float16"]
FLOW_METHODS = ("tvl1-torch", "tvl1", "farneback")
DEFAULT_METHOD: FlowMethod = "tvl1-torch"
FLOW_FORMATS = ("jpeg", "png", "float16")
DEFAULT_BOUND = 20.0
META_FILE = "flow_meta.json"
_IMAGE_SUFFIX = {"jpeg": ".jpg", "png": ".png"}


def _gray(frame: np.ndarray) -> np.ndarray:
    import cv2

    if frame.ndim == 2:
        return frame
    return cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)


class FlowEstimator:
    """Dense optical flow between two frames.

    ``tvl1-torch`` is the Dual TV-L1 of :mod:`assemblenet.data.tvl1` (PyTorch, batched over frame pairs, CPU
    or GPU; OpenCV's algorithm and hyper-parameters with a shorter iteration schedule), ``tvl1`` OpenCV
    contrib's Dual TV-L1 (the usual choice for two-stream video models, single-threaded here and much
    slower), ``farneback`` OpenCV's polynomial-expansion method (fast, less accurate).
    """

    def __init__(self, method: FlowMethod = DEFAULT_METHOD, *, device: str = "cpu") -> None:
        import cv2

        if method not in FLOW_METHODS:
            raise DataError(f"unknown flow method {method!r}; expected one of {FLOW_METHODS}")
        if method != "tvl1-torch" and device != "cpu":
            raise DataError(f"flow method {method!r} runs on the CPU only; use tvl1-torch for device {device!r}")
        self.method = method
        self._torch_tvl1 = None
        if method == "tvl1-torch":
            from assemblenet.data.tvl1 import TorchTVL1

            self._torch_tvl1 = TorchTVL1(device=device)
        elif method == "tvl1":
            if not hasattr(cv2, "optflow"):
                raise DataError("TV-L1 flow needs opencv-contrib-python(-headless); cv2.optflow is missing")
            self._tvl1 = cv2.optflow.DualTVL1OpticalFlow.create()

    def __call__(self, previous: np.ndarray, following: np.ndarray) -> np.ndarray:
        """Flow from ``previous`` to ``following`` (RGB [H, W, 3] or grey [H, W] uint8): float32 [H, W, 2]."""
        import cv2

        a, b = _gray(previous), _gray(following)
        if self._torch_tvl1 is not None:
            return self._torch_tvl1.video_flow(np.stack([a, b]))[0]
        if self.method == "tvl1":
            flow = self._tvl1.calc(a, b, None)  # type: ignore[call-overload]  # OpenCV's stubs: None allocates it
        else:
            flow = cv2.calcOpticalFlowFarneback(a, b, None, pyr_scale=0.5, levels=3, winsize=15, iterations=3,
                                                poly_n=5, poly_sigma=1.2, flags=0)
        return flow.astype(np.float32, copy=False)

    def video(self, grey_frames: Sequence[np.ndarray]) -> np.ndarray:
        """Flow between consecutive grey frames: float32 [N - 1, H, W, 2] (``tvl1-torch`` batches the pairs)."""
        if self._torch_tvl1 is not None:
            return self._torch_tvl1.video_flow(np.stack(grey_frames))
        return np.stack([self(grey_frames[t], grey_frames[t + 1]) for t in range(len(grey_frames) - 1)])


def compute_flow(frames: Sequence[np.ndarray] | np.ndarray, method: FlowMethod = DEFAULT_METHOD, *,
                 device: str = "cpu") -> np.ndarray:
    """Flow between consecutive frames.

    Args:
        frames: N frames, uint8 [N, H, W, 3] RGB or [N, H, W] grey.
        method: one of ``FLOW_METHODS`` (see :class:`FlowEstimator`).
        device: where ``tvl1-torch`` runs (``'cpu'`` or a GPU).
    Returns:
        float32 [N - 1, H, W, 2] in pixels (x right, y down, frame t to t + 1).
    """
    if len(frames) < 2:
        raise DataError(f"flow needs at least 2 frames, got {len(frames)}")
    return FlowEstimator(method, device=device).video([_gray(np.asarray(frame)) for frame in frames])


def clip_to_uint8_frames(clip) -> np.ndarray:
    """A float clip [3, T, H, W] in [0, 1] (tensor or array) as uint8 [T, H, W, 3] for ``compute_flow``."""
    array = np.asarray(clip.detach().cpu().numpy() if hasattr(clip, "detach") else clip, dtype=np.float32)
    return np.clip(np.rint(array.transpose(1, 2, 3, 0) * 255.0), 0, 255).astype(np.uint8)


def quantize_flow(flow: np.ndarray, bound: float = DEFAULT_BOUND) -> np.ndarray:
    """float flow -> uint8 with ``q = round(255 * (f + bound) / (2 * bound))``, clipped."""
    scaled = np.rint((np.asarray(flow, dtype=np.float32) + bound) * (255.0 / (2.0 * bound)))
    return np.clip(scaled, 0, 255).astype(np.uint8)


def dequantize_flow(quantized: np.ndarray, bound: float = DEFAULT_BOUND) -> np.ndarray:
    """Inverse of ``quantize_flow`` up to rounding: float32 pixels."""
    return (quantized.astype(np.float32) - 127.5) * (2.0 * bound / 255.0)


# -- storage ---------------------------------------------------------------------------------------------
def flow_key(video_path: str | os.PathLike, root: str | os.PathLike | None) -> str:
    """Storage key of a video: its path relative to ``root`` without the extension, '/'-separated.

    A video outside ``root`` (or with no root) gets ``_outside_root/<name>-<hash of its absolute path>``, so
    two such videos with the same file name never share one flow entry.
    """
    path = Path(video_path)
    if root is not None:
        # The path as given first (no file-system calls: datasets build root/relative paths), then resolved.
        for candidate, base in ((path, Path(root)), (path.resolve(), Path(root).resolve())):
            try:
                relative = candidate.relative_to(base)
            except ValueError:
                continue
            if ".." not in relative.parts:
                return (relative.parent / relative.stem).as_posix() if relative.suffix else relative.as_posix()
    digest = hashlib.sha1(str(path.resolve()).encode("utf-8")).hexdigest()[:12]
    return f"_outside_root/{path.stem if path.suffix else path.name}-{digest}"


def check_unique_keys(pairs: Iterable[tuple[str, str]], *, where: str) -> None:
    """Raise a DataError when two different videos share one flow key (e.g. ``a.mp4`` and ``a.avi`` in one
    folder: keys drop the extension, as denseflow-style layouts do), so neither silently reads the other's flow.

    ``pairs`` are ``(video path, key)``; the same video listed twice is fine."""
    owner: dict[str, str] = {}
    for path, key in pairs:
        first = owner.setdefault(key, path)
        if first != path:
            raise DataError(f"{where}: {first} and {path} share the flow key {key!r} (keys drop the extension); "
                            "rename one of them or keep them in separate data roots")


def _flow_paths(out_dir: Path, key: str, fmt: FlowFormat) -> Path:
    return out_dir / (key + ".flow.npy") if fmt == "float16" else out_dir / key


def write_flow(destination: str | os.PathLike, flow: np.ndarray, *, fmt: FlowFormat = "jpeg",
               bound: float = DEFAULT_BOUND) -> Path:
    """Store float32 flow [N, H, W, 2] atomically at ``destination`` (a folder for jpeg/png, a .npy file
    for float16). Returns the final path."""
    import cv2

    destination = Path(destination)
    if fmt == "float16":
        with atomic_path(destination) as tmp, open(tmp, "wb") as handle:
            np.save(handle, np.asarray(flow, dtype=np.float16), allow_pickle=False)
    elif fmt in _IMAGE_SUFFIX:
        quantized = quantize_flow(flow, bound)
        suffix = _IMAGE_SUFFIX[fmt]
        params = [cv2.IMWRITE_JPEG_QUALITY, 95] if fmt == "jpeg" else [cv2.IMWRITE_PNG_COMPRESSION, 3]
        with atomic_dir(destination) as tmp:
            for t in range(quantized.shape[0]):
                for channel, axis in enumerate("xy"):
                    target = tmp / f"flow_{axis}_{t + 1:05d}{suffix}"
                    if not cv2.imwrite(str(target), quantized[t, :, :, channel], params):
                        raise DataError(f"{destination / target.name}: could not write flow image")
    else:
        raise DataError(f"unknown flow format {fmt!r}; expected one of {FLOW_FORMATS}")
    return destination


def read_flow_meta(out_dir: str | os.PathLike) -> dict:
    path = Path(out_dir) / META_FILE
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: unreadable flow metadata ({exc})") from exc


class FlowStore:
    """Precomputed flow under ``root``, read per video key and aligned to RGB frame indices.

    Args:
        root: the output folder of ``precompute_flow`` (``assemblenet flow ... --out``).
        bound: dequantisation bound for jpeg/png flow; defaults to the one in ``flow_meta.json``, else 20.
    """

    def __init__(self, root: str | os.PathLike, *, bound: float | None = None) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise DataError(f"{self.root}: flow folder not found")
        meta = read_flow_meta(self.root)
        self.bound = float(bound if bound is not None else meta.get("bound", DEFAULT_BOUND))

    def locate(self, key: str) -> tuple[Path, FlowFormat]:
        npy = self.root / (key + ".flow.npy")
        if npy.is_file():
            return npy, "float16"
        folder = self.root / key
        if folder.is_dir():
            fmt: FlowFormat = "png" if (folder / "flow_x_00001.png").is_file() else "jpeg"
            return folder, fmt
        raise DataError(f"{self.root}: no precomputed flow for {key!r} (looked for {npy.name} and {key}/)")

    def num_fields(self, key: str) -> int:
        """Number of stored flow fields (frames - 1)."""
        path, fmt = self.locate(key)
        if fmt == "float16":
            return int(np.load(path, mmap_mode="r", allow_pickle=False).shape[0])
        return len(list(path.glob(f"flow_x_*{_IMAGE_SUFFIX[fmt]}")))

    def load(self, key: str, frame_indices: Sequence[int], *, size: tuple[int, int] | None = None):
        """Flow for RGB frames ``frame_indices``: float32 tensor [2, T, H, W] in pixels.

        Frame ``i`` gets flow field ``min(i, fields - 1)``. With ``size = (H, W)`` the flow is resized to
        that size and its components rescaled, so it lines up with RGB frames of that size.
        """
        import cv2
        import torch

        from assemblenet.data.transforms import resize_clip

        path, fmt = self.locate(key)
        if fmt == "float16":
            stored = np.load(path, mmap_mode="r", allow_pickle=False)
            if stored.ndim != 4 or stored.shape[-1] != 2:
                raise DataError(f"{path}: expected float16 [N, H, W, 2], got shape {stored.shape}")
            count = stored.shape[0]
            picks = [min(int(i), count - 1) for i in frame_indices]
            flow = np.asarray(stored[picks], dtype=np.float32)
        else:
            count = self.num_fields(key)
            if count == 0:
                raise DataError(f"{path}: flow folder holds no flow_x images")
            suffix = _IMAGE_SUFFIX[fmt]
            fields = {}
            for field_index in sorted({min(int(i), count - 1) for i in frame_indices}):
                pair = []
                for axis in "xy":
                    image_path = path / f"flow_{axis}_{field_index + 1:05d}{suffix}"
                    image = cv2.imread(str(image_path), cv2.IMREAD_GRAYSCALE)
                    if image is None:
                        raise DataError(f"{image_path}: missing or unreadable flow image")
                    pair.append(image)
                fields[field_index] = np.stack(pair, axis=-1)
            flow = dequantize_flow(np.stack([fields[min(int(i), count - 1)] for i in frame_indices]), self.bound)
        clip = torch.from_numpy(np.ascontiguousarray(flow.transpose(3, 0, 1, 2)))
        if size is not None and tuple(clip.shape[-2:]) != tuple(size):
            height, width = size
            clip = resize_clip(clip, (height, width), is_flow=True)
        return clip


# -- precompute ------------------------------------------------------------------------------------------
@dataclass
class FlowJobReport:
    """Outcome of ``precompute_flow``."""

    computed: list[str] = field(default_factory=list)
    already_done: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # video path -> reason


def _flow_job(video_path: str, destination: str, method: FlowMethod, fmt: FlowFormat, bound: float,
              short_side: int | None, max_frames: int | None, device: str = "cpu",
              threads: int | None = None) -> tuple[str, str | None]:
    """Worker: decode one video, compute and store its flow. Returns (video_path, error or None).

    ``threads``: CPU threads for this worker (None leaves the process's settings alone)."""
    import cv2

    from assemblenet.data.decode import open_video

    if method != "tvl1-torch":
        cv2.setNumThreads(1)
    elif threads is not None:
        import torch

        torch.set_num_threads(threads)
    try:
        estimator = FlowEstimator(method, device=device)
        with open_video(video_path) as reader:
            grey = []
            for count, frame in enumerate(reader.iter_frames(short_side=short_side)):
                if max_frames is not None and count >= max_frames:
                    break
                grey.append(_gray(frame))
        if len(grey) < 2:
            raise DataError(f"{video_path}: fewer than 2 frames, no flow to compute")
        write_flow(destination, estimator.video(grey), fmt=fmt, bound=bound)
        return video_path, None
    except DataError as exc:
        return video_path, str(exc)
    except Exception as exc:  # noqa: BLE001 - one bad video must not stop the whole job
        return video_path, f"{video_path}: {type(exc).__name__}: {exc}"


def precompute_flow(videos: Iterable[str | os.PathLike], out_dir: str | os.PathLike, *,
                    root: str | os.PathLike | None = None, method: FlowMethod = DEFAULT_METHOD,
                    fmt: FlowFormat = "jpeg", bound: float = DEFAULT_BOUND, workers: int | None = None,
                    device: str = "cpu", short_side: int | None = None, max_frames: int | None = None,
                    overwrite: bool = False, progress: bool = True) -> FlowJobReport:
    """Compute and store flow for every video (files or frame folders), in parallel, resumably.

    Args:
        videos: the videos; their storage keys are their paths relative to ``root``.
        out_dir: output folder (see the module docstring for the layout).
        method: ``tvl1-torch`` (default), ``tvl1`` (OpenCV) or ``farneback``; see :class:`FlowEstimator`.
        fmt: ``jpeg``, ``png`` (uint8 pairs with ``bound``) or ``float16``.
        workers: processes, each with ``cpu_count // workers`` threads for ``tvl1-torch`` (OpenCV methods use
            one thread each); default: every core on the CPU, one process on a GPU. 0 or 1 computes in this
            process (with its current thread settings).
        device: ``'cpu'`` or a GPU (``'cuda'``, ``'cuda:1'``) for ``tvl1-torch``.
        short_side: shrink frames to this shorter side before computing flow (flow is then in pixels of
            the shrunk frames; ``FlowStore.load`` rescales it to the RGB size).
        max_frames: use only the first ``max_frames`` frames of each video.
        overwrite: recompute videos whose flow exists.

    Returns:
        what was computed, what was already there, and what failed (with reasons; failures are logged).
    """
    from tqdm import tqdm

    if method not in FLOW_METHODS:
        raise DataError(f"unknown flow method {method!r}; expected one of {FLOW_METHODS}")
    if fmt not in FLOW_FORMATS:
        raise DataError(f"unknown flow format {fmt!r}; expected one of {FLOW_FORMATS}")
    if not bound > 0:
        raise DataError(f"flow bound must be positive, got {bound}")
    if method != "tvl1-torch" and device != "cpu":
        raise DataError(f"flow method {method!r} runs on the CPU only; use tvl1-torch for device {device!r}")
    cores = os.cpu_count() or 1
    if workers is None:
        workers = cores if device == "cpu" else 1
    if workers < 0:
        raise DataError(f"workers must be >= 0, got {workers}")
    out_dir = Path(out_dir)
    keyed = [(video, flow_key(video, root)) for video in videos]
    check_unique_keys(((str(video), key) for video, key in keyed), where=f"flow into {out_dir}")
    with hold_folder(out_dir):  # one flow job per output folder
        meta = {"method": method, "format": fmt, "bound": bound, "short_side": short_side,
                "convention": "flow t: frame t -> t+1; x right positive, y down positive; pixels"}
        existing = read_flow_meta(out_dir)
        if existing and not overwrite and any(existing.get(k) != meta[k] for k in ("method", "format", "bound")):
            raise DataError(f"{out_dir / META_FILE}: existing flow was made with {existing}; use another --output or "
                            "--overwrite")
        atomic_write_json(out_dir / META_FILE, meta, indent=2)

        report = FlowJobReport()
        jobs: list[tuple[str, str, FlowMethod, FlowFormat, float, int | None, int | None, str]] = []
        for video, key in keyed:
            destination = _flow_paths(out_dir, key, fmt)
            if destination.exists() and not overwrite:
                report.already_done.append(str(video))
                continue
            jobs.append((str(video), str(destination), method, fmt, bound, short_side, max_frames, device))
        if report.already_done:
            logger.info("flow: %d videos already done, skipping them", len(report.already_done))

        def record(video_path: str, error: str | None) -> None:
            if error is None:
                report.computed.append(video_path)
            else:
                report.failed[video_path] = error
                logger.warning("flow: skipped %s", error)

        bar = tqdm(total=len(jobs), desc=f"flow ({method})", unit="video", disable=not progress)
        workers = min(workers, len(jobs))
        threads = max(1, cores // workers) if workers > 1 else None  # share the cores among the processes
        threaded_jobs = [(*job, threads) for job in jobs]
        if workers <= 1:
            for threaded_job in threaded_jobs:
                record(*_flow_job(*threaded_job))
                bar.update()
        else:
            with process_pool(workers) as pool:
                futures = [pool.submit(_flow_job, *threaded_job) for threaded_job in threaded_jobs]
                for future in as_completed(futures):
                    record(*future.result())
                    bar.update()
        bar.close()
        return report
