"""Find the videos of a dataset that cannot be used: missing, empty, not a video, truncated, undecodable,
or shorter than a clip. Used by ``assemblenet check-videos`` and ``VideoDataset.scan``."""

from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from assemblenet.errors import DataError
from assemblenet.fileio import atomic_write_json
from assemblenet.runtime import process_pool

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CheckResult:
    path: str
    ok: bool
    num_frames: int = 0
    fps: float = 0.0
    width: int = 0
    height: int = 0
    problem: str | None = None  # None, "unreadable" or "too_short"
    reason: str | None = None


def check_video(path: str | os.PathLike, *, min_frames: int = 1, full_decode: bool = False,
                frame_fps: float = 30.0) -> CheckResult:
    """Check one video file or frame folder.

    The quick check opens the file, indexes it (which detects truncation against the container's declared
    frame count) and decodes the first and last frames. ``full_decode`` decodes every frame as well.
    """
    from assemblenet.data.decode import open_video

    decode_errors: tuple[type[BaseException], ...] = (OSError, ValueError, RuntimeError)
    try:
        import av

        decode_errors += (av.FFmpegError,)
    except ImportError:  # a frame folder needs no PyAV (nor does a machine without it, such as the GPU device)
        pass
    path = str(path)
    try:
        with open_video(path, fps=frame_fps) as reader:
            num_frames = reader.num_frames
            if full_decode:
                decoded = sum(1 for _ in reader.iter_frames(short_side=64))
                num_frames = min(num_frames, decoded)
            else:
                reader.get_frames(sorted({0, num_frames - 1}), short_side=64)
            height, width, fps = reader.height, reader.width, reader.fps
    except DataError as exc:
        return CheckResult(path, False, problem="unreadable", reason=str(exc))
    except decode_errors as exc:
        return CheckResult(path, False, problem="unreadable", reason=f"{path}: {type(exc).__name__}: {exc}")
    if num_frames < min_frames:
        return CheckResult(path, False, num_frames, fps, width, height, "too_short",
                           f"{path}: {num_frames} frames, fewer than the {min_frames} required")
    return CheckResult(path, True, num_frames, fps, width, height)


def _check_job(args: tuple) -> CheckResult:
    path, min_frames, full_decode, frame_fps = args
    return check_video(path, min_frames=min_frames, full_decode=full_decode, frame_fps=frame_fps)


