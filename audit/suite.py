"""Benchmark suites: YAML → frozen dataclasses, with `include:` inheritance and validation.

A suite is the unit of work (as in lm-evaluation-harness task YAMLs): data sources, labels,
shift sets, probes with their parameters, and the gates. Everything is validated here,
before any model loads; each error names the file, the key and the fix.
"""

from __future__ import annotations

import hashlib
import importlib.resources
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from audit import registry
from audit.errors import SpecError

SUITES_DIR = Path(str(importlib.resources.files("audit.suites")))  # the repository's suites/ folder

TOP_KEYS = {"include", "name", "description", "labels", "data", "shift_sets", "probes", "gates", "max_length",
            "inconclusive"}
DATA_KEYS = {"path", "text_field", "label_field", "label_map", "hf_config", "hf_split", "description", "sample",
             "pair_field"}
SPLITS = {"eval", "reference"}
GATE_KEYS = {"name", "metric", "min", "max", "max_regression", "confidence", "min_samples", "severity", "description"}
SEVERITIES = ("fail", "warn")


@dataclass(frozen=True)
class DataSpec:
    """Where one labelled split comes from. ``path`` is absolute, or ``hf:<dataset id>``."""

    name: str
    path: str
    text_field: str
    label_field: str
    label_map: dict[str, str] | None = None
    hf_config: str | None = None
    hf_split: str | None = None
    description: str = ""
    sample: int | None = None  # shift sets: score a seeded sample of this many rows (whole pairs when paired)
    pair_field: str | None = None  # contrast sets: rows sharing this field's value form a pair

    @property
    def is_hub(self) -> bool:
        return self.path.startswith("hf:")


@dataclass(frozen=True)
class GateSpec:
    """A threshold on one metric (``probe.metric``); data, never code."""

    name: str
    metric: str
    min: float | None = None
    max: float | None = None
    max_regression: float | None = None  # worst allowed change against the baseline, in the metric's bad direction
    confidence: float | None = None  # decide on the metric's CI instead of its point estimate
    min_samples: int | None = None  # fewer eval examples than this: inconclusive
    severity: str = "fail"
    description: str = ""

    @property
    def probe(self) -> str:
        return self.metric.split(".", 1)[0]

    @property
    def threshold(self) -> dict[str, float]:
        return {k: v for k, v in (("min", self.min), ("max", self.max), ("max_regression", self.max_regression))
                if v is not None}


@dataclass(frozen=True)
class Suite:
    name: str
    description: str
    path: Path
    files: tuple[Path, ...]  # the suite file and everything it includes
    labels: tuple[str, ...]
    eval: DataSpec
    reference: DataSpec | None
    shift_sets: dict[str, DataSpec]
    probes: dict[str, dict[str, Any]]  # probe name -> parameters, in run order
    gates: tuple[GateSpec, ...]
    max_length: int | None = None
    inconclusive_fails: bool = True  # does an inconclusive blocking gate fail the run?
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    def sha256(self) -> str:
        h = hashlib.sha256()
        for f in self.files:
            h.update(f.read_bytes())
        return h.hexdigest()


def builtin_suites() -> dict[str, Path]:
    """Built-in benchmarks: every ``suites/*.yaml`` whose name does not start with ``_``."""
    return {p.stem: p for p in sorted(SUITES_DIR.glob("*.yaml")) if not p.stem.startswith("_")}


def resolve(name_or_path: str) -> Path:
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml"):
        if not path.is_file():
            raise SpecError("suite file not found", str(path), "check the path, or name a built-in suite: audit suites")
        return path.resolve()
    suites = builtin_suites()
    if name_or_path not in suites:
        raise SpecError(f"unknown benchmark '{name_or_path}'", "--benchmark", registry.did_you_mean(name_or_path, suites))
    return suites[name_or_path]


def load(name_or_path: str) -> Suite:
    """Read, merge includes, and validate a suite (a built-in name or a YAML path)."""
    path = resolve(name_or_path)
    merged, files = _read_with_includes(path, ())
    return _build(merged, path, files)


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise SpecError("file is not UTF-8 text", str(path), "save the suite as UTF-8") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise SpecError(f"invalid YAML ({getattr(exc, 'problem', exc)})", where, "fix the YAML syntax") from None
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise SpecError("a suite must be a YAML mapping", str(path), "start the file with keys such as 'name:'")
    _check_keys(doc, TOP_KEYS, str(path))
    return doc


def _check_keys(mapping: dict, allowed: set[str], where: str) -> None:
    for key in mapping:
        if key not in allowed:
            raise SpecError(f"unknown key '{key}'", where, registry.did_you_mean(str(key), allowed))


