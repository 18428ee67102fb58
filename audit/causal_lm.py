"""How a causal LM is scored: continuation log-likelihoods with the context encoded once, and rolling
log-likelihoods of running text. Pure functions over token ids; the engine schedules and runs them.

Continuations (lm-eval's semantics): trailing spaces of the context move to the continuation, the
continuation's tokens are those of ``tokenize(context + continuation)`` after ``len(tokenize(context))``,
and an empty context becomes the model's prefix token (BOS, else EOS). Prefix reuse by packing: one sequence holds
the context and then every continuation of the item; a 4-D attention mask lets each continuation
see the context and its own earlier tokens only, and its position ids restart after the context,
so one forward pass gives every choice's log-likelihood exactly as k separate passes would
(checked against a one-sequence-at-a-time reference in tests/test_causal_lm.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from audit.errors import DataError

@dataclass(frozen=True)
class Continuations:
    """A scoring request: one context and the continuations to score after it (an MC item's choices,
    each with the target delimiter in front; or a single target)."""

    context: str
    continuations: tuple[str, ...]


@dataclass(frozen=True)
class ChoiceContexts:
    """A multiple-choice item whose choices are contexts and whose one continuation is scored after each
    (lm-eval's ``multiple_input``: WinoGrande fills its blank with each option, then scores the rest of the
    sentence); ``prefix`` (few-shot examples) comes before every context."""

    contexts: tuple[str, ...]
    continuation: str
    prefix: str = ""

    def requests(self) -> list[Continuations]:
        """One request per choice: the continuation after that choice's context."""
        return [Continuations(self.prefix + c, (self.continuation,)) for c in self.contexts]


def plain(item: "Continuations | ChoiceContexts") -> list[Continuations]:
    """The item as the engine's requests: itself, or one per context."""
    return item.requests() if isinstance(item, ChoiceContexts) else [item]


def n_options(item: "Continuations | ChoiceContexts") -> int:
    return len(item.contexts) if isinstance(item, ChoiceContexts) else len(item.continuations)


def prompt_text(item: "Continuations | ChoiceContexts") -> str:
    """What an item asks, for a report: its context, or its contexts and the continuation they share."""
    if isinstance(item, ChoiceContexts):
        return item.prefix + " | ".join(item.contexts) + " ..." + item.continuation
    return item.context


def option_text(item: "Continuations | ChoiceContexts", k: int) -> str:
    """What choice ``k`` of an item says (its continuation, or its context)."""
    return item.contexts[k] if isinstance(item, ChoiceContexts) else item.continuations[k].strip()


@dataclass
class Packed:
    """One request as one packed sequence."""

    ids: list[int]
    positions: list[int]
    n_context: int
    spans: list[tuple[int, int]]  # (start in ids, length) of each continuation
    truncated: bool


def encode(tokenizer, request: Continuations, max_length: int, prefix_id: int) -> Packed:
    """Tokenize a request as lm-eval does and pack it; the context is cut from the left when the longest
    context + continuation would not fit in ``max_length`` positions."""
    context, conts = request.context, list(request.continuations)
    spaces = len(context) - len(context.rstrip())
    if spaces:
        conts = [context[-spaces:] + c for c in conts]
        context = context[:-spaces]
    ctx = tokenizer(context)["input_ids"] if context else []  # the tokenizer's own special tokens, as lm-eval
    wholes = tokenizer([context + c for c in conts])["input_ids"]
    cont_ids = [w[len(ctx):] for w in wholes]
    if not ctx:
        ctx = [prefix_id]
    empty = [k for k, c in enumerate(cont_ids) if not c]
    if empty:  # it would score 0 nats and win every comparison
        raise DataError(f"continuation {empty[0]} ({request.continuations[empty[0]]!r}) of the item ending "
                        f"{request.context[-40:]!r} has no tokens under the model's tokenizer", "the benchmark's items",
                        "fix or remove the item: every choice must hold text the tokenizer keeps")
    longest = max(len(c) for c in cont_ids)
    keep = max(1, max_length - longest)
    truncated = len(ctx) > keep
    ctx = ctx[-keep:]
    ids, positions, spans = list(ctx), list(range(len(ctx))), []
    for c in cont_ids:
        c = c[:max_length - len(ctx)]
        spans.append((len(ids), len(c)))
        ids += c
        positions += range(len(ctx), len(ctx) + len(c))
    return Packed(ids, positions, len(ctx), spans, truncated)


def batch_tensors(items: list[Packed], pad_id: int, dtype):
    """(input_ids, 4-D additive attention mask, position_ids) for packed sequences, right-padded."""
    import torch

    width = max(len(p.ids) for p in items)
    ids = torch.full((len(items), width), pad_id, dtype=torch.long)
    pos = torch.zeros((len(items), width), dtype=torch.long)
    allow = torch.zeros((len(items), width, width), dtype=torch.bool)
    for row, p in enumerate(items):
        ids[row, :len(p.ids)] = torch.tensor(p.ids)
        pos[row, :len(p.positions)] = torch.tensor(p.positions)
        n = p.n_context
        allow[row, :n, :n] = torch.tril(torch.ones(n, n, dtype=torch.bool))
        for start, length in p.spans:
            allow[row, start:start + length, :n] = True
            allow[row, start:start + length, start:start + length] = torch.tril(torch.ones(length, length, dtype=torch.bool))
        padding = torch.arange(len(p.ids), width)
        allow[row, padding, padding] = True  # padding rows see themselves: no all-masked softmax row
    mask = torch.zeros(allow.shape, dtype=dtype).masked_fill_(~allow, torch.finfo(dtype).min)
    return ids, mask[:, None], pos


def predicting_positions(p: Packed) -> list[tuple[int, int, int]]:
    """(continuation index, position whose logits predict the token, token id) for every continuation token."""
    out = []
    for k, (start, length) in enumerate(p.spans):
        for j in range(length):
            out.append((k, p.n_context - 1 if j == 0 else start + j - 1, p.ids[start + j]))
    return out


def rolling_windows(tokens: list[int], max_length: int, prefix_id: int) -> list[tuple[list[int], list[int]]]:
    """Disjoint windows that predict every token once (lm-eval's rolling log-likelihood, context length 1):
    (input ids, target ids), position j of the input predicting target j."""
    windows = []
    for start in range(0, len(tokens), max_length):
        targets = tokens[start:start + max_length]
        inputs = ([prefix_id] + targets[:-1]) if start == 0 else tokens[start - 1:start - 1 + len(targets)]
        windows.append((inputs, targets))
    return windows


WHITESPACE = re.compile(r"\s+")


def word_count(text: str) -> int:
    """Words as lm-eval's word_perplexity counts them: the pieces between whitespace runs, so leading or
    trailing whitespace counts as one (empty) word more, as ``len(re.split(r"\s+", text))`` does there."""
    return len(WHITESPACE.split(text))


def prefix_token(tokenizer) -> int:
    """What an empty context and the first rolling window start from: BOS, else EOS (as lm-eval)."""
    token = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    if token is None:
        raise ValueError("the tokenizer has neither a BOS nor an EOS token to start a sequence from")
    return token
