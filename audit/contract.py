"""The probe contract: what a probe declares (metrics, parameters) and what it returns (estimates).

A probe is one file ``audit/probes/<name>.py`` holding a literal ``SPEC = {...}`` and a function
``run(ctx, **params) -> ProbeResult``, plus an optional view ``audit/probes/<name>.html.j2``.
``SPEC`` is read with ``ast.literal_eval``, never imported, so validating a suite runs no probe
code and loads none of its libraries (numba, scikit-learn, scipy, torch).

SPEC keys:
  ``tasks``: the suite tasks it runs on (classification, multiple_choice, perplexity, last_word;
  default classification only).
  ``needs_baseline``: the probe compares two models and is skipped without ``--baseline``.
  ``scores_items``: its metrics come from scoring the benchmark's items (default true), so they mean
  little when the engine had to cut most items to fit the model (false: running text, timings, corpora).
  ``params``: name -> {type: int|float|str|bool|list, default, min, max (inclusive), above, below
  (exclusive), choices, choices_from: shift_sets|splits, nullable}.
  ``metrics``: name -> {better: higher|lower|none (default higher), ci: the estimate carries a
  confidence interval, delta_ci: its change against the baseline has a paired CI, vs_baseline: it
  exists only with a baseline, varies: it differs run to run by nature (timings), range: [low, high]
  the values it can take, where ``chance`` stands for the accuracy of a model that ignores its input
  (a gate on a change is inconclusive when model and baseline both sit at the range's worst end)}.
  A metric name may hold ``{labels}`` (each suite label) or ``{p}`` (each value of list parameter p).
"""

from __future__ import annotations

import ast
import math
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from audit.errors import SpecError, did_you_mean

PROBES_DIR = Path(__file__).resolve().parent / "probes"
TYPES = {"int": int, "float": (int, float), "str": str, "bool": bool, "list": list}
TYPE_WORDS = {"int": "an integer", "float": "a number", "str": "a string", "bool": "true or false", "list": "a list"}
PARAM_KEYS = {"type", "default", "min", "max", "above", "below", "choices", "choices_from", "nullable"}
METRIC_KEYS = {"better", "ci", "delta_ci", "vs_baseline", "varies", "range"}
CHANCE = "chance"  # a range end that each run resolves: the accuracy of a model that ignores its input
PLACEHOLDER = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class Estimate:
    """A metric's value with, where the probe has them, its confidence interval and sample size.

    ``value`` None means undefined for a stated reason (``note``), e.g. a success rate with nothing
    attacked: a gate on it is inconclusive, not an error."""

    value: float | None
    ci: tuple[float, float] | None = None
    n: int | None = None
    note: str | None = None

    @classmethod
    def of(cls, x: "Estimate | float | None") -> "Estimate":
        """Plain numbers become point estimates; NaN or infinite values become undefined ones (whose
        ``note``, the reason, only the probe can give: the runner refuses an undefined value without one)."""
        est = x if isinstance(x, Estimate) else cls(None if x is None else float(x))
        finite = est.value is not None and math.isfinite(est.value)
        ci = est.ci if est.ci is not None and all(math.isfinite(c) for c in est.ci) else None
        return cls(float(est.value) if finite else None, tuple(map(float, ci)) if ci else None,
                   None if est.n is None else int(est.n), None if finite else est.note)

    def as_dict(self) -> dict:
        out: dict[str, Any] = {"value": self.value}
        if self.ci is not None:
            out["ci"] = list(self.ci)
        if self.n is not None:
            out["n"] = self.n
        if self.note:
            out["note"] = self.note
        return out


@dataclass(frozen=True)
class Metric:
    name: str
    better: str = "higher"
    ci: bool = False
    delta_ci: bool = False
    vs_baseline: bool = False
    varies: bool = False
    range: tuple | None = None  # (low, high): numbers, or CHANCE

    @property
    def lower_is_better(self) -> bool:
        return self.better == "lower"

    def worst_end(self, chance: float | None) -> float | None:
        """The end of the declared range that is worst for this metric (``chance`` resolved), or None."""
        if self.range is None or self.better == "none":
            return None
        end = self.range[1] if self.lower_is_better else self.range[0]
        return chance if end == CHANCE else end


