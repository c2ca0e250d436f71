"""Frames of video files, decoded with PyAV: :class:`VideoReader`, a
:class:`~assemblenet.data.decode.source.FrameSource`.

Container-reported frame counts are not trusted: a video file is indexed by demuxing its packets (cheap, no
decoding), and the number of frames is the number of non-empty, non-discarded video packets. Seeking is used
only for containers whose timestamps are presentation timestamps (MP4/MOV, Matroska/WebM); every seek is
verified against that index and falls back to decoding from the start if the decoder lands somewhere
unexpected. AVI timestamps are decode-order timestamps, so AVI (and anything unknown) is decoded
sequentially and frames are numbered in the order the decoder outputs them.
"""

from __future__ import annotations

import bisect
import functools
import logging
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Iterator, Literal

import numpy as np

from assemblenet.data.decode.source import (
    DEFAULT_FPS,
    FrameCrop,
    FrameIndices,
    FrameSource,
    Region,
    checked_indices,
    shrink_to_short_side,
)
from assemblenet.errors import DataError

logger = logging.getLogger(__name__)

# Demuxers whose packet pts are true presentation timestamps, so a decoded frame's pts identifies it.
_PTS_TRUSTED_FORMATS = ("mov", "mp4", "matroska", "webm")
# A file that yields fewer packets than this share of the frames its header declares is truncated.
_TRUNCATION_RATIO = 0.9
# Containers that declare no frame count (Matroska, WebM) declare a duration: fewer packets than this share of
# duration x frame rate is a truncation. Looser than the frame count: the rate of a variable-rate file is an
# estimate.
_DURATION_TRUNCATION_RATIO = 0.75
# Decoders whose skip_frame=NONREF drops exactly the frames no other frame references (checked in the tests).
_SKIP_NONREF_CODECS = ("h264", "hevc")
# YUV -> RGB with OpenCV (BT.601, limited range) where the frame says nothing else: as swscale's default, faster.
_BT601_SPACES = (2, 5, 6)  # AVCOL_SPC_UNSPECIFIED, BT470BG, SMPTE170M
_LIMITED_RANGES = (0, 1)  # AVCOL_RANGE_UNSPECIFIED, MPEG
# swscale converts on one thread. PyAV 17 made conversion multithreaded by default (threads=0: a slice thread per
# CPU), and PyAV keeps one conversion context per thread, whose slice threads are left waiting inside it: a process
# forked afterwards (a DataLoader worker, a fork-started pool) inherits the context without its threads and hangs
# in its first conversion (pthread_cond_destroy in avpriv_slicethread_free; tests/data/test_decode.py reproduces
# it). One thread is also what the callers want: loader workers and process pools already share out the cores.
# PyAV before 17 converts on one thread and has no such keyword. The pixels are the same either way (checked on
# the test videos).
SWSCALE_THREADS = 1


@functools.lru_cache(maxsize=None)
def swscale_options() -> dict[str, int]:
    """Keywords for PyAV's ``to_ndarray``/``reformat``: one swscale thread where PyAV has the option (see above)."""
    import av

    return {"threads": SWSCALE_THREADS} if int(av.__version__.split(".")[0]) >= 17 else {}


def frame_to_rgb(frame) -> np.ndarray:
    """uint8 [H, W, 3] RGB of a decoded PyAV frame. 8-bit 4:2:0 frames in BT.601 limited range (or untagged,
    which FFmpeg's swscale treats the same way) are converted by OpenCV; anything else by swscale."""
    import cv2

    if (frame.format.name == "yuv420p" and frame.colorspace in _BT601_SPACES
            and frame.color_range in _LIMITED_RANGES and frame.width % 2 == 0 and frame.height % 2 == 0):
        return cv2.cvtColor(frame.to_ndarray(format="yuv420p", **swscale_options()), cv2.COLOR_YUV2RGB_I420)
    return frame.to_ndarray(format="rgb24", **swscale_options())


@dataclass(frozen=True)
class VideoIndex:
    """What a demux pass learned about one video stream (no decoding involved).

    ``pts`` is sorted (presentation order) and is ``None`` when the container's timestamps cannot identify
    frames; ``keyframes`` holds the frame indices of keyframes when ``pts`` is known.
    """

    num_frames: int
    fps: float
    timestamps: np.ndarray  # float64 [num_frames], seconds from the first frame
    pts: tuple[int, ...] | None
    keyframes: tuple[int, ...]
    declared_frames: int


