"""Data sub-commands: ``check-videos``, ``check-dataset``, ``flow``, ``make-synthetic`` and ``prepare-videos``."""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path
from typing import Any

from assemblenet.argtypes import positive_int
from assemblenet.config_schema import add_config_arguments
from assemblenet.errors import ConfigError, DataError

logger = logging.getLogger(__name__)


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {text!r}") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1], got {text!r}")
    return value


def _default_workers() -> int:
    return max(1, min(8, os.cpu_count() or 1))


def register(subparsers) -> None:
    check = subparsers.add_parser(
        "check-videos", help="find undecodable, truncated or too-short videos of a dataset",
        description="Scan a dataset folder (recursively) or a video list in parallel and write a JSON report "
                    "of the videos that cannot be used. Exit status 0 if all are usable, 1 otherwise.")
    check.add_argument("source", metavar="ROOT|LIST", help="dataset folder, video list (CSV/TXT) or Charades CSV")
    check.add_argument("--root", help="folder that paths in LIST are relative to (default: LIST's folder)")
    check.add_argument("--min-frames", type=positive_int, default=1, help="shorter videos are reported")
    check.add_argument("--full", action="store_true", help="decode every frame (slower, finds more damage)")
    check.add_argument("--workers", type=positive_int, default=_default_workers(), help="parallel processes")
    check.add_argument("--report", help="JSON report path (default: beside the scanned data, "
                                         "check-videos-report.json in a folder or LIST.check-videos-report.json)")
    check.add_argument("--frame-fps", type=float, default=30.0, help="frame rate of frame folders")
    check.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    check.set_defaults(func=run_check_videos)

    dataset = subparsers.add_parser(
        "check-dataset", help="check a config's train and val sets before a long run",
        description="Build the config's train and val datasets as training would, then report per split the "
                    "videos listed, found, missing and unreadable (decoded in parallel), the classes and the "
                    "videos per class (JSON report and PNG histogram), and whether the class count matches "
                    "model.num_classes.",
        epilog="Exit status: 0 the run can start. 1 the run would fail (a split with no usable video, a test list "
               "as train or val, model.num_classes differing from the train set's classes, train and val classes "
               "that differ): one line 'assemblenet: check-dataset: the run would fail: ...'. 2 a list or the "
               "config cannot be read: one line 'assemblenet: error: FILE:LINE: ...' naming the entry. "
               "See docs/data.md, 'Checking a dataset before a long run'.")
    dataset.add_argument("config", help="YAML config (see configs/)")
    add_config_arguments(dataset)
    dataset.add_argument("--workers", type=positive_int, default=_default_workers(),
                         help="parallel decoders (default: the cores, at most 8; %(default)s here)")
    dataset.add_argument("--show", type=positive_int, default=0, metavar="N",
                         help="print the first N videos of each split with their labels (class names and indices), "
                              "to check the label mapping")
    dataset.add_argument("--min-frames", type=positive_int, default=1, help="shorter videos count as unreadable")
    dataset.add_argument("--full", action="store_true", help="decode every frame (slower, finds more damage)")
    dataset.add_argument("--output", "--out", dest="out", help="folder for dataset_check.json and class_histogram.png "
                                       "(default: <output.dir>/dataset_check, ./dataset_check without output.dir)")
    dataset.add_argument("--no-progress", action="store_true", help="hide the progress bars")
    dataset.set_defaults(func=run_check_dataset)

    flow = subparsers.add_parser(
        "flow", help="precompute optical flow (TV-L1 or Farneback) for a dataset",
        description="Compute optical flow for every video under ROOT (or in a list) in parallel, resumably. "
                    "Flow t maps frame t to t+1; x is positive to the right, y positive downwards, in pixels.")
    flow.add_argument("source", metavar="ROOT|LIST", help="dataset folder, video list or single video")
    flow.add_argument("--output", "--out", dest="out", help="output folder (default: ROOT_flow beside ROOT)")
    flow.add_argument("--root", help="folder that paths in LIST are relative to; also the base of output keys")
    flow.add_argument("--method", choices=("tvl1-torch", "tvl1", "farneback"), default="tvl1-torch",
                      help="tvl1-torch: Dual TV-L1 in PyTorch, batched (default; CPU or GPU); tvl1: OpenCV's "
                           "Dual TV-L1 (one thread per process, much slower); farneback: OpenCV, fast, coarse")
    flow.add_argument("--format", dest="fmt", choices=("jpeg", "png", "float16"), default="jpeg",
                      help="uint8 x/y image pairs with --bound, or float16 arrays")
    flow.add_argument("--bound", type=float, default=20.0, help="clipping bound in pixels for jpeg/png")
    flow.add_argument("--short-side", type=positive_int, help="shrink frames to this shorter side first")
    flow.add_argument("--max-frames", type=positive_int, help="use only the first N frames of each video")
    flow.add_argument("--workers", type=positive_int, default=None,
                      help="parallel processes (default: every core, os.cpu_count(); 1 with a GPU); tvl1-torch "
                           "shares the cores among them as threads")
    flow.add_argument("--device", default="cpu", help="where tvl1-torch runs: cpu (default), cuda, cuda:1, ...")
    flow.add_argument("--overwrite", action="store_true", help="recompute videos that already have flow")
    flow.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    flow.set_defaults(func=run_flow)

    synthetic = subparsers.add_parser(
        "make-synthetic", help="write a synthetic video task (H.264 MP4 + Kinetics/Charades CSVs)",
        description="Write a deterministic synthetic action task (see docs/data.md). --task benchmark (default): "
                    "12 classes that differ by motion direction, speed, appearance or temporal pattern, train/val "
                    "splits in Kinetics and Charades format. --task compositional: 16 classes, each a conjunction "
                    "of colour x direction x blink x return, fixed stratified train/val/test splits in Kinetics "
                    "format.")
    synthetic.add_argument("out", metavar="OUT", help="output folder")
    synthetic.add_argument("--task", choices=("benchmark", "compositional"), default="benchmark",
                           help="which task to write (default: benchmark)")
    synthetic.add_argument("--size", type=positive_int, help="frame height and width, even (default: 64 for "
                           "benchmark, 32 for compositional)")
    synthetic.add_argument("--frames", type=positive_int, help="frames per video (default: 32 for benchmark, "
                           "8 for compositional, which needs an even number >= 8: one 8-frame clip is the whole "
                           "video)")
    synthetic.add_argument("--fps", type=positive_int, default=10, help="frame rate")
    synthetic.add_argument("--seed", type=int, default=0)
    benchmark = synthetic.add_argument_group("--task benchmark only")
    benchmark.add_argument("--videos", type=positive_int, help="number of videos (default: 300)")
    benchmark.add_argument("--classes", type=positive_int, help="number of classes, 2-12 (default: 12)")
    benchmark.add_argument("--multi-label-fraction", type=_fraction,
                           help="share of videos holding 2-3 actions (default: 0.3)")
    benchmark.add_argument("--val-fraction", type=_fraction, help="share of videos in the val split (default: 0.2)")
    benchmark.add_argument("--objects", action="store_true",
                           help="also write the true per-frame object maps (objects/, for AssembleNet++'s object "
                                "stem; see configs/synthetic_plus.yaml)")
    compositional = synthetic.add_argument_group("--task compositional only (each a multiple of 16)")
    compositional.add_argument("--train-videos", type=positive_int, help="train split size (default: 480)")
    compositional.add_argument("--val-videos", type=positive_int, help="val split size (default: 240)")
    compositional.add_argument("--test-videos", type=positive_int, help="test split size (default: 240)")
    synthetic.add_argument("--overwrite", action="store_true",
                           help="write into OUT even if it is not empty (files of the same names are replaced)")
    synthetic.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    synthetic.set_defaults(func=run_make_synthetic)

    prepare = subparsers.add_parser(
        "prepare-videos", help="re-encode a video dataset for fast random access (short GOP, training size)",
        description="Re-encode every video under SRC into DST (same folders and stems, .mp4): H.264 yuv420p, "
                    "short side --short-side, a keyframe every --gop frames, no audio. Parallel, resumable (a "
                    "rerun skips finished files; half-written ones never count), each output verified to decode "
                    "with its source's frame count. Unreadable sources are reported and skipped. Exit status 0 if "
                    "every video is usable, 1 otherwise. See docs/data.md, 'Fast input'.")
    prepare.add_argument("src", metavar="SRC", help="dataset folder (searched recursively for video files)")
    prepare.add_argument("dst", metavar="DST", help="output folder (outside SRC)")
    prepare.add_argument("--short-side", type=positive_int, default=256, help="shorter side in pixels (default 256; "
                         "smaller videos keep their size)")
    prepare.add_argument("--gop", type=positive_int, default=16, help="frames between keyframes (default 16)")
    prepare.add_argument("--crf", type=int, default=23, help="x264 quality, 0-51, lower is better (default 23)")
    prepare.add_argument("--preset", default="veryfast", help="x264 speed preset (default veryfast)")
    prepare.add_argument("--tune", default="fastdecode", help="x264 tuning (default fastdecode: ~1.5x faster "
                         "decoding for ~15%% more bytes; 'none' for x264's default)")
    prepare.add_argument("--workers", type=positive_int, default=os.cpu_count() or 1,
                         help="parallel processes (default: every core)")
    prepare.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    prepare.set_defaults(func=run_prepare_videos)


