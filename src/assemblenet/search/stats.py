"""Small-sample statistics for comparing search strategies over seeds: pure functions, deterministic given
their ``seed`` argument, with no I/O.

- :func:`bootstrap_mean_ci`: percentile bootstrap confidence interval of a mean (resampling seeds).
- :func:`t_interval`: Student-t confidence interval of a mean (for comparison: with 5 seeds the percentile
  bootstrap is known to be too narrow).
- :func:`bootstrap_diff_ci`: percentile bootstrap interval of ``mean(a) - mean(b)`` (each group resampled).
- :func:`bootstrap_curve_band`: the percentile bootstrap band of the mean curve, step by step.
- :func:`permutation_test`: one-sided permutation test on the difference of means; exact (every relabelling)
  when there are at most ``max_exact`` relabellings, else Monte Carlo.
- :func:`mann_whitney`: one-sided Mann-Whitney U test, exact from the permutation distribution of U.
- :func:`evals_to_reach`: evaluations a best-so-far curve needs to reach a value.
- :func:`pearson`, :func:`spearman`: correlations with their two-sided p-values.

Values are plain sequences of floats; NaN/None entries are the caller's to remove.
"""

from __future__ import annotations

import itertools
import math
import warnings
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

# Relative slack for "reached": a curve value equal to the target up to float rounding counts as reaching it.
REACH_TOLERANCE = 1e-12


@dataclass(frozen=True)
class Interval:
    """An estimate with a confidence interval."""

    estimate: float
    low: float
    high: float

    def to_list(self) -> list[float]:
        return [self.low, self.high]


def _array(values: Sequence[float], name: str = "values") -> np.ndarray:
    array = np.asarray(list(values), dtype=float)
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"{name}: need at least one value")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name}: every value must be finite, got {list(values)}")
    return array


def _check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")


def bootstrap_mean_ci(values: Sequence[float], *, samples: int = 10000, confidence: float = 0.95,
                      seed: int = 0) -> Interval:
    """The mean and its percentile bootstrap interval: resample ``values`` with replacement ``samples``
    times and take the (1-c)/2 and (1+c)/2 quantiles of the resampled means. Constant data (or one value)
    gives the degenerate interval [mean, mean]."""
    _check_confidence(confidence)
    data = _array(values)
    mean = float(data.mean())
    if data.size == 1 or np.all(data == data[0]):
        return Interval(mean, mean, mean)
    rng = np.random.default_rng(seed)
    means = data[rng.integers(0, data.size, size=(samples, data.size))].mean(axis=1)
    low, high = np.quantile(means, [(1 - confidence) / 2, (1 + confidence) / 2])
    return Interval(mean, float(low), float(high))


def bootstrap_nested_ci(groups: Sequence[Sequence[float]], *, samples: int = 10000, confidence: float = 0.95,
                        seed: int = 0) -> Interval:
    """The mean over groups of each group's mean (e.g. training seeds, each with per-test-video scores) and its
    two-level percentile bootstrap interval: resample the groups, then the values within each drawn group. With
    one group this is :func:`bootstrap_mean_ci` over its values (the test-set uncertainty alone)."""
    _check_confidence(confidence)
    arrays = [_array(g, "group") for g in groups]
    if not arrays:
        raise ValueError("groups: need at least one group")
    if len(arrays) == 1:
        return bootstrap_mean_ci(arrays[0], samples=samples, confidence=confidence, seed=seed)
    rng = np.random.default_rng(seed)
    estimate = float(np.mean([a.mean() for a in arrays]))
    chosen = rng.integers(0, len(arrays), size=(samples, len(arrays)))
    means = np.empty(samples)
    for b in range(samples):
        inner = [arrays[g][rng.integers(0, arrays[g].size, size=arrays[g].size)].mean() for g in chosen[b]]
        means[b] = np.mean(inner)
    low, high = np.quantile(means, [(1 - confidence) / 2, (1 + confidence) / 2])
    return Interval(estimate, float(low), float(high))


def bootstrap_stratified_ci(groups: Sequence[Sequence[float]], *, samples: int = 10000, confidence: float = 0.95,
                            seed: int = 0) -> Interval:
    """The mean over fixed groups of each group's mean (e.g. fixed graphs, each with several training seeds)
    and its percentile bootstrap interval, resampling values within each group only (the groups are fixed, not
    drawn: contrast :func:`bootstrap_nested_ci`)."""
    _check_confidence(confidence)
    arrays = [_array(g, "group") for g in groups]
    if not arrays:
        raise ValueError("groups: need at least one group")
    rng = np.random.default_rng(seed)
    means = np.mean([a[rng.integers(0, a.size, size=(samples, a.size))].mean(axis=1) for a in arrays], axis=0)
    low, high = np.quantile(means, [(1 - confidence) / 2, (1 + confidence) / 2])
    return Interval(float(np.mean([a.mean() for a in arrays])), float(low), float(high))