class _IndexCache:
    """Small LRU cache of video indexes, keyed by path, size and mtime, so epochs 2+ skip the demux pass."""

    def __init__(self, max_entries: int = 4096) -> None:
        self._entries: OrderedDict[tuple[str, int, int], VideoIndex] = OrderedDict()
        self._max_entries = max_entries
        self._lock = threading.Lock()

    def get(self, key: tuple[str, int, int]) -> VideoIndex | None:
        with self._lock:
            index = self._entries.get(key)
            if index is not None:
                self._entries.move_to_end(key)
            return index

    def put(self, key: tuple[str, int, int], index: VideoIndex) -> None:
        with self._lock:
            self._entries[key] = index
            self._entries.move_to_end(key)
            while len(self._entries) > self._max_entries:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


INDEX_CACHE = _IndexCache()


def _check_file(path: Path) -> os.stat_result:
    if not path.exists():
        raise DataError(f"{path}: file not found")
    if path.is_dir():
        raise DataError(f"{path}: is a directory, expected a video file")
    stat = path.stat()
    if stat.st_size == 0:
        raise DataError(f"{path}: empty file (0 bytes)")
    return stat


def _rate_to_float(rate: Fraction | None) -> float | None:
    if rate is None:
        return None
    value = float(rate)
    return value if np.isfinite(value) and 0 < value < 1000 else None