def run_check_videos(args: argparse.Namespace) -> int:
    from assemblenet.data.check import check_videos, collect_videos, default_report_path, write_report

    paths = collect_videos(args.source, root=args.root)
    if not paths:
        raise DataError(f"{args.source}: no videos found")
    results = check_videos(paths, workers=args.workers, min_frames=args.min_frames, full_decode=args.full,
                           frame_fps=args.frame_fps, progress=not args.no_progress)
    report_path = Path(args.report) if args.report else default_report_path(args.source)
    try:
        report = write_report(results, report_path, source=str(args.source))
    except PermissionError:
        if args.report:
            raise
        report_path = Path(report_path.name)  # a read-only dataset: the current folder instead
        report = write_report(results, report_path, source=str(args.source))
    print(f"checked {report['checked']} videos: {report['ok']} ok, {report['unreadable']} unreadable, "
          f"{report['too_short']} too short; report written to {report_path}")
    for entry in report["bad"]:
        print(f"  {entry['problem']}: {entry['reason']}")
    return 0 if report["ok"] == report["checked"] else 1


def _shown(paths, limit: int = 5) -> str:
    paths = list(paths)
    more = f" (+{len(paths) - limit} more)" if len(paths) > limit else ""
    return ", ".join(paths[:limit]) + more


