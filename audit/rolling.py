"""What is read out of running text's next-token log-probabilities, one slice of a window's positions at a
time (the engine hands each slice over and never holds a window's positions x vocabulary at once).

A reader is called as ``reader(window, start, logprobs, targets)``, ``logprobs`` being the slice's
(positions x vocabulary) log-probabilities and ``targets`` the tokens they predict, and returns one array per
output (``outputs`` of them); the engine concatenates each output over a text's slices and windows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Positions per slice: a slice's log-probabilities are positions x vocabulary float32s (25 MB at 128 positions of
# SmolLM2's 49,152), and the KL holds several such arrays at once (the logits, the log-probabilities, the
# reference's float16 and float32 rows, the products). Measured on a SmolLM2-135M perplexity-only audit: peak RSS
# 1.40 GB and 6.5 s at 128 positions, 1.77 GB and 9.3 s at 512.
CHUNK = 128


def kl(reference, logprobs):
    """KL(reference || model) at each position, from both log-probability rows (torch tensors)."""
    return (reference.exp() * (reference - logprobs)).sum(dim=-1)


def _token(logprobs, targets) -> np.ndarray:
    return logprobs.gather(1, targets[:, None])[:, 0].double().numpy().astype(np.float32)


@dataclass(frozen=True)
class Target:
    """Each token's log-likelihood."""

    outputs: int = 1

    def __call__(self, window, start, logprobs, targets):
        return [_token(logprobs, targets)]


@dataclass(frozen=True)
class Stats:
    """Each token's log-likelihood, and the mean and standard deviation of the log-likelihood over the whole
    next-token distribution there (what Min-K%++ normalizes by)."""

    outputs: int = 3

    def __call__(self, window, start, logprobs, targets):
        p = logprobs.exp()
        mu = (p * logprobs).sum(dim=-1)
        sigma = ((p * logprobs.square()).sum(dim=-1) - mu.square()).clamp_min(1e-12).sqrt()
        return [_token(logprobs, targets), mu.double().numpy().astype(np.float32),
                sigma.double().numpy().astype(np.float32)]


@dataclass(frozen=True)
class Keeping:
    """The reference's pass of a comparison: its rows go to the spill file; returns each token's log-likelihood
    and the top token (exact, not from the stored float16 rows)."""

    kept: object  # audit.spill.Spill
    outputs: int = 2

    def __call__(self, window, start, logprobs, targets):
        self.kept.write(window, logprobs)
        return [_token(logprobs, targets), logprobs.argmax(dim=-1).numpy().astype(np.float32)]


@dataclass(frozen=True)
class Against:
    """The model's pass: each token's log-likelihood, the KL from the reference's kept rows, and the top token."""

    kept: object  # audit.spill.Spill
    outputs: int = 3

    def __call__(self, window, start, logprobs, targets):
        import torch

        reference = torch.from_numpy(self.kept.read(window, start, start + len(targets)))
        return [_token(logprobs, targets), kl(reference, logprobs).double().numpy().astype(np.float32),
                logprobs.argmax(dim=-1).numpy().astype(np.float32)]

