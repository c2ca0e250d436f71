"""The study's statistics against hand-computed answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from assemblenet.search import stats


def test_permutation_p_value_three_vs_three_by_hand() -> None:
    # Pooled {0,...,5}; C(6,3) = 20 relabellings. Observed a = {3,4,5}: the largest sum (12), reached by one
    # relabelling only, so p = 1/20.
    result = stats.permutation_test([3, 4, 5], [0, 1, 2])
    assert result.exact
    assert result.statistic == pytest.approx(3.0)
    assert result.p_value == pytest.approx(1 / 20)
    # a = {1,4,5} (sum 10): the sums >= 10 are {3,4,5}=12, {2,4,5}=11, {1,4,5}=10, {2,3,5}=10 -> 4/20.
    assert stats.permutation_test([1, 4, 5], [0, 2, 3]).p_value == pytest.approx(4 / 20)
    # The other direction: a = {0,1,2} is the smallest; "less" gives 1/20, "greater" everything (20/20).
    assert stats.permutation_test([0, 1, 2], [3, 4, 5], alternative="less").p_value == pytest.approx(1 / 20)
    assert stats.permutation_test([0, 1, 2], [3, 4, 5]).p_value == pytest.approx(1.0)


def test_permutation_p_value_counts_ties_and_float_rounding_as_hits() -> None:
    # All equal: every relabelling has the observed difference 0, so p = 1.
    assert stats.permutation_test([0.1, 0.1], [0.1, 0.1]).p_value == pytest.approx(1.0)
    # 0.1 + 0.2 != 0.3 in floats, but {0.1, 0.2} vs {0.3, 0.0} has the same sum: with pooled {0, .1, .2, .3}
    # the sums >= 0.3 are .3+.2, .3+.1, .3+0, .2+.1 -> 4 of 6.
    assert stats.permutation_test([0.1, 0.2], [0.3, 0.0]).p_value == pytest.approx(4 / 6)


def test_permutation_monte_carlo_beyond_the_exact_limit() -> None:
    a, b = list(range(10, 20)), list(range(10))
    exact = stats.permutation_test(a, b)
    approx = stats.permutation_test(a, b, max_exact=10, samples=2000, seed=1)
    assert exact.exact and not approx.exact
    assert exact.p_value == pytest.approx(1 / math.comb(20, 10))
    assert approx.p_value == pytest.approx(1 / 2001, abs=2 / 2001)  # (hits + 1) / (samples + 1)


def test_mann_whitney_matches_scipy_without_ties_and_is_exact_with_ties() -> None:
    from scipy.stats import mannwhitneyu

    a, b = [0.61, 0.66, 0.7, 0.64, 0.69], [0.6, 0.62, 0.58, 0.63, 0.65]
    result = stats.mann_whitney(a, b)
    reference = mannwhitneyu(a, b, alternative="greater", method="exact")
    assert result.statistic == pytest.approx(reference.statistic)
    assert result.p_value == pytest.approx(reference.pvalue)
    # 3 vs 3, a all above b: U = 9 and only one of the 20 rank assignments is as extreme.
    assert stats.mann_whitney([4, 5, 6], [1, 2, 3]).statistic == 9
    assert stats.mann_whitney([4, 5, 6], [1, 2, 3]).p_value == pytest.approx(1 / 20)
    # With a tie: a = {1, 2}, b = {2, 0}; ranks 0->1, 1->2, 2->3.5, 2->3.5; a's rank sum 5.5 (U = 2.5).
    # Rank sums of the 6 relabellings: 3, 4.5, 4.5, 5.5, 5.5, 7 -> P(>= 5.5) = 3/6.
    tied = stats.mann_whitney([1, 2], [2, 0])
    assert tied.exact and tied.statistic == pytest.approx(2.5)
    assert tied.p_value == pytest.approx(3 / 6)


def test_bootstrap_ci_of_a_constant_is_degenerate() -> None:
    interval = stats.bootstrap_mean_ci([0.7, 0.7, 0.7, 0.7])
    assert (interval.estimate, interval.low, interval.high) == (pytest.approx(0.7),) * 3
    single = stats.bootstrap_mean_ci([0.3])
    assert single.low == single.high == single.estimate == 0.3
    diff = stats.bootstrap_diff_ci([1.0, 1.0], [0.25, 0.25, 0.25])
    assert diff.low == diff.high == diff.estimate == 0.75


def test_bootstrap_ci_covers_the_mean_inside_the_data_range_and_is_deterministic() -> None:
    values = [0.1, 0.4, 0.35, 0.8, 0.5]
    first = stats.bootstrap_mean_ci(values, samples=5000, seed=3)
    assert first == stats.bootstrap_mean_ci(values, samples=5000, seed=3)
    assert min(values) <= first.low < first.estimate < first.high <= max(values)
    assert first.estimate == pytest.approx(np.mean(values))
    # Two values {0, 1}: resampled means are 0, 0.5, 1 with probabilities 1/4, 1/2, 1/4 -> 95% interval [0, 1].
    two = stats.bootstrap_mean_ci([0.0, 1.0], samples=20000)
    assert (two.low, two.high) == (0.0, 1.0)


def test_t_interval_by_hand() -> None:
    # mean 2, s = 1, n = 3: half width t(0.975, 2) * 1 / sqrt(3) = 4.302653 / 1.732051 = 2.484138.
    interval = stats.t_interval([1.0, 2.0, 3.0])
    assert interval is not None
    assert interval.low == pytest.approx(2 - 2.484138, abs=1e-5)
    assert interval.high == pytest.approx(2 + 2.484138, abs=1e-5)
    assert stats.t_interval([1.0]) is None


def test_bootstrap_curve_band_skips_missing_steps() -> None:
    curves = [[0.1, 0.5, math.nan], [0.3, 0.5, 0.9]]
    mean, low, high = stats.bootstrap_curve_band(curves, samples=4000)
    assert mean == pytest.approx([0.2, 0.5, 0.9])
    assert low[1] == high[1] == pytest.approx(0.5)  # both seeds equal: no spread
    assert low[2] == high[2] == pytest.approx(0.9)  # one seed has a value
    assert low[0] == pytest.approx(0.1) and high[0] == pytest.approx(0.3)


def test_evals_to_reach_on_a_hand_made_curve() -> None:
    curve = [math.nan, 0.2, 0.2, 0.45, 0.5, 0.5, 0.7]
    assert stats.evals_to_reach(curve, 0.2) == 2
    assert stats.evals_to_reach(curve, 0.46) == 5
    assert stats.evals_to_reach(curve, 0.7) == 7
    assert stats.evals_to_reach(curve, 0.71) is None
    assert stats.evals_to_reach(curve, 0.1 + 0.2 + 0.15) == 4  # 0.45000000000000007 counts as reached by 0.45
    assert stats.median_evals([2, 5, None]) == 5.0
    assert stats.median_evals([2, None, None]) is None  # most seeds never reached it
    assert stats.median_evals([]) is None


def test_correlations() -> None:
    x = [1.0, 2.0, 3.0, 4.0]
    assert stats.pearson(x, [2.0, 4.0, 6.0, 8.0]).r == pytest.approx(1.0)
    assert stats.spearman(x, [1.0, 10.0, 100.0, 1000.0]).r == pytest.approx(1.0)  # monotone, not linear
    assert stats.pearson(x, [1.0, 10.0, 100.0, 1000.0]).r < 0.95
    assert stats.spearman(x, [4.0, 3.0, 2.0, 1.0]).r == pytest.approx(-1.0)
    assert stats.pearson([1.0, 2.0], [1.0, 2.0]).r is None  # fewer than 3 points
    assert stats.pearson(x, [1.0, 1.0, 1.0, 1.0]).r is None  # constant


def test_paired_tests_agree_with_scipy_called_directly() -> None:
    from scipy import stats as sp

    a = [0.61, 0.66, 0.70, 0.64, 0.69, 0.58, 0.71]
    b = [0.60, 0.62, 0.58, 0.63, 0.65, 0.57, 0.66]
    d = np.subtract(a, b)
    for alternative in ("greater", "less", "two-sided"):
        ours = stats.paired_permutation_test(d, alternative=alternative)
        reference = sp.permutation_test((d,), np.mean, permutation_type="samples", alternative=alternative,
                                        n_resamples=np.inf)
        assert ours.exact and ours.p_value == pytest.approx(reference.pvalue)
        assert stats.wilcoxon_signed_rank(d, alternative=alternative).p_value == pytest.approx(
            sp.wilcoxon(a, b, alternative=alternative).pvalue)
        assert stats.t_test(a, b, paired=True, alternative=alternative).p_value == pytest.approx(
            sp.ttest_rel(a, b, alternative=alternative).pvalue)
        assert stats.t_test(a, b, paired=False, alternative=alternative).p_value == pytest.approx(
            sp.ttest_ind(a, b, equal_var=False, alternative=alternative).pvalue)
    # every difference positive: the observed sign assignment is the most extreme of 2^7
    assert stats.paired_permutation_test(np.abs(d) + 0.01).p_value == pytest.approx(1 / 2 ** 7)
    interval = stats.paired_bootstrap_ci(a, b, samples=3000, seed=5)
    reference = sp.bootstrap((d,), np.mean, n_resamples=3000, method="percentile", rng=np.random.default_rng(5))
    assert interval.estimate == pytest.approx(d.mean())
    assert interval.to_list() == pytest.approx([reference.confidence_interval.low, reference.confidence_interval.high])


def test_a_paired_design_detects_a_shift_that_the_unpaired_test_cannot_see() -> None:
    # Eight search seeds differ a lot from each other (one seed's task is easy, another's hard); within every seed
    # the guided run is 0.01 above its control. Unpaired, the seed-to-seed spread (0.1) swamps the shift; paired
    # by seed, all 8 differences are positive: the most extreme of 2^8 sign assignments.
    seed_level = np.array([0.30, 0.45, 0.52, 0.38, 0.61, 0.27, 0.49, 0.55])
    control = seed_level + np.array([0.001, -0.002, 0.0, 0.002, -0.001, 0.001, 0.0, -0.002])
    guided = control + 0.01 + np.array([0.001, 0.0, -0.001, 0.002, 0.0, 0.001, -0.002, 0.0])
    unpaired = stats.permutation_test(guided, control)
    paired = stats.difference_test(guided, control, paired=True, test="permutation")
    assert unpaired.p_value > 0.3
    assert paired.p_value == pytest.approx(1 / 2 ** 8)
    assert stats.mann_whitney(guided, control).p_value > 0.3
    assert stats.difference_test(guided, control, paired=True, test="wilcoxon").p_value < 0.01
    # the paired interval excludes 0; the independent-samples interval does not
    assert stats.paired_bootstrap_ci(guided, control, samples=4000).low > 0
    assert stats.bootstrap_diff_ci(guided, control, samples=4000).low < 0


def test_holm_adjusted_p_values_by_hand() -> None:
    # sorted 0.01, 0.03, 0.04 -> x3, x2, x1 = 0.03, 0.06, 0.04 -> running max 0.03, 0.06, 0.06
    assert stats.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    # Holm rejects more than Bonferroni: at alpha 0.05, 0.02 x 2 = 0.04 passes; Bonferroni's 0.02 x 3 = 0.06 not
    p = [0.001, 0.02, 0.3]
    assert stats.holm(p) == pytest.approx([0.003, 0.04, 0.3])
    assert stats.bonferroni(p) == pytest.approx([0.003, 0.06, 0.9])
    assert stats.holm([0.6, 0.9]) == pytest.approx([1.0, 1.0])  # capped at 1
    assert stats.holm([]) == []
    with pytest.raises(ValueError):
        stats.holm([0.5, 1.5])


def test_equivalence_is_two_one_sided_tests_against_the_margin() -> None:
    from scipy import stats as sp

    rng = np.random.default_rng(3)
    b = rng.uniform(0.4, 0.6, 12)
    level = b + rng.normal(0.0, 0.004, 12)  # differences near 0, well inside +-0.02
    shifted = b + 0.03 + rng.normal(0.0, 0.004, 12)  # 0.03 apart: outside the margin
    tost = stats.equivalence_test(level, b, margin=0.02, paired=True, test="t")
    d = level - b
    lower = sp.ttest_1samp(d, -0.02, alternative="greater").pvalue
    upper = sp.ttest_1samp(d, 0.02, alternative="less").pvalue
    assert (tost.p_lower, tost.p_upper) == (pytest.approx(lower), pytest.approx(upper))
    assert tost.p_value == pytest.approx(max(lower, upper)) and tost.p_value < 0.001
    assert stats.equivalence_test(shifted, b, margin=0.02, paired=True).p_value > 0.5
    # with the sign-flip test too (exact: every difference lies within the margin, so p = 1 / 2^12 on each side)
    assert stats.equivalence_test(level, b, margin=0.02, paired=True).p_value == pytest.approx(1 / 2 ** 12)
    # unpaired: b shifted by each margin, Welch's t on each side
    welch = stats.equivalence_test(level, b, margin=0.02, paired=False, test="t")
    assert welch.p_lower == pytest.approx(sp.ttest_ind(level, b - 0.02, equal_var=False, alternative="greater").pvalue)
    with pytest.raises(ValueError):
        stats.equivalence_test(level, b, margin=0.0, paired=True)


def test_no_interval_overlap_rule_is_left() -> None:
    assert not hasattr(stats, "compare_intervals") and not hasattr(stats, "IntervalComparison")


def test_nested_bootstrap_widens_with_seed_spread():
    from assemblenet.search.stats import bootstrap_mean_ci, bootstrap_nested_ci

    rng = np.random.default_rng(0)
    videos = [list(rng.integers(0, 2, 200)) for _ in range(3)]
    single = bootstrap_nested_ci(videos[:1], samples=2000)
    assert single == bootstrap_mean_ci(videos[0], samples=2000)  # one seed: the test-set interval alone
    agreeing = bootstrap_nested_ci(videos, samples=2000)
    spread = bootstrap_nested_ci([[v * 0.2 for v in videos[0]], videos[1], [min(1, v + 0.5) for v in videos[2]]],
                                 samples=2000)
    assert agreeing.low <= agreeing.estimate <= agreeing.high
    assert spread.high - spread.low > 2 * (agreeing.high - agreeing.low)  # seed disagreement widens it
    assert agreeing.estimate == pytest.approx(np.mean([np.mean(v) for v in videos]))