class VideoReader(FrameSource):
    """Frames of one video file, decoded with PyAV.

    Args:
        path: the video file.
        seek: ``None`` (default) seeks where the container's timestamps allow it; ``False`` always decodes from
            the start; ``True`` is the same as ``None`` (seeking is never forced on a container that cannot be
            trusted).
        decode_threads: FFmpeg decoder threads. Keep 1 inside DataLoader workers, which already run in
            parallel.
        use_cache: share the demux index through ``INDEX_CACHE``.
        skip_nonref: when seeking (H.264/HEVC), do not decode frames that are neither wanted nor referenced by
            another frame (``skip_frame=NONREF`` for the packets of unwanted frames). The output is unchanged.

    Raises:
        DataError: a missing, empty, non-video, truncated or undecodable file, naming the path.
    """

    def __init__(self, path: str | os.PathLike, *, seek: bool | None = None, decode_threads: int = 1,
                 use_cache: bool = True, skip_nonref: bool = True) -> None:
        import av

        self.path = Path(path)
        self.skip_nonref = bool(skip_nonref)
        stat = _check_file(self.path)
        self._seek_enabled = seek is not False
        self._decode_threads = max(1, int(decode_threads))
        try:
            self._container = av.open(str(self.path), metadata_errors="ignore")
        except (av.FFmpegError, OSError, UnicodeDecodeError) as exc:
            raise DataError(f"{self.path}: not a readable video ({exc})") from exc
        try:
            if not self._container.streams.video:
                raise DataError(f"{self.path}: no video stream")
            self._stream = self._container.streams.video[0]
            self._format_name = self._container.format.name
            key = (str(self.path.resolve()), stat.st_size, stat.st_mtime_ns)
            index = INDEX_CACHE.get(key) if use_cache else None
            if index is None:
                index = self._build_index()
                if use_cache:
                    INDEX_CACHE.put(key, index)
            self.index = index
            if self.index.num_frames == 0:
                raise DataError(f"{self.path}: the video stream holds no frames")
        except DataError:
            self.close()
            raise
        except Exception as exc:  # noqa: BLE001 - any demuxer failure means the file is unusable
            self.close()
            raise DataError(f"{self.path}: cannot index video ({type(exc).__name__}: {exc})") from exc
        codec = self._stream.codec_context
        self._prepare_decoder()
        self._rotation: int | None = None
        self._coded_size = (int(codec.height), int(codec.width))

    # -- properties ---------------------------------------------------------------------------------------
    @property
    def num_frames(self) -> int:
        return self.index.num_frames

    @property
    def fps(self) -> float:
        return self.index.fps

    @property
    def timestamps(self) -> np.ndarray:
        """float64 [num_frames]: presentation time of each frame in seconds, the first frame at 0."""
        return self.index.timestamps

    @property
    def duration(self) -> float:
        """Seconds from the first frame to the end of the last one."""
        return float(self.timestamps[-1] + 1.0 / self.fps)

    @property
    def rotation(self) -> int:
        """Counter-clockwise display rotation in degrees (0, 90, 180, 270); read from the first frame."""
        if self._rotation is None:
            self.get_frames([0])
        return int(self._rotation or 0)

    @property
    def height(self) -> int:
        """Height of the frames returned, after applying the display rotation."""
        return self._coded_size[1] if self.rotation in (90, 270) else self._coded_size[0]

    @property
    def width(self) -> int:
        return self._coded_size[0] if self.rotation in (90, 270) else self._coded_size[1]

    @property
    def can_seek(self) -> bool:
        return self._seek_enabled and self.index.pts is not None

    # -- indexing -----------------------------------------------------------------------------------------
    def _build_index(self) -> VideoIndex:
        stream = self._stream
        pts_list: list[int | None] = []
        key_pts: list[int | None] = []
        for packet in self._container.demux(stream):
            if packet.size == 0 or packet.is_discard:
                continue  # the flush packet at EOF, or frames an MP4 edit list hides
            pts_list.append(packet.pts)
            if packet.is_keyframe:
                key_pts.append(packet.pts)
        declared = int(stream.frames or 0)
        num_frames = len(pts_list)
        if declared > 0 and num_frames < _TRUNCATION_RATIO * declared - 1:
            raise DataError(
                f"{self.path}: truncated video: the container declares {declared} frames but only "
                f"{num_frames} could be read")

        fps = _rate_to_float(stream.average_rate) or _rate_to_float(stream.guessed_rate)
        if declared <= 0 and fps:
            seconds = self._declared_seconds()
            expected = int(round(seconds * fps)) if seconds else 0
            if expected > 1 and num_frames < _DURATION_TRUNCATION_RATIO * expected - 1:
                raise DataError(
                    f"{self.path}: truncated video: the container declares no frame count but {seconds:.2f} s at "
                    f"{fps:g} fps (about {expected} frames), and only {num_frames} could be read")
        trusted = (any(name in self._format_name for name in _PTS_TRUSTED_FORMATS)
                   and num_frames > 0 and all(p is not None for p in pts_list)
                   and len(set(pts_list)) == num_frames)
        if trusted and stream.time_base is not None:  # pts without a time base are no times: use the rate
            pts_sorted = sorted(p for p in pts_list if p is not None)  # every one, as trusted checked
            time_base = float(stream.time_base)
            timestamps = (np.asarray(pts_sorted, dtype=np.float64) - pts_sorted[0]) * time_base
            if fps is None and num_frames > 1 and timestamps[-1] > 0:
                fps = (num_frames - 1) / timestamps[-1]
            position = {p: i for i, p in enumerate(pts_sorted)}
            keyframes = tuple(sorted(position[p] for p in key_pts if p in position)) or (0,)
            return VideoIndex(num_frames, fps or DEFAULT_FPS, timestamps, tuple(pts_sorted), keyframes, declared)
        fps = fps or DEFAULT_FPS
        timestamps = np.arange(num_frames, dtype=np.float64) / fps
        return VideoIndex(num_frames, fps, timestamps, None, (0,), declared)

    def _declared_seconds(self) -> float:
        """The duration the stream (else the container) header declares, in seconds; 0 when neither does."""
        stream = self._stream
        if stream.duration and stream.time_base:
            return float(stream.duration * stream.time_base)
        duration = getattr(self._container, "duration", None)
        return float(duration) / 1e6 if duration else 0.0  # AV_TIME_BASE units

    # -- decoding -----------------------------------------------------------------------------------------
    def _frame_to_array(self, frame, short_side: int | None = None, crop: "FrameCrop | None" = None) -> np.ndarray:
        if self._rotation is None:
            self._rotation = int(round(getattr(frame, "rotation", 0) or 0)) % 360
        if crop is None and short_side is not None and min(frame.height, frame.width) > short_side:
            # Shrinking a whole frame: swscale scales and converts in one pass, cheaper than converting at full
            # size first (2x for 1080p).
            height, width = shrink_to_short_side(frame.height, frame.width, short_side)
            array = frame.to_ndarray(format="rgb24", width=width, height=height, interpolation="AREA",
                                     **swscale_options())
        else:
            array = frame_to_rgb(frame)
        if self._rotation:
            # np.rot90 turns counter-clockwise for positive k, the same convention as frame.rotation.
            array = np.rot90(array, k=self._rotation // 90)
        if crop is not None:
            return crop.apply(array)
        return np.ascontiguousarray(array)

    def _decoded_frames(self, before_decode=None) -> Iterator:
        """Decoded frames from the current demuxer position; corrupt packets are skipped, not fatal.
        ``before_decode(packet)`` runs before each packet is decoded (it may change the decoder's skip_frame)."""
        import av

        for packet in self._container.demux(self._stream):
            if before_decode is not None:
                before_decode(packet)
            try:
                frames = packet.decode()
            except av.FFmpegError as exc:
                logger.debug("%s: skipping undecodable packet (%s)", self.path, exc)
                continue
            yield from frames

    def _prepare_decoder(self) -> None:
        codec = self._stream.codec_context
        if self._decode_threads > 1:
            codec.thread_type = "AUTO"
            codec.thread_count = self._decode_threads
        else:
            codec.thread_count = 1

    def _rewind(self) -> None:
        self._container.seek(0, stream=self._stream, backward=True, any_frame=False)

    def _decode_sequential(self, wanted: set[int], found: dict[int, np.ndarray], short_side: int | None,
                           crop: "FrameCrop | None" = None) -> None:
        """Decode from the start, numbering frames by output order (or by pts where pts are trusted)."""
        self._rewind()
        last_wanted = max(wanted)
        position = {p: i for i, p in enumerate(self.index.pts)} if self.index.pts is not None else None
        for count, frame in enumerate(self._decoded_frames()):
            index = count
            if position is not None and frame.pts in position:
                index = position[frame.pts]
            if index in wanted and index not in found:
                found[index] = self._frame_to_array(frame, short_side, crop)
            if count >= last_wanted and len(found) == len(wanted):
                break

    def _decode_with_seek(self, wanted: set[int], found: dict[int, np.ndarray], short_side: int | None,
                          crop: "FrameCrop | None" = None) -> bool:
        """Seek to the keyframe before each run of wanted frames. Returns False if a seek misbehaved.

        With ``skip_nonref``, packets of frames that are not wanted are decoded with ``skip_frame=NONREF``: a
        frame no other frame references, and that is not wanted, is never decoded. The frames produced are
        exactly those of a full decode (no wanted frame, and no reference of one, is skipped)."""
        index = self.index
        assert index.pts is not None
        position = {p: i for i, p in enumerate(index.pts)}
        skipping = self.skip_nonref and self._stream.codec_context.name in _SKIP_NONREF_CODECS
        codec = self._stream.codec_context

        def before_decode(packet) -> None:
            # Packet pts is the frame's presentation time, so the index tells whether this frame is wanted.
            mode: Literal["DEFAULT", "NONREF"] = "DEFAULT" if position.get(packet.pts) in wanted else "NONREF"
            if codec.skip_frame != mode:
                codec.skip_frame = mode

        pending = sorted(wanted)
        keyframes = index.keyframes
        frames_iter: Iterator | None = None
        current = -1  # index of the last frame decoded from frames_iter
        while pending:
            target = pending[0]
            key = keyframes[max(0, bisect.bisect_right(keyframes, target) - 1)]
            if frames_iter is None or current >= target or key > current + 1:
                # A fresh seek is needed: behind us, or a keyframe lies between us and the target.
                self._container.seek(index.pts[key], stream=self._stream, backward=True, any_frame=False)
                frames_iter = self._decoded_frames(before_decode if skipping else None)
                current = -1
                first = True
            else:
                first = False
            for frame in frames_iter:
                frame_index = position.get(frame.pts)
                if frame_index is None:
                    return False  # the decoder produced a timestamp the index does not know
                if first:
                    first = False
                    if frame_index > target:
                        return False  # the seek overshot the frame we need
                current = frame_index
                if frame_index in wanted and frame_index not in found:
                    found[frame_index] = self._frame_to_array(frame, short_side, crop)
                if frame_index >= target:
                    break
            else:
                return False  # ran out of frames before the target
            pending = [i for i in pending if i not in found]
            if pending and pending[0] <= current:
                return False  # a wanted frame was passed without being produced
        return True

    def get_frames(self, indices: FrameIndices, *, seek: bool | None = None,
                   short_side: int | None = None, region: Region | None = None,
                   size: tuple[int, int] | None = None) -> np.ndarray:
        """Decode the frames at ``indices``.

        Args:
            indices: frame indices in ``[0, num_frames)``; any order, repeats allowed.
            seek: override the reader's seek setting for this call.
            short_side: shrink frames whose shorter side is longer than this while converting to RGB.
            region, size: crop each frame to ``region`` and resize the crop to ``size = (H, W)``, in uint8,
                right after converting it (only the sampled frames are converted). ``region`` is
                ``(top, left, height, width)`` in pixels of the displayed (rotated) frame, or a function
                ``(frame_height, frame_width) -> region`` called once, when the first frame is decoded (so a
                random crop can be drawn without decoding anything in advance); such a function may also return
                ``(region, size)``, and ``size`` is then left out. Overrides ``short_side``.

        Returns:
            uint8 array [len(indices), H, W, 3], RGB.
        """
        import av

        crop = None if region is None else FrameCrop(region, size)
        indices = checked_indices(self.path, indices, self.num_frames)
        wanted = set(indices)
        found: dict[int, np.ndarray] = {}
        use_seek = self.can_seek if seek is None else (seek and self.index.pts is not None)
        try:
            if use_seek and not self._decode_with_seek(wanted, found, short_side, crop):
                logger.debug("%s: seek verification failed, decoding from the start", self.path)
                found.clear()
                use_seek = False
                self._stream.codec_context.skip_frame = "DEFAULT"
            if not use_seek:
                self._decode_sequential(wanted, found, short_side, crop)
        except av.FFmpegError as exc:
            raise DataError(f"{self.path}: decoding failed ({exc})") from exc
        finally:
            if self._container is not None:
                self._stream.codec_context.skip_frame = "DEFAULT"
        missing = sorted(wanted - found.keys())
        if missing:
            if not found or len(missing) > max(2, self.num_frames // 50):
                raise DataError(
                    f"{self.path}: decoded only {len(found)} of {len(wanted)} requested frames; the file is "
                    f"truncated or corrupt (first missing frame {missing[0]})")
            # A frame or two at the very end that the index promised but the decoder dropped.
            logger.debug("%s: frames %s not produced by the decoder, using neighbours", self.path, missing)
            available = sorted(found)
            for i in missing:
                nearest = available[max(0, bisect.bisect_right(available, i) - 1)]
                found[i] = found[nearest]
        return np.stack([found[i] for i in indices])

    def read_all(self, *, short_side: int | None = None) -> np.ndarray:
        """Every frame, uint8 [num_frames, H, W, 3], decoded sequentially."""
        return self.get_frames(range(self.num_frames), seek=False, short_side=short_side)

    def iter_frames(self, *, short_side: int | None = None) -> Iterator[np.ndarray]:
        """Every frame in order as uint8 [H, W, 3], decoded sequentially without holding the whole video.

        Raises DataError if the decoder produces far fewer frames than the index promised (truncation).
        """
        import av

        self._rewind()
        count = 0
        try:
            for frame in self._decoded_frames():
                if count >= self.num_frames:
                    break
                yield self._frame_to_array(frame, short_side)
                count += 1
        except av.FFmpegError as exc:
            raise DataError(f"{self.path}: decoding failed after {count} frames ({exc})") from exc
        if count < self.num_frames - max(2, self.num_frames // 50):
            raise DataError(f"{self.path}: decoded only {count} of {self.num_frames} frames; the file is "
                            "truncated or corrupt")

    def close(self) -> None:
        container = getattr(self, "_container", None)
        if container is not None:
            container.close()
            self._container = None  # type: ignore[assignment]  # closed: no method reads it again but close()

    def __enter__(self) -> "VideoReader":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass
