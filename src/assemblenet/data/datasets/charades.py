"""Charades: official CSVs with time-stamped actions, and PySlowFast frame lists."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from assemblenet.data.annotations import ClassList, read_charades_csv, read_class_list, read_frame_list
from assemblenet.data.datasets.base import VideoDataset, VideoItem, key_for, resolve_path
from assemblenet.errors import DataError

logger = logging.getLogger(__name__)

CHARADES_CLASS_FILES = ("Charades_v1_classes.txt", "charades_classes.txt")
CHARADES_NUM_CLASSES = 157


def _load_classes(classes: ClassList | str | os.PathLike | None, near: Path) -> ClassList | None:
    if isinstance(classes, ClassList):
        return classes
    if classes is not None:
        return read_class_list(classes)
    for name in CHARADES_CLASS_FILES:
        candidate = near / name
        if candidate.is_file():
            return read_class_list(candidate)
    return None


class CharadesDataset(VideoDataset):
    """Charades from ``Charades_v1_train.csv`` / ``Charades_v1_test.csv`` (multi-label).

    Args:
        csv_path: the Charades CSV.
        root: folder of the videos (``{id}.mp4``) or of frame folders (``{id}/``).
        classes: a ``ClassList`` or class file (``c000 Holding some clothes`` lines). Default: a
            ``Charades_v1_classes.txt`` or ``charades_classes.txt`` beside the CSV; failing that, ids
            ``c000 .. cN`` up to the largest id in the CSV (name = id).
        video_template: file name pattern under ``root``; default ``{id}.mp4``, or the folder ``{id}`` when
            only that exists.
        target_type: ``video`` (every action of the video), ``clip`` (actions overlapping the clip) or
            ``frame`` ([T, K], actions active at each sampled frame).
        frame_fps: rate of frame folders (the official RGB frames are 24 fps).
        **kwargs: ``VideoDataset`` options (sampling, views, target_type, ...).
    """

    def __init__(self, csv_path: str | os.PathLike, *, root: str | os.PathLike,
                 classes: ClassList | str | os.PathLike | None = None, video_template: str | None = None,
                 target_type: str = "video", frame_fps: float = 24.0, **kwargs) -> None:
        csv_path = Path(csv_path)
        class_list = _load_classes(classes, csv_path.parent)
        records = read_charades_csv(csv_path, class_list)
        if class_list is None:
            codes = [int(a.class_id[1:]) for r in records for a in r.actions]
            count = max(codes) + 1 if codes else CHARADES_NUM_CLASSES
            ids = tuple(f"c{i:03d}" for i in range(count))
            class_list = ClassList(ids, ids)
            logger.warning("%s: no class file found, assuming classes c000..c%03d; pass classes= to be sure",
                           csv_path, count - 1)
        root = Path(root)
        items = []
        for record in records:
            if video_template is not None:
                path = resolve_path(root, video_template.format(id=record.video_id))
            else:
                path = root / f"{record.video_id}.mp4"
                if not path.exists() and (root / record.video_id).is_dir():
                    path = root / record.video_id
            intervals = tuple((class_list.index_of(a.class_id), a.start, a.end) for a in record.actions)
            labels = tuple(sorted({c for c, _, _ in intervals}))
            items.append(VideoItem(str(path), labels, record.video_id, key_for(path, root), intervals))
        super().__init__(items, classes=class_list, multi_label=True, target_type=target_type,
                         frame_fps=frame_fps, **kwargs)
        self.csv_path = csv_path


class CharadesFrameListDataset(VideoDataset):
    """Charades from PySlowFast frame lists (``original_vido_id video_id frame_id path labels``).

    Args:
        list_path: the frame list (PySlowFast's ``frame_lists/train.csv`` or ``val.csv``).
        root: folder the frame paths are relative to.
        classes: a ``ClassList`` or class file; default: names ``"0" .. "N-1"`` with N = ``num_classes``.
        num_classes: used without ``classes`` (default 157, or more if the list has larger labels).
        target_type: ``clip`` (default, PySlowFast's choice: labels of every frame in the clip's span),
            ``frame`` ([T, K]) or ``video``.
        frame_fps: the frames' rate (24 for the official Charades frames).
    """

    def __init__(self, list_path: str | os.PathLike, *, root: str | os.PathLike,
                 classes: ClassList | str | os.PathLike | None = None, num_classes: int | None = None,
                 target_type: str = "clip", frame_fps: float = 24.0, **kwargs) -> None:
        list_path = Path(list_path)
        videos = read_frame_list(list_path)
        largest = max((label for v in videos for labels in v.frame_labels for label in labels), default=-1)
        class_list = _load_classes(classes, list_path.parent) if classes is not None else None
        if class_list is None:
            count = max(num_classes or CHARADES_NUM_CLASSES, largest + 1)
            names = tuple(str(i) for i in range(count))
            class_list = ClassList(names, names)
        if largest >= len(class_list):
            raise DataError(f"{list_path}: label {largest} is outside the {len(class_list)} classes")
        root = Path(root)
        items = []
        for video in videos:
            paths = tuple(str(resolve_path(root, p)) for p in video.frame_paths)
            labels = tuple(sorted(set().union(*video.frame_labels)))
            folder = Path(paths[0]).parent
            items.append(VideoItem(str(folder), labels, video.video_id, key_for(folder, root),
                                   frame_paths=paths, frame_labels=video.frame_labels))
        super().__init__(items, classes=class_list, multi_label=True, target_type=target_type,
                         frame_fps=frame_fps, **kwargs)
        self.list_path = list_path
