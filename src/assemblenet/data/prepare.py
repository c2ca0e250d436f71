"""Re-encode a video dataset for fast random access (``assemblenet prepare-videos SRC DST``).

Random training clips from files with long GOPs (libx264's default keyframe interval is 250 frames) spend most
of their decoding on frames before the clip. Re-encoding once with a keyframe every ``gop`` frames (16 by
default), at the short side training uses (256 by default), makes every clip cheap to reach: a seek lands at
most ``gop - 1`` frames before it, and each frame is smaller. What the output is:

- H.264 (libx264), yuv420p, ``crf`` 23 and ``tune=fastdecode`` unless told, no audio, the source's frame
  count and average frame rate (variable-rate sources become constant-rate), its display rotation carried over
  as metadata;
- ``DST/<same folders>/<same stem>.mp4``: a list file naming ``x.avi`` still finds ``x.mp4`` (the datasets
  fall back to the ``.mp4`` of the same stem when the named file is missing), so configs only change the root.

Running it: all cores by default, one file per process, with a progress bar and ETA. Each output is written to
a temporary name and renamed into place only after it decodes with the source's frame count (+-1), so after a
kill -9 a rerun skips every finished file and never counts a half-written one. Unreadable sources are reported
and skipped. A JSON summary (files, hours of video, bytes before and after, time) is written to
``DST/prepare-videos-report.json``.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path

from assemblenet.errors import DataError
from assemblenet.fileio import atomic_path, atomic_write_json, hold_folder, remove_stale_temporaries
from assemblenet.runtime import process_pool

logger = logging.getLogger(__name__)

REPORT_NAME = "prepare-videos-report.json"


@dataclass
class PrepareReport:
    """What ``prepare_videos`` did. Byte and hour totals cover the usable files (converted or already done)."""

    source: str
    destination: str
    files: int = 0
    converted: int = 0
    already_done: int = 0
    failed: dict[str, str] = field(default_factory=dict)  # source path -> reason
    hours: float = 0.0
    bytes_before: int = 0
    bytes_after: int = 0
    seconds: float = 0.0
    settings: dict = field(default_factory=dict)

    def summary(self) -> str:
        ratio = self.bytes_after / self.bytes_before if self.bytes_before else float("nan")
        return (f"{self.files} files ({self.converted} converted, {self.already_done} already done, "
                f"{len(self.failed)} failed), {self.hours:.2f} h of video, {self.bytes_before / 1e6:.1f} MB -> "
                f"{self.bytes_after / 1e6:.1f} MB ({ratio:.2f}x), {self.seconds:.1f} s")


def list_source_videos(src: Path) -> list[Path]:
    """Video files under ``src`` (recursively, hidden files and folders left out), sorted."""
    from assemblenet.data.decode import find_videos

    return find_videos(src)


def output_path(src: Path, dst: Path, video: Path) -> Path:
    return dst / video.relative_to(src).with_suffix(".mp4")


def output_size(height: int, width: int, short_side: int) -> tuple[int, int]:
    """(H, W) with the shorter side ``short_side`` (never enlarged), both even (4:2:0 needs it)."""
    from assemblenet.data.decode import shrink_to_short_side

    height, width = shrink_to_short_side(height, width, short_side)
    return max(2, height - height % 2), max(2, width - width % 2)


def decoded_frame_count(path: Path) -> int:
    """Frames a decoder produces for ``path`` (no conversion); raises DataError if it cannot be decoded."""
    import av

    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stream.codec_context.thread_count = 1
            return sum(1 for _ in container.decode(stream))
    except (av.FFmpegError, IndexError, OSError) as exc:
        raise DataError(f"{path}: the re-encoded file does not decode ({exc})") from exc


def encode_prepared(source: Path, target: Path, *, short_side: int, gop: int, crf: int, preset: str,
                    tune: str | None = "fastdecode") -> dict:
    """Re-encode ``source`` into ``target`` (written atomically, verified before it is renamed into place).
    Returns the source's frame count and duration. Raises DataError for an unreadable source or output."""
    import av

    from assemblenet.data.decode import VideoReader, swscale_options

    with VideoReader(source, use_cache=False) as reader:  # indexes the packets: corrupt files fail here
        expected, fps = reader.num_frames, reader.fps
        duration = reader.duration
    rate = Fraction(fps).limit_denominator(1001)
    written = 0
    with atomic_path(target) as tmp:
        try:
            with av.open(str(source), metadata_errors="ignore") as src, \
                    av.open(str(tmp), mode="w", format="mp4") as out:
                in_stream = src.streams.video[0]
                in_stream.codec_context.thread_count = 1
                stream = None
                for packet in src.demux(in_stream):
                    try:
                        frames = packet.decode()
                    except av.FFmpegError as exc:
                        logger.debug("%s: skipping an undecodable packet (%s)", source, exc)
                        continue
                    for frame in frames:
                        if stream is None:
                            height, width = output_size(frame.height, frame.width, short_side)
                            stream = out.add_stream("libx264", rate=rate)
                            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
                            stream.codec_context.thread_count = 1
                            options = {"crf": str(crf), "preset": preset, "g": str(gop),
                                       "keyint_min": str(gop), "threads": "1"}
                            stream.options = {**options, "tune": tune} if tune else options
                            rotation = int(round(getattr(frame, "rotation", 0) or 0)) % 360
                            if rotation:
                                stream.set_display_rotation(rotation)
                        image = frame.reformat(width=stream.width, height=stream.height, format="yuv420p",
                                               interpolation="AREA", **swscale_options())
                        image.pts, image.time_base = written, 1 / rate
                        for out_packet in stream.encode(image):
                            out.mux(out_packet)
                        written += 1
                if stream is None:
                    raise DataError(f"{source}: no frame could be decoded")
                for out_packet in stream.encode():
                    out.mux(out_packet)
        except av.FFmpegError as exc:
            raise DataError(f"{source}: cannot re-encode ({exc})") from exc
        produced = decoded_frame_count(tmp)
        if abs(produced - expected) > 1:
            raise DataError(f"{source}: the re-encoded file decodes to {produced} frames, the source has "
                            f"{expected}; the source is probably damaged")
    return {"frames": expected, "seconds": duration}


