"""Label-based metrics. ``*_score``: higher is better; ``*_rate``: lower is better."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import f1_score, recall_score


def check_labels(*arrays: np.ndarray, names: tuple[str, ...] = ("y_true", "y_pred")) -> list[np.ndarray]:
    """One validation template for every label metric: 1-D integer arrays of equal, non-zero length."""
    out = [np.asarray(a) for a in arrays]
    for name, a in zip(names, out):
        if a.ndim != 1 or a.size == 0 or not np.issubdtype(a.dtype, np.integer):
            raise ValueError(f"{name} must be a non-empty 1-D array of integer labels, got shape {a.shape} dtype {a.dtype}")
    if len({a.size for a in out}) != 1:
        raise ValueError(f"{' and '.join(names)} must have the same length, got {[a.size for a in out]}")
    return out


def macro_f1_score(y_true, y_pred, n_classes: int) -> float:
    y_true, y_pred = check_labels(y_true, y_pred)
    return float(f1_score(y_true, y_pred, labels=list(range(n_classes)), average="macro", zero_division=0))


def recall_per_class(y_true, y_pred, n_classes: int) -> np.ndarray:
    y_true, y_pred = check_labels(y_true, y_pred)
    return recall_score(y_true, y_pred, labels=list(range(n_classes)), average=None, zero_division=0)


def flip_rate(pred_a, pred_b) -> float:
    """Share of examples whose answer differs between two models: a label or choice index, or an answer read
    out of a generation (any values that compare)."""
    pred_a, pred_b = np.asarray(pred_a, dtype=object), np.asarray(pred_b, dtype=object)
    if pred_a.ndim != 1 or pred_a.shape != pred_b.shape or pred_a.size == 0:
        raise ValueError(f"pred_a and pred_b must be non-empty 1-D arrays of the same length, got shapes "
                         f"{pred_a.shape} and {pred_b.shape}")
    return float(np.mean(pred_a != pred_b))


def chance_accuracy(y_true, n_options) -> float:
    """The accuracy of a model that ignores its input: the better of a uniform guess among each item's
    ``n_options[i]`` options and the most frequent gold answer given every time."""
    (y_true,) = check_labels(y_true, names=("y_true",))
    options = np.broadcast_to(np.asarray(n_options, dtype=np.float64), y_true.shape)
    if (options < 1).any():
        raise ValueError("every item needs at least one option")
    return max(float(np.mean(1.0 / options)), float(np.bincount(y_true).max() / y_true.size))
