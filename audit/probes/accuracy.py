"""Accuracy (Wilson CI), macro-F1 and per-class recall on the eval split; for multiple choice also lm-eval's
acc_norm (choices ranked by log-likelihood per character); with a baseline, paired bootstrap CIs of the
differences (for regression gates)."""

from __future__ import annotations

import numpy as np

from audit.context import ProbeContext, ProbeResult
from audit.contract import Estimate
from audit.metrics.classification import macro_f1_score, recall_per_class
from audit.metrics.stats import bootstrap_ci, wilson_interval
from audit.suite import MULTIPLE_CHOICE

SPEC = {
    "tasks": ["classification", "multiple_choice"],
    "params": {
        "n_bootstrap": {"type": "int", "default": 1000, "min": 10},
        "confidence": {"type": "float", "default": 0.95, "above": 0, "below": 1},
    },
    "metrics": {
        "accuracy": {"ci": True, "delta_ci": True, "range": ["chance", 1]},
        "accuracy_norm": {"ci": True, "delta_ci": True, "range": ["chance", 1]},
        "macro_f1": {"range": [0, 1]},
        "recall_{labels}": {"range": [0, 1]},
    },
}


def run(ctx: ProbeContext, *, n_bootstrap: int, confidence: float) -> ProbeResult:
    y, labels, inputs = ctx.eval.labels, ctx.suite.labels, ctx.eval.inputs
    choices = ctx.suite.task.kind == MULTIPLE_CHOICE
    right: dict[str, dict[str, np.ndarray]] = {}

    def measure(scorer) -> dict:
        pred = scorer.predict(inputs)
        recall = recall_per_class(y, pred, len(labels))
        right[scorer.role] = {"accuracy": pred == y} | ({"accuracy_norm": scorer.predict_norm(inputs) == y} if choices
                                                         else {})
        out = {name: Estimate(float(r.mean()), wilson_interval(int(r.sum()), len(r), confidence), len(r))
               for name, r in right[scorer.role].items()}
        return out | {"macro_f1": macro_f1_score(y, pred, len(labels)),
                      **{f"recall_{lab}": float(r) for lab, r in zip(labels, recall)}}

    result = ctx.for_both(measure)
    if ctx.baseline is not None:
        for name in right["model"]:
            pair = (right["model"][name].astype(float), right["baseline"][name].astype(float))
            result.delta_ci[name] = bootstrap_ci(lambda a, b: a.mean() - b.mean(), pair, n_bootstrap, confidence, ctx.seed)
    return result
