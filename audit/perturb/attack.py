"""Black-box adversarial search over character and word edits, scored through the batched engine.

All examples advance in lockstep: every round collects the candidate texts of every example
still under attack and scores them in one engine call, so the engine sorts them by length and
fills its batches (textattack scores one example's candidates at a time, padded to 512 tokens).

Two searches, as in textattack: ``wir`` ranks words by how much replacing each with the unknown
token lowers the true-class probability, then edits them in that order, keeping an edit when it
lowers that probability (GreedyWordSwapWIR); ``greedy`` tries every edit of every word each round
and keeps the best (GreedySearch, beam width 1).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from rapidfuzz.distance import Levenshtein

from audit.perturb import edits


@dataclass(frozen=True)
class Recipe:
    name: str
    paper: str
    edits: tuple[str, ...]  # names in edits.CHAR_EDITS, or "rewrite" (edits.word_rewrite)
    search: str  # "wir" or "greedy"
    random_one: bool  # one random position per edit and word (else every position)
    keep_ends: bool = False  # never edit a word's first or last character
    min_word_length: int = 1
    max_words: int | None = None  # most words changed
    max_word_fraction: float | None = None  # most words changed, as a share of the text's words
    max_edit_distance: int | None = None  # Levenshtein distance to the original text


RECIPES = {r.name: r for r in (
    Recipe("deepwordbug", "Gao et al. 2018, Black-box Generation of Adversarial Text Sequences to Evade Deep "
           "Learning Classifiers", ("swap", "substitute", "delete", "insert"), "wir", random_one=True,
           max_edit_distance=30),
    Recipe("pruthi", "Pruthi et al. 2019, Combating Adversarial Misspellings with Robust Word Recognition",
           ("swap", "delete", "insert", "keyboard"), "greedy", random_one=False, keep_ends=True, min_word_length=4,
           max_words=1),
    Recipe("charmix", "all character edits plus homoglyphs (Eger et al. 2019) and meaning-preserving rewrites "
           "(contractions, numbers), greedy by word importance",
           ("swap", "substitute", "delete", "insert", "keyboard", "homoglyph", "rewrite"), "wir", random_one=True,
           max_word_fraction=0.2, max_edit_distance=30),
)}


@dataclass
class Attempt:
    """One example under attack."""

    index: int
    label: int
    original: str
    seps: list[str]  # text = seps[0] + words[0] + seps[1] + ... + words[-1] + seps[-1]
    words: list[str]
    p_true: float = 1.0
    queries: int = 1  # the original's score
    changed: set[int] = field(default_factory=set)
    order: list[int] = field(default_factory=list)  # wir: word indices still to try, most important first
    status: str = "running"  # running | success | failed | skipped
    prediction: int = -1

    @property
    def text(self) -> str:
        return _render(self.seps, self.words)


def _render(seps, words) -> str:
    return "".join(s + w for s, w in zip(seps, words + [""]))


def split_words(text: str) -> tuple[list[str], list[str]]:
    seps, words, last = [], [], 0
    for m in edits.WORD.finditer(text):
        seps.append(text[last:m.start()])
        words.append(m.group())
        last = m.end()
    seps.append(text[last:])
    return seps, words


@dataclass
class AttackResult:
    index: int
    status: str
    original: str
    perturbed: str
    label: int
    prediction: int
    queries: int
    words_changed: int
    n_words: int
    changes: list[tuple[str, str]]  # (original word, new word)

    def as_dict(self) -> dict:
        return self.__dict__ | {"changes": [list(c) for c in self.changes]}


def attack(proba: Callable[[list[str], list[int]], np.ndarray], texts: list[str], labels: np.ndarray, recipe: Recipe,
           query_budget: int, seed: int, stopwords: frozenset[str] = frozenset(), unk: str = "[UNK]") -> list[AttackResult]:
    """Attack every text; an example the model already gets wrong is ``skipped`` (nothing to attack).
    ``proba(texts, owners)`` scores variants of the examples, ``owners[i]`` being the index of the example
    that ``texts[i]`` is a variant of (a causal LM rebuilds that item around its edited question)."""
    probs = proba(list(texts), list(range(len(texts))))
    attempts = []
    for i, (text, y) in enumerate(zip(texts, labels)):
        seps, words = split_words(text)
        a = Attempt(i, int(y), text, seps, words, float(probs[i, y]), prediction=int(probs[i].argmax()))
        a.status = "skipped" if a.prediction != a.label else "running"
        attempts.append(a)
    rng_tag = zlib.crc32(recipe.name.encode())
    for a in attempts:
        if a.status == "running" and not _eligible(a, recipe, stopwords):
            a.status = "failed"  # nothing it may edit
    if recipe.search == "wir":
        _rank_words(proba, [a for a in attempts if a.status == "running"], recipe, stopwords, unk, query_budget)
    round_no = 0
    while running := [a for a in attempts if a.status == "running"]:
        batch: list[tuple[Attempt, int, str, str]] = []
        for a in running:
            cands = _candidates(a, recipe, stopwords, edits.seeded_rng(seed, rng_tag, a.index, round_no))
            cands = cands[:max(query_budget - a.queries, 0)]
            if not cands:
                a.status = "failed"
            batch.extend((a, *c) for c in cands)
        if batch:
            scores = proba([t for *_, t in batch], [a.index for a, *_ in batch])
            best: dict[int, tuple] = {}
            for (a, i, word, _), p in zip(batch, scores):
                a.queries += 1
                p_true, pred = float(p[a.label]), int(p.argmax())
                key = (pred != a.label, -p_true)
                if a.index not in best or key > best[a.index][0]:
                    best[a.index] = (key, i, word, p_true, pred)
            for a in running:
                if a.index in best:
                    _accept(a, *best[a.index][1:], recipe)
            for a in running:
                if a.status == "running" and (a.queries >= query_budget or _at_word_limit(a, recipe)):
                    a.status = "failed"
        round_no += 1
    return [_result(a) for a in attempts]


def _word_limit(a: Attempt, recipe: Recipe) -> int:
    limits = [len(a.words)]
    if recipe.max_words is not None:
        limits.append(recipe.max_words)
    if recipe.max_word_fraction is not None:
        limits.append(max(1, int(recipe.max_word_fraction * len(a.words))))
    return min(limits)


def _at_word_limit(a: Attempt, recipe: Recipe) -> bool:
    return len(a.changed) >= _word_limit(a, recipe)


def _editable(a: Attempt, i: int, recipe: Recipe, stopwords) -> bool:
    w = a.words[i]
    return i not in a.changed and len(w) >= recipe.min_word_length and w.lower() not in stopwords


def _eligible(a: Attempt, recipe: Recipe, stopwords) -> bool:
    return any(_editable(a, i, recipe, stopwords) for i in range(len(a.words)))


def _rank_words(proba, attempts: list[Attempt], recipe, stopwords, unk, query_budget) -> None:
    """Word importance: drop in true-class probability when the word becomes the unknown token."""
    batch = []
    for a in attempts:
        idx = [i for i in range(len(a.words)) if _editable(a, i, recipe, stopwords)][:max(query_budget - a.queries, 0)]
        batch.extend((a, i, _render(a.seps, a.words[:i] + [unk] + a.words[i + 1:])) for i in idx)
    scores = proba([t for _, _, t in batch], [a.index for a, _, _ in batch]) if batch else np.zeros((0, 1))
    importance: dict[int, list[tuple[float, int]]] = {a.index: [] for a in attempts}
    for (a, i, _), p in zip(batch, scores):
        a.queries += 1
        importance[a.index].append((a.p_true - float(p[a.label]), i))
    for a in attempts:
        a.order = [i for _, i in sorted(importance[a.index], key=lambda x: (-x[0], x[1]))]


def _candidates(a: Attempt, recipe: Recipe, stopwords, rng) -> list[tuple[int, str, str]]:
    """(word index, new word, candidate text) for this round, within the recipe's constraints."""
    if recipe.search == "wir":
        out = []
        while a.order and not out:
            out = _word_candidates(a, a.order.pop(0), recipe, stopwords, rng)
        return out
    return [c for i in range(len(a.words)) for c in _word_candidates(a, i, recipe, stopwords, rng)]


