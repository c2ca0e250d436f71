"""Small-sample statistics for comparing search strategies over seeds: pure functions, deterministic given
their ``seed`` argument, with no I/O. Tests and intervals come from ``scipy.stats`` wherever it has them; the few
hand-written ones say in their docstring what scipy lacks.

Intervals:

- :func:`bootstrap_mean_ci`: percentile bootstrap interval of a mean (``scipy.stats.bootstrap``); on per-seed
  differences it is the paired bootstrap interval of a paired comparison (:func:`paired_bootstrap_ci`).
- :func:`t_interval`: Student-t interval of a mean (``scipy.stats.ttest_1samp``).
- :func:`bootstrap_diff_ci`: percentile bootstrap interval of ``mean(a) - mean(b)`` for independent samples.
- :func:`bootstrap_nested_ci`, :func:`bootstrap_stratified_ci`, :func:`bootstrap_curve_band`: two-level,
  fixed-group and step-by-step (NaN-aware) bootstraps.

Tests (``Significance``: statistic, p-value, whether exact):

- paired (two strategies that share search seeds): :func:`paired_permutation_test` (sign flips of the per-seed
  differences), :func:`wilcoxon_signed_rank`, or a paired t test, through :func:`difference_test`;
- independent samples: :func:`permutation_test` (relabelling), :func:`mann_whitney`, Welch's t;
- :func:`equivalence_test`: two one-sided tests (TOST) against a margin;
- :func:`holm`, :func:`bonferroni`: adjusted p-values over a family of tests.

Intervals are estimates, never tests: whether two intervals overlap decides nothing here (two 95% intervals can
overlap while the difference is significant at 5%); a difference is judged by a test of that difference.

Other: :func:`evals_to_reach`, :func:`median_evals`, :func:`pearson`, :func:`spearman`, :func:`variance_split`.
Values are plain sequences of floats or 1-D arrays (:data:`Values`); NaN/None entries are the caller's to remove.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Callable, Sequence, Union

import numpy as np

# A sample: a sequence of floats or a 1-D array of them.
Values = Union[Sequence[float], np.ndarray]
# Relative slack for "reached": a curve value equal to the target up to float rounding counts as reaching it.
REACH_TOLERANCE = 1e-12
ALTERNATIVES = ("greater", "less", "two-sided")


@dataclass(frozen=True)
class Interval:
    """An estimate with a confidence interval."""

    estimate: float
    low: float
    high: float

    def to_list(self) -> list[float]:
        return [self.low, self.high]


def _array(values: Values, name: str = "values") -> np.ndarray:
    array = np.asarray(list(values), dtype=float)
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"{name}: need at least one value")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name}: every value must be finite, got {list(values)}")
    return array


def _check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")


def _mean(*samples: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(samples[0], axis=axis)


def _mean_difference(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(x, axis=axis) - np.mean(y, axis=axis)


def _tie_safe(statistic: Callable[..., np.ndarray], scale: float) -> Callable[..., np.ndarray]:
    """``statistic`` rounded to 10 significant digits of ``scale``: relabellings whose statistic equals the observed
    one up to float rounding (0.1 + 0.2 against 0.3 + 0.0) then tie exactly, so they count as "as extreme", as they
    should (scipy's own tolerance is relative to the observed value and misses such ties when it is near 0)."""
    unit = max(scale, 1e-300) * 1e-10

    def rounded(*samples: np.ndarray, axis: int = -1) -> np.ndarray:
        return np.round(statistic(*samples, axis=axis) / unit) * unit

    return rounded


def bootstrap_mean_ci(values: Values, *, samples: int = 10000, confidence: float = 0.95,
                      seed: int = 0) -> Interval:
    """The mean and its percentile bootstrap interval (``scipy.stats.bootstrap``, ``samples`` resamples of the
    values with replacement). Constant data (or one value) gives the degenerate interval [mean, mean]."""
    from scipy import stats

    _check_confidence(confidence)
    data = _array(values)
    mean = float(data.mean())
    if data.size == 1 or np.all(data == data[0]):
        return Interval(mean, mean, mean)
    result = stats.bootstrap((data,), _mean, n_resamples=samples, confidence_level=confidence, method="percentile",
                             vectorized=True, rng=np.random.default_rng(seed))
    return Interval(mean, float(result.confidence_interval.low), float(result.confidence_interval.high))


def paired_bootstrap_ci(a: Values, b: Values, *, samples: int = 10000, confidence: float = 0.95,
                        seed: int = 0) -> Interval:
    """The mean of the paired differences ``a[i] - b[i]`` and its percentile bootstrap interval: the pairs are
    resampled together (the bootstrap of the differences), which keeps what the two members share."""
    return bootstrap_mean_ci(_differences(a, b), samples=samples, confidence=confidence, seed=seed)


def bootstrap_nested_ci(groups: Sequence[Sequence[float]], *, samples: int = 10000, confidence: float = 0.95,
                        seed: int = 0) -> Interval:
    """The mean over groups of each group's mean (e.g. training seeds, each with per-test-video scores) and its
    two-level percentile bootstrap interval: resample the groups, then the values within each drawn group. With
    one group this is :func:`bootstrap_mean_ci` over its values (the test-set uncertainty alone).

    Hand-written: ``scipy.stats.bootstrap`` resamples flat samples only, not groups and then values within the
    drawn groups."""
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
    drawn: contrast :func:`bootstrap_nested_ci`): ``scipy.stats.bootstrap`` over the groups as independent
    samples. A group with one value contributes no spread."""
    from scipy import stats

    _check_confidence(confidence)
    arrays = [_array(g, "group") for g in groups]
    if not arrays:
        raise ValueError("groups: need at least one group")
    estimate = float(np.mean([a.mean() for a in arrays]))
    varying = [a for a in arrays if a.size > 1 and not np.all(a == a[0])]
    if not varying:
        return Interval(estimate, estimate, estimate)
    fixed = sum(float(a.mean()) for a in arrays if not any(a is v for v in varying))

    def mean_of_means(*resampled: np.ndarray, axis: int = -1) -> np.ndarray:
        return (sum(np.mean(r, axis=axis) for r in resampled) + fixed) / len(arrays)

    result = stats.bootstrap(tuple(varying), mean_of_means, n_resamples=samples, confidence_level=confidence,
                             method="percentile", vectorized=True, paired=False, rng=np.random.default_rng(seed))
    return Interval(estimate, float(result.confidence_interval.low), float(result.confidence_interval.high))


def format_interval(interval: Interval, digits: int = 3) -> str:
    return f"{interval.estimate:.{digits}f} [{interval.low:.{digits}f}, {interval.high:.{digits}f}]"


def t_interval(values: Values, *, confidence: float = 0.95) -> Interval | None:
    """The mean and its Student-t interval ``mean ± t(n-1) s / sqrt(n)`` (``scipy.stats.ttest_1samp``); None for
    fewer than two values."""
    from scipy import stats

    _check_confidence(confidence)
    data = _array(values)
    mean = float(data.mean())
    if data.size < 2:
        return None
    if np.all(data == data[0]):
        return Interval(mean, mean, mean)
    interval = stats.ttest_1samp(data, 0.0).confidence_interval(confidence)
    return Interval(mean, float(interval.low), float(interval.high))


def bootstrap_diff_ci(a: Values, b: Values, *, samples: int = 10000, confidence: float = 0.95,
                      seed: int = 0) -> Interval:
    """``mean(a) - mean(b)`` of two independent samples and its percentile bootstrap interval
    (``scipy.stats.bootstrap``, each sample resampled on its own). For samples that pair (strategies sharing
    search seeds) use :func:`paired_bootstrap_ci`."""
    from scipy import stats

    _check_confidence(confidence)
    x, y = _array(a, "a"), _array(b, "b")
    diff = float(x.mean() - y.mean())
    x_constant, y_constant = bool(np.all(x == x[0])), bool(np.all(y == y[0]))
    if x_constant and y_constant:
        return Interval(diff, diff, diff)
    if x.size == 1 or x_constant:  # a has no spread: the interval of b, reflected
        other = bootstrap_mean_ci(y, samples=samples, confidence=confidence, seed=seed)
        return Interval(diff, float(x.mean() - other.high), float(x.mean() - other.low))
    if y.size == 1 or y_constant:
        own = bootstrap_mean_ci(x, samples=samples, confidence=confidence, seed=seed)
        return Interval(diff, float(own.low - y.mean()), float(own.high - y.mean()))
    result = stats.bootstrap((x, y), _mean_difference, n_resamples=samples, confidence_level=confidence,
                             method="percentile", vectorized=True, paired=False, rng=np.random.default_rng(seed))
    return Interval(diff, float(result.confidence_interval.low), float(result.confidence_interval.high))


def bootstrap_curve_band(curves: Sequence[Sequence[float]], *, samples: int = 10000, confidence: float = 0.95,
                         seed: int = 0) -> tuple[list[float], list[float], list[float]]:
    """Mean, low and high of the percentile bootstrap band of the mean curve.

    ``curves`` holds one curve per seed, all of the same length; NaN marks a step without a value (before a
    run's first success, or after a shorter run's end) and is left out of that step's mean. The same seed
    resamples are used at every step. A step with no value at all is NaN.

    Hand-written: ``scipy.stats.bootstrap`` cannot leave NaN out per step while sharing one set of resamples
    across the steps (which keeps the band a band of curves).
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
    """A test's statistic and p-value; ``exact`` when every relabelling (or sign assignment) was enumerated or
    the null distribution is exact."""

    statistic: float
    p_value: float
    exact: bool


