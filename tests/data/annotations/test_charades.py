"""Annotation parsers: Charades CSV, class lists, PySlowFast frame lists, Kinetics-style lists.

Every malformed row must produce a DataError that names the file and the line.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from assemblenet.data.annotations import (
    ClassList,
    parse_smarthome_name,
    read_charades_csv,
    read_class_list,
    read_frame_list,
    read_name_list,
    read_video_list,
)
from assemblenet.errors import DataError

CHARADES_HEADER = "id,subject,scene,quality,relevance,verified,script,objects,descriptions,actions,length"
GOOD_CHARADES_ROWS = [
    '46GP8,HR43,Kitchen,6,7,Yes,"A person cooks, then eats.",food;dish,"A person, in a kitchen.",'
    '"c092 11.90 21.20;c147 0.00 12.60",24.83',
    "N11GT,0KZ7,Stairs,6,7,Yes,Walking up.,stairs,Climbs.,c098 8.60 14.20,11.12",
    "ZZZZZ,0KZ7,Hall,6,7,Yes,Nothing happens.,,Idle.,,9.50",
]


def write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


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


def test_class_files_give_stable_indices(tmp_path):
    charades = read_class_list(write(tmp_path / "Charades_v1_classes.txt",
                                     ["c000 Holding some clothes", "c001 Putting clothes somewhere", ""]))
    assert charades.ids == ("c000", "c001") and charades.names[1] == "Putting clothes somewhere"
    assert charades.index_of("c001") == 1 and charades.index_of("Holding some clothes") == 0
    plain = read_class_list(write(tmp_path / "classes.txt", ["zumba", "abseiling", "arm wrestling"]))
    assert plain.names == ("zumba", "abseiling", "arm wrestling") and plain.index_of("arm wrestling") == 2
    # Labels without a class file: sorted, so any order of appearance yields the same indices.
    assert ClassList.from_labels(["b", "a", "c", "a"]) == ClassList.from_labels(["c", "b", "a"])
    with pytest.raises(DataError, match=r"dup.txt:3: duplicate class 'a' \(first on line 1\)"):
        read_class_list(write(tmp_path / "dup.txt", ["a", "b", "a"]))


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


def test_smarthome_names_and_lists(tmp_path):
    clip = parse_smarthome_name("Cook.Cleandishes_p02_r00_v02_c03.mp4")
    assert (clip.activity, clip.subject, clip.camera) == ("Cook.Cleandishes", 2, 3)
    with pytest.raises(DataError, match="not a Toyota Smarthome clip name"):
        parse_smarthome_name("holiday.mp4")
    assert read_name_list(write(tmp_path / "split.txt", [" a.mp4", "", "b.mp4 "])) == ["a.mp4", "b.mp4"]


def test_the_csv_parsers_share_one_row_reader(tmp_path):
    """Charades, Kinetics and Moments CSVs read rows alike: blank rows are skipped, a row is named by the
    line it starts on (a quoted field may span lines), and a row the csv module cannot read is a DataError
    naming that line, not a csv.Error."""
    from assemblenet.data.annotations import read_kinetics_csv, read_moments_list

    kinetics = write(tmp_path / "k.csv", ["label,youtube_id,time_start,time_end,split", "",
                                          '"tying\nknot",abc,1,11,train', "abseiling,def,x,12,train"])
    with pytest.raises(DataError, match=rf"{kinetics}:5: time_start/time_end must be numbers"):
        read_kinetics_csv(kinetics)
    good = write(tmp_path / "good.csv", ["label,youtube_id,time_start,time_end,split", "",
                                         '"tying\nknot",abc,1,11,train', "abseiling,def,2,12,train"])
    assert [(row.label, row.line) for row in read_kinetics_csv(good)] == [("tying\nknot", 3), ("abseiling", 5)]
    huge = "x" * 200_000  # over the csv module's field limit
    for path, read in [(write(tmp_path / "c.csv", [CHARADES_HEADER, GOOD_CHARADES_ROWS[1], f"A,{huge}"]),
                        read_charades_csv),
                       (write(tmp_path / "k2.csv", ["label,youtube_id,time_start,time_end,split", f"a,{huge},1,2,t"]),
                        read_kinetics_csv),
                       (write(tmp_path / "m.csv", ["a/1.mp4,a,3,0", f"a/2.mp4,{huge}"]),
                        lambda p: read_moments_list(p, ClassList.from_names(["a"])))]:
        with pytest.raises(DataError, match=rf"{path}:[23]: field larger than field limit"):
            read(path)
