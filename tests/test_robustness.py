"""Shift, long-tail and adversarial probes: corruptions, slices and attacks on tiny models and data."""

from __future__ import annotations

import json

import numpy as np
import pytest
from rapidfuzz.distance import Levenshtein

from audit.context import ProbeContext
from audit.data import Split
from audit.perturb import edits, textattack_backend
from audit.perturb.attack import RECIPES, attack
from audit.perturb.corruptions import FAMILIES, SEVERITIES, corrupt
from audit.probes.longtail import quantile_slices
from audit.probes.shift import _paired_consistency
from conftest import StandInScorer, call_probe, sst2_rows, values, write_tsv
from test_cli import assert_bad_input, run

TEXTS = [t for t, _ in sst2_rows(64)]


@pytest.mark.parametrize("family", FAMILIES)
def test_corruptions_are_deterministic_per_item_and_seed(family):
    for severity in SEVERITIES:
        once = corrupt(TEXTS, family, severity, seed=7)
        assert once == corrupt(TEXTS, family, severity, seed=7)
        # an item's corruption depends on its key, not on its neighbours or their order
        assert corrupt(TEXTS[::-1], family, severity, seed=7, keys=range(63, -1, -1)) == once[::-1]
    assert all(t.strip() for t in once)


@pytest.mark.parametrize("family", ["typo", "case", "punctuation", "word_drop", "word_swap"])
def test_corruption_grows_with_severity_and_seed_matters(family):
    distance = [np.mean([Levenshtein.distance(a, b) for a, b in zip(TEXTS, corrupt(TEXTS, family, s, 0))])
                for s in SEVERITIES]
    assert 0 < distance[0] < distance[1] < distance[2]
    assert corrupt(TEXTS, family, 3, 0) != corrupt(TEXTS, family, 3, 1)


def test_rewrites_are_meaning_preserving_and_handle_tokenized_contractions():
    assert edits.apply_sites("it does n't take 2 hours", edits.rewrite_sites("it does n't take 2 hours")) \
        == "it does not take two hours"
    assert edits.apply_sites("I don't care", edits.rewrite_sites("I don't care")) == "I do not care"
    assert corrupt(["it is not 3"], "rewrite", 3, 0)[0] in ("it's not three", "it isn't three")


@pytest.mark.parametrize("seed", range(5))
def test_quantile_slices_cover_every_item_exactly_once(seed):
    values = np.random.default_rng(seed).integers(1, 8, size=97)  # many ties
    slices = quantile_slices(values, 4, "length", "words")
    covered = np.concatenate([s["index"] for s in slices.values()])
    assert sorted(covered.tolist()) == list(range(97))
    maxima = [values[s["index"]].max() for s in slices.values()]
    minima = [values[s["index"]].min() for s in slices.values()]
    assert all(hi < lo for hi, lo in zip(maxima, minima[1:]))  # ordered, non-overlapping


def test_paired_consistency_needs_both_members_right():
    right = np.array([True, True, True, False, False, False])
    assert _paired_consistency(right, np.array(["a", "a", "b", "b", "c", "c"])) == pytest.approx(1 / 3)


def constant_proba(texts, owners=None):
    return np.tile([0.9, 0.1], (len(texts), 1))


def test_attack_on_a_one_class_model_skips_its_wrong_items_and_wins_none():
    y = np.array([0, 1] * 10)
    for recipe in RECIPES.values():
        results = attack(constant_proba, TEXTS[:20], y, recipe, 100, 0, edits.stopwords())
        assert [r.status for r in results] == ["failed", "skipped"] * 10
        assert all(r.queries <= 100 for r in results)


def keyword_proba(texts, owners=None):
    """Positive iff a sentiment word survives intact: character edits can defeat it."""
    score = np.array([sum(w in ("good", "great", "charming", "best") for w in t.split())
                      - sum(w in ("bad", "dull", "worst") for w in t.split()) for t in texts], dtype=float)
    p = 1 / (1 + np.exp(-2 * score - 0.1))
    return np.stack([1 - p, p], axis=1)


