"""What keeping the baseline's log-probabilities on disk as float16 (audit/spill.py) does to the per-token KL.

    python benchmarks/spill_bench.py

The LM demo's baseline (SmolLM2-135M, float32) against its three demo builds, on the arc_easy suite's WikiText-2
text (4 articles x 512 tokens, the perplexity probe's sample): the engine's token_divergence run twice, once
storing the baseline's rows as float16 (what audit does) and once as float32 (exact). Reported per build: both
KL means and 99th percentiles, the largest per-token difference, and how many top-1 agreements changed.
"""

from __future__ import annotations

import sys

import numpy as np


def divergence(engine, model, base, texts, stored) -> np.ndarray:
    import torch

    from audit import spill

    spill.STORED = stored
    spill._torch_dtype = lambda: {np.float16: torch.float16, np.float32: torch.float32}[stored]
    return np.concatenate(engine.token_divergence(model, base, texts, max_tokens=512))


def main() -> int:
    from audit import suite as suite_mod
    from audit.data import read_suite_data
    from audit.demo_lm import lm_models
    from audit.engine import Engine, EngineConfig
    from audit.models import load_model

    baseline, builds = lm_models(print)
    suite = suite_mod.load("arc_easy")
    texts = read_suite_data(suite)["wikitext2"].sample(4, 0).texts
    engine = Engine(EngineConfig(device="cpu", max_length=suite.max_length))
    base = load_model(str(baseline))
    print("| build | KL mean, float16 / float32 rows | KL p99, float16 / float32 | largest per-token difference "
          "| top-1 agreements changed |")
    print("|---|---|---|---:|---:|")
    for method, path in builds.items():
        model = load_model(str(path))
        half, full = (divergence(engine, model, base, texts, s) for s in (np.float16, np.float32))
        print(f"| {method} | {half[:, 2].mean():.5f} / {full[:, 2].mean():.5f} | "
              f"{np.percentile(half[:, 2], 99):.4f} / {np.percentile(full[:, 2], 99):.4f} | "
              f"{np.abs(half[:, 2] - full[:, 2]).max():.5f} | {int((half[:, 3] != full[:, 3]).sum())} of {len(half)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
