"""Was the benchmark in the model's training data? Evidence from the model alone, for when no training corpus
can be scanned (the contamination probe needs one).

Exchangeability test (Oren et al. 2023): ``shards`` blocks of ``shard_items`` consecutive items (spread over
the split, in file order) are each scored as one text in the canonical order and in ``permutations`` seeded
random orders; a one-sided t-test over shards asks whether the canonical order is preferred, which only
training on the file explains. Oren et al. ran 50 shards x 250 permutations; fewer shards lose power, and
the report states the effect the chosen count can detect. Units are the items (a multiple-choice item with
its gold answer, a passage with its last word) or, for running text, its paragraphs (lines).

Min-K% and Min-K%++ (k = ``k_percent``) score each item; they are weak evidence per item, so the probe
compares the benchmark with a ``reference`` set the model cannot have seen (a later split, fresh items):
the AUROC of the two sets' scores and the difference of their means, with two-sample bootstrap CIs.
A reference that differs from the benchmark in kind (another source, another difficulty) separates from
it for reasons unrelated to training (Das et al. 2024; Duan et al. 2024), so a model-free "blind"
classifier is fitted to the same two sets (cross-validated, seeded): the model's AUROC counts as evidence
only where it exceeds the blind one (``*_auroc_excess``, paired bootstrap CI). Without a reference only the
raw means are reported. The most member-like items are listed, as leads.
"""

from __future__ import annotations

import numpy as np

from audit.context import ProbeContext, ProbeResult
from audit.contract import Estimate
from audit.metrics.membership import (auroc_excess, blind_scores, detectable_effect, exchangeability_test,
                                      membership_auroc_score, min_k_plus_plus_score, min_k_score)
from audit.metrics.stats import bootstrap_ci, two_sample_bootstrap_ci
from audit.suite import PERPLEXITY

SPEC = {
    "scores_items": False,
    "tasks": ["multiple_choice", "perplexity", "last_word", "generate"],
    "params": {
        "shards": {"type": "int", "default": 10, "min": 2},
        "shard_items": {"type": "int", "default": 10, "min": 2},
        "permutations": {"type": "int", "default": 10, "min": 1},
        "separator": {"type": "str", "default": "\n"},
        "k_percent": {"type": "float", "default": 20.0, "above": 0, "max": 100},
        "sample": {"type": "int", "default": 200, "min": 2, "nullable": True},
        "max_tokens": {"type": "int", "default": 256, "min": 8},
        "reference": {"type": "str", "default": None, "nullable": True, "choices_from": "splits"},
        "alpha": {"type": "float", "default": 0.01, "above": 0, "below": 1},
        "top_items": {"type": "int", "default": 10, "min": 0},
        "n_bootstrap": {"type": "int", "default": 1000, "min": 10},
        "confidence": {"type": "float", "default": 0.95, "above": 0, "below": 1},
    },
    "metrics": {
        "exchangeability_p": {},
        "canonical_advantage": {"better": "lower", "ci": True},
        "mink_mean": {"better": "none", "ci": True},
        "minkpp_mean": {"better": "none", "ci": True},
        "mink_auroc": {"better": "lower", "ci": True},
        "minkpp_auroc": {"better": "lower", "ci": True},
        "minkpp_gap": {"better": "lower", "ci": True},
        "blind_auroc": {"better": "none", "ci": True, "range": [0, 1]},
        "mink_auroc_excess": {"better": "lower", "ci": True},
        "minkpp_auroc_excess": {"better": "lower", "ci": True},
    },
}
BLIND_FOLDS = 5  # cross-validation folds of the blind classifier; each set needs at least this many texts
REFERENCE_METRICS = ("mink_auroc", "minkpp_auroc", "minkpp_gap", "blind_auroc", "mink_auroc_excess",
                     "minkpp_auroc_excess")