def _word_candidates(a: Attempt, i: int, recipe: Recipe, stopwords, rng) -> list[tuple[int, str, str]]:
    if not _editable(a, i, recipe, stopwords):
        return []
    word, seen, out = a.words[i], set(), []
    for name in recipe.edits:
        if name == "rewrite":
            news = [edits.word_rewrite(word)]
        else:
            positions = edits.editable_positions(word, name, recipe.keep_ends)
            if recipe.random_one and positions:
                positions = [positions[rng.integers(len(positions))]]
            if name == "keyboard" and not recipe.random_one:  # every neighbouring key, as textattack's WordSwapQWERTY
                news = [w for p in positions for w in edits.keyboard_all(word, p)]
            else:
                news = [edits.CHAR_EDITS[name](word, p, rng) for p in positions]
        for new in news:
            if not new or new == word or new in seen:
                continue
            seen.add(new)
            text = _render(a.seps, a.words[:i] + [new] + a.words[i + 1:])
            if recipe.max_edit_distance is None or Levenshtein.distance(a.original, text) <= recipe.max_edit_distance:
                out.append((i, new, text))
    return out


def _accept(a: Attempt, word_index: int, new_word: str, p_true: float, prediction: int, recipe: Recipe) -> None:
    """Keep the round's best edit: always in ``greedy`` (beam width 1); in ``wir`` only if it lowers
    the true-class probability or wins outright."""
    if prediction == a.label and recipe.search == "wir" and p_true >= a.p_true:
        return
    a.words[word_index] = new_word
    a.changed.add(word_index)
    a.p_true, a.prediction = p_true, prediction
    if prediction != a.label:
        a.status = "success"


def _result(a: Attempt) -> AttackResult:
    orig_words = split_words(a.original)[1]
    changes = [(orig_words[i], a.words[i]) for i in sorted(a.changed)]
    return AttackResult(a.index, a.status, a.original, a.text, a.label, a.prediction, a.queries, len(a.changed),
                        len(a.words), changes)