@dataclass(frozen=True)
class Param:
    name: str
    type: str
    default: Any
    min: float | None = None
    max: float | None = None
    above: float | None = None
    below: float | None = None
    choices: tuple | None = None
    choices_from: str | None = None
    nullable: bool = False

    def check(self, value: Any, where: str, options: dict[str, tuple[str, ...]]) -> Any:
        """``value`` if it satisfies the declaration, else a SpecError naming the parameter and the fix."""
        here = f"{where}.{self.name}"
        if value is None:
            if self.nullable:
                return None
            raise SpecError("must not be null", here, f"give {TYPE_WORDS[self.type]}, or remove it for the default")
        kind = TYPES[self.type]
        if isinstance(value, bool) and self.type != "bool" or not isinstance(value, kind):
            raise SpecError(f"must be {TYPE_WORDS[self.type]}, got {value!r}", here,
                            f"e.g. {self.name}: {_yaml(self.default)}")
        items = value if self.type == "list" else [value]
        if self.type == "float" and not all(math.isfinite(v) for v in items):
            raise SpecError(f"must be a finite number, got {value!r}", here, f"e.g. {self.name}: {_yaml(self.default)}")
        for lo, hi, strict in ((self.min, self.max, False), (self.above, self.below, True)):
            if self.type in ("int", "float") and not _within(value, lo, hi, strict):
                raise SpecError(f"{value!r} is out of range ({_range(lo, hi, strict)})", here,
                                f"e.g. {self.name}: {_yaml(self.default)}")
        choices = self.choices or options.get(self.choices_from or "", None)
        if choices is not None:
            for item in items:
                if item not in choices:
                    raise SpecError(f"unknown value {item!r}" + ("" if choices else f" (the suite has no {self.choices_from})"),
                                    here, did_you_mean(str(item), choices))
        if self.type == "list" and len(set(map(str, items))) != len(items):
            raise SpecError("lists a value twice", here, "give each value once")
        return list(value) if self.type == "list" else value


def _within(v: float, lo: float | None, hi: float | None, strict: bool) -> bool:
    if strict:
        return (lo is None or v > lo) and (hi is None or v < hi)
    return (lo is None or v >= lo) and (hi is None or v <= hi)


def _range(lo, hi, strict: bool) -> str:
    lt = "<" if strict else "<="
    return " and ".join(s for s in (f"{lo} {lt} x" if lo is not None else "", f"x {lt} {hi}" if hi is not None else "") if s)


def _yaml(value: Any) -> str:
    """A default as the YAML that would write it."""
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(map(str, value)) + "]"
    return "null" if value is None else str(value).lower() if isinstance(value, bool) else str(value)


