"""What a native suite must say to score the standard zero-shot sets as lm-eval does: a built-in include from
any folder, label_map on a multiple-choice gold, 1-based gold, an empty context, per-choice contexts with one
shared continuation (WinoGrande's partial scoring), labels in a file of their own (PIQA's .lst)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from audit import suite as suite_mod
from audit.causal_lm import ChoiceContexts, Continuations, encode, prefix_token
from audit.data import read_split, read_suite_data
from audit.engine import Engine, EngineConfig
from audit.errors import DataError, SpecError
from audit.models import CHOICE_POSITIONS, load_model
from audit.scorer import Scorer
from audit.suite import MULTIPLE_CHOICE, SUITES_DIR, DataSpec, TaskSpec
from conftest import sst2_rows
from test_causal_lm import reference_scores
from test_cli import run

ROWS = sst2_rows(40)
MC = TaskSpec(MULTIPLE_CHOICE)


def write_jsonl(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def words_known(model, texts):
    """The fixture tokenizer holds every word of the texts (no <unk>), so the scores are of real tokens."""
    unk = model.tokenizer.unk_token_id
    return all(unk not in model.tokenizer(t)["input_ids"] for t in texts)


def test_a_suite_in_any_folder_includes_a_builtin_file(tmp_path):
    write_jsonl(tmp_path / "mc.jsonl", [{"q": t, "answer": int(y)} for t, y in ROWS])
    (tmp_path / "mine.yaml").write_text("""\
include: audit:_lm_defaults.yaml
name: mine
labels: [A, B]
data:
  eval: {path: mc.jsonl, text_template: "Question: {q}\\nAnswer:", choices: [bad, good], label_field: answer}
""")
    suite = suite_mod.load(str(tmp_path / "mine.yaml"))
    wikitext = suite.text_sets["wikitext2"]  # the included file's data path resolves where that file lives
    assert wikitext.path == str((SUITES_DIR / "data/lm/wikitext2_test_articles.jsonl.gz").resolve())
    assert {"above-chance", "kl-divergence"} <= {g.name for g in suite.gates}
    assert all(g.min_samples == 30 for g in suite.gates)
    assert suite.eval.path == str(tmp_path / "mc.jsonl")
    for name, fragment in (("audit:_lm_default.yaml", "_lm_defaults.yaml"), ("audit:../pyproject.toml", "built-in")):
        (tmp_path / "bad.yaml").write_text((tmp_path / "mine.yaml").read_text().replace("audit:_lm_defaults.yaml", name))
        with pytest.raises(SpecError, match="is not a built-in suite file") as err:
            suite_mod.load(str(tmp_path / "bad.yaml"))
        assert fragment in str(err.value) or "did you mean" in str(err.value)


def test_label_map_reads_a_multiple_choice_gold(tmp_path):
    """BoolQ: the gold is the string "true"/"false" and the choices are no/yes."""
    path = write_jsonl(tmp_path / "b.jsonl", [{"q": t, "label": "true" if y == "1" else "false"} for t, y in ROWS])
    spec = DataSpec("eval", str(path), "q", "label", label_map={"false": "no", "true": "yes"}, choices=("no", "yes"))
    split = read_split(spec, ("no", "yes"), MC)
    assert split.labels.tolist() == [int(y) for _, y in ROWS]
    assert split.items[0].continuations == (" no", " yes")
    write_jsonl(path, [{"q": "x", "label": "maybe"}])
    with pytest.raises(DataError, match=r"b.jsonl:1: gold 'maybe' is not one of label_map's values"):
        read_split(spec, ("no", "yes"), MC)
    (tmp_path / "s.yaml").write_text("""\
task: multiple_choice
labels: ["no", "yes"]
data:
  eval: {path: b.jsonl, text_field: q, choices: ["no", "yes"], label_field: label, gold: text,
         label_map: {"false": "no", "true": "yes"}}
""")
    with pytest.raises(SpecError, match="label_map and gold are two ways"):
        suite_mod.load(str(tmp_path / "s.yaml"))


def test_a_one_based_gold_reads_winogrande_answers(tmp_path):
    path = write_jsonl(tmp_path / "w.jsonl", [{"q": "pick", "o1": "good", "o2": "bad", "answer": a} for a in ("1", "2")])
    spec = DataSpec("eval", str(path), "q", "answer", choices_fields=("o1", "o2"), gold="index1")
    assert read_split(spec, ("A", "B"), MC).labels.tolist() == [0, 1]
    write_jsonl(path, [{"q": "pick", "o1": "good", "o2": "bad", "answer": "0"}])
    with pytest.raises(DataError, match=r"gold '0' \(index1\) names none of the item's 2 choices"):
        read_split(spec, ("A", "B"), MC)


def test_an_empty_context_is_scored_from_the_bos_token(tmp_path, tiny_llama):
    """Whole-sentence scoring: the choices are complete sentences, the context is empty (lm-eval starts from BOS)."""
    records = [{"s1": ROWS[i][0], "s2": ROWS[i + 1][0], "label": i % 2} for i in range(0, 20, 2)]
    write_jsonl(tmp_path / "e.jsonl", records)
    (tmp_path / "e.yaml").write_text("""\
