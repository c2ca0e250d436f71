"""``build_dataset(name, **kwargs)``: one entry point for every dataset, including the synthetic benchmark."""

from __future__ import annotations

import inspect
import json
import os
import re
from pathlib import Path
from typing import Callable

from assemblenet.data.datasets.base import VideoDataset, with_hflip_default
from assemblenet.data.datasets.charades import CharadesDataset, CharadesFrameListDataset
from assemblenet.data.datasets.lists import KineticsCsvDataset, VideoFolderDataset, VideoListDataset
from assemblenet.data.datasets.moments import MomentsInTimeDataset, MultiMomentsDataset
from assemblenet.data.datasets.smarthome import SmarthomeDataset
from assemblenet.data.datasets.ssv2 import SomethingSomethingV2Dataset
from assemblenet.data.datasets.ucf_hmdb import HMDB51Dataset, UCF101Dataset
from assemblenet.errors import ConfigError, DataError, UnknownNameError


def synthetic_dataset(root: str | os.PathLike, *, split: str = "train", annotation: str = "kinetics",
                      **kwargs) -> VideoDataset:
    """A folder written by ``make_synthetic`` / ``make_compositional`` (``assemblenet make-synthetic``).

    Args:
        root: the folder written by ``make-synthetic``.
        split: ``train``, ``val`` or ``test``. Only ``--task compositional`` folders have a ``test`` split.
        annotation: ``kinetics`` (single-label, single-action videos) or ``charades`` (multi-label, all
            videos, time intervals; ``target_type`` may be ``video``, ``clip`` or ``frame``; the default
            benchmark only).
        **kwargs: ``VideoDataset`` options. Defaults differ from real datasets: ``views.hflip_prob`` left at
            ``None`` is 0 because a flip turns ``slide_right`` into ``slide_left``.

    Raises ``DataError`` on a compositional folder whose videos the clips would not show whole
    (:func:`assemblenet.data.compositional.check_views_show_whole_video`).
    """
    from assemblenet.data import compositional, synthetic

    root = Path(root)
    files_by_split = {"train": synthetic.TRAIN_FILES, "val": synthetic.VAL_FILES, "test": synthetic.TEST_FILES}
    if split not in files_by_split:
        raise ConfigError(f"synthetic split must be 'train', 'val' or 'test', got {split!r}")
    if annotation not in ("kinetics", "charades"):
        raise ConfigError(f"synthetic annotation must be 'kinetics' or 'charades', got {annotation!r}")
    if not (root / synthetic.MANIFEST_FILE).is_file():
        raise DataError(f"{root}: not a synthetic benchmark folder ({synthetic.MANIFEST_FILE} missing); "
                        "create one with `assemblenet make-synthetic`")
    name = files_by_split[split].get(annotation)
    if name is None or not (root / name).is_file():
        wanted = root / (name or f"{annotation}_{split}.csv")
        raise DataError(f"{wanted}: not found; the {split!r} split with {annotation!r} annotations needs this file. "
                        "The default `make-synthetic` benchmark writes train/val splits in kinetics and charades "
                        "format; `make-synthetic --task compositional` writes train/val/test in kinetics format only")
    with_hflip_default(kwargs, 0.0)
    if annotation == "kinetics":
        dataset = KineticsCsvDataset(root / name, root=root, classes=root / synthetic.CLASSES_FILE, **kwargs)
        manifest = json.loads((root / synthetic.MANIFEST_FILE).read_text(encoding="utf-8"))
        if manifest.get("task") == compositional.TASK:  # every view must show the events that define the class
            compositional.check_views_show_whole_video(manifest, dataset.sampling, mode=dataset.mode,
                                                       num_clips=dataset.num_clips, source=root)
        return dataset
    return CharadesDataset(root / name, root=root / synthetic.VIDEO_DIR,
                           classes=root / synthetic.CHARADES_CLASSES_FILE, **kwargs)


def _kinetics(**kwargs) -> VideoDataset:
    if "csv_path" in kwargs:
        return KineticsCsvDataset(**kwargs)
    if "root" in kwargs and "split" in kwargs:  # the official CSV of the split, by its download's name
        from assemblenet.data.datasets.kinetics import find_kinetics_csv

        split = kwargs.pop("split")
        csv_path = find_kinetics_csv(kwargs["root"], split)
        if split != "train" and kwargs.get("classes") is None:  # the train CSV's classes, so indices agree
            try:
                kwargs["classes"] = find_kinetics_csv(kwargs["root"], "train")
            except DataError:
                pass  # no train CSV beside it: classes.txt or this CSV's own labels, as with csv_path
        return KineticsCsvDataset(csv_path, **kwargs)
    if "root" in kwargs:
        return VideoFolderDataset(**kwargs)
    raise ConfigError("kinetics needs csv_path= (the official CSV or a path,label list) or root= (one folder "
                      "per class)")


