"""The one batched evaluation engine every probe scores through, for every model kind.

Work per call: drop inputs already cached or repeated, tokenize the rest without padding, sort by
length, cut batches by a padded-token budget (so short inputs share big batches and long ones small
ones), pad each batch only to its own longest row, and run under ``torch.inference_mode`` (with
autocast on CUDA); every batch's logits are checked for NaN/inf. Results go to the on-disk cache.

Three things are scored: class probabilities (classifiers), continuation log-likelihoods with each
request's context encoded once (causal LMs; audit/causal_lm.py packs them), and per-token
log-likelihoods of running text, alone or next to a reference model's (KL divergence, top-1 agreement).
"""

from __future__ import annotations

import inspect
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from audit import causal_lm
from audit.cache import PredictionCache
from audit.causal_lm import Continuations
from audit.errors import AuditError, ModelError
from audit.models import CAUSAL_LM, CLASSIFIER, ENGINE_MAX_LENGTH, Alignment, LoadedModel


# Measured on a 2-core CPU (benchmarks/engine_bench.py): small batches keep activations in cache,
# 64 rows / 4096 tokens ran SST-2 ~1.8x faster than 512 / 16384. GPUs want large batches. A causal
# LM's logits are rows x tokens x vocabulary (49k for SmolLM2), so its budget is smaller.
DEFAULT_BATCHING = {("cpu", CLASSIFIER): (64, 4096), ("cuda", CLASSIFIER): (256, 65536),
                    ("cpu", CAUSAL_LM): (16, 2048), ("cuda", CAUSAL_LM): (64, 16384)}


@dataclass(frozen=True)
class EngineConfig:
    device: str = "auto"  # auto | cpu | cuda
    batch_size: int | None = None  # most sequences in one batch (default by device and model kind)
    batch_tokens: int | None = None  # most padded tokens in one batch (default by device and model kind)
    max_length: int | None = None  # the suite's truncation length; never above the model's own limit


@dataclass
class EngineStats:
    requested: int = 0
    unique: int = 0
    cached: int = 0
    computed: int = 0
    truncated: int = 0
    batches: int = 0
    tokens: int = 0  # tokens run through models (padding excluded)
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
    """Do this model's outputs for an input depend on the other inputs in its batch? Its recipe says so:
    measured, torchao's int8 with dynamic activations moved the demo MiniLM's probabilities by up to 0.03
    between two batchings of the same texts; weight-only int8 by 2e-7."""
    return bool(model.compression and model.compression.get("batch_dependent"))


def request_key(request: Continuations) -> str:
    return "continuations\0" + request.context + "\0" + "\x1f".join(request.continuations)


