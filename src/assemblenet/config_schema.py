"""The one config layer of every config file: the engine's training config, the search config and the study
config.

A config family is a tree of dataclasses. This module reads its YAML (``yaml.safe_load``), applies dotted
overrides (``--set optim.lr=0.1``), checks every key against the dataclass field types and reports the first
problem as one line naming the file and the dotted key::

    configs/synthetic.yaml: key 'optim.lr': expected a number, got 'fast'
    configs/search/tiny.yaml: key 'search.tournament_sise': unknown key; did you mean 'tournament_size'?

Range checks that types cannot express stay with each family; they raise through :class:`Checker`, so their
messages have the same form (``FILE: key 'a.b': must be at least 1, got 0``).

Field annotations understood: ``bool``, ``int``, ``float`` (an integer is accepted; finite values only),
``str``, ``Any``, ``list``, ``dict``, ``Literal[...]``, unions such as ``X | None`` or ``int | Literal["auto"]``
(the first alternative that takes the value wins), ``list[X]`` and ``tuple[X, ...]`` (each item checked, an error
naming ``key[i]``), ``Mapping[str, X]``
and nested dataclasses. A section given as ``null`` takes its defaults.

This module sits below the packages that own configs (``engine``, ``search``) and imports none of them.
"""

from __future__ import annotations

import argparse
import collections.abc
import copy
import dataclasses
import difflib
import math
import os
import types
import typing
from pathlib import Path
from typing import Any, Iterable, Literal, Mapping, NoReturn, Union

import yaml

from assemblenet.errors import ConfigError
from assemblenet.fileio import read_text

Override = Union[str, tuple[str, Any]]


# ---------------------------------------------------------------------- errors
def key_error(source: str | os.PathLike | None, key: str, message: str) -> ConfigError:
    """``SOURCE: key 'a.b': message`` (without the ``SOURCE: `` part when no file is known)."""
    where = f"{source}: " if source else ""
    return ConfigError(f"{where}key '{key}': {message}")


class Checker:
    """Range checks of one config, all raising ``SOURCE: key 'a.b': message`` with the same wording.

    With ``config`` given (the parsed dataclass or its plain mapping), the checks below look the value up by
    its dotted key, e.g. ``check.at_least("data.batch_size", 1)``; a value of None (an optional key left unset)
    passes them."""

    def __init__(self, source: str | os.PathLike | None, config: Any = None) -> None:
        self.source = source
        self.config = config

    def fail(self, key: str, message: str) -> NoReturn:
        raise key_error(self.source, key, message)

    def need(self, condition: bool, key: str, message: str) -> None:
        if not condition:
            self.fail(key, f"{message}, got {self.value(key)!r}" if self.config is not None else message)

    def value(self, key: str) -> Any:
        """The value at a dotted key of ``config`` (``space.level_filters[2]`` indexes a list)."""
        value = self.config
        for part in key.split("."):
            name, *indices = part.replace("]", "").split("[")
            value = value[name] if isinstance(value, Mapping) else getattr(value, name)
            for index in indices:
                value = value[int(index)]
        return value

    def one_of(self, key: str, choices: Iterable[Any]) -> None:
        value, choices = self.value(key), list(choices)
        if value not in choices:
            self.fail(key, f"expected one of {choices}, got {value!r}")

    def at_least(self, key: str, low: float) -> None:
        value = self.value(key)
        if value is not None and value < low:
            self.fail(key, f"must be at least {low}, got {value!r}")

    def positive(self, key: str) -> None:
        value = self.value(key)
        if value is not None and not value > 0:
            self.fail(key, f"must be > 0, got {value!r}")

    def within(self, key: str, low: float, high: float, *, low_open: bool = False, high_open: bool = False) -> None:
        """``low <= value <= high``, each end open (excluded) on request; the message writes the interval."""
        value = self.value(key)
        if value is None:
            return
        above = low < value if low_open else low <= value
        below = value < high if high_open else value <= high
        if not (above and below):
            interval = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
            self.fail(key, f"must be in {interval}, got {value!r}")


# ---------------------------------------------------------------------- reading
# The one rule for relative paths in every config file (training, search and study configs; base:, data paths,
# class lists, annotation files, output folders, weights, graph files, other configs), said in error messages.
PATH_RULE = "relative paths in a config are relative to the working directory"