@dataclass(frozen=True)
class IntervalComparison:
    """Which of several named estimates is measurably highest: ``leader`` when its interval lies entirely above
    every other's, else None and ``tied`` names the ones whose intervals overlap the top estimate's."""

    leader: str | None
    tied: tuple[str, ...]
    confidence: float = 0.95

    def sentence(self, metric: str) -> str:
        level = f"{self.confidence:.0%}"
        if self.leader is not None:
            return f"highest {metric}: {self.leader} (its {level} interval lies above the others')"
        names = list(self.tied)
        listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
        return f"no measurable difference in {metric} between {listed} ({level} intervals overlap)"


def compare_intervals(intervals: Mapping[str, Interval], *, confidence: float = 0.95) -> IntervalComparison:
    """Name a winner only when its interval does not overlap any other's (a conservative rule: overlapping 95%
    intervals can still differ at 5%, but separated ones always do)."""
    if not intervals:
        raise ValueError("intervals: need at least one estimate")
    top = max(intervals, key=lambda name: intervals[name].estimate)
    overlapping = [name for name, i in intervals.items() if name != top and i.high >= intervals[top].low]
    if not overlapping:
        return IntervalComparison(top, (top,), confidence)
    return IntervalComparison(None, (top, *overlapping), confidence)


def format_interval(interval: Interval, digits: int = 3) -> str:
    return f"{interval.estimate:.{digits}f} [{interval.low:.{digits}f}, {interval.high:.{digits}f}]"


def t_interval(values: Sequence[float], *, confidence: float = 0.95) -> Interval | None:
    """The mean and its Student-t interval ``mean ± t(n-1) s / sqrt(n)``; None for fewer than two values."""
    from scipy import stats

    _check_confidence(confidence)
    data = _array(values)
    mean = float(data.mean())
    if data.size < 2:
        return None
    half = float(stats.t.ppf((1 + confidence) / 2, data.size - 1) * data.std(ddof=1) / math.sqrt(data.size))
    return Interval(mean, mean - half, mean + half)


def bootstrap_diff_ci(a: Sequence[float], b: Sequence[float], *, samples: int = 10000, confidence: float = 0.95,
                      seed: int = 0) -> Interval:
    """``mean(a) - mean(b)`` and its percentile bootstrap interval (each group resampled on its own)."""
    _check_confidence(confidence)
    x, y = _array(a, "a"), _array(b, "b")
    diff = float(x.mean() - y.mean())
    rng = np.random.default_rng(seed)
    mx = x[rng.integers(0, x.size, size=(samples, x.size))].mean(axis=1)
    my = y[rng.integers(0, y.size, size=(samples, y.size))].mean(axis=1)
    low, high = np.quantile(mx - my, [(1 - confidence) / 2, (1 + confidence) / 2])
    if np.all(x == x[0]) and np.all(y == y[0]):
        low = high = diff
    return Interval(diff, float(low), float(high))


def bootstrap_curve_band(curves: Sequence[Sequence[float]], *, samples: int = 10000, confidence: float = 0.95,
                         seed: int = 0) -> tuple[list[float], list[float], list[float]]:
    """Mean, low and high of the percentile bootstrap band of the mean curve.

    ``curves`` holds one curve per seed, all of the same length; NaN marks a step without a value (before a
    run's first success, or after a shorter run's end) and is left out of that step's mean. The same seed
    resamples are used at every step. A step with no value at all is NaN.
    """
    _check_confidence(confidence)
    matrix = np.asarray([list(c) for c in curves], dtype=float)
    if matrix.ndim != 2 or matrix.shape[0] == 0:
        raise ValueError("curves: need at least one curve, all of the same length")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # steps without any value are NaN, not an error
        mean = np.nanmean(matrix, axis=0)
        rng = np.random.default_rng(seed)
        seeds = matrix.shape[0]
        picks = rng.integers(0, seeds, size=(samples, seeds))
        # How often each seed was drawn in each resample, so a resample's mean is a weighted mean of the curves.
        counts = np.zeros((samples, seeds))
        np.add.at(counts, (np.arange(samples)[:, None], picks), 1.0)
        present = np.isfinite(matrix)
        means = (counts @ np.where(present, matrix, 0.0)) / (counts @ present)  # (samples, steps)
        low, high = np.nanquantile(means, [(1 - confidence) / 2, (1 + confidence) / 2], axis=0)
    return [float(v) for v in mean], [float(v) for v in low], [float(v) for v in high]


