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

import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from audit import causal_lm, decoding, generation, head, rolling, spill
from audit.cache import PredictionCache
from audit.causal_lm import ChoiceContexts, Continuations
from audit.generation import GenerationSpec
from audit.errors import AuditError, ModelError
from audit.models import CAUSAL_LM, CLASSIFIER, ENGINE_MAX_LENGTH, LoadedModel


# Measured on a 2-core CPU (benchmarks/engine_bench.py): small batches keep activations in cache,
# 64 rows / 4096 tokens ran SST-2 ~1.8x faster than 512 / 16384. GPUs want large batches. A causal
# LM's logits are rows x tokens x vocabulary (49k for SmolLM2), so its budget is smaller.
DEFAULT_BATCHING = {("cpu", CLASSIFIER): (64, 4096), ("cuda", CLASSIFIER): (256, 65536),
                    ("cpu", CAUSAL_LM): (16, 2048), ("cuda", CAUSAL_LM): (64, 16384)}
# Generation's prefill keeps one position's logits per row, and decoding reads the weights once per step for
# every row: measured on SmolLM2-135M (2 CPU cores, 800-token prompts), 16 / 32 / 64 rows decode 85 / 99 / 117
# tokens/s (batch 1: 16), so 32 rows, and prompts cut by tokens after their shared prefix.
GENERATION_BATCHING = {"cpu": (32, 8192), "cuda": (128, 65536)}
LOGIT_BUDGET = 64 << 20  # kept logits (rows x positions x vocabulary floats) per model in one batch: 256 MB


GATHER = "_gather"  # a batch builder's key for the positions (head.Positions) whose next-token scores it needs


@dataclass(frozen=True)
class EngineConfig:
    device: str = "auto"  # auto | cpu | cuda
    batch_size: int | None = None  # most sequences in one batch (default by device and model kind)
    batch_tokens: int | None = None  # most padded tokens in one batch (default by device and model kind)
    max_length: int | None = None  # the suite's truncation length; never above the model's own limit
    prefix_reuse: bool = True  # generation: encode the prompts' shared prefix once (off only to measure it)


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
    prefix_tokens: int = 0  # generation: shared prompt tokens encoded once instead of once per prompt
    generated_tokens: int = 0
    model_loads: int = 0  # one model in memory at a time (audit/residency.py): each model's loads, the first included

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


def request_key(request: Continuations | ChoiceContexts) -> str:
    if isinstance(request, ChoiceContexts):
        return "contexts\0" + request.prefix + "\0" + "\x1f".join(request.contexts) + "\0" + request.continuation
    return "continuations\0" + request.context + "\0" + "\x1f".join(request.continuations)


