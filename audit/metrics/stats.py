"""Confidence intervals, tests and divergences: pure functions of counts, labels and probabilities."""

from __future__ import annotations

import math

import numpy as np

from scipy import stats


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion; (nan, nan) when ``n`` is 0."""
    if n == 0:
        return math.nan, math.nan
    ci = stats.binomtest(successes, n).proportion_ci(confidence_level=confidence, method="wilson")
    return float(ci.low), float(ci.high)


def ratio_interval(ratios, confidence: float = 0.95) -> tuple[float, tuple[float, float] | None]:
    """(geometric mean, its t-interval) of paired timing ratios, one per alternated round: a speedup is
    multiplicative, so the interval is Student's t on the log ratios, back-transformed. None: one round."""
    logs = np.log(np.asarray(ratios, dtype=np.float64))
    centre = float(logs.mean())
    if len(logs) < 2:
        return float(np.exp(centre)), None
    half = float(stats.t.ppf(0.5 + confidence / 2, len(logs) - 1) * logs.std(ddof=1) / np.sqrt(len(logs)))
    return float(np.exp(centre)), (float(np.exp(centre - half)), float(np.exp(centre + half)))


def fisher_exact_p(correct_a: int, n_a: int, correct_b: int, n_b: int) -> float:
    """Two-sided Fisher's exact test that two groups have the same accuracy; nan if a group is empty."""
    if n_a == 0 or n_b == 0:
        return math.nan
    table = [[correct_a, n_a - correct_a], [correct_b, n_b - correct_b]]
    return float(stats.fisher_exact(table, alternative="two-sided").pvalue)


def mcnemar_exact_p(model_only_right: int, baseline_only_right: int) -> float:
    """Exact McNemar test on the discordant pairs (two-sided binomial, p = 0.5); 1.0 when there are none."""
    n = model_only_right + baseline_only_right
    if n == 0:
        return 1.0
    return float(stats.binomtest(model_only_right, n, 0.5).pvalue)


def bootstrap_ci(statistic, arrays, n_boot: int = 200, confidence: float = 0.95, seed: int = 0
                 ) -> tuple[float, float]:
    """Percentile CI of ``statistic(*arrays)`` by resampling rows (paired: one index draw for all arrays)."""
    n = len(arrays[0])
    rng = np.random.default_rng(seed)
    values = [statistic(*(a[idx] for a in arrays)) for idx in rng.integers(0, n, size=(n_boot, n))]
    alpha = (1 - confidence) / 2
    low, high = np.quantile(values, [alpha, 1 - alpha])
    return float(low), float(high)


def two_sample_bootstrap_ci(statistic, a: np.ndarray, b: np.ndarray, n_boot: int = 1000, confidence: float = 0.95,
                            seed: int = 0) -> tuple[float, float]:
    """Percentile CI of ``statistic(a, b)`` for two independent samples, each resampled on its own."""
    rng = np.random.default_rng(seed)
    values = [statistic(a[rng.integers(0, len(a), len(a))], b[rng.integers(0, len(b), len(b))]) for _ in range(n_boot)]
    alpha = (1 - confidence) / 2
    low, high = np.quantile(values, [alpha, 1 - alpha])
    return float(low), float(high)


def block_bootstrap_ci(statistic, arrays, block: int, n_boot: int = 200, confidence: float = 0.95, seed: int = 0
                       ) -> tuple[float, float]:
    """Percentile CI of ``statistic(*arrays)`` for sequences whose neighbours are not independent (the tokens of
    running text): resample whole runs of ``block`` consecutive positions (paired across arrays)."""
    n = len(arrays[0])
    starts = np.arange(0, n, block)
    rng = np.random.default_rng(seed)
    values = []
    for picks in rng.integers(0, len(starts), size=(n_boot, len(starts))):
        idx = np.concatenate([np.arange(starts[k], min(starts[k] + block, n)) for k in picks])
        values.append(statistic(*(a[idx] for a in arrays)))
    alpha = (1 - confidence) / 2
    low, high = np.quantile(values, [alpha, 1 - alpha])
    return float(low), float(high)


def kl_divergence(p, q, eps: float = 1e-12) -> np.ndarray:
    """Per-row KL(p || q) in nats."""
    p, q = np.clip(p, eps, 1.0), np.clip(q, eps, 1.0)
    return (p * (np.log(p) - np.log(q))).sum(axis=1)


def js_divergence(p, q) -> np.ndarray:
    """Per-row Jensen-Shannon divergence in nats (symmetric, at most ln 2)."""
    m = (np.asarray(p) + np.asarray(q)) / 2
    return (kl_divergence(p, m) + kl_divergence(q, m)) / 2