@dataclass
class Engine:
    config: EngineConfig = field(default_factory=EngineConfig)
    cache: PredictionCache | None = None
    stats: EngineStats = field(default_factory=EngineStats)

    def __post_init__(self):
        self.device = resolve_device(self.config.device)

    def batching(self, device=None, kind: str = CLASSIFIER) -> tuple[int, int]:
        """(rows, padded tokens) per batch: the configured values, else the device's and model kind's defaults."""
        rows, tokens = DEFAULT_BATCHING[(device or self.device).type, kind]
        return self.config.batch_size or rows, self.config.batch_tokens or tokens

    def max_length(self, model: LoadedModel) -> int:
        """The suite's truncation length (else the engine's default), clamped to what the model can take."""
        return min(self.config.max_length or ENGINE_MAX_LENGTH, model.max_length)

    def cache_key(self, model: LoadedModel) -> str:
        """Results depend on the weights, truncation length, numeric mode and batching (see batch_dependent)."""
        device = self.device
        mode = "autocast" if device.type == "cuda" else "fp"
        rows, tokens = self.batching(device, model.kind)
        return f"{model.fingerprint}:{self.max_length(model)}:{device.type}:{mode}:{rows}x{tokens}"

    # ---- what probes call -----------------------------------------------------------------------------

    def predict_proba(self, model: LoadedModel, texts: Sequence[str], desc: str = "scoring") -> np.ndarray:
        """A classifier's class probabilities (n, n_model_labels), float32, in the model's label order."""
        rows = self._cached(model, list(texts), lambda t: t, lambda todo: self._classify(model, todo, desc))
        return np.stack(rows) if rows else np.zeros((0, len(model.labels)), np.float32)

    def continuation_scores(self, model: LoadedModel, requests: Sequence[Continuations],
                            desc: str = "scoring") -> list[np.ndarray]:
        """Per request, an array (continuations, 3): summed log-likelihood (nats), whether every token was the
        model's top choice (greedy), and the number of tokens."""
        rows = self._cached(model, list(requests), request_key, lambda todo: self._continuations(model, todo, desc))
        return [r.reshape(-1, 3) for r in rows]

    def token_logprobs(self, model: LoadedModel, texts: Sequence[str], max_tokens: int | None = None,
                       desc: str = "scoring") -> list[np.ndarray]:
        """Per text, the log-likelihood of each of its tokens (its first ``max_tokens``; rolling windows of the
        engine's max length)."""
        return self._cached(model, list(texts), lambda t: f"rolling\0{max_tokens}\0{t}",
                            lambda todo: [r[0] for r in self._rolling(model, todo, None, max_tokens, desc)])

    def token_stats(self, model: LoadedModel, texts: Sequence[str], max_tokens: int | None = None,
                    desc: str = "scoring") -> list[np.ndarray]:
        """Per text, an array (tokens, 3): each token's log-likelihood, and the mean and standard deviation of
        the log-likelihood over the model's whole next-token distribution there (what Min-K%++ normalizes by)."""
        rows = self._cached(model, list(texts), lambda t: f"stats\0{max_tokens}\0{t}",
                            lambda todo: [np.stack(r, axis=1).reshape(-1)
                                          for r in self._rolling(model, todo, None, max_tokens, desc, stats=True)])
        return [r.reshape(-1, 3) for r in rows]

    def token_divergence(self, model: LoadedModel, reference: LoadedModel, texts: Sequence[str],
                         max_tokens: int | None = None, desc: str = "comparing") -> list[np.ndarray]:
        """Per text, an array (tokens, 4): the model's and the reference's log-likelihood of each token, the
        KL divergence KL(reference || model) of their next-token distributions there (nats), and whether
        their top-1 tokens agree. Both models must share a tokenizer. Not cached (it needs both models)."""
        if reference.tokenizer.get_vocab() != model.tokenizer.get_vocab():
            raise ModelError("the model and its baseline use different tokenizers, so their per-token distributions "
                             "do not compare", model.source, "compare builds of one base model")
        started = time.perf_counter()
        out = [np.stack(r, axis=1) for r in self._rolling(model, list(texts), reference, max_tokens, desc)]
        self.stats.seconds += time.perf_counter() - started
        return out

    # ---- scheduling ---------------------------------------------------------------------------------------

    def _cached(self, model: LoadedModel, inputs: list, key_of: Callable, compute: Callable) -> list[np.ndarray]:
        """Each input's result (a float32 vector), from the cache or computed once for repeated inputs."""
        started = time.perf_counter()
        keys = [key_of(x) for x in inputs]
        unique = list(dict.fromkeys(keys))
        first = {k: x for k, x in zip(keys, inputs)}
        self.stats.requested += len(inputs)
        self.stats.unique += len(unique)
        # A batch-dependent model is always scored whole, call by call: cache hits would change which inputs
        # share a batch, and so its results, with the cache's state.
        cache = self.cache if self.cache is not None and not batch_dependent(model) else None
        model_key = self.cache_key(model)
        known = cache.get_many(model_key, unique) if cache else {}
        self.stats.cached += len(known)
        todo = [k for i, k in enumerate(unique) if i not in known]
        computed = compute([first[k] for k in todo]) if todo else []
        if cache and todo:
            cache.put_many(model_key, todo, computed)
        by_key = {unique[i]: v for i, v in known.items()} | dict(zip(todo, computed))
        self.stats.seconds += time.perf_counter() - started
        return [by_key[k] for k in keys]

    def _module(self, model: LoadedModel):
        """The model on its device, with the attention implementation that suits it there."""
        device = self.device
        module = model.module.to(device)
        # Measured (benchmarks/engine_bench.py, SST-2 dev, 2-core CPU): eager attention ran ~15% faster
        # than SDPA on short sequences, same probabilities to 1e-6; on CUDA, SDPA's fused kernels win.
        if hasattr(module, "set_attn_implementation"):
            try:
                module.set_attn_implementation("eager" if device.type == "cpu" else "sdpa")
            except (ValueError, ImportError):  # the architecture supports only one implementation
                pass
        return module, device

    def _run_batches(self, model: LoadedModel, lengths: np.ndarray, build: Callable, read: Callable, desc: str,
                     reference: LoadedModel | None = None) -> None:
        """Run ``build(indices) -> model inputs`` through the model (and the reference) batch by batch, check
        the logits, and hand them to ``read(indices, logits[, reference logits])``."""
        import torch
        from tqdm.auto import tqdm

        module, device = self._module(model)
        ref_module = self._module(reference)[0] if reference is not None else None
        autocast = torch.autocast("cuda", dtype=self.compute_dtype()) if device.type == "cuda" \
            else torch.autocast("cpu", enabled=False)
        with torch.inference_mode(), autocast:
            for idx in tqdm(length_batches(lengths, *self.batching(device, model.kind)), desc=desc, unit="batch",
                            disable=None, leave=False):
                inputs = {k: v.to(device, non_blocking=True) for k, v in build(idx).items()}
                outputs = [self._logits(m, src, inputs) for m, src in ((module, model), (ref_module, reference)) if m]
                read(idx, *outputs)
                self.stats.batches += 1
                self.stats.tokens += int(lengths[idx].sum())
        self.stats.computed += len(lengths)

    def compute_dtype(self, model: LoadedModel | None = None):
        """What attention runs in: autocast's half precision on CUDA, else the model's own dtype."""
        import torch

        if self.device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return next(model.module.parameters()).dtype if model is not None else torch.float32

    @staticmethod
    def _logits(module, model: LoadedModel, inputs: dict):
        import torch

        logits = module(**inputs).logits.float()
        finite = torch.isfinite(logits).reshape(logits.shape[0], -1).all(dim=1)
        if not bool(finite.all()):
            raise ModelError(f"the model produced non-finite logits (NaN or inf) for {int((~finite).sum())} of "
                             f"{len(finite)} inputs", model.source,
                             "check the weights (a broken conversion, pruning or half-precision overflow)")
        return logits

    # ---- one batch builder per model kind ------------------------------------------------------------------

    def _classify(self, model: LoadedModel, texts: list[str], desc: str) -> list[np.ndarray]:
        import torch

        max_length = self.max_length(model)
        enc = model.tokenizer(texts, truncation=True, max_length=max_length, padding=False)
        fields = [k for k in ("input_ids", "token_type_ids", "attention_mask") if k in enc]
        lengths = np.fromiter((len(x) for x in enc["input_ids"]), dtype=np.int64, count=len(texts))
        self.stats.truncated += int((lengths >= max_length).sum())
        pad = {"input_ids": model.tokenizer.pad_token_id or 0}
        out = np.zeros((len(texts), len(model.labels)), dtype=np.float32)

        def build(idx):
            width = int(lengths[idx[0]])
            batch = {}
            for name in fields:
                arr = np.full((len(idx), width), pad.get(name, 0), dtype=np.int64)
                for row, i in enumerate(idx):
                    arr[row, :len(enc[name][i])] = enc[name][i]
                batch[name] = torch.from_numpy(arr)
            return batch

        def read(idx, logits):
            out[idx] = torch.softmax(logits, dim=-1).cpu().numpy()

        self._run_batches(model, lengths, build, read, desc)
        return list(out)

    def _continuations(self, model: LoadedModel, requests: list[Continuations], desc: str) -> list[np.ndarray]:
        import torch

        prefix = causal_lm.prefix_token(model.tokenizer)
        packed = [causal_lm.encode(model.tokenizer, r, self.max_length(model), prefix) for r in requests]
        self.stats.truncated += sum(p.truncated for p in packed)
        lengths = np.array([len(p.ids) for p in packed], dtype=np.int64)
        out = [np.zeros((len(p.spans), 3), dtype=np.float32) for p in packed]
        dtype = self.compute_dtype(model)  # an additive mask must match the attention scores' dtype
        where = [causal_lm.predicting_positions(p) for p in packed]
        # Only the positions that predict a continuation token need the LM head (a vocabulary-wide projection,
        # a fifth of SmolLM2's compute); transformers' logits_to_keep takes the batch's union of them.
        trim = "logits_to_keep" in inspect.signature(model.module.forward).parameters
        keep = lambda idx: torch.tensor(sorted({at for i in idx for _, at, _ in where[i]}))

        def build(idx):
            ids, mask, pos = causal_lm.batch_tensors([packed[i] for i in idx], prefix, dtype)
            return {"input_ids": ids, "attention_mask": mask, "position_ids": pos} | (
                {"logits_to_keep": keep(idx)} if trim else {})

        def read(idx, logits):
            column = keep(idx) if trim else torch.arange(logits.shape[1])
            for row, i in enumerate(idx):
                k, at, token = (torch.tensor(c) for c in zip(*where[i]))
                logprobs = torch.log_softmax(logits[row, torch.searchsorted(column, at)], dim=-1)
                chosen = logprobs[torch.arange(len(token)), token].double().cpu()
                greedy = (logprobs.argmax(dim=-1).cpu() == token)
                for c in range(len(packed[i].spans)):
                    mine = k == c
                    out[i][c] = (float(chosen[mine].sum()), float(greedy[mine].all()), float(mine.sum()))

        self._run_batches(model, lengths, build, read, desc)
        return [o.reshape(-1) for o in out]

    def _rolling(self, model: LoadedModel, texts: list[str], reference: LoadedModel | None, max_tokens: int | None,
                 desc: str, stats: bool = False) -> list[list[np.ndarray]]:
        """Per text: [token log-likelihoods] alone, [log-likelihoods, mean, std of the distribution's log-likelihood]
        with ``stats``, or [model's, reference's, KL, top-1 agreement] with a reference."""
        import torch

        prefix = causal_lm.prefix_token(model.tokenizer)
        windows = [(t, w) for t, text in enumerate(texts)
                   for w in causal_lm.rolling_windows(model.tokenizer(text)["input_ids"][:max_tokens],
                                                      self.max_length(model), prefix)]
        lengths = np.array([len(w[0]) for _, w in windows], dtype=np.int64)
        parts: list[list] = [[] for _ in windows]

        def build(idx):
            width = int(lengths[idx[0]])
            ids = torch.full((len(idx), width), prefix, dtype=torch.long)
            mask = torch.zeros((len(idx), width), dtype=torch.long)
            for row, i in enumerate(idx):
                ids[row, :lengths[i]] = torch.tensor(windows[i][1][0])
                mask[row, :lengths[i]] = 1
            return {"input_ids": ids, "attention_mask": mask}

        def read(idx, logits, ref_logits=None):
            for row, i in enumerate(idx):
                inputs, targets = windows[i][1]
                at, target = torch.arange(len(inputs)), torch.tensor(targets)
                lp = torch.log_softmax(logits[row, :len(inputs)], dim=-1)
                if stats:
                    p = lp.exp()
                    mu = (p * lp).sum(dim=-1)
                    sigma = ((p * lp.square()).sum(dim=-1) - mu.square()).clamp_min(1e-12).sqrt()
                    parts[i] = [x.double().cpu().numpy() for x in (lp[at, target], mu, sigma)]
                    continue
                if ref_logits is None:
                    parts[i] = [lp[at, target].double().cpu().numpy()]
                    continue
                ref = torch.log_softmax(ref_logits[row, :len(inputs)], dim=-1)
                kl = (ref.exp() * (ref - lp)).sum(dim=-1)
                agree = (ref.argmax(dim=-1) == lp.argmax(dim=-1)).float()
                parts[i] = [x.double().cpu().numpy() for x in (lp[at, target], ref[at, target], kl, agree)]

        self._run_batches(model, lengths, build, read, desc, reference)
        per_text: list[list[list[np.ndarray]]] = [[] for _ in texts]
        for (t, _), part in zip(windows, parts):
            per_text[t].append(part)
        return [[np.concatenate([p[j] for p in chunks]).astype(np.float32) for j in range(len(chunks[0]))]
                if chunks else [np.zeros(0, np.float32)] * (4 if reference else 3 if stats else 1) for chunks in per_text]


