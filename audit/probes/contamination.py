from __future__ import annotations

import math

import numpy as np

from audit.context import ProbeContext, ProbeResult
from audit.contamination.corpus import CorpusSource, chunks, expand
from audit.contamination.scan import BenchmarkIndex, ScanConfig, ScanResult, scan
from audit.metrics.classification import accuracy_score
from audit.metrics.stats import fisher_exact_p, wilson_interval
from audit.registry import probe

MODEL_METRICS = ("clean_accuracy", "clean_accuracy_ci_low", "clean_accuracy_ci_high", "contaminated_accuracy",
                 "accuracy_gap_p_value")


def corpora(ctx: ProbeContext, text_field: str | None) -> list[CorpusSource]:
    """The suite's reference (training) split, always, then every --train-data corpus."""
    sources = []
    ref = ctx.suite.reference
    if ref is not None:
        sources.append(CorpusSource(ref.path, ref.text_field, ref.hf_config, ref.hf_split))
    return sources + expand(ctx.train_data, text_field)


def _none_if_nan(x: float) -> float | None:
    return None if math.isnan(x) else x


def score_split(pred: np.ndarray, y: np.ndarray, contaminated: np.ndarray) -> dict[str, float | None]:
    """Accuracy on the clean and contaminated items, a Wilson CI for the clean-only score and
    Fisher's exact test of the difference: the contamination-adjusted numbers."""
    right = pred == y
    clean, dirty = right[~contaminated], right[contaminated]
    low, high = wilson_interval(int(clean.sum()), len(clean))
    return {
        "clean_accuracy": _none_if_nan(accuracy_score(y[~contaminated], pred[~contaminated]) if len(clean) else math.nan),
        "clean_accuracy_ci_low": _none_if_nan(low),
        "clean_accuracy_ci_high": _none_if_nan(high),
        "contaminated_accuracy": float(dirty.mean()) if len(dirty) else None,
        "accuracy_gap_p_value": _none_if_nan(fisher_exact_p(int(dirty.sum()), len(dirty), int(clean.sum()), len(clean))),
    }


def findings(result: ScanResult, texts: list[str], rows: np.ndarray, limit: int) -> list[dict]:
    """The worst items: contaminated first, then by containment and Jaccard."""
    flagged = result.contaminated
    order = sorted(range(result.n_items), key=lambda i: (not flagged[i], -result.best[i].containment,
                                                          -result.best[i].jaccard))
    out = []
    for i in order[:limit]:
        m = result.best[i]
        if m.source is None and not result.ngram_hit[i]:
            break
        out.append({"row": int(rows[i]), "text": texts[i], "contaminated": bool(flagged[i]),
                    "jaccard": m.jaccard, "containment": m.containment, "source": m.source, "source_row": m.row,
                    "matched_text": m.excerpt, "found_by": list(m.found_by), "exact_ngram": bool(result.ngram_hit[i])})
    return out


@probe("contamination", metrics=("contaminated_fraction", "n_contaminated", "exact_ngram_fraction", "n_exact_ngram",
                                 "n_too_short", "n_items", "documents_scanned") + MODEL_METRICS)
def contamination(ctx: ProbeContext, *, shingle_size: int = 5, num_perm: int = 128, jaccard_threshold: float = 0.8,
                  containment_threshold: float = 0.8, ngram_size: int = 13, min_words: int = 4,
                  text_field: str | None = None, max_examples: int = 20) -> ProbeResult:
    """Near-duplicate (MinHash + exact shingle index) and exact n-gram search of the eval split in the
    training data, and the model's accuracy on the clean and contaminated items."""
    config = ScanConfig(shingle_size, num_perm, jaccard_threshold, containment_threshold, ngram_size, min_words,
                        ctx.seed)
    sources = corpora(ctx, text_field)
    if not sources:
        raise ValueError("no training data: the suite declares no reference split and no --train-data was given")
    result = scan(BenchmarkIndex(ctx.eval.texts, config), chunks(sources))
    flagged = result.contaminated
    n = result.n_items
    metrics = {"contaminated_fraction": float(flagged.mean()), "n_contaminated": float(flagged.sum()),
               "exact_ngram_fraction": float(result.ngram_hit.mean()), "n_exact_ngram": float(result.ngram_hit.sum()),
               "n_too_short": float(result.too_short.sum()), "n_items": float(n),
               "documents_scanned": float(result.stats["documents"])}
    details = {
        "corpora": [s.path for s in sources],
        "short_items": f"items under {min_words} words are not judged (n_too_short); items of {min_words}-"
                       f"{shingle_size - 1} words are one shingle (the whole item) matched against the corpus's "
                       f"n-grams of that length; the exact n-gram detector uses {ngram_size}-grams, or the whole "
                       f"item when shorter",
        "scan": result.stats,
        "examples": findings(result, ctx.eval.texts, ctx.eval.rows, max_examples),
    }
    if ctx.model is None:
        return ProbeResult(metrics, details=details)

    def measure(scorer) -> dict:
        return {**metrics, **score_split(scorer.predict(ctx.eval.texts), ctx.eval.labels, flagged)}

    both = ctx.for_both(measure)
    return ProbeResult(both.metrics, both.baseline_metrics, details)
