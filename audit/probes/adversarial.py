"""Black-box character-level attacks (DeepWordBug, Pruthi et al. recipes) on the same seeded sample for
the model and the baseline, all queries through the engine; success rate, accuracy under attack, words
perturbed, queries, and transfer of the baseline's adversarial examples to the model. A multiple-choice
item's question (its stem) is attacked, each edit rebuilt into the prompt and scored over the choices;
words are ranked by deleting them (an LM has no unknown token to put in their place). ``textattack_*``
recipes run textattack's own implementation (optional backend, classifiers only) through the same engine."""

from __future__ import annotations

import numpy as np

from audit.context import ProbeContext, ProbeResult
from audit.contract import Estimate
from audit.metrics.stats import wilson_interval
from audit.perturb import textattack_backend
from audit.perturb.attack import RECIPES, AttackResult, attack
from audit.perturb.edits import stopwords

SPEC = {
    "tasks": ["classification", "multiple_choice"],
    "params": {
        "recipes": {"type": "list", "default": ["deepwordbug", "pruthi"],
                    "choices": ["deepwordbug", "pruthi", "charmix", "textattack_deepwordbug", "textattack_pruthi"]},
        "sample_size": {"type": "int", "default": 100, "min": 1},
        "query_budget": {"type": "int", "default": 300, "min": 1},
        "max_examples": {"type": "int", "default": 10, "min": 0},
        "confidence": {"type": "float", "default": 0.95, "above": 0, "below": 1},
    },
    "metrics": {
        "{recipes}_success_rate": {"better": "lower", "ci": True, "range": [0, 1]},
        "{recipes}_accuracy_under_attack": {"range": [0, 1]},
        "{recipes}_perturbed_word_fraction": {"better": "none"},
        "{recipes}_avg_queries": {"better": "none"},
        "{recipes}_n_attacked": {"better": "none"},
        "{recipes}_n_skipped": {"better": "none"},
        "{recipes}_transfer_rate": {"better": "lower", "vs_baseline": True, "range": [0, 1]},
    },
}
STATS = [name.removeprefix("{recipes}_") for name in SPEC["metrics"]]
TEXTATTACK = "textattack_"


def run(ctx: ProbeContext, *, recipes: list[str], sample_size: int, query_budget: int, max_examples: int,
        confidence: float) -> ProbeResult:
    sample = ctx.eval.sample(sample_size, ctx.seed)
    edit = ctx.editable(sample)
    texts = edit.texts
    ours = [r for r in recipes if not r.startswith(TEXTATTACK)]
    theirs = [r.removeprefix(TEXTATTACK) for r in recipes if r.startswith(TEXTATTACK)]
    runs = [(r, lambda s, r=r: attack(edit.proba(s), texts, sample.labels, RECIPES[r], query_budget, ctx.seed,
                                      stopwords(), unk_token(s))) for r in ours]
    details: dict = {"n": len(sample), "n_eval": len(ctx.eval), "query_budget": query_budget, "confidence": confidence,
                     "recipes": {r: RECIPES[r].paper for r in ours}, "examples": {},
                     "sampled": [f"attacks: {len(sample)} of {len(ctx.eval)} eval rows"] if len(sample) < len(ctx.eval) else []}
    missing: dict[str, Estimate] = {}
    if theirs and (ctx.model.is_lm or textattack_backend.load() is None):
        reason = "textattack's recipes attack classifiers only" if ctx.model.is_lm else \
            f"textattack is not installed: {textattack_backend.INSTALL}"
        details["textattack"] = {"status": "skipped", "reason": reason}
        missing = {f"{TEXTATTACK}{r}_{s}": Estimate(None, note=reason) for r in theirs for s in STATS
                   if s != "transfer_rate" or ctx.baseline is not None}
    elif theirs:
        details["textattack"] = {"status": "ok"}
        runs += [(f"{TEXTATTACK}{r}", lambda s, r=r: textattack_backend.run(s.proba, s.model.module, sample.texts,
                                                                          sample.labels, r, query_budget, ctx.seed))
                 for r in theirs]
    found: dict[str, dict[str, list[AttackResult]]] = {"model": {}, "baseline": {}}

    def measure(scorer) -> dict:
        out = dict(missing)
        for name, go in runs:
            results = found[scorer.role][name] = go(scorer)
            out |= summarize(results, name, confidence)
        return out

    result = ctx.for_both(measure)
    for name, _ in runs:
        mine = found["model"][name]
        details["examples"][name] = [r.as_dict() | {"row": int(sample.rows[r.index])}
                                     for r in mine if r.status == "success"][:max_examples]
        if ctx.baseline is not None:
            result.metrics[f"{name}_transfer_rate"] = transfer_rate(edit.proba(ctx.model), found["baseline"][name], mine)
    return ProbeResult(result.metrics, result.baseline_metrics, details)


def unk_token(scorer) -> str:
    """What word-importance ranking puts in a word's place: the unknown token, or nothing for a causal LM."""
    return "" if scorer.is_lm else getattr(scorer.model.tokenizer, "unk_token", None) or "[UNK]"


def summarize(results: list[AttackResult], name: str, confidence: float) -> dict[str, Estimate | float]:
    """Success rate over attacked items (those classified right to begin with); skipped items count as errors."""
    n = len(results)
    attacked = [r for r in results if r.status != "skipped"]
    won = [r for r in attacked if r.status == "success"]
    nothing = Estimate(None, note="no sampled item was classified correctly, so none was attacked")
    return {f"{name}_success_rate": Estimate(len(won) / len(attacked), wilson_interval(len(won), len(attacked), confidence),
                                             len(attacked)) if attacked else nothing,
            f"{name}_accuracy_under_attack": Estimate((len(attacked) - len(won)) / n, n=n),
            f"{name}_perturbed_word_fraction": float(np.mean([r.words_changed / max(r.n_words, 1) for r in won]))
            if won else Estimate(None, note="no attack succeeded"),
            f"{name}_avg_queries": float(np.mean([r.queries for r in attacked])) if attacked else nothing,
            f"{name}_n_attacked": float(len(attacked)), f"{name}_n_skipped": float(n - len(attacked))}


def transfer_rate(proba, baseline_results: list[AttackResult], model_results: list[AttackResult]) -> Estimate:
    """Share of the baseline's successful adversarial texts that also fool the model (on items the model
    classified right before the attack); ``proba(texts, owners)`` scores the model."""
    pairs = [(b, m) for b, m in zip(baseline_results, model_results) if b.status == "success" and m.status != "skipped"]
    if not pairs:
        return Estimate(None, note="no adversarial text of the baseline's to transfer")
    fooled = proba([b.perturbed for b, _ in pairs], [b.index for b, _ in pairs]).argmax(axis=1) != \
        np.array([b.label for b, _ in pairs])
    return Estimate(float(fooled.mean()), n=len(pairs))
