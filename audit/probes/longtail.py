from __future__ import annotations

import math
import re
from collections import Counter

import numpy as np

from audit.context import ProbeContext, ProbeResult
from audit.contamination.corpus import chunks
from audit.metrics.stats import wilson_interval
from audit.probes.contamination import corpora
from audit.registry import probe

WORD = re.compile(r"[a-z0-9']+")


@probe("longtail", metrics=("overall_accuracy", "worst_slice_accuracy", "worst_slice_gap", "worst_slice_support",
                            "shortest_slice_accuracy", "longest_slice_accuracy", "rarest_slice_accuracy",
                            "largest_slice_regression", "class_{label}_accuracy"),
       lower_is_better=("worst_slice_gap", "largest_slice_regression"), vs_baseline=("largest_slice_regression",))
def longtail(ctx: ProbeContext, *, length_bins: int = 4, rarity_bins: int = 4, min_support: int = 30,
             frequency_docs: int = 500_000, confidence: float = 0.95) -> ProbeResult:
    """Accuracy on slices of the eval split by length quantile, word rarity in the training corpus
    (the suite's reference split and --train-data) and class; the worst slice with at least
    ``min_support`` items, its gap to overall accuracy, and where the model loses most to its baseline."""
    texts, y, labels = ctx.eval.texts, ctx.eval.labels, ctx.suite.labels
    counts, n_docs = word_counts(ctx, frequency_docs)
    lengths = np.array([len(t.split()) for t in texts])
    rarity = np.array([mean_log_frequency(t, counts) for t in texts])
    slicings = {"length": quantile_slices(lengths, length_bins, "length", "words"),
                "rarity": quantile_slices(rarity, rarity_bins, "rarity", "mean log(1 + corpus count)"),
                "class": {f"class_{lab}": {"index": np.flatnonzero(y == k), "range": lab} for k, lab in enumerate(labels)}}
    preds = {}

    def measure(scorer) -> dict[str, float]:
        right = preds[scorer.role] = scorer.predict(texts) == y
        overall = float(right.mean())
        acc = {name: float(right[s["index"]].mean()) for sl in slicings.values() for name, s in sl.items()}
        supported = [name for sl in slicings.values() for name, s in sl.items() if len(s["index"]) >= min_support]
        worst = min(supported, key=acc.get) if supported else None
        size = {name: len(s["index"]) for sl in slicings.values() for name, s in sl.items()}
        return {"overall_accuracy": overall,
                "worst_slice_accuracy": acc[worst] if worst else math.nan,
                "worst_slice_gap": overall - acc[worst] if worst else math.nan,
                "worst_slice_support": float(size[worst]) if worst else 0.0,
                "shortest_slice_accuracy": acc[next(iter(slicings["length"]))],
                "longest_slice_accuracy": acc[list(slicings["length"])[-1]],
                "rarest_slice_accuracy": acc[next(iter(slicings["rarity"]))],
                **{f"{name}_accuracy": acc[name] for name in slicings["class"]}}

    result = ctx.for_both(measure)
    rows = []
    for kind, sl in slicings.items():
        for name, s in sl.items():
            row = {"slicing": kind, "slice": name, "range": s["range"], "support": len(s["index"])}
            for role, right in preds.items():
                k = int(right[s["index"]].sum())
                row[role] = {"accuracy": k / len(s["index"]),
                             "ci": list(wilson_interval(k, len(s["index"]), confidence))}
            if "baseline" in preds:
                row["delta"] = row["model"]["accuracy"] - row["baseline"]["accuracy"]
            rows.append(row)
    details = {"slices": rows, "min_support": min_support, "frequency_docs": n_docs, "confidence": confidence,
               "worst_slice": _worst(rows, "model", min_support)}
    if "baseline" in preds:
        losses = [r for r in rows if r["support"] >= min_support]
        lost_most = min(losses, key=lambda r: r["delta"]) if losses else None
        result.metrics["largest_slice_regression"] = -lost_most["delta"] if lost_most else math.nan
        details["largest_regression_slice"] = lost_most["slice"] if lost_most else None
        details["worst_slice_baseline"] = _worst(rows, "baseline", min_support)
    result.details = details
    return result


def word_counts(ctx: ProbeContext, max_docs: int) -> tuple[Counter, int]:
    """Word counts over the first ``max_docs`` documents of the training corpora (streamed)."""
    counts: Counter = Counter()
    n = 0
    sources = corpora(ctx, None)
    if not sources:
        raise ValueError("the rarity slices need a training corpus: declare data.reference in the suite or pass --train-data")
    for docs, _ in chunks(sources):
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
