"""Map-style video datasets returning ``(clip [3, T, H, W], target, meta)``."""

from assemblenet.data.datasets.base import VideoDataset, VideoItem, average_views, collate
from assemblenet.data.datasets.charades import CharadesDataset, CharadesFrameListDataset
from assemblenet.data.datasets.factory import DATASETS, build_dataset, synthetic_dataset
from assemblenet.data.datasets.lists import (
    KineticsCsvDataset,
    VideoFolderDataset,
    VideoListDataset,
)
from assemblenet.data.datasets.moments import MomentsInTimeDataset, MultiMomentsDataset
from assemblenet.data.datasets.smarthome import SmarthomeDataset
from assemblenet.data.datasets.ssv2 import SomethingSomethingV2Dataset
from assemblenet.data.datasets.ucf_hmdb import HMDB51Dataset, UCF101Dataset

__all__ = [
    "DATASETS",
    "CharadesDataset",
    "CharadesFrameListDataset",
    "HMDB51Dataset",
    "KineticsCsvDataset",
    "MomentsInTimeDataset",
    "MultiMomentsDataset",
    "SmarthomeDataset",
    "SomethingSomethingV2Dataset",
    "UCF101Dataset",
    "VideoDataset",
    "VideoFolderDataset",
    "VideoItem",
    "VideoListDataset",
    "average_views",
    "build_dataset",
    "collate",
    "synthetic_dataset",
]
