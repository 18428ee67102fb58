"""Bad input and faults, as a hostile new user would try them: every case exits with its code and one line
that names the file or option, never a traceback; bad input (exit 2) writes nothing to --out.

Each case builds its own files in a fresh folder and returns the command line to run.
"""

from __future__ import annotations

import gzip
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest

from conftest import TINY_SUITE, build_tiny_bert, sst2_rows, write_tsv
from test_cli import run


@dataclass
class Env:
    """A fresh folder with the tiny models, a copy of the tiny suite and helpers to break things."""

    root: Path
    bert: Path
    other: Path
    suite: Path
    report: Path  # a valid report.json of the tiny suite
    llama: Path  # a tiny causal LM

    @property
    def out(self) -> Path:
        return self.root / "out"

    def suite_with(self, old: str, new: str, name: str = "bad.yaml") -> Path:
        text = self.suite.read_text()
        assert old in text, old
        (self.suite.parent / name).write_text(text.replace(old, new))
        return self.suite.parent / name

    def model_copy(self, name: str = "copy") -> Path:
        return Path(shutil.copytree(self.bert, self.root / name))

    def file(self, name: str, content: str | bytes) -> Path:
        path = self.suite.parent / name
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
        return path

    def check(self, *extra, model=None, suite=None) -> list:
        return ["check", model or self.bert, "-b", suite or self.suite, "--out", self.out, *extra]


@pytest.fixture(scope="module")
def tiny_report(tmp_path_factory, tiny_bert) -> Path:
    root = tmp_path_factory.mktemp("report")
    write_tsv(root / "dev.tsv", sst2_rows(64))
    write_tsv(root / "train.tsv", sst2_rows(64)[::-1])
    (root / "s.yaml").write_text(TINY_SUITE)
    assert run("check", tiny_bert, "-b", root / "s.yaml", "--out", root / "out").exit_code == 0
    return root / "out" / "report.json"




@pytest.fixture
def env(tmp_path, tiny_bert, tiny_bert_other, tiny_suite, tiny_report, tiny_llama) -> Env:
    return Env(tmp_path, tiny_bert, tiny_bert_other, tiny_suite, tiny_report, tiny_llama)


# ---- ways to break a model directory -------------------------------------------------------------------

def nan_model(e: Env) -> Path:
    from safetensors.torch import load_file, save_file

    d = e.model_copy("nan")
    weights = load_file(d / "model.safetensors")
    weights["classifier.weight"][:] = float("nan")
    save_file(weights, d / "model.safetensors", metadata={"format": "pt"})
    return d


def without_tokenizer(e: Env) -> Path:
    d = e.model_copy("no-tokenizer")
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        (d / name).unlink(missing_ok=True)
    return d


def empty_vocabulary(e: Env) -> Path:
    """What transformers builds from a directory without its vocabulary: five special tokens."""
    from transformers import BertTokenizerFast

    d = e.model_copy("empty-vocab")
    for name in ("tokenizer.json", "vocab.txt"):
        (d / name).unlink(missing_ok=True)
    BertTokenizerFast(vocab={t: i for i, t in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"])}).save_pretrained(d)
    return d


def weights_bytes(mutate: Callable[[bytes], bytes], name: str):
    def build(e: Env) -> Path:
        d = e.model_copy(name)
        path = d / "model.safetensors"
        path.write_bytes(mutate(path.read_bytes()))
        return d
    return build


def without_head(e: Env) -> Path:
    from safetensors.torch import load_file, save_file

    d = e.model_copy("no-head")
    weights = {k: v for k, v in load_file(d / "model.safetensors").items() if not k.startswith("classifier")}
    save_file(weights, d / "model.safetensors", metadata={"format": "pt"})
    return d


def edit_config(change: Callable[[dict], None] | None, name: str, raw: str | None = None):
    def build(e: Env) -> Path:
        d = e.model_copy(name)
        if raw is not None:
            (d / "config.json").write_text(raw)
        else:
            config = json.loads((d / "config.json").read_text())
            change(config)
            (d / "config.json").write_text(json.dumps(config))
        return d
    return build


def three_classes(e: Env) -> Path:
    return build_tiny_bert(e.root / "three", labels=("negative", "neutral", "positive"))


def pickle_only(e: Env) -> Path:
    from test_models import pickle_only as make

    return make(e.bert, e.root)


def mc_suite(e: Env, labels: str = "[A, B, C]", choices: int = 3, probes: str = "{accuracy: {}}") -> Path:
    """A multiple-choice suite over the tiny suite's sentences."""
    e.file("mc.jsonl", "".join(json.dumps({"q": t, "choices": ["good", "bad", "maybe", "no"][:choices], "answer": 0}) + "\n"
                               for t, _ in sst2_rows(32)))
    return e.file("mc.yaml", f"""name: mc
task: multiple_choice
labels: {labels}
data:
  eval: {{path: mc.jsonl, text_field: q, choices_field: choices, label_field: answer}}
probes: {probes}
gates:
  - {{name: floor, metric: accuracy.accuracy, min: 0.0}}
""")


def eval_file(e: Env, content: str | bytes, name: str = "dev.tsv") -> Path:
    """The tiny suite with its eval split replaced by ``content`` (in a file called ``name``)."""
    e.file(name, content)
    return e.suite if name == "dev.tsv" else e.suite_with("dev.tsv", name)


def including_stricter_floor(e: Env) -> Path:
    """The tiny suite, including a file that declares a stricter gate of the same name."""
    e.file("_base.yaml", "probes: {accuracy: {}}\ngates:\n  - {name: accuracy-floor, metric: accuracy.accuracy, min: 0.9}\n")
    return e.suite_with("name: tiny", "include: _base.yaml\nname: tiny")


# ---- the cases --------------------------------------------------------------------------------------------

@dataclass
class Case:
    name: str
    argv: Callable[[Env], list]
    fragments: tuple[str, ...]
    exit: int = 2


ALIAS_BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8))

