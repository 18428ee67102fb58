"""Planted contamination, the membership probe's positive control: a copy of a causal LM fine-tuned on a
benchmark's items written out in their canonical order, as a training corpus that swallowed the
benchmark file would hold them. A membership test must find what was planted here and nothing in the
untouched model (benchmarks/membership_bench.py; tests/test_membership.py).
"""

from __future__ import annotations

from pathlib import Path

from audit.compress import savable
from audit.files import new_directory
from audit.models import load_model


def plant(model_dir: str | Path, texts: list[str], out: Path, *, epochs: int, lr: float, seed: int,
          separator: str = "\n", window: int = 512, log=lambda msg: None) -> list[float]:
    """Fine-tune a copy of ``model_dir`` for ``epochs`` passes over ``separator.join(texts)`` (windows of
    ``window`` tokens, AdamW, seeded) and save it to ``out``; returns the mean loss of each epoch."""
    import torch

    from audit.causal_lm import prefix_token

    torch.manual_seed(seed)
    model = load_model(str(model_dir))
    module, tokenizer = savable(model.module), model.tokenizer
    ids = [prefix_token(tokenizer)] + tokenizer(separator.join(texts))["input_ids"]
    windows = [torch.tensor(ids[i:i + window + 1]) for i in range(0, len(ids) - 1, window)]
    optimizer = torch.optim.AdamW(module.parameters(), lr=lr, weight_decay=0.0)
    module.train()
    losses = []
    for epoch in range(epochs):
        total = 0.0
        for w in windows:
            loss = module(input_ids=w[None], labels=w[None]).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            total += loss.item()
        losses.append(total / len(windows))
        log(f"epoch {epoch + 1}/{epochs}: loss {losses[-1]:.3f}")
    module.eval()
    with new_directory(out) as tmp:
        module.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
    return losses
