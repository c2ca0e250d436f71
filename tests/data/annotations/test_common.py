"""Class lists and the one CSV row reader the parsers share (data/annotations/common.py).

Every malformed row must produce a DataError that names the file and the line.
"""

from __future__ import annotations

import pytest

from assemblenet.data.annotations import ClassList, read_charades_csv, read_class_list
from assemblenet.errors import DataError
from tests.data.annotations.conftest import CHARADES_HEADER, GOOD_CHARADES_ROWS, write


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
