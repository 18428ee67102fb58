"""Generative suites: lm-eval's filters and exact match by hand-written cases, the engine's batched greedy
decoding against a one-row loop that recomputes everything (batched, bucketed, with and without the reused
prefix), the teacher-forced KL against a direct computation, and a generative suite through `audit check`."""

from __future__ import annotations

import json

import jsonschema
import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from audit.engine import Engine, EngineConfig
from audit.generation import (AnswerFilter, GenerationSpec, Normalizer, common_prefix_length, cut_at_stops,
                              first_divergence, prefix_groups)
from audit.models import load_model
from audit.verify import schema
from conftest import build_tiny_llama, sst2_rows
from test_cli import run

ROWS = sst2_rows(64)
# lm-eval 0.4.13's gsm8k filters and exact-match settings (lm_eval/tasks/gsm8k/gsm8k.yaml)
STRICT = AnswerFilter("strict-match", r"#### (\-?[0-9\.\,]+)")
FLEXIBLE = AnswerFilter("flexible-extract", r"(-?[$0-9.,]{2,})|(-?[0-9]+)", group_select=-1)
GSM8K_NORMALIZE = Normalizer(ignore_case=True, regexes_to_ignore=(",", r"\$", "(?s).*#### ", r"\.$"))


@pytest.mark.parametrize("text, strict, flexible", [
    (" She makes 9 * 2 = <<9*2=18>>18 dollars.\n#### 18", "18", "18"),
    (" 1,000 + 234 = 1,234\n#### 1,234\n\n", "1,234", "1,234"),
    (" The total is $18.00.", "[invalid]", "$18.00."),
    (" She has 3 apples and 4 pears, so 7", "[invalid]", "7"),
    (" no number at all", "[invalid]", "[invalid]"),
    (" #### -5", "-5", "-5"),
    (" costs 10 then 2", "[invalid]", "2"),  # the last match; a lone digit matches the second group
])
def test_gsm8k_filters_read_what_lm_eval_reads(text, strict, flexible):
    assert STRICT.extract(text) == strict and FLEXIBLE.extract(text) == flexible


@pytest.mark.parametrize("prediction, gold, same", [
    ("18", "Janet sells 16 - 3 - 4 = <<16-3-4=9>>9 duck eggs.\n#### 18", True),
    ("1,234", "...\n#### 1234", True),
    ("$18", "#### 18", True),
    ("18.", "#### 18", True),     # a trailing full stop is dropped
    ("$18.00.", "#### 18", False),  # but "18.00" is not "18" (lm-eval's exact match)
    ("[invalid]", "#### 18", False),
])
def test_exact_match_normalises_both_sides_as_lm_eval(prediction, gold, same):
    assert (GSM8K_NORMALIZE(prediction) == GSM8K_NORMALIZE(gold)) is same


def test_normalizer_case_punctuation_and_a_group_that_is_taken():
    assert Normalizer(ignore_case=True, ignore_punctuation=True)("The Answer: 42!") == "the answer 42"
    assert AnswerFilter("a", r"answer is (\w+) or (\w+)", group=2).extract("answer is x or y") == "y"
    assert AnswerFilter("a", r"answer is (\w+)", group=0).extract("the answer is x") == "answer is x"


def test_stop_sequences_cut_at_the_earliest_as_lm_eval():
    until = ("Question:", "</s>")
    assert cut_at_stops(" 4\n#### 4\n\nQuestion: next one", until) == " 4\n#### 4\n\n"
    assert cut_at_stops(" a </s> b Question: c", until) == " a "
    assert cut_at_stops(" nothing to cut", until) == " nothing to cut"


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.integers(0, 3), max_size=30), min_size=1, max_size=12))
def test_prefix_groups_cover_every_sequence_once_and_share_only_a_true_prefix(sequences):
    groups = prefix_groups(sequences)
    assert sorted(i for _, members in groups for i in members) == list(range(len(sequences)))
    for shared, members in groups:
        seqs = [sequences[i] for i in members]
        assert shared <= common_prefix_length(seqs) and all(len(s) > shared for s in seqs) or shared == 0


def test_first_divergence():
    assert first_divergence([1, 2, 3], [1, 2, 3]) is None
    assert first_divergence([1, 2, 3], [1, 5, 3]) == 1
    assert first_divergence([1, 2], [1, 2, 3]) == 2


