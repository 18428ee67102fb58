"""Does the answer depend on where the choices stand? Each sampled multiple-choice item is asked ``shifts``
times, its choices rotated cyclically (shift s puts the choice at position j at position j + s), in a
prompt that lists them with letters (the suite's own or a declared one). Reported: accuracy per shift
and its mean and worst, the share of items answered with the same choice under every shift
(consistency) and right under every shift, and the letter bias: how far the spread of the picked
letters is from that of the gold letters (total variation distance; 0 for a model that picks content,
not positions). With a baseline, paired bootstrap CIs of the differences. Cloze prompts (lm-eval's ARC
and HellaSwag format: the choices are only continuations) cannot depend on the order, and say so.
"""

from __future__ import annotations

import numpy as np

from audit.causal_lm import n_options, prompt_text
from audit.context import ProbeContext, ProbeResult
from audit.contract import Estimate
from audit.data import choices_of, render_choices
from audit.metrics.stats import bootstrap_ci, wilson_interval

SPEC = {
    "tasks": ["multiple_choice"],
    "params": {
        "prompt": {"type": "str", "default": None, "nullable": True, "choices_from": "prompts"},
        "shifts": {"type": "int", "default": 4, "min": 2, "max": 26},
        "sample": {"type": "int", "default": 100, "min": 1, "nullable": True},
        "max_examples": {"type": "int", "default": 10, "min": 0},
        "n_bootstrap": {"type": "int", "default": 1000, "min": 10},
        "confidence": {"type": "float", "default": 0.95, "above": 0, "below": 1},
    },
    "metrics": {
        "accuracy": {"ci": True, "range": ["chance", 1]},
        "mean_shift_accuracy": {"ci": True, "delta_ci": True, "range": ["chance", 1]},
        "worst_shift_accuracy": {"range": [0, 1]},
        "all_shifts_accuracy": {"ci": True, "delta_ci": True, "range": [0, 1]},
        "consistency": {"ci": True, "delta_ci": True, "range": [0, 1]},
        "letter_bias": {"better": "lower", "range": [0, 1]},
        "pick_rate_{labels}": {"better": "none"},
    },
}


def run(ctx: ProbeContext, *, prompt: str | None, shifts: int, sample: int | None, max_examples: int,
        n_bootstrap: int, confidence: float) -> ProbeResult:
    asked = ctx.suite.prompt(prompt)
    items = ctx.eval.sample(ctx.cap(sample), ctx.seed)
    sizes = np.array([n_options(item) for item in items.items])
    details = {"prompt": prompt or "the suite's own", "template": asked.template, "shifts": shifts, "n": len(items),
               "n_eval": len(ctx.eval), "items_with_fewer_choices": int((sizes < shifts).sum()),
               "confidence": confidence}
    why = ("each choice is a context of its own, scored with the same continuation (partial scoring), so the order "
           "of the choices cannot change the answer") if ctx.suite.eval.choice_contexts else None
    if why is None and not (asked.lists_choices or asked.answer == "letter"):
        why = ("the prompt does not list the choices (cloze format: each choice is scored as a continuation on its "
               "own), so their order cannot change the answer; name a prompt that lists them (choice_order: {prompt: ...})")
    if why is not None:
        empty = {name: Estimate(None, note=why) for name in ("accuracy", "mean_shift_accuracy", "worst_shift_accuracy",
                                                             "all_shifts_accuracy", "consistency", "letter_bias")}
        return ProbeResult(empty, empty if ctx.baseline else None, details | {"order_invariant": True})
    orders = [[[(j - s) % k for j in range(k)] for k in sizes] for s in range(shifts)]
    rendered = [render_choices(items, ctx.suite.eval, ctx.suite.labels, ctx.suite.task, prompt=asked, orders=o)
                for o in orders]
    golds = np.stack([g for _, g in rendered], axis=1)  # items x shifts
    seen: dict[str, dict[str, np.ndarray]] = {}

    def measure(scorer) -> dict:
        picks = np.stack([scorer.predict(r) for r, _ in rendered], axis=1)
        content = np.stack([[orders[s][i][picks[i, s]] for s in range(shifts)] for i in range(len(items))])
        right = picks == golds
        stats = seen[scorer.role] = {"picks": picks, "content": content, "mean": right.mean(axis=1),
                                     "all": right.all(axis=1), "same": (content == content[:, :1]).all(axis=1)}
        n = len(items)
        per_shift = right.mean(axis=0)
        pick_rate = np.bincount(picks.ravel(), minlength=len(ctx.suite.labels)) / picks.size
        gold_rate = np.bincount(golds.ravel(), minlength=len(ctx.suite.labels)) / golds.size
        wilson = lambda x: Estimate(float(x.mean()), wilson_interval(int(x.sum()), n, confidence), n)
        details[f"shift_accuracy_{scorer.role}"] = [float(a) for a in per_shift]
        return {"accuracy": wilson(right[:, 0]),
                "mean_shift_accuracy": Estimate(float(stats["mean"].mean()), bootstrap_ci(
                    lambda a: a.mean(), (stats["mean"],), n_bootstrap, confidence, ctx.seed), n),
                "worst_shift_accuracy": Estimate(float(per_shift.min()), n=n),
                "all_shifts_accuracy": wilson(stats["all"]), "consistency": wilson(stats["same"]),
                "letter_bias": Estimate(float(np.abs(pick_rate - gold_rate).sum() / 2), n=int(picks.size)),
                **{f"pick_rate_{lab}": float(pick_rate[k]) for k, lab in enumerate(ctx.suite.labels)}}

    result = ctx.for_both(measure)
    if ctx.baseline is not None:
        mine, theirs = seen["model"], seen["baseline"]
        for name, key in (("mean_shift_accuracy", "mean"), ("all_shifts_accuracy", "all"), ("consistency", "same")):
            pair = (mine[key].astype(float), theirs[key].astype(float))
            result.delta_ci[name] = bootstrap_ci(lambda a, b: a.mean() - b.mean(), pair, n_bootstrap, confidence, ctx.seed)
    gold_rate = np.bincount(golds.ravel(), minlength=len(ctx.suite.labels)) / golds.size
    result.details = details | {"gold_rate": [float(x) for x in gold_rate],
                                "examples": _examples(ctx, rendered, seen["model"], items, max_examples)}
    return result


def _examples(ctx: ProbeContext, rendered, model: dict, items, limit: int) -> list[dict]:
    """Items whose chosen answer changed with the order: the original prompt, the first reordering that changed
    the answer, and the choices (in source order) that the model picked under each."""
    out = []
    for i in np.flatnonzero(~model["same"])[:limit]:
        s = int(np.flatnonzero(model["content"][i] != model["content"][i, 0])[0])
        out.append({"row": int(items.rows[i]), "shift": s, "original": prompt_text(rendered[0][0][i]),
                    "reordered": prompt_text(rendered[s][0][i]), "gold": int(items.labels[i]),
                    "choices": choices_of(items.records[i], ctx.suite.eval, ""),
                    "picked_original": int(model["content"][i, 0]), "picked_reordered": int(model["content"][i, s])})
    return out
