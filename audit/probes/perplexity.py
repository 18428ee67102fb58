"""Perplexity of running text (token- and word-level, bits per byte) and, against the baseline, llama.cpp's
`perplexity --kl-divergence` statistics: KL divergence of the next-token distributions (mean, median,
99th percentile), top-1 token agreement and the perplexity ratio, each with a block-bootstrap CI
(resampling runs of ``block_tokens`` consecutive tokens, since neighbouring tokens are not independent)."""

from __future__ import annotations

import numpy as np

from audit.causal_lm import word_count
from audit.context import ProbeContext, ProbeResult
from audit.contract import Estimate
from audit.metrics.stats import block_bootstrap_ci

SPEC = {
    "scores_items": False,
    "tasks": ["multiple_choice", "perplexity", "last_word"],
    "params": {
        "split": {"type": "str", "default": "eval", "choices_from": "text_sets"},
        "max_tokens": {"type": "int", "default": None, "nullable": True, "min": 16},
        "block_tokens": {"type": "int", "default": 128, "min": 8},
        "n_bootstrap": {"type": "int", "default": 200, "min": 10},
        "confidence": {"type": "float", "default": 0.95, "above": 0, "below": 1},
    },
    "metrics": {
        "token_perplexity": {"better": "lower", "ci": True},
        "word_perplexity": {"better": "lower"},
        "bits_per_byte": {"better": "lower", "ci": True},
        "n_tokens": {"better": "none"},
        "n_texts": {"better": "none"},
        "kl_mean": {"better": "lower", "ci": True, "vs_baseline": True},
        "kl_median": {"better": "lower", "vs_baseline": True},
        "kl_p99": {"better": "lower", "ci": True, "vs_baseline": True},
        "top1_agreement": {"ci": True, "vs_baseline": True, "range": [0, 1]},
        "perplexity_ratio": {"better": "lower", "ci": True, "vs_baseline": True},
    },
}


def run(ctx: ProbeContext, *, split: str, max_tokens: int | None, block_tokens: int, n_bootstrap: int,
        confidence: float) -> ProbeResult:
    spec = ctx.suite.eval if split == "eval" else ctx.suite.text_sets[split]
    texts = (ctx.eval if split == "eval" else ctx.split(split).sample(ctx.cap(spec.sample), ctx.seed)).texts
    ci = lambda stat, *arrays: block_bootstrap_ci(stat, arrays, block_tokens, n_bootstrap, confidence, ctx.seed)
    details = {"split": split, "n_texts": len(texts), "max_tokens": max_tokens, "block_tokens": block_tokens,
               "confidence": confidence}
    if ctx.baseline is None:
        lp = ctx.model.engine.token_logprobs(ctx.model.model, texts, max_tokens)
        return ProbeResult(text_metrics(ctx, lp, texts, max_tokens, ci), details=details)
    joint = ctx.model.engine.token_divergence(ctx.model.model, ctx.baseline.model, texts, max_tokens)
    mine, theirs, kl, agree = (np.concatenate([j[:, k] for j in joint]).astype(np.float64) for k in range(4))
    metrics = text_metrics(ctx, [j[:, 0] for j in joint], texts, max_tokens, ci)
    n = len(kl)
    metrics |= {"kl_mean": Estimate(float(kl.mean()), ci(lambda k: k.mean(), kl), n),
                "kl_median": Estimate(float(np.median(kl)), n=n),
                "kl_p99": Estimate(float(np.percentile(kl, 99)), ci(lambda k: np.percentile(k, 99), kl), n),
                "top1_agreement": Estimate(float(agree.mean()), ci(lambda a: a.mean(), agree), n),
                "perplexity_ratio": Estimate(float(np.exp((theirs - mine).mean())),
                                             ci(lambda a, b: np.exp((b - a).mean()), mine, theirs), n)}
    baseline = text_metrics(ctx, [j[:, 1] for j in joint], texts, max_tokens, ci)
    return ProbeResult(metrics, baseline, details)


def text_metrics(ctx: ProbeContext, logprobs: list[np.ndarray], texts: list[str], max_tokens: int | None,
                 ci) -> dict:
    """Perplexities of the scored texts (their first ``max_tokens`` tokens, decoded back for word and byte counts)."""
    lp = np.concatenate(logprobs).astype(np.float64)
    scored = texts if max_tokens is None else [ctx.model.model.tokenizer.decode(
        ctx.model.model.tokenizer(t)["input_ids"][:max_tokens]) for t in texts]
    words, n_bytes = sum(word_count(t) for t in scored), sum(len(t.encode("utf-8")) for t in scored)
    bytes_per_token = n_bytes / max(len(lp), 1)
    return {"token_perplexity": Estimate(float(np.exp(-lp.mean())), ci(lambda a: np.exp(-a.mean()), lp), len(lp)),
            "word_perplexity": float(np.exp(-lp.sum() / max(words, 1))),
            "bits_per_byte": Estimate(float(-lp.sum() / (n_bytes * np.log(2))),
                                      ci(lambda a: -a.mean() / (bytes_per_token * np.log(2)), lp), len(lp)),
            "n_tokens": float(len(lp)), "n_texts": float(len(texts))}
