"""Near-duplicate (MinHash + exact shingle index) and exact n-gram search of the eval split in the
training data, and the model's accuracy on the clean and contaminated items."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from audit.context import ProbeContext, ProbeResult
from audit.contamination.executors import scan_corpus
from audit.contamination.scan import BenchmarkIndex, ScanConfig, ScanResult
from audit.contract import Estimate
from audit.metrics.stats import fisher_exact_p, wilson_interval

SPEC = {
    "scores_items": False,
    "tasks": ["classification", "multiple_choice", "perplexity", "last_word", "generate"],
    "params": {
        "shingle_size": {"type": "int", "default": 5, "min": 1, "max": 64},
        "num_perm": {"type": "int", "default": 128, "min": 16, "max": 1024},
        "jaccard_threshold": {"type": "float", "default": 0.8, "above": 0, "max": 1},
        "containment_threshold": {"type": "float", "default": 0.8, "above": 0, "max": 1},
        "ngram_size": {"type": "int", "default": 13, "min": 1, "max": 256},
        "min_words": {"type": "int", "default": 4, "min": 1},
        "text_field": {"type": "str", "default": None, "nullable": True},
        "max_examples": {"type": "int", "default": 20, "min": 0},
        # where the shards run (audit/contamination/executors.py); workers: Ray tasks at a time
        "executor": {"type": "str", "default": "local", "choices": ["local", "ray"]},
        "workers": {"type": "int", "default": None, "min": 1, "nullable": True},
        "ray_address": {"type": "str", "default": None, "nullable": True},
        "resume": {"type": "str", "default": None, "nullable": True},
    },
    "metrics": {
        "contaminated_fraction": {"better": "lower"},
        "n_contaminated": {"better": "lower"},
        "exact_ngram_fraction": {"better": "lower"},
        "n_exact_ngram": {"better": "lower"},
        "n_too_short": {"better": "none"},
        "n_items": {"better": "none"},
        "documents_scanned": {"better": "none"},
        "clean_accuracy": {"ci": True},
        "contaminated_accuracy": {},
        "accuracy_gap_p_value": {"better": "none"},
    },
}


def score_split(right: np.ndarray, contaminated: np.ndarray) -> dict[str, Estimate]:
    """Accuracy on the clean and contaminated items, a Wilson CI for the clean-only score and
    Fisher's exact test of the difference: the contamination-adjusted numbers."""
    clean, dirty = right[~contaminated], right[contaminated]
    none = "no contaminated items"
    return {
        "clean_accuracy": Estimate(float(clean.mean()), wilson_interval(int(clean.sum()), len(clean)), len(clean))
        if len(clean) else Estimate(None, note="every item is contaminated"),
        "contaminated_accuracy": Estimate(float(dirty.mean()), n=len(dirty)) if len(dirty) else Estimate(None, note=none),
        "accuracy_gap_p_value": Estimate(fisher_exact_p(int(dirty.sum()), len(dirty), int(clean.sum()), len(clean)),
                                         note=none if not len(dirty) else "every item is contaminated"),
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


def run(ctx: ProbeContext, *, shingle_size: int, num_perm: int, jaccard_threshold: float,
        containment_threshold: float, ngram_size: int, min_words: int, text_field: str | None,
        max_examples: int, executor: str, workers: int | None, ray_address: str | None,
        resume: str | None) -> ProbeResult:
    config = ScanConfig(shingle_size, num_perm, jaccard_threshold, containment_threshold, ngram_size, min_words,
                        ctx.seed)
    sources = ctx.corpora(text_field)
    if not sources:
        raise ValueError("no training data: the suite declares no reference split and no --train-data was given")
    result = scan_corpus(BenchmarkIndex(ctx.eval.texts, config), sources, executor=executor, workers=workers,
                         ray_address=ray_address, resume=Path(resume) if resume else None)
    flagged = result.contaminated
    n = result.n_items
    metrics = {"contaminated_fraction": Estimate(float(flagged.mean()), n=n), "n_contaminated": float(flagged.sum()),
               "exact_ngram_fraction": Estimate(float(result.ngram_hit.mean()), n=n),
               "n_exact_ngram": float(result.ngram_hit.sum()), "n_too_short": float(result.too_short.sum()),
               "n_items": float(n), "documents_scanned": float(result.stats["documents"])}
    details = {
        "corpora": [s.path for s in sources],
        "short_items": f"items under {min_words} words are not judged (n_too_short); items of {min_words}-"
                       f"{shingle_size - 1} words are one shingle (the whole item) matched against the corpus's "
                       f"n-grams of that length; the exact n-gram detector uses {ngram_size}-grams, or the whole "
                       f"item when shorter",
        "scan": result.stats,
        "examples": findings(result, ctx.eval.texts, ctx.eval.rows, max_examples),
    }
    if ctx.model is None or not ctx.suite.task.graded:  # clean/contaminated accuracy needs items right or wrong
        return ProbeResult(metrics, details=details)

    def measure(scorer) -> dict:
        return {**metrics, **score_split(scorer.right(ctx.eval.inputs, ctx.eval.labels), flagged)}

    both = ctx.for_both(measure)
    return ProbeResult(both.metrics, both.baseline_metrics, details)
