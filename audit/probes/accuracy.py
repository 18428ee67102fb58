"""Accuracy (Wilson CI), macro-F1 and per-class recall on the eval split; for multiple choice also lm-eval's
acc_norm (choices ranked by log-likelihood per character); for generation the exact match of each answer the
suite's filters read out (``accuracy`` is the first filter's); with a baseline, paired bootstrap CIs of the
differences (for regression gates)."""

from __future__ import annotations

import numpy as np

from audit.context import ProbeContext, ProbeResult
from audit.contract import Estimate
from audit.metrics.classification import macro_f1_score, recall_per_class
from audit.metrics.stats import bootstrap_ci, wilson_interval
from audit.suite import GENERATE, MULTIPLE_CHOICE

SPEC = {
    "tasks": ["classification", "multiple_choice", "generate"],
    "params": {
        "answers": {"type": "list", "default": None, "nullable": True, "choices_from": "answers"},
        "n_bootstrap": {"type": "int", "default": 1000, "min": 10},
        "confidence": {"type": "float", "default": 0.95, "above": 0, "below": 1},
    },
    "metrics": {
        "accuracy": {"ci": True, "delta_ci": True, "range": ["chance", 1]},
        "accuracy_norm": {"ci": True, "delta_ci": True, "range": ["chance", 1]},
        "exact_match_{answers}": {"ci": True, "delta_ci": True, "range": [0, 1]},
        "macro_f1": {"range": [0, 1]},
        "recall_{labels}": {"range": [0, 1]},
    },
}
NO_CLASSES = "a generation has no classes or choices"


def run(ctx: ProbeContext, *, answers: list[str], n_bootstrap: int, confidence: float) -> ProbeResult:
    y, labels, inputs = ctx.eval.labels, ctx.suite.labels, ctx.eval.inputs
    kind = ctx.suite.task.kind
    right: dict[str, dict[str, np.ndarray]] = {}

    def measure(scorer) -> dict:
        if kind == GENERATE:
            hits = {f"exact_match_{name}": scorer.right(inputs, y, name) for name in answers}
            right[scorer.role] = {"accuracy": scorer.right(inputs, y)} | hits
        else:
            pred = scorer.predict(inputs)
            right[scorer.role] = {"accuracy": pred == y} | (
                {"accuracy_norm": scorer.predict_norm(inputs) == y} if kind == MULTIPLE_CHOICE else {})
        out = {name: Estimate(float(r.mean()), wilson_interval(int(r.sum()), len(r), confidence), len(r))
               for name, r in right[scorer.role].items()}
        if kind == GENERATE:
            return out | {"accuracy_norm": Estimate(None, note=NO_CLASSES), "macro_f1": Estimate(None, note=NO_CLASSES)}
        recall = recall_per_class(y, pred, len(labels))
        return out | {"macro_f1": macro_f1_score(y, pred, len(labels)),
                      **{f"recall_{lab}": float(r) for lab, r in zip(labels, recall)}}

    result = ctx.for_both(measure)
    if ctx.baseline is not None:
        for name in right["model"]:
            pair = (right["model"][name].astype(float), right["baseline"][name].astype(float))
            result.delta_ci[name] = bootstrap_ci(lambda a, b: a.mean() - b.mean(), pair, n_bootstrap, confidence, ctx.seed)
    if kind == GENERATE:
        result.details = {"answers": {name: f.regex for name, f in
                                      zip(ctx.suite.task.generation.filter_names, ctx.suite.task.generation.filters)}}
    return result