def read_yaml(path: str | os.PathLike, *, what: str = "config file", base_key: str | None = None,
              _seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """The mapping a YAML config file holds (``{}`` when empty), with one-line errors naming the file.

    With ``base_key``, the file may name a base file under that key whose values it overrides, recursively;
    the key itself is removed from the result. Like every relative path in a config (:data:`PATH_RULE`), the
    base path is relative to the working directory."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{what} not found: {path}")
    if path.resolve() in _seen:
        raise key_error(path, base_key or "base", "the chain of base files loops back on itself")
    text = read_text(path, what=what, error=ConfigError)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {str(exc).strip().splitlines()[0]}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of keys at the top level, got {type(data).__name__}")
    if base_key is not None and base_key in data:
        base = data.pop(base_key)
        if not isinstance(base, str):
            raise key_error(path, base_key, f"expected a file path, got {base!r}")
        base_path = Path(base)
        if not base_path.is_file():
            raise key_error(path, base_key, f"base file not found: {base} ({PATH_RULE}: {Path.cwd()})")
        data = deep_merge(read_yaml(base_path, what=what, base_key=base_key, _seen=_seen + (path.resolve(),)), data)
    return data


def deep_merge(base: Mapping[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``top``'s values on top; mappings are merged key by key, anything else is replaced."""
    merged = copy.deepcopy(dict(base))
    for key, value in top.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


# ---------------------------------------------------------------------- overrides
def parse_override(item: str) -> tuple[str, Any]:
    """``"optim.lr=0.1"`` -> ``("optim.lr", 0.1)``. The value is parsed as YAML (``null``, ``[rgb, flow]``,
    ``{a: 1}``); text that is not YAML stays a string."""
    if "=" not in item:
        raise ConfigError(f"override {item!r}: expected KEY=VALUE with a dotted key, e.g. optim.lr=0.1")
    key, text = item.split("=", 1)
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise ConfigError(f"override {item!r}: the key is empty or has an empty part")
    try:
        value = yaml.safe_load(text) if text.strip() else ""
    except yaml.YAMLError:
        value = text
    return key, value


def apply_overrides(raw: Mapping[str, Any], overrides: Iterable[Override]) -> dict[str, Any]:
    """A copy of ``raw`` with dotted keys set (``"a.b=value"`` strings or ``(key, value)`` pairs). Missing
    sections are created; unknown keys are left for :func:`parse_dataclass` to report."""
    result: dict[str, Any] = copy.deepcopy(dict(raw))
    for item in overrides:
        key, value = parse_override(item) if isinstance(item, str) else item
        node = result
        parts = key.split(".")
        for depth, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                raise key_error("override", key, f"'{'.'.join(parts[:depth + 1])}' is not a section")
            node = child
        node[parts[-1]] = value
    return result


def read_config(source: str | os.PathLike | Mapping[str, Any] | None, overrides: Iterable[Override] = (), *,
                what: str = "config file", base_key: str | None = None,
                name_from_file: bool = False) -> tuple[dict[str, Any], str]:
    """The raw mapping of a config (a YAML path or a mapping) with ``overrides`` applied, and the name that
    errors should give (the path, or ``config`` for a mapping). With ``name_from_file``, a file without a
    ``name`` key is named after its stem."""
    if source is None:
        return apply_overrides({}, overrides), "config"
    if isinstance(source, Mapping):
        return apply_overrides(source, overrides), "config"
    raw = apply_overrides(read_yaml(source, what=what, base_key=base_key), overrides)
    if name_from_file:
        raw.setdefault("name", Path(source).stem)
    return raw, str(source)


# ---------------------------------------------------------------------- parsing
def parse_dataclass(cls: type, data: Any, *, source: str | os.PathLike | None, prefix: str = "",
                    skip: Iterable[str] = (), hint: str = "") -> Any:
    """Build ``cls`` from a mapping, checking every key against the declared field types.

    ``prefix`` is the dotted path of this section (``"optim."``); fields in ``skip`` are not config keys;
    ``hint`` is added to the unknown-key message (e.g. which variant a section is)."""
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        if prefix:
            raise key_error(source, prefix.rstrip("."), f"expected a mapping, got {data!r}")
        raise ConfigError(f"{source or 'config'}: expected a mapping at the top level, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    skip = set(skip)
    names = [f.name for f in dataclasses.fields(cls) if f.name not in skip]
    values: dict[str, Any] = {}
    for key, value in data.items():
        if not isinstance(key, str) or key not in names:
            raise key_error(source, f"{prefix}{key}", _unknown_key_message(str(key), names) + hint)
        values[key] = convert(value, hints[key], key=f"{prefix}{key}", source=source)
    return cls(**values)


def _unknown_key_message(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1)
    if close:
        return f"unknown key; did you mean '{close[0]}'?"
    return f"unknown key; expected one of {known}"


def convert(value: Any, hint: Any, *, key: str, source: str | os.PathLike | None) -> Any:
    """``value`` checked against the annotation ``hint`` (ints become floats where a float is declared, lists
    become tuples where a tuple is declared)."""

    def wrong(expected: str) -> NoReturn:
        raise key_error(source, key, f"expected {expected}, got {value!r}")

    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return parse_dataclass(hint, value, source=source, prefix=f"{key}.")
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        for alternative in (a for a in args if a is not type(None)):  # the first that takes the value
            try:
                return convert(value, alternative, key=key, source=source)
            except ConfigError:
                pass
        wrong(describe_type(hint))
    if origin is Literal:
        if value in args and not isinstance(value, bool):
            return value
        wrong(f"one of {list(args)}")
    if hint is Any:
        return value
    if hint is bool:
        if isinstance(value, bool):
            return value
    elif hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif hint is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            return float(value)
    elif hint is str:
        if isinstance(value, str):
            return value
    elif hint is list or origin in (list, tuple):
        if isinstance(value, (list, tuple)):
            if hint is list:  # any items
                return list(value)
            items = [convert(v, args[0], key=f"{key}[{i}]", source=source) for i, v in enumerate(value)]
            return items if origin is list else tuple(items)
    elif hint is dict or origin in (collections.abc.Mapping, dict):
        if isinstance(value, Mapping):
            if not args:
                return dict(value)
            out = {}
            for k, v in value.items():
                if not isinstance(k, str):
                    raise key_error(source, f"{key}.{k}", "expected a string key")
                out[k] = convert(v, args[1], key=f"{key}.{k}", source=source)
            return out
    else:
        raise TypeError(f"unsupported config type {hint!r} for {key}")  # a bug in the schema, not user input
    wrong(describe_type(hint))


def describe_type(hint: Any) -> str:
    """What a value of annotation ``hint`` looks like, in words (``an integer``, ``a list``)."""
    origin = typing.get_origin(hint)
    if origin is Literal:
        return f"one of {list(typing.get_args(hint))}"
    if origin in (Union, types.UnionType):
        return " or ".join("null" if a is type(None) else describe_type(a) for a in typing.get_args(hint))
    if hint is list or origin in (list, tuple):
        return "a list"
    if hint is dict or origin in (collections.abc.Mapping, dict):
        return "a mapping"
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string", Any: "any value"}.get(
        hint, getattr(hint, "__name__", str(hint)))


# ---------------------------------------------------------------------- writing out
def to_plain(obj: Any) -> Any:
    """Dataclasses as dicts, tuples as lists, recursively: what ``yaml.safe_dump`` and ``json.dumps`` take."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, Mapping):
        return {k: to_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_plain(v) for v in obj]
    return obj


def dump_yaml(data: Mapping[str, Any]) -> str:
    """A config mapping as YAML, keys in schema order, short lists on one line."""
    return yaml.safe_dump(to_plain(data), sort_keys=False, default_flow_style=None, width=120)


def describe(cls: type, *, skip: Iterable[str] = ()) -> str:
    """Every key of a schema with its type and default, one per line (``optim.lr: a number = 1.6``)."""
    lines: list[str] = []
    skip = set(skip)

    def walk(section: type, prefix: str) -> None:
        hints = typing.get_type_hints(section)
        instance = section()
        for f in dataclasses.fields(section):
            if f.name in skip:
                continue
            tp = hints[f.name]
            if isinstance(tp, type) and dataclasses.is_dataclass(tp):
                walk(tp, f"{prefix}{f.name}.")
            else:
                lines.append(f"{prefix}{f.name}: {describe_type(tp)} = {getattr(instance, f.name)!r}")

    walk(cls, "")
    return "\n".join(lines)


# ---------------------------------------------------------------------- command line
def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """``--set KEY=VALUE`` (repeatable, into ``args.overrides``) and ``--print-config``, for every command that
    reads a config."""
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value by its dotted key, e.g. --set optim.lr=0.1; the value is "
                             "read as YAML (repeatable)")
    parser.add_argument("--print-config", action="store_true",
                        help="print the resolved config (file, defaults and --set) as YAML and exit")
