"""How far a generative model's outputs move from its baseline's: the share of items whose generations are
identical, where the two first diverge (token position), and, teacher-forced along the baseline's own
generation (what a user of the baseline would have seen), the per-token KL divergence KL(baseline || model)
and how often the model's top token is the baseline's. At the floor of a benchmark's exact match (a small
model solving almost nothing) these still show what a compressed build changed; quantization is known to
move generated text more than answer accuracy shows (Dutta et al. 2024).
"""

from __future__ import annotations

import numpy as np

from audit.context import ProbeContext, ProbeResult
from audit.contract import Estimate
from audit.generation import first_divergence
from audit.metrics.stats import bootstrap_ci, wilson_interval

SPEC = {
    "tasks": ["generate"],
    "needs_baseline": True,
    "params": {
        "sample": {"type": "int", "default": None, "min": 1, "nullable": True},
        "max_examples": {"type": "int", "default": 10, "min": 0},
        "n_bootstrap": {"type": "int", "default": 1000, "min": 10},
        "confidence": {"type": "float", "default": 0.95, "above": 0, "below": 1},
    },
    "metrics": {
        "identical_rate": {"ci": True, "range": [0, 1]},
        "first_divergence_median": {"better": "higher"},
        "kl_mean": {"better": "lower", "ci": True},
        "top1_agreement": {"ci": True, "range": [0, 1]},
        "n_tokens": {"better": "none"},
    },
}


def run(ctx: ProbeContext, *, sample: int | None, max_examples: int, n_bootstrap: int,
        confidence: float) -> ProbeResult:
    split = ctx.eval.sample(ctx.cap(sample), ctx.seed)
    items = split.items
    mine, theirs = ctx.model.generate(items), ctx.baseline.generate(items)
    n = len(items)
    same = np.array([a.text == b.text for a, b in zip(mine, theirs)])
    where = [first_divergence(a.tokens.tolist(), b.tokens.tolist()) for a, b in zip(mine, theirs)]
    diverged = np.array([w for w in where if w is not None], dtype=np.float64)
    engine = ctx.model.engine
    along = engine.generation_divergence(ctx.model.model, ctx.baseline.model, [ctx.baseline.prompt(q) for q in items],
                                         [b.tokens for b in theirs], special_tokens=ctx.baseline.chat is None)
    per_item = np.array([[a[:, 0].sum(), a[:, 1].sum(), len(a)] for a in along], dtype=np.float64)
    tokens = int(per_item[:, 2].sum())
    ratio = lambda col: lambda rows: rows[:, col].sum() / max(rows[:, 2].sum(), 1)  # pooled over tokens, by item
    none = "the baseline generated no token on these items"
    metrics = {
        "identical_rate": Estimate(float(same.mean()), wilson_interval(int(same.sum()), n, confidence), n),
        "first_divergence_median": Estimate(float(np.median(diverged)), n=len(diverged)) if len(diverged)
        else Estimate(None, note="every generation is identical to the baseline's"),
        "kl_mean": Estimate(ratio(0)(per_item), bootstrap_ci(ratio(0), (per_item,), n_bootstrap, confidence, ctx.seed),
                            tokens) if tokens else Estimate(None, note=none),
        "top1_agreement": Estimate(ratio(1)(per_item), bootstrap_ci(ratio(1), (per_item,), n_bootstrap, confidence,
                                                                    ctx.seed), tokens) if tokens
        else Estimate(None, note=none),
        "n_tokens": float(tokens),
    }
    tokenizer = ctx.model.model.tokenizer
    answer = ctx.suite.task.generation.filter_names[0]
    answers = ctx.model.answers(items), ctx.baseline.answers(items)
    order = sorted((i for i in range(n) if not same[i]), key=lambda i: (answers[0][i] == answers[1][i], where[i] or 0))
    examples = [example(items[i], mine[i], theirs[i], where[i], answers[0][i], answers[1][i], tokenizer, split.rows[i])
                for i in order[:max_examples]]
    details = {"n": n, "n_eval": len(ctx.eval), "answer": answer, "examples": examples, "confidence": confidence,
               "first_divergence_quartiles": [float(q) for q in np.quantile(diverged, [0.25, 0.5, 0.75])]
               if len(diverged) else None, "kl_along": "the baseline's own generations (teacher-forced)",
               "sampled": [f"{n} of {len(ctx.eval)} eval items"] if n < len(ctx.eval) else []}
    return ProbeResult(metrics, details=details)


def example(query, mine, theirs, at: int | None, answer: str, base_answer: str, tokenizer, row) -> dict:
    """One item whose generations differ: both texts split where they diverge (the shared part, then the rest)."""
    shared = tokenizer.decode(theirs.tokens[:at].tolist(), skip_special_tokens=True) if at else ""
    split = lambda text: (text[:len(shared)], text[len(shared):]) if text.startswith(shared) else ("", text)
    return {"row": int(row), "question": query.question, "target": query.target, "divergence_token": at,
            "baseline": split(theirs.text), "model": split(mine.text), "baseline_answer": base_answer,
            "model_answer": answer, "answer_changed": answer != base_answer}
