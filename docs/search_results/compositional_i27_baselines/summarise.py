"""Summarise issue 27's exploratory run of the fixed wirings under the new compositional protocol.

Reads the study folder the command in README.md wrote (one ``final_metrics.json`` per wiring and training seed)
and writes ``fixed_wirings.json`` and ``fixed_wirings.png`` next to this file:

    python docs/search_results/compositional_i27_baselines/summarise.py runs/study/compositional_i27_baselines
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy import stats  # noqa: E402

from assemblenet import fileio  # noqa: E402
from assemblenet.runtime import machine_info  # noqa: E402
from assemblenet.search.stats import Interval, t_interval  # noqa: E402

WIRINGS = ("asn50", "late_fusion", "rgb_only", "flow_only")
HERE = Path(__file__).resolve().parent


def _bounds(interval: Interval | None) -> list[float]:
    """The 95% Student-t interval of the mean over training seeds, as [low, high]."""
    assert interval is not None, "a wiring needs at least two training seeds"
    return [interval.low, interval.high]


def main(study: Path) -> None:
    rows = {}
    for wiring in WIRINGS:
        runs = sorted((study / "baselines" / wiring).glob("*/final_metrics.json"))
        scores = np.array([json.loads(p.read_text())["metrics"]["top1"] for p in runs])
        rows[wiring] = {"runs": [p.parent.name for p in runs], "top1": scores.tolist(), "n": len(scores),
                        "mean": float(scores.mean()), "std": float(scores.std(ddof=1)),
                        "ci95_t": _bounds(t_interval(scores)), "min": float(scores.min()), "max": float(scores.max())}
    asn50, late = (np.array(rows[w]["top1"]) for w in ("asn50", "late_fusion"))
    welch = stats.ttest_ind(asn50, late, equal_var=False)
    result = {
        "what": "test top-1 of each fixed wiring, 1200 steps at lr 0.05, 5 training seeds, compositional task "
                "(make-synthetic seed 0, 8-frame videos, the one clip is the whole video); exploratory",
        "command": "assemblenet search-study configs/search/study_compositional.yaml --stage baselines "
                   "--no-progress --set output_dir=runs/study/compositional_i27_baselines --set baselines.seeds=5 "
                   "--set retrain.recipe=s1200-lr0.05",
        "commit": "85548af",
        "chance": 1 / 16,
        "wirings": rows,
        "exploratory_asn50_minus_late_fusion": {
            "difference": float(asn50.mean() - late.mean()),
            "welch_ci95": [float(v) for v in welch.confidence_interval(0.95)],
            "welch_p_two_sided": float(welch.pvalue),
        },
        "summarised_on": machine_info(),
    }
    fileio.atomic_write_text(HERE / "fixed_wirings.json", json.dumps(result, indent=1) + "\n")

    fig, ax = plt.subplots(figsize=(6, 3.5))
    for x, wiring in enumerate(WIRINGS):
        row = rows[wiring]
        ax.scatter([x] * row["n"], row["top1"], color="tab:blue", alpha=0.7, zorder=3)
        ax.errorbar(x + 0.15, row["mean"], yerr=[[row["mean"] - row["ci95_t"][0]], [row["ci95_t"][1] - row["mean"]]],
                    fmt="o", color="black", capsize=4)
    ax.axhline(1 / 16, color="grey", linestyle=":", label="chance")
    ax.set_xticks(range(len(WIRINGS)), WIRINGS)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("test top-1")
    ax.set_title("Fixed wirings, 5 training seeds (dots), mean and 95% t interval")
    ax.legend(loc="lower left")
    fig.tight_layout()
    fig.savefig(HERE / "fixed_wirings.png", dpi=110)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
