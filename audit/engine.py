"""The one batched evaluation engine every probe scores text through.

Work per call: drop texts already cached or repeated, tokenize the rest in one fast-tokenizer
call without padding, sort by length, cut batches by a token budget (so short sentences share
big batches and long reviews small ones), pad each batch only to its own longest row, and run
under ``torch.inference_mode`` (with autocast on CUDA). Results go to the on-disk cache.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from audit.cache import PredictionCache
from audit.errors import AuditError, ModelError
from audit.models import Alignment, LoadedModel


# Measured on a 2-core CPU (benchmarks/engine_bench.py): small batches keep activations in cache,
# 64 rows / 4096 tokens ran SST-2 ~1.8x faster than 512 / 16384. GPUs want large batches.
DEFAULT_BATCHING = {"cpu": (64, 4096), "cuda": (256, 65536)}


@dataclass(frozen=True)
class EngineConfig:
    device: str = "auto"  # auto | cpu | cuda
    batch_size: int | None = None  # most sequences in one batch (default by device)
    batch_tokens: int | None = None  # most padded tokens in one batch (default by device)
    max_length: int | None = None  # the suite's truncation length; never above the model's own limit


@dataclass
class EngineStats:
    requested: int = 0
    unique: int = 0
    cached: int = 0
    computed: int = 0
    truncated: int = 0
    batches: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def resolve_device(requested: str):
    import torch

    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested == "cuda" and not torch.cuda.is_available():
        raise AuditError("CUDA was requested but torch sees no GPU", "--device", "use --device cpu or auto")
    if requested not in ("cpu", "cuda"):
        raise AuditError(f"unknown device '{requested}'", "--device", "use auto, cpu or cuda")
    return torch.device(requested)


def length_batches(lengths: np.ndarray, batch_size: int, batch_tokens: int) -> list[np.ndarray]:
    """Indices grouped into batches, longest first, each within both the row and padded-token budget."""
    order = np.argsort(-lengths, kind="stable")
    batches, start = [], 0
    while start < len(order):
        longest = max(int(lengths[order[start]]), 1)
        rows = max(1, min(batch_size, batch_tokens // longest))
        batches.append(order[start:start + rows])
        start += rows
    return batches


def batch_dependent(model: LoadedModel) -> bool:
    """Do this model's outputs for a text depend on the other texts in its batch (dynamic int8)?"""
    return bool(model.compression and model.compression.get("method") == "int8")


