"""Charades CSVs and PySlowFast frame lists (data/annotations/charades.py).

Every malformed row must produce a DataError that names the file and the line.
"""

from __future__ import annotations

import pytest

from assemblenet.data.annotations import ClassList, read_charades_csv, read_frame_list
from assemblenet.errors import DataError
from tests.data.annotations.conftest import CHARADES_HEADER, GOOD_CHARADES_ROWS, write


def test_charades_csv_parses_official_columns(tmp_path):
    records = read_charades_csv(write(tmp_path / "Charades_v1_train.csv", [CHARADES_HEADER, *GOOD_CHARADES_ROWS]))
    assert [r.video_id for r in records] == ["46GP8", "N11GT", "ZZZZZ"]
    first = records[0]
    assert [(a.class_id, a.start, a.end) for a in first.actions] == [("c092", 11.9, 21.2), ("c147", 0.0, 12.6)]
    assert first.length == pytest.approx(24.83)
    assert first.fields["scene"] == "Kitchen" and first.fields["script"] == "A person cooks, then eats."
    assert records[2].actions == () and records[2].line == 4


@pytest.mark.parametrize("bad_row, message", [
    ("BAD01,S,K,6,7,Yes,s,o,d,c092 11.90,5.0", "malformed action 'c092 11.90'"),
    ("BAD02,S,K,6,7,Yes,s,o,d,x092 1.0 2.0,5.0", "malformed action 'x092 1.0 2.0'"),
    ("BAD03,S,K,6,7,Yes,s,o,d,c092 5.0 2.0,5.0", "invalid interval"),
    ("BAD04,S,K,6,7,Yes,s,o,d,c092 1.0 2.0,long", "length 'long' is not a number"),
    ("BAD05,S,K,6,7,Yes,s,o,d,c092 1.0 2.0", "10 fields, the header has 11"),
    (",S,K,6,7,Yes,s,o,d,c092 1.0 2.0,5.0", "empty video id"),
    ("46GP8,S,K,6,7,Yes,s,o,d,c092 1.0 2.0,5.0", "duplicate video id '46GP8' (first on line 2)"),
])
def test_charades_malformed_rows_name_the_line(tmp_path, bad_row, message):
    path = write(tmp_path / "train.csv", [CHARADES_HEADER, *GOOD_CHARADES_ROWS, bad_row])
    with pytest.raises(DataError) as info:
        read_charades_csv(path)
    assert f"{path}:5:" in str(info.value) and message in str(info.value)


def test_charades_unknown_class_and_missing_columns(tmp_path):
    classes = ClassList(("Holding some clothes", "Walking"), ("c092", "c147"))
    path = write(tmp_path / "train.csv", [CHARADES_HEADER, *GOOD_CHARADES_ROWS])
    with pytest.raises(DataError, match=r"train.csv:3: unknown action class 'c098'"):
        read_charades_csv(path, classes)
    headless = write(tmp_path / "noactions.csv", ["id,subject,length", "A,B,1.0"])
    with pytest.raises(DataError, match=r"noactions.csv:1: header lacks column\(s\) \['actions'\]"):
        read_charades_csv(headless)
    with pytest.raises(DataError, match="annotation file not found"):
        read_charades_csv(tmp_path / "absent.csv")


FRAME_LIST_HEADER = "original_vido_id video_id frame_id path labels"


def test_frame_list_groups_frames_and_labels(tmp_path):
    path = write(tmp_path / "train.csv", [
        FRAME_LIST_HEADER,
        'AAAAA 0 1 AAAAA/AAAAA-000002.jpg "3,7"',
        'AAAAA 0 0 AAAAA/AAAAA-000001.jpg ""',
        "BBBBB 1 0 BBBBB/BBBBB-000001.jpg 12",
        "BBBBB 1 1 BBBBB/BBBBB-000002.jpg",
    ])
    videos = read_frame_list(path)
    assert [v.video_id for v in videos] == ["AAAAA", "BBBBB"]
    assert videos[0].frame_paths == ("AAAAA/AAAAA-000001.jpg", "AAAAA/AAAAA-000002.jpg")
    assert videos[0].frame_labels == ((), (3, 7))
    assert videos[1].frame_labels == ((12,), ())


@pytest.mark.parametrize("bad_line, message", [
    ("CCCCC 2 x CCCCC/1.jpg 1", "frame_id 'x' is not an integer"),
    ("CCCCC 2 0 CCCCC/1.jpg 1,b", "labels '1,b' must be comma-separated integers"),
    ("CCCCC 2 0 CCCCC/1.jpg 1 extra", "6 fields, expected 5"),
])
def test_frame_list_malformed_lines(tmp_path, bad_line, message):
    path = write(tmp_path / "val.csv", [FRAME_LIST_HEADER, "AAAAA 0 0 AAAAA/1.jpg 1", bad_line])
    with pytest.raises(DataError) as info:
        read_frame_list(path)
    assert f"{path}:3:" in str(info.value) and message in str(info.value)
    with pytest.raises(DataError, match=r"bad_header.csv:1: expected the header"):
        read_frame_list(write(tmp_path / "bad_header.csv", ["id path", "a b"]))
