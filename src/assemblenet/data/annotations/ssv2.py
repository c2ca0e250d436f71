"""Something-Something v2: the labels JSON and the train/validation/test JSON lists."""

from __future__ import annotations

import os
from pathlib import Path

from assemblenet.data.annotations.common import ClassList, ListedVideo, _open_text, annotation_text, find_class
from assemblenet.errors import DataError


def _read_json(path: Path):
    import json

    text = annotation_text(path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}:{exc.lineno}: invalid JSON ({exc.msg})") from None
    except RecursionError:
        raise DataError(f"{path}: invalid JSON (nested too deeply)") from None


def ssv2_class_name(template: str) -> str:
    """The class of an SSv2 template: ``Putting [something] on [something]`` -> ``Putting something on something``."""
    return " ".join(template.replace("[", "").replace("]", "").split())


def read_ssv2_labels(path: str | os.PathLike) -> ClassList:
    """``something-something-v2-labels.json``: ``{"Approaching something with your camera": "0", ...}`` (ids are
    strings in the release, 0..173)."""
    path = _open_text(path)
    data = _read_json(path)
    if not isinstance(data, dict) or not data:
        raise DataError(f"{path}: expected a JSON object mapping class names to ids")
    by_index: dict[int, str] = {}
    for name, value in data.items():
        try:
            index = int(value)
        except (TypeError, ValueError):
            raise DataError(f"{path}: class {name!r} has id {value!r}, expected an integer") from None
        if index in by_index:
            raise DataError(f"{path}: classes {by_index[index]!r} and {name!r} share id {index}")
        by_index[index] = name
    if sorted(by_index) != list(range(len(by_index))):
        missing = sorted(set(range(len(by_index))) - set(by_index))
        raise DataError(f"{path}: class ids must be 0..{len(by_index) - 1}; missing {missing[:5]}")
    return ClassList.from_names(by_index[i] for i in range(len(by_index)))


def read_ssv2_split(path: str | os.PathLike, classes: ClassList | None, *,
                    labelled: bool = False) -> list[ListedVideo]:
    """``something-something-v2-{train,validation}.json`` (``id``, ``label``, ``template``, ``placeholders``; the
    class is the template without brackets) or ``-test.json`` (``id`` only: unlabelled). Paths are ``<id>``;
    the caller adds the extension. With ``labelled`` (train and validation), an entry without its
    ``template`` is an error naming it, rather than a video of target -1."""
    path = _open_text(path)
    data = _read_json(path)
    if not isinstance(data, list) or not data:
        raise DataError(f"{path}: expected a non-empty JSON list of videos")
    lookup = {ssv2_class_name(name).lower(): i for i, name in enumerate(classes.names)} if classes else {}
    entries = []
    for number, entry in enumerate(data, 1):
        where = f"{path}: entry {number}"
        if not isinstance(entry, dict) or "id" not in entry:
            raise DataError(f"{where}: expected an object with an 'id'")
        video_id = str(entry["id"]).strip()
        if not video_id:
            raise DataError(f"{where}: empty id")
        where = f"{where} (id {video_id})"
        template = entry.get("template")
        if template is None:
            if labelled:
                raise DataError(f"{where}: no 'template' (its class); every entry of a labelled split needs one")
            entries.append(ListedVideo(video_id, (), where))
            continue
        if classes is None:
            raise DataError(f"{where}: labelled entry but no labels JSON given")
        name = ssv2_class_name(str(template))
        index = find_class(classes, name)
        if index is None:
            index = lookup.get(name.lower())
        if index is None:
            raise DataError(f"{where}: unknown class {name!r} (template {template!r} is not in the labels JSON)")
        entries.append(ListedVideo(video_id, (index,), where))
    return entries