def _moments(**kwargs) -> VideoDataset:
    if "csv_path" in kwargs:  # a converted path,label list
        return KineticsCsvDataset(**kwargs)
    if "root" in kwargs:
        return MomentsInTimeDataset(**kwargs)
    raise ConfigError("moments needs root= (the unpacked Moments_in_Time folder) and split=")


DATASETS: dict[str, Callable[..., VideoDataset]] = {
    "charades": CharadesDataset,
    "charades_frames": CharadesFrameListDataset,
    "kinetics": _kinetics,
    "mit": _moments,
    "moments": _moments,
    "multi_moments": MultiMomentsDataset,
    "mmit": MultiMomentsDataset,
    "ucf101": UCF101Dataset,
    "hmdb51": HMDB51Dataset,
    "ssv2": SomethingSomethingV2Dataset,
    "something_something_v2": SomethingSomethingV2Dataset,
    "list": VideoListDataset,
    "folder": VideoFolderDataset,
    "smarthome": SmarthomeDataset,
    "synthetic": synthetic_dataset,
}


class DatasetArgumentError(ConfigError):
    """A dataset argument that cannot be used (null where a value is needed, or not an argument at all).
    ``argument`` names it, so that the engine can name the config key (``data.train.csv_path``)."""

    def __init__(self, dataset: str, argument: str, detail: str) -> None:
        self.dataset, self.argument, self.detail = dataset, argument, detail
        super().__init__(f"dataset {dataset!r}: argument {argument!r}: {detail}")


# The classes a dispatching factory may hand its arguments to (every one passes the rest to VideoDataset).
_TARGETS: dict[Callable[..., VideoDataset], tuple[Callable[..., object], ...]] = {
    _kinetics: (KineticsCsvDataset, VideoFolderDataset),
    _moments: (KineticsCsvDataset, MomentsInTimeDataset),
}


def _refuse_null_arguments(name: str, factory: Callable[..., VideoDataset], kwargs: dict) -> None:
    """A ``null`` argument (``--set data.train.csv_path=null``) is an error naming it unless the parameter
    takes None (its default is None, or None is in its type)."""
    targets = (*_TARGETS.get(factory, (factory,)), VideoDataset)
    for key, value in kwargs.items():
        if value is not None:
            continue
        params = [p for p in (inspect.signature(t).parameters.get(key) for t in targets) if p is not None]
        if params and not any(p.default is None or "None" in str(p.annotation) for p in params):
            annotation = params[0].annotation
            expected = "a path" if "PathLike" in str(annotation) else f"a value ({annotation})"
            raise DatasetArgumentError(name, key, f"null, expected {expected}")


def build_dataset(name: str, **kwargs) -> VideoDataset:
    """Build a dataset by name: ``ucf101``, ``hmdb51``, ``kinetics`` (``csv_path=`` an official CSV or a
    ``path,label`` list; ``root=`` and ``split=`` to find the split's official CSV by its download's name; or a
    class-folder ``root=``), ``mit``/``moments`` (``root=`` the official folder, or
    ``csv_path=`` a converted list), ``multi_moments``/``mmit``, ``ssv2``/``something_something_v2``,
    ``charades``, ``charades_frames``, ``list`` (generic CSV, ``multi_label=`` optional), ``folder``,
    ``smarthome`` or ``synthetic``. Keyword arguments go to the dataset class."""
    try:
        factory = DATASETS[name.lower()]
    except KeyError:
        raise UnknownNameError("dataset", name, sorted(DATASETS), key="data.dataset") from None
    _refuse_null_arguments(name, factory, kwargs)
    try:
        return factory(**kwargs)
    except TypeError as exc:
        unexpected = re.search(r"unexpected keyword argument '(\w+)'", str(exc))
        if unexpected:
            raise DatasetArgumentError(name, unexpected.group(1), "not an argument of this dataset") from None
        raise ConfigError(f"dataset {name!r}: {exc}") from exc
