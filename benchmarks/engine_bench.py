"""Throughput of audit's engine vs transformers.pipeline("text-classification"), same model, same texts.

    python benchmarks/engine_bench.py [--n 2000] [--device cpu|cuda] [--check]

Model: the demo's fine-tuned MiniLM (built and cached on first use). Texts: a seeded sample of
SST-2 train sentences (the issue's workload), then the full SST-2 dev set (longer sentences).
Each contender gets a warm-up call, then --repeat timed runs (the median counts); the engine runs
without its cache. --check exits 1
unless the engine is >= 3x the pipeline default and >= 1.5x pipeline(batch_size=64) on every
workload, with identical predicted labels.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def main() -> int:
    from transformers import pipeline

    from audit import suite as suite_mod
    from audit.data import read_split
    from audit.demo import demo_models
    from audit.engine import Engine, EngineConfig
    from audit.models import load_model

    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeat", type=int, default=3, help="timed runs per contender; the median counts")
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args()

    suite = suite_mod.load("sst2")
    train = read_split(suite.reference, suite.labels)
    idx = np.random.default_rng(0).choice(len(train), size=args.n, replace=False)
    workloads = {f"sst2-train-sample-{args.n}": [train.texts[i] for i in idx],
                 "sst2-dev-872": read_split(suite.eval, suite.labels).texts}
    model = load_model(str(demo_models(print)[0]))
    engine_device = Engine(EngineConfig(device=args.device)).device
    pipe = pipeline("text-classification", model=model.module, tokenizer=model.tokenizer, device=engine_device)
    label_id = {lab: i for i, lab in enumerate(model.labels)}
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, device {engine_device}, "
          f"engine batching {Engine(EngineConfig(device=args.device)).batching()}")

    ok = True
    for name, texts in workloads.items():
        runs = {
            "pipeline default": lambda t: [label_id[r["label"]] for r in pipe(t)],
            "pipeline batch_size=64": lambda t: [label_id[r["label"]] for r in pipe(t, batch_size=64)],
            "audit engine": lambda t: Engine(EngineConfig(device=args.device)).predict_proba(model, t).argmax(1).tolist(),
        }
        results = {}
        for label, fn in runs.items():
            fn(texts[:32])  # warm-up
            trials = [timed(lambda: fn(texts)) for _ in range(args.repeat)]
            results[label] = (np.asarray(trials[0][0]), len(texts) / float(np.median([s for _, s in trials])))
        engine_preds, engine_rate = results["audit engine"]
        print(f"\n{name} ({len(texts)} texts)")
        for label, (preds, rate) in results.items():
            same = int((preds == engine_preds).sum())
            print(f"  {label:24} {rate:8.1f} texts/s   engine speed-up {engine_rate / rate:5.2f}x   "
                  f"labels equal to engine {same}/{len(texts)}")
        ok &= engine_rate >= 3 * results["pipeline default"][1] and engine_rate >= 1.5 * results["pipeline batch_size=64"][1]
        ok &= all((p == engine_preds).all() for p, _ in results.values())
    print("\ntargets (>=3x default, >=1.5x batch_size=64, identical labels):", "met" if ok else "NOT met")
    return 0 if ok or not args.check else 1


if __name__ == "__main__":
    sys.exit(main())
