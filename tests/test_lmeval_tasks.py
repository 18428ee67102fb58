"""lm-evaluation-harness tasks as audit benchmarks (``--benchmark lm-eval:...``): lm-eval builds the requests
from a local task YAML (``dataset_path: json``, offline), audit scores them, and each document's outcome is
the one lm-eval's own run gives."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest

from audit.causal_lm import prompt_text
from conftest import sst2_rows
from test_cli import assert_bad_input, run
from test_native_suites import wino_records  # the same sentences as the native per-choice-contexts test

ROWS = sst2_rows(40)
needs_lm_eval = pytest.mark.skipif(importlib.util.find_spec("lm_eval") is None, reason="pip install 'audit[lmeval]'")

HEAD = """\
task: {name}
dataset_path: json
dataset_kwargs:
  data_files: {{test: {data}}}
test_split: test
"""  # a local task: lm-eval reads the documents from a JSON-lines file, offline

MC_TASK = HEAD + """\
output_type: multiple_choice
doc_to_text: "Question: {{{{q}}}}\\nAnswer:"
doc_to_target: answer
doc_to_choice: ["good film", "bad film", "maybe"]
metric_list:
  - metric: acc
  - metric: acc_norm
"""

WINO_TASK = HEAD + """\
output_type: multiple_choice
doc_to_text: "{{{{answer | int - 1}}}}"
doc_to_target: "{{{{after}}}}"
doc_to_choice: "{{{{[before + option1, before + option2]}}}}"
metric_list:
  - metric: acc
  - metric: acc_norm
"""


def mc_records():
    return [{"q": t, "answer": i % 3} for i, (t, _) in enumerate(ROWS)]


def write_task(folder, template, records, name):
    data = folder / f"{name}.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in records))
    (folder / f"{name}.yaml").write_text(template.format(name=name, data=data))
    return folder / f"{name}.yaml"


def lm_eval_samples(model_dir, task_file, name=None, batch_size=8):
    """lm-eval's own run of the task (or group) in the file's folder: its results and per-task samples."""
    import lm_eval
    from lm_eval.tasks import TaskManager

    out = lm_eval.simple_evaluate(model="hf", model_args=f"pretrained={model_dir},dtype=float32",
                                  tasks=[name or task_file.stem], task_manager=TaskManager(include_path=str(task_file.parent)),
                                  batch_size=batch_size, device="cpu", log_samples=True)
    return out["results"], {task: sorted(rows, key=lambda s: s["doc_id"]) for task, rows in out["samples"].items()}


def lm_eval_outcomes(model_dir, task_file):
    """lm-eval's own run of the task: per document, acc and acc_norm."""
    samples = lm_eval_samples(model_dir, task_file)[1][task_file.stem]
    return np.array([s["acc"] for s in samples]), np.array([s["acc_norm"] for s in samples])


def audit_split(benchmark: str):
    """The suite audit builds for an lm-eval: benchmark and its eval split, read as `audit check` reads it."""
    from audit import lmeval
    from audit.data import read_suite_data

    suite = lmeval.load(benchmark)
    return suite, read_suite_data(suite)["eval"]


def audit_outcomes(model_dir, benchmark):
    """audit's engine on the same task: per document, right by acc and by acc_norm."""
    from audit.engine import Engine, EngineConfig
    from audit.models import CHOICE_POSITIONS, load_model
    from audit.scorer import Scorer

    suite, split = audit_split(benchmark)
    scorer = Scorer(Engine(EngineConfig(device="cpu", batch_size=4)), load_model(str(model_dir)), CHOICE_POSITIONS,
                    "model", len(suite.labels), suite.task.target_delimiter)
    return scorer.predict(split.items) == split.labels, scorer.predict_norm(split.items) == split.labels


FEWSHOT = "num_fewshot: 2\nfewshot_config: {{sampler: first_n}}\n"


@needs_lm_eval
@pytest.mark.parametrize("template, records, name", [(MC_TASK, mc_records, "tiny_mc"),
                                                     (WINO_TASK, wino_records, "tiny_wino"),
                                                     (MC_TASK + FEWSHOT, mc_records, "tiny_mc_2shot"),
                                                     (WINO_TASK + FEWSHOT, wino_records, "tiny_wino_2shot")])