@dataclass(frozen=True)
class Significance:
    """A test's statistic and one-sided p-value; ``exact`` when every relabelling was enumerated."""

    statistic: float
    p_value: float
    exact: bool


def permutation_test(a: Sequence[float], b: Sequence[float], *, alternative: str = "greater",
                     max_exact: int = 200_000, samples: int = 100_000, seed: int = 0) -> Significance:
    """One-sided permutation test of ``mean(a) - mean(b)`` (the statistic).

    H0: the group labels are exchangeable. ``alternative="greater"``: p is the share of the relabellings of
    the pooled values (choosing which ``len(a)`` of them form group a) whose ``mean(a') - mean(b')`` is at
    least the observed one; ``"less"``: at most. Exact when there are at most ``max_exact`` relabellings
    (5 vs 5 seeds: 252); else ``samples`` random relabellings with p = (hits + 1) / (samples + 1).
    """
    x, y = _array(a, "a"), _array(b, "b")
    pooled = np.concatenate([x, y])
    # mean(a') - mean(b') grows with sum(a'), so the test is on the sum of the chosen values.
    p, exact = _subset_sum_p(pooled, x.size, float(x.sum()), alternative, max_exact, samples, seed)
    return Significance(float(x.mean() - y.mean()), p, exact)


def mann_whitney(a: Sequence[float], b: Sequence[float], *, alternative: str = "greater",
                 max_exact: int = 200_000, samples: int = 100_000, seed: int = 0) -> Significance:
    """One-sided Mann-Whitney U test; ``alternative="greater"``: values of ``a`` tend to be larger.

    The statistic is U of ``a`` (pairs (a_i, b_j) with a_i > b_j, ties counting one half, computed from
    average ranks as ``scipy.stats.mannwhitneyu`` does). The p-value is exact, from the permutation
    distribution of U over every relabelling (conditional on ties, so exact with ties too, where scipy's
    ``mannwhitneyu`` falls back to the normal approximation); beyond ``max_exact`` relabellings it is
    scipy's asymptotic p-value.
    """
    from scipy import stats

    _check_alternative(alternative)
    x, y = _array(a, "a"), _array(b, "b")
    ranks = stats.rankdata(np.concatenate([x, y]))
    rank_sum = float(ranks[: x.size].sum())
    u = rank_sum - x.size * (x.size + 1) / 2
    if math.comb(x.size + y.size, x.size) <= max_exact:
        p, _ = _subset_sum_p(ranks, x.size, rank_sum, alternative, max_exact, samples, seed)
        return Significance(float(u), p, True)
    result = stats.mannwhitneyu(x, y, alternative=alternative, method="asymptotic")
    return Significance(float(u), float(result.pvalue), False)


def paired_permutation_test(differences: Sequence[float], *, alternative: str = "greater",
                            max_exact: int = 1 << 16, samples: int = 100_000, seed: int = 0) -> Significance:
    """One-sided sign-flip test of the mean of paired ``differences`` (e.g. one per search seed).

    H0: each difference is symmetric about zero (the two members of a pair are exchangeable). p is the share of
    the 2^n sign assignments whose mean is at least the observed one (``"less"``: at most); exact when 2^n is at
    most ``max_exact`` (16 pairs), else ``samples`` random assignments with p = (hits + 1) / (samples + 1).
    Zero differences (identical pairs) are kept: they dilute the mean as they should.
    """
    _check_alternative(alternative)
    d = _array(differences, "differences")
    sign = 1.0 if alternative == "greater" else -1.0
    observed = float(d.mean())
    slack = 1e-9 * max(1.0, float(np.abs(d).sum()))
    if (1 << d.size) <= max_exact:
        flips = ((np.arange(1 << d.size)[:, None] >> np.arange(d.size)) & 1) * -2 + 1
        exact = True
    else:
        flips = np.random.default_rng(seed).choice([-1.0, 1.0], size=(samples, d.size))
        exact = False
    means = (flips * d).mean(axis=1)
    hits = int(np.count_nonzero(sign * means >= sign * observed - slack))
    p = hits / means.size if exact else (hits + 1) / (samples + 1)
    return Significance(observed, float(p), exact)


@dataclass(frozen=True)
class VarianceSplit:
    """One-way random-effects split of scores grouped by graph (each group: one graph's training seeds).

    ``within``: the pooled variance between training seeds of one graph; ``between``: the variance of the
    graphs' true means (method of moments: the variance of the group means minus ``within`` / seeds, floored at
    zero). ``within_share`` is the part of one training's score variance that training seeds make."""

    groups: int
    seeds_per_group: float
    within: float
    between: float

    @property
    def within_share(self) -> float:
        total = self.within + self.between
        return self.within / total if total > 0 else math.nan

    @property
    def training_noise_dominates(self) -> bool:
        return self.within > self.between


