"""Peak memory and scoring time of an audit at three model sizes, against a revision of audit that holds both
models at once (the before), in one run.

    python benchmarks/memory_bench.py [--sizes 135m,500m,1.1b] [--before REV] [--items 50] [--check]

For each size, a Llama with random weights (SmolLM2-135M's, a 0.5B and TinyLlama-1.1B's shapes, SmolLM2's
tokenizer) is written in bfloat16 twice, with two seeds: the model and its "baseline". Then
``audit check MODEL --baseline BASE -b arc_easy --limit N --probes accuracy,perplexity`` runs in a fresh
process under ``/usr/bin/time``: N ARC-Easy items scored by both models and the per-token KL on the suite's
WikiText-2 text (4 articles x 512 tokens), the KL needing both models' whole next-token distributions. Reported
per size: the weights' bytes, the process's peak resident memory and its ratio to one model's weights, seconds
per 1,000 tokens scored (the report's engine_stats), and the same for ``--before`` (a git revision, checked
out in a temporary worktree and run from there; default: none). --check exits 1 unless every size's peak is
at most 1.3 x one model's weights + 1 GB and the seconds per 1,000 tokens per parameter stay within 20% of
their mean across sizes.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# name -> LlamaConfig shape (hidden, layers, heads, kv heads, MLP, tied embeddings)
SIZES = {
    "135m": dict(hidden_size=576, num_hidden_layers=30, num_attention_heads=9, num_key_value_heads=3,
                 intermediate_size=1536, tie_word_embeddings=True),  # SmolLM2-135M
    "500m": dict(hidden_size=1024, num_hidden_layers=32, num_attention_heads=16, num_key_value_heads=4,
                 intermediate_size=3584, tie_word_embeddings=True),  # 0.49B
    "1.1b": dict(hidden_size=2048, num_hidden_layers=22, num_attention_heads=32, num_key_value_heads=4,
                 intermediate_size=5632, tie_word_embeddings=False),  # TinyLlama-1.1B
}


def build(shape: dict, tokenizer_dir: Path, out: Path, seed: int) -> int:
    """A random-weight Llama of ``shape`` in bfloat16 with SmolLM2's tokenizer; returns its parameter count."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    config = LlamaConfig(vocab_size=len(tokenizer), max_position_embeddings=2048, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, dtype="bfloat16", **shape)
    torch.manual_seed(seed)
    with torch.device("meta"):
        model = LlamaForCausalLM(config)
    model = model.to_empty(device="cpu").to(torch.bfloat16)
    model.tie_weights()  # to_empty made new tensors: tie the head to the embeddings again where the shape says so
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.02)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return sum(p.numel() for p in model.parameters())


def audit(source: Path, model: Path, base: Path, items: int, out: Path) -> dict:
    """One audit in a fresh process: its peak RSS (bytes) and the report's engine statistics."""
    env = {**os.environ, "PYTHONPATH": str(source), "AUDIT_CACHE_DIR": str(out / "cache")}
    cli = "import sys; from audit.cli import main; sys.argv[0] = 'audit'; main()"  # the audit package under source
    cmd = ["/usr/bin/time", "-f", "%M", sys.executable, "-c", cli, "check", str(model), "--baseline", str(base),
           "-b", "arc_easy", "--limit", str(items), "--probes", "accuracy,perplexity", "--out", str(out / "report")]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=out)
    if done.returncode not in (0, 1):
        raise SystemExit(f"audit failed ({done.returncode}):\n{done.stderr[-3000:]}")
    report = json.loads((out / "report" / "report.json").read_text())
    stats = report["engine_stats"]
    return {"peak_rss": int(done.stderr.strip().splitlines()[-1]) * 1024, "tokens": stats["tokens"],
            "seconds": stats["seconds"], "kl": report["probes"]["perplexity"]["metrics"]["kl_mean"]["value"]}


def worktree(rev: str, where: Path) -> Path:
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(where), rev], check=True,
                   capture_output=True)
    return where


def main() -> int:
    from audit.demo_lm import lm_models

    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default=",".join(SIZES))
    ap.add_argument("--before", default=None, help="a git revision to measure the same way (e.g. one that held both "
                                                   "models at once)")
    ap.add_argument("--items", type=int, default=50)
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args()

    tokenizer_dir = lm_models(print)[0]  # SmolLM2-135M's tokenizer, from the LM demo's baseline
    rows, ok = [], True
    with tempfile.TemporaryDirectory(prefix="audit-memory-bench-") as tmp:
        tmp = Path(tmp)
        sources = {"this": ROOT} | ({f"before ({args.before})": worktree(args.before, tmp / "before")}
                                    if args.before else {})
        try:
            for size in args.sizes.split(","):
                model, base = tmp / f"{size}-a", tmp / f"{size}-b"
                params = build(SIZES[size], tokenizer_dir, model, 0)
                build(SIZES[size], tokenizer_dir, base, 1)
                weights = 2 * params  # bfloat16
                tokens = None  # the same work for every revision, counted as this one counts it (f2a9f93 left one
                for label, source in sources.items():  # of the KL's two passes out of its engine_stats.tokens)
                    out = tmp / f"{size}-{label.split()[0]}"
                    out.mkdir()
                    got = audit(source, model, base, args.items, out)
                    tokens = tokens or got["tokens"]
                    rows.append({"size": size, "code": label, "params": params, "weight_bytes": weights, **got,
                                 "peak_over_weights": got["peak_rss"] / weights,
                                 "s_per_1k_tokens": 1000 * got["seconds"] / tokens})
                    print(json.dumps(rows[-1]), flush=True)
                for path in (model, base):
                    subprocess.run(["rm", "-rf", str(path)], check=True)
        finally:
            if args.before:
                subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tmp / "before")],
                               capture_output=True)
    print("\n| size | params | weights (bf16) | code | peak RSS | peak / weights | goal (1.3 x weights + 1 GB) "
          "| seconds | s per 1k tokens | s per 1k tokens per 1B params | KL mean |")
    print("|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        goal = 1.3 * r["weight_bytes"] + 1e9
        print(f"| {r['size']} | {r['params'] / 1e6:.0f}M | {r['weight_bytes'] / 1e9:.2f} GB | {r['code']} | "
              f"{r['peak_rss'] / 1e9:.2f} GB | {r['peak_over_weights']:.2f} | {goal / 1e9:.2f} GB "
              f"{'met' if r['peak_rss'] <= goal else 'MISSED'} | {r['seconds']:.1f} | {r['s_per_1k_tokens']:.2f} | "
              f"{r['s_per_1k_tokens'] / (r['params'] / 1e9):.2f} | {r['kl']:.4f} |")
    mine = [r for r in rows if r["code"] == "this"]
    per_param = [r["s_per_1k_tokens"] / r["params"] for r in mine]
    mean = sum(per_param) / len(per_param)
    spread = max(abs(p / mean - 1) for p in per_param)
    print(f"\nseconds per 1k tokens per parameter: within {spread:.0%} of their mean across sizes (goal: 20%)")
    if args.check:
        ok = all(r["peak_rss"] <= 1.3 * r["weight_bytes"] + 1e9 for r in mine) and spread <= 0.20
        print("check:", "ok" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