def test_each_document_scores_as_lm_eval_scores_it(tmp_path, tiny_llama, monkeypatch, template, records, name):
    monkeypatch.setenv("AUDIT_CACHE_DIR", str(tmp_path / "cache"))
    task_file = write_task(tmp_path, template, records(), name)
    acc, norm = lm_eval_outcomes(tiny_llama, task_file)
    ours_acc, ours_norm = audit_outcomes(tiny_llama, f"lm-eval:{task_file}")
    first = audit_split(f"lm-eval:{task_file}")[1].items[0]
    assert (prompt_text(first).count("\n\n") >= 2) == ("2shot" in name)  # lm-eval's few-shot examples are there
    assert 0 < acc.sum() < len(acc) and 0 < norm.sum() < len(norm)  # both outcomes occur: a real comparison
    np.testing.assert_array_equal(ours_acc, acc)
    np.testing.assert_array_equal(ours_norm, norm)


ROLLING_TASK = HEAD + """\
output_type: loglikelihood_rolling
doc_to_text: ""
doc_to_target: "{{{{text}}}}"
metric_list:
  - metric: word_perplexity
  - metric: bits_per_byte
"""


@needs_lm_eval
def test_a_rolling_task_gives_lm_evals_word_perplexity(tmp_path, tiny_llama, tiny_llama_other, monkeypatch):
    import lm_eval
    from lm_eval.tasks import TaskManager

    monkeypatch.setenv("AUDIT_CACHE_DIR", str(tmp_path / "cache"))
    docs = [{"text": " ".join(t for t, _ in ROWS[i:i + 4])} for i in range(0, 40, 4)]
    task_file = write_task(tmp_path, ROLLING_TASK, docs, "tiny_rolling")
    out = tmp_path / "out"
    result = run("check", tiny_llama, "--baseline", tiny_llama_other, "-b", f"lm-eval:{task_file}", "--out", out,
                 "--probes", "perplexity")
    assert result.exit_code in (0, 1), result.output
    report = json.loads((out / "report.json").read_text())
    assert report["benchmark"]["task"] == "perplexity" and report["benchmark"]["n_eval"] == len(docs)
    ours = report["probes"]["perplexity"]["metrics"]
    theirs = lm_eval.simple_evaluate(model="hf", model_args=f"pretrained={tiny_llama},dtype=float32",
                                     tasks=["tiny_rolling"], task_manager=TaskManager(include_path=str(tmp_path)),
                                     batch_size=4, device="cpu")["results"]["tiny_rolling"]
    assert ours["word_perplexity"]["value"] == pytest.approx(theirs["word_perplexity,none"], rel=1e-4)
    assert ours["bits_per_byte"]["value"] == pytest.approx(theirs["bits_per_byte,none"], rel=1e-4)


@needs_lm_eval
def test_a_task_file_that_names_python_needs_allow_unsafe(tmp_path, tiny_llama, monkeypatch):
    monkeypatch.setenv("AUDIT_CACHE_DIR", str(tmp_path / "cache"))
    task_file = write_task(tmp_path, MC_TASK, mc_records(), "tiny_mc")
    (tmp_path / "utils.py").write_text("import pathlib\npathlib.Path(__file__).with_name('RAN').write_text('x')\n"
                                       "def process(dataset):\n    return dataset\n")
    (tmp_path / "py.yaml").write_text(f"include: {task_file.name}\ntask: tiny_py\nprocess_docs: !function utils.process\n")
    out = tmp_path / "out"
    assert_bad_input(run("check", tiny_llama, "-b", f"lm-eval:{tmp_path / 'py.yaml'}", "--out", out),
                     out, "names Python (!function)", "--allow-unsafe")
    assert not (tmp_path / "RAN").exists()  # checked before lm-eval read the file
    # a group's subtasks are found in its folder: every task file there is checked, the group's own is plain
    (tmp_path / "group.yaml").write_text(GROUP.format(weighted="true").replace("tiny_mc_b", "tiny_py"))
    assert_bad_input(run("check", tiny_llama, "-b", f"lm-eval:{tmp_path / 'group.yaml'}", "--out", out),
                     out, "names Python (!function)", "py.yaml")
    assert not (tmp_path / "RAN").exists()


