"""Toyota Smarthome: cross-subject and cross-view protocols, split files."""

from __future__ import annotations

import shutil

import pytest

from assemblenet.data import ClipSampling, SmarthomeDataset
from assemblenet.errors import ConfigError


def test_smarthome_protocols(tmp_path, synthetic_root):
    source = sorted((synthetic_root / "videos").glob("*.mp4"))[0]
    names = ["Cook_p03_r00_v01_c01.mp4", "Drink.Frombottle_p05_r00_v02_c02.mp4", "Eat_p04_r01_v01_c02.mp4",
             "Walk_p08_r00_v03_c01.mp4"]
    (tmp_path / "mp4").mkdir()
    for name in names:
        shutil.copy(source, tmp_path / "mp4" / name)
    train = SmarthomeDataset(tmp_path, split="train", protocol="CS", sampling=ClipSampling(num_frames=4))
    test = SmarthomeDataset(tmp_path, split="test", protocol="CS", sampling=ClipSampling(num_frames=4))
    assert {i.video_id for i in train.items} == {"Cook_p03_r00_v01_c01", "Eat_p04_r01_v01_c02"}
    assert train.class_names == test.class_names == ["Cook", "Drink.Frombottle", "Eat", "Walk"]
    cv_test = SmarthomeDataset(tmp_path, split="test", protocol="CV1", sampling=ClipSampling(num_frames=4))
    assert {i.video_id for i in cv_test.items} == {"Drink.Frombottle_p05_r00_v02_c02", "Eat_p04_r01_v01_c02"}
    (tmp_path / "train_CS.txt").write_text("Walk_p08_r00_v03_c01\n")
    listed = SmarthomeDataset(tmp_path, split_file=tmp_path / "train_CS.txt", sampling=ClipSampling(num_frames=4))
    assert len(listed) == 1 and int(listed[0][1]) == 3
    with pytest.raises(ConfigError, match="protocol"):
        SmarthomeDataset(tmp_path, protocol="XX")
