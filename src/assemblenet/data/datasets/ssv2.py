"""Something-Something v2, read from its official JSON lists as they ship."""

from __future__ import annotations

import os
from pathlib import Path

from assemblenet.data.annotations import read_ssv2_labels, read_ssv2_split
from assemblenet.data.datasets.base import VideoDataset, VideoItem, key_for, with_hflip_default
from assemblenet.errors import ConfigError, DataError

_SPLIT_FILES = {"train": "train", "val": "validation", "validation": "validation", "test": "test"}
_VIDEO_FOLDERS = ("20bn-something-something-v2", "videos")


def _annotation(root: Path, name: str) -> Path:
    """``something-something-v2-<name>.json`` (20BN release) or ``<name>.json`` (the later ``labels/`` zip), in
    ``root``, ``root/labels`` or ``root/annotations``."""
    tried = []
    for folder in (root, root / "labels", root / "annotations"):
        for file in (f"something-something-v2-{name}.json", f"{name}.json"):
            tried.append(folder / file)
            if tried[-1].is_file():
                return tried[-1]
    raise DataError(f"{root}: SSv2 {name} list not found (looked for something-something-v2-{name}.json and "
                    f"{name}.json in it, labels/ and annotations/)")


class SomethingSomethingV2Dataset(VideoDataset):
    """Something-Something v2 (174 classes)::

        root/something-something-v2-labels.json       {"Approaching something with your camera": "0", ...}
        root/something-something-v2-train.json        [{"id": "78687", "label": "holding potato next to ...",
        root/something-something-v2-validation.json     "template": "Holding [something] next to [something]",
        root/something-something-v2-test.json           "placeholders": [...]}, ...]   (test: ids only)
        root/20bn-something-something-v2/<id>.webm    VP9

    The class is the template without brackets. The lists may also be ``labels/{labels,train,validation,
    test}.json``; the videos may be in ``root/videos/``.

    Args:
        root: the dataset folder.
        split: ``train``, ``val``/``validation`` or ``test`` (unlabelled: targets are -1).
        video_dir: override the video folder. video_ext: ``webm`` (as shipped) or e.g. ``mp4`` after transcoding.
        **kwargs: ``VideoDataset`` options. ``views.hflip_prob`` defaults to 0 here because a flip swaps classes
            such as "Pushing something from left to right" and "... from right to left".
    """

    def __init__(self, root: str | os.PathLike, *, split: str = "train", video_dir: str | os.PathLike | None = None,
                 video_ext: str = "webm", **kwargs) -> None:
        if split not in _SPLIT_FILES:
            raise ConfigError(f"SSv2 split must be 'train', 'val' or 'test', got {split!r}")
        root = Path(root)
        classes = read_ssv2_labels(_annotation(root, "labels"))
        entries = read_ssv2_split(_annotation(root, _SPLIT_FILES[split]), classes, labelled=split != "test")
        if video_dir:
            videos = Path(video_dir)
        else:
            videos = next((root / f for f in _VIDEO_FOLDERS if (root / f).is_dir()), root)
        suffix = "." + video_ext.lstrip(".")
        items = []
        for entry in entries:
            path = videos / (entry.path + suffix)
            items.append(VideoItem(str(path), entry.labels, entry.path, key_for(path, videos)))
        super().__init__(items, classes=classes, multi_label=False, **with_hflip_default(kwargs, 0.0))
        self.root, self.split = root, split
