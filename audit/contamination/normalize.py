"""Text normalization shared by the compiled scanner and the exact reference.

ASCII text goes to the compiled kernel as is (it lower-cases and splits bytes itself); text with
non-ASCII characters first gets Unicode NFKC, case folding, typographic apostrophes made plain
and Unicode punctuation turned into spaces. ``words`` is the readable reference tokenizer that
the kernel must agree with (tests/test_contamination.py checks it), used to verify and show
the matches the report lists.
"""

from __future__ import annotations

import re
import unicodedata

import numpy as np

from audit.contamination.kernels import CLITICS

_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "\uff07": "'"})
_UNICODE_PUNCT = re.compile(r"[^\w\s']|_")
_TOKEN = re.compile(r"[A-Za-z0-9'\u0080-\U0010ffff]+")
_CLITIC = re.compile(r"(?:'(?:%s)|n't)\Z" % "|".join(CLITICS), re.IGNORECASE)


def prepare(text: str) -> str:
    """Unicode normalization for text the byte kernel cannot handle alone."""
    if text.isascii():
        return text
    text = unicodedata.normalize("NFKC", text).casefold().translate(_APOSTROPHES)
    return _UNICODE_PUNCT.sub(" ", text)


def words(text: str) -> list[tuple[str, int, int]]:
    """(word, start, end) in ``prepare(text)``: the reference for ``kernels.word_hashes``."""
    text = prepare(text)
    out: list[tuple[str, int, int]] = []
    for m in _TOKEN.finditer(text):
        token = m.group()
        word = token.replace("'", "").lower() if token.isascii() else "".join(
            c.lower() if c.isascii() else c for c in token.replace("'", ""))
        if out and _CLITIC.match(token):
            prev, start, _ = out.pop()
            out.append((prev + word, start, m.end()))
        elif word:
            out.append((word, m.start(), m.end()))
    return out


def pack(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Documents as one UTF-8 byte buffer plus start offsets (length n + 1)."""
    encoded = [prepare(t).encode("utf-8") for t in texts]
    offsets = np.zeros(len(encoded) + 1, np.int64)
    np.cumsum([len(e) for e in encoded], out=offsets[1:])
    return np.frombuffer(b"".join(encoded), np.uint8), offsets