def test_recipes_succeed_within_their_constraints_and_repeat_with_the_seed():
    texts = ["a good and charming film", "the best , most great story", "a bad and dull one", "not the worst"]
    y = np.array([1, 1, 0, 0])
    stop = edits.stopwords()
    for name, recipe in RECIPES.items():
        results = attack(keyword_proba, texts, y, recipe, 200, 3, stop)
        assert [r.as_dict() for r in results] == [r.as_dict() for r in attack(keyword_proba, texts, y, recipe, 200, 3, stop)]
        won = [r for r in results if r.status == "success"]
        assert won, name
        for r in won:
            assert keyword_proba([r.perturbed]).argmax() != r.label  # a success really flips the model
            assert all(old.lower() not in stop for old, _ in r.changes)
            if recipe.max_edit_distance:
                assert Levenshtein.distance(r.original, r.perturbed) <= recipe.max_edit_distance
        if name == "pruthi":
            assert all(r.words_changed <= 1 for r in results)
            assert all(old[0] == new[0] and old[-1] == new[-1] and len(old) >= 4 for r in won for old, new in r.changes)


def test_query_budget_is_respected():
    texts = ["a good and charming film with the best , most great story"] * 3
    for budget in (5, 20):
        results = attack(keyword_proba, texts, np.array([1, 1, 1]), RECIPES["pruthi"], budget, 0, edits.stopwords())
        assert all(r.queries <= budget and r.status == "failed" for r in results)


class FunctionScorer(StandInScorer):
    """A scorer whose probabilities come from a function of the texts."""

    is_lm = False

    def __init__(self, proba, role):
        self.proba, self.role = proba, role
        self.model = type("Model", (), {"tokenizer": None})()

    def predict(self, texts):
        return self.proba(texts).argmax(1)


def test_adversarial_probe_reports_both_models_transfer_and_skipped_textattack():
    y = np.array([0, 1] * 16)
    texts = TEXTS[:32]

    class Suite:
        labels = ("negative", "positive")

    split = Split("eval", texts, y, np.arange(32))
    ctx = ProbeContext(Suite(), split, FunctionScorer(keyword_proba, "model"), FunctionScorer(constant_proba, "baseline"), 0)
    result = call_probe("adversarial", ctx, recipes=["deepwordbug", "pruthi", "textattack_deepwordbug"], sample_size=32)
    m, b = values(result.metrics), values(result.baseline_metrics)
    for name in ("deepwordbug", "pruthi"):
        assert m[f"{name}_n_attacked"] + m[f"{name}_n_skipped"] == 32
        assert b[f"{name}_success_rate"] == 0 and b[f"{name}_n_skipped"] == 16  # the constant baseline
        transfer = result.metrics[f"{name}_transfer_rate"]  # the baseline was never fooled: nothing to transfer
        assert transfer.value is None and "no adversarial text" in transfer.note
    if textattack_backend.load() is not None:
        pytest.skip("textattack is installed here")
    assert result.details["textattack"]["status"] == "skipped"
    assert "pip install 'audit[textattack]'" in result.details["textattack"]["reason"]
    assert m["textattack_deepwordbug_success_rate"] is None  # undefined, with the install command as its reason
    assert "pip install" in result.metrics["textattack_deepwordbug_success_rate"].note


