"""Toyota Smarthome (trimmed clips): cross-subject and cross-view protocols."""

from __future__ import annotations

import os
from pathlib import Path

from assemblenet.data.annotations import ClassList, parse_smarthome_name, read_class_list, read_name_list
from assemblenet.data.datasets.base import VideoDataset, VideoItem, key_for
from assemblenet.data.decode import VIDEO_EXTENSIONS
from assemblenet.errors import ConfigError, DataError

# Das et al., "Toyota Smarthome: Real-World Activities of Daily Living", ICCV 2019.
CROSS_SUBJECT_TRAIN_SUBJECTS = frozenset({3, 4, 6, 7, 9, 12, 13, 15, 17, 19, 25})
CROSS_VIEW_CAMERAS = {  # protocol -> split -> cameras
    "CV1": {"train": {1}, "val": {6}, "test": {2}},
    "CV2": {"train": {1, 3, 4, 6, 7}, "val": {5}, "test": {2}},
}
PROTOCOLS = ("CS", "CV1", "CV2")


def _in_split(clip, protocol: str, split: str) -> bool:
    if protocol == "CS":
        train = clip.subject in CROSS_SUBJECT_TRAIN_SUBJECTS
        return train if split == "train" else not train
    cameras = CROSS_VIEW_CAMERAS[protocol]
    wanted = cameras["test"] if split == "test" else cameras["train"] | cameras["val"] if split == "trainval" \
        else cameras[split]
    return clip.camera in wanted


class SmarthomeDataset(VideoDataset):
    """Toyota Smarthome clips (``Activity_pNN_rNN_vNN_cNN.mp4``), single-label.

    Args:
        root: the folder of clips (searched recursively).
        split: ``train`` or ``test`` (cross-view protocols also have ``val`` and ``trainval``).
        protocol: ``CS`` (cross-subject), ``CV1`` or ``CV2`` (cross-view), used when no ``split_file`` is
            given: subjects/cameras follow the paper (CS trains on subjects 3, 4, 6, 7, 9, 12, 13, 15, 17, 19,
            25; CV1 trains on camera 1, CV2 on cameras 1, 3, 4, 6, 7; both test on camera 2).
        split_file: an official split list (one clip name per line), which takes precedence.
        classes: a ``ClassList``/class file. Default: the sorted activities of the clips in ``root`` that
            the protocol uses (all clips for CS; the train and test cameras for CV), so train and test
            splits of one protocol share label indices. Pass the official class list to be sure.
        **kwargs: ``VideoDataset`` options.
    """

    def __init__(self, root: str | os.PathLike, *, split: str = "train", protocol: str = "CS",
                 split_file: str | os.PathLike | None = None,
                 classes: ClassList | str | os.PathLike | None = None, **kwargs) -> None:
        if protocol not in PROTOCOLS:
            raise ConfigError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
        splits = ("train", "test") if protocol == "CS" else ("train", "val", "trainval", "test")
        if split_file is None and split not in splits:
            raise ConfigError(f"split must be one of {splits} for {protocol}, got {split!r}")
        root = Path(root)
        if not root.is_dir():
            raise DataError(f"{root}: Smarthome clip folder not found")
        files = {p.name: p for p in root.rglob("*") if p.suffix.lower() in VIDEO_EXTENSIONS}
        clips = {}
        for name in files:
            try:
                clips[name] = parse_smarthome_name(name)
            except DataError:
                continue  # unrelated files in the folder
        if split_file is not None:
            wanted = read_name_list(split_file)
            chosen = []
            for name in wanted:
                file_name = name if Path(name).suffix else name + ".mp4"
                clip = clips.get(Path(file_name).name) or parse_smarthome_name(file_name)
                chosen.append((root / file_name if Path(file_name).name not in files
                               else files[Path(file_name).name], clip))
        else:
            chosen = [(files[name], clip) for name, clip in sorted(clips.items()) if _in_split(clip, protocol, split)]
        if not chosen:
            raise DataError(f"{root}: no Smarthome clips for protocol {protocol}, split {split}")
        if isinstance(classes, ClassList):
            class_list = classes
        elif classes is not None:
            class_list = read_class_list(classes)
        else:
            used = [c for c in clips.values() if protocol == "CS"
                    or c.camera in CROSS_VIEW_CAMERAS[protocol]["train"] | CROSS_VIEW_CAMERAS[protocol]["test"]]
            class_list = ClassList.from_labels([c.activity for c in used] or [c.activity for _, c in chosen])
        items = []
        for path, clip in chosen:
            if clip.activity not in class_list:
                raise DataError(f"{path}: activity {clip.activity!r} is not in the class list")
            items.append(VideoItem(str(path), (class_list.index_of(clip.activity),), Path(clip.name).stem,
                                   key_for(path, root)))
        super().__init__(items, classes=class_list, multi_label=False, **kwargs)
        self.protocol = protocol
        self.split = split