@dataclass
class Engine:
    config: EngineConfig = field(default_factory=EngineConfig)
    cache: PredictionCache | None = None
    stats: EngineStats = field(default_factory=EngineStats)

    def __post_init__(self):
        self.device = resolve_device(self.config.device)

    def device_for(self, model: LoadedModel):
        """int8 dynamic quantization runs on CPU only, whatever the engine's device."""
        import torch

        if model.compression and model.compression.get("cpu_only"):
            return torch.device("cpu")
        return self.device

    def batching(self, device=None) -> tuple[int, int]:
        """(rows, padded tokens) per batch: the configured values, else the device's defaults."""
        rows, tokens = DEFAULT_BATCHING[(device or self.device).type]
        return self.config.batch_size or rows, self.config.batch_tokens or tokens

    def max_length(self, model: LoadedModel) -> int:
        """The suite's truncation length, clamped to what the model's positions and tokenizer allow."""
        return min(self.config.max_length, model.max_length) if self.config.max_length else model.max_length

    def cache_key(self, model: LoadedModel) -> str:
        """Predictions depend on the weights, truncation length, numeric mode and batching.

        Batching matters for int8: dynamic quantization scales activations per batch tensor, so
        the demo's int8 MiniLM scored 83.6% SST-2 dev at batch size 1 and 81.8% at 64.
        """
        device = self.device_for(model)
        mode = "autocast" if device.type == "cuda" else "fp"
        rows, tokens = self.batching(device)
        return f"{model.fingerprint}:{self.max_length(model)}:{device.type}:{mode}:{rows}x{tokens}"

    def predict_proba(self, model: LoadedModel, texts: Sequence[str], desc: str = "scoring") -> np.ndarray:
        """Class probabilities (n, n_model_labels), float32, in the model's label order."""
        t0 = time.perf_counter()
        unique = list(dict.fromkeys(texts))
        self.stats.requested += len(texts)
        self.stats.unique += len(unique)
        key = self.cache_key(model)
        # Dynamic int8 scales activations per batch, so a text's probabilities depend on its batch-mates.
        # Cache hits would change which texts share a batch (and so the results) with the cache's state;
        # such a model is always scored whole, call by call, which makes its results reproducible.
        cache = self.cache if self.cache is not None and not batch_dependent(model) else None
        known = cache.get_many(key, unique) if cache else {}
        self.stats.cached += len(known)
        todo = [t for i, t in enumerate(unique) if i not in known]
        computed = self._run(model, todo, desc) if todo else np.zeros((0, len(model.labels)), np.float32)
        if cache and todo:
            cache.put_many(key, todo, computed)
        by_text = {unique[i]: p for i, p in known.items()}
        by_text.update(zip(todo, computed))
        self.stats.seconds += time.perf_counter() - t0
        return np.stack([by_text[t] for t in texts]) if texts else computed

    def _run(self, model: LoadedModel, texts: list[str], desc: str) -> np.ndarray:
        import torch
        from tqdm.auto import tqdm

        device = self.device_for(model)
        module = model.module.to(device)
        # Measured (benchmarks/engine_bench.py, SST-2 dev, 2-core CPU): eager attention ran ~15% faster
        # than SDPA on short sequences, same probabilities to 1e-6; on CUDA, SDPA's fused kernels win.
        if hasattr(module, "set_attn_implementation"):
            try:
                module.set_attn_implementation("eager" if device.type == "cpu" else "sdpa")
            except (ValueError, ImportError):  # the architecture supports only one implementation
                pass
        max_length = self.max_length(model)
        enc = model.tokenizer(texts, truncation=True, max_length=max_length, padding=False)
        fields = [k for k in ("input_ids", "token_type_ids", "attention_mask") if k in enc]
        lengths = np.fromiter((len(x) for x in enc["input_ids"]), dtype=np.int64, count=len(texts))
        self.stats.truncated += int((lengths >= max_length).sum())
        pad = {"input_ids": model.tokenizer.pad_token_id or 0}
        out = np.zeros((len(texts), len(model.labels)), dtype=np.float32)
        batches = length_batches(lengths, *self.batching(device))
        autocast = torch.autocast("cuda", dtype=torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16) \
            if device.type == "cuda" else torch.autocast("cpu", enabled=False)
        with torch.inference_mode(), autocast:
            for idx in tqdm(batches, desc=desc, unit="batch", disable=None, leave=False):
                width = int(lengths[idx[0]])
                batch = {}
                for name in fields:
                    arr = np.full((len(idx), width), pad.get(name, 0), dtype=np.int64)
                    for row, i in enumerate(idx):
                        seq = enc[name][i]
                        arr[row, :len(seq)] = seq
                    batch[name] = torch.from_numpy(arr).to(device, non_blocking=True)
                logits = module(**batch).logits.float()
                finite = torch.isfinite(logits).all(dim=1)
                if not bool(finite.all()):
                    raise ModelError(f"the model produced non-finite logits (NaN or inf) for {int((~finite).sum())} of "
                                     f"{len(idx)} inputs", model.source,
                                     "check the weights (a broken conversion, pruning or half-precision overflow)")
                out[idx] = torch.softmax(logits, dim=-1).cpu().numpy()
                self.stats.batches += 1
        self.stats.computed += len(texts)
        return out


@dataclass
class Scorer:
    """One model seen through the suite's label order: what probes call."""

    engine: Engine
    model: LoadedModel
    alignment: Alignment
    role: str = "model"  # "model" or "baseline"

    def describe(self) -> dict:
        limit = self.engine.max_length(self.model)
        return {**self.model.describe(), **self.alignment.describe(), "max_length": limit,
                "max_length_limit": "suite max_length" if limit == self.engine.config.max_length
                and limit < self.model.max_length else self.model.max_length_limit}

    def proba(self, texts: Sequence[str]) -> np.ndarray:
        """Probabilities over the suite's labels; a dropped model class's share is renormalised away."""
        probs = self.engine.predict_proba(self.model, texts, desc=f"scoring {self.role}") @ self.alignment.matrix
        return probs / np.maximum(probs.sum(axis=1, keepdims=True), np.finfo(np.float32).tiny)

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        return self.proba(texts).argmax(axis=1)

    def n_truncated(self, texts: Sequence[str]) -> int:
        """How many texts are longer than the engine's max length in this model's tokens (and so truncated)."""
        limit = self.engine.max_length(self.model)
        ids = self.model.tokenizer(list(texts), truncation=False, padding=False)["input_ids"]
        return sum(len(x) > limit for x in ids)
