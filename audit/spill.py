"""The baseline's side of a two-model comparison, kept on disk while the other model runs.

Per-token KL divergence needs both models' whole next-token distributions at every position, and only one
model is in memory at a time (audit/residency.py). So the reference model runs first and its log-probability
rows go to a temporary file, as float16 (2 bytes x vocabulary per position, as llama.cpp's
``--kl-divergence-base`` file keeps 16 bits per value); then the model runs and reads each row back next to
its own. float16 keeps about three significant digits: a log-probability of -0.7 is stored within 0.00025,
one of -10 within 0.004, and the rounding errors are as often up as down, so they cancel in a mean KL (the
README gives the measured effect). The file is anonymous (deleted when closed, or when the process dies) and
lives in the system's temporary folder (``TMPDIR``); its size is checked against the free space before the
reference runs.
"""

from __future__ import annotations

import shutil
import tempfile

import numpy as np

from audit.errors import AuditError

STORED = np.float16


def check_room(rows: int, vocab: int) -> None:
    """Refuse (one line, before any model runs) a comparison whose spill file would not fit the disk."""
    need = rows * vocab * np.dtype(STORED).itemsize
    folder = tempfile.gettempdir()
    free = shutil.disk_usage(folder).free
    if need > free:
        raise AuditError(f"the baseline's log-probabilities for the KL comparison need {need / 1e9:.1f} GB and "
                         f"{folder} has {free / 1e9:.1f} GB free", "TMPDIR",
                         "free disk space, point TMPDIR at a larger disk, or score fewer tokens (max_tokens)")


class Spill:
    """Rows of log-probabilities written under a key (a window or item index) and read back by it."""

    def __init__(self):
        self.vocab = None  # the logits' width, from the first rows written
        self.file = tempfile.TemporaryFile(prefix="audit-kl-")
        self.where: dict[object, tuple[int, int]] = {}  # key -> (first row, rows)
        self.rows = 0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.file.close()

    def write(self, key, logprobs) -> None:
        """Append ``logprobs`` (positions x vocabulary, a torch tensor) under ``key``; a key written again grows."""
        data = logprobs.to(dtype=_torch_dtype()).cpu().numpy()
        self.vocab = self.vocab or data.shape[1]
        first, n = self.where.get(key, (self.rows, 0))
        if first + n != self.rows:
            raise ValueError(f"rows under {key!r} must be written one after the other")
        self.file.seek(self.rows * self.vocab * data.itemsize)
        try:
            self.file.write(data.tobytes())
        except OSError as exc:
            raise AuditError(f"cannot keep the baseline's log-probabilities on disk ({exc.strerror})",
                             tempfile.gettempdir(), "free disk space or point TMPDIR at a larger disk") from None
        self.where[key] = (first, n + len(data))
        self.rows += len(data)

    def read(self, key, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Rows ``start:stop`` of what was written under ``key``, as float32 (positions x vocabulary)."""
        first, n = self.where[key]
        stop = n if stop is None else min(stop, n)
        width = self.vocab * np.dtype(STORED).itemsize
        self.file.seek((first + start) * width)
        out = np.frombuffer(self.file.read((stop - start) * width), dtype=STORED)
        return out.reshape(stop - start, self.vocab).astype(np.float32)


def _torch_dtype():
    import torch

    return torch.float16
