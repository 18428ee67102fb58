"""Language-model suites end to end on tiny Llamas: multiple choice, running text and last word, each
figure checked against a plain reference computation."""

from __future__ import annotations

import json
import shutil

import jsonschema
import numpy as np
import pytest
import torch

from audit.causal_lm import prefix_token, rolling_windows
from audit.data import read_split
from audit.errors import DataError
from audit.models import load_model
from audit.suite import MULTIPLE_CHOICE, DataSpec, TaskSpec
from audit.verify import schema
from conftest import sst2_rows
from test_causal_lm import reference_scores
from test_cli import assert_bad_input, run

ROWS = sst2_rows(64)
CHOICES = ["good film", "bad film", "maybe"]


@pytest.fixture
def lm_suites(tmp_path):
    with open(tmp_path / "mc.jsonl", "w") as f:
        for i, (text, y) in enumerate(ROWS):
            f.write(json.dumps({"q": text, "choices": CHOICES[: 2 + i % 2], "answer": 0 if y == "1" else 1,
                                "kind": "even" if i % 2 == 0 else "odd"}) + "\n")
    with open(tmp_path / "lw.jsonl", "w") as f:
        for text, _ in ROWS:
            words = text.split()
            f.write(json.dumps({"context": " ".join(words[:-2]), "continuation": words[-2]}) + "\n")
    with open(tmp_path / "docs.jsonl", "w") as f:
        for i in range(0, 64, 8):
            f.write(json.dumps({"text": " ".join(t for t, _ in ROWS[i:i + 8])}) + "\n")
    (tmp_path / "mc.yaml").write_text("""\
name: tiny-mc
task: multiple_choice
labels: [A, B, C]
data:
  eval: {path: mc.jsonl, text_template: "Question: {q}\\nAnswer:", choices_field: choices, label_field: answer,
         slice_field: kind}
text_sets:
  docs: {path: docs.jsonl, text_field: text, sample: 4}
probes:
  accuracy: {}
  comparison: {}
  calibration: {fit_split: null, n_bootstrap: 50}
  longtail: {min_support: 10}
  perplexity: {split: docs, max_tokens: 64, n_bootstrap: 50}
  efficiency: {latency_sample: 3, throughput_sample: 16, warmup: 1, rounds: 2}
gates:
  - {name: acc-drop, metric: accuracy.accuracy_norm, max_regression: 0.9, confidence: 0.95, severity: warn}
  - {name: kl, metric: perplexity.kl_mean, max: 100}
""")
    (tmp_path / "ppl.yaml").write_text("""\
name: tiny-ppl
task: perplexity
data:
  eval: {path: docs.jsonl, text_field: text}
probes:
  perplexity: {max_tokens: 64, block_tokens: 16, n_bootstrap: 50}
gates:
  - {name: ratio, metric: perplexity.perplexity_ratio, max: 10}
""")
    (tmp_path / "lw.yaml").write_text("""\
name: tiny-lw
task: last_word
data:
  eval: {path: lw.jsonl, text_field: context, target_field: continuation}
probes:
  last_word: {n_bootstrap: 50}
gates:
  - {name: lw, metric: last_word.accuracy, min: 0.0}
""")
    return tmp_path


def same_weights(model_dir, tmp_path):
    """The model's files with a re-formatted config: the same weights under another fingerprint."""
    copy = shutil.copytree(model_dir, tmp_path / "same")
    config = json.loads((copy / "config.json").read_text())
    (copy / "config.json").write_text(json.dumps(config, indent=4))
    return copy


