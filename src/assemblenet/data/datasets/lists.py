"""Datasets from video lists (Kinetics, Moments-in-Time, generic CSV) and from one folder per class."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from assemblenet.data.annotations import (
    ClassList,
    is_video_list,
    read_class_list,
    read_video_list,
    video_list_classes,
)
from assemblenet.data.datasets.base import VideoDataset, VideoItem, key_for, resolve_path
from assemblenet.data.decode import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS
from assemblenet.errors import DataError

logger = logging.getLogger(__name__)

DEFAULT_CLASS_FILE = "classes.txt"


def _class_list(classes: ClassList | str | os.PathLike | list[str] | tuple[str, ...] | None) -> ClassList | None:
    """A ``ClassList``, a list of names, a class file, or a video list (the train list: its sorted labels, the
    order a list without a class file gets, so that train and val indices agree)."""
    if classes is None or isinstance(classes, ClassList):
        return classes
    if isinstance(classes, (list, tuple)):
        return ClassList.from_names(classes)
    if is_video_list(classes):
        return video_list_classes(classes)
    return read_class_list(classes)


class VideoListDataset(VideoDataset):
    """Videos listed with labels in a CSV (``path,label``) or ``path label`` text file.

    Args:
        list_path: the list (see ``annotations.read_video_list`` for the accepted layouts).
        root: folder the listed paths are relative to (default: the list's folder).
        classes: a ``ClassList``, class file, or list of names fixing the label order. Default: a
            ``classes.txt`` beside the list; failing that, integer labels are used as indices and names
            are sorted alphabetically. Pass the same classes to the train and val datasets.
        multi_label: labels separated by ``label_sep`` in the label field; targets become multi-hot.
        **kwargs: ``VideoDataset`` options.
    """

    def __init__(self, list_path: str | os.PathLike, *, root: str | os.PathLike | None = None,
                 classes: ClassList | str | os.PathLike | list[str] | None = None, multi_label: bool = False,
                 label_sep: str = ";", **kwargs) -> None:
        list_path = Path(list_path)
        entries = read_video_list(list_path, multi_label=multi_label, label_sep=label_sep)
        root = Path(root) if root is not None else list_path.parent
        class_list = _class_list(classes)
        class_source = "the given classes"
        if class_list is not None and isinstance(classes, (str, os.PathLike)):
            class_source = str(classes)
        if class_list is None and (list_path.parent / DEFAULT_CLASS_FILE).is_file():
            class_list = read_class_list(list_path.parent / DEFAULT_CLASS_FILE)
            class_source = str(list_path.parent / DEFAULT_CLASS_FILE)
        all_labels = [label for entry in entries for label in entry.labels]
        if class_list is None:
            if all(label.isdigit() for label in all_labels):
                count = max(int(label) for label in all_labels) + 1
                class_list = ClassList.from_names(str(i) for i in range(count))
            else:
                class_list = ClassList.from_labels(all_labels)
                logger.info("%s: %d classes taken from the list in sorted order", list_path, len(class_list))
        items = []
        for entry in entries:
            if not entry.labels:
                raise DataError(f"{list_path}:{entry.line}: no label")
            try:
                labels = tuple(class_list.index_of(label) for label in entry.labels)
            except KeyError as exc:
                raise DataError(f"{list_path}:{entry.line}: unknown class {exc.args[0]!r} (not among the "
                                f"{len(class_list)} classes of {class_source})") from None
            path = resolve_path(root, entry.path)
            items.append(VideoItem(str(path), labels, Path(entry.path).stem, key_for(path, root)))
        super().__init__(items, classes=class_list, multi_label=multi_label, **kwargs)
        self.list_path = list_path
        self.root = root


class KineticsCsvDataset(VideoListDataset):
    """Kinetics (400/600/700) from its official CSV, or any single-label ``path,label`` list.

    The official CSV (``label,youtube_id,time_start,time_end,split[,is_cc]``; the test CSV has no label, its
    targets are -1) is recognised by its header. Its videos are found under ``root`` with ``path_template``
    (fields ``{label}``, ``{label_underscore}``, ``{youtube_id}``, ``{time_start}``, ``{time_end}``,
    ``{split}``), or, with ``"auto"``, the first of ``annotations.KINETICS_LAYOUTS`` that holds the probed videos
    (``{split}/{label}/{youtube_id}_{time_start:06d}_{time_end:06d}.mp4``, the flat CVDF layout, ...).
    ``classes`` may then also be the train CSV (its sorted labels), which the val set should be given.
    """

    def __init__(self, csv_path: str | os.PathLike, *, root: str | os.PathLike | None = None,
                 classes: ClassList | str | os.PathLike | list[str] | None = None,
                 path_template: str | None = "auto", **kwargs) -> None:
        from assemblenet.data.annotations import is_kinetics_csv
        from assemblenet.data.datasets.kinetics import kinetics_items

        csv_path = Path(csv_path)
        if csv_path.is_file() and is_kinetics_csv(csv_path):
            items, class_list, template = kinetics_items(csv_path, root=root, classes=classes,
                                                         path_template=path_template)
            VideoDataset.__init__(self, items, classes=class_list, multi_label=False, **kwargs)
            self.list_path = csv_path
            self.root = Path(root) if root is not None else csv_path.parent
            self.path_template: str | None = template
            return
        if path_template not in (None, "auto"):
            raise DataError(f"{csv_path}: path_template applies to the official Kinetics CSV (header "
                            "label,youtube_id,time_start,time_end,split); this list gives paths itself")
        super().__init__(csv_path, root=root, classes=classes, multi_label=False, **kwargs)
        self.path_template = None


def _is_frame_folder(path: Path) -> bool:
    return path.is_dir() and any(p.suffix.lower() in IMAGE_EXTENSIONS for p in path.iterdir())


class VideoFolderDataset(VideoDataset):
    """One sub-folder per class, each holding video files or frame folders (``root/<class>/<video>``).

    Args:
        root: the dataset folder.
        classes: fixes the label order (default: the sorted class folder names).
        **kwargs: ``VideoDataset`` options.
    """

    def __init__(self, root: str | os.PathLike, *,
                 classes: ClassList | str | os.PathLike | list[str] | None = None, **kwargs) -> None:
        root = Path(root)
        if not root.is_dir():
            raise DataError(f"{root}: dataset folder not found")
        class_dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
        class_list = _class_list(classes) or ClassList.from_names(p.name for p in class_dirs)
        items = []
        for class_dir in class_dirs:
            if class_dir.name not in class_list:
                raise DataError(f"{class_dir}: folder is not one of the {len(class_list)} classes")
            label = class_list.index_of(class_dir.name)
            for entry in sorted(class_dir.iterdir()):
                if entry.name.startswith("."):
                    continue
                if entry.suffix.lower() in VIDEO_EXTENSIONS or _is_frame_folder(entry):
                    items.append(VideoItem(str(entry), (label,), entry.stem, key_for(entry, root)))
        if not items:
            raise DataError(f"{root}: no videos found in class folders")
        super().__init__(items, classes=class_list, multi_label=False, **kwargs)
        self.root = root
