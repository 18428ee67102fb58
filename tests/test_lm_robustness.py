"""LM robustness probes on multiple-choice suites: choice order, prompt variants, attacks on the question and
shift between sets; exact figures from scripted scorers, then the whole path on tiny Llamas."""

from __future__ import annotations

import json
import re

import jsonschema
import numpy as np
import pytest

from audit import suite as suite_mod
from audit.context import ProbeContext
from audit.data import read_suite_data, render_choices
from audit.errors import DataError, SpecError
from audit.verify import schema
from conftest import StandInScorer, build_tiny_llama, call_probe, sst2_rows, values
from test_cli import run

ROWS = sst2_rows(40)
CHOICES = ["good film", "bad film", "maybe", "no"]
SUITE = """\
name: tiny-mc
task: multiple_choice
labels: [A, B, C, D]
min_samples: 5
data:
  eval: {path: mc.jsonl, text_template: "Question: {q}\\nAnswer:", choices_field: choices, label_field: answer}
shift_sets:
  other: {path: other.jsonl, text_template: "Question: {q}\\nAnswer:", choices_field: choices, label_field: answer}
prompts:
  qa: {template: "Q: {q}\\nA:"}
  listed: {template: "Question: {q}\\n{choices}\\nAnswer:", answer: letter}
probes:
  choice_order: {prompt: listed, n_bootstrap: 50}
  prompt_variants: {prompts: [qa], n_bootstrap: 50}
  adversarial: {recipes: [deepwordbug, pruthi, textattack_pruthi], sample_size: 10, query_budget: 15}
  shift: {sets: [other], corruptions: [typo], corruption_sample: 10}
  membership: {shards: 4, shard_items: 5, permutations: 3, sample: 20, n_bootstrap: 50}
gates:
  - {name: order, metric: choice_order.consistency, max_regression: 1.0, confidence: 0.95, severity: warn}
  - {name: prompts, metric: prompt_variants.accuracy_spread, max_regression: 1.0, confidence: 0.95}
"""


def write_items(path, rows, offset=0):
    path.write_text("".join(json.dumps({"q": text, "choices": CHOICES[:3 + (i + offset) % 2], "answer": (i + offset) % 3})
                            + "\n" for i, (text, _) in enumerate(rows)))


@pytest.fixture
def mc_suite(tmp_path):
    write_items(tmp_path / "mc.jsonl", ROWS[:24])
    write_items(tmp_path / "other.jsonl", ROWS[24:], offset=1)
    (tmp_path / "suite.yaml").write_text(SUITE)
    return tmp_path / "suite.yaml"


class Scripted(StandInScorer):
    """A causal-LM scorer stand-in that answers by a rule over the rendered items."""

    is_lm = True

    def __init__(self, pick, role="model"):
        self.pick, self.role = pick, role

    def proba(self, items, owners=None):
        out = np.zeros((len(items), 4))
        for i, item in enumerate(items):
            out[i, self.pick(item)] = 1
        return out

    def predict(self, items):
        return self.proba(items).argmax(axis=1)

    def truncated(self, inputs):
        return np.zeros(len(inputs), dtype=bool)


def letter_of(item, content: str) -> int:
    """Where ``content`` stands: in a listed prompt the line holding it, in a cloze prompt the continuation."""
    lines = [line[3:] for line in item.context.split("\n") if re.match(r"^[A-D]\. ", line)]
    options = lines or [c.strip() for c in item.continuations]
    return options.index(content) if content in options else 0


def context(suite_file, model, baseline=None):
    suite = suite_mod.load(str(suite_file))
    splits = read_suite_data(suite)
    return ProbeContext(suite, splits["eval"], model, baseline, 0, splits=dict(splits))


def test_cyclic_shifts_move_the_choices_and_the_gold(mc_suite):
    suite = suite_mod.load(str(mc_suite))
    split = read_suite_data(suite)["eval"].subset(np.array([1]))  # choices: good film, bad film, maybe, no; gold 1
    items, golds = render_choices(split, suite.eval, suite.labels, suite.task, prompt=suite.prompts["listed"],
                                  orders=[[3, 0, 1, 2]])
    assert items[0].context.endswith("\nA. no\nB. good film\nC. bad film\nD. maybe\nAnswer:")
    assert items[0].continuations == (" A", " B", " C", " D") and golds.tolist() == [2]
    cloze, _ = render_choices(split, suite.eval, suite.labels, suite.task, orders=[[3, 0, 1, 2]])
    assert cloze[0].continuations == (" no", " good film", " bad film", " maybe")


def test_choice_order_separates_content_from_position(mc_suite):
    first = call_probe("choice_order", context(mc_suite, Scripted(lambda item: 0)), prompt="listed", n_bootstrap=50)
    m = values(first.metrics)
    assert m["pick_rate_A"] == 1 and m["consistency"] == 0 and m["all_shifts_accuracy"] == 0
    golds = np.array(first.details["gold_rate"])
    assert m["letter_bias"] == pytest.approx(1 - golds[0]) and m["mean_shift_accuracy"] == pytest.approx(golds[0])
    assert first.details["examples"] and first.details["items_with_fewer_choices"] == 12
    sticky = Scripted(lambda item: letter_of(item, "maybe"))  # always the same content, wherever it stands
    m = values(call_probe("choice_order", context(mc_suite, sticky, Scripted(lambda item: 0, "baseline")),
                          prompt="listed", n_bootstrap=50).metrics)
    assert m["consistency"] == 1 and m["accuracy"] == pytest.approx(np.mean([i % 3 == 2 for i in range(24)]))


