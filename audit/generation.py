"""How a generative task is scored (lm-evaluation-harness's ``generate_until`` semantics): stop sequences,
answer extraction, normalisation and exact match, and the token arithmetic of prefix reuse and of comparing
two generations. Pure functions over strings and token ids; the engine schedules the decoding
(audit/decoding.py runs it).

- Stopping: a generation ends at the model's end-of-sequence token, at ``max_new_tokens``, or as soon as
  its decoded text holds a stop sequence; the text is then cut at the first stop sequence (lm-eval cuts
  at each ``until`` string in turn, which is the same as the earliest of them).
- Extraction: each named filter is lm-eval's ``regex`` filter then ``take_first``: ``re.findall`` over the
  generation, the match ``group_select`` picks (0 the first, -1 the last), the first non-empty group of a
  match with several, stripped; no match gives the fallback ``[invalid]``.
- Normalisation before exact match (lm-eval's ``exact_match``): each ``regexes_to_ignore`` pattern removed,
  in order, from prediction and gold alike, then case and punctuation as asked.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass, field

FALLBACK = "[invalid]"  # what a filter gives when its pattern does not match (lm-eval's default)


@dataclass(frozen=True)
class AnswerFilter:
    """A named way to read the answer out of a generation: a regex, which match to take (``group_select``: 0
    the first, -1 the last) and which of its groups (``group``; None: lm-eval's rule, the first non-empty one)."""

    name: str
    regex: str
    group_select: int = 0
    fallback: str = FALLBACK
    group: int | None = None

    def extract(self, text: str) -> str:
        if self.group is not None:
            found = [m.group(self.group) for m in re.finditer(self.regex, text)]
            matches = [m for m in found if m is not None]
        else:
            matches = re.findall(self.regex, text)
        if not matches:
            return self.fallback
        try:
            match = matches[self.group_select]
        except IndexError:  # lm-eval raises here; an answer that is not there is not an answer
            return self.fallback
        if isinstance(match, tuple):
            match = next((m for m in match if m), None)
            if match is None:
                return self.fallback
        return match.strip()


@dataclass(frozen=True)
class Normalizer:
    """What exact match ignores: patterns removed from both sides (in order), case, punctuation."""

    ignore_case: bool = False
    ignore_punctuation: bool = False
    regexes_to_ignore: tuple[str, ...] = ()

    def __call__(self, text: str) -> str:
        for pattern in self.regexes_to_ignore:
            text = re.sub(pattern, "", text)
        if self.ignore_case:
            text = text.lower()
        if self.ignore_punctuation:
            text = text.translate(str.maketrans("", "", string.punctuation))
        return text


@dataclass(frozen=True)
class GenerationSpec:
    """A generative suite's settings: when to stop, how long to go on, how to read and compare the answer."""

    until: tuple[str, ...] = ()
    max_new_tokens: int = 256
    filters: tuple[AnswerFilter, ...] = ()
    normalizer: Normalizer = field(default_factory=Normalizer)

    @property
    def filter_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.filters)

    def key(self) -> str:
        """What a cached generation depends on besides model and prompt (greedy decoding has no other knob)."""
        return f"greedy\0{self.max_new_tokens}\0" + "\x1f".join(self.until)

    def answers(self, text: str) -> dict[str, str]:
        """The generation's answer under every filter."""
        return {f.name: f.extract(text) for f in self.filters}

    def correct(self, text: str, gold: str) -> dict[str, bool]:
        """Exact match of each filter's answer with the gold answer, both normalised."""
        target = self.normalizer(gold)
        return {name: self.normalizer(answer) == target for name, answer in self.answers(text).items()}


@dataclass(frozen=True)
class Query:
    """One generation request: ``context`` is what the model is given (the few-shot prefix, then ``question``,
    the item's own prompt), ``target`` the gold answer text; ``shots`` keeps the solved examples as
    (prompt, answer) pairs, which a chat template renders as turns."""

    context: str
    target: str
    question: str
    shots: tuple[tuple[str, str], ...] = ()


def chat_prompt(tokenizer, prompt: "Query", fewshot: str) -> str:
    """The prompt through the tokenizer's own chat template: the solved examples as user and assistant turns
    (``fewshot: turns``), or the whole plain prompt as one user message (``message``); then the
    assistant's turn opens."""
    if fewshot == "turns":
        messages = [m for question, answer in prompt.shots
                    for m in ({"role": "user", "content": question}, {"role": "assistant", "content": answer})]
        messages.append({"role": "user", "content": prompt.question})
    else:
        messages = [{"role": "user", "content": prompt.context}]
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def stops_in(text: str, until: tuple[str, ...]) -> bool:
    """Has the generation reached a stop sequence (empty ones never count, as in lm-eval)?"""
    return any(s and s in text for s in until)


def cut_at_stops(text: str, until: tuple[str, ...]) -> str:
    """The generation up to its first stop sequence."""
    for s in until:
        if s:
            text = text.split(s)[0]
    return text


def common_prefix_length(sequences: list[list[int]]) -> int:
    """How many leading tokens every sequence shares (the part of the prompts encoded once)."""
    if not sequences:
        return 0
    first, n = sequences[0], min(map(len, sequences))
    for seq in sequences[1:]:
        i = 0
        while i < n and seq[i] == first[i]:
            i += 1
        n = i
    return n


MIN_SHARED = 16  # fewer shared leading tokens than this are not worth a prefix of their own


def prefix_groups(sequences: list[list[int]]) -> list[tuple[int, list[int]]]:
    """(shared prefix length, indices) groups of token sequences, each group encoded from one copy of its
    common prefix: in sorted order, neighbours that share at least ``MIN_SHARED`` leading tokens are one
    group (every sequence keeps at least one token of its own); the rest are groups of one, with no prefix.
    A benchmark whose items share fixed few-shot exemplars is one group, but for the items that are
    exemplars themselves (they get others)."""
    order = sorted(range(len(sequences)), key=lambda i: sequences[i])
    groups: list[tuple[int, list[int]]] = []
    for i in order:  # in sorted order, what a sequence shares with its group's first only shrinks
        common = common_prefix_length([sequences[groups[-1][1][0]], sequences[i]]) if groups else 0
        if common >= MIN_SHARED:
            groups[-1] = (common, groups[-1][1] + [i])
        else:
            groups.append((0, [i]))
    return [(min(shared, min(len(sequences[i]) for i in members) - 1) if len(members) > 1 else 0, members)
            for shared, members in groups]


def first_divergence(a: list[int], b: list[int]) -> int | None:
    """The first token position where two generations differ (one ending earlier counts), None if identical."""
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i
    return None if len(a) == len(b) else min(len(a), len(b))