def test_multiple_choice_check_matches_a_reference_and_runs_every_probe(lm_suites, tiny_llama, tiny_llama_other, tmp_path):
    out = tmp_path / "out"
    result = run("check", tiny_llama, "--baseline", tiny_llama_other, "-b", lm_suites / "mc.yaml", "--out", out)
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    jsonschema.Draft202012Validator(schema()).validate(report)
    assert report["model"]["kind"] == "causal-lm" and all(p["status"] == "ok" for p in report["probes"].values())
    items = read_split(DataSpec("eval", str(lm_suites / "mc.jsonl"), "q", "answer", text_template="Question: {q}\nAnswer:",
                                choices_field="choices"), ("A", "B", "C"), TaskSpec(MULTIPLE_CHOICE)).items
    model = load_model(str(tiny_llama))
    ll = [reference_scores(model, item)[:, 0] for item in items]
    gold = np.array([0 if y == "1" else 1 for _, y in ROWS])
    acc = np.mean([np.argmax(x) == g for x, g in zip(ll, gold)])
    norm = np.mean([np.argmax(x / [len(c) for c in CHOICES[:len(x)]]) == g for x, g in zip(ll, gold)])
    metrics = report["probes"]["accuracy"]["metrics"]
    assert metrics["accuracy"]["value"] == pytest.approx(acc) and metrics["accuracy_norm"]["value"] == pytest.approx(norm)
    assert metrics["accuracy"]["n"] == 64 and len(metrics["accuracy_norm"]["ci"]) == 2
    cal = report["probes"]["calibration"]["metrics"]
    assert cal["ece"]["value"] is not None and cal["temperature"]["value"] is None and "fit_split" in cal["temperature"]["note"]
    slices = {s["slice"] for s in report["probes"]["longtail"]["details"]["slices"]}
    assert {"kind=even", "kind=odd", "class_A", "class_B"} <= slices and not any(s.startswith("rarity") for s in slices)
    ppl = report["probes"]["perplexity"]["metrics"]
    assert ppl["kl_mean"]["value"] > 0 and 0 < ppl["top1_agreement"]["value"] <= 1 and ppl["n_texts"]["value"] == 4
    assert report["probes"]["efficiency"]["metrics"]["throughput_tokens_per_s"]["value"] > 0
    assert "perplexity" in (out / "report.html").read_text()
    gate = next(g for g in report["gates"] if g["name"] == "acc-drop")  # two random models, both at chance
    assert gate["status"] == "inconclusive" and "compared nothing" in gate["message"] and "chance" in gate["message"]


def test_running_text_perplexity_and_kl_against_the_same_weights(lm_suites, tiny_llama, tmp_path):
    out = tmp_path / "out"
    result = run("check", tiny_llama, "--baseline", same_weights(tiny_llama, tmp_path), "-b", lm_suites / "ppl.yaml",
                 "--out", out)
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    jsonschema.Draft202012Validator(schema()).validate(report)  # a task without labels
    ppl = report["probes"]["perplexity"]
    m, b = ppl["metrics"], ppl["baseline_metrics"]
    # the baseline's rows are kept on disk as float16 (audit/spill.py); their rounding cancels in the mean
    assert m["kl_mean"]["value"] == pytest.approx(0, abs=1e-5) and m["top1_agreement"]["value"] == 1
    assert m["perplexity_ratio"]["value"] == pytest.approx(1, abs=1e-6)
    model = load_model(str(tiny_llama))
    lp = []
    for doc in [json.loads(line)["text"] for line in (lm_suites / "docs.jsonl").read_text().splitlines()]:
        tokens = model.tokenizer(doc)["input_ids"][:64]
        for inputs, targets in rolling_windows(tokens, 2048, prefix_token(model.tokenizer)):
            with torch.inference_mode():
                out_lp = torch.log_softmax(model.module(torch.tensor([inputs])).logits.float(), -1)[0]
            lp += [float(out_lp[j, t]) for j, t in enumerate(targets)]
    assert m["token_perplexity"]["value"] == pytest.approx(np.exp(-np.mean(lp)), rel=1e-4)
    assert b["token_perplexity"]["value"] == pytest.approx(m["token_perplexity"]["value"], rel=1e-6)
    low, high = m["token_perplexity"]["ci"]
    assert low < m["token_perplexity"]["value"] < high and m["n_tokens"]["value"] == len(lp) == 8 * 64


def test_last_word_accuracy_is_the_share_of_greedy_targets(lm_suites, tiny_llama, tiny_llama_other, tmp_path):
    out = tmp_path / "out"
    assert run("check", tiny_llama, "--baseline", tiny_llama_other, "-b", lm_suites / "lw.yaml", "--out", out).exit_code == 0
    section = json.loads((out / "report.json").read_text())["probes"]["last_word"]
    items = read_split(DataSpec("eval", str(lm_suites / "lw.jsonl"), "context", None, target_field="continuation"), (),
                       TaskSpec("last_word")).items
    model = load_model(str(tiny_llama))
    scores = np.stack([reference_scores(model, item)[0] for item in items])
    assert section["metrics"]["accuracy"]["value"] == pytest.approx(scores[:, 1].mean())
    assert section["metrics"]["perplexity"]["value"] == pytest.approx(np.exp(-scores[:, 0].mean()), rel=1e-4)
    assert 0 <= section["metrics"]["flip_rate"]["value"] <= 1 and "accuracy" in section["deltas"]