@pytest.fixture
def shift_suite(tiny_suite):
    rows = sst2_rows(64)
    write_tsv(tiny_suite.parent / "shifted.tsv", [(t.upper(), y) for t, y in rows[:40]])
    write_tsv(tiny_suite.parent / "pairs.tsv", [(t, y, str(i // 2)) for i, (t, y) in enumerate(rows[:40])],
              header=("sentence", "label", "pair"))
    text = tiny_suite.read_text().replace("probes:\n", """shift_sets:
  upper: {path: shifted.tsv, text_field: sentence, label_field: label, label_map: {0: negative, 1: positive}, sample: 30}
  pairs: {path: pairs.tsv, text_field: sentence, label_field: label, label_map: {0: negative, 1: positive}, pair_field: pair}
probes:
  shift: {corruption_sample: 20, corruptions: [typo, word_drop]}
  longtail: {min_support: 10}
  adversarial: {sample_size: 16, query_budget: 60, recipes: [deepwordbug]}
""").replace("gates:\n", "gates:\n  - {name: upper-floor, metric: shift.accuracy_upper, min: 0.0}\n")
    tiny_suite.write_text(text)
    return tiny_suite


def test_robustness_probes_run_in_check_with_baseline_deltas(shift_suite, tiny_bert, tiny_bert_other, tmp_path):
    out = tmp_path / "out"
    result = run("check", tiny_bert_other, "--baseline", tiny_bert, "-b", shift_suite, "--out", out)
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    probes = report["probes"]
    assert report["gates"][0]["name"] == "upper-floor" and report["gates"][0]["status"] == "pass"
    assert report["summary"]["sampled"] == {"shift": ["upper: 30 of 40 rows", "corruptions: 20 of 64 eval rows"],
                                            "adversarial": ["attacks: 16 of 64 eval rows"]}
    for name in ("shift", "longtail", "adversarial"):
        assert probes[name]["status"] == "ok" and probes[name]["deltas"], name
    shift = probes["shift"]
    assert shift["details"]["sets"]["upper"].items() >= {"n": 30, "n_total": 40, "sampled": True}.items()
    m = {k: v["value"] for k, v in shift["metrics"].items()}
    assert 0 <= m["consistency_pairs"] <= m["accuracy_pairs"]
    assert shift["metrics"]["accuracy_upper"]["n"] == 30 and len(shift["metrics"]["accuracy_upper"]["ci"]) == 2
    assert {f"corruption_typo_s{s}" for s in SEVERITIES} <= set(m)
    assert "corruption_case_s1" not in m
    slices = probes["longtail"]["details"]["slices"]
    for kind in ("length", "rarity", "class"):
        assert sum(s["support"] for s in slices if s["slicing"] == kind) == 64
    adv = {k: v["value"] for k, v in probes["adversarial"]["metrics"].items()}
    assert adv["deepwordbug_n_attacked"] + adv["deepwordbug_n_skipped"] == 16


def test_shift_set_on_the_command_line(tiny_suite, tiny_bert, tmp_path):
    rows = sst2_rows(20)
    plain = write_tsv(tmp_path / "plain.tsv", rows, header=("text", "label"))
    own = write_tsv(tmp_path / "own.tsv", rows)  # the benchmark's own format (sentence, label 0/1), as SST-2 itself
    out = tmp_path / "out"
    result = run("check", tiny_bert, "-b", tiny_suite, "--out", out, "--probes", "accuracy,shift",
                 "--shift-set", f"plain={plain}", "--shift-set", f"own={own}")
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "report.json").read_text())["probes"]["shift"]["metrics"]
    assert 0 <= metrics["accuracy_own"]["value"] == metrics["accuracy_plain"]["value"] <= 1  # the same rows
    assert_bad_input(run("check", tiny_bert, "-b", tiny_suite, "--out", out / "x", "--shift-set", "mine=/nope.tsv"),
                     out / "x", "--shift-set mine", "not found")
    assert_bad_input(run("check", tiny_bert, "-b", tiny_suite, "--out", out / "x", "--shift-set", "mine"),
                     out / "x", "NAME=PATH")
    odd = write_tsv(tmp_path / "odd.tsv", rows, header=("review", "stars"))
    assert_bad_input(run("check", tiny_bert, "-b", tiny_suite, "--out", out / "x", "--shift-set", f"odd={odd}"),
                     out / "x", "--shift-set odd", "fit neither the benchmark's format (sentence, label)")