GEN_SUITE = """\
name: tiny-gen
task: generate
fewshot: {{k: 2, sampler: first_n}}
data:
  eval: {{path: gen.jsonl, text_template: "Question: {{q}}\\nAnswer:", target_field: a}}
  reference: {{path: ref.jsonl, text_template: "Question: {{q}}\\nAnswer:", target_field: a}}
generation:
  until: ["Question:"]
  max_new_tokens: {max_new}
  answers:
    first-word: {{regex: "(\\\\w+)"}}
    last-word: {{regex: "(\\\\w+)", group_select: -1}}
  normalize: {{ignore_case: true}}
min_samples: 10
probes:
{probes}
gates:
  - {{name: em, metric: accuracy.exact_match_first-word, min: 0.0}}
"""
ALL_PROBES = """  accuracy: {}
  comparison: {}
  agreement: {}
  calibration: {}
  longtail: {min_support: 10}
  membership: {shards: 4, shard_items: 5, permutations: 3, sample: 20, reference: null}
  shift: {corruptions: [typo], corruption_sample: 10}
  prompt_variants: {prompts: [short], zero_shot: true, sample: 10}
  efficiency: {latency_sample: 1, throughput_sample: 4, warmup: 1, rounds: 3, max_new_tokens: 12}
  contamination: {}"""


def gen_suite(folder, probes="  accuracy: {}", max_new=8, extra=""):
    for name, rows in (("gen", ROWS[:40]), ("ref", ROWS[40:])):
        with open(folder / f"{name}.jsonl", "w") as f:
            for text, y in rows:
                f.write(json.dumps({"q": text, "a": "good" if y == "1" else "bad"}) + "\n")
    (folder / "gen.yaml").write_text(GEN_SUITE.format(max_new=max_new, probes=probes) + extra)
    return folder / "gen.yaml"


def naive_greedy(model, prompt: str, spec: GenerationSpec) -> list[int]:
    """One row, no cache, no padding: the whole sequence run again for every new token."""
    ids, out = model.tokenizer(prompt)["input_ids"], []
    for _ in range(spec.max_new_tokens):
        with torch.inference_mode():
            token = int(model.module(input_ids=torch.tensor([ids + out])).logits[0, -1].argmax())
        if token == model.tokenizer.eos_token_id:
            break
        out.append(token)
        if any(s in model.tokenizer.decode(out, skip_special_tokens=True) for s in spec.until):
            break
    return out


@pytest.fixture(scope="module")
def tiny_gen(tmp_path_factory, tiny_llama):
    from audit import suite as suite_mod
    from audit.data import read_suite_data

    folder = tmp_path_factory.mktemp("gen")
    suite = suite_mod.load(str(gen_suite(folder, max_new=12)))
    return folder, suite, read_suite_data(suite)["eval"]


@pytest.mark.parametrize("prefix_reuse", [True, False])
@pytest.mark.parametrize("batch_size", [1, 3, 16])
def test_batched_generation_equals_a_one_row_greedy_loop(tiny_gen, tiny_llama, prefix_reuse, batch_size):
    _, suite, split = tiny_gen
    model, spec = load_model(str(tiny_llama)), suite.task.generation
    prompts = [q.context for q in split.items]
    engine = Engine(EngineConfig(device="cpu", batch_size=batch_size, prefix_reuse=prefix_reuse))
    got = [t.astype(int).tolist() for t in engine.generate(model, prompts, spec)]
    assert got == [naive_greedy(model, p, spec) for p in prompts]
    # the first_n exemplars are shared by all but the exemplars' own items (they get others)
    assert (engine.stats.prefix_tokens > 0) is prefix_reuse


def test_a_stop_sequence_ends_decoding_where_it_appears(tiny_llama):
    model = load_model(str(tiny_llama))
    prompt = "Question: the film is good ? Answer:"
    free = GenerationSpec(max_new_tokens=12)
    tokens = Engine(EngineConfig(device="cpu")).generate(model, [prompt], free)[0].astype(int).tolist()
    word = model.tokenizer.decode(tokens[3:4])
    stopped = Engine(EngineConfig(device="cpu")).generate(model, [prompt], GenerationSpec(until=(word,),
                                                                                        max_new_tokens=12))[0]
    first = next(i for i in range(len(tokens)) if word in model.tokenizer.decode(tokens[:i + 1]))
    assert stopped.astype(int).tolist() == tokens[:first + 1]  # no token decoded past the one that completed it


def test_kl_along_the_baselines_generation_matches_a_direct_computation(tiny_gen, tiny_llama, tiny_llama_other):
    _, suite, split = tiny_gen
    model, base = load_model(str(tiny_llama)), load_model(str(tiny_llama_other))
    prompts = [q.context for q in split.items[:6]]
    engine = Engine(EngineConfig(device="cpu", batch_size=4))
    conts = engine.generate(base, prompts, suite.task.generation)
    got = engine.generation_divergence(model, base, prompts, conts)
    for prompt, cont, row in zip(prompts, conts, got):
        ids = model.tokenizer(prompt)["input_ids"] + cont.astype(int).tolist()
        with torch.inference_mode():
            lp, lr = (torch.log_softmax(m.module(input_ids=torch.tensor([ids])).logits[0].float(), -1) for m in (model, base))
        at = slice(len(ids) - len(cont) - 1, len(ids) - 1)
        lr = lr.half().float()  # the baseline's side is kept on disk as float16 (audit/spill.py)
        kl = (lr[at].exp() * (lr[at] - lp[at])).sum(-1).numpy()
        agree = (lp[at].argmax(-1).numpy() == cont.astype(int)).astype(np.float32)
        assert np.allclose(row[:, 0], kl, atol=1e-5) and np.array_equal(row[:, 1], agree)