def _read_with_includes(path: Path, chain: tuple[Path, ...]) -> tuple[dict[str, Any], tuple[Path, ...]]:
    if path in chain:
        raise SpecError("include cycle", " -> ".join(map(str, chain + (path,))), "remove one of the includes")
    doc = _read_yaml(path)
    _absolutize_paths(doc, path)
    includes = doc.pop("include", [])
    includes = [includes] if isinstance(includes, str) else includes
    if not isinstance(includes, list):
        raise SpecError("'include' must be a file name or a list of them", f"{path}: include", "write include: _defaults.yaml")
    merged: dict[str, Any] = {}
    files: tuple[Path, ...] = ()
    for inc in includes:
        inc_path = (path.parent / inc).resolve()
        if not inc_path.is_file():
            raise SpecError(f"included file '{inc}' not found", f"{path}: include", "give a path relative to the suite file")
        inc_doc, inc_files = _read_with_includes(inc_path, chain + (path,))
        merged = _merge(merged, inc_doc)
        files += inc_files
    return _merge(merged, doc), (path,) + files


def _absolutize_paths(doc: dict, path: Path) -> None:
    """Data paths are relative to the file that declares them, so includes stay portable."""
    sections = [doc.get("data"), doc.get("shift_sets")]
    for section in sections:
        if not isinstance(section, dict):
            continue
        for spec in section.values():
            if isinstance(spec, dict) and isinstance(spec.get("path"), str) and not spec["path"].startswith("hf:"):
                spec["path"] = str((path.parent / spec["path"]).resolve())


def _merge(base: dict, over: dict) -> dict:
    """Deep-merge mappings; gate lists merge by gate name (a later gate replaces an earlier one)."""
    out = dict(base)
    for key, value in over.items():
        if key == "gates" and isinstance(value, list) and isinstance(out.get(key), list):
            by_name = {g.get("name"): g for g in out[key] if isinstance(g, dict)}
            by_name.update({g.get("name"): g for g in value if isinstance(g, dict)})
            out[key] = list(by_name.values())
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _build(doc: dict[str, Any], path: Path, files: tuple[Path, ...]) -> Suite:
    where = str(path)
    name = doc.get("name") or path.stem
    labels = doc.get("labels")
    if not isinstance(labels, list) or len(labels) < 2 or not all(isinstance(x, str) for x in labels):
        raise SpecError("'labels' must list at least two label names", f"{where}: labels", "write labels: [negative, positive]")
    if len(set(labels)) != len(labels):
        raise SpecError("'labels' has duplicates", f"{where}: labels", "give each label once")
    labels = tuple(labels)

    data = doc.get("data")
    if not isinstance(data, dict) or "eval" not in data:
        raise SpecError("missing the eval split", f"{where}: data.eval", "declare data: {eval: {path: ..., text_field: ...}}")
    _check_keys(data, SPLITS, f"{where}: data")
    splits = {k: _data_spec(k, v, labels, f"{where}: data.{k}") for k, v in data.items()}
    shifts = doc.get("shift_sets") or {}
    if not isinstance(shifts, dict):
        raise SpecError("'shift_sets' must be a mapping of name to data source", f"{where}: shift_sets", "see suites/sst2.yaml")
    shift_sets = {k: _data_spec(k, v, labels, f"{where}: shift_sets.{k}") for k, v in shifts.items()}

    probes = _probes(doc.get("probes") or {}, where)
    gates = tuple(_gate(g, i, probes, labels, tuple(shift_sets), where) for i, g in enumerate(doc.get("gates") or []))
    if len({g.name for g in gates}) != len(gates):
        raise SpecError("two gates share a name", f"{where}: gates", "give each gate a unique name")
    max_length = doc.get("max_length")
    if max_length is not None and (not isinstance(max_length, int) or max_length < 8):
        raise SpecError("'max_length' must be an integer ≥ 8", f"{where}: max_length", "e.g. max_length: 128")
    inconclusive = doc.get("inconclusive", "fail")
    if inconclusive not in ("fail", "warn"):
        raise SpecError(f"unknown value '{inconclusive}'", f"{where}: inconclusive", "use fail or warn")
    return Suite(
        name=str(name), description=str(doc.get("description", "")), path=path, files=files, labels=labels,
        eval=splits["eval"], reference=splits.get("reference"), shift_sets=shift_sets, probes=probes,
        gates=gates, max_length=max_length, inconclusive_fails=inconclusive == "fail", raw=doc,
    )


