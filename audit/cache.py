"""On-disk prediction cache keyed by (model key, text), so no text is scored twice by the same model.

SQLite rather than a pickle or a directory of files: one file, atomic commits, safe to read
while another process writes, and a lookup of thousands of keys in one query. A cache that
cannot be opened or read (a corrupt file, a path that is a file) never stops an audit: it is
reported once and the run goes on without it.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
from pathlib import Path
from typing import Callable, Sequence

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
    def __init__(self, path: Path | None = None, warn: Callable[[str], None] = lambda msg: None):
        self.path = path or cache_dir() / "predictions.sqlite"
        self.warn = warn
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS preds (model TEXT, text BLOB, probs BLOB, PRIMARY KEY (model, text))")
        self._db.execute("SELECT count(*) FROM (SELECT 1 FROM preds LIMIT 1)").fetchone()
        self.usable = True

    @classmethod
    def open(cls, path: Path | None = None, warn: Callable[[str], None] = lambda msg: None) -> "PredictionCache | None":
        """The cache, or None (after one warning) when it cannot be used."""
        try:
            return cls(path, warn)
        except (sqlite3.Error, OSError) as exc:
            warn(f"prediction cache {path or cache_dir() / 'predictions.sqlite'} is unusable ({exc}): running "
                 "without it (fix: delete that file, or point AUDIT_CACHE_DIR at a writable folder)")
            return None

    def _failed(self, exc: Exception) -> None:
        self.usable = False
        self.warn(f"prediction cache {self.path} failed ({exc}): running without it from here on "
                  "(fix: delete that file)")

    def get_many(self, model: str, texts: Sequence[str]) -> dict[int, np.ndarray]:
        """Cached probabilities for the texts found, by position in ``texts``."""
        if not self.usable:
            return {}
        keys = [text_key(t) for t in texts]
        found: dict[bytes, np.ndarray] = {}
        try:
            for start in range(0, len(keys), _CHUNK):
                chunk = keys[start:start + _CHUNK]
                rows = self._db.execute(
                    f"SELECT text, probs FROM preds WHERE model = ? AND text IN ({','.join('?' * len(chunk))})",
                    [model, *chunk])
                found.update((k, np.frombuffer(p, dtype=np.float32)) for k, p in rows)
        except sqlite3.Error as exc:
            self._failed(exc)
            return {}
        return {i: found[k] for i, k in enumerate(keys) if k in found}

    def put_many(self, model: str, texts: Sequence[str], probs: np.ndarray) -> None:
        if not self.usable:
            return
        rows = [(model, text_key(t), np.asarray(p, dtype=np.float32).tobytes()) for t, p in zip(texts, probs)]
        try:
            with self._db:
                self._db.executemany("INSERT OR REPLACE INTO preds VALUES (?, ?, ?)", rows)
        except sqlite3.Error as exc:
            self._failed(exc)

    def close(self) -> None:
        self._db.close()
