"""One model seen through a suite: what probes call. The engine schedules and runs; the scorer says what an
item's scores mean for the suite's task (a distribution over labels or choices, or a generation and the
answers read out of it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from audit import causal_lm, generation
from audit.causal_lm import ChoiceContexts, Continuations
from audit.engine import Engine
from audit.generation import GenerationSpec, Query
from audit.models import CAUSAL_LM, Alignment, LoadedModel


@dataclass(frozen=True)
class Generated:
    """A generation: its text (cut at the first stop sequence) and the tokens the model produced."""

    text: str
    tokens: np.ndarray


@dataclass
class Scorer:
    """One model seen through the suite: what probes call. ``proba`` gives, for each input, a distribution over
    the suite's labels: a classifier's classes (aligned to the suite's labels), or a causal LM's choices of a
    multiple-choice item (softmax of the choices' log-likelihoods, zero for positions an item does not have).
    A generation item (``Query``) has no distribution: ``generate`` gives its text, ``answers`` what each of
    the suite's filters reads out of it, and ``right`` whether that matches the gold answer; ``right`` and
    ``answers`` work for every task, so probes that need only right-or-wrong run on all of them."""

    engine: Engine
    model: LoadedModel
    alignment: Alignment
    role: str = "model"  # "model" or "baseline"
    n_labels: int = 0  # the suite's label count (choice positions, for multiple choice)
    target_delimiter: str = " "
    generation: GenerationSpec | None = None  # generate suites: stopping, filters, exact match
    chat: str | None = None  # generate suites: render prompts with the chat template, few-shot as "turns" or "message"
    _generated: dict = field(default_factory=dict, repr=False)  # prompt -> Generated, for this run

    def describe(self) -> dict:
        limit = self.engine.max_length(self.model)
        return {**self.model.describe(), **self.alignment.describe(), "max_length": limit,
                "max_length_limit": self.model.max_length_limit if limit == self.model.max_length else
                "suite max_length" if self.engine.config.max_length else "engine default",
                **({"chat": self.chat or "none"} if self.generation is not None else {})}

    @property
    def resident(self) -> bool:
        """Are the model's weights in memory now (audit/residency.py)?"""
        return self.model.resident

    @property
    def is_lm(self) -> bool:
        return self.model.kind == CAUSAL_LM

    def proba(self, inputs: Sequence) -> np.ndarray:
        if self.is_lm:
            return self._choice_proba(inputs, normalize=False)
        probs = self.engine.predict_proba(self.model, inputs, desc=f"scoring {self.role}") @ self.alignment.matrix
        return probs / np.maximum(probs.sum(axis=1, keepdims=True), np.finfo(np.float32).tiny)

    def predict(self, inputs: Sequence) -> np.ndarray:
        return self.proba(inputs).argmax(axis=1)

    def predict_norm(self, items: Sequence[Continuations]) -> np.ndarray:
        """Choices by log-likelihood per character of the choice (lm-eval's acc_norm)."""
        return self._choice_proba(items, normalize=True).argmax(axis=1)

    def continuation_scores(self, items: Sequence[Continuations]) -> list[np.ndarray]:
        return self.engine.continuation_scores(self.model, items, desc=f"scoring {self.role}")

    def _choice_proba(self, items: Sequence[Continuations], normalize: bool) -> np.ndarray:
        out = np.zeros((len(items), self.n_labels), dtype=np.float64)
        for i, (item, scores) in enumerate(zip(items, self.continuation_scores(items))):
            ll = scores[:, 0].astype(np.float64)
            if normalize:  # lm-eval's acc_norm: per character of each choice (of each context, for multiple_input)
                ll = ll / np.array([max(len(c), 1) for c in item.contexts] if isinstance(item, ChoiceContexts) else
                                   [max(len(c) - len(self.target_delimiter), 1) for c in item.continuations])
            p = np.exp(ll - ll.max())
            out[i, :len(p)] = p / p.sum()
        return out

    @property
    def has_probabilities(self) -> bool:
        """Do this suite's items get a probability over answers (not a free-text generation)?"""
        return self.generation is None

    def prompt(self, query: Query) -> str:
        """What the model is given for a generation item: its plain prompt, or the chat template's rendering."""
        return query.context if self.chat is None else generation.chat_prompt(self.model.tokenizer, query, self.chat)

    def generate(self, queries: Sequence[Query]) -> list[Generated]:
        """Each item's generation; kept for the run, since every probe that reads answers asks again (and a
        batch-dependent model, scored whole call by call, would otherwise be decoded once per call)."""
        spec = self.generation
        prompts = [self.prompt(q) for q in queries]
        todo = list(dict.fromkeys(p for p in prompts if p not in self._generated))
        if todo:
            tokens = self.engine.generate(self.model, todo, spec, self.chat is None, desc=f"generating {self.role}")
            decode = lambda t: self.model.tokenizer.decode(t.tolist(), skip_special_tokens=True)
            for prompt, t in zip(todo, tokens):
                ids = t.astype(np.int64)
                self._generated[prompt] = Generated(generation.cut_at_stops(decode(ids), spec.until), ids)
        return [self._generated[p] for p in prompts]

    def answers(self, inputs: Sequence, answer: str | None = None) -> np.ndarray:
        """What the model answers: the label or choice index it ranks first, or the answer the suite's filter
        ``answer`` (default: the first) reads out of its generation."""
        if self.generation is None:
            return self.predict(inputs)
        spec = self.generation
        name = answer or spec.filter_names[0]
        pick = next(f for f in spec.filters if f.name == name)
        return np.array([pick.extract(g.text) for g in self.generate(inputs)], dtype=object)

    def right(self, inputs: Sequence, labels: np.ndarray, answer: str | None = None) -> np.ndarray:
        """Whether each answer is the gold one: the gold label or choice, or (generation) the gold answer after
        the suite's normalisation, read by the filter ``answer`` (default: the first)."""
        if self.generation is None:
            return self.predict(inputs) == labels
        normalize = self.generation.normalizer
        return np.array([normalize(a) == normalize(q.target) for a, q in zip(self.answers(inputs, answer), inputs)],
                        dtype=bool)

    def truncated(self, inputs: Sequence) -> np.ndarray:
        """Which inputs the engine cuts to fit its max length in this model's tokens: a text longer than it, or a
        causal LM's request whose context loses tokens (tokenization only, nothing is scored)."""
        limit = self.engine.max_length(self.model)
        tokenizer = self.model.tokenizer
        if self.generation is not None:  # the prompt must leave room for the answer
            room = limit - self.generation.max_new_tokens
            ids = tokenizer([self.prompt(q) for q in inputs], add_special_tokens=self.chat is None)["input_ids"]
            return np.array([len(x) > room for x in ids], dtype=bool)
        if not self.is_lm:
            ids = tokenizer(list(inputs), truncation=False, padding=False)["input_ids"]
            return np.array([len(x) > limit for x in ids], dtype=bool)
        prefix = causal_lm.prefix_token(tokenizer)
        return np.array([causal_lm.encode(tokenizer, item, limit, prefix).truncated for item in inputs], dtype=bool)
