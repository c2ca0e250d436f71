"""Random access to video frames: PyAV for video files (:mod:`.video`), OpenCV for frame folders (:mod:`.frames`).

A *frame index* is the position of a frame in presentation order, counted from 0, exactly as a decoder that
runs from the start of the file would output it. Both readers are a ``FrameSource`` (:mod:`.source`, with the
video and image extensions and the image operations the readers share): code that takes a reader takes that
Protocol. :func:`open_video` opens either. Every public name of the three modules is re-exported here, the
package's one import path (``from assemblenet.data.decode import VideoReader``).
"""

from __future__ import annotations

import os
from pathlib import Path

from assemblenet.data.decode.frames import FrameFolderReader, list_frame_files
from assemblenet.data.decode.source import (
    DEFAULT_FPS,
    IMAGE_EXTENSIONS,
    VIDEO_EXTENSIONS,
    FrameSource,
    Region,
    crop_resize,
    find_videos,
    shrink_to_short_side,
)
from assemblenet.data.decode.video import INDEX_CACHE, VideoIndex, VideoReader, frame_to_rgb, swscale_options

__all__ = ["DEFAULT_FPS", "IMAGE_EXTENSIONS", "INDEX_CACHE", "VIDEO_EXTENSIONS", "FrameFolderReader",
           "FrameSource", "Region", "VideoIndex", "VideoReader", "crop_resize", "find_videos", "frame_to_rgb",
           "list_frame_files", "open_video", "shrink_to_short_side", "swscale_options"]


def open_video(path: str | os.PathLike, *, fps: float | None = None, seek: bool | None = None,
               decode_threads: int = 1) -> FrameSource:
    """Open a video file with ``VideoReader`` or a frame folder with ``FrameFolderReader``.

    ``fps`` is used for frame folders only (video files carry their own rate).
    """
    path = Path(path)
    if path.is_dir():
        return FrameFolderReader(path, fps=fps or DEFAULT_FPS)
    return VideoReader(path, seek=seek, decode_threads=decode_threads)