def _check_alternative(alternative: str) -> None:
    if alternative not in ALTERNATIVES:
        raise ValueError(f"alternative must be one of {list(ALTERNATIVES)}, got {alternative!r}")


def _differences(a: Values, b: Values) -> np.ndarray:
    x, y = _array(a, "a"), _array(b, "b")
    if x.shape != y.shape:
        raise ValueError(f"paired samples need equal lengths, got {x.size} and {y.size}")
    return x - y


def permutation_test(a: Values, b: Values, *, alternative: str = "greater",
                     max_exact: int = 200_000, samples: int = 100_000, seed: int = 0) -> Significance:
    """Permutation test of ``mean(a) - mean(b)`` for two independent samples (``scipy.stats.permutation_test``,
    ``permutation_type="independent"``).

    H0: the group labels are exchangeable. Exact over every relabelling when there are at most ``max_exact``
    (5 vs 5: 252); else ``samples`` random relabellings with p = (hits + 1) / (samples + 1). For two strategies that
    share search seeds use :func:`paired_permutation_test`: it keeps what a pair shares.
    """
    from scipy import stats

    _check_alternative(alternative)
    x, y = _array(a, "a"), _array(b, "b")
    exact = math.comb(x.size + y.size, x.size) <= max_exact
    scale = float(np.abs(np.concatenate([x, y])).max())
    result = stats.permutation_test((x, y), _tie_safe(_mean_difference, scale), permutation_type="independent",
                                    alternative=alternative, vectorized=True,
                                    n_resamples=np.inf if exact else samples, rng=np.random.default_rng(seed))
    return Significance(float(x.mean() - y.mean()), float(result.pvalue), exact)