def check_videos(paths: Iterable[str | os.PathLike], *, workers: int = 1, min_frames: int = 1,
                 full_decode: bool = False, frame_fps: float = 30.0, progress: bool = True,
                 desc: str = "checking videos") -> list[CheckResult]:
    """Check many videos in parallel (``workers`` processes; <= 1 checks in this process), with a progress
    bar. Results keep the order of ``paths``; bad files are logged as warnings."""
    from tqdm import tqdm

    jobs = [(str(p), min_frames, full_decode, frame_fps) for p in paths]
    bar = tqdm(total=len(jobs), desc=desc, unit="video", disable=not progress)
    results: list[CheckResult] = []
    if workers <= 1 or len(jobs) <= 1:
        for job in jobs:
            results.append(_check_job(job))
            bar.update()
    else:
        with process_pool(workers) as pool:
            for result in pool.map(_check_job, jobs, chunksize=max(1, len(jobs) // (workers * 8))):
                results.append(result)
                bar.update()
    bar.close()
    for result in results:
        if not result.ok:
            logger.warning("bad video: %s", result.reason)
    return results


def collect_videos(source: str | os.PathLike, *, root: str | os.PathLike | None = None) -> list[Path]:
    """The videos named by ``source``: a folder (searched recursively for video files and frame folders), a
    single video file, or a list file (CSV/text with the path in the first column; paths relative to ``root``,
    default the list's folder; Charades CSVs use ``root/{id}.mp4``; official Kinetics CSVs the detected layout)."""
    from assemblenet.data.annotations import (
        detect_kinetics_layout,
        format_kinetics_path,
        is_kinetics_csv,
        read_charades_csv,
        read_kinetics_csv,
        read_video_list,
    )
    from assemblenet.data.decode import VIDEO_EXTENSIONS, find_videos

    source = Path(source)
    if source.is_dir():
        return find_videos(source, frame_folders=True)
    if not source.exists():
        raise DataError(f"{source}: no such folder or list file")
    if source.suffix.lower() in VIDEO_EXTENSIONS:
        return [source]
    base = Path(root) if root is not None else source.parent
    from assemblenet.data.annotations.common import annotation_text

    first_line = annotation_text(source).split("\n", 1)[0]
    if first_line.startswith("id,") and "actions" in first_line:
        return [base / f"{record.video_id}.mp4" for record in read_charades_csv(source)]
    if is_kinetics_csv(source):  # the official CSV: its videos under whichever known layout holds them
        rows = read_kinetics_csv(source)
        template = detect_kinetics_layout(rows, base)
        return [base / format_kinetics_path(template, row) for row in rows]
    entries = read_video_list(source, multi_label=True)
    return [Path(e.path) if Path(e.path).is_absolute() else base / e.path for e in entries]


def write_report(results: Sequence[CheckResult], path: str | os.PathLike, *, source: str = "") -> dict:
    """Write a JSON report (summary plus every bad file) atomically; returns it as a dict."""
    bad = [r for r in results if not r.ok]
    report = {
        "source": source,
        "checked": len(results),
        "ok": len(results) - len(bad),
        "unreadable": sum(1 for r in bad if r.problem == "unreadable"),
        "too_short": sum(1 for r in bad if r.problem == "too_short"),
        "bad": [asdict(r) for r in bad],
    }
    atomic_write_json(path, report, indent=2)
    return report


def default_report_path(source: str | os.PathLike) -> Path:
    """Where ``check-videos`` writes its report unless told: beside the scanned data (inside a scanned folder,
    next to a list or video file)."""
    source = Path(source)
    if source.is_dir():
        return source / "check-videos-report.json"
    return source.parent / f"{source.stem}.check-videos-report.json"


# -- whole datasets (``assemblenet check-dataset``) -------------------------------------------------------------
@dataclass
class SplitCheck:
    """What one split of a dataset holds and which of its videos a run could use.

    ``per_class`` counts the usable videos of each class (a multi-label video counts once per label).
    """

    name: str
    listed: int
    found: int
    missing: list[str]
    unreadable: dict[str, str]
    unlabeled: int
    class_names: list[str]
    per_class: list[int]
    multi_label: bool

    @property
    def usable(self) -> int:
        return self.found - len(self.unreadable)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def to_dict(self) -> dict:
        return {"split": self.name, "listed": self.listed, "found": self.found, "missing": len(self.missing),
                "unreadable": len(self.unreadable), "usable": self.usable, "unlabeled": self.unlabeled,
                "num_classes": self.num_classes, "multi_label": self.multi_label,
                "videos_per_class": dict(zip(self.class_names, self.per_class)),
                "missing_videos": self.missing, "unreadable_videos": self.unreadable}


def _exists(item) -> bool:
    if item.frame_paths is not None:  # a frame list: its first and last frames stand for the video
        return bool(item.frame_paths) and os.path.isfile(item.frame_paths[0]) and os.path.isfile(item.frame_paths[-1])
    return os.path.exists(item.path)


def check_split(dataset, *, name: str, workers: int = 1, min_frames: int = 1, full_decode: bool = False,
                progress: bool = True, decode: bool = True) -> SplitCheck:
    """Check every video of ``dataset`` (a ``VideoDataset``): listed, found on disk, decodable (in ``workers``
    processes, with a progress bar; ``decode=False`` checks that the files exist only). Frame-list videos are
    checked for their files only."""
    items = list(dataset.items)
    present = [_exists(item) for item in items]
    found_items = [item for item, here in zip(items, present) if here]
    missing = [item.path for item, here in zip(items, present) if not here]
    to_decode = [item.path for item in found_items if item.frame_paths is None] if decode else []
    results = check_videos(to_decode, workers=workers, min_frames=min_frames, full_decode=full_decode,
                           frame_fps=getattr(dataset, "frame_fps", 30.0), progress=progress,
                           desc=f"checking {name}") if to_decode else []
    unreadable = {r.path: r.reason or r.problem or "" for r in results if not r.ok}
    per_class = [0] * dataset.num_classes
    for item in found_items:
        if item.path in unreadable:
            continue
        for label in set(item.labels):
            per_class[label] += 1
    unlabeled = sum(1 for item in items if not item.labels)
    return SplitCheck(name, len(items), len(found_items), missing, unreadable, unlabeled,
                      list(dataset.class_names), per_class, bool(dataset.multi_label))


def shown_videos(dataset, count: int) -> list[str]:
    """The first ``count`` videos of ``dataset`` as ``ID PATH -> name (index), ...`` lines, so that a user can
    check the label mapping (``check-dataset --show N``)."""
    lines = []
    names = list(dataset.class_names)
    for item in list(dataset.items)[:max(0, count)]:
        labels = ", ".join(f"{names[k]} ({k})" for k in sorted(set(item.labels))) or "no label"
        lines.append(f"{item.video_id} {item.path} -> {labels}")
    return lines


def dataset_problems(splits: Sequence[SplitCheck], *, num_classes: int | None) -> list[str]:
    """One line per reason the training run would fail: an empty split, a single-label split with unlabelled
    videos (a test list), a class count that differs from the model's, train and val classes that differ."""
    problems = []
    for split in splits:
        if split.usable == 0:
            problems.append(f"{split.name}: none of the {split.listed} listed videos is usable "
                            f"({len(split.missing)} missing, {len(split.unreadable)} unreadable)")
        if split.unlabeled and not split.multi_label:  # a multi-label video may rightly hold no action
            problems.append(f"{split.name}: {split.unlabeled} of {split.listed} videos have no label (a test list?); "
                            "training and evaluation need labels")
    if num_classes is not None and splits and splits[0].num_classes != num_classes:
        problems.append(f"model.num_classes is {num_classes}, but the {splits[0].name} set has "
                        f"{splits[0].num_classes} classes")
    for split in splits[1:]:
        if split.class_names != splits[0].class_names:
            differ = next((i for i, (a, b) in enumerate(zip(split.class_names, splits[0].class_names)) if a != b),
                          min(split.num_classes, splits[0].num_classes))
            problems.append(f"{split.name} has {split.num_classes} classes and {splits[0].name} "
                            f"{splits[0].num_classes}; they first differ at label {differ}, so label indices "
                            f"would not agree (pass the same classes to both)")
    return problems


PREFLIGHT_MODES = ("decode", "exists", "off")


def preflight(datasets: Mapping[str, Any], *, workers: int = 1, mode: str = "decode",
              progress: bool = False) -> list[SplitCheck]:
    """What ``check-dataset`` checks, for a run about to start (``train`` calls it before the first step, on every
    split it will read): each split's videos listed, found and (``mode="decode"``) decodable. A problem that
    would fail the run (a split with no usable video, train and val classes that differ) is one ``DataError``
    naming the splits; a missing or unreadable video is recorded in its dataset's ``skipped`` (so it is counted)
    and dropped. ``mode="off"`` checks nothing."""
    if mode not in PREFLIGHT_MODES:
        raise ValueError(f"preflight mode must be one of {PREFLIGHT_MODES}, got {mode!r}")
    if mode == "off":
        return []
    checks = []
    for name, dataset in datasets.items():
        if dataset is None or not hasattr(dataset, "items"):
            continue
        split = check_split(dataset, name=name, workers=workers, progress=progress, decode=mode == "decode")
        checks.append(split)
        if split.usable > 0:  # else the error below says it, once
            bad = {path: f"{path}: listed but not found" for path in split.missing}
            bad.update(split.unreadable)
            dataset.skip_videos(bad)
    problems = dataset_problems(checks, num_classes=None)
    if problems:
        raise DataError(f"the run would fail (the check of check-dataset, before any step): {'; '.join(problems)}")
    return checks


def plot_class_histogram(splits: Sequence[SplitCheck], path: str | os.PathLike) -> Path:
    """A PNG bar chart of usable videos per class, one bar series per split (class names shown up to 60)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from assemblenet.fileio import atomic_path

    count = max((s.num_classes for s in splits), default=0)
    width = 0.8 / max(1, len(splits))
    figure, axes = plt.subplots(figsize=(min(24.0, max(6.0, 0.18 * count + 2)), 4.5))
    x = np.arange(count)
    for k, split in enumerate(splits):
        axes.bar(x[:split.num_classes] + (k - (len(splits) - 1) / 2) * width, split.per_class, width=width,
                 label=f"{split.name} ({split.usable} usable)")
    names = splits[0].class_names if splits else []
    if 0 < count <= 60:
        axes.set_xticks(x, names, rotation=90, fontsize=7)
    else:
        axes.set_xlabel("class index")
    axes.set_ylabel("usable videos")
    axes.set_title(f"videos per class ({count} classes)")
    axes.legend()
    figure.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=100)
    plt.close(figure)
    return path
