"""Fixtures shared by the data tests: the bundled real videos, tiny generated videos and a tiny synthetic set."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

VIDEO_DIR = Path(__file__).resolve().parents[1] / "fixtures" / "videos"

# name -> (frames a decoder outputs, height, width, frame rate)
REAL_VIDEOS = {
    "kinetics_armwrestling_340x256.mp4": (280, 256, 340, 28.0),
    "mpeg4_audio_320x240.avi": (164, 240, 320, 25.0),
    "ntu_1080p_h264.avi": (103, 1080, 1920, 30.0),
    "h264_426x240_2997fps.mp4": (300, 240, 426, 30000 / 1001),
}


def encode_video(path: Path, frames: np.ndarray, *, fps: int = 10, codec: str = "libx264", pix_fmt: str = "yuv420p",
                 gop: int = 4, rotation: int | None = None, pts: list[int] | None = None,
                 faststart: bool = False) -> Path:
    """Encode uint8 [T, H, W, 3] frames with PyAV (test helper, independent of the code under test)."""
    import av

    options = {"movflags": "faststart"} if faststart else {}
    with av.open(str(path), "w", options=options) as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], pix_fmt
        stream.codec_context.thread_count = 1
        if codec == "libx264":
            stream.options = {"g": str(gop), "keyint_min": str(gop), "crf": "12", "preset": "veryfast"}
        if rotation is not None:
            stream.set_display_rotation(rotation)
        if pts is not None:
            stream.time_base = Fraction(1, 1000)
            stream.codec_context.time_base = Fraction(1, 1000)
        for t, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
            if pts is not None:
                frame.pts, frame.time_base = pts[t], Fraction(1, 1000)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def counter_frames(num_frames: int, height: int = 32, width: int = 32) -> np.ndarray:
    """Frames whose brightness encodes their index (10 * t), easy to identify after lossy coding."""
    frames = np.zeros((num_frames, height, width, 3), dtype=np.uint8)
    for t in range(num_frames):
        frames[t] = (10 * t) % 250
    return frames


def frame_number(frame: np.ndarray) -> int:
    return int(round(float(frame.mean()) / 10))


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory) -> Path:
    """A tiny synthetic benchmark: 36 videos, 6 classes, 32x32, 16 frames (the data tests' own set; it
    replaces the suite-wide ``synthetic_root`` of ``tests/conftest.py`` here)."""
    from assemblenet.data.synthetic import make_synthetic

    root = tmp_path_factory.mktemp("synthetic")
    make_synthetic(root, num_videos=36, num_classes=6, size=32, num_frames=16, fps=10, seed=3,
                   multi_label_fraction=0.4, val_fraction=0.25, progress=False)
    return root
