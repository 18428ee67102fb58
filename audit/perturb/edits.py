"""Character and word edits shared by the corruption families and the adversarial search.

Each character edit takes a word and a position and returns the edited word; all are
deterministic given the position (and an rng for the ones that draw a letter), so a seed
fixes every perturbation.
"""

from __future__ import annotations

import re
from importlib import resources

import numpy as np

WORD = re.compile(r"[A-Za-z0-9]+(?:'[A-Za-z]+)*")
LETTERS = "abcdefghijklmnopqrstuvwxyz"

_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")


def _keyboard_neighbours() -> dict[str, str]:
    """Keys adjacent on a QWERTY layout (same row left/right, rows above/below within one column)."""
    pos = {c: (r, i) for r, row in enumerate(_ROWS) for i, c in enumerate(row)}
    out = {}
    for c, (r, i) in pos.items():
        near = [d for d, (r2, i2) in pos.items() if d != c and abs(r2 - r) <= 1 and abs(i2 - i) <= 1]
        out[c] = "".join(sorted(near))
    return out


KEYBOARD = _keyboard_neighbours()
# Latin letters and visually identical Cyrillic/Greek code points (VIPER-style, Eger et al. 2019).
HOMOGLYPHS = {"a": "\u0430", "c": "\u0441", "e": "\u0435", "i": "\u0456", "j": "\u0458", "o": "\u043e",
              "p": "\u0440", "s": "\u0455", "x": "\u0445", "y": "\u0443", "A": "\u0410", "B": "\u0412",
              "C": "\u0421", "E": "\u0415", "H": "\u041d", "K": "\u041a", "M": "\u041c", "O": "\u041e",
              "P": "\u0420", "T": "\u0422", "X": "\u0425"}
CONTRACTIONS = {"do not": "don't", "does not": "doesn't", "did not": "didn't", "is not": "isn't",
                "are not": "aren't", "was not": "wasn't", "were not": "weren't", "can not": "can't",
                "could not": "couldn't", "would not": "wouldn't", "should not": "shouldn't", "will not": "won't",
                "have not": "haven't", "has not": "hasn't", "it is": "it's", "that is": "that's", "i am": "i'm",
                "you are": "you're", "they are": "they're", "we are": "we're", "there is": "there's"}
NUMBERS = {"0": "zero", "1": "one", "2": "two", "3": "three", "4": "four", "5": "five", "6": "six", "7": "seven",
           "8": "eight", "9": "nine", "10": "ten", "12": "twelve", "20": "twenty", "100": "hundred"}


def stopwords() -> frozenset[str]:
    """English stopwords (NLTK's list), never edited by the attacks."""
    text = resources.files("audit.perturb").joinpath("stopwords_english.txt").read_text(encoding="utf-8")
    return frozenset(text.split())


def delete(word: str, i: int, rng=None) -> str:
    return word[:i] + word[i + 1:]


def insert(word: str, i: int, rng) -> str:
    return word[:i] + LETTERS[rng.integers(len(LETTERS))] + word[i:]


def substitute(word: str, i: int, rng) -> str:
    choices = LETTERS.replace(word[i].lower(), "")
    return word[:i] + choices[rng.integers(len(choices))] + word[i + 1:]


def swap(word: str, i: int, rng=None) -> str:
    """Swap characters i and i+1."""
    return word[:i] + word[i + 1] + word[i] + word[i + 2:] if i + 1 < len(word) else word


def keyboard(word: str, i: int, rng) -> str:
    near = KEYBOARD.get(word[i].lower())
    return keyboard_all(word, i)[rng.integers(len(near))] if near else word


def keyboard_all(word: str, i: int) -> list[str]:
    """``word`` with character i replaced by each of its keyboard neighbours (case kept)."""
    return [word[:i] + (c.upper() if word[i].isupper() else c) + word[i + 1:] for c in KEYBOARD.get(word[i].lower(), "")]


def homoglyph(word: str, i: int, rng=None) -> str:
    return word[:i] + HOMOGLYPHS.get(word[i], word[i]) + word[i + 1:]


CHAR_EDITS = {"delete": delete, "insert": insert, "substitute": substitute, "swap": swap, "keyboard": keyboard,
              "homoglyph": homoglyph}


def editable_positions(word: str, edit: str, keep_ends: bool) -> list[int]:
    """Positions where ``edit`` changes ``word``; ``keep_ends`` spares the first and last letter (Pruthi et al.)."""
    lo, hi = (1, len(word) - 1) if keep_ends else (0, len(word))
    if edit == "swap":
        return [i for i in range(lo, hi - 1) if word[i] != word[i + 1]]
    if edit == "insert":
        return list(range(max(lo, 1), hi + (0 if keep_ends else 1)))
    if edit == "keyboard":
        return [i for i in range(lo, hi) if word[i].lower() in KEYBOARD]
    if edit == "homoglyph":
        return [i for i in range(lo, hi) if word[i] in HOMOGLYPHS]
    return list(range(lo, hi)) if len(word) > 1 or edit != "delete" else []


def _tokenized(short: str) -> str:
    """PTB-style tokenization of a contraction, as in SST-2: "don't" -> "do n't", "it's" -> "it 's"."""
    return short.replace("n't", " n't") if "n't" in short else short.replace("'", " '")


def _rewrite_patterns() -> list[tuple[re.Pattern, str]]:
    pairs = []
    for long, short in CONTRACTIONS.items():
        pairs += [(long, short), (short, long), (_tokenized(short), long)]
    pairs += [(w, d) for d, w in NUMBERS.items()] + [(d, w) for d, w in NUMBERS.items()]
    return [(re.compile(r"(?<![\w'])%s(?![\w'])" % re.escape(a), re.IGNORECASE), b) for a, b in pairs]


_REWRITES = _rewrite_patterns()


def rewrite_sites(text: str) -> list[tuple[int, int, str]]:
    """Meaning-preserving rewrites: (start, end, replacement) for each contraction (either direction)
    and number (digit <-> word) in ``text``, non-overlapping, in text order."""
    sites, taken = [], set()
    for pattern, new in _REWRITES:
        for m in pattern.finditer(text):
            span = set(range(m.start(), m.end()))
            if not span & taken:
                taken |= span
                sites.append((m.start(), m.end(), _match_case(m.group(), new)))
    return sorted(sites)


def apply_sites(text: str, sites) -> str:
    for start, end, new in sorted(sites, reverse=True):
        text = text[:start] + new + text[end:]
    return text


def word_rewrite(word: str) -> str | None:
    """A meaning-preserving replacement for one word: a number as digits or words, or a contraction expanded."""
    return _WORD_REWRITES.get(word.lower())


_WORD_REWRITES = {**NUMBERS, **{w: d for d, w in NUMBERS.items()}, **{s: l for l, s in CONTRACTIONS.items()}}


def _match_case(old: str, new: str) -> str:
    return new[:1].upper() + new[1:] if old[:1].isupper() else new


def seeded_rng(*keys: int) -> np.random.Generator:
    """An rng fixed by integer keys (seed, item, ...): the same item gets the same edit in any order."""
    return np.random.default_rng([abs(int(k)) for k in keys])
