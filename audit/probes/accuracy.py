from __future__ import annotations

from audit.context import ProbeContext, ProbeResult
from audit.metrics.classification import accuracy_score, macro_f1_score, recall_per_class
from audit.metrics.stats import bootstrap_ci
from audit.registry import probe


@probe("accuracy", metrics=("accuracy", "macro_f1", "recall_{label}"))
def accuracy(ctx: ProbeContext, *, n_bootstrap: int = 1000, confidence: float = 0.95) -> ProbeResult:
    """Accuracy, macro-F1 and per-class recall on the eval split; with a baseline, a paired
    bootstrap CI of the accuracy difference (for regression gates)."""
    y, labels = ctx.eval.labels, ctx.suite.labels
    preds = {}

    def measure(scorer) -> dict[str, float]:
        pred = preds[scorer.role] = scorer.predict(ctx.eval.texts)
        recall = recall_per_class(y, pred, len(labels))
        return {"accuracy": accuracy_score(y, pred), "macro_f1": macro_f1_score(y, pred, len(labels)),
                **{f"recall_{lab}": float(r) for lab, r in zip(labels, recall)}}

    result = ctx.for_both(measure)
    if ctx.baseline is not None:
        right = {role: (p == y).astype(float) for role, p in preds.items()}
        result.delta_ci["accuracy"] = bootstrap_ci(lambda a, b: a.mean() - b.mean(), (right["model"], right["baseline"]),
                                                   n_bootstrap, confidence, ctx.seed)
    return result
