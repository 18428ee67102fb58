"""`audit check` as a function: suite → data → models → engine → probes → gates → report.

Everything that can be wrong with the input (suite, data, probe names, model files, labels)
is checked before the first model forward pass, so bad input never leaves a partial report.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path

from audit import gates as gates_mod
from audit import manifest, registry, report, suite as suite_mod, tradeoff
from audit.cache import PredictionCache
from audit.context import ProbeContext
from audit.data import read_split
from audit.engine import Engine, EngineConfig, Scorer
from audit.errors import AuditError
from audit.models import align_labels, load_model
from audit.suite import DataSpec


@dataclass
class CheckRequest:
    model: str
    benchmark: str
    baseline: str | None = None
    train_data: tuple[Path, ...] = ()
    probes: tuple[str, ...] | None = None  # None: the suite's probes
    out: Path = Path("reports")
    engine: EngineConfig = field(default_factory=EngineConfig)
    seed: int = 0
    limit: int | None = None
    strict: bool = False
    allow_unsafe: bool = False
    label_map: dict[str, str] | None = None
    shift_sets: dict[str, str] = field(default_factory=dict)  # --shift-set NAME=PATH
    use_cache: bool = True
    argv: list[str] = field(default_factory=lambda: list(sys.argv))
    command: str = "check"  # check | contamination (what `audit verify` re-runs)
    params: dict = field(default_factory=dict)  # contamination: parameter overrides from the command line

    def as_dict(self) -> dict:
        """What `audit verify` needs to re-run this audit (JSON-ready)."""
        def local(p):  # local paths absolute, so verify works from any folder; hub ids and names as given
            return str(Path(p).resolve()) if p and Path(p).exists() else p

        out = {k: v for k, v in asdict(self).items() if k not in ("argv", "out", "strict")}
        return out | {"model": local(self.model), "baseline": local(self.baseline), "benchmark":
                      self.benchmark if self.benchmark in suite_mod.builtin_suites() else local(self.benchmark),
                      "train_data": [local(str(p)) for p in self.train_data],
                      "shift_sets": {k: local(v) for k, v in self.shift_sets.items()},
                      "probes": list(self.probes) if self.probes else None}

    @classmethod
    def from_dict(cls, d: dict, out: Path) -> "CheckRequest":
        try:
            return cls(**{**d, "train_data": tuple(Path(p) for p in d["train_data"]),
                          "probes": tuple(d["probes"]) if d["probes"] else None,
                          "engine": EngineConfig(**d["engine"]), "out": out})
        except (TypeError, KeyError) as exc:
            raise AuditError(f"the report's manifest.request cannot be re-run ({exc})", "manifest.request",
                             "re-run the audit with this version of audit, then verify that report") from None


def select_probes(suite, names) -> dict[str, dict]:
    """The suite's probes, or the ``--probes`` subset (suite parameters kept, defaults otherwise)."""
    if names is None:
        return dict(suite.probes)
    for name in names:
        registry.get(name, "--probes")
    return {name: suite.probes.get(name, {}) for name in names}


def add_shift_sets(suite, extra: dict[str, str]):
    """The suite plus command-line shift sets: files with ``text`` and ``label`` columns, labels given as
    suite label names or their 0-based index; they turn the shift probe on."""
    if not extra:
        return suite
    specs = dict(suite.shift_sets)
    label_map = {**{str(i): lab for i, lab in enumerate(suite.labels)}, **{lab: lab for lab in suite.labels}}
    for name, path in extra.items():
        if not Path(path).is_file():
            raise AuditError(f"shift set file not found: {path}", f"--shift-set {name}", "give NAME=PATH to a local file")
        specs[name] = DataSpec(name, str(Path(path).resolve()), "text", "label", label_map,
                               description=f"--shift-set {name}")
    probes = suite.probes if "shift" in suite.probes else {**suite.probes, "shift": {}}
    return dataclasses.replace(suite, shift_sets=specs, probes=probes)


def sample_eval(split, limit: int | None, seed: int):
    """A seeded sample of ``limit`` eval items (in source order), or the whole split."""
    if limit is not None and limit < 1:
        raise AuditError("--limit must be at least 1", "--limit", "e.g. --limit 200")
    return split.sample(limit, seed)


def run_probe(name: str, params: dict, ctx: ProbeContext, strict: bool) -> dict:
    probe = registry.get(name)
    if probe.needs_baseline and ctx.baseline is None:
        return {"status": "skipped", "reason": "needs --baseline", "metrics": {}}
    try:
        result = probe.fn(ctx, **params)
    except AuditError:  # bad input found mid-run (e.g. a corrupt corpus line): exit 2, no report
        raise
    except Exception as exc:  # a failing probe becomes an ERROR section, not a crash
        if strict:
            raise
        return {"status": "error", "error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc(),
                "metrics": {}}
    metrics = _no_nan(result.metrics)
    section = {"status": "ok", "params": {**probe.params, **params}, "n": len(ctx.eval), "metrics": metrics}
    if result.baseline_metrics is not None:
        base = section["baseline_metrics"] = _no_nan(result.baseline_metrics)
        section["deltas"] = {k: v - base[k] for k, v in metrics.items() if v is not None and base.get(k) is not None}
        section["delta_ci"] = {k: list(v) for k, v in result.delta_ci.items()}
    section["details"] = result.details
    return section