def run_check_dataset(args: argparse.Namespace) -> int:
    import sys

    from assemblenet.data.check import check_split, dataset_problems, plot_class_histogram, shown_videos
    from assemblenet.engine.config import fixed_num_classes, load_config
    from assemblenet.engine.datasets import split_dataset
    from assemblenet.fileio import atomic_write_json

    cfg = load_config(args.config, list(args.overrides))
    if args.print_config:
        sys.stdout.write(cfg.to_yaml())
        return 0
    splits = []
    for name in ("train", "val"):
        if not (cfg.data.train if name == "train" else cfg.data.val):
            raise ConfigError(f"{args.config}: key 'data.{name}' is empty; the run needs it")
        dataset = split_dataset(cfg, name)
        split = check_split(dataset, name=name, workers=args.workers, min_frames=args.min_frames,
                            full_decode=args.full, progress=not args.no_progress)
        splits.append(split)
        counts = split.per_class
        spread = f"{min(counts)}-{max(counts)} usable videos per class" if counts else "no classes"
        print(f"{name}: {split.listed} listed, {split.found} found, {len(split.missing)} missing, "
              f"{len(split.unreadable)} unreadable, {split.usable} usable; {split.num_classes} classes "
              f"({'multi-label' if split.multi_label else 'single-label'}), {spread}"
              + (f", {split.unlabeled} {'without actions' if split.multi_label else 'unlabelled'}"
                 if split.unlabeled else ""))
        if split.missing:
            print(f"  missing: {_shown(split.missing)}")
        if split.unreadable:
            print(f"  unreadable: {_shown(split.unreadable)}")
        empty = [n for n, c in zip(split.class_names, counts) if c == 0]
        if empty:
            print(f"  classes without a usable video: {_shown(empty)}")
        for line in shown_videos(dataset, args.show):
            print(f"  {line}")
    fixed = fixed_num_classes(cfg)
    if fixed is None:
        print(f"model.num_classes auto: {splits[0].num_classes}, the train set's class count")
    else:
        verdict = "matches" if fixed == splits[0].num_classes else "DIFFERS"
        print(f"model.num_classes {fixed}: {verdict} the train set's {splits[0].num_classes}")
    problems = dataset_problems(splits, num_classes=fixed)
    out = Path(args.out) if args.out else Path(cfg.output.dir or ".") / "dataset_check"
    atomic_write_json(out / "dataset_check.json", {"config": str(args.config), "problems": problems,
                                                   "splits": [s.to_dict() for s in splits]}, indent=2)
    histogram = plot_class_histogram(splits, out / "class_histogram.png")
    print(f"report: {out / 'dataset_check.json'}; histogram: {histogram}")
    if problems:
        print(f"assemblenet: check-dataset: the run would fail: {'; '.join(problems)}", file=sys.stderr)
        return 1
    return 0


def run_flow(args: argparse.Namespace) -> int:
    from assemblenet.data.check import collect_videos
    from assemblenet.data.flow import precompute_flow

    source = Path(args.source)
    if not source.exists():
        raise DataError(f"{source}: no such folder, list or video")
    videos = collect_videos(source, root=args.root)
    if not videos:
        raise DataError(f"{source}: no videos found")
    if args.root is not None:
        root: Path = Path(args.root)
    elif source.is_dir():
        root = source
    else:
        root = source.parent
    out = Path(args.out) if args.out else root.parent / f"{root.resolve().name}_flow"
    if not args.bound > 0:
        raise DataError(f"--bound must be positive, got {args.bound}")
    if args.method == "tvl1-torch":
        from assemblenet.engine.placement import resolve_device

        args.device = str(resolve_device(args.device, key="--device"))
    report = precompute_flow(videos, out, root=root, method=args.method, fmt=args.fmt, bound=args.bound,
                             workers=args.workers, device=args.device, short_side=args.short_side,
                             max_frames=args.max_frames,
                             overwrite=args.overwrite, progress=not args.no_progress)
    print(f"flow ({args.method}, {args.fmt}) in {out}: {len(report.computed)} computed, "
          f"{len(report.already_done)} already done, {len(report.failed)} failed")
    for reason in report.failed.values():
        print(f"  failed: {reason}")
    return 0 if not report.failed else 1