def run(ctx: ProbeContext, *, shards: int, shard_items: int, permutations: int, separator: str, k_percent: float,
        sample: int | None, max_tokens: int, reference: str | None, alpha: float, top_items: int, n_bootstrap: int,
        confidence: float) -> ProbeResult:
    running_text = ctx.suite.task.kind == PERPLEXITY
    units = unit_texts(ctx.split("eval").texts, running_text)
    blocks = shard_blocks(len(units), shards, shard_items, ctx.cap(shards * shard_items))
    orders = [[np.arange(shard_items)] + permutation_orders(shard_items, permutations, ctx.seed, b) for b in range(len(blocks))]
    candidates = ctx.eval.sample(ctx.cap(sample), ctx.seed)
    cand_texts = unit_texts(candidates.texts, running_text)
    ref_split = ctx.split(reference).sample(ctx.cap(sample), ctx.seed) if reference else None
    ref_texts = unit_texts(ref_split.texts, running_text) if ref_split is not None else []
    k = k_percent / 100
    details = {"shards": len(blocks), "shard_items": shard_items, "permutations": permutations, "units": len(units),
               "unit": "paragraph" if running_text else "item", "alpha": alpha, "k_percent": k_percent,
               "reference": reference, "n_candidates": len(cand_texts), "n_reference": len(ref_texts),
               "confidence": confidence,
               "detectable_effect": detectable_effect(len(blocks), alpha) if len(blocks) >= 2 else None}
    scored: dict[str, dict] = {}
    blind = blind_split(cand_texts, ref_texts, ctx.seed)

    def measure(scorer) -> dict:
        engine, model = scorer.engine, scorer.model
        out, scored.setdefault("shards", {})[scorer.role] = exchangeability(engine, model, units, blocks, orders,
                                                                             separator, confidence)
        mine = scores(engine.token_stats(model, cand_texts, max_tokens, desc=f"membership {scorer.role}"), k)
        scored[scorer.role] = mine
        theirs = scores(engine.token_stats(model, ref_texts, max_tokens, desc=f"membership {scorer.role}"), k) \
            if ref_texts else None
        measured = reference_metrics(mine, theirs, blind, n_bootstrap, confidence, ctx.seed)
        details[f"reading_{scorer.role}"] = reading(measured)
        return out | measured

    result = ctx.for_both(measure)
    mink, minkpp = scored["model"]
    top = np.argsort(-minkpp, kind="stable")[:top_items]
    details |= {"shard_differences": {role: [float(d) for d in diffs] for role, diffs in scored["shards"].items()},
                "shard_starts": [int(b[0]) for b in blocks],
                "member_like": [{"text": cand_texts[i], "minkpp": float(minkpp[i]), "mink": float(mink[i])} for i in top]}
    result.details = details
    return result


def unit_texts(texts: list[str], running_text: bool) -> list[str]:
    """The probe's units: the items, or the non-blank lines (paragraphs) of running text."""
    if not running_text:
        return list(texts)
    return [line for text in texts for line in text.split("\n") if line.strip()]


