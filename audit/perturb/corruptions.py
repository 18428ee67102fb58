"""Seeded synthetic corruption families at three severities (natural noise, not adversarial).

Written here rather than taken from nlpaug: nlpaug draws from Python's global ``random`` state
(no per-item seed, so results depend on call order) and has had no release since 2022.
Each corruption of item ``i`` uses an rng keyed by (seed, family, severity, i), so a result does
not depend on which other items are corrupted or in what order.
"""

from __future__ import annotations

import zlib

from audit.perturb import edits

SEVERITIES = (1, 2, 3)
# Per-severity rates: the share of letters (typo), words (case, word_drop, word_swap),
# word gaps (punctuation) or applicable rewrites (rewrite) that are changed.
RATES = {"typo": (0.02, 0.05, 0.10), "case": (0.1, 0.3, 0.6), "punctuation": (0.05, 0.15, 0.3),
         "word_drop": (0.05, 0.1, 0.2), "word_swap": (0.05, 0.1, 0.2), "rewrite": (0.33, 0.66, 1.0)}
PUNCT = ".,;:!?-"


def typo(text, rng, rate):
    """Keyboard-neighbour substitutions of letters."""
    chars = list(text)
    for i, c in enumerate(chars):
        if c.lower() in edits.KEYBOARD and rng.random() < rate:
            chars[i] = edits.keyboard(c, 0, rng)
    return "".join(chars)


def case(text, rng, rate):
    """Words upper-cased, lower-cased or title-cased at random."""
    styles = (str.upper, str.lower, str.title)
    return edits.WORD.sub(lambda m: styles[rng.integers(3)](m.group()) if rng.random() < rate else m.group(), text)


def punctuation(text, rng, rate):
    """Stray punctuation and doubled or dropped spaces between words."""
    parts = text.split(" ")
    out = [parts[0]]
    for part in parts[1:]:
        r = rng.random()
        if r < rate / 3:
            out[-1] += PUNCT[rng.integers(len(PUNCT))] + " " + part
        elif r < 2 * rate / 3:
            out[-1] += "  " + part
        elif r < rate:
            out[-1] += part  # a dropped space joins two words
        else:
            out[-1] += " " + part
    return out[0]


def word_drop(text, rng, rate):
    words = text.split()
    kept = [w for w in words if rng.random() >= rate]
    return " ".join(kept or words[:1])


def word_swap(text, rng, rate):
    """Adjacent words exchanged."""
    words = text.split()
    i = 0
    while i < len(words) - 1:
        if rng.random() < rate:
            words[i], words[i + 1] = words[i + 1], words[i]
            i += 1
        i += 1
    return " ".join(words)


def rewrite(text, rng, rate):
    """Contractions expanded or contracted and numbers written as digits or words."""
    return edits.apply_sites(text, [site for site in edits.rewrite_sites(text) if rng.random() < rate])


FAMILIES = {"typo": typo, "case": case, "punctuation": punctuation, "word_drop": word_drop, "word_swap": word_swap,
            "rewrite": rewrite}
assert set(FAMILIES) == set(RATES)


def corrupt(texts: list[str], family: str, severity: int, seed: int, keys=None) -> list[str]:
    """``texts`` under ``family`` at ``severity`` (1-3); ``keys`` (default: positions) seed each item."""
    fn, rate = FAMILIES[family], RATES[family][severity - 1]
    tag = zlib.crc32(family.encode())
    keys = range(len(texts)) if keys is None else keys
    return [_tidy(fn(t, edits.seeded_rng(seed, tag, severity, k), rate)) for t, k in zip(texts, keys)]


def _tidy(text: str) -> str:
    return text if text.strip() else "."


