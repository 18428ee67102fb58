"""Accuracy on slices of the eval split by length quantile, word rarity in the training corpus
(the suite's reference split and --train-data; no rarity slices without one), class (choice position
for multiple choice) and the eval split's ``slice_field`` (e.g. an MMLU subject); the worst slice with
at least ``min_support`` items, its gap to overall accuracy, and where the model loses most to its baseline."""

from __future__ import annotations

import math
import re
from collections import Counter

import numpy as np

from audit.context import ProbeContext, ProbeResult
from audit.contamination.shards import chunks, plan
from audit.contract import Estimate
from audit.metrics.stats import wilson_interval

SPEC = {
    "tasks": ["classification", "multiple_choice", "generate"],
    "params": {
        "length_bins": {"type": "int", "default": 4, "min": 1, "max": 100},
        "rarity_bins": {"type": "int", "default": 4, "min": 1, "max": 100},
        "min_support": {"type": "int", "default": 30, "min": 1},
        "frequency_docs": {"type": "int", "default": 500000, "min": 1},
        "confidence": {"type": "float", "default": 0.95, "above": 0, "below": 1},
    },
    "metrics": {
        "overall_accuracy": {},
        "worst_slice_accuracy": {},
        "worst_slice_gap": {"better": "lower"},
        "worst_slice_support": {"better": "none"},
        "shortest_slice_accuracy": {},
        "longest_slice_accuracy": {},
        "rarest_slice_accuracy": {},
        "largest_slice_regression": {"better": "lower", "vs_baseline": True},
        "class_{labels}_accuracy": {},
    },
}

WORD = re.compile(r"[a-z0-9']+")


def run(ctx: ProbeContext, *, length_bins: int, rarity_bins: int, min_support: int, frequency_docs: int,
        confidence: float) -> ProbeResult:
    texts, y, labels = ctx.eval.texts, ctx.eval.labels, ctx.suite.labels
    lengths = np.array([len(t.split()) for t in texts])
    slicings = {"length": quantile_slices(lengths, length_bins, "length", "words")}
    n_docs = 0
    if ctx.corpora():
        counts, n_docs = word_counts(ctx, frequency_docs)
        rarity = np.array([mean_log_frequency(t, counts) for t in texts])
        slicings["rarity"] = quantile_slices(rarity, rarity_bins, "rarity", "mean log(1 + corpus count)")
    slicings["class"] = {f"class_{lab}": {"index": np.flatnonzero(y == k), "range": lab} for k, lab in enumerate(labels)
                         if (y == k).any()}
    for field, values in (ctx.eval.slices or {}).items():
        slicings[field] = {f"{field}={v}": {"index": np.flatnonzero(values == v), "range": v} for v in np.unique(values)}
    slices = {name: s for sl in slicings.values() for name, s in sl.items()}
    supported = [name for name, s in slices.items() if len(s["index"]) >= min_support]
    none_supported = f"no slice has {min_support} items (min_support)"
    preds = {}

    def measure(scorer) -> dict:
        right = preds[scorer.role] = scorer.right(ctx.eval.inputs, y)
        acc = {name: Estimate(float(right[s["index"]].mean()), n=len(s["index"])) for name, s in slices.items()}
        overall = float(right.mean())
        worst = min(supported, key=lambda name: acc[name].value) if supported else None
        return {"overall_accuracy": Estimate(overall, n=len(y)),
                "worst_slice_accuracy": acc[worst] if worst else Estimate(None, note=none_supported),
                "worst_slice_gap": Estimate(overall - acc[worst].value, n=acc[worst].n) if worst
                else Estimate(None, note=none_supported),
                "worst_slice_support": float(len(slices[worst]["index"])) if worst else 0.0,
                "shortest_slice_accuracy": acc[next(iter(slicings["length"]))],
                "longest_slice_accuracy": acc[list(slicings["length"])[-1]],
                "rarest_slice_accuracy": acc[next(iter(slicings["rarity"]))] if "rarity" in slicings
                else Estimate(None, note="no training corpus to count word rarity in (no reference split, no --train-data)"),
                **{f"class_{lab}_accuracy": acc.get(f"class_{lab}", Estimate(None, note="no eval item of this class"))
                   for lab in labels}}

    result = ctx.for_both(measure)
    rows = []
    for kind, sl in slicings.items():
        for name, s in sl.items():
            row = {"slicing": kind, "slice": name, "range": s["range"], "support": len(s["index"])}
            for role, right in preds.items():
                k = int(right[s["index"]].sum())
                row[role] = {"accuracy": k / len(s["index"]), "ci": list(wilson_interval(k, len(s["index"]), confidence))}
            if "baseline" in preds:
                row["delta"] = row["model"]["accuracy"] - row["baseline"]["accuracy"]
            rows.append(row)
    details = {"slices": rows, "min_support": min_support, "frequency_docs": n_docs, "confidence": confidence,
               "worst_slice": _worst(rows, "model", min_support)}
    if "baseline" in preds:
        losses = [r for r in rows if r["support"] >= min_support]
        lost_most = min(losses, key=lambda r: r["delta"]) if losses else None
        result.metrics["largest_slice_regression"] = Estimate(-lost_most["delta"], n=lost_most["support"]) \
            if lost_most else Estimate(None, note=none_supported)
        details["largest_regression_slice"] = lost_most["slice"] if lost_most else None
        details["worst_slice_baseline"] = _worst(rows, "baseline", min_support)
    result.details = details
    return result


def word_counts(ctx: ProbeContext, max_docs: int) -> tuple[Counter, int]:
    """Word counts over the first ``max_docs`` documents of the training corpora (streamed)."""
    counts: Counter = Counter()
    n = 0
    for docs, _ in chunks(plan(ctx.corpora())):
        for doc in docs[:max_docs - n]:
            counts.update(WORD.findall(doc.lower()))
        n += min(len(docs), max_docs - n)
        if n >= max_docs:
            break
    return counts, n


def mean_log_frequency(text: str, counts: Counter) -> float:
    """Mean log(1 + corpus count) of the item's words: low means built from rare words."""
    words = WORD.findall(text.lower())
    return float(np.mean([math.log1p(counts[w]) for w in words])) if words else 0.0


def quantile_slices(values: np.ndarray, bins: int, name: str, unit: str) -> dict[str, dict]:
    """Items grouped by quantile of ``values``, lowest first; every item lands in exactly one slice."""
    edges = np.unique(np.quantile(values, np.linspace(0, 1, bins + 1)[1:-1]))
    which = np.searchsorted(edges, values, side="right")
    out = {}
    for k in range(len(edges) + 1):
        idx = np.flatnonzero(which == k)
        if len(idx):
            out[f"{name}_q{k + 1}"] = {"index": idx, "range": f"{values[idx].min():.3g}-{values[idx].max():.3g} {unit}"}
    return out


def _worst(rows: list[dict], role: str, min_support: int) -> dict | None:
    ok = [r for r in rows if r["support"] >= min_support]
    if not ok:
        return None
    r = min(ok, key=lambda r: r[role]["accuracy"])
    return {"slice": r["slice"], "range": r["range"], "support": r["support"], "accuracy": r[role]["accuracy"]}
