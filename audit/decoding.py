"""Greedy decoding with a KV cache: how one batch of prompts is run (the engine decides which prompts form a
batch and caches the results).

A prefix that every prompt of a call shares (fixed few-shot exemplars, a system prompt) is encoded once;
each batch starts from a copy of its KV cache, repeated for the batch's rows. The rest of each prompt is
left-padded up to the batch's longest, after the prefix: the attention mask hides the padding and the
position ids run on from the prefix, so every real token sees exactly the tokens it would see alone. A row
leaves the batch (its cache rows dropped) when it ends: an end-of-sequence token, a stop sequence in its
decoded text, or ``max_new_tokens``.
"""

from __future__ import annotations

import copy
import functools
import inspect
from typing import Callable


@functools.cache
def growing_layer():
    """A KV-cache layer that writes new tokens into a preallocated buffer (grown ``CHUNK`` tokens at a time)
    instead of concatenating the whole cache at every step, as transformers' DynamicLayer does. Measured on
    SmolLM2-135M, 2 CPU cores, 16 rows after an 800-token prefix: 0.19 s per decode step against 0.43 s
    (torch.cat of every layer's cache took over half the step)."""
    import torch
    from transformers.cache_utils import DynamicLayer

    class GrowingLayer(DynamicLayer):
        CHUNK = 256

        def lazy_initialization(self, key_states, value_states):
            super().lazy_initialization(key_states, value_states)
            self.buffers, self.length = None, 0

        def _views(self):
            self.keys, self.values = (b[..., :self.length, :] for b in self.buffers)

        def update(self, key_states, value_states, *args, **kwargs):
            if not self.is_initialized:
                self.lazy_initialization(key_states, value_states)
            n = key_states.shape[-2]
            if self.buffers is None or self.length + n > self.buffers[0].shape[-2]:
                shape = (*key_states.shape[:2], self.length + n + self.CHUNK, key_states.shape[-1])
                grown = tuple(torch.empty(shape, dtype=s.dtype, device=s.device) for s in (key_states, value_states))
                if self.length:
                    for new, old in zip(grown, (self.keys, self.values)):
                        new[..., :self.length, :] = old
                self.buffers = grown
            for buffer, states in zip(self.buffers, (key_states, value_states)):
                buffer[..., self.length:self.length + n, :] = states
            self.length += n
            self._views()
            return self.keys, self.values

        def batch_repeat_interleave(self, repeats: int) -> None:
            if self.is_initialized and self.length:
                self.buffers = tuple(b.repeat_interleave(repeats, dim=0) for b in self.buffers)
                self._views()

        def batch_select_indices(self, indices) -> None:
            if self.is_initialized and self.length:
                self.buffers = tuple(b[indices] for b in self.buffers)
                self._views()

        def crop(self, tokens_to_remove: int) -> None:
            raise NotImplementedError("generation never crops its cache")

    return GrowingLayer


def new_cache():
    """An empty KV cache of growing layers (transformers' DynamicCache where it cannot take another layer)."""
    from transformers import DynamicCache

    cache = DynamicCache()
    if hasattr(cache, "layer_class_to_replicate") and not cache.layers:
        cache.layer_class_to_replicate = growing_layer()
    return cache


def cache_argument(module) -> str:
    """What the model's forward calls its KV cache: ``cache`` in recent transformers, ``past_key_values`` before."""
    return "cache" if "cache" in inspect.signature(module.forward).parameters else "past_key_values"


