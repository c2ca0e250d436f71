"""What an architecture search costs on this machine: proxy evaluations per hour and a fixed training's speed.

Measured as a user runs them, each in a fresh process (imports excluded from the timings):

- *proxy, new search*: ``configs/search/compositional.yaml`` with ``--strategy random --seed 0 --workers 1``,
  ``search.finalists: null`` and ``--max-evaluations N`` in an empty folder: evaluations per hour of the
  whole search (its decoding, store writing, training, validation and bookkeeping).
- *proxy, resumed search*: the same folder continued to ``2N`` evaluations in a new process (what a killed
  search, a grown budget or a second worker meets): evaluations per hour of the N new ones.
- *training*: ``configs/compositional.yaml`` for ``--train-steps`` steps (300) with no output folder: steps per
  second of the whole run, and its final metrics (which must not change).

The same graphs and seeds run in every measurement (the random strategy's draws are fixed by its seed), so the
fitness values are compared too. ``--baseline TREE`` runs the same measurements with that checkout's ``src``
on ``PYTHONPATH`` (the data, configs and this script stay this tree's), alternating this tree (A) and the
baseline (B) ``--repeats`` times, and reports B/A time ratios from the medians. A cProfile of one new-search
run per tree gives the top entries and the share of time in decoding, forward, backward and the optimiser.

    assemblenet make-synthetic data/compositional --task compositional
    /work/bin/cpu-run --all python benchmarks/search_speed.py --baseline ../baseline \\
        --json benchmarks/results/search_speed.json --write-readme

``--tiny`` runs everything on a tiny synthetic set in seconds (the test suite's smoke test).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
SEARCH_CONFIG = REPO / "configs" / "search" / "compositional.yaml"
TRAIN_CONFIG = REPO / "configs" / "compositional.yaml"
DEFAULT_DATA = REPO / "data" / "compositional"
# What the profile's shares are read from: (file suffix, function name) of the outermost call of each part.
PARTS = {
    "decoding": [("data/decode.py", "get_frames")],
    "forward": [("models/assemblenet.py", "forward")],
    "backward": [("torch/_tensor.py", "backward")],
    "optimiser": [("torch/optim/sgd.py", "step"), ("torch/optim/adamw.py", "step")],
}


# ---------------------------------------------------------------------------- one measurement (a child process)
def _data_sections(data_root: str, tiny: bool) -> dict[str, Any]:
    if tiny:
        return {"data.train": {"root": data_root, "split": "train", "cache_frames": True},
                "data.val": {"root": data_root, "split": "val", "cache_frames": True}}
    return {"data.train": {"root": data_root, "split": "train", "annotation": "kinetics", "cache_frames": True,
                           "scale": [1.0, 1.0], "ratio": [1.0, 1.0]},
            "data.val": {"root": data_root, "split": "val", "annotation": "kinetics", "cache_frames": True}}


def search_config_data(spec: dict[str, Any], evaluations: int) -> dict[str, Any]:
    data = yaml.safe_load(SEARCH_CONFIG.read_text())
    data.update(strategy="random", seed=0)
    data["search"]["max_evaluations"] = evaluations
    data["search"]["finalists"] = None
    data["executor"]["workers"] = 1
    overrides = data["fitness"]["overrides"]
    overrides.update(_data_sections(spec["data"], spec["tiny"]))
    if spec["tiny"]:
        overrides.update({"data.batch_size": 4, "eval.batch_size": 8, "model.num_classes": "auto",
                          "train.precise_bn_batches": 1})
        data["fitness"]["steps"] = 2
        data["search"]["batch_size"] = 1
    overrides.update(spec.get("set", {}))  # last, as in measure_train
    return data


def measure_proxy(spec: dict[str, Any]) -> dict[str, Any]:
    """Run (or continue) the random search in ``spec['run_dir']`` to ``spec['evaluations']``."""
    from assemblenet.search.config import search_config_from_dict
    from assemblenet.search.evolution import SearchRunner
    from assemblenet.search.store import RunStore

    run_dir = Path(spec["run_dir"])
    before = set(RunStore(run_dir).read_records()) if run_dir.exists() else set()
    config = search_config_from_dict(search_config_data(spec, spec["evaluations"]))
    start = time.perf_counter()
    SearchRunner(config, run_dir=run_dir).run()
    wall = time.perf_counter() - start
    records = RunStore(run_dir).read_records()
    new = sorted(set(records) - before)
    return {"wall_s": wall, "evaluations": len(new), "evaluations_per_hour": len(new) / wall * 3600,
            "evaluation_wall_s": [records[i].wall_time for i in new],
            "fitness": [records[i].fitness for i in new], "graphs": [records[i].graph_hash for i in new]}


def measure_train(spec: dict[str, Any]) -> dict[str, Any]:
    from assemblenet.engine import run_training

    overrides: dict[str, Any] = dict(_data_sections(spec["data"], spec["tiny"]))
    if spec["tiny"]:
        overrides.update({"data.batch_size": 4, "eval.batch_size": 8, "model.num_classes": "auto",
                          "train.precise_bn_batches": 1})
    overrides.update(spec.get("set", {}))
    start = time.perf_counter()
    result = run_training(str(TRAIN_CONFIG), output_dir=None, max_steps=spec["steps"], overrides=overrides,
                          progress=False)
    wall = time.perf_counter() - start
    metrics = {k: float(v) for k, v in result.metrics.items() if isinstance(v, (int, float))}
    return {"wall_s": wall, "steps": spec["steps"], "steps_per_s": spec["steps"] / wall, "metrics": metrics}


def profiled(kind: str, spec: dict[str, Any], top: int) -> dict[str, Any]:
    """``kind``'s measurement under cProfile: its figures, the top entries by own time, and the parts' shares."""
    import cProfile
    import pstats

    profile = cProfile.Profile()
    figures = profile.runcall(MEASURES[kind], spec)
    stats = pstats.Stats(profile)
    total = figures["wall_s"]
    rows = []
    for (filename, line, name), (_calls, ncalls, own, cumulative, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        rows.append({"function": f"{_short(filename)}:{line}({name})", "calls": ncalls, "own_s": own,
                     "cumulative_s": cumulative})
    rows.sort(key=lambda r: -r["own_s"])
    shares = {}
    for part, keys in PARTS.items():
        seconds = 0.0
        for (filename, _line, name), (_c, _n, _own, cumulative, _callers) in stats.stats.items():  # type: ignore[attr-defined]
            if any(filename.replace(os.sep, "/").endswith(suffix) and name == fn for suffix, fn in keys):
                seconds = max(seconds, cumulative) if part in ("forward", "decoding") else seconds + cumulative
        shares[part] = {"seconds": seconds, "share": seconds / total if total else 0.0}
    return {"figures": figures, "top_own_time": rows[:top], "parts": shares, "profiled_wall_s": total}


def _short(filename: str) -> str:
    for marker in ("/assemblenet/", "/site-packages/"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return filename


def measure_cost(spec: dict[str, Any]) -> dict[str, Any]:
    """The terms of the cost model (docs/search.md) at one proxy size: the store's decoding per video, and per
    evaluation the seconds in training steps, precise BN, validation and the rest (building the trainer,
    model and loaders). The first evaluation (warm-up) is left out."""
    import random

    from assemblenet.engine import trainer
    from assemblenet.search.config import search_config_from_dict
    from assemblenet.search.fitness import build_fitness
    from assemblenet.search.space import SearchSpace

    data = search_config_data(spec, 1)
    data["fitness"]["steps"] = spec["steps"]
    data["fitness"]["overrides"]["data.num_frames"] = spec["frames"]
    config = search_config_from_dict(data)
    fitness = build_fitness(config)
    start = time.perf_counter()
    fitness = fitness.with_frame_store(Path(spec["run_dir"]) / "frame_store")
    store_s = time.perf_counter() - start
    spent: dict[str, float] = {}

    def timed(name: str) -> None:
        real = getattr(trainer.Trainer, name)

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            begin = time.perf_counter()
            try:
                return real(*args, **kwargs)
            finally:
                spent[name] = spent.get(name, 0.0) + time.perf_counter() - begin

        setattr(trainer.Trainer, name, wrapper)

    for name in ("train_step", "_precise_bn", "run_eval"):
        timed(name)
    space = SearchSpace(config.space)
    rng = random.Random(0)
    rows = []
    for k in range(spec["repeats"] + 1):
        spent.clear()
        begin = time.perf_counter()
        fitness(space.sample(rng), seed=k)
        total = time.perf_counter() - begin
        if k:
            eval_s = spent["run_eval"] - spent.get("_precise_bn", 0.0)
            rows.append({"total_s": total, "train_steps_s": spent["train_step"],
                         "precise_bn_s": spent.get("_precise_bn", 0.0), "validation_s": eval_s,
                         "other_s": total - spent["train_step"] - spent["run_eval"]})
    med = statistics.median
    summary = {key: med(r[key] for r in rows) for key in rows[0]}
    videos = {split: len(json.loads((Path(spec["run_dir"]) / "frame_store" / split / "index.json").read_text())
                         ["videos"]) for split in ("train", "val")}
    return {"steps": spec["steps"], "frames": spec["frames"], "store_build_s": store_s,
            "decode_s_per_video": store_s / max(sum(videos.values()), 1), "videos": videos,
            "seconds_per_step": summary["train_steps_s"] / spec["steps"],
            "validation_s_per_video": summary["validation_s"] / max(videos["val"], 1), **summary,
            "wall_s": store_s + sum(r["total_s"] for r in rows)}


MEASURES = {"proxy": measure_proxy, "train": measure_train, "cost": measure_cost}


def compositional_data(data: Path, frames: int, scratch: Path) -> Path:
    """``data`` when its videos have ``frames`` frames, else the same task written with that many into ``scratch``:
    the compositional protocol (issue 27) scores only views that are the whole video, so a proxy of F frames
    needs videos of F frames."""
    from assemblenet.data.compositional import make_compositional

    written = json.loads((data / "synthetic.json").read_text())["parameters"]
    if written["num_frames"] == frames:
        return data
    copy = scratch / f"compositional-{frames}f"
    if not (copy / "synthetic.json").is_file():
        keep = ("train_videos", "val_videos", "test_videos", "size", "fps", "seed")
        make_compositional(copy, num_frames=frames, progress=False, **{key: written[key] for key in keep})
    return copy


def child_main(kind: str, spec_json: str, profile_top: int) -> int:
    import logging

    logging.basicConfig(level=logging.WARNING)
    spec = json.loads(spec_json)
    import torch

    torch.set_num_threads(1)
    result = profiled(kind, spec, profile_top) if profile_top else MEASURES[kind](spec)
    print("RESULT " + json.dumps(result))
    return 0


# ---------------------------------------------------------------------------- the driver
def run_child(tree: Path, kind: str, spec: dict[str, Any], *, profile_top: int = 0, cwd: Path) -> dict[str, Any]:
    env = dict(os.environ, PYTHONPATH=str(tree / "src"))
    command = [sys.executable, str(Path(__file__).resolve()), "--child", kind, "--spec", json.dumps(spec)]
    if profile_top:
        command += ["--profile-top", str(profile_top)]
    finished = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    lines = [line for line in finished.stdout.splitlines() if line.startswith("RESULT ")]
    if finished.returncode != 0 or not lines:
        raise RuntimeError(f"{kind} measurement with {tree} failed:\n{finished.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT "):])


def measure_tree(tree: Path, args: argparse.Namespace, scratch: Path, label: str,
                 overrides: dict[str, Any]) -> dict[str, Any]:
    """One round for one tree: a new search, the same search resumed, and the fixed training."""
    folder = Path(tempfile.mkdtemp(prefix=f"{label}-", dir=scratch))
    base = {"data": str(args.data), "tiny": args.tiny, "set": overrides}
    run_dir = folder / "random-seed0"
    figures: dict[str, Any] = {}
    if args.only != "train":
        figures["proxy_new"] = run_child(tree, "proxy", {**base, "run_dir": str(run_dir),
                                                         "evaluations": args.evaluations}, cwd=folder)
        figures["proxy_resumed"] = run_child(tree, "proxy", {**base, "run_dir": str(run_dir),
                                                             "evaluations": 2 * args.evaluations}, cwd=folder)
    if args.only != "proxy":
        figures["train"] = run_child(tree, "train", {**base, "steps": args.train_steps}, cwd=folder)
    return figures


def summarise(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    med = statistics.median
    summary: dict[str, Any] = {}
    if "proxy_new" in rounds[0]:
        summary.update({
            "proxy_new_evaluations_per_hour": med(r["proxy_new"]["evaluations_per_hour"] for r in rounds),
            "proxy_new_wall_s": med(r["proxy_new"]["wall_s"] for r in rounds),
            "proxy_resumed_evaluations_per_hour": med(r["proxy_resumed"]["evaluations_per_hour"] for r in rounds),
            "proxy_resumed_wall_s": med(r["proxy_resumed"]["wall_s"] for r in rounds),
            "fitness": rounds[0]["proxy_new"]["fitness"] + rounds[0]["proxy_resumed"]["fitness"],
        })
    if "train" in rounds[0]:
        summary.update({
            "train_steps_per_s": med(r["train"]["steps_per_s"] for r in rounds),
            "train_wall_s": med(r["train"]["wall_s"] for r in rounds),
            "train_metrics": rounds[0]["train"]["metrics"],
        })
    summary["rounds"] = rounds
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--baseline", type=Path, help="another checkout to compare with (interleaved A/B)")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the compositional data (make-synthetic)")
    parser.add_argument("--evaluations", type=int, default=4, help="proxy evaluations of the new search (N)")
    parser.add_argument("--train-steps", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3, help="rounds per tree (alternating A and B)")
    parser.add_argument("--profile-top", type=int, help="profile entries to keep (default 25; 0: no profile)")
    parser.add_argument("--tiny", action="store_true", help="a tiny synthetic set, 2-step proxies (smoke test)")
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--write-readme", action="store_true", help="put the tables into benchmarks/README.md")
    parser.add_argument("--note", default="", help="recorded with the results (e.g. what ran beside it)")
    parser.add_argument("--only", choices=["proxy", "train"], help="measure only the proxy searches or the training")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a training-config override for A only, in the proxy and the training (e.g. "
                             "model.temporal_conv=conv2d: an option measured against B without it); repeatable")
    parser.add_argument("--cost-model", action="store_true",
                        help="only measure the cost model's terms at two proxy sizes (docs/search.md)")
    parser.add_argument("--child", choices=sorted(MEASURES), help=argparse.SUPPRESS)
    parser.add_argument("--spec", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child_main(args.child, args.spec, args.profile_top or 0)
    if args.profile_top is None:
        args.profile_top = 25
    overrides: dict[str, Any] = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep or not key:
            parser.error(f"--set {item!r}: expected KEY=VALUE, e.g. model.temporal_conv=conv2d")
        overrides[key] = yaml.safe_load(value)
    if overrides and args.cost_model:
        parser.error("--set measures an option against B without it; --cost-model has no B and takes no --set")

    from assemblenet.runtime import machine_info

    with tempfile.TemporaryDirectory(prefix="search_speed-") as scratch_name:
        scratch = Path(scratch_name)
        if args.tiny:
            from assemblenet.data import make_synthetic

            args.data = scratch / "data"
            make_synthetic(args.data, num_videos=12, num_classes=3, size=32, num_frames=8, progress=False)
            args.evaluations, args.train_steps, args.repeats = 2, 3, 1
        elif not (args.data / "kinetics_train.csv").is_file():
            parser.error(f"--data {args.data}: no compositional data; make it with "
                         "'assemblenet make-synthetic data/compositional --task compositional'")
        args.data = args.data.resolve()
        if args.cost_model:
            sizes = [(2, 4), (4, 8)] if args.tiny else [(48, 8), (96, 16)]  # (steps, frames)
            rows = []
            for steps, frames in sizes:
                folder = Path(tempfile.mkdtemp(prefix="cost-", dir=scratch))
                data = args.data if args.tiny else compositional_data(args.data, frames, scratch)
                spec = {"data": str(data), "tiny": args.tiny, "run_dir": str(folder), "steps": steps,
                        "frames": frames, "repeats": 1 if args.tiny else 2}
                rows.append(run_child(REPO, "cost", spec, cwd=folder))
            result = {"benchmark": "search_speed --cost-model", "machine": machine_info(), "note": args.note,
                      "tiny": args.tiny, "sizes": rows}
            print(json.dumps(result, indent=1))
            if args.json:
                from assemblenet.fileio import atomic_write_json

                atomic_write_json(args.json, result)
            return 0
        trees = {"A": REPO}
        if args.baseline is not None:
            if not (args.baseline / "src" / "assemblenet").is_dir():
                parser.error(f"--baseline {args.baseline}: no src/assemblenet there")
            trees["B"] = args.baseline.resolve()
        rounds: dict[str, list[dict[str, Any]]] = {label: [] for label in trees}
        tree_overrides = {label: (overrides if label == "A" else {}) for label in trees}
        start = time.time()
        for k in range(args.repeats):
            order = list(trees) if k % 2 == 0 else list(reversed(trees))  # A B, B A, A B, ...
            for label in order:
                print(f"round {k + 1}/{args.repeats}: {label} ({trees[label]})", file=sys.stderr, flush=True)
                rounds[label].append(measure_tree(trees[label], args, scratch, label, tree_overrides[label]))
        profiles = {}
        if args.profile_top:
            for label, tree in trees.items():
                folder = Path(tempfile.mkdtemp(prefix=f"profile-{label}-", dir=scratch))
                spec = {"data": str(args.data), "tiny": args.tiny, "run_dir": str(folder / "random-seed0"),
                        "evaluations": args.evaluations, "set": tree_overrides[label]}
                profiles[label] = run_child(tree, "proxy", spec, profile_top=args.profile_top, cwd=folder)
    result: dict[str, Any] = {
        "benchmark": "search_speed", "machine": machine_info(), "note": args.note, "tiny": args.tiny,
        "trees": {label: str(tree) for label, tree in trees.items()},
        "settings": {"search_config": str(SEARCH_CONFIG.relative_to(REPO)),
                     "train_config": str(TRAIN_CONFIG.relative_to(REPO)), "evaluations": args.evaluations,
                     "train_steps": args.train_steps, "repeats": args.repeats, "workers": 1, "torch_threads": 1,
                     "data": str(args.data), "overrides": tree_overrides},
        "results": {label: summarise(r) for label, r in rounds.items()},
        "profiles": profiles, "wall_s": time.time() - start,
    }
    if "B" in result["results"]:
        a, b = result["results"]["A"], result["results"]["B"]
        keys = [k for k in ("proxy_new_evaluations_per_hour", "proxy_resumed_evaluations_per_hour",
                            "train_steps_per_s") if k in a]
        result["ratios_A_over_B"] = {key: a[key] / b[key] for key in keys}
        result["same_results"] = {key: a[key] == b[key] for key in ("fitness", "train_metrics") if key in a}
        if "fitness" in a:  # how far apart, when an option changes the numbers
            result["fitness_max_abs_difference"] = max(abs(x - y) for x, y in zip(a["fitness"], b["fitness"]))
    text = render(result)
    print(text)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        from assemblenet.fileio import atomic_write_json

        atomic_write_json(args.json, result)
    if args.write_readme:
        from assemblenet.fileio import replace_markdown_section

        replace_markdown_section(REPO / "benchmarks" / "README.md", text)
    return 0


def render(result: dict[str, Any]) -> str:
    """The ``## Search speed`` section of benchmarks/README.md."""
    machine = result["machine"]
    settings = result["settings"]
    command = "python benchmarks/search_speed.py" + (f" --baseline {result['trees']['B']}" if "B" in result["trees"]
                                                     else "")
    a_overrides = settings.get("overrides", {}).get("A", {})
    shown_overrides = " ".join(f"{key}={value}" for key, value in a_overrides.items())
    command += "".join(f" --set {key}={value}" for key, value in a_overrides.items())
    # A measurement of an option gets its own section, beside the plain A/B of two trees.
    lines = ["## Search speed" + (f" with {shown_overrides} in A" if shown_overrides else ""), "",
             f"Measured by `{command}` "
             f"({settings['repeats']} interleaved rounds per tree, medians) on {_machine_line(machine)}."
             + (f" {result['note']}" if result["note"] else ""), "",
             f"Proxy: `{settings['search_config']}`, random strategy, seed 0, one worker, 1 thread; a new search of "
             f"{settings['evaluations']} evaluations, then the same folder resumed to {2 * settings['evaluations']}. "
             f"Training: `{settings['train_config']}`, {settings['train_steps']} steps, no output folder.", "",
             "| tree | new search (evaluations/h) | resumed search (evaluations/h) | training (steps/s) |",
             "|---|---:|---:|---:|"]
    def cell(row: dict[str, Any], key: str, form: str) -> str:
        return format(row[key], form) if key in row else "-"

    for label, row in result["results"].items():
        marked = "".join(f" {k}={v}" for k, v in settings.get("overrides", {}).get(label, {}).items())
        lines.append(f"| {label} `{result['trees'][label]}`{marked} | "
                     f"{cell(row, 'proxy_new_evaluations_per_hour', '.0f')} | "
                     f"{cell(row, 'proxy_resumed_evaluations_per_hour', '.0f')} | "
                     f"{cell(row, 'train_steps_per_s', '.2f')} |")
    if "ratios_A_over_B" in result:
        ratios = result["ratios_A_over_B"]
        lines.append("| A / B | " + " | ".join(
            f"{ratios[k]:.2f}x" if k in ratios else "-" for k in (
                "proxy_new_evaluations_per_hour", "proxy_resumed_evaluations_per_hour", "train_steps_per_s")) + " |")
        same = result["same_results"]
        shown = {"fitness": "same fitness for every evaluation", "train_metrics": "same final training metrics"}
        lines += ["", "In A and B: " + "; ".join(f"{shown[k]}: {'yes' if v else 'NO'}" for k, v in same.items())
                  + (f" (largest fitness difference {result['fitness_max_abs_difference']:.4f})"
                     if not same.get("fitness", True) else "") + "."]
    for label, profile in result.get("profiles", {}).items():
        parts = ", ".join(f"{part} {v['share']:.0%}" for part, v in profile["parts"].items())
        lines += ["", f"Profile of {label}'s new search (cProfile, {profile['profiled_wall_s']:.1f} s): {parts}.", "",
                  "| function | calls | own s | cumulative s |", "|---|---:|---:|---:|"]
        for row in profile["top_own_time"][:12]:
            lines.append(f"| `{row['function']}` | {row['calls']} | {row['own_s']:.2f} | {row['cumulative_s']:.2f} |")
    return "\n".join(lines) + "\n"


def _machine_line(machine: dict[str, Any]) -> str:
    keys = ("signature", "python", "torch")
    shown = [f"{k} {machine[k]}" for k in keys if k in machine]
    return ", ".join(shown) if shown else json.dumps(machine)


if __name__ == "__main__":
    sys.exit(main())
