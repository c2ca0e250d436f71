"""Decoded frames of a dataset split on disk, written once and memory-mapped read-only by many processes.

An architecture search trains hundreds of small candidates on the same proxy videos, in several worker
processes and across restarts. ``cache_frames`` keeps decoded frames inside one dataset object of one
process; a :class:`FrameStore` keeps them in one file that every worker maps, so each video is decoded once
per store instead of once per worker, per restart (or, without ``cache_frames``, per clip).

Layout: a folder per split holding ``frames.u8`` (the decoded ``[N, H, W, 3]`` uint8 frames of every video,
one after another) and ``index.json`` (per video: its path, file size and modification time, offset, shape,
timestamps and frame rate; plus the store's ``key``, a digest of the video list and the decoding options).
The folder is written under a temporary name and renamed in one step (:func:`assemblenet.fileio.atomic_dir`),
so a reader sees a whole store or none, and a process killed while writing leaves nothing that looks valid.

Freshness: a video whose file size or modification time differs from the index (it was replaced) is not
served from the store; the dataset decodes it as if there were no store. :func:`build_frame_store` rebuilds a
store whose key differs or that holds a stale video.

Memory: the store's size is the sum of ``frames x H x W x 3`` bytes over its videos; it lives in the page
cache, shared by every process that maps it. ``limit_bytes`` bounds it: a split that does not fit is not
stored (logged; its videos are decoded as before).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, Sequence

import numpy as np

from assemblenet.fileio import atomic_dir

logger = logging.getLogger(__name__)

STORE_VERSION = 1
FRAMES_FILE = "frames.u8"
INDEX_FILE = "index.json"


class DecodedFrames(Protocol):
    frames: np.ndarray  # [N, H, W, 3] uint8
    timestamps: np.ndarray
    fps: float


class StorableDataset(Protocol):
    """What :func:`build_frame_store` needs of a dataset (``VideoDataset`` has it)."""

    def frame_store_paths(self) -> list[str | None]: ...

    def frame_store_options(self) -> dict[str, Any]: ...

    def decode_whole_video(self, video_index: int) -> DecodedFrames: ...


@dataclass(frozen=True)
class StoredVideo:
    """A video as the store holds it, with the frames as a read-only view of the mapped file."""

    frames: np.ndarray
    timestamps: np.ndarray
    fps: float

    @property
    def num_frames(self) -> int:
        return len(self.frames)


def file_signature(path: str | os.PathLike[str]) -> tuple[int, int] | None:
    """(size in bytes, modification time in ns) of a file; None when it cannot be read."""
    try:
        status = os.stat(path)
    except OSError:
        return None
    return int(status.st_size), int(status.st_mtime_ns)


def store_key(paths: Sequence[str | None], options: dict[str, Any]) -> str:
    """A digest of the video list and the decoding options: another list or other options is another store."""
    text = json.dumps({"version": STORE_VERSION, "paths": list(paths), "options": options}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class FrameStore:
    """A written store, mapped read-only. :meth:`lookup` serves a video's frames when its file is unchanged."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)
        index = json.loads((self.folder / INDEX_FILE).read_text())
        if index.get("version") != STORE_VERSION:
            raise ValueError(f"{self.folder / INDEX_FILE}: store version {index.get('version')!r}, expected "
                             f"{STORE_VERSION}")
        self.key: str = index["key"]
        self.total_bytes: int = int(index["total_bytes"])
        self._entries: dict[str, dict[str, Any]] = {entry["path"]: entry for entry in index["videos"]}
        data_path = self.folder / FRAMES_FILE
        if data_path.stat().st_size != self.total_bytes:
            raise ValueError(f"{data_path}: {data_path.stat().st_size} bytes, the index says {self.total_bytes}")
        # np.memmap cannot map an empty file; a store of only unreadable videos holds nothing to map.
        self._data = np.memmap(data_path, dtype=np.uint8, mode="r") if self.total_bytes else np.empty(0, np.uint8)
        self.hits = 0
        self.stale: set[str] = set()

    def __len__(self) -> int:
        return len(self._entries)

    def __reduce__(self) -> tuple[Any, ...]:
        # Sent to another process (a spawned DataLoader worker) as its folder, which that process maps itself.
        return (FrameStore, (str(self.folder),))

    def __contains__(self, path: object) -> bool:
        return path in self._entries

    def fresh(self, path: str) -> bool:
        """Whether ``path`` is stored and its file still has the stored size and modification time."""
        entry = self._entries.get(path)
        return entry is not None and file_signature(path) == (entry["size"], entry["mtime_ns"])

    def lookup(self, path: str) -> StoredVideo | None:
        """The stored frames of ``path``, or None when it is not stored or its file changed since (logged once)."""
        entry = self._entries.get(path)
        if entry is None:
            return None
        if not self.fresh(path):
            if path not in self.stale:
                self.stale.add(path)
                logger.warning("frame store %s: %s changed since it was stored; decoding it instead", self.folder,
                               path)
            return None
        count, height, width = entry["shape"]
        size = count * height * width * 3
        frames = self._data[entry["offset"]:entry["offset"] + size].reshape(count, height, width, 3)
        self.hits += 1
        return StoredVideo(frames, np.asarray(entry["timestamps"], dtype=np.float64), float(entry["fps"]))


