"""Last-word prediction (LAMBADA): the share of items whose target word is the model's greedy continuation
(every target token its top choice, lm-eval's acc), with a Wilson CI, and the perplexity of the targets
(exp of minus the mean target log-likelihood, as lm-eval reports it); against the baseline, a paired
bootstrap CI of the accuracy difference and the items whose outcome flipped."""

from __future__ import annotations

import numpy as np

from audit.context import ProbeContext, ProbeResult
from audit.contract import Estimate
from audit.metrics.stats import bootstrap_ci, wilson_interval

SPEC = {
    "tasks": ["last_word"],
    "params": {
        "max_examples": {"type": "int", "default": 20, "min": 0},
        "n_bootstrap": {"type": "int", "default": 1000, "min": 10},
        "confidence": {"type": "float", "default": 0.95, "above": 0, "below": 1},
    },
    "metrics": {
        "accuracy": {"ci": True, "delta_ci": True, "range": [0, 1]},
        "perplexity": {"better": "lower"},
        "flip_rate": {"better": "lower", "ci": True, "vs_baseline": True, "range": [0, 1]},
    },
}


def run(ctx: ProbeContext, *, max_examples: int, n_bootstrap: int, confidence: float) -> ProbeResult:
    items = ctx.eval.items
    outcome = {}

    def measure(scorer) -> dict:
        scores = np.stack([s[0] for s in scorer.continuation_scores(items)])  # one continuation per item
        right = outcome[scorer.role] = scores[:, 1] == 1
        return {"accuracy": Estimate(float(right.mean()), wilson_interval(int(right.sum()), len(right), confidence),
                                     len(right)),
                "perplexity": float(np.exp(-scores[:, 0].mean()))}

    result = ctx.for_both(measure)
    if ctx.baseline is None:
        return result
    mine, theirs = outcome["model"], outcome["baseline"]
    result.delta_ci["accuracy"] = bootstrap_ci(lambda a, b: a.mean() - b.mean(), (mine.astype(float), theirs.astype(float)),
                                               n_bootstrap, confidence, ctx.seed)
    flipped = np.flatnonzero(mine != theirs)
    result.metrics["flip_rate"] = Estimate(len(flipped) / len(mine), wilson_interval(len(flipped), len(mine), confidence),
                                           len(mine))
    result.details = {"flipped_examples": [
        {"row": int(ctx.eval.rows[i]), "text": ctx.eval.texts[i], "target": items[i].continuations[0].strip(),
         "direction": "good_to_bad" if theirs[i] else "bad_to_good"} for i in flipped[:max_examples]],
        "confidence": confidence}
    return result