def test_a_generative_suite_is_one_yaml_and_every_probe_runs(tmp_path, tiny_llama, tiny_llama_other):
    suite = gen_suite(tmp_path, ALL_PROBES, extra='prompts:\n  short: {template: "Q: {q}\\nA:"}\n')
    out = tmp_path / "out"
    result = run("check", tiny_llama, "--baseline", tiny_llama_other, "-b", suite, "--out", out)
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    jsonschema.Draft202012Validator(schema()).validate(report)
    assert report["benchmark"]["task"] == "generate" and report["benchmark"]["labels"] == []
    probes = report["probes"]
    assert probes["calibration"]["status"] == "skipped" and "no probability" in probes["calibration"]["reason"]
    assert all(p["status"] == "ok" for name, p in probes.items() if name != "calibration"), \
        {n: p.get("error") for n, p in probes.items()}
    acc = probes["accuracy"]["metrics"]
    assert acc["accuracy"] == acc["exact_match_first-word"] and "exact_match_last-word" in acc
    agree = probes["agreement"]["metrics"]
    assert 0 <= agree["identical_rate"]["value"] < 1 and agree["kl_mean"]["value"] > 0 and agree["n_tokens"]["value"] > 0
    assert probes["comparison"]["metrics"]["kl_mean"]["value"] is None  # no distribution over answers
    assert probes["efficiency"]["metrics"]["decode_tokens_per_s"]["value"] > 0
    assert "zero_shot_accuracy" in probes["prompt_variants"]["metrics"]
    html = (out / "report.html").read_text()
    assert "the rest</mark> is where they part" in html and "generated exactly the baseline" in html


@pytest.mark.parametrize("change, fragment", [
    (("max_new_tokens: 8", "max_new_tokens: 0"), "max_new_tokens must be a positive integer"),
    (('{regex: "(\\\\w+)"}', '{regex: "(\\\\w+"}'), "does not compile"),
    (('{regex: "(\\\\w+)"}', '{regex: "(\\\\w+)", group: 2}'), "group 2 does not exist"),
    (("  until:", "  untill:"), "unknown key 'untill'"),
    (("  normalize: {ignore_case: true}", "  normalize: {ignore_case: yes please}"), "must be true or false"),
    (("fewshot: {k: 2, sampler: first_n}", "fewshot: {k: 2, sampler: first}"), "unknown sampler"),
])
def test_bad_generation_settings_are_refused_before_a_model_loads(tmp_path, tiny_llama, change, fragment):
    suite = gen_suite(tmp_path)
    suite.write_text(suite.read_text().replace(*change))
    result = run("validate", suite)
    assert result.exit_code == 2 and fragment in result.output, result.output


def test_a_chat_template_asked_of_a_tokenizer_without_one_is_bad_input(tmp_path, tiny_llama, monkeypatch):
    from audit import runner

    monkeypatch.setattr(runner, "load_model", lambda *a, **k: pytest.fail("a model loaded before the check"))
    result = run("check", tiny_llama, "-b", gen_suite(tmp_path), "--chat-template", "--out", tmp_path / "out")
    assert result.exit_code == 2 and "no chat template" in result.output and "--chat-template" in result.output
    other = run("check", tiny_llama, "-b", tmp_path / "gen.yaml", "--out", tmp_path / "o2", "--chat-template",
                "--probes", "accuracy")
    assert other.exit_code == 2


def test_the_chat_template_renders_few_shot_as_turns(tmp_path):
    template = ("{% for m in messages %}<|{{ m['role'] }}|> {{ m['content'] }} {% endfor %}"
                "{% if add_generation_prompt %}<|assistant|>{% endif %}")
    model_dir = build_tiny_llama(tmp_path / "chat", texts=[t for t, _ in ROWS] + ["<|user|> <|assistant|>"])
    config = json.loads((model_dir / "tokenizer_config.json").read_text())
    (model_dir / "tokenizer_config.json").write_text(json.dumps({**config, "chat_template": template}))
    out = tmp_path / "out"
    result = run("check", model_dir, "-b", gen_suite(tmp_path), "--chat-template", "--out", out)
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert report["model"]["chat"] == "turns"
