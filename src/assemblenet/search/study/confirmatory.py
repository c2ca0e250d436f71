"""The confirmatory part of a study: the pre-registered hypotheses of ``hypotheses.confirmatory`` (see
:class:`~assemblenet.search.study.config.Hypothesis`), tested on exactly their declared endpoint, comparison, test
and alternative, with the declared correction over the whole family.

The gate: a hypothesis is evaluated only when every value it needs exists (every run of each strategy finished,
and for ``test_score`` its result retrained; every training seed of a fixed wiring trained). Until then its entry
holds counts only: no estimate, no interval, no p-value, so that no interim result can be read, published or acted
upon. The correction (Holm: adjusted p-values that depend on every member's p-value) and the decisions wait for the
whole family.

The data of each side of a comparison is an :class:`ArmData`: values keyed by the unit that pairs them (a search
seed for a strategy; a training seed for a fixed wiring, which pairs with nothing). Two strategies pair by search
seed: their runs with one seed share the initial population. A study that adds units (e.g. tasks) keys its values
by ``(task, seed)``; the rest is unchanged. Pure functions, no I/O.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from assemblenet.config_schema import to_plain
from assemblenet.search import stats
from assemblenet.search.history import SearchRun
from assemblenet.search.study.config import (
    CONFIDENCE,
    RESCORED_CHOICE,
    SINGLE_BEST_CHOICE,
    Arm,
    Hypothesis,
    StudyConfig,
)

PENDING = "pending"
COMPLETE = "complete"


@dataclass(frozen=True)
class ArmData:
    """One side of a comparison: ``values`` by pairing unit, and how many it ``needs`` before any test is run."""

    label: str
    values: Mapping[Any, float]  # by pairing unit: a search seed, a (task, seed), a training seed
    needs: int
    unit: str  # what one value is: "runs" or "training seeds"

    @property
    def complete(self) -> bool:
        return len(self.values) >= self.needs

    def progress(self) -> dict[str, Any]:
        return {"arm": self.label, "have": len(self.values), "need": self.needs, "unit": self.unit}


def strategy_values(strategy: str, endpoint: str, runs: Sequence[SearchRun],
                    retrain_entries: Sequence[Mapping[str, Any]] = ()) -> dict[int, float]:
    """A strategy's finished values of ``endpoint``, by search seed (a run that has not finished, or whose result
    is not retrained yet for ``test_score``, has none)."""
    out: dict[int, float] = {}
    entries = {(str(e["run"]), str(e.get("choice", SINGLE_BEST_CHOICE))): e for e in retrain_entries}
    for run in runs:
        if run.strategy != strategy or not run.complete:
            continue
        value: Any = None
        if endpoint == "final_best":
            value = run.final_best
        elif endpoint == "rescored_mean":
            value = (run.rescored_summary or {}).get("mean")
        elif endpoint == "test_score":
            choice = RESCORED_CHOICE if run.rescored is not None else SINGLE_BEST_CHOICE
            entry = entries.get((run.label, choice))
            value = None if entry is None else entry.get("score")
        else:
            raise ValueError(f"unknown endpoint {endpoint!r}")
        if value is not None:
            out[run.seed] = float(value)
    return out


def arm_data(arm: Arm, endpoint: str, config: StudyConfig, runs: Sequence[SearchRun],
             retrain_entries: Sequence[Mapping[str, Any]] = (),
             wiring_scores: Mapping[str, Mapping[int, float]] | None = None) -> ArmData:
    """What a hypothesis has of one arm so far (``wiring_scores``: each fixed wiring's test score by training seed,
    from the baselines stage)."""
    if arm.strategy is not None:
        return ArmData(arm.label, strategy_values(arm.strategy, endpoint, runs, retrain_entries), len(config.seeds),
                       "runs")
    scores = dict((wiring_scores or {}).get(str(arm.wiring), {}))
    wanted = set(config.baseline_seeds)
    return ArmData(arm.label, {k: v for k, v in scores.items() if k in wanted}, len(wanted), "training seeds")


def _seed(text: str) -> int:
    return zlib.crc32(text.encode())


def evaluate_hypothesis(hypothesis: Hypothesis, a: ArmData, b: ArmData, *,
                        samples: int = 10000) -> list[dict[str, Any]]:
    """The hypothesis's members (its test, and its equivalence test when it declares a margin), each with counts
    only while an arm is incomplete, else with estimate, interval and p-value (uncorrected: see
    :func:`confirmatory_analysis`)."""
    h = hypothesis
    paired = h.comparison.paired
    out = []
    for member, alternative in h.members:
        row: dict[str, Any] = {
            "hypothesis": h.name, "member": member, "endpoint": h.endpoint, "a": a.label, "b": b.label,
            "paired": paired, "test": h.test, "alternative": alternative, "alpha": h.alpha,
            "margin": h.margin if alternative == "equivalent" else None,
            "progress": [a.progress(), b.progress()],
        }
        if not (a.complete and b.complete):
            out.append({**row, "status": PENDING})
            continue
        seed = _seed(f"confirmatory-{member}")
        if paired:
            keys = sorted(set(a.values) & set(b.values), key=str)
            x, y = [a.values[k] for k in keys], [b.values[k] for k in keys]
            interval = stats.paired_bootstrap_ci(x, y, samples=samples, confidence=CONFIDENCE, seed=seed)
            row.update({"n_pairs": len(keys), "pairs": [str(k) for k in keys],
                        "ci_method": "paired percentile bootstrap over seeds"})
        else:
            x, y = list(a.values.values()), list(b.values.values())
            interval = stats.bootstrap_diff_ci(x, y, samples=samples, confidence=CONFIDENCE, seed=seed)
            row.update({"ci_method": "percentile bootstrap, each side resampled"})
        row.update({"n_a": len(x), "n_b": len(y), "values_a": x, "values_b": y, "mean_a": sum(x) / len(x),
                    "mean_b": sum(y) / len(y), "estimate": interval.estimate, "ci95": interval.to_list()})
        if alternative == "equivalent":
            assert h.margin is not None
            tost = stats.equivalence_test(x, y, margin=h.margin, paired=paired, test=h.test, seed=seed)
            row.update({"p_value": tost.p_value, "p_lower": tost.p_lower, "p_upper": tost.p_upper,
                        "exact": tost.exact, "statistic": None})
        else:
            primary = stats.difference_test(x, y, paired=paired, test=h.test, alternative=alternative, seed=seed)
            row.update({"p_value": primary.p_value, "statistic": primary.statistic, "exact": primary.exact})
            # a second view, never the decision: the rank test that goes with the design
            second = "wilcoxon" if paired else "mann_whitney"
            if h.test == second:
                second = "permutation"
            view = stats.difference_test(x, y, paired=paired, test=second, alternative=alternative, seed=seed)
            row["second_view"] = {"test": second, "p_value": view.p_value, "statistic": view.statistic}
        out.append({**row, "status": COMPLETE})
    return out


def confirmatory_analysis(config: StudyConfig, runs: Sequence[SearchRun],
                          retrain_entries: Sequence[Mapping[str, Any]] = (),
                          wiring_scores: Mapping[str, Mapping[int, float]] | None = None) -> dict[str, Any] | None:
    """The ``confirmatory`` section of ``study.json`` (None without declared hypotheses): every member of the
    family, and once the whole family is complete, the corrected p-values and decisions."""
    family = config.hypotheses.confirmatory
    if not family:
        return None
    members: list[dict[str, Any]] = []
    for h in family:
        a = arm_data(h.comparison.a, h.endpoint, config, runs, retrain_entries, wiring_scores)
        b = arm_data(h.comparison.b, h.endpoint, config, runs, retrain_entries, wiring_scores)
        members += evaluate_hypothesis(h, a, b, samples=config.bootstrap_samples)
    complete = all(m["status"] == COMPLETE for m in members)
    correction = config.hypotheses.correction
    if complete:
        raw = [m["p_value"] for m in members]
        adjusted = stats.holm(raw) if correction == "holm" else stats.bonferroni(raw) if correction == "bonferroni" \
            else raw
        for m, p in zip(members, adjusted):
            m["p_adjusted"] = p
            m["supported"] = p <= m["alpha"]
    return {"correction": correction, "complete": complete, "members": members,
            "declared": [to_plain(h) for h in family],
            "pending": [m["member"] for m in members if m["status"] == PENDING]}


def verdict(member: Mapping[str, Any]) -> str:
    """The member's result in words: what the test showed, and for a test that did not reject, that the
    difference was not shown (never that there is none)."""
    if member["status"] != COMPLETE:
        return "pending"
    if "supported" not in member:
        return "awaiting the rest of the family (correction)"
    if member["alternative"] == "equivalent":
        margin = member["margin"]
        return (f"equivalent within ±{margin:g}" if member["supported"]
                else f"equivalence within ±{margin:g} not shown")
    relation = {"greater": "a > b", "less": "a < b", "two-sided": "a ≠ b"}[member["alternative"]]
    return f"supported ({relation})" if member["supported"] else "not shown at this sample size"
