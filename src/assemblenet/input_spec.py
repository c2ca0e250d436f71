"""What a model reads, typed once: the clip (its frames, taken every ``stride`` source frames or at
``target_fps``), the crop size and the modalities, with their defaults.

The experiment config (``data.num_frames``, ``data.stride``, ``data.crop_size``, ``data.modalities``), the clip
sampling of the datasets, the weights sidecar's ``input`` entry, ``predict`` and ``export`` all take their
defaults from :data:`DEFAULT_INPUT`. One default differs on purpose: a dataset built directly, without
``sampling=`` (``build_dataset("synthetic", root=...)``), cuts :data:`DATASET_CLIP_FRAMES` frames, a cheaper clip
for browsing and tests; the engine always passes the config's ``data.num_frames``.

A top-level ("base") module, so that ``data`` and ``engine`` both read it (tests/test_layering.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping


@dataclass(frozen=True)
class InputSpec:
    """A model's input: ``num_frames`` frames (T) taken every ``stride`` source frames, or at ``target_fps`` in
    seconds of video time when set; an H = W = ``crop_size`` crop; the ``modalities`` it reads (``rgb``,
    ``flow``)."""

    num_frames: int = 32  # the paper's clip for Charades and Kinetics
    stride: int = 1
    target_fps: float | None = None
    crop_size: int = 224
    modalities: tuple[str, ...] = ("rgb",)

    def sidecar_entry(self) -> dict[str, Any]:
        """The weights sidecar's ``input`` entry (``assemblenet-weights/1``): frames, crop size, modalities. The
        format records no stride, so a model read back from it is predicted with the default stride."""
        return {"num_frames": self.num_frames, "crop_size": self.crop_size, "modalities": list(self.modalities)}

    @classmethod
    def from_sidecar(cls, entry: Mapping[str, Any], data: Mapping[str, Any]) -> InputSpec:
        """The input a trained model records: a sidecar's ``input`` entry, else its training config's ``data``
        section, else the default; only what the sidecar records (frames, crop size, modalities)."""
        return cls(num_frames=int(entry.get("num_frames", data.get("num_frames", cls.num_frames))),
                   crop_size=int(entry.get("crop_size", data.get("crop_size", cls.crop_size))),
                   modalities=tuple(entry.get("modalities", data.get("modalities", cls.modalities))))


DEFAULT_INPUT = InputSpec()
# Frames of a clip a dataset cuts when built without ``sampling=`` (ClipSampling's default): half the model's.
DATASET_CLIP_FRAMES = 16
