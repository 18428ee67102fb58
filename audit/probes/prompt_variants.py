"""Does the answer depend on the wording of the prompt? The same sampled multiple-choice items are asked with
the suite's own prompt and with every rewording the suite declares under ``prompts:``; reported per
prompt: accuracy (Wilson CI); across prompts: the spread (best minus worst accuracy, paired bootstrap CI),
the worst accuracy, and the share of items given the same answer under every prompt (consistency).
With a baseline, paired bootstrap CIs of the spread's and consistency's differences, and the items whose
answer the rewording changed.
"""

from __future__ import annotations

import numpy as np

from audit.context import ProbeContext, ProbeResult
from audit.contract import Estimate
from audit.data import render_choices
from audit.metrics.stats import bootstrap_ci, wilson_interval

SPEC = {
    "tasks": ["multiple_choice"],
    "params": {
        "prompts": {"type": "list", "default": None, "nullable": True, "choices_from": "prompts"},
        "sample": {"type": "int", "default": 100, "min": 1, "nullable": True},
        "max_examples": {"type": "int", "default": 10, "min": 0},
        "n_bootstrap": {"type": "int", "default": 1000, "min": 10},
        "confidence": {"type": "float", "default": 0.95, "above": 0, "below": 1},
    },
    "metrics": {
        "own_prompt_accuracy": {"ci": True, "range": ["chance", 1]},
        "accuracy_{prompts}": {"ci": True, "range": ["chance", 1]},
        "accuracy_spread": {"better": "lower", "ci": True, "delta_ci": True, "range": [0, 1]},
        "worst_accuracy": {"range": [0, 1]},
        "consistency": {"ci": True, "delta_ci": True, "range": [0, 1]},
    },
}


def spread(right: np.ndarray) -> float:
    """Best minus worst accuracy over the prompts (columns)."""
    acc = right.mean(axis=0)
    return float(acc.max() - acc.min())


def run(ctx: ProbeContext, *, prompts: list[str], sample: int | None, max_examples: int, n_bootstrap: int,
        confidence: float) -> ProbeResult:
    items = ctx.eval.sample(ctx.cap(sample), ctx.seed)
    names = [None, *prompts]
    asked = {name: render_choices(items, ctx.suite.eval, ctx.suite.labels, ctx.suite.task,
                                  prompt=ctx.suite.prompt(name))[0] for name in names}
    n = len(items)
    details = {"n": n, "n_eval": len(ctx.eval), "confidence": confidence,
               "prompts": {name or "(own)": {"template": ctx.suite.prompt(name).template,
                                             "answer": ctx.suite.prompt(name).answer,
                                             "description": ctx.suite.prompt(name).description} for name in names}}
    if not prompts:
        why = "the suite declares no prompts: to compare with (prompts: in the suite)"
        none = {k: Estimate(None, note=why) for k in ("accuracy_spread", "worst_accuracy", "consistency")}
        return ProbeResult(none, none if ctx.baseline else None, details)
    seen: dict[str, dict[str, np.ndarray]] = {}

    def measure(scorer) -> dict:
        picks = np.stack([scorer.predict(asked[name]) for name in names], axis=1)  # items x prompts
        right = picks == items.labels[:, None]
        same = (picks == picks[:, :1]).all(axis=1)
        seen[scorer.role] = {"picks": picks, "right": right, "same": same}
        wilson = lambda x: Estimate(float(x.mean()), wilson_interval(int(x.sum()), n, confidence), n)
        return {"own_prompt_accuracy": wilson(right[:, 0]),
                **{f"accuracy_{name}": wilson(right[:, k + 1]) for k, name in enumerate(prompts)},
                "accuracy_spread": Estimate(spread(right), bootstrap_ci(spread, (right,), n_bootstrap, confidence,
                                                                        ctx.seed), n),
                "worst_accuracy": Estimate(float(right.mean(axis=0).min()), n=n), "consistency": wilson(same)}

    result = ctx.for_both(measure)
    if ctx.baseline is not None:
        mine, theirs = seen["model"], seen["baseline"]
        result.delta_ci["accuracy_spread"] = bootstrap_ci(lambda a, b: spread(a) - spread(b),
                                                          (mine["right"], theirs["right"]), n_bootstrap, confidence, ctx.seed)
        result.delta_ci["consistency"] = bootstrap_ci(lambda a, b: a.mean() - b.mean(),
                                                      (mine["same"].astype(float), theirs["same"].astype(float)),
                                                      n_bootstrap, confidence, ctx.seed)
    picks = seen["model"]["picks"]
    result.details = details | {"examples": [
        {"row": int(items.rows[i]), "gold": int(items.labels[i]),
         "answers": {name or "(own)": {"context": asked[name][i].context, "picked": int(picks[i, k]),
                                       "answer": asked[name][i].continuations[picks[i, k]].strip()}
                     for k, name in enumerate(names)}}
        for i in np.flatnonzero(~seen["model"]["same"])[:max_examples]]}
    return result
