"""Power of a paired comparison (one value per pair: e.g. per (task, search seed)), from the noncentral t.

For n paired differences with standard deviation ``sd`` and true mean ``delta``, the paired t statistic
T = mean / (sd / sqrt(n)) follows a noncentral t with n - 1 degrees of freedom and noncentrality
nc = delta * sqrt(n) / sd. A one-sided test at level alpha rejects when T > t_{1-alpha, n-1}, so

    power(delta) = 1 - F_nct(t_{1-alpha, n-1}; df = n - 1, nc = delta sqrt(n) / sd)

(two-sided: alpha/2 in each tail). The sign-flip permutation test the study runs has nearly the power of the t
test for differences this well-behaved, so the t figure is the standard planning number. With the planning
values of issue 27 (paired SD 0.028, 24 pairs, alpha 0.05 one-sided) :func:`detectable_difference` gives 0.0146:
80% power at a difference of about 0.015. :func:`power_statement` states the power actually reached at the SD a
study measured.

A comparison of a strategy with a fixed wiring is not paired: within each of T tasks the strategy has n_a,t runs
and the wiring n_b,t training seeds, and the effect is the mean over tasks of the difference of means. With each
arm's SD ``s`` pooled within tasks (task difficulty cancels, as in the stratified test; this assumes an arm's
spread is the same in every task, and the per-task SDs are reported beside it), the effect's variance is
C_a + C_b with C = s^2 sum_t (1 / n_t) / T^2, and its t statistic has the Welch-Satterthwaite degrees of freedom
(C_a + C_b)^2 / (C_a^2 / df_a + C_b^2 / df_b), df = sum_t (n_t - 1) being the pooled SD's own degrees of freedom;
:func:`stratified_power_statement` states the power reached from that noncentral t. It approximates the power of
the stratified permutation test the study runs, which has no closed form.
"""

from __future__ import annotations

import functools
import math
from typing import Any, Callable, Mapping, Sequence


def paired_power(delta: float, sd: float, n: int, *, alpha: float = 0.05, alternative: str = "greater") -> float:
    """The power of the paired t test (n pairs, SD of the differences ``sd``) to detect a true mean difference
    ``delta`` at level ``alpha`` (``greater``: one-sided, ``two-sided``: both tails)."""
    from scipy import stats

    if n < 2 or not sd > 0:
        raise ValueError(f"paired_power: need n >= 2 pairs and sd > 0, got n={n}, sd={sd}")
    if alternative not in ("greater", "two-sided"):
        raise ValueError(f"paired_power: alternative must be 'greater' or 'two-sided', got {alternative!r}")
    df, nc = n - 1, delta * math.sqrt(n) / sd
    if alternative == "greater":
        return float(stats.nct.sf(stats.t.ppf(1 - alpha, df), df, nc))
    critical = stats.t.ppf(1 - alpha / 2, df)
    return float(stats.nct.sf(critical, df, nc) + stats.nct.cdf(-critical, df, nc))


def detectable_difference(sd: float, n: int, *, power: float = 0.8, alpha: float = 0.05,
                          alternative: str = "greater") -> float:
    """The smallest true mean difference the paired test detects with ``power`` (root of :func:`paired_power`)."""
    if not 0 < power < 1:
        raise ValueError(f"detectable_difference: power must be in (0, 1), got {power}")
    return _root(lambda d: paired_power(d, sd, n, alpha=alpha, alternative=alternative), power, sd)


def _root(power_of: Callable[[float], float], power: float, scale: float) -> float:
    """The difference at which ``power_of`` reaches ``power``: the bracket grows from ``scale`` until it holds
    the root (power tends to 1 as the difference grows, however few the degrees of freedom)."""
    from scipy.optimize import brentq

    high = scale
    while power_of(high) < power:
        high *= 2.0
    return float(brentq(lambda d: power_of(d) - power, 0.0, high))


def _noncentral_t_power(delta: float, se: float, df: float, alpha: float) -> float:
    from scipy import stats

    return float(stats.nct.sf(stats.t.ppf(1 - alpha, df), df, delta / se))


def _one_sided_level(alpha: float, alternative: str) -> float:
    """The level of the tail that detects a difference in the expected direction: a two-sided test spends half of
    alpha on it (the other tail's power is negligible at any difference worth detecting)."""
    if alternative not in ("greater", "less", "two-sided"):
        raise ValueError(f"alternative must be 'greater', 'less' or 'two-sided', got {alternative!r}")
    return alpha / 2 if alternative == "two-sided" else alpha