task: multiple_choice
labels: [A, B]
min_samples: 1
data:
  eval: {path: e.jsonl, text_template: "", choices_fields: [s1, s2], label_field: label}
probes:
  accuracy: {}
""")
    suite = suite_mod.load(str(tmp_path / "e.yaml"))
    split = read_suite_data(suite)["eval"]
    assert split.items[0] == Continuations("", (" " + records[0]["s1"], " " + records[0]["s2"]))
    model = load_model(str(tiny_llama))
    assert words_known(model, [r["s1"] + " " + r["s2"] for r in records])
    got = Engine(EngineConfig(device="cpu")).continuation_scores(model, split.items)
    for item, scores in zip(split.items, got):
        np.testing.assert_allclose(scores, reference_scores(model, item), atol=1e-4, rtol=0)
        assert scores[0, 2] == len(item.continuations[0].split())  # every word scored, from the BOS token on
    result = run("check", tiny_llama, "-b", tmp_path / "e.yaml", "--out", tmp_path / "out")
    assert result.exit_code in (0, 1), result.output


WINO = """\
task: multiple_choice
target_delimiter: " "
labels: [A, B]
min_samples: 1
data:
  eval: {path: w.jsonl, choice_contexts: ["{before}{option1}", "{before}{option2}"], text_template: "{after}",
         label_field: answer, gold: index1}
text_sets:
  docs: {path: w.jsonl, text_field: after}
probes:   # every multiple-choice probe, each of which must read an item whose choices are contexts
  accuracy: {}
  comparison: {}
  choice_order: {}
  calibration: {fit_split: null, n_bootstrap: 50}
  longtail: {min_support: 5}
  perplexity: {split: docs, max_tokens: 32, n_bootstrap: 50}
  prompt_variants: {zero_shot: true, n_bootstrap: 50}
  adversarial: {recipes: [deepwordbug], sample_size: 6, query_budget: 10}
  shift: {corruptions: [typo], corruption_sample: 10}
  membership: {shards: 4, shard_items: 5, permutations: 3, sample: 20, n_bootstrap: 50}
  efficiency: {latency_sample: 2, throughput_sample: 8, warmup: 1, rounds: 2}
gates:
  - {name: acc, metric: accuracy.accuracy, min: 0.0}
