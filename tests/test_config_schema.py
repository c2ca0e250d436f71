"""The config schema's typed containers: every item of ``list[X]`` and ``tuple[X, ...]`` is checked."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pytest

from assemblenet.config_schema import describe_type, parse_dataclass
from assemblenet.errors import ConfigError


@dataclass
class _Section:
    names: list[str] = field(default_factory=list)
    sizes: tuple[int, ...] = (1,)
    modes: list[Literal["a", "b"]] = field(default_factory=list)
    anything: list = field(default_factory=list)


def test_typed_list_items_are_converted_and_a_bad_item_is_named_by_its_index():
    parsed = parse_dataclass(_Section, {"names": ("x", "y"), "sizes": [2, 3], "modes": ["b"], "anything": [1, "z"]},
                             source="c.yaml")
    assert parsed.names == ["x", "y"] and parsed.sizes == (2, 3) and parsed.modes == ["b"]
    assert parsed.anything == [1, "z"]  # a bare list keeps any items
    with pytest.raises(ConfigError, match=r"c.yaml: key 'names\[1\]': expected a string, got 2"):
        parse_dataclass(_Section, {"names": ["x", 2]}, source="c.yaml")
    with pytest.raises(ConfigError, match=r"key 'modes\[0\]': expected one of \['a', 'b'\], got 'c'"):
        parse_dataclass(_Section, {"modes": ["c"]}, source="c.yaml")
    with pytest.raises(ConfigError, match=r"key 'names': expected a list, got 'x'"):
        parse_dataclass(_Section, {"names": "x"}, source="c.yaml")
    assert describe_type(list[str]) == describe_type(tuple[int, ...]) == "a list"


def test_data_modalities_items_must_be_strings_and_known_names():
    from assemblenet.engine.config import load_config

    assert load_config({"data": {"modalities": ("rgb", "flow")}}).data.modalities == ["rgb", "flow"]
    with pytest.raises(ConfigError, match=r"key 'data.modalities\[1\]': expected a string, got 1"):
        load_config({"data": {"modalities": ["rgb", 1]}})
    with pytest.raises(ConfigError, match=r"key 'data.modalities': must be a non-empty list of 'rgb'/'flow', "
                                          r"got \['rgb', 'depth'\]"):
        load_config({"data": {"modalities": ["rgb", "depth"]}})