def open_frame_store(folder: str | os.PathLike[str], dataset: StorableDataset) -> FrameStore | None:
    """The store in ``folder`` when it exists and was written for ``dataset``'s videos and options; else None
    (logged), and the dataset decodes as usual."""
    folder = Path(folder)
    if not (folder / INDEX_FILE).is_file():
        logger.warning("no frame store at %s; decoding the videos instead", folder)
        return None
    try:
        store = FrameStore(folder)
    except (OSError, ValueError, KeyError, json.JSONDecodeError) as exc:
        logger.warning("frame store %s unreadable (%s); decoding the videos instead", folder, exc)
        return None
    expected = store_key(dataset.frame_store_paths(), dataset.frame_store_options())
    if store.key != expected:
        logger.warning("frame store %s was written for other videos or decoding options; decoding instead", folder)
        return None
    return store


@dataclass(frozen=True)
class FrameStoreBuild:
    """What :func:`build_frame_store` did: ``store`` is None when the split did not fit (or held no video)."""

    store: FrameStore | None
    decoded: int  # videos decoded by this call (0: an up-to-date store was reused)
    unreadable: int  # videos that failed to decode (not stored; the dataset skips them as usual)
    total_bytes: int
    reason: str = ""


def build_frame_store(folder: str | os.PathLike[str], dataset: StorableDataset, *, limit_bytes: int,
                      what: str = "split") -> FrameStoreBuild:
    """Write (or reuse) the store of ``dataset``'s videos in ``folder``.

    An existing store with the same key whose videos are all unchanged is reused without decoding. Otherwise
    every video is decoded once and the store is written whole, atomically. When the decoded frames would
    exceed ``limit_bytes`` the build stops, writes nothing, and returns ``store=None`` with the reason logged.
    Videos that fail to decode are left out and counted; the dataset meets them again and skips them as usual.
    Killed while writing, it leaves only a temporary folder (removed by the next build): never a partial store.
    """
    folder = Path(folder)
    paths = dataset.frame_store_paths()
    key = store_key(paths, dataset.frame_store_options())
    if (folder / INDEX_FILE).is_file():
        try:
            existing = FrameStore(folder)
        except (OSError, ValueError, KeyError, json.JSONDecodeError) as exc:
            logger.warning("frame store %s unreadable (%s); rebuilding it", folder, exc)
        else:
            up_to_date = existing.key == key and all(existing.fresh(p) for p in paths if p and p in existing)
            if up_to_date and existing.total_bytes > limit_bytes:  # written under a larger bound
                shutil.rmtree(folder)
                reason = f"the {what}'s decoded frames need {existing.total_bytes / 2**20:.1f} MB"
                logger.warning("frame store %s removed: %s, over the limit of %.0f MB; its videos are decoded in "
                               "each worker instead", folder, reason, limit_bytes / 2**20)
                return FrameStoreBuild(None, 0, 0, 0, reason=f"{reason}, more than {limit_bytes / 2**20:.0f} MB")
            if up_to_date:
                logger.info("frame store %s: reusing %d videos (%.1f MB)", folder, len(existing),
                            existing.total_bytes / 2**20)
                return FrameStoreBuild(existing, 0, 0, existing.total_bytes)
            logger.info("frame store %s is out of date (other videos, options or changed files); rebuilding", folder)
    try:
        return _write_store(folder, dataset, paths, key, limit_bytes=limit_bytes, what=what)
    except _DoesNotFit as exc:
        if folder.exists():  # an older, smaller store there must not be served instead
            shutil.rmtree(folder)
        return FrameStoreBuild(None, 0, 0, 0, reason=str(exc))


def _write_store(folder: Path, dataset: StorableDataset, paths: Sequence[str | None], key: str, *,
                 limit_bytes: int, what: str) -> FrameStoreBuild:
    entries: list[dict[str, Any]] = []
    total = unreadable = decoded = 0
    with atomic_dir(folder) as tmp:
        with open(tmp / FRAMES_FILE, "wb") as out:
            for index, path in enumerate(paths):
                if path is None:  # frame folders are read as images, not decoded: nothing to store
                    continue
                signature = file_signature(path)
                try:
                    video = dataset.decode_whole_video(index)
                except Exception as exc:  # noqa: BLE001 - a broken video is the dataset's to skip and count
                    unreadable += 1
                    logger.warning("frame store: cannot decode %s (%s: %s); not stored", path, type(exc).__name__,
                                   exc)
                    continue
                decoded += 1
                frames = np.ascontiguousarray(video.frames, dtype=np.uint8)
                if total + frames.nbytes > limit_bytes:
                    reason = (f"the {what}'s decoded frames need more than {limit_bytes / 2**20:.0f} MB (reached "
                              f"after {decoded} of {len(paths)} videos)")
                    logger.warning("frame store %s not written: %s; its videos are decoded in each worker instead",
                                   folder, reason)
                    raise _DoesNotFit(reason)
                if signature is None or frames.ndim != 4 or frames.shape[-1] != 3:
                    continue
                out.write(frames.tobytes())
                entries.append({"path": path, "size": signature[0], "mtime_ns": signature[1], "offset": total,
                                "shape": list(frames.shape[:3]), "fps": float(video.fps),
                                "timestamps": [float(t) for t in np.asarray(video.timestamps)]})
                total += frames.nbytes
        (tmp / INDEX_FILE).write_text(json.dumps({"version": STORE_VERSION, "key": key, "total_bytes": total,
                                                  "videos": entries}))
    logger.info("frame store %s: %d videos decoded once, %.1f MB (limit %.0f MB)%s", folder, len(entries),
                total / 2**20, limit_bytes / 2**20, f", {unreadable} unreadable" if unreadable else "")
    return FrameStoreBuild(FrameStore(folder), decoded, unreadable, total)


class _DoesNotFit(Exception):
    pass
