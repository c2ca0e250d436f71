"""Exploratory figures quoted in docs/search.md beside issue 27's confirmatory results, from reanalysis/study.json
(not declared before the study ran; uncorrected). Run from the repository root:

    python docs/search_results/study_confirmatory/reanalysis/exploratory.py

writes reanalysis/exploratory.json: per hypothesis the signs of the paired differences and the per-task mean
differences, and for the comparisons with a wiring the two-sided stratified permutation p-value (the study's own
test and seed, both directions), which the one-sided confirmatory test cannot give.
"""

from __future__ import annotations

import json
import statistics
import zlib
from pathlib import Path

from assemblenet.fileio import atomic_write_json
from assemblenet.search.study import load_study_config
from assemblenet.search.study.tasks import stratified_p_value

HERE = Path(__file__).resolve().parent


def main() -> None:
    analysis = json.loads((HERE / "study.json").read_text())
    config = load_study_config("configs/search/study_confirmatory.yaml")
    samples = max(2000, config.bootstrap_samples)  # as the study's stratified members use
    out: dict[str, dict] = {}
    for m in analysis["confirmatory"]["members"]:
        if m["alternative"] == "equivalent":
            continue
        row: dict = {}
        if m["paired"]:
            d = m["differences"]
            row["pairs"] = {"positive": sum(v > 0 for v in d.values()), "negative": sum(v < 0 for v in d.values()),
                            "tied": sum(v == 0 for v in d.values())}
            tasks = sorted({k.split("/")[0] for k in d})
            row["per_task_mean_difference"] = {t: statistics.fmean(v for k, v in d.items() if k.startswith(t + "/"))
                                               for t in tasks}
        else:
            strata = {t: (r["values_a"], r["values_b"]) for t, r in m["per_task"].items()}
            seed = zlib.crc32(f"cross-task-{m['member']}".encode())  # the study's own seed for this member
            row["per_task_mean_difference"] = {t: r["mean_a"] - r["mean_b"] for t, r in m["per_task"].items()}
            row["two_sided_p"] = stratified_p_value(strata, "two-sided", samples=samples, seed=seed)
            row["one_sided_p"] = {side: stratified_p_value(strata, side, samples=samples, seed=seed)
                                  for side in ("greater", "less")}
            row["range_b"] = {t: [min(r["values_b"]), max(r["values_b"])] for t, r in m["per_task"].items()}
        out[m["member"]] = row
    atomic_write_json(HERE / "exploratory.json", out, indent=1)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