"""


def wino_records():
    """Sentences of the fixture's words with a blank: each option fills it, the rest of the sentence follows."""
    out = []
    for i, (text, _) in enumerate(ROWS[:24]):
        words = text.split()
        cut = max(1, len(words) // 2)
        out.append({"before": " ".join(words[:cut]) + " ", "option1": "good", "option2": "bad film",
                    "after": " ".join(words[cut:]) or "film", "answer": "1" if i % 3 else "2"})
    return out


def test_each_choice_context_scores_the_one_continuation_as_lm_eval_does(tmp_path, tiny_llama, tiny_llama_other):
    records = wino_records()
    write_jsonl(tmp_path / "w.jsonl", records)
    (tmp_path / "w.yaml").write_text(WINO)
    suite = suite_mod.load(str(tmp_path / "w.yaml"))
    split = read_suite_data(suite)["eval"]
    first = records[0]
    assert split.items[0] == ChoiceContexts((first["before"] + "good", first["before"] + "bad film"), " " + first["after"])
    assert split.labels.tolist() == [0 if r["answer"] == "1" else 1 for r in records]
    model = load_model(str(tiny_llama))
    assert words_known(model, [r["before"] + r["after"] for r in records])
    scorer = Scorer(Engine(EngineConfig(device="cpu", batch_size=5)), model, CHOICE_POSITIONS, "model", 2, " ")
    got = scorer.continuation_scores(split.items)
    ll = []
    for item, scores in zip(split.items, got):
        # lm-eval's multiple_input: (context_k, " " + after) for every k, the same continuation each time
        want = np.concatenate([reference_scores(model, Continuations(c, (item.continuation,))) for c in item.contexts])
        np.testing.assert_allclose(scores, want, atol=1e-4, rtol=0)
        ll.append(want[:, 0])
    ll = np.array(ll)
    # the tokens the two contexts share (the sentence up to the blank) are run once, not once per option
    prefix = prefix_token(model.tokenizer)
    packed = encode(model.tokenizer, split.items[0], 256, prefix)
    apart = sum(len(encode(model.tokenizer, r, 256, prefix).ids) for r in split.items[0].requests())
    shared = sum(a == b for a, b in zip(*packed.paths))
    assert shared > 1 and len(packed.ids) == apart - shared
    np.testing.assert_array_equal(scorer.predict(split.items), ll.argmax(axis=1))
    lengths = np.array([[len(c) for c in item.contexts] for item in split.items])  # acc_norm: per character of the context
    np.testing.assert_array_equal(scorer.predict_norm(split.items), (ll / lengths).argmax(axis=1))
    out = tmp_path / "out"
    result = run("check", tiny_llama, "--baseline", tiny_llama_other, "-b", tmp_path / "w.yaml", "--out", out)
    assert result.exit_code in (0, 1), result.output
    report = json.loads((out / "report.json").read_text())
    assert {n: p["status"] for n, p in report["probes"].items() if p["status"] != "ok"} == {}, \
        {n: p.get("error") for n, p in report["probes"].items()}
    assert report["probes"]["accuracy"]["metrics"]["accuracy"]["value"] == pytest.approx(
        float((ll.argmax(axis=1) == split.labels).mean()))
    order = report["probes"]["choice_order"]
    assert order["details"]["order_invariant"] is True and "a context of its own" in order["metrics"]["consistency"]["note"]


def test_few_shot_examples_before_choice_contexts_are_solved_with_the_gold_option(tmp_path):
    write_jsonl(tmp_path / "w.jsonl", wino_records())
    (tmp_path / "w.yaml").write_text(WINO.replace("min_samples: 1\n", "min_samples: 1\nfewshot: {k: 1, seed: 3}\n"))
    split = read_suite_data(suite_mod.load(str(tmp_path / "w.yaml")))["eval"]
    for i, item in enumerate(split.items):
        shot = item.prefix.removesuffix("\n\n")
        j = next(j for j, r in enumerate(wino_records()) if shot.endswith(" " + r["after"]) and j != i)
        gold = split.labels[j]
        assert shot == split.items[j].contexts[gold] + split.items[j].continuation


def test_labels_in_a_file_of_their_own_join_the_rows_in_order(tmp_path):
    """PIQA ships its gold indices one per line in a .lst file beside the jsonl."""
    write_jsonl(tmp_path / "p.jsonl", [{"goal": t, "sol1": "good", "sol2": "bad"} for t, _ in ROWS[:6]])
    (tmp_path / "p.lst").write_text("0\n1\n1\n0\n0\n1\n")
    (tmp_path / "p.yaml").write_text("""\
task: multiple_choice
labels: [A, B]
data:
  eval: {path: p.jsonl, label_file: p.lst, text_template: "Question: {goal}\\nAnswer:", choices_fields: [sol1, sol2],
         label_field: label, gold: index}
""")
    suite = suite_mod.load(str(tmp_path / "p.yaml"))
    assert read_suite_data(suite)["eval"].labels.tolist() == [0, 1, 1, 0, 0, 1]
    for labels, fragment in (("0\n1\n", "fewer labels than the data has rows"), ("0\n" * 7, "more labels than")):
        (tmp_path / "p.lst").write_text(labels)
        with pytest.raises(DataError, match=fragment):
            read_suite_data(suite)
    (tmp_path / "p.lst").unlink()
    with pytest.raises(SpecError, match="label file not found"):
        suite_mod.load(str(tmp_path / "p.yaml"))


def test_the_builtin_two_choice_suites_render_lm_evals_requests():
    """The first items of piqa, winogrande and boolq, as lm-eval 0.4.13's piqa, winogrande and boolq tasks
    render them (their doc_to_text, doc_to_choice and doc_to_target, written out)."""
    data = {name: read_suite_data(suite_mod.load(name))["eval"] for name in ("piqa", "winogrande", "boolq")}
    piqa, wino, boolq = (data[n].records[0] for n in ("piqa", "winogrande", "boolq"))
    assert data["piqa"].items[0] == Continuations(f"Question: {piqa['goal']}\nAnswer:", (" " + piqa["sol1"], " " + piqa["sol2"]))
    assert len(data["piqa"]) == 1838 and data["piqa"].labels[:4].tolist() == [0, 1, 1, 1]
    blank = wino["sentence"].index("_")
    assert data["winogrande"].items[0] == ChoiceContexts(
        tuple(wino["sentence"][:blank] + o for o in (wino["option1"], wino["option2"])),
        " " + wino["sentence"][blank + 1:].strip())
    assert data["winogrande"].labels[0] == int(wino["answer"]) - 1 and len(data["winogrande"]) == 1267
    assert data["boolq"].items[0] == Continuations(f"{boolq['passage']}\nQuestion: {boolq['question']}?\nAnswer:",
                                                   (" no", " yes"))
    assert data["boolq"].labels.mean() == pytest.approx(2033 / 3270)  # "yes" on 62% of the validation items
