"""Calibration metrics: pure functions of (probabilities (n, k), integer labels (n,)).

``*_error`` and ``*_loss`` are lower-is-better. Top-label metrics use the predicted class's
probability as the confidence. Every function validates its inputs with one message template.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize_scalar
from sklearn.metrics import log_loss as sk_log_loss

N_BINS = 15


def check_probs(probs, labels) -> tuple[np.ndarray, np.ndarray]:
    probs, labels = np.asarray(probs, dtype=np.float64), np.asarray(labels)
    problem = None
    if probs.ndim != 2 or probs.shape[1] < 2:
        problem = f"probs must have shape (n, n_classes >= 2), got {probs.shape}"
    elif labels.shape != (probs.shape[0],):
        problem = f"labels must have shape ({probs.shape[0]},), got {labels.shape}"
    elif probs.shape[0] == 0:
        problem = "no examples"
    elif not np.allclose(probs.sum(axis=1), 1.0, atol=1e-4) or (probs < 0).any():
        problem = "each row of probs must be a probability distribution"
    elif labels.min() < 0 or labels.max() >= probs.shape[1]:
        problem = f"labels must lie in [0, {probs.shape[1] - 1}]"
    if problem:
        raise ValueError(f"invalid calibration input: {problem}")
    return probs / probs.sum(axis=1, keepdims=True), labels.astype(np.int64)  # exact sums for float32 inputs


def _binned_gaps(conf: np.ndarray, hit: np.ndarray, edges: np.ndarray | None, n_bins: int):
    """Per non-empty bin: (weight, |accuracy - confidence|, mean confidence, accuracy, count).

    ``edges`` None means equal-mass bins (sorted, split into ``n_bins`` near-equal groups)."""
    if edges is None:
        order = np.argsort(conf, kind="stable")
        groups = [g for g in np.array_split(order, min(n_bins, len(conf))) if len(g)]
    else:
        idx = np.clip(np.searchsorted(edges, conf, side="right") - 1, 0, n_bins - 1)
        groups = [np.flatnonzero(idx == b) for b in range(n_bins)]
    rows = [(len(g) / len(conf), conf[g].mean(), hit[g].mean(), len(g)) for g in groups if len(g)]
    w, c, a, n = (np.array(col) for col in zip(*rows))
    return w, np.abs(a - c), c, a, n


def _top_label(probs, labels):
    probs, labels = check_probs(probs, labels)
    return probs.max(axis=1), (probs.argmax(axis=1) == labels).astype(np.float64)


def expected_calibration_error(probs, labels, n_bins: int = N_BINS) -> float:
    """Top-label ECE with equal-width confidence bins (Guo et al. 2017)."""
    w, gap, *_ = _binned_gaps(*_top_label(probs, labels), np.linspace(0, 1, n_bins + 1), n_bins)
    return float((w * gap).sum())


def adaptive_calibration_error(probs, labels, n_bins: int = N_BINS) -> float:
    """Top-label ECE with equal-mass bins (Nixon et al. 2019), robust to confidence pile-ups."""
    w, gap, *_ = _binned_gaps(*_top_label(probs, labels), None, n_bins)
    return float((w * gap).sum())


def maximum_calibration_error(probs, labels, n_bins: int = N_BINS) -> float:
    """The largest |accuracy - confidence| over non-empty equal-width bins."""
    _, gap, *_ = _binned_gaps(*_top_label(probs, labels), np.linspace(0, 1, n_bins + 1), n_bins)
    return float(gap.max())


def classwise_calibration_error(probs, labels, n_bins: int = N_BINS) -> float:
    """Mean over classes of the equal-width ECE of P(class) against the class's frequency (Kull et al. 2019)."""
    probs, labels = check_probs(probs, labels)
    edges = np.linspace(0, 1, n_bins + 1)
    per_class = []
    for k in range(probs.shape[1]):
        w, gap, *_ = _binned_gaps(probs[:, k], (labels == k).astype(np.float64), edges, n_bins)
        per_class.append((w * gap).sum())
    return float(np.mean(per_class))


def brier_score_loss(probs, labels) -> float:
    """Multi-class Brier score: mean squared distance to the one-hot label (2x sklearn's binary form)."""
    probs, labels = check_probs(probs, labels)
    onehot = np.eye(probs.shape[1])[labels]
    return float(((probs - onehot) ** 2).sum(axis=1).mean())


def log_loss(probs, labels) -> float:
    """Negative log-likelihood (sklearn's log_loss with the full label set)."""
    probs, labels = check_probs(probs, labels)
    return float(sk_log_loss(labels, probs, labels=np.arange(probs.shape[1])))


def reliability_diagram(probs, labels, n_bins: int = N_BINS) -> dict[str, list[float]]:
    """Equal-width bins: mean confidence, accuracy and count of each non-empty bin."""
    _, _, conf, acc, count = _binned_gaps(*_top_label(probs, labels), np.linspace(0, 1, n_bins + 1), n_bins)
    return {"confidence": conf.tolist(), "accuracy": acc.tolist(), "count": count.astype(int).tolist()}


def temperature_scale(probs, temperature: float) -> np.ndarray:
    """softmax(log p / T): the same ranking, sharper (T < 1) or softer (T > 1) probabilities."""
    logits = np.log(np.clip(np.asarray(probs, dtype=np.float64), 1e-12, 1.0)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    e = np.exp(logits)
    return e / e.sum(axis=1, keepdims=True)


def fit_temperature(probs, labels) -> float:
    """The temperature minimising NLL on held-out (probs, labels) (Guo et al. 2017)."""
    probs, labels = check_probs(probs, labels)
    res = minimize_scalar(lambda log_t: log_loss(temperature_scale(probs, np.exp(log_t)), labels),
                          bounds=(-3.0, 3.0), method="bounded")
    return float(np.exp(res.x))
