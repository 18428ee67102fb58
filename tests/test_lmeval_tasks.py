"""lm-evaluation-harness tasks as audit benchmarks (``--benchmark lm-eval:...``): lm-eval builds the requests
from a local task YAML (``dataset_path: json``, offline), audit scores them, and each document's outcome is
the one lm-eval's own run gives."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest

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


def lm_eval_outcomes(model_dir, task_file):
    """lm-eval's own run of the task: per document, acc and acc_norm."""
    import lm_eval
    from lm_eval.tasks import TaskManager

    name = task_file.stem
    out = lm_eval.simple_evaluate(model="hf", model_args=f"pretrained={model_dir},dtype=float32", tasks=[name],
                                  task_manager=TaskManager(include_path=str(task_file.parent)), batch_size=8,
                                  device="cpu", log_samples=True)
    samples = sorted(out["samples"][name], key=lambda s: s["doc_id"])
    return np.array([s["acc"] for s in samples]), np.array([s["acc_norm"] for s in samples])


@needs_lm_eval
@pytest.mark.parametrize("template, records, name", [(MC_TASK, mc_records, "tiny_mc"),
                                                     (WINO_TASK, wino_records, "tiny_wino")])
def test_an_lm_eval_task_scores_as_lm_eval_does(tmp_path, tiny_llama, tiny_llama_other, monkeypatch, template,
                                                records, name):
    monkeypatch.setenv("AUDIT_CACHE_DIR", str(tmp_path / "cache"))
    task_file = write_task(tmp_path, template, records(), name)
    n_docs = len(records())
    out = tmp_path / "out"
    result = run("check", tiny_llama, "--baseline", tiny_llama_other, "-b", f"lm-eval:{task_file}", "--out", out,
                 "--probes", "accuracy,comparison,calibration,longtail,membership")
    assert result.exit_code in (0, 1), result.output
    report = json.loads((out / "report.json").read_text())
    assert report["benchmark"]["name"] == f"lm-eval:{name}" and report["benchmark"]["n_eval"] == n_docs
    assert all(p["status"] == "ok" for p in report["probes"].values()), {n: p.get("error") for n, p in report["probes"].items()}
    acc, norm = lm_eval_outcomes(tiny_llama, task_file)
    metrics = report["probes"]["accuracy"]["metrics"]
    assert metrics["accuracy"]["value"] == pytest.approx(acc.mean()) and metrics["accuracy_norm"]["value"] == pytest.approx(norm.mean())
    assert run("verify", out / "report.json").exit_code == 0


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


def test_lm_eval_without_the_extra_is_one_line(tmp_path, tiny_llama, monkeypatch):
    import audit.lmeval

    real = importlib.util.find_spec
    monkeypatch.setattr(audit.lmeval.importlib.util, "find_spec", lambda name, *a: None if name == "lm_eval" else real(name, *a))
    out = tmp_path / "out"
    assert_bad_input(run("check", tiny_llama, "-b", "lm-eval:arc_easy", "--out", out), out,
                     "need lm-evaluation-harness", "pip install 'audit[lmeval]'")


@needs_lm_eval
def test_a_task_lm_eval_does_not_yet_run_here_is_bad_input(tmp_path, tiny_llama, monkeypatch):
    monkeypatch.setenv("AUDIT_CACHE_DIR", str(tmp_path / "cache"))
    generate = MC_TASK.replace("output_type: multiple_choice", "output_type: generate_until").replace(
        'doc_to_choice: ["good film", "bad film", "maybe"]\n', "generation_kwargs: {{until: [\"\\n\"]}}\n")
    task_file = write_task(tmp_path, generate, mc_records(), "tiny_gen")
    out = tmp_path / "out"
    assert_bad_input(run("check", tiny_llama, "-b", f"lm-eval:{task_file}", "--out", out), out,
                     "is a generate_until task", "native suite")
    assert_bad_input(run("check", tiny_llama, "-b", "lm-eval:no_such_task_here", "--out", out), out,
                     "lm-eval knows no task 'no_such_task_here'")