def shard_blocks(n_units: int, shards: int, shard_items: int, cap: int | None) -> list[np.ndarray]:
    """Up to ``shards`` blocks of ``shard_items`` consecutive units, spread evenly over the split (fewer when the
    split, or --limit, holds fewer units)."""
    shards = min(shards, n_units // shard_items, (cap or n_units) // shard_items)
    if shards < 1:
        return []
    starts = np.linspace(0, n_units - shard_items, shards).astype(int) if shards > 1 else np.array([0])
    return [np.arange(s, s + shard_items) for s in starts]


def permutation_orders(size: int, count: int, seed: int, shard: int) -> list[np.ndarray]:
    """``count`` seeded random orders of ``size`` items, none of them the canonical one."""
    rng = np.random.default_rng([seed, shard])
    out = []
    while len(out) < count:
        order = rng.permutation(size)
        if not np.array_equal(order, np.arange(size)):
            out.append(order)
    return out


def exchangeability(engine, model, units, blocks, orders, separator: str, confidence: float) -> tuple[dict, np.ndarray]:
    """The test's p-value and the canonical order's mean advantage (nats per shard, with a t CI); the
    per-shard differences."""
    from scipy import stats

    if len(blocks) < 2:
        why = f"the split holds too few units for two shards of {len(blocks[0]) if blocks else 'the asked'} items"
        return {"exchangeability_p": Estimate(None, note=why), "canonical_advantage": Estimate(None, note=why)}, \
            np.zeros(0)
    texts = [separator.join(units[block[i]] for i in order) for block, shard in zip(blocks, orders) for order in shard]
    totals = np.array([lp.sum() for lp in engine.token_logprobs(model, texts, desc="membership: orders")])
    totals = totals.reshape(len(blocks), -1)
    t, p, diffs = exchangeability_test(totals[:, 0], totals[:, 1:])
    n = sum(len(b) for b in blocks)
    if np.isnan(p):
        why = "every shard's canonical and permuted orders scored the same"
        return {"exchangeability_p": Estimate(None, note=why),
                "canonical_advantage": Estimate(float(diffs.mean()), n=n)}, diffs
    ci = stats.t.interval(confidence, len(diffs) - 1, loc=diffs.mean(), scale=stats.sem(diffs))
    return {"exchangeability_p": Estimate(p, n=n), "canonical_advantage": Estimate(float(diffs.mean()), ci, n)}, diffs


def scores(token_stats: list[np.ndarray], k: float) -> tuple[np.ndarray, np.ndarray]:
    """(Min-K%, Min-K%++) per text."""
    return (np.array([min_k_score(s[:, 0], k) for s in token_stats]),
            np.array([min_k_plus_plus_score(s[:, 0], s[:, 1], s[:, 2], k) for s in token_stats]))


def blind_split(candidates: list[str], reference: list[str], seed: int) -> tuple[np.ndarray, np.ndarray] | str:
    """The blind classifier's out-of-fold scores (candidates', reference's), or why there are none."""
    if not reference:
        return "no reference set (the probe's reference parameter) to compare the benchmark's scores with"
    if min(len(candidates), len(reference)) < BLIND_FOLDS:
        return f"the blind classifier's {BLIND_FOLDS}-fold cross-validation needs {BLIND_FOLDS} texts in each set"
    oof = blind_scores(candidates, reference, seed, BLIND_FOLDS)
    return oof[:len(candidates)], oof[len(candidates):]


def reference_metrics(mine: tuple[np.ndarray, np.ndarray], theirs: tuple[np.ndarray, np.ndarray] | None,
                      blind: tuple[np.ndarray, np.ndarray] | str, n_bootstrap: int, confidence: float,
                      seed: int) -> dict:
    mink, minkpp = mine
    ci = lambda stat, a, b: two_sample_bootstrap_ci(stat, a, b, n_bootstrap, confidence, seed)
    mean_ci = lambda a: bootstrap_ci(lambda x: x.mean(), (a,), n_bootstrap, confidence, seed)
    out = {"mink_mean": Estimate(float(mink.mean()), mean_ci(mink), len(mink)),
           "minkpp_mean": Estimate(float(minkpp.mean()), mean_ci(minkpp), len(minkpp))}
    if theirs is None:
        why = "no reference set (the probe's reference parameter) to compare the benchmark's scores with"
        return out | {name: Estimate(None, note=why) for name in REFERENCE_METRICS}
    ref_mink, ref_minkpp = theirs
    n = len(mink) + len(ref_mink)
    gap = lambda a, b: a.mean() - b.mean()
    out |= {
        "mink_auroc": Estimate(membership_auroc_score(mink, ref_mink), ci(membership_auroc_score, mink, ref_mink), n),
        "minkpp_auroc": Estimate(membership_auroc_score(minkpp, ref_minkpp),
                                 ci(membership_auroc_score, minkpp, ref_minkpp), n),
        "minkpp_gap": Estimate(float(gap(minkpp, ref_minkpp)), ci(gap, minkpp, ref_minkpp), n)}
    if isinstance(blind, str):
        return out | {name: Estimate(None, note=blind) for name in REFERENCE_METRICS[3:]}
    cand_blind, ref_blind = blind
    out["blind_auroc"] = Estimate(membership_auroc_score(cand_blind, ref_blind),
                                  ci(membership_auroc_score, cand_blind, ref_blind), n)
    # paired: one resample of the candidates and one of the reference serve both AUROCs
    excess = lambda a, b: auroc_excess((a[:, 0], b[:, 0]), (a[:, 1], b[:, 1]))
    for name, cand, ref in (("mink_auroc_excess", mink, ref_mink), ("minkpp_auroc_excess", minkpp, ref_minkpp)):
        pair_c, pair_r = np.c_[cand, cand_blind], np.c_[ref, ref_blind]
        out[name] = Estimate(excess(pair_c, pair_r), ci(excess, pair_c, pair_r), n)
    return out


def reading(measured: dict) -> str | None:
    """What the Min-K%++ AUROC against the reference says, given the blind classifier's."""
    excess, blind = measured.get("minkpp_auroc_excess"), measured.get("blind_auroc")
    if excess is None or excess.value is None or excess.ci is None:
        return None
    differs = blind.ci is not None and blind.ci[0] > 0.5
    if excess.ci[0] > 0:
        return "evidence: the model separates the benchmark from the reference beyond what the texts alone do" + (
            " (the reference also differs from the benchmark in kind)" if differs else "")
    if differs:
        return ("the reference differs from the benchmark in kind: a classifier that never sees the model separates "
                "them as well, so the model's AUROC is no evidence of training on the benchmark")
    return "no evidence: the model does not separate the benchmark from the reference beyond what the texts alone do"