def test_choice_order_says_a_cloze_prompt_cannot_depend_on_order(mc_suite):
    result = call_probe("choice_order", context(mc_suite, Scripted(lambda item: 0)), prompt=None)
    assert result.details["order_invariant"] and "cloze" in result.metrics["consistency"].note


def test_prompt_variants_spread_and_consistency(mc_suite):
    by_prompt = Scripted(lambda item: 1 if item.context.startswith("Q:") else 0)  # answers by wording alone
    result = call_probe("prompt_variants", context(mc_suite, by_prompt), prompts=["qa", "listed"], n_bootstrap=50)
    m = values(result.metrics)
    gold = np.array([i % 3 for i in range(24)])
    acc = [(gold == 0).mean(), (gold == 1).mean(), (gold == 0).mean()]
    assert [m["own_prompt_accuracy"], m["accuracy_qa"], m["accuracy_listed"]] == pytest.approx(acc)
    assert m["accuracy_spread"] == pytest.approx(max(acc) - min(acc)) and m["consistency"] == 0
    assert len(result.details["examples"]) == 10 and set(result.details["examples"][0]["answers"]) == {"(own)", "qa", "listed"}
    none = call_probe("prompt_variants", context(mc_suite, by_prompt), prompts=[])
    assert none.metrics["consistency"].value is None and "declares no prompts" in none.metrics["consistency"].note


def test_attacks_edit_only_the_question(mc_suite):
    # Right (gold C, "maybe") only while the question keeps its words intact: any edit flips the answer.
    def pick(item):
        intact = all(w in WORDS for w in item.context.split("\n")[0].removeprefix("Question: ").split())
        return letter_of(item, "maybe") if intact else 0
    ctx = context(mc_suite, Scripted(pick))
    WORDS = {w for t, _ in ROWS for w in t.split()}
    result = call_probe("adversarial", ctx, recipes=["deepwordbug", "textattack_pruthi"], sample_size=24, query_budget=80)
    m = values(result.metrics)
    assert m["deepwordbug_n_attacked"] == 8 and m["deepwordbug_success_rate"] == 1  # the 8 items whose gold is "maybe"
    for e in result.details["examples"]["deepwordbug"]:
        assert e["original"] == ROWS[e["row"] - 1][0] and e["perturbed"] != e["original"] and "Question" not in e["perturbed"]
    assert "classifiers only" in result.metrics["textattack_pruthi_success_rate"].note


def test_shift_scores_multiple_choice_sets_and_corrupts_questions(mc_suite):
    ctx = context(mc_suite, Scripted(lambda item: letter_of(item, "good film")))
    result = call_probe("shift", ctx, sets=["other"], corruptions=["typo"], corruption_sample=None)
    m = values(result.metrics)
    assert m["in_distribution_accuracy"] == pytest.approx(np.mean([i % 3 == 0 for i in range(24)]))
    assert m["accuracy_other"] == pytest.approx(np.mean([(i + 1) % 3 == 0 for i in range(16)]))
    assert m["corruption_typo_s3"] == m["in_distribution_accuracy"]  # the rule ignores the question
    example = result.details["corruptions"]["examples"][0]
    assert example["original"] == ROWS[0][0] and "Question" not in example["corrupted"]


def test_prompts_are_checked_before_a_model_loads(mc_suite):
    text = mc_suite.read_text()
    mc_suite.write_text(text.replace('answer: letter}', 'answer: letters}'))
    with pytest.raises(SpecError, match="prompts.listed.answer: unknown answer 'letters'"):
        suite_mod.load(str(mc_suite))
    mc_suite.write_text(text.replace('"Q: {q}\\nA:"', '"Q: {question}\\nA:"'))
    with pytest.raises(DataError, match=r"mc.jsonl:1: no field 'question'.*set prompts.qa.template"):
        read_suite_data(suite_mod.load(str(mc_suite)))


@pytest.fixture(scope="module")
def tiny_mc_llamas(tmp_path_factory):
    """Two random Llamas whose tokenizer knows every word the suite's prompts and items use."""
    folder = tmp_path_factory.mktemp("mc-llamas")
    words = [t for t, _ in ROWS] + ["Q: A: A. B. C. D. no"]
    return build_tiny_llama(folder / "a", texts=words), build_tiny_llama(folder / "b", seed=1, texts=words)


def test_lm_robustness_probes_end_to_end_and_verified(mc_suite, tiny_mc_llamas, tmp_path):
    model, baseline = tiny_mc_llamas
    out = tmp_path / "out"
    result = run("check", model, "--baseline", baseline, "-b", mc_suite, "--out", out)
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    jsonschema.Draft202012Validator(schema()).validate(report)
    assert {name: p["status"] for name, p in report["probes"].items()} == dict.fromkeys(
        ["choice_order", "prompt_variants", "adversarial", "shift", "membership"], "ok")
    order = report["probes"]["choice_order"]
    assert set(order["deltas"]) >= {"consistency", "mean_shift_accuracy"} and "ci" in order["deltas"]["consistency"]
    assert sum(order["metrics"][f"pick_rate_{x}"]["value"] for x in "ABCD") == pytest.approx(1)
    html = (out / "report.html").read_text()
    assert "answer changed when the choices moved" in html or not order["details"]["examples"]
    assert "asked with each prompt" in html
    assert run("verify", out / "report.json").exit_code == 0