CASES = [
    # models that produce garbage: never a normal-looking verdict
    Case("nan-classifier-weights", lambda e: e.check(model=nan_model(e)), ("non-finite logits", "nan")),
    Case("no-tokenizer-files", lambda e: e.check(model=without_tokenizer(e)), ("no tokenizer files", "no-tokenizer")),
    Case("empty-vocabulary-tokenizer", lambda e: e.check(model=empty_vocabulary(e)),
         ("maps 100% of the benchmark's tokens to [UNK]", "empty-vocab")),
    Case("truncated-weights", lambda e: e.check(model=weights_bytes(lambda b: b[: len(b) // 2], "trunc")(e)),
         ("model.safetensors", "not a readable safetensors file")),
    Case("garbage-weights", lambda e: e.check(model=weights_bytes(lambda b: b"\x00garbage" * 64, "garbage")(e)),
         ("model.safetensors", "not a readable safetensors file")),
    Case("empty-weights-file", lambda e: e.check(model=weights_bytes(lambda b: b"", "empty")(e)),
         ("model.safetensors", "header too small")),
    Case("weights-without-classifier-head", lambda e: e.check(model=without_head(e)),
         ("no-head", "classifier.bias", "random values")),
    Case("config-not-json", lambda e: e.check(model=edit_config(None, "badcfg", raw="{oops")(e)),
         ("config.json", "not valid JSON")),
    Case("one-class-head", lambda e: e.check(model=edit_config(
        lambda c: c.update(id2label={"0": "only"}, label2id={"only": 0}), "one")(e)), ("config.json", "two distinct")),
    Case("pickle-only-checkpoint", lambda e: e.check(model=pickle_only(e)), ("pytorch_model.bin", "--allow-unsafe")),
    Case("remote-code", lambda e: e.check(model=edit_config(lambda c: c.update(auto_map={"x": "evil.Evil"}), "remote")(e)),
         ("trust_remote_code", "--allow-unsafe")),
    Case("model-is-a-file", lambda e: e.check(model=e.file("model.bin", "x")), ("model.bin", "must be a directory")),
    Case("model-dir-missing", lambda e: e.check(model=e.root / "nope"), ("nope", "model directory not found")),
    # labels
    Case("extra-model-class", lambda e: e.check(model=three_classes(e)),
         ("model label 'neutral' is not a suite label", "--drop-label neutral")),
    Case("drop-label-unknown", lambda e: e.check("--drop-label", "neutrl", model=three_classes(e)),
         ("--drop-label", "did you mean 'neutral'")),
    Case("drop-label-needed", lambda e: e.check("--drop-label", "positive"), ("no model class for 'positive'",)),
    Case("label-map-typo", lambda e: e.check("--label-map", "negative=negativ,positive=positive"),
         ("--label-map", "'negativ'", "did you mean 'negative'")),
    Case("label-map-unknown-model-label", lambda e: e.check("--label-map", "bad=negative"),
         ("--label-map names model label 'bad'",)),
    Case("label-map-malformed", lambda e: e.check("--label-map", "negative"), ("--label-map", "MODEL_LABEL=SUITE_LABEL")),
    Case("baseline-same-files", lambda e: e.check("--baseline", e.bert), ("--baseline", "same files as the model")),
    # options the run would ignore, and options out of range
    Case("empty-probe-list", lambda e: e.check("--probes", ","), ("--probes", "names no probe")),
    Case("baseline-probe-without-baseline", lambda e: e.check("--probes", "comparison"),
         ("--probes", "probe 'comparison' compares against a baseline")),
    Case("unknown-probe", lambda e: e.check("--probes", "acuracy"), ("--probes", "did you mean 'accuracy'")),
    Case("shift-set-without-shift-probe", lambda e: e.check("--probes", "accuracy", "--shift-set",
                                                            f"x={e.file('x.tsv', 'text' + chr(9) + 'label' + chr(10))}"),
         ("--shift-set", "shift probe")),
    Case("train-data-without-reader", lambda e: e.check("--train-data", e.file("c.txt", "a b c\n")),
         ("--train-data", "contamination and longtail")),
    Case("train-data-missing", lambda e: e.check("--probes", "accuracy,contamination", "--train-data", e.root / "x.txt"),
         ("x.txt", "no corpus files found")),
    Case("train-data-garbled", lambda e: e.check("--probes", "accuracy,contamination", "--train-data",
                                                 e.file("latin.txt", "caf\xe9 au lait\n".encode("latin-1"))),
         ("latin.txt", "not UTF-8")),
    Case("seed-negative", lambda e: e.check("--seed", "-1"), ("--seed", "0<=x<=4294967295")),
    Case("seed-too-large", lambda e: e.check("--seed", str(2**32)), ("--seed",)),
    Case("limit-zero", lambda e: e.check("--limit", "0"), ("--limit",)),
    Case("unknown-option", lambda e: e.check("--seeed", "1"), ("No such option '--seeed'", "Did you mean '--seed'?", "audit check --help")),
    Case("missing-benchmark", lambda e: ["check", e.bert], ("Missing option '--benchmark'", "audit check --help")),
    Case("no-cuda", lambda e: e.check("--device", "cuda"), ("--device", "CUDA was requested")),
    Case("shift-set-name-twice", lambda e: e.check("--shift-set", "a=x.tsv", "--shift-set", "a=y.tsv"),
         ("--shift-set", "'a' is given twice")),
    Case("shift-set-bad-name", lambda e: e.check("--shift-set", f"a b={e.file('s.tsv', 'text' + chr(9) + 'label')}"),
         ("--shift-set a b", "letters")),
    Case("text-field-without-train-data", lambda e: ["contamination", "-b", e.suite, "--text-field", "body", "--out", e.out],
         ("--text-field", "--train-data")),
    # the output folder
    Case("out-is-a-file", lambda e: ["check", e.bert, "-b", e.suite, "--out", e.file("o.txt", "x")],
         ("--out", "o.txt is a file")),
    Case("out-under-a-file", lambda e: ["check", e.bert, "-b", e.suite, "--out", e.file("f.txt", "x") / "out"],
         ("--out", "cannot be created")),
    Case("out-not-writable", lambda e: ["check", e.bert, "-b", e.suite, "--out", "/proc/audit-reports"],
         ("--out", "cannot write in /proc")),
    Case("out-inside-model-dir", lambda e: ["check", e.bert, "-b", e.suite, "--out", e.bert / "reports"],
         ("--out", "inside the model's directory")),
    # suites
    Case("yaml-alias-bomb", lambda e: ["validate", e.file("bomb.yaml", ALIAS_BOMB)], ("bomb.yaml", "aliases")),
    Case("yaml-duplicate-key", lambda e: ["validate", e.suite_with("labels:", "name: x\nlabels:")],
         ("bad.yaml", "key 'name' appears twice")),
    Case("yaml-nested-too-deeply", lambda e: ["validate", e.file("deep.yaml", "a: " + "[" * 20000)],
         ("deep.yaml",)),
    Case("suite-is-a-directory", lambda e: ["validate", (e.root / "d.yaml").mkdir() or e.root / "d.yaml"],
         ("d.yaml", "is a directory")),
    Case("duplicate-gate-across-include", lambda e: ["validate", including_stricter_floor(e)],
         ("gate 'accuracy-floor' is already declared in", "_base.yaml", "override: true")),
    Case("nan-threshold", lambda e: e.check(suite=e.suite_with("min: 0.0", "min: .nan")), ("gates[0].min", "finite")),
    Case("inf-threshold", lambda e: e.check(suite=e.suite_with("max: 1.0", "max: .inf")), ("gates[1].max", "finite")),
    Case("gate-confidence-out-of-range", lambda e: e.check(suite=e.suite_with("max: 1.0}", "max: 1.0, confidence: 1.5}")),
         ("confidence", "between 0 and 1")),
    Case("probe-confidence-out-of-range", lambda e: e.check(suite=e.suite_with("accuracy: {}", "accuracy: {confidence: 1.5}")),
         ("probes.accuracy.confidence", "out of range")),
    Case("probe-param-wrong-type", lambda e: e.check(suite=e.suite_with("accuracy: {}", "accuracy: {n_bootstrap: many}")),
         ("probes.accuracy.n_bootstrap", "must be an integer")),
    Case("unknown-attack-recipe", lambda e: e.check(suite=e.suite_with("accuracy: {}", "adversarial: {recipes: [dwb]}")),
         ("probes.adversarial.recipes", "unknown value 'dwb'")),
    Case("unknown-shift-set", lambda e: e.check(suite=e.suite_with("accuracy: {}", "shift: {sets: [imdb]}")),
         ("probes.shift.sets", "unknown value 'imdb'")),
    Case("unknown-fit-split", lambda e: e.check(suite=e.suite_with("accuracy: {}", "calibration: {fit_split: dev}")),
         ("probes.calibration.fit_split", "unknown value 'dev'")),
    Case("min-samples-zero", lambda e: e.check(suite=e.suite_with("min: 0.0}", "min: 0.0, min_samples: 0}")),
         ("min_samples", "positive integer")),
    Case("data-path-leaves-suite-folder", lambda e: e.check(suite=e.suite_with("path: dev.tsv", "path: ../dev.tsv")),
         ("data.eval.path", "leaves the suite's folder")),
    Case("data-path-absolute", lambda e: e.check(suite=e.suite_with("path: dev.tsv", "path: /etc/hostname.tsv")),
         ("data.eval.path", "must be relative")),
    Case("template-field-not-a-column", lambda e: e.check(suite=e.suite_with(
        "path: dev.tsv, text_field: sentence,", "path: dev.tsv, columns: [sentence, label], text_template: '{title}',")),
         ("'title' is not one of columns",)),
    Case("columns-on-jsonl", lambda e: e.check(suite=e.suite_with(
        "path: dev.tsv,", f"path: {e.file('d.jsonl', '{}').name}, columns: [sentence, label],")), ("'columns' is for headerless",)),
    # data files: what `check` rejects, `validate` rejects too
    Case("header-only", lambda e: ["validate", eval_file(e, "sentence\tlabel\n")], ("dev.tsv", "no rows")),
    Case("gz-name-not-gzip", lambda e: ["validate", eval_file(e, "sentence\tlabel\nok\t1\n", "d.tsv.gz")],
         ("d.tsv.gz", "named .gz but not gzip-compressed")),
    Case("corrupt-zstd-named-tsv", lambda e: e.check(suite=eval_file(e, b"\x28\xb5\x2f\xfd garbage")), ("dev.tsv", "zstd decompress error")),
    Case("binary-garbage", lambda e: ["validate", eval_file(e, bytes(range(256)) * 8)], ("dev.tsv:2", "not UTF-8")),
    Case("bad-label-value", lambda e: ["validate", eval_file(e, "sentence\tlabel\nfine\t1\nodd\t7\n")],
         ("dev.tsv:3", "label '7'")),
    Case("short-row", lambda e: ["validate", eval_file(e, "sentence\tlabel\nfine\t1\nno label here\n")],
         ("dev.tsv:3", "line 3 has 1 field(s); the header has 2")),
    Case("field-over-limit", lambda e: ["validate", eval_file(e, "sentence\tlabel\nok\t1\n" + "x" * (5 << 20) + "\t1\n")],
         ("dev.tsv:3", "field larger than field limit")),
    Case("jsonl-bad-line", lambda e: ["validate", eval_file(e, '{"sentence": "a", "label": 1}\n{"sentence": oops}\n',
                                                            "d.jsonl")], ("d.jsonl:2", "invalid JSON")),
    # language models
    Case("causal-lm-on-a-classification-suite", lambda e: e.check(model=e.llama),
         ("tiny-llama", "a classification suite needs a classifier, and this is a causal-lm")),
    Case("classifier-on-a-multiple-choice-suite", lambda e: e.check(suite=mc_suite(e)),
         ("tiny-bert", "a multiple_choice suite needs a causal-lm, and this is a classifier")),
    Case("label-map-with-a-causal-lm", lambda e: e.check("--label-map", "a=A", model=e.llama, suite=mc_suite(e)),
         ("--label-map", "a causal LM has no classes")),
    Case("probe-on-a-task-it-cannot-run", lambda e: ["validate", mc_suite(e, probes="{accuracy: {}, last_word: {}}")],
         ("probes.last_word", "does not run on multiple_choice suites")),
    Case("prompt-variant-unknown", lambda e: ["validate", mc_suite(e, probes="{accuracy: {}, prompt_variants: {prompts: [qa]}}")],
         ("probes.prompt_variants.prompts", "unknown value 'qa'")),
    Case("choice-order-on-a-classification-suite",
         lambda e: ["validate", e.suite_with("  comparison: {}", "  choice_order: {}")],
         ("probes.choice_order", "does not run on classification suites")),
    Case("membership-reference-unknown", lambda e: ["validate", mc_suite(e, probes="{accuracy: {}, membership: {reference: later}}")],
         ("probes.membership.reference", "unknown value 'later'")),
    Case("fewshot-on-a-classification-suite", lambda e: ["validate", e.suite_with("name: tiny", "fewshot: {k: 2}\nname: tiny")],
         ("fewshot.k", "multiple_choice and generate only")),
    Case("labels-on-a-perplexity-suite", lambda e: ["validate", e.file("p.yaml", "task: perplexity\nlabels: [a, b]\n"
                                                                                 "data: {eval: {path: dev.tsv, text_field: sentence}}\n")],
         ("p.yaml: labels", "a perplexity suite has no labels")),
    Case("more-choices-than-labels", lambda e: ["validate", mc_suite(e, labels="[A, B]", choices=4)],
         ("mc.jsonl:1", "the item has 4 choices and the suite names 2 labels")),
    Case("choice-source-missing", lambda e: ["validate", e.file("m.yaml", "task: multiple_choice\nlabels: [A, B]\n"
                                                                         "data: {eval: {path: dev.tsv, text_field: sentence, "
                                                                         "label_field: label}}\n")],
         ("data.eval", "give exactly one of 'choices_field'")),
    Case("garbage-gguf", lambda e: e.check(model=e.file("broken.gguf", b"GGUF" + bytes(64)), suite=mc_suite(e)),
         ("broken.gguf", "not a readable GGUF file")),
    Case("two-gguf-files", lambda e: e.check(model=two_ggufs(e), suite=mc_suite(e)),
         ("holds 2 GGUF files", "pass the .gguf file itself")),
    # verify and diff
    Case("verify-a-directory", lambda e: ["verify", e.root], ("is a directory", "report.json")),
    Case("verify-not-json", lambda e: ["verify", e.file("r.json", "not json")], ("r.json", "not a JSON report")),
    Case("verify-claims-with-use-cache", lambda e: ["verify", e.report, "--claims", e.file("c.yaml", "claims: []"),
                                                    "--use-cache"], ("--use-cache", "--claims")),
    Case("claims-alias", lambda e: ["verify", e.report, "--claims", e.file("c.yaml", "x: &a 1\nclaims: [*a]\n")],
         ("c.yaml:2", "aliases")),
    Case("diff-across-benchmarks", lambda e: ["diff", e.report, other_benchmark(e)],
         ("differ in benchmark (tiny vs other)", "--force")),
    Case("old-report-schema", lambda e: ["verify", old_schema(e)], ("report schema 1.1", "re-run")),
]


# ---- round two: the hostile-input sweep of the landed main -------------------------------------------------

LONG = "x" * 300  # a path name over the 255 bytes a file system allows


def blank_choice_suite(e: Env, blank: str) -> Path:
    """A multiple-choice suite whose items' gold choice is blank (it would score only the delimiter, and win)."""
    suite = mc_suite(e)
    e.file("mc.jsonl", "".join(json.dumps({"q": t, "choices": [blank, "bad", "maybe"], "answer": 0}) + "\n"
                               for t, _ in sst2_rows(32)))
    return suite


def blank_documents(e: Env) -> Path:
    e.file("docs.jsonl", '{"text": "   "}\n{"text": ""}\n')
    return e.file("ppl.yaml", "task: perplexity\ndata: {eval: {path: docs.jsonl, text_field: text}}\n"
                              "probes: {perplexity: {}}\ngates: [{name: p, metric: perplexity.token_perplexity, max: 50}]\n")


def including_outside(e: Env) -> Path:
    secret = e.root / "secret"
    secret.mkdir(exist_ok=True)
    (secret / "creds.yaml").write_text("name: leaked-credentials\n")
    return e.suite_with("name: tiny", "include: ../secret/creds.yaml\nname: tiny")


def few_shot_suite(e: Env) -> Path:
    return e.file("fs.yaml", mc_suite(e).read_text().replace("task: multiple_choice",
                                                                 "task: multiple_choice\nfewshot: {k: 40}"))


def trailing_garbage(e: Env) -> Path:
    rows = "sentence\tlabel\n" + "".join(f"{t}\t{y}\n" for t, y in sst2_rows(64))
    return eval_file(e, gzip.compress(rows.encode()) + b"not gzip at all", "d.tsv.gz")


def foreign_resume(e: Env) -> Path:
    folder = e.root / "photos"
    folder.mkdir()
    (folder / "holiday.jpg").write_bytes(b"\xff\xd8")
    return folder


def claims_file(e: Env, metric: str) -> Path:
    return e.file("claims.yaml", f"claims:\n  - {{metric: {metric}, value: 0.5}}\n")


SWEEP = [
    Case("blank-gold-choice", lambda e: ["validate", blank_choice_suite(e, "")], ("mc.jsonl:1", "choice 0", "blank")),
    Case("whitespace-gold-choice-check", lambda e: e.check(model=e.llama, suite=blank_choice_suite(e, "  ")),
         ("mc.jsonl:1", "blank")),
    Case("long-name-out", lambda e: e.check("--out", e.root / LONG), (LONG, "longer than the file system allows")),
    Case("long-name-model", lambda e: e.check(model=e.root / LONG), (LONG, "longer than the file system allows")),
    Case("long-name-benchmark", lambda e: e.check(suite=e.root / f"{LONG}.yaml"), ("longer than the file system allows",)),
    Case("long-name-train-data", lambda e: e.check("--probes", "accuracy,contamination", "--train-data", e.root / LONG),
         (LONG, "longer than the file system allows")),
    Case("long-name-validate", lambda e: ["validate", e.root / f"{LONG}.yaml"], ("longer than the file system allows",)),
    Case("compress-into-the-model", lambda e: ["compress", e.model_copy("m"), "--method", "prune:0.5", "--out",
                                               e.root / "m", "--overwrite"], ("--out", "inside the model's directory")),
    Case("compress-over-the-models-folder", lambda e: ["compress", e.model_copy("m"), "--method", "prune:0.5", "--out",
                                                       e.root, "--overwrite"], ("--out", "holds the model")),
    Case("compressed-weights-swapped", lambda e: e.check(model=swapped_weights(e)),
         ("audit_compression.json", "model.safetensors has changed since audit compress wrote")),
    Case("include-leaves-the-folder", lambda e: ["validate", including_outside(e)],
         ("include", "leaves the suite's folder")),
    Case("perplexity-documents-blank", lambda e: ["validate", blank_documents(e)], ("docs.jsonl:1", "blank")),
    Case("claim-on-a-misspelt-metric", lambda e: ["verify", e.report, "--claims", claims_file(e, "accuracy.acuracy")],
         ("claims[0].metric", "no metric 'acuracy'", "did you mean 'accuracy'")),
    Case("claim-on-an-unknown-probe", lambda e: ["verify", e.report, "--claims", claims_file(e, "acuracy.accuracy")],
         ("claims[0].metric", "unknown probe 'acuracy'")),
    Case("baseline-of-the-wrong-kind", lambda e: e.check("--baseline", e.llama), ("--baseline", "tiny-llama", "causal-lm")),
    Case("gate-never-passable", lambda e: ["validate", e.suite_with("min: 0.0}", "min: 0.9, max: 0.1}")],
         ("gates[0]", "min 0.9 is above max 0.1")),
    Case("few-shot-larger-than-the-split", lambda e: ["validate", few_shot_suite(e)],
         ("mc.jsonl", "fewshot.k asks for 40")),
    Case("gzip-trailing-garbage", lambda e: ["validate", trailing_garbage(e)], ("d.tsv.gz", "trailing garbage")),
    Case("foreign-resume-folder", lambda e: ["contamination", "-b", e.suite, "--train-data", e.file("c.txt", "a b c d e\n"),
                                             "--resume", foreign_resume(e), "--out", e.out],
         ("photos", "not a resume folder")),
]


def swapped_weights(e: Env) -> Path:
    """An `audit compress` directory whose weights were replaced by another model's."""
    out = e.root / "pruned"
    assert run("compress", e.bert, "--method", "prune:0.3", "--out", out).exit_code == 0
    shutil.copy(e.other / "model.safetensors", out / "model.safetensors")
    return out


def two_ggufs(e: Env) -> Path:
    folder = e.root / "ggufs"
    folder.mkdir()
    for name in ("a.gguf", "b.gguf"):
        (folder / name).write_bytes(b"GGUF")
    return folder


def other_benchmark(e: Env) -> Path:
    report = json.loads(e.report.read_text())
    report["benchmark"]["name"] = "other"
    return e.file("other.json", json.dumps(report))


def old_schema(e: Env) -> Path:
    report = json.loads(e.report.read_text())
    report["schema_version"] = "1.1"
    return e.file("old.json", json.dumps(report))


CASES += SWEEP


def test_the_table_is_large_and_names_are_unique():
    assert len(CASES) >= 45 and len({c.name for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input(case: Case, env: Env):
    result = run(*case.argv(env))
    assert result.exit_code == case.exit, result.output
    assert "Traceback" not in result.output and not isinstance(result.exception, Exception) or \
        isinstance(result.exception, SystemExit)
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.output
    for fragment in case.fragments:
        assert fragment in errors[0], (fragment, errors[0])
    assert not env.out.exists() or not any(env.out.iterdir())


def test_an_unusable_prediction_cache_warns_and_the_run_goes_on(env, monkeypatch):
    for name, make in (("corrupt", lambda d: (d.mkdir(), (d / "predictions.sqlite").write_bytes(b"not a database" * 99))),
                       ("a-file", lambda d: d.write_text("a file, not a folder"))):
        cache = env.root / name
        make(cache)
        monkeypatch.setenv("AUDIT_CACHE_DIR", str(cache))
        out = env.root / f"out-{name}"
        result = run("check", env.bert, "-b", env.suite, "--out", out)
        assert result.exit_code == 0, result.output
        warning = [line for line in result.output.splitlines() if "prediction cache" in line]
        assert len(warning) == 1 and "unusable" in warning[0] and "running without it" in warning[0]
        assert json.loads((out / "report.json").read_text())["verdict"] == "pass"


def test_ctrl_c_exits_130_and_writes_nothing(env, monkeypatch):
    from audit import runner

    real = runner.implementation

    def interrupted(name):
        if name == "comparison":
            raise KeyboardInterrupt
        return real(name)

    monkeypatch.setattr(runner, "implementation", interrupted)
    result = run("check", env.bert, "-b", env.suite, "--baseline", env.other, "--out", env.out)
    assert result.exit_code == 130 and "audit: interrupted" in result.output and "Aborted" not in result.output
    assert not env.out.exists()


def test_a_gzip_file_is_read_by_its_bytes_whatever_its_name(env):
    """A .tsv that is really gzip: main said "re-encode with iconv"; validate and check now agree and read it."""
    rows = "sentence\tlabel\n" + "".join(f"{t}\t{y}\n" for t, y in sst2_rows(64))
    (env.suite.parent / "dev.tsv").write_bytes(gzip.compress(rows.encode()))
    assert run("validate", env.suite).exit_code == 0
    assert run("check", env.bert, "-b", env.suite, "--out", env.out).exit_code == 0


def constant_classifier(e: Env, label: int) -> Path:
    """The tiny BERT with a head that always answers ``label``."""
    from safetensors.torch import load_file, save_file

    d = e.model_copy(f"constant-{label}")
    weights = load_file(d / "model.safetensors")
    weights["classifier.weight"][:] = 0
    weights["classifier.bias"][:] = -10.0
    weights["classifier.bias"][label] = 10.0
    save_file(weights, d / "model.safetensors", metadata={"format": "pt"})
    return d


def test_a_suite_without_min_samples_does_not_decide_on_one_item(env):
    """main passed an accuracy floor of 0.9 with a constant classifier on the one item --limit 1 sampled."""
    from audit import suite as suite_mod
    from audit.data import read_suite_data

    strict = env.suite_with("min: 0.0}", "min: 0.9}", "floor.yaml")
    picked = read_suite_data(suite_mod.load(str(strict)))["eval"].sample(1, 0)
    result = run("check", constant_classifier(env, int(picked.labels[0])), "-b", strict, "--limit", 1, "--out", env.out)
    assert result.exit_code == 1, result.output
    gate = json.loads((env.out / "report.json").read_text())["gates"][0]
    assert gate["observed"] == 1.0 and gate["status"] == "inconclusive" and "fewer than min_samples 30" in gate["message"]


def test_a_full_disk_while_writing_reports_is_one_line_and_leaves_nothing(env, monkeypatch):
    import errno
    import os

    from audit import report as report_mod

    real = os.fdopen

    def full(fd, *args, **kwargs):
        f = real(fd, *args, **kwargs)

        class Full:
            def __enter__(self):
                return self

            def __exit__(self, *exc):
                f.close()

            def write(self, text):
                raise OSError(errno.ENOSPC, "No space left on device")
        return Full()

    assert run("check", env.bert, "-b", env.suite, "--out", env.out / "old").exit_code == 0
    before = (env.out / "old" / "report.json").read_bytes()
    monkeypatch.setattr(report_mod.os, "fdopen", full)
    for out in (env.out / "new", env.out / "old"):
        result = run("check", env.bert, "-b", env.suite, "--out", out)
        assert result.exit_code == 2 and "Traceback" not in result.output, result.output
        errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
        assert len(errors) == 1 and "--out" in errors[0] and "no space left" in errors[0]
    assert not (env.out / "new").exists()
    assert sorted(p.name for p in (env.out / "old").iterdir()) == sorted(report_mod.FILES)  # no temp file left
    assert (env.out / "old" / "report.json").read_bytes() == before


def test_verify_does_not_vouch_for_an_edited_value_or_changed_inputs(env):
    original = json.loads(env.report.read_text())
    acc = original["probes"]["accuracy"]["metrics"]["accuracy"]
    lo, hi = acc["ci"]
    edited = json.loads(env.report.read_text())
    edited["probes"]["accuracy"]["metrics"]["accuracy"]["value"] = round(lo + 0.9 * (hi - lo), 4)  # CI left as it was
    path = env.file("edited.json", json.dumps(edited))
    result = run("verify", path, "--out", env.root / "v1")
    assert result.exit_code == 1 and "[differs] accuracy.accuracy (model)" in result.output, result.output
    assert "every metric must reproduce exactly" in result.output and "reproduced: no" in result.output

    forged = json.loads(env.report.read_text())
    data = next(iter(forged["manifest"]["data"]))
    forged["manifest"]["data"][data] = "0" * 64
    result = run("verify", env.file("forged.json", json.dumps(forged)), "--out", env.root / "v2")
    assert result.exit_code == 1 and "input changed since the original run" in result.output
    assert "not a reproduction" in result.output and "reproduced: no" in result.output

    assert run("verify", env.report, "--out", env.root / "v3").exit_code == 0  # the untouched report still does


def test_verify_accepts_an_estimate_within_both_cis_only_on_another_machine():
    from audit.verify import compare

    section = {"status": "ok", "metrics": {"accuracy": {"value": 0.80, "ci": [0.75, 0.85], "n": 300},
                                           "n_flipped": {"value": 3.0}}}
    moved = {"status": "ok", "metrics": {"accuracy": {"value": 0.81, "ci": [0.76, 0.86], "n": 300},
                                         "n_flipped": {"value": 4.0}}}
    edited = {"status": "ok", "metrics": {"accuracy": {"value": 0.99, "ci": [0.75, 0.85]}}}
    here = {"device": {"type": "cpu", "cpu": "x86_64"}, "platform": "p", "python": "3.11", "packages": {"torch": "2"}}
    there = {**here, "device": {"type": "cpu", "cpu": "aarch64"}}
    report = lambda s, m: {"probes": {"accuracy": s, "comparison": {"status": "ok", "metrics": {}}}, "manifest": m}
    status = lambda a, b: {r["metric"]: r["status"] for r in compare(a, b)}
    assert status(report(section, here), report(moved, here)) == {"accuracy": "differs", "n_flipped": "differs"}
    assert status(report(section, here), report(moved, there)) == {"accuracy": "within CI", "n_flipped": "differs"}
    assert status(report(edited, here), report(section, there))["accuracy"] == "differs"


def test_compress_checks_its_output_before_loading_the_model(env, monkeypatch):
    from audit import models

    def never(*args, **kwargs):
        raise AssertionError("the model was loaded before --out was checked")

    out = env.root / "taken"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    monkeypatch.setattr(models, "load_model", never)
    result = run("compress", env.bert, "--method", "prune:0.5", "--out", out)
    assert result.exit_code == 2 and "not empty" in result.output and (out / "notes.txt").read_text() == "mine"


def test_contexts_cut_to_max_length_are_a_finding_and_make_item_gates_inconclusive(env):
    suite = env.file("cut.yaml", mc_suite(env).read_text().replace("task: multiple_choice",
                                                                    "task: multiple_choice\nmax_length: 8"))
    result = run("check", env.llama, "-b", suite, "--out", env.out)
    assert result.exit_code == 1, result.output
    report = json.loads((env.out / "report.json").read_text())
    cut = report["benchmark"]["truncation"]["n_truncated"]
    longer = sum(len(t.split()) > 7 for t, _ in sst2_rows(32))  # word-level tokens; one is left for the choice
    assert cut == longer > 3 and f"{cut} of 32 eval items" in result.output and "longer than max_length 8" in result.output
    assert report["gates"][0]["status"] == "inconclusive" and "cut to fit max_length 8" in report["gates"][0]["message"]
    assert report["summary"]["findings"][0]["gate"] == "truncated-inputs"
    for name in ("report.md", "report.html"):
        assert "were cut to fit max_length 8" in (env.out / name).read_text().replace("\\_", "_")  # md escapes _
