from __future__ import annotations

import numpy as np

from audit.context import ProbeContext, ProbeResult
from audit.metrics.classification import accuracy_score, flip_rate
from audit.registry import probe


@probe("comparison", metrics=("flip_rate", "n_flipped", "accuracy_delta"), needs_baseline=True)
def comparison(ctx: ProbeContext, *, max_examples: int = 20) -> ProbeResult:
    """How the model's predictions differ from the baseline's on the eval split."""
    texts, y = ctx.eval.texts, ctx.eval.labels
    pred, base = ctx.model.predict(texts), ctx.baseline.predict(texts)
    flipped = np.flatnonzero(pred != base)
    labels = ctx.suite.labels
    examples = [{"row": int(ctx.eval.rows[i]), "text": texts[i], "label": labels[y[i]],
                 "model": labels[pred[i]], "baseline": labels[base[i]]} for i in flipped[:max_examples]]
    metrics = {"flip_rate": flip_rate(pred, base), "n_flipped": float(len(flipped)),
               "accuracy_delta": accuracy_score(y, pred) - accuracy_score(y, base)}
    return ProbeResult(metrics, details={"flipped_examples": examples})