def _no_nan(metrics: dict) -> dict:
    """Undefined metrics (e.g. a success rate with nothing attacked) are reported as null, not NaN."""
    return {k: None if v is None or math.isnan(v) else float(v) for k, v in metrics.items()}


def train_files(paths) -> list[str]:
    """The files behind --train-data (files, folders, globs, hf: ids); bad paths fail before any model loads."""
    from audit.contamination.corpus import expand

    return [s.path for s in expand(paths)]


def check(req: CheckRequest, log=lambda msg: None) -> dict:
    """Run an audit and write its report; returns the report dict."""
    suite = add_shift_sets(suite_mod.load(req.benchmark), req.shift_sets)
    probes = select_probes(suite, req.probes)
    train_files(req.train_data)
    eval_full = read_split(suite.eval, suite.labels)
    eval_split = sample_eval(eval_full, req.limit, req.seed)
    engine = Engine(EngineConfig(**{**asdict(req.engine), "max_length": req.engine.max_length or suite.max_length}),
                    PredictionCache() if req.use_cache else None)

    def scorer(source: str, role: str) -> Scorer:
        log(f"loading {role} {source}")
        model = load_model(source, allow_unsafe=req.allow_unsafe)
        columns, how = align_labels(model.labels, suite.labels, req.label_map, where=source)
        return Scorer(engine, model, columns, role, how)

    model = scorer(req.model, "model")
    baseline = scorer(req.baseline, "baseline") if req.baseline else None
    ctx = ProbeContext(suite, eval_split, model, baseline, req.seed, tuple(Path(p) for p in req.train_data))
    return run_and_report(req, ctx, probes, eval_full, engine, log)


def run_and_report(req: CheckRequest, ctx: ProbeContext, probes: dict[str, dict], eval_full, engine: Engine | None,
                   log, gates_of_run_probes_only: bool = False) -> dict:
    """Run the probes, apply the gates, write the report files; returns the report dict."""
    suite, eval_split = ctx.suite, ctx.eval
    sections = {}
    for name, params in probes.items():
        log(f"probe {name}")
        sections[name] = run_probe(name, params, ctx, req.strict)
    gate_results = [gates_mod.evaluate(g, sections) for g in suite.gates
                    if g.probe in probes or not gates_of_run_probes_only]

    data_paths = [suite.eval.path] + ([suite.reference.path] if suite.reference else []) + train_files(req.train_data)
    if "shift" in probes:
        data_paths += [spec.path for spec in suite.shift_sets.values()]
    scorers = {"model": ctx.model, "baseline": ctx.baseline}
    result = {
        "schema_version": report.SCHEMA_VERSION,
        "verdict": gates_mod.verdict(gate_results, sections, suite.inconclusive_fails),
        "summary": {"tradeoff": tradeoff.line(sections, ctx.model.describe() if ctx.model else None),
                    "findings": gates_mod.findings(gate_results),
                    "inconclusive": "fail" if suite.inconclusive_fails else "warn",
                    "sampled": {name: s["details"]["sampled"] for name, s in sections.items()
                                if s.get("details", {}).get("sampled")}},
        "benchmark": {"name": suite.name, "suite": str(suite.path), "labels": list(suite.labels),
                      "n_eval": len(eval_split), "n_eval_total": len(eval_full),
                      "sampled_rows": eval_split.rows.tolist() if req.limit and len(eval_split) < len(eval_full) else None},
        "model": ctx.model.describe() if ctx.model else None,
        "baseline": ctx.baseline.describe() if ctx.baseline else None,
        "probes": sections,
        "gates": gate_results,
        "engine_stats": engine.stats.as_dict() if engine else None,
        "manifest": manifest.build(argv=req.argv, request=req.as_dict(), seed=req.seed,
                                   device=engine.device if engine else None, suite=suite, data_paths=data_paths,
                                   models={role: manifest.model_entry(s.model) for role, s in scorers.items() if s},
                                   engine_config={**asdict(engine.config), "batching": engine.batching()} if engine else None),
    }
    report.write_all(result, req.out)
    return result


def contamination(req: CheckRequest, log=lambda msg: None) -> dict:
    """The contamination probe alone, without a model: for reviewers checking a benchmark against corpora."""
    suite = suite_mod.load(req.benchmark)
    train_files(req.train_data)
    eval_full = read_split(suite.eval, suite.labels)
    eval_split = sample_eval(eval_full, req.limit, req.seed)
    registry.get("contamination")
    ctx = ProbeContext(suite, eval_split, None, None, req.seed, tuple(Path(p) for p in req.train_data))
    return run_and_report(req, ctx, {"contamination": {**suite.probes.get("contamination", {}), **req.params}},
                          eval_full, None, log, gates_of_run_probes_only=True)
