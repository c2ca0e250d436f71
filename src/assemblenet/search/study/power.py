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
"""

from __future__ import annotations

import math
from typing import Any, Sequence


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
    from scipy.optimize import brentq

    if not 0 < power < 1:
        raise ValueError(f"detectable_difference: power must be in (0, 1), got {power}")
    high = sd * 20.0
    return float(brentq(lambda d: paired_power(d, sd, n, alpha=alpha, alternative=alternative) - power, 0.0, high))


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
