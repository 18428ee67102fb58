"""How a causal LM is scored: continuation log-likelihoods with the context encoded once, and rolling
log-likelihoods of running text. Pure functions over token ids; the engine schedules and runs them.

Continuations (lm-eval's semantics): trailing spaces of the context move to the continuation, the
continuation's tokens are those of ``tokenize(context + continuation)`` after ``len(tokenize(context))``,
and an empty context becomes the model's prefix token (BOS, else EOS). Prefix reuse by packing: an item's
(context + continuation) token sequences become one trie, so the context runs once for all its continuations
(and per-choice contexts, or continuations, run the tokens they start with once); a 4-D attention mask lets
each token see its own path's earlier tokens only, and its position id is its depth, so one forward pass gives
every choice's log-likelihood exactly as k separate passes would (checked against a one-sequence-at-a-time
reference in tests/test_causal_lm.py).
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
    """An item's requests as one packed sequence: the token trie of their (context + continuation) sequences, so
    tokens that sequences share from their start are run once. A token attends to the tokens on its own path
    from the root; its position id is its depth."""

    ids: list[int]
    positions: list[int]
    paths: list[list[int]]  # per sequence (one per continuation), the index in ids of each of its tokens
    scored: list[int]  # per sequence, how many of its last tokens are its continuation
    truncated: bool


def tokens(tokenizer, request: Continuations, prefix_id: int) -> tuple[list[int], list[list[int]]]:
    """A request's context and continuation token ids as lm-eval makes them."""
    context, conts = request.context, list(request.continuations)
    spaces = len(context) - len(context.rstrip())
    if spaces:
        conts = [context[-spaces:] + c for c in conts]
        context = context[:-spaces]
    ctx = tokenizer(context)["input_ids"] if context else []  # the tokenizer's own special tokens, as lm-eval
    wholes = tokenizer([context + c for c in conts])["input_ids"]
    cont_ids = [w[len(ctx):] for w in wholes]
    empty = [k for k, c in enumerate(cont_ids) if not c]
    if empty:  # it would score 0 nats and win every comparison
        raise DataError(f"continuation {empty[0]} ({request.continuations[empty[0]]!r}) of the item ending "
                        f"{request.context[-40:]!r} has no tokens under the model's tokenizer", "the benchmark's items",
                        "fix or remove the item: every choice must hold text the tokenizer keeps")
    return ctx or [prefix_id], cont_ids


def fit(ctx: list[int], conts: list[list[int]], max_length: int) -> tuple[list[int], list[list[int]], bool]:
    """The context cut from the left so that it and its longest continuation fit in ``max_length`` positions."""
    keep = max(1, max_length - max(len(c) for c in conts))
    cut = ctx[-keep:]
    return cut, [c[:max_length - len(cut)] for c in conts], len(ctx) > keep


def encode(tokenizer, item: "Continuations | ChoiceContexts", max_length: int, prefix_id: int) -> Packed:
    """Tokenize an item's requests as lm-eval does and pack them: each (context + continuation) as a path of one
    trie, so a context is run once for all its continuations (and per-choice contexts share the tokens they
    start with; continuations, the tokens they start with). A context is cut from the left when it and its
    continuation would not fit in ``max_length`` positions."""
    cut = [fit(*tokens(tokenizer, r, prefix_id), max_length) for r in plain(item)]
    return pack([(ctx + c, len(c)) for ctx, conts, _ in cut for c in conts], any(t for _, _, t in cut))


def pack(sequences: list[tuple[list[int], int]], truncated: bool = False) -> Packed:
    """Token sequences (each with how many of its last tokens are scored) as one trie, in insertion order."""
    ids, positions, node_of = [], [], {}  # (parent index, token) -> index
    paths = []
    for sequence, _ in sequences:
        parent, path = -1, []
        for depth, token in enumerate(sequence):
            node = node_of.get((parent, token))
            if node is None:
                node = node_of[parent, token] = len(ids)
                ids.append(token)
                positions.append(depth)
            path.append(node)
            parent = node
        paths.append(path)
    return Packed(ids, positions, paths, [n for _, n in sequences], truncated)


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
        for path in p.paths:  # a token sees its path's earlier tokens: its ancestors in the trie
            at = torch.tensor(path)
            allow[row, at[:, None], at[None, :]] = torch.tril(torch.ones(len(path), len(path), dtype=torch.bool))
        padding = torch.arange(len(p.ids), width)
        allow[row, padding, padding] = True  # padding rows see themselves: no all-masked softmax row
    mask = torch.zeros(allow.shape, dtype=dtype).masked_fill_(~allow, torch.finfo(dtype).min)
    return ids, mask[:, None], pos


def predicting_positions(p: Packed) -> list[tuple[int, int, int]]:
    """(continuation index, position whose logits predict the token, token id) for every continuation token."""
    return [(k, path[j - 1], p.ids[path[j]]) for k, (path, n) in enumerate(zip(p.paths, p.scored))
            for j in range(len(path) - n, len(path))]


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
    r"""Words as lm-eval's word_perplexity counts them: the pieces between whitespace runs, so leading or
    trailing whitespace counts as one (empty) word more, as ``len(re.split(r"\s+", text))`` does there."""
    return len(WHITESPACE.split(text))


def prefix_token(tokenizer) -> int:
    """What an empty context and the first rolling window start from: BOS, else EOS (as lm-eval)."""
    token = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    if token is None:
        raise ValueError("the tokenizer has neither a BOS nor an EOS token to start a sequence from")
    return token