def test_lm_eval_without_the_extra_is_one_line(tmp_path, tiny_llama, monkeypatch):
    import audit.lmeval

    real = importlib.util.find_spec
    monkeypatch.setattr(audit.lmeval.importlib.util, "find_spec", lambda name, *a: None if name == "lm_eval" else real(name, *a))
    out = tmp_path / "out"
    assert_bad_input(run("check", tiny_llama, "-b", "lm-eval:arc_easy", "--out", out), out,
                     "need lm-evaluation-harness", "pip install 'audit[lmeval]'")


GEN_TASK = HEAD + """\
output_type: generate_until
doc_to_text: "Question: {{{{q}}}}\\nAnswer:"
doc_to_target: "{{{{a}}}}"
num_fewshot: 2
generation_kwargs: {{until: ["Question:", "\\n\\n"], max_gen_toks: 8, do_sample: false}}
filter_list:
  - name: first-word
    filter: [{{function: regex, regex_pattern: "(\\\\w+)"}}, {{function: take_first}}]
  - name: last-word
    filter: [{{function: regex, regex_pattern: "(\\\\w+)", group_select: -1}}, {{function: take_first}}]
metric_list:
  - metric: exact_match
    ignore_case: true
"""  # random few-shot examples per document, drawn by lm-eval; two answer filters; case-blind exact match


def by_filter(samples):
    return {f: [s for s in samples if s["filter"] == f] for f in ("first-word", "last-word")}


@needs_lm_eval
def test_a_generation_task_gives_lm_evals_generations_answers_and_exact_match(tmp_path, tiny_llama, tiny_llama_other,
                                                                              monkeypatch):
    from audit.engine import Engine, EngineConfig
    from audit.models import CHOICE_POSITIONS, load_model
    from audit.scorer import Scorer

    monkeypatch.setenv("AUDIT_CACHE_DIR", str(tmp_path / "cache"))
    docs = [{"q": t, "a": "none"} for t, _ in ROWS[:30]]
    task_file = write_task(tmp_path, GEN_TASK, docs, "tiny_gen")
    first = by_filter(lm_eval_samples(tiny_llama, task_file)[1]["tiny_gen"])["first-word"]
    for i, doc in enumerate(docs):  # every other gold is lm-eval's own first word, upper-cased: matched only case-blind
        doc["a"] = first[i]["filtered_resps"][0].upper() if i % 2 else "none"
    task_file = write_task(tmp_path, GEN_TASK, docs, "tiny_gen")
    results, samples = lm_eval_samples(tiny_llama, task_file)
    theirs = by_filter(samples["tiny_gen"])

    suite, split = audit_split(f"lm-eval:{task_file}")
    assert all(q.context.count("Question:") == 3 for q in split.items)  # lm-eval's prompt, its 2 examples included
    scorer = Scorer(Engine(EngineConfig(device="cpu", batch_size=4)), load_model(str(tiny_llama)), CHOICE_POSITIONS,
                    "model", 0, suite.task.target_delimiter, suite.task.generation)
    assert [g.text for g in scorer.generate(split.items)] == [s["resps"][0][0] for s in theirs["first-word"]]
    for name, rows in theirs.items():
        assert scorer.answers(split.items, name).tolist() == [s["filtered_resps"][0] for s in rows]
        right = scorer.right(split.items, None, name)
        np.testing.assert_array_equal(right, [s["exact_match"] for s in rows])
    assert 0 < right.sum() < len(right) or 0 < theirs["first-word"][1]["exact_match"]

    out = tmp_path / "out"
    result = run("check", tiny_llama, "--baseline", tiny_llama_other, "-b", f"lm-eval:{task_file}", "--out", out,
                 "--probes", "accuracy,comparison,agreement")
    assert result.exit_code in (0, 1), result.output
    report = json.loads((out / "report.json").read_text())
    assert report["benchmark"]["task"] == "generate"
    source = report["benchmark"]["source"]
    assert source["harness"] == "lm-evaluation-harness" and source["task"] == "tiny_gen" and len(source["config_sha256"]) == 64
    metrics = report["probes"]["accuracy"]["metrics"]
    for name in theirs:
        assert metrics[f"exact_match_{name}"]["value"] == pytest.approx(results["tiny_gen"][f"exact_match,{name}"])
    assert run("verify", out / "report.json").exit_code == 0


