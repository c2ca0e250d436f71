"""Exploratory: the 240-step proxy (lr 0.05) against issue 27's 48-step proxy (lr 0.1) on the same 54 graphs and
the very same final trainings (the follow-up copied them in). Not declared before it ran; no test is corrected.
Run from the repository root:

    python docs/search_results/proxy_validity_s240/compare.py

reads this folder's proxy_validity/proxy_validity.json and ../proxy_validity/reanalysis/proxy_validity/
proxy_validity.json (the 48-step proxy, analysed with the two-way reliability) and writes compare.json:

- per proxy and per population (all 54 graphs; the 50 sampled): the stage's statistics (``validity_statistics``,
  same formulas and resamples), the spread of the graphs' true proxy scores against one seed's noise
  (sqrt((MSR - MSE) / k), 0 when negative, against sqrt(MSE)), and the fixed wirings' proxy ranks;
- ``difference``: Kendall tau and Spearman rho of the 240-step proxy minus those of the 48-step one, graph by
  graph paired (both computed on the same bootstrap resample of graphs: ``scipy.stats.bootstrap`` over graph
  indices, percentile interval), with the share of resamples in which the longer proxy's tau is higher;
- the Kendall tau between the two proxies' graph means (do they order graphs alike?).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from scipy import stats as sps

from assemblenet.fileio import atomic_write_json
from assemblenet.search.study.proxy_validity import validity_statistics

HERE = Path(__file__).resolve().parent
LONG = HERE / "proxy_validity" / "proxy_validity.json"
SHORT = HERE.parent / "proxy_validity" / "reanalysis" / "proxy_validity" / "proxy_validity.json"
SAMPLES = 10000


def _load(path: Path) -> dict[str, dict]:
    return {r["graph_hash"]: r for r in json.loads(path.read_text())["rows"]}


def _ranks(rows: list[dict], proxy_means: np.ndarray) -> dict[str, int]:
    return {r["label"]: int(1 + np.sum(proxy_means > proxy_means[i])) for i, r in enumerate(rows)
            if r["kind"] == "fixed"}


def main() -> None:
    short, long = _load(SHORT), _load(LONG)
    if set(short) != set(long):
        raise SystemExit(f"the two stages scored different graphs: {sorted(set(short) ^ set(long))}")
    order = [r["graph_hash"] for r in json.loads(LONG.read_text())["rows"]]  # the stage's order: its resamples
    for h in order:  # the comparison rests on the final scores being the same trainings
        if short[h]["final"] != long[h]["final"]:
            raise SystemExit(f"{short[h]['label']}: the final scores differ between the two stages")
    rows = [long[h] for h in order]
    final = np.array([r["final"] for r in rows], dtype=float)
    proxies = {"s48_lr0.1": np.array([short[h]["proxy"] for h in order], dtype=float),
               "s240_lr0.05": np.array([r["proxy"] for r in rows], dtype=float)}
    sampled = np.array([r["kind"] == "sampled" for r in rows])
    out: dict = {"graphs": len(rows), "proxies": {}, "difference": {}}
    for population, mask in (("all", np.ones(len(rows), dtype=bool)), ("sampled", sampled)):
        for name, table in proxies.items():
            stats = validity_statistics(table[mask], final[mask], samples=SAMPLES, seed=0)
            entry = out["proxies"].setdefault(name, {})
            entry[population] = stats
            rel = stats["reliability"]["proxy"]
            entry.setdefault("spread", {})[population] = {
                "graph_sd": float(np.sqrt(max(0.0, (rel["msr"] - rel["mse"]) / rel["seeds"]))),
                "seed_sd": float(np.sqrt(rel["mse"]))}
            if population == "all":
                entry["fixed_proxy_rank_of_54"] = _ranks(rows, table.mean(axis=1))
                entry["fixed_proxy_mean"] = {r["label"]: float(table[i].mean()) for i, r in enumerate(rows)
                                             if r["kind"] == "fixed"}
                entry["sampled_proxy_mean_range"] = [float(table[sampled].mean(axis=1).min()),
                                                     float(table[sampled].mean(axis=1).max())]
        x_short = proxies["s48_lr0.1"][mask].mean(axis=1)
        x_long = proxies["s240_lr0.05"][mask].mean(axis=1)
        y = final[mask].mean(axis=1)

        def differences(index: np.ndarray) -> list[float]:
            index = np.asarray(index, dtype=int)
            return [sps.kendalltau(x_long[index], y[index]).statistic
                    - sps.kendalltau(x_short[index], y[index]).statistic,
                    sps.spearmanr(x_long[index], y[index]).statistic
                    - sps.spearmanr(x_short[index], y[index]).statistic]

        result = sps.bootstrap((np.arange(int(mask.sum())),), differences, vectorized=False, n_resamples=SAMPLES,
                               method="percentile", rng=np.random.default_rng(0))
        draws = np.asarray(result.bootstrap_distribution)
        estimate = differences(np.arange(int(mask.sum())))
        out["difference"][population] = {
            "kendall_tau": {"estimate": float(estimate[0]), "ci": [float(v) for v in
                                                                  np.nanquantile(draws[0], [0.025, 0.975])],
                            "share_higher": float(np.mean(draws[0] > 0))},
            "spearman_rho": {"estimate": float(estimate[1]), "ci": [float(v) for v in
                                                                   np.nanquantile(draws[1], [0.025, 0.975])],
                             "share_higher": float(np.mean(draws[1] > 0))},
            "proxies_agree_kendall_tau": float(sps.kendalltau(x_short, x_long).statistic),
        }
    atomic_write_json(HERE / "compare.json", out, indent=1)
    print(json.dumps({"difference": out["difference"],
                      **{name: {pop: {k: e[pop][k] for k in ("kendall_tau", "spearman_rho", "pearson_r_corrected")}
                                for pop in ("all", "sampled")} | {"ranks": e["fixed_proxy_rank_of_54"]}
                         for name, e in out["proxies"].items()}}, indent=1))


if __name__ == "__main__":
    main()
