"""Probe registry: a probe is one file in `audit/probes/` that registers itself here.

A probe is a function ``fn(ctx, **params) -> ProbeResult``; its keyword-only parameters
(with defaults) are the YAML parameters a suite may set, so unknown keys are caught
before any model loads.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
import re
from dataclasses import dataclass
from typing import Any, Callable

from audit.errors import SpecError


@dataclass(frozen=True)
class Probe:
    name: str
    fn: Callable[..., Any]
    metrics: tuple[str, ...]  # metric names; "{label}" expands to each suite label, "{set}" to each shift set
    needs_baseline: bool
    doc: str
    lower_is_better: tuple[str, ...] = ()  # every other metric is higher-is-better (used by max_regression gates)
    vs_baseline: tuple[str, ...] = ()  # metrics that exist only when a baseline is given (gates skip without one)
    varies: tuple[str, ...] = ()  # metrics that differ run to run by nature (timings): `audit verify` does not compare them

    @property
    def params(self) -> dict[str, Any]:
        sig = inspect.signature(self.fn)
        return {p.name: p.default for p in sig.parameters.values() if p.kind is p.KEYWORD_ONLY}

    def metric_names(self, labels: tuple[str, ...], shift_sets: tuple[str, ...] = ()) -> list[str]:
        names: list[str] = []
        for m in self.metrics:
            if "{label}" in m:
                names.extend(m.replace("{label}", lab) for lab in labels)
            elif "{set}" in m:
                names.extend(m.replace("{set}", s) for s in shift_sets)
            else:
                names.append(m)
        return names

    def is_lower_better(self, metric: str) -> bool:
        return _matches(metric, self.lower_is_better)

    def needs_baseline_for(self, metric: str) -> bool:
        return _matches(metric, self.vs_baseline)

    def varies_for(self, metric: str) -> bool:
        return _matches(metric, self.varies)


def _matches(metric: str, patterns: tuple[str, ...]) -> bool:
    return any(re.fullmatch(re.escape(m).replace(r"\{label\}", ".+").replace(r"\{set\}", ".+"), metric)
               for m in patterns)


_PROBES: dict[str, Probe] = {}


def probe(name: str, *, metrics: tuple[str, ...], needs_baseline: bool = False, lower_is_better: tuple[str, ...] = (),
          vs_baseline: tuple[str, ...] = (), varies: tuple[str, ...] = ()):
    """Register ``fn`` as probe ``name``."""

    def register(fn):
        _PROBES[name] = Probe(name, fn, metrics, needs_baseline, (fn.__doc__ or "").strip().split("\n")[0],
                              lower_is_better, vs_baseline, varies)
        return fn

    return register


def did_you_mean(word: str, choices) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f"did you mean '{close[0]}'?" if close else f"choose from: {', '.join(sorted(choices))}"


def all_probes() -> dict[str, Probe]:
    importlib.import_module("audit.probes")  # registers the built-in probes
    return dict(_PROBES)


def get(name: str, where: str = "") -> Probe:
    probes = all_probes()
    if name not in probes:
        raise SpecError(f"unknown probe '{name}'", where, did_you_mean(name, probes))
    return probes[name]
