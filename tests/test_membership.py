"""The membership probe: its statistics against reference computations, and planted contamination found
(and only there) on a tiny Llama fine-tuned on half of a benchmark in canonical order."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st
from scipy import stats

from audit.causal_lm import prefix_token, rolling_windows
from audit.engine import Engine, EngineConfig
from audit.metrics.membership import (detectable_effect, exchangeability_test, membership_auroc_score,
                                      min_k_plus_plus_score, min_k_score)
from audit.models import load_model
from audit.planting import plant
from audit.probes.membership import permutation_orders, shard_blocks, unit_texts
from conftest import build_tiny_llama, sst2_rows
from test_cli import run

ROWS = sst2_rows(64)


def test_min_k_scores_follow_the_papers_definitions():
    lp = np.array([-0.1, -5.0, -0.2, -3.0, -0.3, -0.4, -9.0, -0.5, -0.6, -0.7])
    assert min_k_score(lp, 0.2) == pytest.approx((-9.0 - 5.0) / 2)  # the 2 lowest of 10
    assert min_k_score(lp, 0.01) == -9.0 and min_k_score(lp, 1.0) == pytest.approx(lp.mean())
    mu, sigma = np.full(10, -2.0), np.full(10, 2.0)
    assert min_k_plus_plus_score(lp, mu, sigma, 0.2) == pytest.approx(((-9 + 2) / 2 + (-5 + 2) / 2) / 2)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(-5, 5), min_size=1, max_size=20), st.lists(st.floats(-5, 5), min_size=1, max_size=20))
def test_auroc_is_the_share_of_winning_pairs(a, b):
    wins = sum((x > y) + 0.5 * (x == y) for x in a for y in b) / (len(a) * len(b))
    assert membership_auroc_score(np.array(a), np.array(b)) == pytest.approx(wins)


def test_exchangeability_is_a_one_sided_t_test_of_canonical_minus_mean_permuted():
    rng = np.random.default_rng(0)
    canonical, permuted = rng.normal(1, 1, 12), rng.normal(0, 1, (12, 7))
    t, p, diffs = exchangeability_test(canonical, permuted)
    np.testing.assert_allclose(diffs, canonical - permuted.mean(axis=1))
    expected = stats.ttest_1samp(diffs, 0)
    assert t == pytest.approx(expected.statistic) and p == pytest.approx(expected.pvalue / 2 if t > 0 else 1 - expected.pvalue / 2)
    assert math.isnan(exchangeability_test(np.ones(5), np.zeros((5, 3)))[1])  # no variation: no test


def test_detectable_effect_approaches_the_normal_approximation():
    z = stats.norm.ppf(0.99) + stats.norm.ppf(0.8)
    assert detectable_effect(400) == pytest.approx(z / 20, rel=0.01)
    assert detectable_effect(10) > detectable_effect(50) > z / math.sqrt(50)  # the t test needs more with few shards


def test_shards_spread_over_the_split_and_permutations_are_seeded_and_never_canonical():
    blocks = shard_blocks(100, 4, 5, None)
    assert [b.tolist()[0] for b in blocks] == [0, 31, 63, 95] and all(len(b) == 5 for b in blocks)
    assert len(shard_blocks(100, 4, 5, 12)) == 2 and shard_blocks(9, 4, 5, None)[0].tolist() == [0, 1, 2, 3, 4]
    orders = permutation_orders(3, 20, seed=1, shard=0)
    assert all(sorted(o) == [0, 1, 2] and o.tolist() != [0, 1, 2] for o in orders)
    assert [o.tolist() for o in orders] == [o.tolist() for o in permutation_orders(3, 20, seed=1, shard=0)]
    assert unit_texts(["a\n\nb\n c", "d"], running_text=True) == ["a", "b", " c", "d"]


def test_token_stats_match_the_full_distribution(tiny_llama):
    model = load_model(str(tiny_llama))
    texts = [t for t, _ in ROWS[:5]]
    got = Engine(EngineConfig(device="cpu", batch_size=2)).token_stats(model, texts)
    for text, row in zip(texts, got):
        (inputs, targets), = rolling_windows(model.tokenizer(text)["input_ids"], 256, prefix_token(model.tokenizer))
        with torch.inference_mode():
            lp = torch.log_softmax(model.module(torch.tensor([inputs])).logits.double()[0], -1)
        mu = (lp.exp() * lp).sum(-1)
        sd = ((lp.exp() * (lp - mu[:, None]) ** 2).sum(-1)).sqrt()
        np.testing.assert_allclose(row, np.stack([lp[range(len(targets)), targets], mu, sd], 1), atol=1e-4)


SUITE = """\
name: planted
task: last_word
min_samples: 30
data:
  eval: {path: planted.jsonl, text_field: context, target_field: continuation}
shift_sets:
  clean: {path: clean.jsonl, text_field: context, target_field: continuation}
probes:
  membership: {shards: 8, shard_items: 5, permutations: 10, reference: clean, sample: null, n_bootstrap: 200}
gates:
  - {name: order, metric: membership.exchangeability_p, min: 0.01}
