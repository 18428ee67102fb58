"""On-disk prediction cache keyed by (model key, text), so no text is scored twice by the same model.

SQLite rather than a pickle or a directory of files: one file, atomic commits, safe to read
while another process writes, and a lookup of thousands of keys in one query.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
from pathlib import Path
from typing import Sequence

import numpy as np

_CHUNK = 900  # stays under SQLite's default limit of 999 host parameters


def cache_dir() -> Path:
    """``$AUDIT_CACHE_DIR``, else ``$XDG_CACHE_HOME/audit``, else ``~/.cache/audit``."""
    if os.environ.get("AUDIT_CACHE_DIR"):
        return Path(os.environ["AUDIT_CACHE_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "audit"


def text_key(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8")).digest()[:16]


class PredictionCache:
    def __init__(self, path: Path | None = None):
        self.path = path or cache_dir() / "predictions.sqlite"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS preds (model TEXT, text BLOB, probs BLOB, PRIMARY KEY (model, text))")

    def get_many(self, model: str, texts: Sequence[str]) -> dict[int, np.ndarray]:
        """Cached probabilities for the texts found, by position in ``texts``."""
        keys = [text_key(t) for t in texts]
        found: dict[bytes, np.ndarray] = {}
        for start in range(0, len(keys), _CHUNK):
            chunk = keys[start:start + _CHUNK]
            rows = self._db.execute(
                f"SELECT text, probs FROM preds WHERE model = ? AND text IN ({','.join('?' * len(chunk))})",
                [model, *chunk])
            found.update((k, np.frombuffer(p, dtype=np.float32)) for k, p in rows)
        return {i: found[k] for i, k in enumerate(keys) if k in found}

    def put_many(self, model: str, texts: Sequence[str], probs: np.ndarray) -> None:
        rows = [(model, text_key(t), np.asarray(p, dtype=np.float32).tobytes()) for t, p in zip(texts, probs)]
        with self._db:
            self._db.executemany("INSERT OR REPLACE INTO preds VALUES (?, ?, ?)", rows)

    def close(self) -> None:
        self._db.close()
