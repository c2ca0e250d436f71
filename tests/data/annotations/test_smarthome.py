"""Toyota Smarthome clip names and split lists (data/annotations/smarthome.py)."""

from __future__ import annotations

import pytest

from assemblenet.data.annotations import parse_smarthome_name, read_name_list
from assemblenet.errors import DataError
from tests.data.annotations.conftest import write


def test_smarthome_names_and_lists(tmp_path):
    clip = parse_smarthome_name("Cook.Cleandishes_p02_r00_v02_c03.mp4")
    assert (clip.activity, clip.subject, clip.camera) == ("Cook.Cleandishes", 2, 3)
    with pytest.raises(DataError, match="not a Toyota Smarthome clip name"):
        parse_smarthome_name("holiday.mp4")
    assert read_name_list(write(tmp_path / "split.txt", [" a.mp4", "", "b.mp4 "])) == ["a.mp4", "b.mp4"]
