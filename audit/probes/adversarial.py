from __future__ import annotations

import math

import numpy as np

from audit.context import ProbeContext, ProbeResult
from audit.metrics.stats import wilson_interval
from audit.perturb import textattack_backend
from audit.perturb.attack import RECIPES, AttackResult, attack
from audit.perturb.edits import stopwords
from audit.registry import probe

STATS = ("success_rate", "success_rate_ci_low", "success_rate_ci_high", "accuracy_under_attack",
         "perturbed_word_fraction", "avg_queries", "n_attacked", "n_skipped", "transfer_rate")
BACKENDS = {**{r: r for r in RECIPES}, **{f"textattack_{r}": r for r in textattack_backend.RECIPES}}


@probe("adversarial", metrics=tuple(f"{b}_{s}" for b in BACKENDS for s in STATS),
       lower_is_better=tuple(f"{b}_{s}" for b in BACKENDS for s in ("success_rate", "transfer_rate")),
       vs_baseline=tuple(f"{b}_transfer_rate" for b in BACKENDS))
def adversarial(ctx: ProbeContext, *, recipes: list[str] = ("deepwordbug", "pruthi"), textattack_recipes: list[str] = (),
                sample_size: int = 100, query_budget: int = 300, max_examples: int = 10,
                confidence: float = 0.95) -> ProbeResult:
    """Black-box character-level attacks (DeepWordBug, Pruthi et al. recipes) on the same seeded sample for
    the model and the baseline, all queries through the engine; success rate, accuracy under attack, words
    perturbed, queries, and transfer of the baseline's adversarial examples to the model."""
    unknown = [r for r in recipes if r not in RECIPES] + [r for r in textattack_recipes if r not in textattack_backend.RECIPES]
    if unknown:
        raise ValueError(f"unknown attack recipe(s) {unknown}: built in {sorted(RECIPES)}, "
                         f"textattack (offline) {sorted(textattack_backend.RECIPES)}")
    sample = ctx.eval.sample(sample_size, ctx.seed)
    runs = [(r, lambda s, r=r: attack(s.proba, sample.texts, sample.labels, RECIPES[r], query_budget, ctx.seed,
                                      stopwords(), unk_token(s))) for r in recipes]
    details: dict = {"n": len(sample), "n_eval": len(ctx.eval), "query_budget": query_budget, "confidence": confidence,
                     "recipes": {r: RECIPES[r].paper for r in recipes}, "examples": {},
                     "sampled": [f"attacks: {len(sample)} of {len(ctx.eval)} eval rows"] if len(sample) < len(ctx.eval) else []}
    if textattack_recipes and textattack_backend.load() is None:
        details["textattack"] = {"status": "skipped", "reason": f"textattack is not installed: {textattack_backend.INSTALL}"}
    elif textattack_recipes:
        details["textattack"] = {"status": "ok"}
        runs += [(f"textattack_{r}", lambda s, r=r: textattack_backend.run(s.proba, s.model.module, sample.texts,
                                                                             sample.labels, r, query_budget, ctx.seed))
                 for r in textattack_recipes]
    found: dict[str, dict[str, list[AttackResult]]] = {"model": {}, "baseline": {}}

    def measure(scorer) -> dict[str, float]:
        out = {}
        for name, run in runs:
            results = found[scorer.role][name] = run(scorer)
            out |= summarize(results, name, confidence)
        return out

    result = ctx.for_both(measure)
    for name, _ in runs:
        mine = found["model"][name]
        details["examples"][name] = [r.as_dict() | {"row": int(sample.rows[r.index])}
                                     for r in mine if r.status == "success"][:max_examples]
        if ctx.baseline is not None:
            result.metrics[f"{name}_transfer_rate"] = transfer_rate(ctx.model.predict, found["baseline"][name], mine)
    return ProbeResult(result.metrics, result.baseline_metrics, details)


def unk_token(scorer) -> str:
    return getattr(scorer.model.tokenizer, "unk_token", None) or "[UNK]"


def summarize(results: list[AttackResult], name: str, confidence: float) -> dict[str, float]:
    """Success rate over attacked items (those classified right to begin with); skipped items count as errors."""
    n = len(results)
    attacked = [r for r in results if r.status != "skipped"]
    won = [r for r in attacked if r.status == "success"]
    low, high = wilson_interval(len(won), len(attacked), confidence) if attacked else (math.nan, math.nan)
    return {f"{name}_success_rate": len(won) / len(attacked) if attacked else math.nan,
            f"{name}_success_rate_ci_low": low, f"{name}_success_rate_ci_high": high,
            f"{name}_accuracy_under_attack": (len(attacked) - len(won)) / n,
            f"{name}_perturbed_word_fraction": float(np.mean([r.words_changed / max(r.n_words, 1) for r in won]))
            if won else math.nan,
            f"{name}_avg_queries": float(np.mean([r.queries for r in attacked])) if attacked else math.nan,
            f"{name}_n_attacked": float(len(attacked)), f"{name}_n_skipped": float(n - len(attacked))}


def transfer_rate(predict, baseline_results: list[AttackResult], model_results: list[AttackResult]) -> float:
    """Share of the baseline's successful adversarial texts that also fool the model (on items the model
    classified right before the attack)."""
    pairs = [(b, m) for b, m in zip(baseline_results, model_results) if b.status == "success" and m.status != "skipped"]
    if not pairs:
        return math.nan
    fooled = predict([b.perturbed for b, _ in pairs]) != np.array([b.label for b, _ in pairs])
    return float(fooled.mean())
