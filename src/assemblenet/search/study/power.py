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

A comparison of a strategy with a fixed wiring is not paired: within each of T tasks the strategy has n_a runs and
the wiring n_b training seeds, and the effect is the mean over tasks of the difference of means. Its variance is
(1/T^2) sum_t (s_a^2 / n_a,t + s_b^2 / n_b,t), each arm's SD ``s`` pooled within tasks (task difficulty cancels
as in the stratified test), and its t statistic has the Welch-Satterthwaite degrees of freedom;
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
    return _root(lambda d: paired_power(d, sd, n, alpha=alpha, alternative=alternative), power, sd * 20.0)


def _root(power_of: Callable[[float], float], power: float, high: float) -> float:
    from scipy.optimize import brentq

    return float(brentq(lambda d: power_of(d) - power, 0.0, high))


def _noncentral_t_power(delta: float, se: float, df: float, alpha: float) -> float:
    from scipy import stats

    return float(stats.nct.sf(stats.t.ppf(1 - alpha, df), df, delta / se))


def stratified_power_statement(strata: Mapping[Any, tuple[Sequence[float], Sequence[float]]], *,
                               planned_difference: float, alpha: float = 0.05, family_size: int = 1,
                               power: float = 0.8) -> dict[str, Any]:
    """The power reached by a one-sided comparison of two independent arms stratified by task (``strata``: per
    task, arm a's and arm b's values), as the module docstring derives it: each arm's pooled within-task SD, the
    standard error of the mean-over-tasks difference, its Welch-Satterthwaite degrees of freedom, and then, at
    level ``alpha`` and at the strictest Holm level ``alpha / family_size``, the power at ``planned_difference``
    and the difference detectable with ``power``."""
    import numpy as np

    groups = [[np.asarray(list(a), dtype=float) for a, _ in strata.values()],
              [np.asarray(list(b), dtype=float) for _, b in strata.values()]]
    counts = [[int(v.size) for v in arm] for arm in groups]
    out: dict[str, Any] = {"tasks": len(strata), "n_a": sum(counts[0]), "n_b": sum(counts[1]), "alpha": alpha,
                           "family_size": family_size, "planned_difference": planned_difference,
                           "target_power": power}
    if not strata or any(n < 2 for arm in counts for n in arm):
        return {**out, "sd_a": None, "sd_b": None, "detectable": None}
    sds = [math.sqrt(sum(float(((v - v.mean()) ** 2).sum()) for v in arm) / sum(v.size - 1 for v in arm))
           for arm in groups]
    components = [sd ** 2 / n / len(strata) ** 2 for sd, arm in zip(sds, counts) for n in arm]
    dfs = [n - 1 for arm in counts for n in arm]
    variance = sum(components)
    out.update({"sd_a": sds[0], "sd_b": sds[1], "se": math.sqrt(variance)})
    if not variance > 0:
        return {**out, "detectable": None}
    df = variance ** 2 / sum(c ** 2 / d for c, d in zip(components, dfs))
    se = math.sqrt(variance)
    out["df"] = df
    for suffix, level in (("", alpha), ("_holm_strictest", alpha / max(1, family_size))):
        out[f"power_at_planned{suffix}"] = _noncentral_t_power(planned_difference, se, df, level)
        out[f"detectable{suffix}"] = _root(functools.partial(_noncentral_t_power, se=se, df=df, alpha=level),
                                           power, se * 40.0)
    return out


def power_statement(differences: Sequence[float], *, planned_difference: float, alpha: float = 0.05,
                    family_size: int = 1, power: float = 0.8) -> dict[str, Any]:
    """The power a study reached: at the SD of its measured paired ``differences``, the power at
    ``planned_difference`` and the difference detectable with ``power``, both at level ``alpha`` and at the
    strictest Holm level ``alpha / family_size`` (what the smallest p-value of the family is held to)."""
    import numpy as np

    values = np.asarray(list(differences), dtype=float)
    n = int(values.size)
    if n < 2:
        return {"n_pairs": n, "sd": None}
    sd = float(values.std(ddof=1))
    out: dict[str, Any] = {"n_pairs": n, "sd": sd, "alpha": alpha, "family_size": family_size,
                           "planned_difference": planned_difference, "target_power": power}
    if not sd > 0:
        return {**out, "power_at_planned": None, "detectable": None}
    for suffix, level in (("", alpha), ("_holm_strictest", alpha / max(1, family_size))):
        out[f"power_at_planned{suffix}"] = paired_power(planned_difference, sd, n, alpha=level)
        out[f"detectable{suffix}"] = detectable_difference(sd, n, power=power, alpha=level)
    return out