GROUP = "group: tiny_group\ntask: [tiny_mc, tiny_mc_b]\naggregate_metric_list:\n  - metric: acc\n    weight_by_size: {weighted}\n"


@needs_lm_eval
def test_a_group_is_one_report_sliced_by_subtask(tmp_path, tiny_llama, monkeypatch):
    monkeypatch.setenv("AUDIT_CACHE_DIR", str(tmp_path / "cache"))
    write_task(tmp_path, MC_TASK, mc_records(), "tiny_mc")
    write_task(tmp_path, MC_TASK, mc_records()[:25], "tiny_mc_b")
    (tmp_path / "group.yaml").write_text(GROUP.format(weighted="true"))
    out = tmp_path / "out"
    result = run("check", tiny_llama, "-b", f"lm-eval:{tmp_path / 'group.yaml'}", "--out", out,
                 "--probes", "accuracy,longtail")
    assert result.exit_code in (0, 1), result.output
    report = json.loads((out / "report.json").read_text())
    assert report["benchmark"]["name"] == "lm-eval:tiny_group" and report["benchmark"]["n_eval"] == 65
    assert report["benchmark"]["source"]["subtasks"] == ["tiny_mc", "tiny_mc_b"]
    results, samples = lm_eval_samples(tiny_llama, tmp_path / "group.yaml", "tiny_group")
    assert report["probes"]["accuracy"]["metrics"]["accuracy"]["value"] == pytest.approx(results["tiny_group"]["acc,none"])
    slices = {r["slice"]: r for r in report["probes"]["longtail"]["details"]["slices"] if r["slicing"] == "subtask"}
    for task in ("tiny_mc", "tiny_mc_b"):
        assert slices[f"subtask={task}"]["support"] == len(samples[task])
        assert slices[f"subtask={task}"]["model"]["accuracy"] == pytest.approx(results[task]["acc,none"])
    (tmp_path / "group.yaml").write_text(GROUP.format(weighted="false"))
    assert_bad_input(run("check", tiny_llama, "-b", f"lm-eval:{tmp_path / 'group.yaml'}", "--out", out / "x"),
                     out / "x", "averages its subtasks' acc unweighted")


@needs_lm_eval
@pytest.mark.parametrize("change, message", [
    (("do_sample: false", "do_sample: true, temperature: 0.7"), "samples its generations"),
    (("{{function: take_first}}]\n  - name: last", "{{function: lowercase}}, {{function: take_first}}]\n  - name: last"),
     "reads its answers with the filters ['regex', 'lowercase', 'take_first']"),
    (("  - metric: exact_match\n    ignore_case: true", "  - metric: bleu"), "reports 'bleu'"),
    (("output_type: generate_until", "output_type: loglikelihood"), "is a loglikelihood task"),
])
def test_a_task_audit_would_score_differently_is_bad_input(tmp_path, tiny_llama, monkeypatch, change, message):
    monkeypatch.setenv("AUDIT_CACHE_DIR", str(tmp_path / "cache"))
    assert change[0] in GEN_TASK
    task_file = write_task(tmp_path, GEN_TASK.replace(*change), [{"q": t, "a": "x"} for t, _ in ROWS[:10]], "tiny_gen")
    out = tmp_path / "out"
    assert_bad_input(run("check", tiny_llama, "-b", f"lm-eval:{task_file}", "--out", out), out, message)


@needs_lm_eval
def test_an_unknown_task_is_bad_input(tmp_path, tiny_llama, monkeypatch):
    monkeypatch.setenv("AUDIT_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "out"
    assert_bad_input(run("check", tiny_llama, "-b", "lm-eval:no_such_task_here", "--out", out), out,
                     "lm-eval knows no task 'no_such_task_here'")
