"""What a probe receives (ProbeContext) and returns (ProbeResult); see audit/contract.py for the contract."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from audit.contract import Estimate
from audit.data import Split, read_split
from audit.suite import Suite

if TYPE_CHECKING:
    from audit.contamination.corpus import CorpusSource
    from audit.engine import Scorer


@dataclass
class ProbeResult:
    """``metrics`` maps declared metric names to estimates (or plain numbers); ``baseline_metrics`` the
    same for the baseline; ``delta_ci`` a paired CI of (model - baseline) where the probe has one."""

    metrics: dict[str, Estimate | float | None]
    baseline_metrics: dict[str, Estimate | float | None] | None = None
    details: dict[str, Any] = field(default_factory=dict)
    delta_ci: dict[str, tuple[float, float]] = field(default_factory=dict)


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

    def corpora(self, text_field: str | None = None) -> list["CorpusSource"]:
        """The training data: the suite's reference split, always, then every --train-data corpus."""
        from audit.contamination.corpus import CorpusSource, expand

        own = [CorpusSource.of_split(self.suite.reference)] if self.suite.reference else []
        return own + expand(self.train_data, text_field)

    def for_both(self, measure: Callable[["Scorer"], dict]) -> ProbeResult:
        """Run a per-model measurement on the model and, when given, the baseline."""
        return ProbeResult(measure(self.model), measure(self.baseline) if self.baseline else None)
