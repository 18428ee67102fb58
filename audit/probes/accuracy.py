from __future__ import annotations

from audit.context import ProbeContext, ProbeResult
from audit.metrics.classification import accuracy_score, macro_f1_score, recall_per_class
from audit.metrics.stats import bootstrap_ci, wilson_interval
from audit.registry import probe


@probe("accuracy", metrics=("accuracy", "accuracy_ci_low", "accuracy_ci_high", "macro_f1", "recall_{label}"))
def accuracy(ctx: ProbeContext, *, n_bootstrap: int = 1000, confidence: float = 0.95) -> ProbeResult:
    """Accuracy (Wilson CI), macro-F1 and per-class recall on the eval split; with a baseline, a paired
    bootstrap CI of the accuracy difference (for regression gates)."""
    y, labels = ctx.eval.labels, ctx.suite.labels
    preds = {}

    def measure(scorer) -> dict[str, float]:
        pred = preds[scorer.role] = scorer.predict(ctx.eval.texts)
        recall = recall_per_class(y, pred, len(labels))
        low, high = wilson_interval(int((pred == y).sum()), len(y), confidence)
        return {"accuracy": accuracy_score(y, pred), "accuracy_ci_low": low, "accuracy_ci_high": high, "macro_f1": macro_f1_score(y, pred, len(labels)),
                **{f"recall_{lab}": float(r) for lab, r in zip(labels, recall)}}

    result = ctx.for_both(measure)
    if ctx.baseline is not None:
        right = {role: (p == y).astype(float) for role, p in preds.items()}
        result.delta_ci["accuracy"] = bootstrap_ci(lambda a, b: a.mean() - b.mean(), (right["model"], right["baseline"]),
                                                   n_bootstrap, confidence, ctx.seed)
    return result
