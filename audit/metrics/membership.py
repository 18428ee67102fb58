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


def text_lengths(texts) -> np.ndarray:
    """Log word and character counts: a length shift is the plainest way two sets of texts differ."""
    return np.array([[math.log1p(len(t.split())), math.log1p(len(t))] for t in texts])


def blind_scores(candidates: list[str], reference: list[str], seed: int, folds: int = 5) -> np.ndarray:
    """Out-of-fold probabilities that each text (candidates, then reference) is a candidate, from a classifier
    that never sees the model: word 1-2-gram and character 2-4-gram TF-IDF features and the texts' lengths,
    logistic regression, ``folds``-fold stratified cross-validation (seeded). Das et al. 2024 show such a
    "blind" classifier often separates published member and non-member sets better than membership attacks
    do: when it separates a benchmark from its reference set, the two differ in kind, and a model's AUROC
    says nothing of training. (Measured: length features lift ARC-Easy vs ARC-Challenge, 100 items each,
    from 0.46 to 0.54 and leave a random split of one set at 0.50.)"""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline, make_union
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    texts = list(candidates) + list(reference)
    y = np.r_[np.ones(len(candidates)), np.zeros(len(reference))]
    features = make_union(TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True),
                          TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), sublinear_tf=True),
                          make_pipeline(FunctionTransformer(text_lengths), StandardScaler()))
    classifier = make_pipeline(features, LogisticRegression(C=1.0, max_iter=2000))
    split = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    return cross_val_predict(classifier, texts, y, cv=split, method="predict_proba")[:, 1]


def auroc_excess(model_scores: tuple[np.ndarray, np.ndarray], blind: tuple[np.ndarray, np.ndarray]) -> float:
    """How far the model's membership AUROC exceeds the blind classifier's on the same candidates and reference
    ((candidate scores, reference scores) for each)."""
    return membership_auroc_score(*model_scores) - membership_auroc_score(*blind)