def variance_split(groups: Sequence[Sequence[float]]) -> VarianceSplit:
    """:class:`VarianceSplit` of the groups with at least two values (at least two such groups needed)."""
    arrays = [_array(g, "group") for g in groups if len(g) >= 2]
    if len(arrays) < 2:
        raise ValueError("variance_split: need at least two groups with two or more values each")
    within = float(np.mean([a.var(ddof=1) for a in arrays]))
    seeds = float(len(arrays) / np.sum([1.0 / a.size for a in arrays]))  # harmonic mean group size
    means = np.array([a.mean() for a in arrays])
    between = max(0.0, float(means.var(ddof=1)) - within / seeds)
    return VarianceSplit(len(arrays), seeds, within, between)


def _check_alternative(alternative: str) -> None:
    if alternative not in ("greater", "less"):
        raise ValueError(f"alternative must be 'greater' or 'less', got {alternative!r}")


def _subset_sum_p(pooled: np.ndarray, n: int, observed: float, alternative: str, max_exact: int, samples: int,
                  seed: int) -> tuple[float, bool]:
    """P(sum of n values drawn without replacement from ``pooled`` >= observed) (``"less"``: <=), under
    uniformly random relabelling: exact by enumeration, else Monte Carlo; and whether it was exact."""
    _check_alternative(alternative)
    sign = 1.0 if alternative == "greater" else -1.0
    slack = 1e-9 * max(1.0, float(np.abs(pooled).sum()))  # equal sums up to float rounding count as hits
    count = math.comb(pooled.size, n)
    if count <= max_exact:
        sums = np.fromiter((pooled[list(chosen)].sum() for chosen in itertools.combinations(range(pooled.size), n)),
                           dtype=float, count=count)
        hits = int(np.count_nonzero(sign * sums >= sign * observed - slack))
        return hits / count, True
    rng = np.random.default_rng(seed)
    sums = np.array([rng.permutation(pooled)[:n].sum() for _ in range(samples)])
    hits = int(np.count_nonzero(sign * sums >= sign * observed - slack))
    return (hits + 1) / (samples + 1), False


def evals_to_reach(curve: Sequence[float | None], target: float) -> int | None:
    """The number of evaluations after which the best-so-far ``curve`` first reaches ``target`` (index + 1),
    or None if it never does. NaN/None entries (no success yet) never reach."""
    slack = REACH_TOLERANCE * max(1.0, abs(target))
    for index, value in enumerate(curve):
        if value is not None and not math.isnan(value) and value >= target - slack:
            return index + 1
    return None


def median_evals(values: Sequence[int | None]) -> float | None:
    """The median of evaluations-to-reach, counting a seed that never reached as infinitely many; None when
    that median is not reached (at least half the seeds never got there)."""
    if not values:
        return None
    data = np.asarray([math.inf if v is None else float(v) for v in values])
    median = float(np.median(data))
    return None if math.isinf(median) or math.isnan(median) else median


@dataclass(frozen=True)
class Correlation:
    r: float | None
    p_value: float | None
    n: int


def pearson(x: Sequence[float], y: Sequence[float]) -> Correlation:
    """Pearson's r and its two-sided p-value; r is None with fewer than 3 pairs or a constant variable."""
    from scipy import stats

    a, b = _pairs(x, y)
    if a.size < 3 or np.all(a == a[0]) or np.all(b == b[0]):
        return Correlation(None, None, int(a.size))
    result = stats.pearsonr(a, b)
    return Correlation(float(result.statistic), float(result.pvalue), int(a.size))


def spearman(x: Sequence[float], y: Sequence[float]) -> Correlation:
    """Spearman's rank correlation (Pearson's r of average ranks) and its two-sided p-value."""
    from scipy import stats

    a, b = _pairs(x, y)
    if a.size < 3 or np.all(a == a[0]) or np.all(b == b[0]):
        return Correlation(None, None, int(a.size))
    result = stats.spearmanr(a, b)
    return Correlation(float(result.statistic), float(result.pvalue), int(a.size))


def _pairs(x: Sequence[float], y: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(list(x), dtype=float), np.asarray(list(y), dtype=float)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"need two sequences of equal length, got {a.shape} and {b.shape}")
    keep = np.isfinite(a) & np.isfinite(b)
    return a[keep], b[keep]
