"""Membership-inference statistics for causal LMs: pure functions of token log-likelihoods.

Min-K% Prob (Shi et al. 2023): the mean log-likelihood of a text's k% least likely tokens; text seen in
training has fewer very unlikely tokens. Min-K%++ (Zhang et al. 2024) first standardizes each token's
log-likelihood by the mean and standard deviation of the log-likelihood under the model's whole
next-token distribution at that position, so a token is "unlikely" relative to what the model expected.
Both are higher for members. The exchangeability test (Oren et al. 2023) asks whether a model prefers a
benchmark's canonical item order over random permutations of it, which only training on the file can
explain, since the items of a benchmark are exchangeable.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import optimize, stats
from sklearn.metrics import roc_auc_score


def _lowest_mean(scores: np.ndarray, k: float) -> float:
    """Mean of the ``k`` fraction (0 < k <= 1) lowest scores, at least one of them."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.size == 0:
        return math.nan
    n = max(1, int(len(scores) * k))
    return float(np.sort(scores)[:n].mean())


def min_k_score(logprobs: np.ndarray, k: float = 0.2) -> float:
    """Min-K% Prob of one text from its per-token log-likelihoods."""
    return _lowest_mean(logprobs, k)


def min_k_plus_plus_score(logprobs: np.ndarray, mu: np.ndarray, sigma: np.ndarray, k: float = 0.2) -> float:
    """Min-K%++ of one text: per-token (log p - mu) / sigma, then the mean of the k% lowest."""
    return _lowest_mean((np.asarray(logprobs) - np.asarray(mu)) / np.asarray(sigma), k)


def membership_auroc_score(candidates: np.ndarray, reference: np.ndarray) -> float:
    """Probability that a candidate text outscores a reference text (ties count half): 0.5 when the two sets
    are indistinguishable, above it when the candidates look more like training data."""
    y = np.r_[np.ones(len(candidates)), np.zeros(len(reference))]
    return float(roc_auc_score(y, np.r_[candidates, reference]))


def exchangeability_test(canonical: np.ndarray, permuted: np.ndarray) -> tuple[float, float, np.ndarray]:
    """Oren et al.'s sharded test: per shard, the canonical order's log-likelihood minus the mean over its
    permutations (``permuted`` is shards x permutations); a one-sided t-test that the mean difference is
    positive. Returns (t, p, per-shard differences); p is nan when the differences do not vary."""
    diffs = np.asarray(canonical, dtype=np.float64) - np.asarray(permuted, dtype=np.float64).mean(axis=1)
    if len(diffs) < 2 or np.ptp(diffs) == 0:
        return math.nan, math.nan, diffs
    result = stats.ttest_1samp(diffs, 0.0, alternative="greater")
    return float(result.statistic), float(result.pvalue), diffs


def detectable_effect(shards: int, alpha: float = 0.01, power: float = 0.8) -> float:
    """The smallest effect (mean per-shard difference in units of its standard deviation) that a one-sided
    t-test over ``shards`` shards detects at level ``alpha`` with probability ``power`` (noncentral t)."""
    df = shards - 1
    critical = stats.t.ppf(1 - alpha, df)
    return float(optimize.brentq(lambda d: stats.nct.sf(critical, df, d * math.sqrt(shards)) - power, 0.0, 100.0))
