"""How the model's predictions differ from the baseline's: flips (with direction), accuracy delta
with a paired bootstrap CI and McNemar's exact test, KL/JS divergence, calibration and per-class deltas.
For generation a flip is an answer that changed (the suite's first filter reads it out of each generation);
the distributions over answers do not exist there (the agreement probe compares the generations)."""

from __future__ import annotations

import numpy as np

from audit.context import ProbeContext, ProbeResult
from audit.contract import Estimate
from audit.metrics.calibration import expected_calibration_error
from audit.metrics.classification import flip_rate, recall_per_class
from audit.metrics.stats import bootstrap_ci, js_divergence, kl_divergence, mcnemar_exact_p, wilson_interval

SPEC = {
    "tasks": ["classification", "multiple_choice", "generate"],
    "needs_baseline": True,
    "params": {
        "max_examples": {"type": "int", "default": 20, "min": 0},
        "n_bootstrap": {"type": "int", "default": 1000, "min": 10},
        "confidence": {"type": "float", "default": 0.95, "above": 0, "below": 1},
    },
    "metrics": {
        "flip_rate": {"better": "lower", "ci": True, "range": [0, 1]},
        "n_flipped": {"better": "lower"},
        "good_to_bad_rate": {"better": "lower", "range": [0, 1]},
        "bad_to_good_rate": {"range": [0, 1]},
        "n_good_to_bad": {"better": "lower"},
        "n_bad_to_good": {},
        "accuracy_delta": {"ci": True},
        "mcnemar_p_value": {"better": "none"},
        "kl_mean": {"better": "lower"},
        "js_mean": {"better": "lower"},
        "ece_delta": {"better": "lower"},
        "recall_delta_{labels}": {},
    },
}


NO_DISTRIBUTION = "a generation gives one answer, no distribution over answers"


def run(ctx: ProbeContext, *, max_examples: int, n_bootstrap: int, confidence: float) -> ProbeResult:
    if not ctx.model.has_probabilities:
        return generated(ctx, max_examples, n_bootstrap, confidence)
    texts, y, labels = ctx.eval.texts, ctx.eval.labels, ctx.suite.labels
    p_model, p_base = ctx.model.proba(ctx.eval.inputs), ctx.baseline.proba(ctx.eval.inputs)
    pred, base = p_model.argmax(axis=1), p_base.argmax(axis=1)
    right, base_right = pred == y, base == y
    flipped = np.flatnonzero(pred != base)
    recall_delta = recall_per_class(y, pred, len(labels)) - recall_per_class(y, base, len(labels))
    metrics = flips(pred, base, right, base_right, n_bootstrap, confidence, ctx.seed) | {
        "kl_mean": float(kl_divergence(p_base, p_model).mean()), "js_mean": float(js_divergence(p_base, p_model).mean()),
        "ece_delta": expected_calibration_error(p_model, y) - expected_calibration_error(p_base, y),
        **{f"recall_delta_{lab}": float(d) for lab, d in zip(labels, recall_delta)},
    }
    examples = [{"row": int(ctx.eval.rows[i]), "text": texts[i], "label": labels[y[i]], "model": labels[pred[i]],
                 "baseline": labels[base[i]], "direction": direction(right[i], base_right[i]),
                 "model_confidence": float(p_model[i].max()), "baseline_confidence": float(p_base[i].max())}
                for i in forgotten_first(flipped, base_right)[:max_examples]]
    return ProbeResult(metrics, details={"flipped_examples": examples, "confidence": confidence})


def flips(pred, base, right, base_right, n_bootstrap: int, confidence: float, seed: int) -> dict:
    """The metrics of changed answers that every task has."""
    n = len(right)
    changed = round(flip_rate(pred, base) * n)
    good_to_bad, bad_to_good = int((base_right & ~right).sum()), int((right & ~base_right).sum())
    delta_ci = bootstrap_ci(lambda a, b: a.mean() - b.mean(), (right.astype(float), base_right.astype(float)),
                            n_bootstrap, confidence, seed)
    return {"flip_rate": Estimate(changed / n, wilson_interval(changed, n, confidence), n), "n_flipped": float(changed),
            "good_to_bad_rate": good_to_bad / n, "bad_to_good_rate": bad_to_good / n,
            "n_good_to_bad": float(good_to_bad), "n_bad_to_good": float(bad_to_good),
            "accuracy_delta": Estimate(float(right.mean() - base_right.mean()), delta_ci, n),
            "mcnemar_p_value": mcnemar_exact_p(bad_to_good, good_to_bad)}


def generated(ctx: ProbeContext, max_examples: int, n_bootstrap: int, confidence: float) -> ProbeResult:
    """Changed answers of a generative suite (its first filter's reading of each generation)."""
    items, y = ctx.eval.items, ctx.eval.labels
    pred, base = ctx.model.answers(items), ctx.baseline.answers(items)
    right, base_right = ctx.model.right(items, y), ctx.baseline.right(items, y)
    metrics = flips(pred, base, right, base_right, n_bootstrap, confidence, ctx.seed) | {
        name: Estimate(None, note=NO_DISTRIBUTION) for name in ("kl_mean", "js_mean", "ece_delta")}
    changed = np.flatnonzero(pred != base)
    examples = [{"row": int(ctx.eval.rows[i]), "text": items[i].question, "label": items[i].target,
                 "model": pred[i], "baseline": base[i], "direction": direction(right[i], base_right[i])}
                for i in forgotten_first(changed, base_right)[:max_examples]]
    return ProbeResult(metrics, details={"flipped_examples": examples, "confidence": confidence,
                                         "answer": ctx.suite.task.generation.filter_names[0]})


def direction(right: bool, base_right: bool) -> str:
    return "good_to_bad" if base_right else "bad_to_good" if right else "bad_to_bad"


def forgotten_first(flipped, base_right) -> list[int]:
    """Flipped items, those the baseline got right first."""
    return [i for i in flipped if base_right[i]] + [i for i in flipped if not base_right[i]]
