"""Accuracy under distribution shift: the suite's natural shift sets (seeded samples of the sizes the
suite declares; for multiple choice, e.g. ARC-Easy -> ARC-Challenge) and seeded synthetic corruptions
of the eval split at three severities (of a multiple-choice or generation item's question), each with its
drop from in-distribution accuracy; paired consistency on contrast sets."""

from __future__ import annotations

import numpy as np

from audit.context import ProbeContext, ProbeResult
from audit.contract import Estimate
from audit.metrics.stats import wilson_interval
from audit.perturb.corruptions import SEVERITIES, corrupt

SPEC = {
    "tasks": ["classification", "multiple_choice", "generate"],
    "params": {
        "sets": {"type": "list", "default": None, "nullable": True, "choices_from": "shift_sets"},
        "corruptions": {"type": "list", "default": ["typo", "case", "punctuation", "word_drop", "word_swap", "rewrite"],
                        "choices": ["typo", "case", "punctuation", "word_drop", "word_swap", "rewrite"]},
        "corruption_sample": {"type": "int", "default": 300, "min": 1, "nullable": True},
        "confidence": {"type": "float", "default": 0.95, "above": 0, "below": 1},
    },
    "metrics": {
        "in_distribution_accuracy": {},
        "accuracy_{sets}": {"ci": True},
        "drop_{sets}": {"better": "lower"},
        "consistency_{sets}": {},
        "worst_set_accuracy": {},
        "worst_set_drop": {"better": "lower"},
        "corruption_accuracy": {},
        "corruption_drop": {"better": "lower"},
        "worst_corruption_accuracy": {},
        "corruption_{corruptions}": {},
        "corruption_{corruptions}_s1": {},
        "corruption_{corruptions}_s2": {},
        "corruption_{corruptions}_s3": {},
    },
}


def run(ctx: ProbeContext, *, sets: list[str], corruptions: list[str], corruption_sample: int | None,
        confidence: float) -> ProbeResult:
    shifted = {n: ctx.split(n).sample(ctx.cap(ctx.suite.shift_sets[n].sample), ctx.seed) for n in sets}
    clean = ctx.eval.sample(corruption_sample, ctx.seed)
    edit = ctx.editable(clean)
    originals = edit.texts
    variants = {(f, s): corrupt(originals, f, s, ctx.seed, clean.rows) for f in corruptions for s in SEVERITIES}
    owners = list(range(len(clean)))
    details = {"sets": {}, "corruptions": {"n": len(clean), "n_eval": len(ctx.eval), "families": corruptions,
                                           "severities": list(SEVERITIES),
                                           "examples": _examples(originals, variants)}}

    def measure(scorer) -> dict:
        in_dist = float(scorer.right(ctx.eval.inputs, ctx.eval.labels).mean())
        out: dict = {"in_distribution_accuracy": Estimate(in_dist, n=len(ctx.eval))}
        accuracy = {}
        for name, split in shifted.items():
            right = scorer.right(split.inputs, split.labels)
            accuracy[name] = float(right.mean())
            out |= {f"accuracy_{name}": Estimate(accuracy[name], wilson_interval(int(right.sum()), len(right), confidence),
                                                 len(right)),
                    f"drop_{name}": Estimate(in_dist - accuracy[name], n=len(right))}
            if split.groups is not None:
                out[f"consistency_{name}"] = Estimate(_paired_consistency(right, split.groups),
                                                      n=len(np.unique(split.groups)))
            info = details["sets"].setdefault(name, {
                "n": len(split), "n_total": len(ctx.split(name)), "sampled": len(split) < len(ctx.split(name)),
                "paired": split.groups is not None, "description": ctx.suite.shift_sets[name].description})
            info[f"n_truncated_{scorer.role}"] = int(scorer.truncated(split.inputs).sum())
        if shifted:
            worst = min(shifted, key=accuracy.get)
            details[f"worst_set_{scorer.role}"] = worst
            out |= {"worst_set_accuracy": out[f"accuracy_{worst}"], "worst_set_drop": out[f"drop_{worst}"]}
        if corruptions:
            clean_acc = float(scorer.right(clean.inputs, clean.labels).mean())
            right = edit.right(scorer)
            by_variant = {v: float(right(texts, owners).mean()) for v, texts in variants.items()}
            family = {f: float(np.mean([by_variant[f, s] for s in SEVERITIES])) for f in corruptions}
            mean = float(np.mean(list(family.values())))
            n = len(clean)
            out |= {f"corruption_{f}_s{s}": Estimate(a, n=n) for (f, s), a in by_variant.items()}
            out |= {f"corruption_{f}": Estimate(a, n=n) for f, a in family.items()}
            out |= {"corruption_accuracy": Estimate(mean, n=n), "corruption_drop": Estimate(clean_acc - mean, n=n),
                    "worst_corruption_accuracy": Estimate(min(by_variant.values()), n=n)}
            details["corruptions"][f"clean_accuracy_{scorer.role}"] = clean_acc
        return out

    result = ctx.for_both(measure)
    sampled = [f"{n}: {len(sp)} of {len(ctx.split(n))} rows" + (" (whole pairs)" if sp.groups is not None else "")
               for n, sp in shifted.items() if len(sp) < len(ctx.split(n))]
    if corruptions and len(clean) < len(ctx.eval):
        sampled.append(f"corruptions: {len(clean)} of {len(ctx.eval)} eval rows")
    result.details = details | {"confidence": confidence, "sampled": sampled}
    return result


def _paired_consistency(right: np.ndarray, groups: np.ndarray) -> float:
    """Share of contrast pairs whose members are all classified correctly (Gardner et al. 2020)."""
    ids, inverse = np.unique(groups, return_inverse=True)
    all_right = np.ones(len(ids), dtype=bool)
    np.logical_and.at(all_right, inverse, right)
    return float(all_right.mean())


def _examples(originals: list[str], variants, n: int = 3) -> list[dict]:
    """The first few eval items under each corruption at its highest severity, for the report."""
    top = max(SEVERITIES)
    return [{"family": f, "severity": s, "original": originals[i], "corrupted": texts[i]}
            for (f, s), texts in variants.items() if s == top for i in range(min(n, len(texts)))]