def mann_whitney(a: Values, b: Values, *, alternative: str = "greater",
                 max_exact: int = 200_000, samples: int = 100_000, seed: int = 0) -> Significance:
    """Mann-Whitney U test for two independent samples (``scipy.stats.mannwhitneyu``); ``alternative="greater"``:
    values of ``a`` tend to be larger. The statistic is U of ``a``. The p-value is exact from the permutation
    distribution of U (``scipy.stats.PermutationMethod``: exact with ties too, where ``method="exact"`` is not)
    when there are at most ``max_exact`` relabellings; beyond that it is scipy's asymptotic p-value."""
    from scipy import stats

    _check_alternative(alternative)
    x, y = _array(a, "a"), _array(b, "b")
    if math.comb(x.size + y.size, x.size) <= max_exact:
        method: object = stats.PermutationMethod(n_resamples=np.inf, rng=np.random.default_rng(seed))
        exact = True
    else:
        method, exact = "asymptotic", False
    result = stats.mannwhitneyu(x, y, alternative=alternative, method=method)
    return Significance(float(result.statistic), float(result.pvalue), exact)


def paired_permutation_test(differences: Values, *, alternative: str = "greater",
                            max_exact: int = 1 << 16, samples: int = 100_000, seed: int = 0) -> Significance:
    """Sign-flip permutation test of the mean of paired ``differences`` (e.g. one per search seed), with
    ``scipy.stats.permutation_test`` (one sample, ``permutation_type="samples"``: the signs are flipped).

    H0: each difference is symmetric about zero (the two members of a pair are exchangeable). Exact over the 2^n
    sign assignments when 2^n is at most ``max_exact`` (16 pairs), else ``samples`` random assignments with
    p = (hits + 1) / (samples + 1). Zero differences (identical pairs) are kept: they dilute the mean as they
    should.
    """
    from scipy import stats

    _check_alternative(alternative)
    d = _array(differences, "differences")
    exact = (1 << d.size) <= max_exact
    if np.all(d == 0):  # every sign assignment gives the observed mean 0
        return Significance(0.0, 1.0, exact)
    result = stats.permutation_test((d,), _tie_safe(_mean, float(np.abs(d).max())), permutation_type="samples",
                                    alternative=alternative,
                                    vectorized=True, n_resamples=np.inf if exact else samples,
                                    rng=np.random.default_rng(seed))
    return Significance(float(d.mean()), float(result.pvalue), exact)


