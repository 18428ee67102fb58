"""Does the answer depend on the wording of the prompt? The same sampled multiple-choice or generation items
are asked with the suite's own prompt and with every rewording the suite declares under ``prompts:`` (and,
with ``zero_shot``, without the suite's few-shot examples); reported per prompt: accuracy (Wilson CI);
across prompts: the spread (best minus worst accuracy, paired bootstrap CI), the worst accuracy, and the
share of items given the same answer under every prompt (consistency). With a baseline, paired bootstrap
CIs of the spread's and consistency's differences, and the items whose answer the rewording changed.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from audit.causal_lm import option_text, prompt_text
from audit.context import ProbeContext, ProbeResult
from audit.contract import Estimate
from audit.data import render_choices, render_queries
from audit.suite import GENERATE
from audit.metrics.stats import bootstrap_ci, wilson_interval

SPEC = {
    "tasks": ["multiple_choice", "generate"],
    "params": {
        "prompts": {"type": "list", "default": None, "nullable": True, "choices_from": "prompts"},
        "zero_shot": {"type": "bool", "default": False},
        "sample": {"type": "int", "default": 100, "min": 1, "nullable": True},
        "max_examples": {"type": "int", "default": 10, "min": 0},
        "n_bootstrap": {"type": "int", "default": 1000, "min": 10},
        "confidence": {"type": "float", "default": 0.95, "above": 0, "below": 1},
    },
    "metrics": {
        "own_prompt_accuracy": {"ci": True, "range": ["chance", 1]},
        "accuracy_{prompts}": {"ci": True, "range": ["chance", 1]},
        "zero_shot_accuracy": {"ci": True, "range": ["chance", 1]},
        "accuracy_spread": {"better": "lower", "ci": True, "delta_ci": True, "range": [0, 1]},
        "worst_accuracy": {"range": [0, 1]},
        "consistency": {"ci": True, "delta_ci": True, "range": [0, 1]},
    },
}


def spread(right: np.ndarray) -> float:
    """Best minus worst accuracy over the prompts (columns)."""
    acc = right.mean(axis=0)
    return float(acc.max() - acc.min())


ZERO_SHOT = "(zero-shot)"


def run(ctx: ProbeContext, *, prompts: list[str], zero_shot: bool, sample: int | None, max_examples: int,
        n_bootstrap: int, confidence: float) -> ProbeResult:
    items = ctx.eval.sample(ctx.cap(sample), ctx.seed)
    generate = ctx.suite.task.kind == GENERATE
    without = zero_shot and ctx.suite.task.fewshot > 0
    names = [None, *prompts] + ([ZERO_SHOT] if without else [])
    asked = {name: ask(ctx, items, name) for name in names}
    n = len(items)
    details = {"n": n, "n_eval": len(ctx.eval), "confidence": confidence,
               "prompts": {name or "(own)": {"template": ctx.suite.prompt(None if name == ZERO_SHOT else name).template,
                                             "answer": ctx.suite.prompt(None if name == ZERO_SHOT else name).answer,
                                             "description": "the suite's own prompt without its few-shot examples"
                                             if name == ZERO_SHOT else ctx.suite.prompt(name).description}
                           for name in names}}
    no_zero = Estimate(None, note="zero_shot is off" if not zero_shot else "the suite has no few-shot examples to leave out")
    if len(names) == 1:
        why = "the suite declares no prompts: to compare with (prompts: in the suite, or zero_shot: true)"
        none = {k: Estimate(None, note=why) for k in ("accuracy_spread", "worst_accuracy", "consistency")}
        none["zero_shot_accuracy"] = no_zero
        return ProbeResult(none, none if ctx.baseline else None, details)
    seen: dict[str, dict[str, np.ndarray]] = {}

    def measure(scorer) -> dict:
        if generate:  # answers read out of generations, right after the suite's normalisation
            picks = np.stack([scorer.answers(asked[name]) for name in names], axis=1)
            right = np.stack([scorer.right(asked[name], items.labels) for name in names], axis=1)
        else:
            picks = np.stack([scorer.predict(asked[name]) for name in names], axis=1)  # items x prompts
            right = picks == items.labels[:, None]
        same = (picks == picks[:, :1]).all(axis=1)
        seen[scorer.role] = {"picks": picks, "right": right, "same": same}
        wilson = lambda x: Estimate(float(x.mean()), wilson_interval(int(x.sum()), n, confidence), n)
        return {"own_prompt_accuracy": wilson(right[:, 0]),
                **{f"accuracy_{name}": wilson(right[:, k + 1]) for k, name in enumerate(prompts)},
                "zero_shot_accuracy": wilson(right[:, -1]) if without else no_zero,
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
    picks, right = seen["model"]["picks"], seen["model"]["right"]
    answer = (lambda i, k: str(picks[i, k])) if generate else \
        (lambda i, k: option_text(asked[names[k]][i], picks[i, k]))
    result.details = details | {"examples": [
        {"row": int(items.rows[i]),
         "answers": {name or "(own)": {"context": asked[name][i].question if generate else prompt_text(asked[name][i]),
                                       "right": bool(right[i, k]), "answer": answer(i, k)}
                     for k, name in enumerate(names)}}
        for i in np.flatnonzero(~seen["model"]["same"])[:max_examples]]}
    return result


def ask(ctx: ProbeContext, items, name: str | None) -> list:
    """The sampled items under prompt ``name`` (None: the suite's own; ZERO_SHOT: it, without few-shot examples)."""
    if ctx.suite.task.kind == GENERATE:
        template = None if name in (None, ZERO_SHOT) else ctx.suite.prompt(name).template
        return render_queries(items, ctx.suite.eval, ctx.suite.task, template=template, fewshot=name != ZERO_SHOT)
    if name == ZERO_SHOT:
        items = dataclasses.replace(items, prefixes=None)
        name = None
    return render_choices(items, ctx.suite.eval, ctx.suite.labels, ctx.suite.task, prompt=ctx.suite.prompt(name))[0]
