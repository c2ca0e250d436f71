"""Predict the classes of one video: sliding windows over the whole video, per-window and video scores.

Each window is a clip of ``num_frames`` frames taken every ``stride`` frames, resized on its short side and
centre-cropped to ``crop_size`` (as in evaluation). Window scores are probabilities (sigmoid for
multi-label models, softmax otherwise); the video's score is their mean.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from assemblenet.engine.modeling import model_dtype, rgb_to_device
from assemblenet.errors import ConfigError
from assemblenet.fileio import atomic_path, atomic_write_json
from assemblenet.input_spec import DEFAULT_INPUT


@dataclass
class VideoPrediction:
    path: str
    class_names: list[str]
    multi_label: bool
    scores: np.ndarray  # [K] video scores
    window_scores: np.ndarray  # [W, K]
    window_frames: list[tuple[int, int]]  # first and last source frame of each window
    window_times: list[tuple[float, float]]  # start and end in seconds
    fps: float
    num_video_frames: int

    def top(self, k: int = 5) -> list[tuple[int, str, float]]:
        order = np.argsort(-self.scores, kind="stable")[:k]
        return [(int(i), self.class_names[i], float(self.scores[i])) for i in order]


def window_starts(num_video_frames: int, span: int, hop: int) -> list[int]:
    """Start frames of windows of ``span`` frames every ``hop`` frames covering the whole video; the last
    window ends at the last frame. A video shorter than one window gets one window at 0."""
    if num_video_frames <= span:
        return [0]
    last = num_video_frames - span
    starts = list(range(0, last + 1, hop))
    if starts[-1] != last:
        starts.append(last)
    return starts


def _window_indices(start: int, num_frames: int, stride: int, num_video_frames: int) -> np.ndarray:
    indices = start + np.arange(num_frames) * stride
    # Short videos: loop, as the datasets' default ``short_video='loop'`` does.
    return indices % num_video_frames


@torch.no_grad()
def predict_video(model: nn.Module, path: str | os.PathLike[str], *, num_frames: int, crop_size: int,
                  class_names: Sequence[str] | None = None, multi_label: bool = False,
                  stride: int = DEFAULT_INPUT.stride, hop: int | None = None, batch_size: int = 4,
                  device: torch.device | str = "cpu", objects: str | os.PathLike[str] | None = None) -> VideoPrediction:
    """Score every window of the video at ``path`` with ``model`` (RGB input, plus the video's object maps
    ``objects``, a ``.npz`` or PNG folder as in ``assemblenet.data.objects``, for a model with an object stem)."""
    from assemblenet.data import open_video
    from assemblenet.data.transforms import eval_transform

    if getattr(model, "flow_mode", "rgb") == "precomputed" and getattr(model, "has_flow_stem", False):
        raise ConfigError("predict needs a model that reads RGB only (flow_mode 'rgb'); this one takes "
                          "precomputed flow")
    object_maps = None
    if getattr(model, "has_object_stem", False):
        if objects is None:
            raise ConfigError("this model has an object stem: give the video's object maps (--objects FILE.npz or "
                              "a folder of PNG label maps)")
        from assemblenet.data.objects import open_object_maps

        object_maps = open_object_maps(objects, num_classes=int(getattr(model, "num_object_classes")))
    device = torch.device(device)
    model = model.to(device).eval()
    transform = eval_transform(crop_size)
    span = (num_frames - 1) * stride + 1
    hop = hop or span
    batches: list[torch.Tensor] = []
    frames_of: list[tuple[int, int]] = []
    object_clips: list[torch.Tensor] = []
    with open_video(path) as reader:
        total, fps, stamps = reader.num_frames, float(reader.fps), reader.timestamps
        clips: list[torch.Tensor] = []
        for start in window_starts(total, span, hop):
            indices = _window_indices(start, num_frames, stride, total)
            frames = reader.get_frames(indices.tolist(), short_side=crop_size)
            clip = torch.from_numpy(frames).permute(3, 0, 1, 2)  # [3, T, H, W] uint8
            if object_maps is None:
                clips.append(transform(clip))
            else:
                store, key = object_maps
                height, width = clip.shape[-2:]
                sample = transform({"rgb": clip, "objects": store.load(key, indices.tolist(), size=(height, width))})
                clips.append(sample["rgb"])
                object_clips.append(sample["objects"])
            frames_of.append((int(start), int(min(start + span, total) - 1)))
            if len(clips) == batch_size:
                batches.append(_score(model, clips, object_clips, device, multi_label))
                clips, object_clips = [], []
        if clips:
            batches.append(_score(model, clips, object_clips, device, multi_label))
    window_scores = torch.cat(batches).numpy()
    k = window_scores.shape[1]
    names = list(class_names) if class_names is not None and len(class_names) == k else [str(i) for i in range(k)]
    frame_time = 1.0 / fps if fps > 0 else 0.0
    times = [(float(stamps[a]), float(stamps[b]) + frame_time) for a, b in frames_of]
    return VideoPrediction(path=str(path), class_names=names, multi_label=multi_label,
                           scores=window_scores.mean(axis=0), window_scores=window_scores, window_frames=frames_of,
                           window_times=times, fps=fps, num_video_frames=total)


def _score(model: nn.Module, clips: list[torch.Tensor], object_clips: list[torch.Tensor], device: torch.device,
           multi_label: bool) -> torch.Tensor:
    dtype = model_dtype(model)
    video = rgb_to_device(torch.stack(clips), device, dtype=dtype)
    if object_clips:
        objects = torch.stack(object_clips).to(device)
        if objects.is_floating_point():  # score maps follow the model's dtype; label ids stay integers
            objects = objects.to(dtype)
        logits = model(video, None, objects).float()
    else:
        logits = model(video).float()
    return (torch.sigmoid(logits) if multi_label else torch.softmax(logits, dim=-1)).cpu()


def write_timeline(prediction: VideoPrediction, json_path: str | os.PathLike[str], *,
                   top_classes: int = 5) -> tuple[Path, Path]:
    """Per-window scores as JSON and a PNG of the top classes' scores over time (same name, ``.png``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    json_path = Path(json_path)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    data: dict[str, Any] = {
        "video": prediction.path, "fps": prediction.fps, "num_frames": prediction.num_video_frames,
        "multi_label": prediction.multi_label, "class_names": prediction.class_names,
        "video_scores": [float(s) for s in prediction.scores],
        "top": [{"class_index": i, "class_name": n, "score": s} for i, n, s in prediction.top(top_classes)],
        "windows": [{"start_frame": a, "end_frame": b, "start_s": round(t0, 4), "end_s": round(t1, 4),
                     "scores": [float(s) for s in row]}
                    for (a, b), (t0, t1), row in zip(prediction.window_frames, prediction.window_times,
                                                     prediction.window_scores)],
    }
    atomic_write_json(json_path, data)

    png_path = json_path.with_suffix(".png")
    centres = [(t0 + t1) / 2 for t0, t1 in prediction.window_times]
    fig, ax = plt.subplots(figsize=(10, 4))
    for index, name, _ in prediction.top(top_classes):
        ax.plot(centres, prediction.window_scores[:, index], "-o", ms=3, label=name)
    ax.set(xlabel="time (s, window centre)", ylabel="score", ylim=(0, 1),
           title=f"{Path(prediction.path).name}: class scores over time")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper right", fontsize=8)
    try:
        with atomic_path(png_path) as tmp_png:
            fig.savefig(tmp_png, dpi=110, bbox_inches="tight")
    finally:
        plt.close(fig)
    return json_path, png_path