def wilcoxon_signed_rank(differences: Values, *, alternative: str = "greater") -> Significance:
    """Wilcoxon signed-rank test of paired ``differences`` (``scipy.stats.wilcoxon``): the rank-based second view
    of :func:`paired_permutation_test`. Zero differences are dropped (``zero_method="wilcox"``); all zero: p = 1.
    scipy's ``method="auto"`` decides between its exact and normal-approximation p-values."""
    from scipy import stats

    _check_alternative(alternative)
    d = _array(differences, "differences")
    nonzero = d[d != 0]
    if nonzero.size == 0:
        return Significance(0.0, 1.0, True)
    result = stats.wilcoxon(d, alternative=alternative, zero_method="wilcox", method="auto")
    # scipy's "auto": the exact distribution up to 50 pairs without zero differences, else the normal approximation
    return Significance(float(result.statistic), float(result.pvalue), nonzero.size == d.size and d.size <= 50)


def t_test(a: Values, b: Values, *, paired: bool, alternative: str = "greater") -> Significance:
    """Paired t test (``scipy.stats.ttest_rel``) or Welch's t test (``scipy.stats.ttest_ind``,
    ``equal_var=False``) of ``mean(a) - mean(b)``. Constant data: the statistic is 0 and p = 1 when the means
    agree (otherwise the difference is certain and p = 0 in its direction)."""
    from scipy import stats

    _check_alternative(alternative)
    x, y = _array(a, "a"), _array(b, "b")
    diffs = _differences(x, y) if paired else None
    spread = np.ptp(diffs) if diffs is not None else max(np.ptp(x), np.ptp(y))
    if spread == 0:
        effect = float(diffs.mean() if diffs is not None else x.mean() - y.mean())
        if effect == 0:
            return Significance(0.0, 1.0, True)
        hit = {"greater": effect > 0, "less": effect < 0, "two-sided": True}[alternative]
        return Significance(math.copysign(math.inf, effect), 0.0 if hit else 1.0, True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        result = (stats.ttest_rel(x, y, alternative=alternative) if paired
                  else stats.ttest_ind(x, y, equal_var=False, alternative=alternative))
    return Significance(float(result.statistic), float(result.pvalue), True)


TESTS = ("permutation", "wilcoxon", "mann_whitney", "t")


def difference_test(a: Values, b: Values, *, paired: bool, test: str = "permutation",
                    alternative: str = "greater", shift: float = 0.0, samples: int = 100_000,
                    seed: int = 0) -> Significance:
    """One test of ``mean(a) - mean(b)`` against ``shift`` (H0: the difference is ``shift``; the default 0 is the
    usual null). ``paired``: ``a[i]`` and ``b[i]`` belong together (one search seed) and the test sees the
    differences ``a[i] - b[i] - shift``: ``permutation`` (sign flips), ``wilcoxon`` or ``t``. Unpaired: ``b`` is
    shifted by ``shift`` and compared with ``a`` as independent samples: ``permutation``, ``mann_whitney`` or
    ``t`` (Welch)."""
    if test not in TESTS:
        raise ValueError(f"test must be one of {list(TESTS)}, got {test!r}")
    if paired:
        d = _differences(a, b) - shift
        if test == "permutation":
            return paired_permutation_test(d, alternative=alternative, samples=samples, seed=seed)
        if test == "wilcoxon":
            return wilcoxon_signed_rank(d, alternative=alternative)
        if test == "t":
            return t_test(d, np.zeros_like(d), paired=True, alternative=alternative)
        raise ValueError(f"{test} is a test of independent samples; paired samples take permutation, wilcoxon or t")
    x, y = _array(a, "a"), _array(b, "b") + shift
    if test == "permutation":
        return permutation_test(x, y, alternative=alternative, samples=samples, seed=seed)
    if test == "mann_whitney":
        return mann_whitney(x, y, alternative=alternative, seed=seed)
    if test == "t":
        return t_test(x, y, paired=False, alternative=alternative)
    raise ValueError("wilcoxon is a paired test; independent samples take permutation, mann_whitney or t")


@dataclass(frozen=True)
class Equivalence:
    """Two one-sided tests (TOST) of ``-margin < mean(a) - mean(b) < margin``: ``p_value`` is the larger of the
    two one-sided p-values; equivalence is shown at level alpha when it is at most alpha."""

    estimate: float
    margin: float
    p_lower: float  # H0: difference <= -margin
    p_upper: float  # H0: difference >= +margin
    exact: bool

    @property
    def p_value(self) -> float:
        return max(self.p_lower, self.p_upper)


def equivalence_test(a: Values, b: Values, *, margin: float, paired: bool,
                     test: str = "permutation", samples: int = 100_000, seed: int = 0) -> Equivalence:
    """TOST with :func:`difference_test` on each side: the difference is above ``-margin`` (one-sided, greater,
    against a shift of ``-margin``) and below ``+margin`` (less, against ``+margin``). scipy has no TOST; it is two
    calls of its tests."""
    if not margin > 0:
        raise ValueError(f"margin must be > 0, got {margin}")
    lower = difference_test(a, b, paired=paired, test=test, alternative="greater", shift=-margin, samples=samples,
                            seed=seed)
    upper = difference_test(a, b, paired=paired, test=test, alternative="less", shift=margin, samples=samples,
                            seed=seed)
    x, y = _array(a, "a"), _array(b, "b")
    estimate = float(np.mean(x - y)) if paired else float(x.mean() - y.mean())
    return Equivalence(estimate, float(margin), lower.p_value, upper.p_value, lower.exact and upper.exact)


def holm(p_values: Values) -> list[float]:
    """Holm's step-down adjusted p-values, in the order given: sort ascending, multiply the k-th smallest (k from 0)
    by ``m - k``, make the sequence non-decreasing (running maximum), cap at 1. Rejecting where the adjusted p is
    at most alpha controls the family-wise error rate at alpha under any dependence.

    Hand-written: ``scipy.stats`` has no Holm correction (``false_discovery_control`` does Benjamini-Hochberg
    only), and statsmodels, which has it, is not a dependency of this project."""
    p = np.asarray(list(p_values), dtype=float)
    if p.size == 0:
        return []
    if np.any((p < 0) | (p > 1)) or not np.all(np.isfinite(p)):
        raise ValueError(f"p-values must be in [0, 1], got {list(p_values)}")
    order = np.argsort(p, kind="stable")
    scaled = p[order] * (p.size - np.arange(p.size))
    adjusted_sorted = np.minimum(1.0, np.maximum.accumulate(scaled))
    adjusted = np.empty_like(p)
    adjusted[order] = adjusted_sorted
    return [float(v) for v in adjusted]


def bonferroni(p_values: Values) -> list[float]:
    """Bonferroni-adjusted p-values: each times the number of tests, capped at 1."""
    return [min(1.0, float(v) * len(p_values)) for v in p_values]


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
    """:class:`VarianceSplit` of the groups with at least two values (at least two such groups needed).

    Hand-written: scipy has one-way ANOVA (``f_oneway``) but not its random-effects variance components."""
    arrays = [_array(g, "group") for g in groups if len(g) >= 2]
    if len(arrays) < 2:
        raise ValueError("variance_split: need at least two groups with two or more values each")
    within = float(np.mean([a.var(ddof=1) for a in arrays]))
    seeds = float(len(arrays) / np.sum([1.0 / a.size for a in arrays]))  # harmonic mean group size
    means = np.array([a.mean() for a in arrays])
    between = max(0.0, float(means.var(ddof=1)) - within / seeds)
    return VarianceSplit(len(arrays), seeds, within, between)


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


def pearson(x: Values, y: Values) -> Correlation:
    """Pearson's r and its two-sided p-value; r is None with fewer than 3 pairs or a constant variable."""
    from scipy import stats

    a, b = _pairs(x, y)
    if a.size < 3 or np.all(a == a[0]) or np.all(b == b[0]):
        return Correlation(None, None, int(a.size))
    result = stats.pearsonr(a, b)
    return Correlation(float(result.statistic), float(result.pvalue), int(a.size))


def spearman(x: Values, y: Values) -> Correlation:
    """Spearman's rank correlation (Pearson's r of average ranks) and its two-sided p-value."""
    from scipy import stats

    a, b = _pairs(x, y)
    if a.size < 3 or np.all(a == a[0]) or np.all(b == b[0]):
        return Correlation(None, None, int(a.size))
    result = stats.spearmanr(a, b)
    return Correlation(float(result.statistic), float(result.pvalue), int(a.size))


def _pairs(x: Values, y: Values) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(list(x), dtype=float), np.asarray(list(y), dtype=float)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"need two sequences of equal length, got {a.shape} and {b.shape}")
    keep = np.isfinite(a) & np.isfinite(b)
    return a[keep], b[keep]
