"""Exploratory figures quoted in docs/search.md beside issue 27's proxy-validity result, from the reanalysis's
proxy_validity/proxy_validity.json and the stage's records in ../proxy_validity/ (graphs/, proxy/). Nothing here
was declared before the stage ran (the stage declares no hypotheses); no test is corrected. Run from the
repository root:

    python docs/search_results/proxy_validity/reanalysis/exploratory.py

writes exploratory.json beside this script:

- ``sampled_only``: the stage's own statistics (``validity_statistics``, same formulas, resamples and seed) over
  the 50 graphs drawn from the search space, without the 4 fixed wirings: the population a search moves in;
- ``attenuation_ceiling``: sqrt(rel_proxy * rel_final), the largest Pearson r the seed means could show if the
  graphs' true proxy and final scores agreed perfectly (the reliabilities are the stage's own, two-way
  consistency, over all graphs and over the sampled ones; none where one is not positive), and the Kendall tau
  that r corresponds to for normal scores, (2 / pi) arcsin(r) (Greiner's relation: an approximation, the scores
  are not normal);
- ``proxy_top1``: the proxy's top-1 on the validation split (its fitness is the mAP; chance is 1/16), mean over
  the 3 proxy seeds: each fixed wiring's, and the sampled graphs' median and range;
- ``spread``: per side, the SD of the graphs' true scores (infinitely many seeds), sqrt((MSR - MSE) / k) (0 when
  negative), against the SD one seed adds after the seeds' common shifts, sqrt(MSE), over all graphs and over
  the sampled ones: how far apart the graphs are against how noisy one score is;
- ``fixed_wirings``: each wiring's proxy and final means and their ranks among all graphs (1 = highest), and how
  many sampled graphs score above it on each side;
- ``density``: Spearman rho (scipy, two-sided p) of the number of connections (edges between nodes, stems
  included) and of blocks with each side's mean, over all graphs and over the sampled ones: a measured candidate
  reason for the ranking, not a test of one.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from scipy import stats as sps

from assemblenet.fileio import atomic_write_json
from assemblenet.graph.io import load_graph
from assemblenet.search.study.proxy_validity import validity_statistics

HERE = Path(__file__).resolve().parent
RECORDS = HERE.parent / "proxy_validity"  # the stage's own folder: graphs/ and proxy/


def _rank(values: np.ndarray, index: int) -> int:
    return int(1 + np.sum(values > values[index]))


def _spearman(x: np.ndarray, y: np.ndarray) -> dict[str, float] | None:
    if not np.ptp(x) or not np.ptp(y):  # e.g. every sampled graph has the same number of blocks
        return None
    result = sps.spearmanr(x, y)
    return {"rho": float(result.statistic), "p": float(result.pvalue)}


def main() -> None:
    data = json.loads((HERE / "proxy_validity" / "proxy_validity.json").read_text())
    stats = data["statistics"]
    rows = data["rows"]
    sampled = [r for r in rows if r["kind"] == "sampled"]
    sampled_stats = validity_statistics([r["proxy"] for r in sampled], [r["final"] for r in sampled],
                                        samples=stats["bootstrap_samples"], confidence=stats["confidence"])

    def ceiling(s: dict) -> dict[str, float] | None:
        product = s["reliability"]["proxy"]["mean_k"] * s["reliability"]["final"]["mean_k"]
        # A reliability at or below 0 (seed spread as large as the spread between graphs) leaves no ceiling.
        if not s["reliability"]["proxy"]["mean_k"] > 0 < s["reliability"]["final"]["mean_k"]:
            return None
        return {"pearson_r": math.sqrt(product), "kendall_tau_normal": 2 / math.pi * math.asin(math.sqrt(product))}

    def spread(s: dict) -> dict[str, dict[str, float]]:
        out = {}
        for side in ("proxy", "final"):
            rel = s["reliability"][side]
            out[side] = {"graph_sd": math.sqrt(max(0.0, (rel["msr"] - rel["mse"]) / rel["seeds"])),
                         "seed_sd": math.sqrt(rel["mse"])}
        return out

    proxy = np.array([np.mean(r["proxy"]) for r in rows])
    final = np.array([np.mean(r["final"]) for r in rows])
    is_sampled = np.array([r["kind"] == "sampled" for r in rows])
    fixed = {}
    for i, r in enumerate(rows):
        if r["kind"] != "fixed":
            continue
        fixed[r["label"]] = {
            "proxy_mean": float(proxy[i]), "final_mean": float(final[i]),
            "proxy_rank": _rank(proxy, i), "final_rank": _rank(final, i), "of": len(rows),
            "sampled_above_on_proxy": int(np.sum(proxy[is_sampled] > proxy[i])),
            "sampled_above_on_final": int(np.sum(final[is_sampled] > final[i])),
        }
    graph_files = {p.name.rsplit("-", 1)[0]: p for p in (RECORDS / "graphs").glob("*.yaml")}
    edges, blocks = [], []
    for r in rows:
        graph = load_graph(graph_files[r["label"]], allow_dead_nodes=True)
        edges.append(len(graph.edges()))
        blocks.append(len(graph.block_indices))
    edges_a, blocks_a = np.array(edges, dtype=float), np.array(blocks, dtype=float)
    density = {}
    for name, mask in (("all", np.ones(len(rows), dtype=bool)), ("sampled", is_sampled)):
        density[name] = {
            "graphs": int(mask.sum()),
            "blocks": {"min": int(blocks_a[mask].min()), "max": int(blocks_a[mask].max())},
            "connections": {"min": int(edges_a[mask].min()), "median": float(np.median(edges_a[mask])),
                            "max": int(edges_a[mask].max())},
            "connections_vs_proxy": _spearman(edges_a[mask], proxy[mask]),
            "connections_vs_final": _spearman(edges_a[mask], final[mask]),
            "blocks_vs_proxy": _spearman(blocks_a[mask], proxy[mask]),
            "blocks_vs_final": _spearman(blocks_a[mask], final[mask]),
        }
    top1 = {}
    for r in rows:
        folder = next((RECORDS / "proxy").glob(f"{r['label']}-*"))
        top1[r["label"]] = float(np.mean([json.loads(f.read_text())["metrics"]["top1"]
                                          for f in sorted(folder.glob("seed*.json"))]))
    sampled_top1 = [top1[r["label"]] for r in sampled]
    proxy_top1 = {"chance": 1 / 16, "sampled": {"median": float(np.median(sampled_top1)), "min": min(sampled_top1),
                                                 "max": max(sampled_top1)},
                  **{r["label"]: top1[r["label"]] for r in rows if r["kind"] == "fixed"}}
    density["fixed_connections"] = {r["label"]: edges[i] for i, r in enumerate(rows) if r["kind"] == "fixed"}
    out = {
        "sampled_only": sampled_stats,
        "attenuation_ceiling": {"all": ceiling(stats), "sampled": ceiling(sampled_stats)},
        "spread": {"all": spread(stats), "sampled": spread(sampled_stats)},
        "fixed_wirings": fixed,
        "proxy_top1": proxy_top1,
        "density": density,
    }
    atomic_write_json(HERE / "exploratory.json", out, indent=1)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