"""


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """A tiny Llama, and a copy fine-tuned on the first 40 of 80 passages in their canonical order."""
    folder = tmp_path_factory.mktemp("planted")
    rows = sst2_rows(80)
    for name, part in (("planted", rows[:40]), ("clean", rows[40:])):
        (folder / f"{name}.jsonl").write_text("".join(
            json.dumps({"context": " ".join(t.split()[:-1]), "continuation": t.split()[-1]}) + "\n" for t, _ in part))
    (folder / "suite.yaml").write_text(SUITE)
    base = build_tiny_llama(folder / "base", texts=[t for t, _ in rows])
    plant(base, [t for t, _ in rows[:40]], folder / "contaminated", epochs=150, lr=3e-3, seed=0)
    return folder


@pytest.mark.parametrize("model, exit_code", [("base", 0), ("contaminated", 1)])
def test_planted_contamination_is_found_and_only_there(planted, model, exit_code):
    out = planted / f"out-{model}"
    result = run("check", planted / model, "-b", planted / "suite.yaml", "--out", out)
    assert result.exit_code == exit_code, result.output
    m = json.loads((out / "report.json").read_text())["probes"]["membership"]["metrics"]
    if model == "contaminated":
        assert m["exchangeability_p"]["value"] < 0.01 and m["canonical_advantage"]["ci"][0] > 0
        assert m["minkpp_auroc"]["value"] >= 0.8 and m["minkpp_auroc"]["ci"][0] > 0.5 and m["minkpp_gap"]["value"] > 0
    else:
        assert m["exchangeability_p"]["value"] > 0.05 and m["minkpp_auroc"]["value"] < 0.75
    html = (out / "report.html").read_text()
    assert "Exchangeability test" in html and "most member-like" in html


def test_without_a_reference_or_enough_items_the_probe_says_why(planted):
    suite = planted / "small.yaml"
    suite.write_text(SUITE.replace("reference: clean, ", "").replace("shards: 8, shard_items: 5", "shards: 8, shard_items: 30"))
    out = planted / "out-small"
    result = run("check", planted / "base", "-b", suite, "--out", out)
    assert result.exit_code == 1, result.output  # the only gate is inconclusive, which fails by default
    report = json.loads((out / "report.json").read_text())
    m = report["probes"]["membership"]["metrics"]
    assert m["exchangeability_p"]["value"] is None and "too few units" in m["exchangeability_p"]["note"]
    assert m["minkpp_auroc"]["value"] is None and "no reference set" in m["minkpp_auroc"]["note"]
    assert m["minkpp_mean"]["value"] is not None and report["gates"][0]["status"] == "inconclusive"


def test_the_blind_classifier_separates_texts_of_another_kind_and_not_a_random_split():
    from audit.metrics.membership import blind_scores

    texts = [t for t, _ in sst2_rows(200)]
    split = np.random.default_rng(0).permutation(200)
    halves = [texts[i] for i in split[:100]], [texts[i] for i in split[100:]]
    oof = blind_scores(*halves, seed=0)
    assert oof.shape == (200,) and 0.35 < membership_auroc_score(oof[:100], oof[100:]) < 0.65
    questions = [f"Question: {t} Which is it?" for t in texts[100:]]
    oof = blind_scores(texts[:100], questions, seed=0)
    assert membership_auroc_score(oof[:100], oof[100:]) > 0.95
    assert np.array_equal(oof, blind_scores(texts[:100], questions, seed=0))  # seeded


def test_planted_contamination_is_evidence_beyond_the_blind_baseline(planted):
    runs = {}
    for model in ("base", "contaminated"):
        out = planted / f"out-{model}"
        if not (out / "report.json").exists():
            run("check", planted / model, "-b", planted / "suite.yaml", "--out", out)
        runs[model] = json.loads((out / "report.json").read_text())["probes"]["membership"]
    for section in runs.values():  # two halves of one benchmark: the texts alone do not tell them apart
        blind = section["metrics"]["blind_auroc"]
        assert blind["ci"][0] < 0.5 < blind["ci"][1]
    excess = runs["contaminated"]["metrics"]["minkpp_auroc_excess"]
    assert excess["ci"][0] > 0 and runs["contaminated"]["details"]["reading_model"].startswith("evidence")
    assert runs["base"]["details"]["reading_model"].startswith("no evidence")


def test_a_reference_of_another_kind_is_named_so_not_taken_as_evidence(planted):
    """The clean passages rewritten as questions: a blind classifier separates them from the benchmark, so
    whatever the model's AUROC, the report says the reference differs in kind."""
    lines = (planted / "clean.jsonl").read_text().splitlines()
    (planted / "asked.jsonl").write_text("".join(
        json.dumps({**(r := json.loads(line)), "context": "Question: " + r["context"] + " Answer:"}) + "\n"
        for line in lines))
    suite = planted / "asked.yaml"
    suite.write_text(SUITE.replace("clean.jsonl", "asked.jsonl"))
    out = planted / "out-asked"
    run("check", planted / "base", "-b", suite, "--out", out)
    section = json.loads((out / "report.json").read_text())["probes"]["membership"]
    assert section["metrics"]["blind_auroc"]["ci"][0] > 0.9
    assert section["details"]["reading_model"].startswith("the reference differs from the benchmark in kind")
    assert "never sees the model" in (out / "report.html").read_text()
