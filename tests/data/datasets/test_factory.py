"""build_dataset: the synthetic benchmark through the factory, and its errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from assemblenet.data import ClipSampling, KineticsCsvDataset, build_dataset
from assemblenet.errors import ConfigError, DataError
from tests.data.datasets.conftest import manifest


def test_synthetic_kinetics_dataset(synthetic_root):
    dataset = build_dataset("synthetic", root=synthetic_root, split="train",
                            sampling=ClipSampling(num_frames=8, stride=2))
    assert isinstance(dataset, KineticsCsvDataset)
    assert dataset.num_classes == 6 and not dataset.multi_label
    assert dataset.class_names[:2] == ["slide_right", "slide_left"]
    labels = {v["id"]: v["actions"][0]["class"] for v in manifest(synthetic_root)["videos"]}
    torch.manual_seed(0)
    for index in range(len(dataset)):
        clip, target, meta = dataset[index]
        assert clip.shape == (3, 8, 32, 32) and clip.dtype == torch.uint8  # floats on the device
        assert clip.max() > clip.min() and clip.float().std() > 5  # real content, 0-255
        assert target.dtype == torch.int64 and dataset.class_names[int(target)] == labels[meta["video_id"]]
        assert np.all(np.diff(meta["frame_indices"]) == 2)
    assert dataset.num_skipped == 0


def test_factory_errors():
    with pytest.raises(ConfigError, match="unknown dataset 'imagenet'"):
        build_dataset("imagenet")
    with pytest.raises(ConfigError, match="csv_path"):
        build_dataset("kinetics")
    with pytest.raises(DataError, match="not a synthetic benchmark folder"):
        build_dataset("synthetic", root="/nonexistent")