_BENCHMARK_ONLY = {"videos": "--videos", "classes": "--classes", "multi_label_fraction": "--multi-label-fraction",
                   "val_fraction": "--val-fraction"}
_COMPOSITIONAL_ONLY = {"train_videos": "--train-videos", "val_videos": "--val-videos", "test_videos": "--test-videos"}


def _given(args: argparse.Namespace, flags: dict[str, str]) -> dict[str, Any]:
    return {name: getattr(args, name) for name in flags if getattr(args, name) is not None}


def _verb(flags: dict) -> str:
    return "applies" if len(flags) == 1 else "apply"


def _refuse_a_used_folder(out: Path, overwrite: bool) -> None:
    """A folder with anything in it (an earlier task, someone's data) is kept unless --overwrite says so."""
    if out.exists() and not out.is_dir():
        raise DataError(f"{out}: exists and is not a folder")
    if not overwrite and out.is_dir() and any(out.iterdir()):
        count = sum(1 for _ in out.iterdir())
        raise DataError(f"{out}: folder is not empty ({count} entries); give a new folder, or --overwrite to write "
                        "into it")


def run_make_synthetic(args: argparse.Namespace) -> int:
    _refuse_a_used_folder(Path(args.out), args.overwrite)
    if args.task == "compositional":
        return _run_make_compositional(args)
    misplaced = _given(args, _COMPOSITIONAL_ONLY)
    if misplaced:
        raise DataError(f"{', '.join(_COMPOSITIONAL_ONLY[n] for n in misplaced)} {_verb(misplaced)} only to "
                        "--task compositional (the benchmark takes --videos and --val-fraction)")
    from assemblenet.data.synthetic import make_synthetic

    def pick(value, default):
        return default if value is None else value

    summary = make_synthetic(args.out, num_videos=pick(args.videos, 300), num_classes=pick(args.classes, 12),
                             size=pick(args.size, 64), num_frames=pick(args.frames, 32), fps=args.fps, seed=args.seed,
                             multi_label_fraction=pick(args.multi_label_fraction, 0.3),
                             val_fraction=pick(args.val_fraction, 0.2), progress=not args.no_progress,
                             objects=args.objects)
    print(f"wrote {summary.num_videos} videos ({summary.num_classes} classes, {summary.multi_label_videos} "
          f"multi-label; {summary.train_videos} train / {summary.val_videos} val) to {summary.root}")
    return 0


def _run_make_compositional(args: argparse.Namespace) -> int:
    misplaced = _given(args, _BENCHMARK_ONLY)
    if args.objects:
        raise DataError("--objects applies only to --task benchmark")
    if misplaced:
        raise DataError(f"{', '.join(_BENCHMARK_ONLY[n] for n in misplaced)} {_verb(misplaced)} only to "
                        "--task benchmark (--task compositional has 16 fixed classes; use --train-videos, "
                        "--val-videos and --test-videos)")
    from assemblenet.data.compositional import DEFAULT_NUM_FRAMES, make_compositional

    summary = make_compositional(args.out, size=32 if args.size is None else args.size,
                                 num_frames=DEFAULT_NUM_FRAMES if args.frames is None else args.frames, fps=args.fps,
                                 seed=args.seed, progress=not args.no_progress, **_given(args, _COMPOSITIONAL_ONLY))
    print(f"wrote {summary.train_videos + summary.val_videos + summary.test_videos} compositional videos "
          f"({summary.num_classes} classes; {summary.train_videos} train / {summary.val_videos} val / "
          f"{summary.test_videos} test) to {summary.root} in {summary.seconds:.1f} s")
    return 0


def run_prepare_videos(args: argparse.Namespace) -> int:
    from assemblenet.data.prepare import REPORT_NAME, prepare_videos

    report = prepare_videos(args.src, args.dst, short_side=args.short_side, gop=args.gop, crf=args.crf,
                            preset=args.preset, tune=None if args.tune == "none" else args.tune,
                            workers=args.workers, progress=not args.no_progress)
    print(f"prepare-videos {args.src} -> {args.dst}: {report.summary()}; report {Path(args.dst) / REPORT_NAME}")
    for reason in report.failed.values():
        print(f"  skipped: {reason}")
    return 0 if not report.failed else 1