def write_jsonl(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


@pytest.mark.parametrize("gold, field, value, expected", [
    ("index", "answer", 2, 2), ("letter", "answer", "c", 2), ("text", "answer", "maybe", 2),
    ("choice_label", "answerKey", "3", 2),
])
def test_gold_labels_read_every_way_benchmarks_write_them(tmp_path, gold, field, value, expected):
    record = {"q": "which?", "choices": CHOICES, "labels": ["1", "2", "3"], field: value}
    path = write_jsonl(tmp_path / "d.jsonl", [record])
    spec = DataSpec("eval", str(path), "q", field, choices_field="choices", gold=gold,
                    choice_labels_field="labels" if gold == "choice_label" else None)
    split = read_split(spec, ("A", "B", "C"), TaskSpec(MULTIPLE_CHOICE))
    assert split.labels.tolist() == [expected] and split.items[0].continuations == tuple(" " + c for c in CHOICES)
    assert split.texts[0] == "which? maybe"
    write_jsonl(path, [{**record, field: "nothing"}])
    with pytest.raises(DataError, match=r"d.jsonl:1: gold 'nothing' .* names none of the item's 3 choices"):
        read_split(spec, ("A", "B", "C"), TaskSpec(MULTIPLE_CHOICE))


def test_fewshot_examples_are_seeded_per_item_and_never_the_item_itself(lm_suites):
    from audit import suite as suite_mod
    from audit.data import read_suite_data

    suite_file = lm_suites / "mc.yaml"
    suite_file.write_text("fewshot: {k: 2, seed: 7}\n" + suite_file.read_text())
    suite = suite_mod.load(str(suite_file))
    first, again = (read_suite_data(suite)["eval"] for _ in range(2))
    for i, item in enumerate(first.items):
        shots = item.context.split("\n\n")
        assert len(shots) == 3 and shots[-1] == f"Question: {ROWS[i][0]}\nAnswer:"
        assert all(s.count("\nAnswer: ") == 1 and not s.startswith(shots[-1]) for s in shots[:2])
    assert [i.context for i in first.items] == [i.context for i in again.items]
    sampled = first.sample(10, seed=3)
    assert [i.context for i in sampled.items] == [first.items[r - 1].context for r in sampled.rows]


@pytest.mark.parametrize("method", ["int8", "int8-weight", "int4-weight", "bf16", "prune:0.3"])
def test_compressing_a_causal_lm_keeps_its_head_and_scores(tiny_llama, tmp_path, method):
    from audit.causal_lm import Continuations
    from audit.compress import compress
    from audit.engine import Engine, EngineConfig

    out = tmp_path / "c"
    compress(load_model(str(tiny_llama)), method, out)
    model = load_model(str(out))
    head = model.module.get_output_embeddings()
    assert type(head.weight).__module__.startswith("torch")  # the LM head is never quantized or pruned
    assert (head.weight != 0).all() or method != "prune:0.3"
    layers = [m for m in model.module.model.modules() if isinstance(m, torch.nn.Linear)]
    if method in ("int8", "int8-weight", "int4-weight"):
        assert all(type(m.weight).__module__.startswith("torchao") for m in layers)
    scores = Engine(EngineConfig(device="cpu")).continuation_scores(model, [Continuations("a good", (" film", " bad"))])
    assert np.isfinite(scores[0]).all()


def test_an_lm_report_verifies_and_takes_claims(lm_suites, tiny_llama, tiny_llama_other, tmp_path):
    import yaml

    out = tmp_path / "out"
    assert run("check", tiny_llama, "--baseline", tiny_llama_other, "-b", lm_suites / "mc.yaml", "--out", out).exit_code == 0
    result = run("verify", out / "report.json", "--out", tmp_path / "again")
    assert result.exit_code == 0 and "reproduced: yes" in result.output, result.output
    norm = json.loads((out / "report.json").read_text())["probes"]["accuracy"]["metrics"]["accuracy_norm"]["value"]
    (tmp_path / "claims.yaml").write_text(yaml.safe_dump({"claims": [
        {"claim": "acc_norm as published", "metric": "accuracy.accuracy_norm", "value": round(norm, 2)},
        {"claim": "KL under 10 nats", "metric": "perplexity.kl_mean", "max": 10}]}))
    claims = run("verify", out / "report.json", "--claims", tmp_path / "claims.yaml")
    assert claims.exit_code == 0 and "claims: 2/2 supported" in claims.output, claims.output


def test_a_gguf_that_reads_but_holds_no_model_is_bad_input(lm_suites, tmp_path):
    import gguf

    path = tmp_path / "empty.gguf"
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    out = tmp_path / "out"
    result = run("check", path, "-b", lm_suites / "mc.yaml", "--out", out)
    assert result.exit_code == 2 and "empty.gguf" in result.output and "cannot load as a causal-lm" in result.output
    assert not out.exists()


@pytest.mark.parametrize("stored, device, flags, requested, want", [
    ("bfloat16", "cuda", set(), "auto", "bfloat16"),
    ("float16", "cuda", set(), "auto", "float16"),
    (None, "cuda", set(), "auto", "float32"),
    ("bfloat16", "cpu", {"avx512_bf16"}, "auto", "bfloat16"),
    ("bfloat16", "cpu", {"amx_bf16"}, "auto", "bfloat16"),
    ("bfloat16", "cpu", {"avx2", "avx512f"}, "auto", "float32"),  # emulated bfloat16 is slower than float32
    ("float32", "cpu", {"amx_bf16"}, "auto", "float32"),  # a float32 checkpoint runs as it ships
    ("float32", "cpu", set(), "bfloat16", "bfloat16"),
])
def test_dtype_auto_picks_the_checkpoints_own_on_a_gpu_and_native_bfloat16_on_a_cpu(monkeypatch, tiny_llama, stored,
                                                                                       device, flags, requested, want):
    from audit import hardware
    from audit.models import inspect_model, resolve_dtype

    src = inspect_model(str(tiny_llama))
    src.config.pop("torch_dtype", None)
    src.config["dtype"] = stored
    monkeypatch.setattr(hardware, "cpuinfo", lambda: ("a CPU", flags))
    dtype, why = resolve_dtype(src, requested, device)
    assert dtype == want and why


def test_dtype_loads_the_weights_so_and_a_report_says_when_the_two_differ(lm_suites, tiny_llama, tiny_llama_other,
                                                                           tmp_path):
    from audit.compress import compress

    out = tmp_path / "out"
    result = run("check", tiny_llama, "--baseline", tiny_llama_other, "-b", lm_suites / "mc.yaml", "--out", out,
                 "--probes", "accuracy,comparison", "--dtype", "bfloat16")
    assert result.exit_code in (0, 1), result.output
    report = json.loads((out / "report.json").read_text())
    assert report["model"]["dtype"] == report["baseline"]["dtype"] == "bfloat16"
    assert report["model"]["dtype_reason"] == "--dtype" and "baseline in" not in report["summary"]["tradeoff"]
    half = tmp_path / "bf16"
    compress(load_model(str(tiny_llama)), "bf16", half)
    assert load_model(str(half)).module.dtype == torch.bfloat16
    result = run("check", half, "--baseline", tiny_llama, "-b", lm_suites / "mc.yaml", "--out", out / "2",
                 "--probes", "accuracy,comparison")
    report = json.loads((out / "2" / "report.json").read_text())
    assert (report["model"]["dtype"], report["baseline"]["dtype"]) == ("bfloat16", "float32")
    assert report["summary"]["tradeoff"].endswith("; model in bfloat16, baseline in float32")
    # a cached float32 score is never read back as the same files' bfloat16 score: the dtype is in the cache key
    from audit.engine import Engine, EngineConfig

    engine = Engine(EngineConfig(device="cpu"))
    as32, as16 = (load_model(str(tiny_llama), dtype=(d, "test")) for d in ("float32", "bfloat16"))
    assert as16.module.dtype == torch.bfloat16 and engine.cache_key(as32) != engine.cache_key(as16)
    assert_bad_input(run("check", half, "-b", lm_suites / "mc.yaml", "--out", out / "3", "--dtype", "float32"),
                     out / "3", "is bfloat16 by its recipe (bf16)", "--dtype")