def stratified_power_statement(strata: Mapping[Any, tuple[Sequence[float], Sequence[float]]], *,
                               planned_difference: float, alpha: float = 0.05, alternative: str = "greater",
                               family_size: int = 1, power: float = 0.8) -> dict[str, Any]:
    """The power reached by a comparison of two independent arms stratified by task (``strata``: per task, arm a's
    and arm b's values), as the module docstring derives it: each arm's pooled within-task SD (and its SD in each
    task), the standard error of the mean-over-tasks difference, its Welch-Satterthwaite degrees of freedom, and
    then, at level ``alpha`` and at the strictest Holm level ``alpha / family_size``, the power at
    ``planned_difference`` and the difference detectable with ``power`` (a difference in the direction of
    ``alternative``; two-sided: alpha / 2 in that tail)."""
    import numpy as np

    groups = [[np.asarray(list(a), dtype=float) for a, _ in strata.values()],
              [np.asarray(list(b), dtype=float) for _, b in strata.values()]]
    counts = [[int(v.size) for v in arm] for arm in groups]
    out: dict[str, Any] = {"tasks": len(strata), "n_a": sum(counts[0]), "n_b": sum(counts[1]), "alpha": alpha,
                           "alternative": alternative, "family_size": family_size,
                           "planned_difference": planned_difference, "target_power": power}
    if not strata or any(n < 2 for arm in counts for n in arm):
        return {**out, "sd_a": None, "sd_b": None, "detectable": None, "reason": "fewer than 2 values in a task"}
    out["sd_per_task"] = {str(task): [float(np.std(a, ddof=1)), float(np.std(b, ddof=1))]
                          for task, a, b in zip(strata, *groups)}
    tasks = len(strata)
    sds, parts, dfs = [], [], []
    for arm, n_arm in zip(groups, counts):
        df_arm = sum(n - 1 for n in n_arm)
        sd = math.sqrt(sum(float(((v - v.mean()) ** 2).sum()) for v in arm) / df_arm)
        sds.append(sd)
        parts.append(sd ** 2 * sum(1.0 / n for n in n_arm) / tasks ** 2)
        dfs.append(df_arm)
    variance = sum(parts)
    se = math.sqrt(variance)
    out.update({"sd_a": sds[0], "sd_b": sds[1], "se": se})
    if not variance > 0:
        return {**out, "detectable": None, "reason": "no spread within any task"}
    df = variance ** 2 / sum(c ** 2 / d for c, d in zip(parts, dfs))
    out["df"] = df
    level = _one_sided_level(alpha, alternative)
    for suffix, at in (("", level), ("_holm_strictest", level / max(1, family_size))):
        out[f"power_at_planned{suffix}"] = _noncentral_t_power(planned_difference, se, df, at)
        out[f"detectable{suffix}"] = _root(functools.partial(_noncentral_t_power, se=se, df=df, alpha=at),
                                           power, se)
    return out


def power_statement(differences: Sequence[float], *, planned_difference: float, alpha: float = 0.05,
                    alternative: str = "greater", family_size: int = 1, power: float = 0.8) -> dict[str, Any]:
    """The power a study reached: at the SD of its measured paired ``differences``, the power at
    ``planned_difference`` and the difference detectable with ``power``, both at level ``alpha`` and at the
    strictest Holm level ``alpha / family_size`` (what the smallest p-value of the family is held to), for a test
    of ``alternative`` (one-sided for ``greater`` and ``less``, the difference taken in its direction)."""
    _one_sided_level(alpha, alternative)  # checks the name
    side = "two-sided" if alternative == "two-sided" else "greater"
    import numpy as np

    values = np.asarray(list(differences), dtype=float)
    n = int(values.size)
    if n < 2:
        return {"n_pairs": n, "sd": None}
    sd = float(values.std(ddof=1))
    out: dict[str, Any] = {"n_pairs": n, "sd": sd, "alpha": alpha, "alternative": alternative,
                           "family_size": family_size, "planned_difference": planned_difference,
                           "target_power": power}
    if not sd > 0:
        return {**out, "power_at_planned": None, "detectable": None}
    for suffix, level in (("", alpha), ("_holm_strictest", alpha / max(1, family_size))):
        out[f"power_at_planned{suffix}"] = paired_power(planned_difference, sd, n, alpha=level, alternative=side)
        out[f"detectable{suffix}"] = detectable_difference(sd, n, power=power, alpha=level, alternative=side)
    return out
