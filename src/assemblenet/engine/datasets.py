"""Datasets from a config: the keyword arguments ``data.<split>`` gives ``build_dataset``, the split as listed
(what ``check-dataset`` checks), the split the trainer, the evaluation and the search's proxy train on, the
splits of a training run with their pre-flight check, and the loaders over them."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Mapping

import torch

from assemblenet.engine.config import Config, fixed_num_classes
from assemblenet.engine.distributed import SeededDataset, all_gather_objects
from assemblenet.errors import ConfigError, DataError


def dataset_kwargs(cfg: Config, split: str) -> dict[str, Any]:
    """Keyword arguments for ``build_dataset`` for ``split`` ('train' or 'val'). A split's section may set any
    field of ``ClipSampling`` or ``ClipViews`` (``num_frames``, ``scale``, ...) as a key of its own; they are
    gathered into ``sampling=`` and ``views=``."""
    from assemblenet.data.sampling import ClipSampling, ClipViews

    data = cfg.data
    kwargs = dict(data.train if split == "train" else data.val)
    sampling = {f.name: kwargs.pop(f.name) for f in fields(ClipSampling) if f.name in kwargs}
    views = {f.name: kwargs.pop(f.name) for f in fields(ClipViews) if f.name in kwargs}
    sampling.setdefault("num_frames", data.num_frames if split == "train" or cfg.eval.num_frames is None
                        else cfg.eval.num_frames)
    sampling.setdefault("stride", data.stride)
    views.setdefault("crop_size", data.crop_size)
    kwargs.setdefault("modalities", tuple(data.modalities))
    if data.object_root is not None:
        kwargs.setdefault("object_root", data.object_root)
    if kwargs.get("object_root") is not None:
        kwargs.setdefault("num_object_classes", cfg.model.num_object_classes)
    if data.decode_short_side is not None:
        kwargs.setdefault("decode_short_side", data.decode_short_side)
    if split == "train":
        views.setdefault("mode", "train")
        if data.clips_per_video != 1:
            kwargs.setdefault("clips_per_video", data.clips_per_video)
    else:
        views.setdefault("mode", "test")
        views.setdefault("num_clips", cfg.eval.num_clips)
        views.setdefault("num_crops", cfg.eval.num_crops)
    kwargs["sampling"] = ClipSampling(**sampling)
    kwargs["views"] = ClipViews(**views)
    return kwargs


def split_dataset(cfg: Config, split: str) -> Any:
    """The dataset ``data.<split>`` describes, as listed (``check-dataset`` and :func:`build_split` share it); an
    unusable argument is one ``ConfigError`` naming its key (``data.train.csv_path``)."""
    from assemblenet.data import build_dataset
    from assemblenet.data.datasets.factory import DatasetArgumentError

    try:
        return build_dataset(cfg.data.dataset, **dataset_kwargs(cfg, split))
    except DatasetArgumentError as exc:
        raise ConfigError(f"key 'data.{split}.{exc.argument}': {exc.detail} (dataset {exc.dataset!r})") from None


def build_split(cfg: Config, split: str) -> Any:
    """The dataset of ``split`` ('train' or 'val') ready to train or evaluate on: labelled, cut to
    ``data.max_videos``, and scanned with ``data.scan``."""
    section = cfg.data.train if split == "train" else cfg.data.val
    if not section:
        raise ConfigError(f"key 'data.{split}': no dataset arguments given (e.g. root/csv_path)")
    dataset = split_dataset(cfg, split)
    unlabelled = [item.video_id for item in getattr(dataset, "items", ()) if not item.labels]
    if unlabelled and not getattr(dataset, "multi_label", False):  # its target would be -1 (a test list's)
        raise DataError(f"key 'data.{split}': {len(unlabelled)} of {len(dataset.items)} videos have no label "
                        f"(first: {unlabelled[0]}); train and val need labelled lists")
    if cfg.data.max_videos is not None:
        dataset.keep_videos(cfg.data.max_videos)
    if cfg.data.scan:
        dataset.scan(progress=False)
    return dataset


@dataclass
class TrainingData:
    """The splits a training run reads, and what its training split says about the task."""

    train: Any
    val: Any | None
    multi_label: bool
    num_classes: int
    class_names: list[str]


def training_data(cfg: Config, *, train_dataset: Any = None, val_dataset: Any = None,
                  progress: bool = False) -> TrainingData:
    """The training run's splits: ``train_dataset``/``val_dataset`` when given, else built from ``data`` and
    checked before any step (:func:`preflight_splits`; datasets a caller hands in, the search's, are the caller's
    to check). A ``model.num_classes`` other than the training set's is an error."""
    train = train_dataset if train_dataset is not None else build_split(cfg, "train")
    val = val_dataset
    if val_dataset is None and cfg.data.val:  # read and check every list before the first step
        val = build_split(cfg, "val")
    preflight_splits(cfg, {"train": train if train_dataset is None else None,
                           "val": val if val_dataset is None else None}, progress=progress)
    num_classes = int(train.num_classes)
    fixed = fixed_num_classes(cfg)
    if fixed is not None and fixed != num_classes:
        raise ConfigError(f"key 'model.num_classes': {fixed}, but the training set has {num_classes} "
                          "classes (model.num_classes: auto takes the training set's count)")
    return TrainingData(train=train, val=val, multi_label=bool(getattr(train, "multi_label", False)),
                        num_classes=num_classes, class_names=list(getattr(train, "class_names", []) or []))


def preflight_splits(cfg: Config, built: Mapping[str, Any], *, progress: bool) -> None:
    """check-dataset's check of the splits in ``built`` (``data.preflight``; ``None`` entries are skipped),
    before any step: a split that would fail the run stops it here; missing and unreadable videos are skipped
    and counted."""
    from assemblenet.data.check import preflight

    mode = "exists" if cfg.data.scan and cfg.data.preflight == "decode" else cfg.data.preflight
    preflight({name: dataset for name, dataset in built.items() if dataset is not None}, mode=mode,
              workers=max(1, cfg.data.num_workers), progress=progress)


def clip_loader(dataset: Any, sampler: torch.utils.data.Sampler[tuple[int, int]], *, batch_size: int, num_workers: int,
                pin_memory: bool, prefetch_factor: int | None = None,
                persistent_workers: bool = False) -> torch.utils.data.DataLoader[Any]:
    """A loader of whole batches of ``dataset``'s clips in ``sampler``'s order, each item's augmentation seeded
    by its position (:class:`~assemblenet.engine.distributed.SeededDataset`)."""
    from assemblenet.data import collate

    return torch.utils.data.DataLoader(SeededDataset(dataset), batch_size=batch_size, sampler=sampler,
                                       num_workers=num_workers, collate_fn=collate, drop_last=True,
                                       pin_memory=pin_memory, prefetch_factor=prefetch_factor,
                                       persistent_workers=persistent_workers)


def gather_skipped(local: Mapping[str, Mapping[str, str]]) -> dict[str, dict[str, str]]:
    """Per split, the videos every process skipped (each skips on its own shard): path -> reason, this process's
    sorted by path first."""
    skipped = {split: dict(sorted(videos.items())) for split, videos in local.items()}
    for shard in all_gather_objects(skipped):
        for split, videos in shard.items():
            skipped.setdefault(split, {}).update(videos)
    return skipped
