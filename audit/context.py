"""What a probe receives (ProbeContext) and returns (ProbeResult)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from audit.data import Split, read_split
from audit.engine import Scorer
from audit.suite import Suite


@dataclass
class ProbeResult:
    """``metrics`` is a flat dict of floats; ``baseline_metrics`` the same keys for the baseline;
    ``delta_ci`` a confidence interval of (model - baseline) for metrics where the probe has one."""

    metrics: dict[str, float]
    baseline_metrics: dict[str, float] | None = None
    details: dict[str, Any] = field(default_factory=dict)
    delta_ci: dict[str, tuple[float, float]] = field(default_factory=dict)


@dataclass
class ProbeContext:
    suite: Suite
    eval: Split
    model: Scorer | None  # None: a data-only run (audit contamination)
    baseline: Scorer | None
    seed: int
    train_data: tuple[Path, ...] = ()
    _splits: dict[str, Split] = field(default_factory=dict, repr=False)

    def split(self, name: str) -> Split:
        """A declared split (``reference``) or shift set, read on first use."""
        if name not in self._splits:
            spec = self.suite.reference if name == "reference" else self.suite.shift_sets[name]
            self._splits[name] = read_split(spec, self.suite.labels)
        return self._splits[name]

    def for_both(self, measure: Callable[[Scorer], dict[str, float]]) -> ProbeResult:
        """Run a per-model measurement on the model and, when given, the baseline."""
        return ProbeResult(measure(self.model), measure(self.baseline) if self.baseline else None)
