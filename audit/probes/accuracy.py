from __future__ import annotations

from audit.context import ProbeContext, ProbeResult
from audit.metrics.classification import accuracy_score, macro_f1_score, recall_per_class
from audit.registry import probe


@probe("accuracy", metrics=("accuracy", "macro_f1", "recall_{label}"))
def accuracy(ctx: ProbeContext) -> ProbeResult:
    """Accuracy, macro-F1 and per-class recall on the eval split."""
    y, labels = ctx.eval.labels, ctx.suite.labels

    def measure(scorer) -> dict[str, float]:
        pred = scorer.predict(ctx.eval.texts)
        recall = recall_per_class(y, pred, len(labels))
        return {"accuracy": accuracy_score(y, pred), "macro_f1": macro_f1_score(y, pred, len(labels)),
                **{f"recall_{lab}": float(r) for lab, r in zip(labels, recall)}}

    return ctx.for_both(measure)
