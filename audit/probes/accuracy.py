"""Accuracy (Wilson CI), macro-F1 and per-class recall on the eval split; with a baseline, a paired
bootstrap CI of the accuracy difference (for regression gates)."""

from __future__ import annotations

from audit.context import ProbeContext, ProbeResult
from audit.contract import Estimate
from audit.metrics.classification import accuracy_score, macro_f1_score, recall_per_class
from audit.metrics.stats import bootstrap_ci, wilson_interval

SPEC = {
    "params": {
        "n_bootstrap": {"type": "int", "default": 1000, "min": 10},
        "confidence": {"type": "float", "default": 0.95, "above": 0, "below": 1},
    },
    "metrics": {
        "accuracy": {"ci": True, "delta_ci": True},
        "macro_f1": {},
        "recall_{labels}": {},
    },
}


def run(ctx: ProbeContext, *, n_bootstrap: int, confidence: float) -> ProbeResult:
    y, labels = ctx.eval.labels, ctx.suite.labels
    preds = {}

    def measure(scorer) -> dict:
        pred = preds[scorer.role] = scorer.predict(ctx.eval.texts)
        recall = recall_per_class(y, pred, len(labels))
        ci = wilson_interval(int((pred == y).sum()), len(y), confidence)
        return {"accuracy": Estimate(accuracy_score(y, pred), ci, len(y)),
                "macro_f1": macro_f1_score(y, pred, len(labels)),
                **{f"recall_{lab}": float(r) for lab, r in zip(labels, recall)}}

    result = ctx.for_both(measure)
    if ctx.baseline is not None:
        right = {role: (p == y).astype(float) for role, p in preds.items()}
        result.delta_ci["accuracy"] = bootstrap_ci(lambda a, b: a.mean() - b.mean(), (right["model"], right["baseline"]),
                                                   n_bootstrap, confidence, ctx.seed)
    return result