@dataclass(frozen=True)
class ProbeSpec:
    name: str
    doc: str
    params: dict[str, Param]
    metrics: tuple[Metric, ...]
    needs_baseline: bool = False
    tasks: tuple[str, ...] = ("classification",)
    scores_items: bool = True
    _exact: dict[str, Metric] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self):
        self._exact.update({m.name: m for m in self.metrics if not PLACEHOLDER.search(m.name)})

    def metric(self, name: str) -> Metric | None:
        """The declaration behind a concrete metric name: exact names first, then templates."""
        if name in self._exact:
            return self._exact[name]
        for m in sorted(self.metrics, key=lambda m: -len(PLACEHOLDER.sub("", m.name))):  # most specific first
            if re.fullmatch(".+".join(map(re.escape, PLACEHOLDER.split(m.name)[::2])), name):
                return m
        return None

    def resolve(self, given: dict[str, Any], where: str, options: dict[str, tuple[str, ...]]) -> dict[str, Any]:
        """Declared defaults overlaid with ``given``, each value checked; unknown keys are errors.

        ``options`` holds what ``choices_from`` refers to (``shift_sets``, ``splits``); a null list
        whose choices come from there means all of them."""
        if not isinstance(given, dict):
            raise SpecError("probe parameters must be a mapping", where, "write {} for the defaults")
        for key in given:
            if key not in self.params:
                raise SpecError(f"unknown parameter '{key}'", where, did_you_mean(str(key), self.params or {"(none)"}))
        out = {}
        for name, p in self.params.items():
            value = p.check(given.get(name, p.default), where, options)
            if value is None and p.type == "list" and p.choices_from:
                value = list(options.get(p.choices_from, ()))
            out[name] = value
        return out

    def metric_names(self, labels: tuple[str, ...], params: dict[str, Any]) -> list[str]:
        """Every concrete metric name this probe can report with these labels and resolved parameters."""
        names = []
        for m in self.metrics:
            expanded = [m.name]
            for key in PLACEHOLDER.findall(m.name):
                values = labels if key == "labels" else params.get(key) or ()
                expanded = [e.replace("{" + key + "}", str(v)) for e in expanded for v in values]
            names += expanded
        return names


def _spec_literal(path: Path) -> tuple[dict, str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    for node in tree.body:
        if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == ["SPEC"]:
            return ast.literal_eval(node.value), (ast.get_docstring(tree) or "").split("\n\n")[0]
    raise ValueError(f"{path}: a probe file needs a literal SPEC = {{...}} (see audit/contract.py)")


def build_spec(name: str, literal: dict, doc: str = "") -> ProbeSpec:
    """A ProbeSpec from a SPEC literal; a malformed declaration is a programming error (ValueError)."""
    unknown = set(literal) - {"needs_baseline", "params", "metrics", "tasks", "scores_items"}
    params = {}
    for key, decl in literal.get("params", {}).items():
        if set(decl) - PARAM_KEYS or decl.get("type") not in TYPES or "default" not in decl:
            raise ValueError(f"probe {name}: parameter {key} needs type and default, keys from {sorted(PARAM_KEYS)}")
        params[key] = Param(key, **{**decl, "choices": tuple(decl["choices"]) if "choices" in decl else None})
    metrics = []
    for key, decl in literal.get("metrics", {}).items():
        if set(decl) - METRIC_KEYS or decl.get("better", "higher") not in ("higher", "lower", "none"):
            raise ValueError(f"probe {name}: metric {key} has keys outside {sorted(METRIC_KEYS)}")
        bounds = decl.get("range")
        if bounds is not None and (len(bounds) != 2 or not all(b == CHANCE or isinstance(b, (int, float)) for b in bounds)):
            raise ValueError(f"probe {name}: metric {key} range must be [low, high] (numbers or '{CHANCE}')")
        metrics.append(Metric(key, **{**decl, "range": tuple(bounds) if bounds is not None else None}))
    if unknown or not metrics:
        raise ValueError(f"probe {name}: SPEC needs metrics; unknown keys {sorted(unknown)}")
    return ProbeSpec(name, doc, params, tuple(metrics), bool(literal.get("needs_baseline", False)),
                     tuple(literal.get("tasks", ("classification",))), bool(literal.get("scores_items", True)))


@cache
def declarations() -> dict[str, ProbeSpec]:
    """Every built-in probe's declaration, by name, read statically from ``audit/probes/*.py``."""
    out = {}
    for path in sorted(PROBES_DIR.glob("*.py")):
        if not path.stem.startswith("_"):
            literal, doc = _spec_literal(path)
            out[path.stem] = build_spec(path.stem, literal, doc)
    return out


def get(name: str, where: str = "") -> ProbeSpec:
    specs = declarations()
    if name not in specs:
        raise SpecError(f"unknown probe '{name}'", where, did_you_mean(name, specs))
    return specs[name]