@dataclass
class Scorer:
    """One model seen through the suite: what probes call. ``proba`` gives, for each input, a distribution over
    the suite's labels: a classifier's classes (aligned to the suite's labels), or a causal LM's choices of a
    multiple-choice item (softmax of the choices' log-likelihoods, zero for positions an item does not have)."""

    engine: Engine
    model: LoadedModel
    alignment: Alignment
    role: str = "model"  # "model" or "baseline"
    n_labels: int = 0  # the suite's label count (choice positions, for multiple choice)
    target_delimiter: str = " "

    def describe(self) -> dict:
        limit = self.engine.max_length(self.model)
        return {**self.model.describe(), **self.alignment.describe(), "max_length": limit,
                "max_length_limit": self.model.max_length_limit if limit == self.model.max_length else
                "suite max_length" if self.engine.config.max_length else "engine default"}

    @property
    def is_lm(self) -> bool:
        return self.model.kind == CAUSAL_LM

    def proba(self, inputs: Sequence) -> np.ndarray:
        if self.is_lm:
            return self._choice_proba(inputs, normalize=False)
        probs = self.engine.predict_proba(self.model, inputs, desc=f"scoring {self.role}") @ self.alignment.matrix
        return probs / np.maximum(probs.sum(axis=1, keepdims=True), np.finfo(np.float32).tiny)

    def predict(self, inputs: Sequence) -> np.ndarray:
        return self.proba(inputs).argmax(axis=1)

    def predict_norm(self, items: Sequence[Continuations]) -> np.ndarray:
        """Choices by log-likelihood per character of the choice (lm-eval's acc_norm)."""
        return self._choice_proba(items, normalize=True).argmax(axis=1)

    def continuation_scores(self, items: Sequence[Continuations]) -> list[np.ndarray]:
        return self.engine.continuation_scores(self.model, items, desc=f"scoring {self.role}")

    def _choice_proba(self, items: Sequence[Continuations], normalize: bool) -> np.ndarray:
        out = np.zeros((len(items), self.n_labels), dtype=np.float64)
        for i, (item, scores) in enumerate(zip(items, self.continuation_scores(items))):
            ll = scores[:, 0].astype(np.float64)
            if normalize:
                ll = ll / np.array([max(len(c) - len(self.target_delimiter), 1) for c in item.continuations])
            p = np.exp(ll - ll.max())
            out[i, :len(p)] = p / p.sum()
        return out

    def truncated(self, inputs: Sequence) -> np.ndarray:
        """Which inputs the engine cuts to fit its max length in this model's tokens: a text longer than it, or a
        causal LM's request whose context loses tokens (tokenization only, nothing is scored)."""
        limit = self.engine.max_length(self.model)
        tokenizer = self.model.tokenizer
        if not self.is_lm:
            ids = tokenizer(list(inputs), truncation=False, padding=False)["input_ids"]
            return np.array([len(x) > limit for x in ids], dtype=bool)
        prefix = causal_lm.prefix_token(tokenizer)
        return np.array([causal_lm.encode(tokenizer, r, limit, prefix).truncated for r in inputs], dtype=bool)