def _job(job: tuple) -> tuple[str, str, float, int, int, str]:
    """(source, status 'converted'|'done'|'failed', seconds of video, bytes before, bytes after, reason)."""
    source, target, settings = Path(job[0]), Path(job[1]), job[2]
    before = source.stat().st_size if source.is_file() else 0
    try:
        if target.is_file():
            # Finished files were verified before they were renamed into place: never redone.
            from assemblenet.data.decode import VideoReader

            with VideoReader(target, use_cache=False) as reader:
                seconds = reader.duration
            return str(source), "done", seconds, before, target.stat().st_size, ""
        info = encode_prepared(source, target, **settings)
        return str(source), "converted", info["seconds"], before, target.stat().st_size, ""
    except DataError as exc:
        return str(source), "failed", 0.0, before, 0, str(exc)
    except Exception as exc:  # noqa: BLE001 - any codec failure means this one file is unusable
        return str(source), "failed", 0.0, before, 0, f"{source}: {type(exc).__name__}: {exc}"


def prepare_videos(src: str | os.PathLike, dst: str | os.PathLike, *, short_side: int = 256, gop: int = 16,
                   crf: int = 23, preset: str = "veryfast", tune: str | None = "fastdecode",
                   workers: int | None = None,
                   progress: bool = True) -> PrepareReport:
    """Re-encode every video under ``src`` into ``dst`` for fast random access (see the module docstring).

    Args:
        short_side: shorter side of the output in pixels (smaller videos keep their size).
        gop: frames between keyframes.
        crf, preset: libx264 quality and speed.
        tune: libx264 tuning; ``fastdecode`` (CAVLC, no deblocking filter, no weighted prediction) decodes
            about 1.5x faster for about 15% more bytes (measured in docs/data.md); None for x264's default.
        workers: processes (default: every core).
        progress: show a tqdm bar with an ETA.

    Returns:
        A ``PrepareReport``, also written to ``dst/prepare-videos-report.json``.
    """
    from tqdm import tqdm

    src, dst = Path(src), Path(dst)
    if not src.is_dir():
        raise DataError(f"{src}: not a folder of videos")
    if short_side < 2 or gop < 1 or not 0 <= crf <= 51:
        raise DataError(f"need short_side >= 2, gop >= 1 and 0 <= crf <= 51; got {short_side}, {gop}, {crf}")
    src_resolved, dst_resolved = src.resolve(), dst.resolve()
    if dst_resolved == src_resolved or src_resolved in dst_resolved.parents:
        raise DataError(f"{dst}: the destination must lie outside the source folder {src}")
    videos = list_source_videos(src)
    if not videos:
        raise DataError(f"{src}: no video files found")
    settings = {"short_side": int(short_side), "gop": int(gop), "crf": int(crf), "preset": preset, "tune": tune}
    targets = [output_path(src, dst, video) for video in videos]
    with hold_folder(dst):  # one run per destination: a second one would delete this one's temporaries
        for folder in sorted({target.parent for target in targets}):
            remove_stale_temporaries(folder)  # half-written outputs of a killed run
        jobs = [(str(video), str(target), settings) for video, target in zip(videos, targets)]
        report = PrepareReport(source=str(src), destination=str(dst), files=len(jobs), settings=settings)
        begin = time.perf_counter()
        workers = max(1, workers or os.cpu_count() or 1)
        bar = tqdm(total=len(jobs), desc="prepare-videos", unit="video", disable=not progress)
        try:
            if workers == 1 or len(jobs) == 1:
                _collect((_job(job) for job in jobs), report, bar)
            else:
                with process_pool(min(workers, len(jobs))) as pool:
                    _collect(pool.map(_job, jobs), report, bar)
        finally:
            bar.close()
        report.seconds = time.perf_counter() - begin
        atomic_write_json(dst / REPORT_NAME, asdict(report), indent=2)
    return report


def _collect(results, report: PrepareReport, bar) -> None:
    for source, status, seconds, before, after, reason in results:
        if status == "failed":
            report.failed[source] = reason
            logger.warning("skipping %s", reason)
        else:
            report.converted += status == "converted"
            report.already_done += status == "done"
            report.hours += seconds / 3600
            report.bytes_before += before
            report.bytes_after += after
        bar.update()
