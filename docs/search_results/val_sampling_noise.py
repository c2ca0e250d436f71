"""How much of the seed-to-seed spread of a score is the evaluation set's sampling noise.

For every fixed wiring of a study (trained with several seeds, predictions saved on the 240 test videos), the
videos are resampled with replacement; the standard deviation over resamples of the *difference* between two
seeds' scores is the part of that difference a finite evaluation set alone would produce.

    python docs/search_results/val_sampling_noise.py runs/study/compositional_quiet \\
        --data data/compositional --output docs/search_results/val_sampling_noise.json
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
from pathlib import Path

import numpy as np


def average_precision(scores: np.ndarray, positive: np.ndarray) -> float:
    order = np.argsort(-scores, kind="stable")
    hits = positive[order]
    if not hits.any():
        return float("nan")
    precision_at_hits = np.cumsum(hits)[hits] / (np.flatnonzero(hits) + 1)
    return float(precision_at_hits.mean())


def scores_of(probabilities: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """(top-1, mean AP over classes) of one set of predictions."""
    top1 = float((probabilities.argmax(1) == labels).mean())
    aps = [average_precision(probabilities[:, c], labels == c) for c in range(probabilities.shape[1])]
    return top1, float(np.nanmean(aps))


def read_predictions(folder: Path, label_of: dict[str, int]) -> tuple[np.ndarray, np.ndarray]:
    names, rows = [], []
    for line in (folder / "eval" / "predictions.txt").read_text().splitlines():
        name, *values = line.split()
        names.append(name)
        rows.append([float(v) for v in values])
    return np.array(rows), np.array([label_of[n] for n in names])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("study", type=Path)
    parser.add_argument("--data", type=Path, default=Path("data/compositional"))
    parser.add_argument("--split", default="test")
    parser.add_argument("--resamples", type=int, default=2000)
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    classes = (args.data / "classes.txt").read_text().split()
    with open(args.data / f"kinetics_{args.split}.csv", newline="") as handle:
        label_of = {Path(row["path"]).stem: classes.index(row["label"]) for row in csv.DictReader(handle)}
    rng = np.random.default_rng(0)
    out: dict[str, list[dict[str, float]]] = {}
    for wiring in sorted(p for p in (args.study / "baselines").iterdir() if p.is_dir()):
        runs = [read_predictions(seed_dir, label_of) for seed_dir in sorted(wiring.glob("seed*"))]
        n = len(runs[0][1])
        samples = [rng.integers(0, n, n) for _ in range(args.resamples)]
        boot = np.array([[scores_of(p[idx], y[idx]) for p, y in runs] for idx in samples])  # [R, seeds, 2]
        full = [scores_of(p, y) for p, y in runs]
        out[wiring.name] = []
        for a, b in itertools.combinations(range(len(runs)), 2):
            diff = boot[:, a] - boot[:, b]
            out[wiring.name].append({
                "seeds": [a, b], "observed_difference_top1": full[a][0] - full[b][0],
                "observed_difference_map": full[a][1] - full[b][1],
                "sampling_sd_of_difference_top1": float(diff[:, 0].std()),
                "sampling_sd_of_difference_map": float(diff[:, 1].std()),
            })
            row = out[wiring.name][-1]
            print(f"{wiring.name} seeds {a}-{b}: difference top-1 {row['observed_difference_top1']:+.3f} "
                  f"map {row['observed_difference_map']:+.3f}; sampling sd of the difference top-1 "
                  f"{row['sampling_sd_of_difference_top1']:.3f} map {row['sampling_sd_of_difference_map']:.3f}")
    sds = [row["sampling_sd_of_difference_map"] for rows in out.values() for row in rows]
    summary = {"videos": n, "resamples": args.resamples, "mean_sampling_sd_of_difference_map": float(np.mean(sds)),
               "pairs": out}
    print(f"mean sampling sd of a mAP difference between two seeds on {n} videos: {np.mean(sds):.4f}")
    if args.output:
        args.output.write_text(json.dumps(summary, indent=1) + "\n")


if __name__ == "__main__":
    main()
