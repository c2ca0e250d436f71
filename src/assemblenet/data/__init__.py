"""Video data: decoding (PyAV, frame folders), clip sampling, transforms, datasets, optical flow, the
synthetic benchmark and the compositional synthetic task. See docs/data.md.

This package never imports ``assemblenet.models``, ``engine``, ``search`` or ``cli``.
"""

from assemblenet.data.annotations import (
    ClassList,
    read_charades_csv,
    read_class_list,
    read_frame_list,
    read_video_list,
)
from assemblenet.data.check import CheckResult, check_video, check_videos
from assemblenet.data.compositional import COMPOSITIONAL_CLASSES, make_compositional
from assemblenet.data.datasets import (
    DATASETS,
    CharadesDataset,
    CharadesFrameListDataset,
    HMDB51Dataset,
    KineticsCsvDataset,
    MomentsInTimeDataset,
    MultiMomentsDataset,
    SmarthomeDataset,
    SomethingSomethingV2Dataset,
    UCF101Dataset,
    VideoDataset,
    VideoFolderDataset,
    VideoItem,
    VideoListDataset,
    average_views,
    build_dataset,
    collate,
    synthetic_dataset,
)
from assemblenet.data.decode import FrameFolderReader, FrameSource, VideoReader, open_video
from assemblenet.data.flow import FlowStore, compute_flow, precompute_flow
from assemblenet.data.sampling import ClipSampling, ClipViews, clip_indices, random_clip, uniform_clips
from assemblenet.data.synthetic import make_synthetic, translating_texture_clip

__all__ = [
    "COMPOSITIONAL_CLASSES",
    "DATASETS",
    "CharadesDataset",
    "CharadesFrameListDataset",
    "CheckResult",
    "ClassList",
    "ClipSampling",
    "ClipViews",
    "FlowStore",
    "FrameFolderReader",
    "FrameSource",
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
    "VideoReader",
    "average_views",
    "build_dataset",
    "check_video",
    "check_videos",
    "clip_indices",
    "collate",
    "compute_flow",
    "make_compositional",
    "make_synthetic",
    "open_video",
    "precompute_flow",
    "random_clip",
    "read_charades_csv",
    "read_class_list",
    "read_frame_list",
    "read_video_list",
    "synthetic_dataset",
    "translating_texture_clip",
    "uniform_clips",
]
