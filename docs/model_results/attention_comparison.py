"""Summarise the AssembleNet vs AssembleNet++ (self / peer attention) comparison runs into JSON + PNG + markdown.

The runs (3 seeds x 3 attention modes, the recipe of configs/compositional.yaml, scored on the test split):

    for seed in 0 1 2; do for mode in null self peer; do
      assemblenet train configs/compositional.yaml --set seed=$seed --set model.attention_mode=$mode \\
        --set data.val.split=test --output runs/attention_cmp/${mode}_seed$seed
    done; done
    python docs/model_results/attention_comparison.py runs/attention_cmp

Each model's test top-1 gets a 95% interval from a two-level bootstrap (the seeds, then the 240 test videos of
each; a top-1 of k/240 is exactly k hits, so the committed per-seed figures determine it), and the table names a
winner only when one interval lies above the others'. ``--from-json`` rebuilds the table and plot from the
committed JSON without the run folders.
"""

from __future__ import annotations

import json
import re
import statistics
import sys
from pathlib import Path

from assemblenet.fileio import atomic_path, atomic_write_json, atomic_write_text

MODES = {"null": "AssembleNet (no attention)", "self": "AssembleNet++, self attention",
         "peer": "AssembleNet++, peer attention"}
LINE = re.compile(r"finished (\d+) steps; validation: (.*)$")


def final_metrics(log: Path) -> dict[str, float]:
    for line in reversed(log.read_text().splitlines()):
        match = LINE.search(line)
        if match:
            return {k: float(v) for k, v in (item.split("=") for item in match.group(2).split(", "))}
    raise SystemExit(f"{log}: no final validation line; did the run finish?")


TEST_VIDEOS = 240


def top1_interval(top1_per_seed: list[float]):
    from assemblenet.search.stats import bootstrap_nested_ci

    hits = [[1.0] * round(v * TEST_VIDEOS) + [0.0] * (TEST_VIDEOS - round(v * TEST_VIDEOS)) for v in top1_per_seed]
    return bootstrap_nested_ci(hits, samples=4000, seed=0)


def main(root: str) -> int:
    out = Path(__file__).resolve().parent
    if root == "--from-json":
        rows = json.loads((out / "attention_comparison.json").read_text())["runs"]
    else:
        runs = Path(root)
        rows = {}
        for mode in MODES:
            per_seed = {}
            for log in sorted(runs.glob(f"{mode}_seed*.log")):
                per_seed[log.stem.split("seed")[1]] = final_metrics(log)
            rows[mode] = per_seed
    from assemblenet.search.stats import compare_intervals, format_interval

    summary = {}
    for mode, per_seed in rows.items():
        top1 = [m["top1"] for m in per_seed.values()]
        mean_ap = [m["map"] for m in per_seed.values()]
        summary[mode] = {"seeds": sorted(per_seed), "top1": top1, "map": mean_ap,
                         "top1_mean": statistics.mean(top1),
                         "top1_std": statistics.stdev(top1) if len(top1) > 1 else 0.0,
                         "map_mean": statistics.mean(mean_ap),
                         "map_std": statistics.stdev(mean_ap) if len(mean_ap) > 1 else 0.0}
        summary[mode]["top1_ci95"] = top1_interval(top1).to_list()
    intervals = {MODES[mode]: top1_interval(s["top1"]) for mode, s in summary.items()}
    verdict = compare_intervals(intervals).sentence("test top-1")
    atomic_write_json(out / "attention_comparison.json", {"runs": rows, "summary": summary, "verdict": verdict,
                                                           "command": __doc__.split("\n\n")[1].strip()})
    lines = ["| model | test top-1 per seed | mean ± std | 95% interval (seeds and test videos) "
             "| test mAP mean ± std |",
             "|---|---|---|---|---|"]
    for mode, s in summary.items():
        seeds = ", ".join(f"{v:.3f}" for v in s["top1"])
        lines.append(f"| {MODES[mode]} | {seeds} | {s['top1_mean']:.3f} ± {s['top1_std']:.3f} | "
                     f"{format_interval(intervals[MODES[mode]])} | {s['map_mean']:.3f} ± {s['map_std']:.3f} |")
    lines += ["", verdict[0].upper() + verdict[1:] + "."]
    atomic_write_text(out / "attention_comparison.md", "\n".join(lines) + "\n")
    print("\n".join(lines))

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    for x, (mode, s) in enumerate(summary.items()):
        ax.scatter([x] * len(s["top1"]), s["top1"], color="C0", alpha=0.6)
        ax.errorbar(x + 0.15, s["top1_mean"], yerr=s["top1_std"], fmt="o", color="C3", capsize=4)
    ax.set_xticks(range(len(summary)), [MODES[m].replace(", ", "\n") for m in summary])
    ax.axhline(1 / 16, color="grey", lw=0.8, ls="--", label="chance (1/16)")
    ax.set_ylabel("test top-1 (240 videos)")
    ax.set_title("asn50 wiring, depth 26, x0.125, 600 steps; 3 seeds")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    with atomic_path(out / "attention_comparison.png") as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1] if len(sys.argv) > 1 else "runs/attention_cmp"))