def eos_ids(module, tokenizer) -> set[int]:
    """The tokens that end a generation: the tokenizer's end-of-sequence token and the model's generation
    config's (transformers' generate stops at those too)."""
    ids = {tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set()
    configured = getattr(getattr(module, "generation_config", None), "eos_token_id", None)
    ids |= set(configured) if isinstance(configured, (list, tuple)) else {configured} if configured is not None else set()
    return ids


def encode_prefix(module, prefix: list[int], device):
    """The KV cache of the shared prefix (one row), or None when there is none."""
    import torch

    if not prefix:
        return None
    cache = new_cache()
    ids = torch.tensor([prefix], device=device)
    module(input_ids=ids, position_ids=torch.arange(len(prefix), device=device)[None], use_cache=True,
           logits_to_keep=1, **{cache_argument(module): cache})
    return cache


def prefill(module, prefix_cache, prefix_len: int, suffixes: list[list[int]], pad_id: int, keep: int, device):
    """Run each ``prefix + suffix`` (the suffixes left-padded after the shared prefix) and return the logits of
    each row's last ``keep`` positions, with the batch's KV cache, attention mask and last positions."""
    import torch

    rows, width = len(suffixes), max(len(s) for s in suffixes)
    ids = torch.full((rows, width), pad_id, dtype=torch.long)
    mask = torch.zeros((rows, prefix_len + width), dtype=torch.long)
    mask[:, :prefix_len] = 1
    positions = torch.full((rows, width), prefix_len, dtype=torch.long)
    for r, suffix in enumerate(suffixes):
        start = width - len(suffix)
        ids[r, start:] = torch.tensor(suffix)
        mask[r, prefix_len + start:] = 1
        positions[r, start:] = torch.arange(prefix_len, prefix_len + len(suffix))
    if prefix_cache is not None:
        cache = copy.deepcopy(prefix_cache)
        cache.batch_repeat_interleave(rows)
    else:
        cache = new_cache()
    ids, mask, positions = ids.to(device), mask.to(device), positions.to(device)
    logits = module(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True, logits_to_keep=keep,
                    **{cache_argument(module): cache}).logits
    return logits, cache, mask, positions[:, -1]


def greedy_batch(module, prefix_cache, prefix_len: int, suffixes: list[list[int]], max_new_tokens: int,
                 eos_ids: set[int], pad_id: int, finished: Callable[[list[int]], bool], check_logits: Callable,
                 device) -> tuple[list[list[int]], dict]:
    """Greedy continuations of ``prefix + suffix`` for each suffix. ``finished(tokens)`` says whether a row's
    generated tokens hold a stop sequence; ``check_logits`` refuses non-finite logits. Returns the generated
    tokens per row (the end-of-sequence token excluded) and timing counts (prefill and decode tokens)."""
    import torch

    rows = len(suffixes)
    logits, cache, mask, last = prefill(module, prefix_cache, prefix_len, suffixes, pad_id, 1, device)
    logits = logits[:, -1]
    check_logits(logits)
    kv = cache_argument(module)
    next_pos = last + 1
    live = list(range(rows))  # the original row of each row still in the batch
    out: list[list[int]] = [[] for _ in range(rows)]
    decoded = 0
    for step in range(max_new_tokens):
        tokens = logits.argmax(dim=-1).tolist()
        keep = []
        for j, (r, token) in enumerate(zip(live, tokens)):
            if token in eos_ids:
                continue
            out[r].append(token)
            if len(out[r]) < max_new_tokens and not finished(out[r]):
                keep.append(j)
        if not keep:
            break
        if len(keep) < len(live):
            index = torch.tensor(keep, device=device)
            cache.batch_select_indices(index)
            mask, next_pos = mask[index], next_pos[index]
            tokens = [tokens[j] for j in keep]
            live = [live[j] for j in keep]
        mask = torch.cat([mask, torch.ones((len(live), 1), dtype=mask.dtype, device=device)], dim=1)
        step_ids = torch.tensor(tokens, device=device)[:, None]
        logits = module(input_ids=step_ids, attention_mask=mask, position_ids=next_pos[:, None], use_cache=True,
                        **{kv: cache}).logits[:, -1]
        check_logits(logits)
        next_pos = next_pos + 1
        decoded += len(live)
    return out, {"prefill_tokens": int(sum(map(len, suffixes))), "decode_tokens": decoded + rows}
