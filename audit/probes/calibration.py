"""ECE (equal-width, equal-mass, classwise), MCE, Brier, NLL with bootstrap CIs, reliability diagrams,
and temperature scaling fitted on a held-out split (never the eval split)."""

from __future__ import annotations

from functools import partial

import numpy as np

from audit.context import ProbeContext, ProbeResult
from audit.contract import Estimate
from audit.metrics import calibration as cal
from audit.metrics.stats import bootstrap_ci
from audit.suite import GENERATE

SPEC = {
    "tasks": ["classification", "multiple_choice", "generate"],
    "params": {
        "n_bins": {"type": "int", "default": 15, "min": 2, "max": 1000},
        "fit_split": {"type": "str", "default": "reference", "nullable": True, "choices_from": "splits"},
        "fit_size": {"type": "int", "default": 1000, "min": 10},
        "n_bootstrap": {"type": "int", "default": 200, "min": 10},
        "confidence": {"type": "float", "default": 0.95, "above": 0, "below": 1},
    },
    "metrics": {
        "ece": {"better": "lower", "ci": True, "delta_ci": True, "range": [0, 1]},
        "ece_adaptive": {"better": "lower", "ci": True, "delta_ci": True, "range": [0, 1]},
        "classwise_ece": {"better": "lower", "ci": True, "delta_ci": True, "range": [0, 1]},
        "mce": {"better": "lower", "ci": True, "delta_ci": True, "range": [0, 1]},
        "brier": {"better": "lower", "ci": True, "delta_ci": True},
        "nll": {"better": "lower", "ci": True, "delta_ci": True},
        "temperature": {"better": "none"},
        "ece_after_scaling": {"better": "lower"},
        "nll_after_scaling": {"better": "lower"},
    },
}

BINNED = {"ece": cal.expected_calibration_error, "ece_adaptive": cal.adaptive_calibration_error,
          "classwise_ece": cal.classwise_calibration_error, "mce": cal.maximum_calibration_error}
MEASURES = {**BINNED, "brier": cal.brier_score_loss, "nll": cal.log_loss}


def measures(n_bins: int) -> dict:
    """Metric name -> function of (probs, labels); each gets a bootstrap CI."""
    return {m: partial(f, n_bins=n_bins) if m in BINNED else f for m, f in MEASURES.items()}


def fit_sample(ctx: ProbeContext, split: str, size: int):
    """A seeded sample of the held-out split, without any text of the eval split (``--limit`` caps it)."""
    held = ctx.split(split)
    eval_texts = set(ctx.eval.texts)
    keep = np.array([i for i, t in enumerate(held.texts) if t not in eval_texts], dtype=np.int64)
    if not len(keep):
        raise ValueError(f"split '{split}' has no examples outside the eval split to fit the temperature on")
    return held.subset(keep).sample(ctx.cap(size), ctx.seed)


def run(ctx: ProbeContext, *, n_bins: int, fit_split: str | None, fit_size: int, n_bootstrap: int,
        confidence: float) -> ProbeResult:
    if ctx.suite.task.kind == GENERATE:
        return ProbeResult({}, skipped="greedy generation gives one answer per item, no probability over answers to "
                                       "calibrate")
    y = ctx.eval.labels
    held = fit_sample(ctx, fit_split, fit_size) if fit_split else None
    unfitted = Estimate(None, note="no held-out split to fit a temperature on (fit_split: null)")
    fns = measures(n_bins)
    diagrams: dict = {}

    def measure(scorer):
        probs = scorer.proba(ctx.eval.inputs)
        out = {m: Estimate(f(probs, y), bootstrap_ci(f, (probs, y), n_bootstrap, confidence, ctx.seed), len(y))
               for m, f in fns.items()}
        diagrams[scorer.role] = {"before": cal.reliability_diagram(probs, y, n_bins)}
        if held is None:
            return out | dict.fromkeys(("temperature", "ece_after_scaling", "nll_after_scaling"), unfitted), probs
        t = cal.fit_temperature(scorer.proba(held.inputs), held.labels)
        scaled = cal.temperature_scale(probs, t)
        out.update(temperature=t, ece_after_scaling=cal.expected_calibration_error(scaled, y, n_bins),
                   nll_after_scaling=cal.log_loss(scaled, y))
        diagrams[scorer.role]["after_scaling"] = cal.reliability_diagram(scaled, y, n_bins)
        return out, probs

    metrics, probs = measure(ctx.model)
    details = {"reliability": diagrams, "fit_split": fit_split, "n_fit": len(held) if held else 0,
               "confidence": confidence}
    if ctx.baseline is None:
        return ProbeResult(metrics, details=details)
    baseline_metrics, base_probs = measure(ctx.baseline)
    delta_ci = {m: bootstrap_ci(lambda p, q, t, f=f: f(p, t) - f(q, t), (probs, base_probs, y), n_bootstrap,
                                confidence, ctx.seed) for m, f in fns.items()}
    return ProbeResult(metrics, baseline_metrics, details, delta_ci=delta_ci)