def _data_spec(name: str, spec: Any, labels: tuple[str, ...], where: str) -> DataSpec:
    if not isinstance(spec, dict):
        raise SpecError("a data source must be a mapping", where, "give path: and text_field:")
    _check_keys(spec, DATA_KEYS, where)
    for key in ("path", "text_field", "label_field"):
        if not isinstance(spec.get(key), str):
            raise SpecError(f"missing '{key}'", where, f"add {key}: ...")
    if not spec["path"].startswith("hf:") and not Path(spec["path"]).is_file():
        raise SpecError(f"data file not found: {spec['path']}", f"{where}.path", "give a path relative to the suite file")
    label_map = spec.get("label_map")
    if label_map is not None:
        if not isinstance(label_map, dict):
            raise SpecError("'label_map' must map raw values to label names", f"{where}.label_map", "e.g. {0: negative}")
        label_map = {str(k): str(v) for k, v in label_map.items()}
        for raw, lab in label_map.items():
            if lab not in labels:
                raise SpecError(f"label_map maps '{raw}' to unknown label '{lab}'", f"{where}.label_map",
                                f"use one of the suite labels: {', '.join(labels)}")
    sample = spec.get("sample")
    if sample is not None and (not isinstance(sample, int) or isinstance(sample, bool) or sample < 1):
        raise SpecError("'sample' must be a positive integer", f"{where}.sample", "e.g. sample: 300, or remove it")
    pair_field = spec.get("pair_field")
    if pair_field is not None and not isinstance(pair_field, str):
        raise SpecError("'pair_field' must name a column", f"{where}.pair_field", "e.g. pair_field: batch_id")
    return DataSpec(
        name=name, path=spec["path"], text_field=spec["text_field"], label_field=spec["label_field"],
        label_map=label_map, hf_config=spec.get("hf_config"), hf_split=spec.get("hf_split"),
        description=str(spec.get("description", "")), sample=sample, pair_field=pair_field,
    )


def _probes(section: Any, where: str) -> dict[str, dict[str, Any]]:
    if not isinstance(section, dict):
        raise SpecError("'probes' must map probe names to parameters", f"{where}: probes", "e.g. probes: {accuracy: {}}")
    out = {}
    for name, params in section.items():
        params = params or {}
        here = f"{where}: probes.{name}"
        probe = registry.get(name, here)
        if not isinstance(params, dict):
            raise SpecError("probe parameters must be a mapping", here, "write {} for defaults")
        for key in params:
            if key not in probe.params:
                raise SpecError(f"unknown parameter '{key}'", here, registry.did_you_mean(str(key), probe.params or {"(none)"}))
        out[name] = params
    return out


def _gate(spec: Any, i: int, probes: dict, labels: tuple[str, ...], shift_sets, where: str) -> GateSpec:
    here = f"{where}: gates[{i}]"
    if not isinstance(spec, dict):
        raise SpecError("a gate must be a mapping", here, "give name:, metric: and min: or max:")
    _check_keys(spec, GATE_KEYS, here)
    for key in ("name", "metric"):
        if not isinstance(spec.get(key), str):
            raise SpecError(f"missing '{key}'", here, f"add {key}: ...")
    probe_name, _, metric = spec["metric"].partition(".")
    if probe_name not in probes:
        raise SpecError(f"gate metric '{spec['metric']}' names probe '{probe_name}', which the suite does not run",
                        f"{here}.metric", f"add it under probes:, or use one of: {', '.join(probes)}")
    known = registry.get(probe_name).metric_names(labels, shift_sets)
    if metric not in known:
        raise SpecError(f"probe '{probe_name}' has no metric '{metric}'", f"{here}.metric", registry.did_you_mean(metric, known))
    bounds = {k: spec.get(k) for k in ("min", "max", "max_regression") if spec.get(k) is not None}
    if not bounds or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in bounds.values()):
        raise SpecError("a gate needs a numeric 'min', 'max' or 'max_regression'", here, "e.g. max: 0.05")
    if "max_regression" in bounds and len(bounds) > 1:
        raise SpecError("'max_regression' cannot be combined with 'min' or 'max'", here, "split it into two gates")
    severity = spec.get("severity", "fail")
    if severity not in SEVERITIES:
        raise SpecError(f"unknown severity '{severity}'", f"{here}.severity", "use fail or warn")
    confidence = spec.get("confidence")
    if confidence is not None:
        level = probes[probe_name].get("confidence", registry.get(probe_name).params.get("confidence"))
        if level is None or "max_regression" not in bounds and f"{metric}_ci_low" not in known:
            raise SpecError(f"probe '{probe_name}' reports no confidence interval for '{metric}'", f"{here}.confidence",
                            "remove confidence, or gate a metric that has one")
        if confidence != level:
            raise SpecError(f"confidence {confidence} differs from the {level} at which probe '{probe_name}' computes "
                            "its intervals", f"{here}.confidence", f"use confidence: {level}, or set the probe's confidence")
    min_samples = spec.get("min_samples")
    if min_samples is not None and (not isinstance(min_samples, int) or min_samples < 1):
        raise SpecError("'min_samples' must be a positive integer", f"{here}.min_samples", "e.g. min_samples: 200")
    return GateSpec(name=spec["name"], metric=spec["metric"], severity=severity, confidence=confidence,
                    min_samples=min_samples, description=str(spec.get("description", "")),
                    **{k: float(v) for k, v in bounds.items()})