@dataclass
class Engine:
    config: EngineConfig = field(default_factory=EngineConfig)
    cache: PredictionCache | None = None
    stats: EngineStats = field(default_factory=EngineStats)
    _plain_head: dict = field(default_factory=dict, repr=False)  # model fingerprint -> are its logits its head's output

    def __post_init__(self):
        self.device = resolve_device(self.config.device)

    def batching(self, device=None, kind: str = CLASSIFIER) -> tuple[int, int]:
        """(rows, padded tokens) per batch: the configured values, else the device's and model kind's defaults."""
        rows, tokens = DEFAULT_BATCHING[(device or self.device).type, kind]
        return self.config.batch_size or rows, self.config.batch_tokens or tokens

    def generation_batching(self) -> tuple[int, int]:
        """(rows, prompt tokens after the shared prefix) per generation batch: configured, else by device."""
        rows, tokens = GENERATION_BATCHING[self.device.type]
        return self.config.batch_size or rows, self.config.batch_tokens or tokens

    def max_length(self, model: LoadedModel) -> int:
        """The suite's truncation length (else the engine's default), clamped to what the model can take."""
        return min(self.config.max_length or ENGINE_MAX_LENGTH, model.max_length)

    def cache_key(self, model: LoadedModel) -> str:
        """Results depend on the weights and their dtype, truncation length, numeric mode and batching (see
        batch_dependent)."""
        device = self.device
        mode = "autocast" if device.type == "cuda" else "fp"
        rows, tokens = self.batching(device, model.kind)
        return f"{model.fingerprint}:{model.dtype}:{self.max_length(model)}:{device.type}:{mode}:{rows}x{tokens}"

    # ---- what probes call -----------------------------------------------------------------------------

    def predict_proba(self, model: LoadedModel, texts: Sequence[str], desc: str = "scoring") -> np.ndarray:
        """A classifier's class probabilities (n, n_model_labels), float32, in the model's label order."""
        rows = self._cached(model, list(texts), lambda t: t, lambda todo: self._classify(model, todo, desc))
        return np.stack(rows) if rows else np.zeros((0, len(model.labels)), np.float32)

    def continuation_scores(self, model: LoadedModel, requests: Sequence[Continuations | ChoiceContexts],
                            desc: str = "scoring") -> list[np.ndarray]:
        """Per request, an array (continuations, 3): summed log-likelihood (nats), whether every token was the
        model's top choice (greedy), and the number of tokens. An item whose choices are contexts has one row per
        context, each scoring the one continuation."""
        rows = self._cached(model, list(requests), request_key, lambda todo: self._continuations(model, todo, desc))
        return [r.reshape(-1, 3) for r in rows]

    def token_logprobs(self, model: LoadedModel, texts: Sequence[str], max_tokens: int | None = None,
                       desc: str = "scoring") -> list[np.ndarray]:
        """Per text, the log-likelihood of each of its tokens (its first ``max_tokens``; rolling windows of the
        engine's max length)."""
        return self._cached(model, list(texts), lambda t: f"rolling\0{max_tokens}\0{t}",
                            lambda todo: [r[0] for r in self._rolling(model, todo, max_tokens, desc, rolling.Target())])

    def token_stats(self, model: LoadedModel, texts: Sequence[str], max_tokens: int | None = None,
                    desc: str = "scoring") -> list[np.ndarray]:
        """Per text, an array (tokens, 3): each token's log-likelihood, and the mean and standard deviation of
        the log-likelihood over the model's whole next-token distribution there (what Min-K%++ normalizes by)."""
        rows = self._cached(model, list(texts), lambda t: f"stats\0{max_tokens}\0{t}",
                            lambda todo: [np.stack(r, axis=1).reshape(-1)
                                          for r in self._rolling(model, todo, max_tokens, desc, rolling.Stats())])
        return [r.reshape(-1, 3) for r in rows]

    def generate(self, model: LoadedModel, prompts: Sequence[str], spec: GenerationSpec, special_tokens: bool = True,
                 desc: str = "generating") -> list[np.ndarray]:
        """Per prompt, the token ids of its greedy continuation (the end-of-sequence token excluded), stopped as
        ``spec`` says; cached per model, prompt and generation settings. ``special_tokens``: let the tokenizer
        add its own (a chat-rendered prompt holds them already)."""
        key = lambda p: f"generate\0{spec.key()}\0{int(special_tokens)}\0{p}"
        return self._cached(model, list(prompts), key, lambda todo: self._generate(model, todo, spec, special_tokens,
                                                                                     desc))

    def generation_divergence(self, model: LoadedModel, reference: LoadedModel, prompts: Sequence[str],
                              continuations: Sequence[Sequence[int]], special_tokens: bool = True,
                              desc: str = "comparing generations") -> list[np.ndarray]:
        """Per prompt, an array (tokens, 2) along the reference's own continuation, teacher-forced: the KL divergence
        KL(reference || model) of the two next-token distributions at each of its tokens (nats), and whether the
        model's top token is the reference's. Both models must share a tokenizer. The reference runs first, its
        log-probabilities kept on disk (audit/spill.py), then the model; shared prompt prefixes are encoded once
        per model. Not cached (it needs both models)."""
        import torch

        self._same_tokenizer(model, reference)
        started = time.perf_counter()
        conts = [list(map(int, c)) for c in continuations]
        room = [self.max_length(model) - max(len(c), 1) for c in conts]
        full = model.tokenizer(list(prompts), add_special_tokens=special_tokens)["input_ids"]
        ids = [x[-r:] for x, r in zip(full, room)]
        out = [np.zeros((len(c), 2), np.float32) for c in conts]
        spill.check_room(sum(map(len, conts)), reference.config.vocab_size)
        with spill.Spill() as kept:
            self._along(reference, ids, conts, kept.write)

            def compare(i, lp):
                ref = torch.from_numpy(kept.read(i))
                out[i] = np.stack([rolling.kl(ref, lp).numpy(),
                                   (lp.argmax(dim=-1) == torch.tensor(conts[i])).float().numpy()], axis=1)

            self._along(model, ids, conts, compare)
        self.stats.seconds += time.perf_counter() - started
        return out

    def _along(self, model: LoadedModel, ids: list[list[int]], conts: list[list[int]], consume: Callable) -> None:
        """Teacher-force each prompt's continuation: ``consume(i, log-probabilities)`` gets, for prompt i, the
        model's next-token log-probabilities (tokens x vocabulary) at the positions that predict its tokens."""
        import torch

        module, device = self._module(model)
        todo = [i for i, c in enumerate(conts) if c]
        rows, tokens = self.batching(device, model.kind)
        vocab = model.config.vocab_size
        pad = model.tokenizer.pad_token_id or 0
        with torch.inference_mode():
            for shared, members in generation.prefix_groups([ids[i] for i in todo]):
                members = [todo[m] for m in members]
                cache = decoding.encode_prefix(module, ids[members[0]][:shared], device)
                lengths = np.array([len(ids[i]) - shared + len(conts[i]) for i in members], dtype=np.int64)
                longest = max(len(conts[i]) for i in members) + 1
                # the kept logits are rows x positions x vocabulary: at most LOGIT_BUDGET floats
                budget_rows = max(1, min(rows, LOGIT_BUDGET // (longest * vocab)))
                for batch in length_batches(lengths, budget_rows, tokens):
                    group = [members[b] for b in batch]
                    keep = max(len(conts[i]) for i in group) + 1
                    seqs = [ids[i][shared:] + conts[i] for i in group]
                    logits = decoding.prefill(module, cache, shared, seqs, pad, keep, device)[0].float()
                    lp = torch.log_softmax(self._check_finite(logits, model), dim=-1).cpu()
                    for row, i in enumerate(group):
                        n = len(conts[i])
                        consume(i, lp[row, keep - n - 1:keep - 1])  # the positions that predict its tokens
                    self.stats.batches += 1
                    self.stats.tokens += int(sum(len(q) for q in seqs))

    def _same_tokenizer(self, model: LoadedModel, reference: LoadedModel) -> None:
        if reference.tokenizer.get_vocab() != model.tokenizer.get_vocab():
            raise ModelError("the model and its baseline use different tokenizers, so their per-token distributions "
                             "do not compare", model.source, "compare builds of one base model")

    def token_divergence(self, model: LoadedModel, reference: LoadedModel, texts: Sequence[str],
                         max_tokens: int | None = None, desc: str = "comparing") -> list[np.ndarray]:
        """Per text, an array (tokens, 4): the model's and the reference's log-likelihood of each token, the
        KL divergence KL(reference || model) of their next-token distributions there (nats), and whether
        their top-1 tokens agree. Both models must share a tokenizer. The reference runs first, its
        log-probabilities kept on disk (audit/spill.py), then the model. Not cached (it needs both models)."""
        self._same_tokenizer(model, reference)
        started = time.perf_counter()
        texts = list(texts)
        spill.check_room(sum(len(w[0]) for _, w in self._windows(reference, texts, max_tokens)),
                         reference.config.vocab_size)
        with spill.Spill() as kept:
            theirs = self._rolling(reference, texts, max_tokens, f"{desc}: baseline", rolling.Keeping(kept))
            joint = self._rolling(model, texts, max_tokens, desc, rolling.Against(kept))
        out = [np.stack([m[0], t[0], m[1], (m[2] == t[1]).astype(np.float32)], axis=1) for m, t in zip(joint, theirs)]
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
        # Measured (benchmarks/engine_bench.py, SST-2 dev, 2-core CPU): eager attention ran a classifier ~15%
        # faster than SDPA on short sequences, same probabilities to 1e-6; on CUDA, SDPA's fused kernels win. A causal
        # LM on CPU runs faster with SDPA (SmolLM2-135M, 100 items, packed masks: BoolQ 16.5 s vs 19.4 s, PIQA 7.9
        # vs 8.2, ARC-Easy 5.5 vs 5.7; 16 GSM8K 5-shot prompts: prefill 5.7 s vs 9.5 s, 32 decode steps 6.8 vs 10.5).
        if hasattr(module, "set_attn_implementation"):
            try:
                module.set_attn_implementation("eager" if device.type == "cpu" and model.kind == CLASSIFIER
                                               else "sdpa")
            except (ValueError, ImportError):  # the architecture supports only one implementation
                pass
        return module, device

    def _run_batches(self, model: LoadedModel, lengths: np.ndarray, build: Callable, read: Callable, desc: str) -> None:
        """Run ``build(indices) -> model inputs`` through the model batch by batch, check the logits, and hand
        them to ``read(indices, logits)``."""
        import torch
        from tqdm.auto import tqdm

        module, device = self._module(model)
        autocast = torch.autocast("cuda", dtype=self.compute_dtype()) if device.type == "cuda" \
            else torch.autocast("cpu", enabled=False)
        with torch.inference_mode(), autocast:
            for idx in tqdm(length_batches(lengths, *self.batching(device, model.kind)), desc=desc, unit="batch",
                            disable=None, leave=False):
                inputs = build(idx)
                gather = inputs.pop(GATHER, None)
                inputs = {k: v.to(device, non_blocking=True) for k, v in inputs.items()}
                read(idx, self._logits(module, model, inputs, gather))
                self.stats.batches += 1
                self.stats.tokens += int(lengths[idx].sum())
        self.stats.computed += len(lengths)

    def compute_dtype(self, model: LoadedModel | None = None):
        """What attention runs in: autocast's half precision on CUDA, else the model's own dtype."""
        import torch

        if self.device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return getattr(torch, model.dtype) if model is not None else torch.float32

    def _logits(self, module, model: LoadedModel, inputs: dict, gather=None):
        """The batch's logits; with ``gather`` (head.Positions), only the scores of those positions' tokens; with
        head.ALL, ``logits(row, positions)`` (each slice checked)."""
        if gather is None:
            return self._check_finite(module(**inputs).logits.float(), model)
        if isinstance(gather, str) and gather == head.ALL:
            logits, plain = head.every_position(module, inputs, self._plain_head.get(model.fingerprint))
            self._plain_head[model.fingerprint] = plain
            return lambda row, s: self._check_finite(logits(row, s).float(), model)
        check = lambda logits, owner: self._check_finite(logits, model, owner)
        chosen, greedy, plain = head.scores_at(module, inputs, gather, self._plain_head.get(model.fingerprint), check)
        self._plain_head[model.fingerprint] = plain
        return chosen, greedy

    @staticmethod
    def _check_finite(logits, model: LoadedModel, owner: np.ndarray | None = None):
        """The logits, if every row is finite; else the model produces garbage (bad input, exit 2). ``owner``:
        the input each row belongs to, when rows are positions of several inputs."""
        import torch

        # A row's sum is finite only if all its values are (NaN and inf propagate); summing reads the logits once
        # with no boolean copy, measured 25x faster than isfinite on a (16, 60, 49152) batch. A sum that
        # overflows is re-checked value by value, so only a NaN or inf fails.
        rows = logits.reshape(logits.shape[0], -1)
        finite = torch.isfinite(rows.sum(dim=1))
        if not bool(finite.all()):
            finite = torch.isfinite(rows).all(dim=1)
        if owner is not None and not bool(finite.all()):
            bad, every = set(owner[~finite.cpu().numpy()].tolist()), set(owner.tolist())
            finite = torch.tensor([i not in bad for i in every])
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

    def _continuations(self, model: LoadedModel, requests: list[Continuations | ChoiceContexts],
                       desc: str) -> list[np.ndarray]:
        import torch

        prefix = causal_lm.prefix_token(model.tokenizer)
        packed = [causal_lm.encode(model.tokenizer, r, self.max_length(model), prefix) for r in requests]
        self.stats.truncated += sum(p.truncated for p in packed)
        lengths = np.array([len(p.ids) for p in packed], dtype=np.int64)
        out = [np.zeros((len(p.scored), 3), dtype=np.float32) for p in packed]
        dtype = self.compute_dtype(model)  # an additive mask must match the attention scores' dtype
        where = [np.array(causal_lm.predicting_positions(p), dtype=np.int64).reshape(-1, 3) for p in packed]

        def build(idx):
            ids, mask, pos = causal_lm.batch_tensors([packed[i] for i in idx], prefix, dtype)
            rows = np.concatenate([np.full(len(where[i]), row) for row, i in enumerate(idx)])
            columns = np.concatenate([where[i][:, 1] for i in idx])
            return {"input_ids": ids, "attention_mask": mask, "position_ids": pos,
                    GATHER: head.Positions(torch.from_numpy(rows), torch.from_numpy(columns),
                                           torch.from_numpy(np.concatenate([where[i][:, 2] for i in idx])),
                                           np.asarray(idx)[rows])}

        def read(idx, scores):  # each predicting position's log-likelihood and greedy flag, in build's order
            chosen, greedy = scores
            at = 0
            for i in idx:
                k, n = where[i][:, 0], len(where[i])
                np.add.at(out[i][:, 0], k, chosen[at:at + n])
                out[i][:, 1] = np.bincount(k, weights=~greedy[at:at + n], minlength=len(out[i])) == 0
                out[i][:, 2] = np.bincount(k, minlength=len(out[i]))
                at += n

        self._run_batches(model, lengths, build, read, desc)
        return [o.reshape(-1) for o in out]

    def _generate(self, model: LoadedModel, prompts: list[str], spec: GenerationSpec, special_tokens: bool,
                  desc: str) -> list[np.ndarray]:
        """Batches of prompts by length (their shared prefix encoded once), each decoded greedily to its end."""
        import torch
        from tqdm.auto import tqdm

        tokenizer = model.tokenizer
        room = self.max_length(model) - spec.max_new_tokens
        if room < 1:
            raise ModelError(f"max_new_tokens {spec.max_new_tokens} leaves no room for a prompt in the model's "
                             f"{self.max_length(model)} positions", model.source, "lower generation.max_new_tokens")
        full = tokenizer(prompts, add_special_tokens=special_tokens)["input_ids"]
        self.stats.truncated += sum(len(x) > room for x in full)
        ids = [x[-room:] for x in full]  # a long prompt loses its start, as lm-eval cuts it
        module, device = self._module(model)
        eos = decoding.eos_ids(model.module, tokenizer)
        finished = lambda tokens: generation.stops_in(tokenizer.decode(tokens, skip_special_tokens=True), spec.until)
        check = lambda logits: self._check_finite(logits, model)
        out: list[np.ndarray] = [np.zeros(0, np.float32)] * len(prompts)
        autocast = torch.autocast("cuda", dtype=self.compute_dtype()) if device.type == "cuda" \
            else torch.autocast("cpu", enabled=False)
        groups = generation.prefix_groups(ids) if self.config.prefix_reuse else [(0, list(range(len(ids))))]
        with torch.inference_mode(), autocast:
            for shared, members in groups:
                prefix = decoding.encode_prefix(module, ids[members[0]][:shared], device)
                self.stats.prefix_tokens += shared * (len(members) - 1)
                self.stats.tokens += shared
                lengths = np.array([len(ids[i]) - shared for i in members], dtype=np.int64)
                for batch in tqdm(length_batches(lengths, *self.generation_batching()), desc=desc, unit="batch",
                                  disable=None, leave=False):
                    rows = [members[b] for b in batch]
                    tokens, counts = decoding.greedy_batch(module, prefix, shared, [ids[i][shared:] for i in rows],
                                                           spec.max_new_tokens, eos, tokenizer.pad_token_id or 0,
                                                           finished, check, device)
                    for i, t in zip(rows, tokens):
                        out[i] = np.asarray(t, dtype=np.float32)
                    self.stats.batches += 1
                    self.stats.tokens += counts["prefill_tokens"] + counts["decode_tokens"]
                    self.stats.generated_tokens += sum(map(len, tokens))
        self.stats.computed += len(prompts)
        return out

    def _windows(self, model: LoadedModel, texts: list[str], max_tokens: int | None) -> list[tuple[int, tuple]]:
        """(text index, (inputs, targets)) for each rolling window of the texts' first ``max_tokens`` tokens."""
        prefix = causal_lm.prefix_token(model.tokenizer)
        return [(t, w) for t, text in enumerate(texts)
                for w in causal_lm.rolling_windows(model.tokenizer(text)["input_ids"][:max_tokens],
                                                   self.max_length(model), prefix)]

    def _rolling(self, model: LoadedModel, texts: list[str], max_tokens: int | None, desc: str,
                 consume: Callable) -> list[list[np.ndarray]]:
        """Per text, the arrays ``consume(window, start, log-probabilities, targets)`` returns for each slice of
        positions of its windows (audit/rolling.py), concatenated over the text's windows."""
        import torch

        prefix = causal_lm.prefix_token(model.tokenizer)
        windows = self._windows(model, texts, max_tokens)
        lengths = np.array([len(w[0]) for _, w in windows], dtype=np.int64)
        parts: list[list] = [[] for _ in windows]

        def build(idx):
            width = int(lengths[idx[0]])
            ids = torch.full((len(idx), width), prefix, dtype=torch.long)
            mask = torch.zeros((len(idx), width), dtype=torch.long)
            for row, i in enumerate(idx):
                ids[row, :lengths[i]] = torch.tensor(windows[i][1][0])
                mask[row, :lengths[i]] = 1
            return {"input_ids": ids, "attention_mask": mask, GATHER: head.ALL}

        def read(idx, logits):
            for row, i in enumerate(idx):
                targets, n = torch.tensor(windows[i][1][1]), int(lengths[i])
                at = [slice(start, min(start + rolling.CHUNK, n)) for start in range(0, n, rolling.CHUNK)]
                chunks = [consume(i, s.start, torch.log_softmax(logits(row, s).float(), -1), targets[s]) for s in at]
                parts[i] = [np.concatenate(c) for c in zip(*chunks)]

        self._run_batches(model, lengths, build, read, desc)
        per_text: list[list[list[np.ndarray]]] = [[] for _ in texts]
        for (t, _), part in zip(windows, parts):
            per_text[t].append(part)
        return [[np.concatenate([p[j] for p in chunks]) for j in range(consume.outputs)] if chunks
                else [np.zeros(0, np.float32)] * consume.outputs for chunks in per_text]
