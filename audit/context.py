"""What a probe receives (ProbeContext) and returns (ProbeResult); see audit/contract.py for the contract."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from audit.contract import Estimate
from audit.data import Split, get_field, read_split, render_choices, render_queries, stem_field
from audit.generation import Query
from audit.suite import DataSpec, Suite

if TYPE_CHECKING:
    from audit.contamination.corpus import CorpusSource
    from audit.scorer import Scorer


@dataclass
class ProbeResult:
    """``metrics`` maps declared metric names to estimates (or plain numbers); ``baseline_metrics`` the
    same for the baseline; ``delta_ci`` a paired CI of (model - baseline) where the probe has one;
    ``skipped`` says why a probe has nothing to measure on a suite (calibration of free-text answers)."""

    metrics: dict[str, Estimate | float | None]
    baseline_metrics: dict[str, Estimate | float | None] | None = None
    details: dict[str, Any] = field(default_factory=dict)
    delta_ci: dict[str, tuple[float, float]] = field(default_factory=dict)
    skipped: str | None = None  # why the probe measured nothing on this suite (a skipped section, with the reason)


@dataclass
class Editable:
    """What attacks and corruptions edit in a split: a classifier's texts, or a multiple-choice or generation
    item's question (its stem field), which is then rebuilt into the item's prompt (and choices) to be scored."""

    split: Split
    spec: DataSpec | None  # None for a classifier's texts
    suite: Suite

    @property
    def texts(self) -> list[str]:
        if self.split.records is None:
            return self.split.texts
        field = stem_field(self.spec)
        return [str(get_field(r, field)) for r in self.split.records]

    def right(self, scorer: "Scorer") -> Callable[[list[str], list[int]], np.ndarray]:
        """``right(texts, owners)``: whether the scorer answers each edited item right (``owners`` as in proba)."""
        if self.split.items is None or not isinstance(self.split.items[0], Query):
            proba = self.proba(scorer)
            return lambda texts, owners: proba(texts, owners).argmax(axis=1) == self.split.labels[owners]

        def right(texts: list[str], owners: list[int]) -> np.ndarray:
            picked = self.split.subset(np.asarray(owners, dtype=np.int64))
            queries = render_queries(picked, self.spec, self.suite.task, stems=list(texts))
            return scorer.right(queries, picked.labels)
        return right

    def proba(self, scorer: "Scorer") -> Callable[[list[str], list[int]], np.ndarray]:
        """``proba(texts, owners)``: the scorer's choice distribution for edited texts, ``owners[i]`` being the
        row of the split whose item ``texts[i]`` replaces the question of."""
        if self.split.records is None:
            return lambda texts, owners: scorer.proba(texts)

        def proba(texts: list[str], owners: list[int]) -> np.ndarray:
            items, _ = render_choices(self.split.subset(np.asarray(owners, dtype=np.int64)), self.spec, self.suite.labels,
                                      self.suite.task, stems=list(texts))
            return scorer.proba(items)
        return proba


@dataclass
class ProbeContext:
    suite: Suite
    eval: Split
    model: "Scorer | None"  # None: a data-only run (audit contamination)
    baseline: "Scorer | None"
    seed: int
    train_data: tuple[Path, ...] = ()
    splits: dict[str, Split] = field(default_factory=dict, repr=False)  # read up front by the runner
    limit: int | None = None  # --limit: caps every sampled set, not only the eval split

    def split(self, name: str) -> Split:
        """A declared split (``reference``) or shift set."""
        if name not in self.splits:
            spec = self.suite.reference if name == "reference" else self.suite.shift_sets[name]
            self.splits[name] = read_split(spec, self.suite.labels)
        return self.splits[name]

    def cap(self, size: int | None) -> int | None:
        """A sample size under ``--limit``: the smaller of the two (None means all)."""
        return min(s for s in (size, self.limit) if s is not None) if size is not None or self.limit else None

    def editable(self, split: Split, name: str = "eval") -> Editable:
        """The editable texts of the eval split (or of shift set ``name``) and how to score edits of them."""
        if split.records is None:
            return Editable(split, None, self.suite)
        return Editable(split, self.suite.eval if name == "eval" else self.suite.shift_sets[name], self.suite)

    def corpora(self, text_field: str | None = None) -> list["CorpusSource"]:
        """The training data: the suite's reference split, always, then every --train-data corpus."""
        from audit.contamination.corpus import CorpusSource, expand

        own = [CorpusSource.of_split(self.suite.reference)] if self.suite.reference else []
        return own + expand(self.train_data, text_field)

    def for_both(self, measure: Callable[["Scorer"], dict]) -> ProbeResult:
        """Run a per-model measurement on the model and, when given, the baseline: the one whose weights are in
        memory first, so the other loads at most once (audit/residency.py)."""
        if self.baseline is None:
            return ProbeResult(measure(self.model))
        if getattr(self.baseline, "resident", False) and not getattr(self.model, "resident", True):
            base = measure(self.baseline)
            return ProbeResult(measure(self.model), base)
        return ProbeResult(measure(self.model), measure(self.baseline))
