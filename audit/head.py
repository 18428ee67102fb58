"""Next-token scores at chosen positions only: what continuation scoring needs from a causal LM's head.

The LM head is a vocabulary-wide projection (a fifth of SmolLM2-135M's compute), and its output, positions x
vocabulary floats, is the largest tensor of a forward pass. A continuation needs it only at the positions that
predict its tokens, so a pre-hook on the model's output embeddings hands the head just those positions' hidden
states. Where the model's logits are exactly its head's output (proven on the first batch: no soft-capping or
scaling after it), the head then runs here in slices of HEAD_CHUNK positions, each read out (log-likelihood of
the token, whether it is the top one) before the next; else the model's own logits at those positions are read
out slice by slice. A model whose head the hook does not reach has its full logits indexed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

# Measured with SmolLM2-135M's head (576 -> 49,152, float32, 2 threads): head + read-out 326 us per position in
# slices of 128 vs 345 in one slice of 2,048, and a slice's logits stay 25 MB instead of positions x vocabulary.
HEAD_CHUNK = 128


@dataclass(frozen=True)
class Positions:
    """Where to read: batch row and position of each predicting position, the token it must predict, and the
    input (of the engine's call) it belongs to."""

    rows: "object"  # torch.LongTensor
    columns: "object"
    tokens: "object"
    owner: np.ndarray


def scores_at(module, inputs: dict, at: Positions, plain_head: bool | None, check: Callable):
    """(log-likelihood of each position's token, whether it is the model's top token, whether the model's logits
    are its head's output). ``plain_head``: known from an earlier batch, else None (tested on this one).
    ``check(logits, owner)`` vets each slice of logits (finite) before it is read."""
    import torch

    head = module.get_output_embeddings() if hasattr(module, "get_output_embeddings") else None
    hidden = []

    def pick(_, args):
        if len(args) != 1 or args[0].dim() != 3:
            return None
        chosen = args[0][at.rows.to(args[0].device), at.columns.to(args[0].device)]
        hidden.append(chosen)
        return ((chosen[:1] if plain_head else chosen)[None],)

    handle = head.register_forward_pre_hook(pick) if head is not None else None
    try:
        logits = module(**inputs).logits
    finally:
        if handle is not None:
            handle.remove()
    tokens = at.tokens.to(logits.device)
    if not hidden:
        return _read(lambda s: logits[at.rows[s].to(logits.device), at.columns[s].to(logits.device)], tokens, at.owner,
                     check) + (False,)
    if plain_head is None:
        k = min(HEAD_CHUNK, len(tokens))
        plain_head = bool(torch.allclose(head(hidden[0][:k]).float(), logits[0, :k].float(), rtol=1e-4, atol=1e-4))
        return _read(lambda s: logits[0, s], tokens, at.owner, check) + (plain_head,)
    if plain_head:
        return _read(lambda s: head(hidden[0][s]), tokens, at.owner, check) + (True,)
    return _read(lambda s: logits[0, s], tokens, at.owner, check) + (False,)


ALL = "all"  # a batch builder's request for every position's scores (running text)


def every_position(module, inputs: dict, plain_head: bool | None):
    """(``logits(row, positions)``, whether the model's logits are its head's output) for running text, which
    needs every position's whole distribution. Where the head is plain (proven on the first batch, as above),
    the model's own forward pass runs its head on one position per row only, and ``logits`` runs the head on
    the asked-for positions of the kept hidden states, so a batch never holds positions x vocabulary floats."""
    import torch

    head = module.get_output_embeddings() if hasattr(module, "get_output_embeddings") else None
    hidden = []

    def keep(_, args):
        if len(args) != 1 or args[0].dim() != 3:
            return None
        hidden.append(args[0])
        return (args[0][:, :1],) if plain_head else None

    handle = head.register_forward_pre_hook(keep) if head is not None else None
    try:
        logits = module(**inputs).logits
    finally:
        if handle is not None:
            handle.remove()
    if not hidden:
        return (lambda row, s: logits[row, s]), False
    if plain_head is None:
        k = min(HEAD_CHUNK, logits.shape[1])
        plain_head = bool(torch.allclose(head(hidden[0][0, :k]).float(), logits[0, :k].float(), rtol=1e-4, atol=1e-4))
        return (lambda row, s: logits[row, s]), plain_head
    if plain_head:
        return (lambda row, s: head(hidden[0][row, s])), True
    return (lambda row, s: logits[row, s]), False


def _read(logits_of: Callable, tokens, owner: np.ndarray, check: Callable):
    import torch

    chosen, greedy = [], []
    for start in range(0, len(tokens), HEAD_CHUNK):
        s = slice(start, start + HEAD_CHUNK)
        logits = check(logits_of(s).float(), owner[s])
        token = tokens[s]
        chosen.append(logits.gather(1, token[:, None])[:, 0] - torch.logsumexp(logits, dim=-1))
        greedy.append(logits.argmax(dim=-1) == token)
    return torch.cat(chosen).double().cpu().numpy(), torch.cat(greedy).cpu().numpy()
