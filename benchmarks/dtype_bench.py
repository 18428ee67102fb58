"""float32 against bfloat16 on this CPU, and the engine's scoring rate as a share of the machine's own limit.

    python benchmarks/dtype_bench.py [--items 200] [--check]

The model is SmolLM2-135M, the LM demo's baseline (its weights as the GGUF ships them, de-quantized), loaded in
float32 and in bfloat16. Each scores the first N ARC-Easy items through the engine (no prediction cache; the
median of 3 runs) and the per-token KL of the bfloat16 model against the float32 one on the suite's WikiText-2
text (4 articles x 512 tokens). Reported per dtype: tokens/s (tokens run, as packed), accuracy (acc and acc_norm) and, for bfloat16,
the KL and top-1 agreement against float32 and how many items' answers changed.

The machine's limit: a torch matmul of the shapes the model runs most (2,048 tokens x 576 -> 1,536, SmolLM2's
MLP) and a 2,048-cube, in the same dtype and thread count, in the same run. The engine's rate in model FLOPs:
2 x the decoder's Linear weights per token run, 2 x the head's weights per position whose next token is scored
(the engine runs the head there only), and attention's two products (4 x hidden size x the positions each
token attends to, per layer). --check exits 1 unless the float32 engine reaches 50% of the float32 MLP-shaped
matmul rate.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch


def matmul_rate(dtype, m: int, k: int, n: int, seconds: float = 1.0) -> float:
    """GFLOP/s of (m x k) @ (k x n) in ``dtype`` on this process's threads."""
    a, b = torch.randn(m, k, dtype=dtype), torch.randn(k, n, dtype=dtype)
    for _ in range(3):
        a @ b
    runs, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ b
        runs += 1
    return 2 * m * k * n * runs / (time.perf_counter() - start) / 1e9


def model_flops(module, items, tokenizer) -> tuple[float, int]:
    """The FLOPs of scoring ``items`` as the engine packs them (see the module docstring), and the tokens run."""
    from audit.causal_lm import encode, prefix_token

    config = module.config
    layers = module.model.layers
    body = sum(m.weight.numel() for layer in layers for m in layer.modules() if isinstance(m, torch.nn.Linear))
    head = module.get_output_embeddings().weight.numel()
    total, tokens = 0.0, 0
    for item in items:
        packed = encode(tokenizer, item, 2048, prefix_token(tokenizer))
        attended = sum(p + 1 for p in packed.positions)  # each token sees its path from the root
        total += 2 * body * len(packed.ids) + 2 * head * sum(packed.scored) + \
            4 * config.hidden_size * len(layers) * attended
        tokens += len(packed.ids)
    return total, tokens


def run(model, engine, items, repeats: int = 3):
    times, scores = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        scores = engine.continuation_scores(model, items)
        times.append(time.perf_counter() - start)
    return float(np.median(times)), scores


def main() -> int:
    from audit import suite as suite_mod
    from audit.data import read_suite_data
    from audit.demo_lm import lm_models
    from audit.engine import Engine, EngineConfig
    from audit.models import load_model

    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, default=200)
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args()

    base = lm_models(print)[0]
    suite = suite_mod.load("arc_easy")
    splits = read_suite_data(suite)
    split = splits["eval"]
    items, gold = split.items[:args.items], split.labels[:args.items]
    texts = splits["wikitext2"].sample(4, 0).texts if "wikitext2" in splits else None
    engine = Engine(EngineConfig(device="cpu", max_length=suite.max_length))
    threads = torch.get_num_threads()
    print(f"torch {torch.__version__}, {threads} threads; {len(items)} ARC-Easy items")
    results, models = {}, {}
    for dtype in ("float32", "bfloat16"):
        model = models[dtype] = load_model(str(base), dtype=(dtype, "dtype_bench"))
        seconds, scores = run(model, engine, items)
        flops, tokens = model_flops(model.module, items, model.tokenizer)
        picks = np.array([int(np.argmax(s[:, 0])) for s in scores])
        norm = np.array([int(np.argmax(s[:, 0] / [max(len(c) - 1, 1) for c in i.continuations]))
                         for s, i in zip(scores, items)])
        t = getattr(torch, dtype)
        results[dtype] = {"seconds": seconds, "flops": flops, "tokens": tokens, "picks": picks,
                          "acc": float((picks == gold).mean()), "acc_norm": float((norm == gold).mean()),
                          "mlp_rate": matmul_rate(t, 2048, 576, 1536), "cube_rate": matmul_rate(t, 2048, 2048, 2048)}
    kl = engine.token_divergence(models["bfloat16"], models["float32"], texts, max_tokens=512) if texts else None
    print("\n| dtype | seconds | tokens/s | model GFLOP/s | matmul GFLOP/s (MLP shape / 2048 cube) | engine / MLP matmul "
          "| acc | acc_norm | answers changed vs float32 | KL vs float32 | top-1 vs float32 |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    ok = True
    for dtype, r in results.items():
        rate = r["flops"] / r["seconds"] / 1e9
        share = rate / r["mlp_rate"]
        changed = int((r["picks"] != results["float32"]["picks"]).sum())
        kls = (f"{np.concatenate([k[:, 2] for k in kl]).mean():.5f} | {np.concatenate([k[:, 3] for k in kl]).mean():.3f}"
               if dtype == "bfloat16" and kl else "- | -")
        print(f"| {dtype} | {r['seconds']:.2f} | {r['tokens'] / r['seconds']:.0f} | {rate:.1f} | {r['mlp_rate']:.1f} / {r['cube_rate']:.1f} | {share:.0%} | "
              f"{r['acc']:.3f} | {r['acc_norm']:.3f} | {changed} of {len(items)} | {kls} |")
        if dtype == "float32":
            ok = share >= 0.5
    speedup = results["float32"]["seconds"] / results["bfloat16"]["seconds"]
    print(f"\nbfloat16 scores these items {speedup:.2f}x as fast as float32 on this CPU")
    if args.check:
        print("check:", "ok" if ok else "FAILED (float32 engine under 50% of the matmul rate)")
    return 0 if ok or not args.check else 1


if __name__ == "__main__":
    sys.exit(main())
