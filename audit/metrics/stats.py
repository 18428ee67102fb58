"""Confidence intervals and tests for proportions: pure functions of counts."""

from __future__ import annotations

import math

from scipy import stats


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion; (nan, nan) when ``n`` is 0."""
    if n == 0:
        return math.nan, math.nan
    ci = stats.binomtest(successes, n).proportion_ci(confidence_level=confidence, method="wilson")
    return float(ci.low), float(ci.high)


def fisher_exact_p(correct_a: int, n_a: int, correct_b: int, n_b: int) -> float:
    """Two-sided Fisher's exact test that two groups have the same accuracy; nan if a group is empty."""
    if n_a == 0 or n_b == 0:
        return math.nan
    table = [[correct_a, n_a - correct_a], [correct_b, n_b - correct_b]]
    return float(stats.fisher_exact(table, alternative="two-sided").pvalue)
