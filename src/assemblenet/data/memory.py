"""Clips held in memory: a dataset with no decoding at all, for throughput measurements (what the trainer costs
around the model) and for GPU tests that must not depend on a video decoder."""

from __future__ import annotations

import torch


class InMemoryClips(torch.utils.data.Dataset):
    """``num_clips`` uint8 RGB clips ``[3, T, H, W]`` (as a video loader yields them) with single labels.

    Each class has its own mean colour plus noise, so a model can learn the labels quickly (a loss that
    falls is a meaningful check). Items are ``(clip, target, meta)`` like every dataset of this package;
    ``clip`` is a view into one preallocated tensor, so reading an item costs nothing.
    """

    multi_label = False

    def __init__(self, *, num_clips: int, num_classes: int, frames: int, size: int, seed: int = 0) -> None:
        if num_clips < 1 or num_classes < 1:
            raise ValueError(f"need at least one clip and one class, got {num_clips} clips, {num_classes} classes")
        generator = torch.Generator().manual_seed(seed)
        self.num_classes = num_classes
        self.class_names = [f"class_{k}" for k in range(num_classes)]
        self.targets = torch.arange(num_clips) % num_classes
        colours = torch.rand(num_classes, 3, 1, 1, 1, generator=generator) * 160 + 48
        noise = torch.randn(num_clips, 3, frames, size, size, generator=generator) * 24
        self.clips = (colours[self.targets] + noise).clamp_(0, 255).to(torch.uint8)

    @property
    def num_videos(self) -> int:
        return len(self.targets)

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int):
        return self.clips[index], self.targets[index], {"video_id": f"clip_{index:05d}", "video_index": index,
                                                        "path": ""}
