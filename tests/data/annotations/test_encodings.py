"""Every list and annotation parser reads its file through one text reader (``fileio.read_text``): UTF-8, with or
without a byte-order mark; anything else is one ``DataError`` naming the file, line and byte offset.

The property tests feed random bytes, valid files in random encodings and random truncations of valid files to
every parser and assert that only ``DataError`` (or a result) comes out: never ``UnicodeDecodeError``,
``csv.Error``, ``IndexError`` or another traceback.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from assemblenet.config_schema import read_yaml
from assemblenet.data.annotations import (
    ClassList,
    is_kinetics_csv,
    read_charades_csv,
    read_class_list,
    read_frame_list,
    read_hmdb51_splits,
    read_kinetics_csv,
    read_moments_categories,
    read_moments_list,
    read_multi_moments_list,
    read_name_list,
    read_ssv2_labels,
    read_ssv2_split,
    read_ucf101_class_index,
    read_ucf101_split,
    read_video_list,
)
from assemblenet.errors import ConfigError, DataError

CLASSES = ClassList.from_names(["ApplyEyeMakeup", "café_dancing", "slide_right"])

# One valid file per parser (each with a non-ASCII character, so that re-encoding it matters).
PARSERS: dict[str, tuple[Callable[[Path], object], str]] = {
    "class_list": (read_class_list, "ApplyEyeMakeup\ncafé dancing\nslide_right\n"),
    "name_list": (read_name_list, "Cook.Cleandishes_p02_r00_v02_c03.mp4\nDrink_p03_r01_v01_c01_é.mp4\n"),
    "video_list": (read_video_list, "path,label\nv/a.mp4,café dancing\nv/b.mp4,slide_right\n"),
    "video_list_spaces": (read_video_list, "v/a.mp4 café\nv/b.mp4 slide_right\n"),
    "multi_label_list": (lambda p: read_video_list(p, multi_label=True), "path,labels\nv/a.mp4,café;x\n"),
    "kinetics_csv": (read_kinetics_csv, "label,youtube_id,time_start,time_end,split\n"
                                        "café dancing,abc,10,20,train\n\"slide right\",def,0.0,10.0,train\n"),
    "is_kinetics_csv": (is_kinetics_csv, "label,youtube_id,time_start,time_end,split\ncafé,abc,1,2,train\n"),
    "charades_csv": (read_charades_csv, "id,actions,length\n46GP8,\"c092 11.90 21.20;c147 0.00 12.60\",24.8\n"
                                        "NÉ1,,9.5\n"),
    "frame_list": (read_frame_list, "original_vido_id video_id frame_id path labels\n"
                                    "vé 0 0 vé/1.jpg \"1,2\"\nvé 0 1 vé/2.jpg \"\"\n"),
    "moments_categories": (read_moments_categories, "café+dancing,0\nslide_right,1\n"),
    "moments_list": (lambda p: read_moments_list(p, CLASSES), "slide_right/a.mp4,slide_right,3,0\n"
                                                               "x/é.mp4,café_dancing,2,1\n"),
    "multi_moments_list": (lambda p: read_multi_moments_list(p, 3), "a/é.mp4,0,2\nb/c.mp4,1\n"),
    "ssv2_labels": (read_ssv2_labels, '{"café dancing": "0", "Putting something on something": "1"}'),
    "ssv2_split": (lambda p: read_ssv2_split(p, ClassList.from_names(["café", "Putting something on something"])),
                   '[{"id": "1", "template": "Putting [something] on [something]"}, {"id": "2", "template": '
                   '"café"}]'),
    "ucf101_class_index": (read_ucf101_class_index, "1 ApplyEyeMakeup\n2 café\n"),
    "ucf101_split": (lambda p: read_ucf101_split(p, CLASSES), "ApplyEyeMakeup/v_A_g01_c01.avi 1\n"
                                                             "café_dancing/v_é.avi 2\n"),
    "hmdb51_split": (lambda p: read_hmdb51_splits(p.parent, 1), "vidé_1.avi 1 \nvid_2.avi 2 \n"),
}
HMDB_NAME = "brush_hair_test_split1.txt"


def _path(folder: Path, name: str) -> Path:
    return folder / (HMDB_NAME if name == "hmdb51_split" else f"{name}.txt")


def _parse(name: str, data: bytes) -> None:
    parser, _ = PARSERS[name]
    with tempfile.TemporaryDirectory() as folder:
        path = _path(Path(folder), name)
        path.write_bytes(data)
        try:
            parser(path)
        except DataError as exc:
            assert "\n" not in str(exc).strip(), f"a multi-line error: {exc}"


@pytest.mark.parametrize("name", sorted(PARSERS))
def test_each_valid_sample_parses_in_utf8_with_and_without_a_byte_order_mark(tmp_path: Path, name: str) -> None:
    parser, text = PARSERS[name]
    plain = _path(tmp_path, name)
    plain.write_bytes(text.encode("utf-8"))
    expected = parser(plain)
    plain.write_bytes(b"\xef\xbb\xbf" + text.encode("utf-8"))
    assert parser(plain) == expected


@pytest.mark.parametrize("name", sorted(PARSERS))
def test_latin1_is_refused_naming_file_line_and_byte_offset(tmp_path: Path, name: str) -> None:
    parser, text = PARSERS[name]
    path = _path(tmp_path, name)
    data = text.encode("latin-1")
    path.write_bytes(data)
    offset = next(i for i, byte in enumerate(data) if byte >= 0x80)
    line = data.count(b"\n", 0, offset) + 1
    with pytest.raises(DataError) as info:
        parser(path)
    message = str(info.value)
    assert message.startswith(f"{path}:{line}: byte offset {offset}: {data[offset:offset + 1]!r} is not UTF-8"), \
        message
    assert "iconv" in message


@pytest.mark.parametrize("encoding", ["utf-16", "utf-32"])
@pytest.mark.parametrize("name", ["class_list", "ssv2_labels", "kinetics_csv", "ucf101_split"])
def test_utf16_and_utf32_are_refused_by_their_byte_order_mark(tmp_path: Path, name: str, encoding: str) -> None:
    parser, text = PARSERS[name]
    path = _path(tmp_path, name)
    path.write_bytes(text.encode(encoding))  # Python writes the byte-order mark
    with pytest.raises(DataError, match=f"{encoding.upper()} text .*byte-order mark"):
        parser(path)


def test_utf16_without_a_mark_is_refused_by_its_nul_bytes(tmp_path: Path) -> None:
    path = tmp_path / "classes.txt"
    path.write_bytes("abc\ndef\n".encode("utf-16-le"))
    with pytest.raises(DataError, match=r"classes.txt:1: byte offset 1: a NUL byte"):
        read_class_list(path)


def test_config_files_share_the_reader_and_raise_config_error(tmp_path: Path) -> None:
    path = tmp_path / "train.yaml"
    path.write_bytes(b"seed: 1\nname: caf\xe9\n")
    with pytest.raises(ConfigError, match=r"train.yaml:2: byte offset 17: b'\\xe9' is not UTF-8"):
        read_yaml(path)


ENCODINGS = ["utf-8", "utf-8-sig", "latin-1", "cp1252", "utf-16", "utf-16-le", "utf-16-be", "utf-32", "cp437",
             "mac-roman", "shift_jis", "koi8-r"]
FUZZ = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(name=st.sampled_from(sorted(PARSERS)), data=st.binary(max_size=300))
def test_random_bytes_give_a_result_or_a_data_error(name: str, data: bytes) -> None:
    _parse(name, data)


@FUZZ
@given(name=st.sampled_from(sorted(PARSERS)), encoding=st.sampled_from(ENCODINGS))
def test_valid_files_in_any_encoding_give_a_result_or_a_data_error(name: str, encoding: str) -> None:
    _, text = PARSERS[name]
    _parse(name, text.encode(encoding, errors="replace"))


@FUZZ
@given(name=st.sampled_from(sorted(PARSERS)), cut=st.floats(0.0, 1.0),
       encoding=st.sampled_from(["utf-8", "utf-8-sig", "utf-16"]))
def test_truncated_files_give_a_result_or_a_data_error(name: str, cut: float, encoding: str) -> None:
    _, text = PARSERS[name]
    data = text.encode(encoding)
    _parse(name, data[: int(len(data) * cut)])  # may cut a multi-byte character in two


@FUZZ
@given(name=st.sampled_from(sorted(PARSERS)), position=st.floats(0.0, 1.0), junk=st.binary(min_size=1, max_size=8))
def test_valid_files_with_inserted_bytes_give_a_result_or_a_data_error(name: str, position: float,
                                                                      junk: bytes) -> None:
    _, text = PARSERS[name]
    data = text.encode("utf-8")
    at = int(len(data) * position)
    _parse(name, data[:at] + junk + data[at:])
