"""Kinetics-style video lists, with and without header, and the official Kinetics CSV (data/annotations/lists.py).

Every malformed row must produce a DataError that names the file and the line.
"""

from __future__ import annotations

import pytest

from assemblenet.data.annotations import read_video_list
from assemblenet.errors import DataError
from tests.data.annotations.conftest import write


def test_kinetics_csv_with_and_without_header(tmp_path):
    with_header = read_video_list(write(tmp_path / "a.csv", ["path,label", "abseiling/x.mp4,abseiling",
                                                              "arm wrestling/y.mp4,arm wrestling"]))
    assert [(e.path, e.labels, e.line) for e in with_header] == [
        ("abseiling/x.mp4", ("abseiling",), 2), ("arm wrestling/y.mp4", ("arm wrestling",), 3)]
    # Moments-in-Time style: no header and extra vote columns.
    mit = read_video_list(write(tmp_path / "mit.csv", ["adjusting/flickr-1.mp4,adjusting,3,0"]))
    assert mit[0].labels == ("adjusting",)
    spaced = read_video_list(write(tmp_path / "list.txt", ["some/video 1.mp4 5", "other.mp4 0"]))
    assert [(e.path, e.labels) for e in spaced] == [("some/video 1.mp4", ("5",)), ("other.mp4", ("0",))]
    multi = read_video_list(write(tmp_path / "multi.csv", ["path,labels", "v.mp4,run;jump"]), multi_label=True)
    assert multi[0].labels == ("run", "jump")


def test_official_kinetics_csv(tmp_path):
    path = write(tmp_path / "kinetics_val.csv", ["label,youtube_id,time_start,time_end,split",
                                                  "abseiling,0wR5jVB-WPk,417,427,val"])
    assert read_video_list(path)[0].path == "abseiling/0wR5jVB-WPk_000417_000427.mp4"


@pytest.mark.parametrize("bad_line, message", [
    ("lonely.mp4", "expected 'path,label', got 1 field(s)"),
    ("video.mp4,", "empty label"),
    (",abseiling", "empty path"),
])
def test_kinetics_malformed_rows_name_the_line(tmp_path, bad_line, message):
    path = write(tmp_path / "train.csv", ["path,label", "a.mp4,abseiling", bad_line])
    with pytest.raises(DataError) as info:
        read_video_list(path)
    assert f"{path}:3:" in str(info.value) and message in str(info.value)
