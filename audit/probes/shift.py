from __future__ import annotations

import numpy as np

from audit.context import ProbeContext, ProbeResult
from audit.metrics.stats import wilson_interval
from audit.perturb.corruptions import FAMILIES, SEVERITIES, corrupt
from audit.registry import probe

CORRUPTION_METRICS = tuple(f"corruption_{f}{s}" for f in FAMILIES for s in ("", *(f"_s{k}" for k in SEVERITIES)))


@probe("shift", metrics=("in_distribution_accuracy", "accuracy_{set}", "accuracy_{set}_ci_low",
                         "accuracy_{set}_ci_high", "drop_{set}", "consistency_{set}", "worst_set_accuracy",
                         "worst_set_drop", "corruption_accuracy", "corruption_drop", "worst_corruption_accuracy",
                         *CORRUPTION_METRICS),
       lower_is_better=("drop_{set}", "worst_set_drop", "corruption_drop"))
def shift(ctx: ProbeContext, *, sets: list[str] | None = None, corruptions: list[str] | None = None,
          corruption_sample: int | None = 300, confidence: float = 0.95) -> ProbeResult:
    """Accuracy under distribution shift: the suite's natural shift sets (seeded samples of the sizes the
    suite declares) and seeded synthetic corruptions of the eval split at three severities, each with
    its drop from in-distribution accuracy; paired consistency on contrast sets."""
    names = list(ctx.suite.shift_sets) if sets is None else sets
    families = list(FAMILIES) if corruptions is None else corruptions
    for name in names:
        if name not in ctx.suite.shift_sets:
            raise ValueError(f"unknown shift set '{name}' (the suite declares: {', '.join(ctx.suite.shift_sets)})")
    for family in families:
        if family not in FAMILIES:
            raise ValueError(f"unknown corruption '{family}' (choose from: {', '.join(FAMILIES)})")
    shifted = {n: ctx.split(n).sample(ctx.suite.shift_sets[n].sample, ctx.seed) for n in names}
    clean = ctx.eval.sample(corruption_sample, ctx.seed)
    variants = {(f, s): corrupt(clean.texts, f, s, ctx.seed, clean.rows) for f in families for s in SEVERITIES}
    details = {"sets": {}, "corruptions": {"n": len(clean), "n_eval": len(ctx.eval), "families": families,
                                           "severities": list(SEVERITIES),
                                           "examples": _examples(clean, variants)}}

    def measure(scorer) -> dict[str, float]:
        in_dist = float((scorer.predict(ctx.eval.texts) == ctx.eval.labels).mean())
        out = {"in_distribution_accuracy": in_dist}
        for name, split in shifted.items():
            right = scorer.predict(split.texts) == split.labels
            low, high = wilson_interval(int(right.sum()), len(right), confidence)
            out |= {f"accuracy_{name}": float(right.mean()), f"accuracy_{name}_ci_low": low,
                    f"accuracy_{name}_ci_high": high, f"drop_{name}": in_dist - float(right.mean())}
            if split.groups is not None:
                out[f"consistency_{name}"] = _paired_consistency(right, split.groups)
            info = details["sets"].setdefault(name, {
                "n": len(split), "n_total": len(ctx.split(name)), "sampled": len(split) < len(ctx.split(name)),
                "paired": split.groups is not None, "description": ctx.suite.shift_sets[name].description})
            info[f"n_truncated_{scorer.role}"] = scorer.n_truncated(split.texts)
        if shifted:
            worst = min(shifted, key=lambda n: out[f"accuracy_{n}"])
            details[f"worst_set_{scorer.role}"] = worst
            out |= {"worst_set_accuracy": out[f"accuracy_{worst}"], "worst_set_drop": out[f"drop_{worst}"]}
        if families:
            clean_acc = float((scorer.predict(clean.texts) == clean.labels).mean())
            for (f, s), texts in variants.items():
                out[f"corruption_{f}_s{s}"] = float((scorer.predict(texts) == clean.labels).mean())
            for f in families:
                out[f"corruption_{f}"] = float(np.mean([out[f"corruption_{f}_s{s}"] for s in SEVERITIES]))
            out["corruption_accuracy"] = float(np.mean([out[f"corruption_{f}"] for f in families]))
            out["corruption_drop"] = clean_acc - out["corruption_accuracy"]
            out["worst_corruption_accuracy"] = min(out[f"corruption_{f}_s{s}"] for f, s in variants)
            details["corruptions"][f"clean_accuracy_{scorer.role}"] = clean_acc
        return out

    result = ctx.for_both(measure)
    sampled = [f"{n}: {len(sp)} of {len(ctx.split(n))} rows" + (" (whole pairs)" if sp.groups is not None else "")
               for n, sp in shifted.items() if len(sp) < len(ctx.split(n))]
    if families and len(clean) < len(ctx.eval):
        sampled.append(f"corruptions: {len(clean)} of {len(ctx.eval)} eval rows")
    result.details = details | {"confidence": confidence, "sampled": sampled}
    return result


def _paired_consistency(right: np.ndarray, groups: np.ndarray) -> float:
    """Share of contrast pairs whose members are all classified correctly (Gardner et al. 2020)."""
    ids, inverse = np.unique(groups, return_inverse=True)
    all_right = np.ones(len(ids), dtype=bool)
    np.logical_and.at(all_right, inverse, right)
    return float(all_right.mean())


def _examples(clean, variants, n: int = 3) -> list[dict]:
    """The first few eval items under each corruption at its highest severity, for the report."""
    top = max(SEVERITIES)
    return [{"family": f, "severity": s, "original": clean.texts[i], "corrupted": texts[i]}
            for (f, s), texts in variants.items() if s == top for i in range(min(n, len(texts)))]
