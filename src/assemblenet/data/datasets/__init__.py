"""Map-style video datasets returning ``(clip [3, T, H, W], target, meta)``."""

from assemblenet.data.datasets.base import VideoDataset, VideoItem, average_views, collate
from assemblenet.data.datasets.charades import CharadesDataset, CharadesFrameListDataset
from assemblenet.data.datasets.factory import DATASETS, build_dataset, synthetic_dataset
from assemblenet.data.datasets.lists import (
    KineticsCsvDataset,
    MomentsInTimeDataset,
    VideoFolderDataset,
    VideoListDataset,
)
from assemblenet.data.datasets.smarthome import SmarthomeDataset

__all__ = [
    "DATASETS",
    "CharadesDataset",
    "CharadesFrameListDataset",
    "KineticsCsvDataset",
    "MomentsInTimeDataset",
    "SmarthomeDataset",
    "VideoDataset",
    "VideoFolderDataset",
    "VideoItem",
    "VideoListDataset",
    "average_views",
    "build_dataset",
    "collate",
    "synthetic_dataset",
]
