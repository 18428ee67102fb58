"""`audit check` and `audit contamination` as functions: prepare → load → probes → gates → report.

`prepare` checks everything that can be wrong with the input (options, suite, every data file,
probe parameters, model files and labels, the output folder) before the first model loads, so
bad input never leaves a partial report. Loading then refuses models that produce garbage
(unknown-token tokenizers, non-finite logits) before any probe runs.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import sys
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path

from audit import assemble, contract, gates as gates_mod, report, suite as suite_mod
from audit.cache import PredictionCache
from audit.context import ProbeContext, ProbeResult
from audit.contract import Estimate
from audit.data import Split, file_format, iter_records, read_suite_data, required_fields
from audit.engine import Engine, EngineConfig
from audit.errors import AuditError, DataError
from audit.residency import Residency
from audit.files import check_out_dir
from audit.metrics import classification
from audit.scorer import Scorer
from audit.models import (CAUSAL_LM, CHOICE_POSITIONS, CLASSIFIER, Alignment, ModelSource, align_labels,
                          check_chat_template, check_tokenizer, inspect_model, load_model,
                          resolve_dtype)
from audit import lmeval
from audit.causal_lm import Continuations, n_options
from audit.suite import CLASSIFICATION, GENERATE, NAME, PERPLEXITY, DataSpec, Suite

MAX_SEED = 2**32 - 1  # numpy's SeedSequence takes any non-negative int; CLI and manifests keep it to 32 bits
SMOKE_TEXTS = 16  # eval texts scored right after loading, before any probe
CORPUS_PROBES = ("contamination", "longtail")  # the probes that read --train-data


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
    drop_labels: tuple[str, ...] = ()
    shift_sets: dict[str, str] = field(default_factory=dict)  # --shift-set NAME=PATH
    chat_template: bool = False  # --chat-template: a generate suite's prompts through the tokenizer's template
    dtype: str = "auto"  # --dtype: what the weights are loaded in (models.resolve_dtype)
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
                      "train_data": [local(str(p)) for p in self.train_data], "drop_labels": list(self.drop_labels),
                      "shift_sets": {k: local(v) for k, v in self.shift_sets.items()},
                      "probes": list(self.probes) if self.probes is not None else None}

    @classmethod
    def from_dict(cls, d: dict, out: Path) -> "CheckRequest":
        try:
            return cls(**{**d, "train_data": tuple(Path(p) for p in d["train_data"]),
                          "probes": tuple(d["probes"]) if d["probes"] is not None else None,
                          "drop_labels": tuple(d["drop_labels"]), "engine": EngineConfig(**d["engine"]), "out": out})
        except (TypeError, KeyError) as exc:
            raise AuditError(f"the report's manifest.request cannot be re-run ({exc})", "manifest.request",
                             "re-run the audit with this version of audit, then verify that report") from None


@dataclass
class Plan:
    """Everything an audit needs, checked: what `prepare` hands to the model-loading and probe steps."""

    suite: Suite
    probes: dict[str, dict]  # name -> resolved parameters, in run order
    splits: dict[str, Split]
    eval_full: Split
    eval: Split
    sources: dict[str, ModelSource]  # role -> inspected model
    alignments: dict[str, Alignment]  # role -> how its classes map onto the suite's labels
    engine: Engine | None
    train_files: list[str]  # the files behind --train-data
    dtypes: dict[str, tuple[str, str]] = field(default_factory=dict)  # role -> (dtype its weights load in, why)


def implementation(name: str):
    """The ``run`` function of a built-in probe (imported only when the probe runs)."""
    return importlib.import_module(f"audit.probes.{name}").run


def check_options(req: CheckRequest) -> None:
    if not isinstance(req.seed, int) or isinstance(req.seed, bool) or not 0 <= req.seed <= MAX_SEED:
        raise AuditError(f"seed must be an integer from 0 to {MAX_SEED}, got {req.seed!r}", "--seed", "e.g. --seed 0")
    if req.limit is not None and (not isinstance(req.limit, int) or req.limit < 1):
        raise AuditError("--limit must be at least 1", "--limit", "e.g. --limit 200")
    if req.probes is not None and not req.probes:
        raise AuditError("names no probe", "--probes", "e.g. --probes accuracy,calibration (see audit validate)")


def check_task_options(req: CheckRequest, suite: Suite) -> None:
    """Options that only some tasks read."""
    if req.chat_template and suite.task.kind != GENERATE:
        raise AuditError(f"renders generation prompts, and {suite.name} is a {suite.task.kind} suite", "--chat-template",
                         "drop --chat-template, or choose a generate suite")


def probe_names(suite: Suite, req: CheckRequest) -> list[str]:
    """The probes to run: the suite's, or the ``--probes`` subset.

    An option the selection would ignore is an error, never silence: ``--shift-set`` without the shift
    probe, ``--train-data`` without a probe that reads it, a ``--probes`` entry that needs ``--baseline``."""
    names = list(suite.probes) if req.probes is None else list(dict.fromkeys(req.probes))
    if req.probes is not None:
        for name in names:
            spec = contract.get(name, "--probes")
            if spec.needs_baseline and req.baseline is None:
                raise AuditError(f"probe '{name}' compares against a baseline, and none was given", "--probes",
                                 f"pass --baseline MODEL, or drop {name} from --probes")
    if req.shift_sets and "shift" not in names:
        if req.probes is not None:
            raise AuditError("read by the shift probe, which --probes leaves out", "--shift-set",
                             "add shift to --probes, or drop --shift-set")
        names.append("shift")  # the suite does not list it: command-line shift sets turn it on
    if req.train_data and not set(CORPUS_PROBES) & set(names):
        raise AuditError(f"read only by the {' and '.join(CORPUS_PROBES)} probes, and neither runs",
                         "--train-data", "add contamination to --probes, or drop --train-data")
    return names


def cli_shift_spec(name: str, path: str, suite: Suite) -> DataSpec:
    """A ``--shift-set`` file in the benchmark's own eval format (its fields and label map), else with
    ``text`` and ``label`` fields; labels as suite label names or 0-based indices, too."""
    if not NAME.match(name):
        raise AuditError(f"shift set name '{name}' must be letters, digits, '_', '.' or '-'", f"--shift-set {name}",
                         "e.g. --shift-set reviews=reviews.tsv")
    if name in suite.shift_sets:
        raise AuditError(f"the suite already declares a shift set '{name}'", f"--shift-set {name}", "choose another name")
    if not Path(path).is_file():
        raise AuditError(f"shift set file not found: {path}", f"--shift-set {name}", "give NAME=PATH to a local file")
    eval_spec = suite.eval
    names = {**{str(i): lab for i, lab in enumerate(suite.labels)}, **{lab: lab for lab in suite.labels}}
    own = dataclasses.replace(eval_spec, name=name, path=str(Path(path).resolve()), description=f"--shift-set {name}",
                              label_map={**names, **(eval_spec.label_map or {})}, sample=None, pair_field=None,
                              columns=eval_spec.columns if file_format(Path(path)) in (".csv", ".tsv") else None)
    plain = DataSpec(name, own.path, "text", "label", names, description=own.description)
    first = next(iter(iter_records(Path(path), columns=own.columns)), (0, None))[1]
    if first is None:
        raise DataError("no rows", path, "the shift set needs at least one labelled example")
    for spec in (own, plain):
        if all(f in first for f in required_fields(spec).values()):
            return spec
    wanted = ", ".join(required_fields(own).values())
    raise DataError(f"fields {list(first)} fit neither the benchmark's format ({wanted}) nor text and label",
                    f"--shift-set {name}", f"give the file {wanted} columns, or text and label columns")


def with_cli_shift_sets(suite: Suite, extra: dict[str, str]) -> Suite:
    if not extra:
        return suite
    specs = {**suite.shift_sets, **{name: cli_shift_spec(name, path, suite) for name, path in extra.items()}}
    return dataclasses.replace(suite, shift_sets=specs)


def train_files(paths, text_field: str | None = None) -> list[str]:
    """The files behind --train-data (files, folders, globs, hf: ids), each opened and its first document
    read, so bad paths and unreadable files fail before any model loads."""
    from audit.contamination.corpus import expand

    sources = expand(paths, text_field)
    for source in sources:
        source.check()
    return [s.path for s in sources]


def check_executor(params: dict | None) -> None:
    """Where the contamination scan runs: Ray installed when asked for; Ray settings only with Ray."""
    if not params:
        return
    if params["executor"] == "ray" and importlib.util.find_spec("ray") is None:
        raise AuditError("the Ray executor needs Ray, which is not installed", "contamination executor",
                         "pip install 'audit[ray]'")
    if params.get("resume"):
        from audit.contamination.resume import check_folder

        check_folder(Path(params["resume"]))
    unused = [k for k in ("workers", "ray_address") if params[k] is not None]
    if params["executor"] != "ray" and unused:
        raise AuditError(f"{unused[0]} sets up the Ray executor, and the scan runs locally", "contamination executor",
                         "add executor: ray (--executor ray), or drop it")


def prepare(req: CheckRequest, log, with_models: bool = True) -> Plan:
    """Every input checked, no model loaded and nothing written: the one place bad input is found."""
    check_options(req)
    suite = lmeval.load(req.benchmark, req.allow_unsafe) if lmeval.is_lmeval(req.benchmark) else \
        suite_mod.load(req.benchmark)
    check_task_options(req, suite)
    names = probe_names(suite, req)
    suite = with_cli_shift_sets(suite, req.shift_sets)
    probes = {name: suite.probe_params(name, {**suite.probes.get(name, {}), **req.params} if name == "contamination"
                                       else None) for name in names}
    corpora = train_files(req.train_data, probes.get("contamination", {}).get("text_field"))
    check_executor(probes.get("contamination"))
    splits = read_suite_data(suite)
    eval_full = splits["eval"]
    if req.limit is not None and req.limit >= len(eval_full):
        log(f"warning: --limit {req.limit} is not below the {len(eval_full)} eval rows: every row is scored")
    sources, alignments, engine = {}, {}, None
    if with_models:
        for role, source in (("model", req.model), ("baseline", req.baseline)):
            if source:
                sources[role] = inspect_model(source, allow_unsafe=req.allow_unsafe)
                alignments[role] = alignment(sources[role], suite, req, role)
        if suite.task.chat or req.chat_template:
            for role, src in sources.items():
                check_chat_template(src, "--chat-template" if req.chat_template else f"{suite.path}: generation.chat")
        if "baseline" in sources and sources["baseline"].fingerprint == sources["model"].fingerprint:
            raise AuditError("the baseline has the same files as the model, so every comparison would be empty",
                             "--baseline", "compare against the uncompressed model the audited one was made from")
    check_out_dir(req.out, {role: s.directory for role, s in sources.items() if not s.gguf})  # a GGUF is one file
    dtypes = {}
    if with_models:
        max_length = req.engine.max_length or suite.max_length
        engine = Engine(EngineConfig(**{**asdict(req.engine), "max_length": max_length}),
                        PredictionCache.open(warn=log) if req.use_cache else None)
        dtypes = {role: resolve_dtype(src, req.dtype, engine.device.type,
                                      "--dtype" if req.dtype != "auto" else src.source) for role, src in sources.items()}
    return Plan(suite, probes, splits, eval_full, eval_full.sample(req.limit, req.seed), sources, alignments, engine,
                corpora, dtypes)


def alignment(src: ModelSource, suite: Suite, req: CheckRequest, role: str = "model") -> Alignment:
    """How the model's outputs map onto the suite's labels; a model kind that does not fit the task is bad input."""
    wanted = CLASSIFIER if suite.task.kind == CLASSIFICATION else CAUSAL_LM
    if src.kind != wanted:
        where = f"--baseline {src.source}" if role == "baseline" else src.source
        raise AuditError(f"a {suite.task.kind} suite needs a {wanted}, and this is a {src.kind}", where,
                         f"audit a {wanted} on {suite.name}, or choose a {src.kind} suite (audit suites)")
    if src.kind == CLASSIFIER:
        return align_labels(src.labels, suite.labels, req.label_map, req.drop_labels, src.source)
    for option, given in (("--label-map", req.label_map), ("--drop-label", req.drop_labels)):
        if given:
            raise AuditError("a causal LM has no classes to map or drop", option, f"drop {option}")
    return CHOICE_POSITIONS


def chance_accuracy(split: Split, labels: tuple[str, ...]) -> float:
    """What a model that ignores its input scores (where accuracy metrics' declared range starts)."""
    options = [n_options(item) for item in split.items] if split.items is not None else len(labels)
    return classification.chance_accuracy(split.labels, options)


def smoke(scorer: Scorer, split: Split) -> None:
    """Score a few inputs right after loading: the engine refuses non-finite logits in every batch (one generation
    item, scored with its gold answer: a forward pass instead of a whole generation, and few-shot prompts are long,
    about 700 tokens for GSM8K's)."""
    if not scorer.is_lm:
        scorer.proba(split.texts[:SMOKE_TEXTS])
    elif scorer.generation is not None:
        scorer.continuation_scores([Continuations(q.context, (scorer.target_delimiter + q.target,))
                                    for q in split.items[:1]])
    elif split.items is not None:
        scorer.continuation_scores(split.items[:SMOKE_TEXTS])
    else:
        scorer.engine.token_logprobs(scorer.model, [split.texts[0][:2000]])


def load_scorers(plan: Plan, req: CheckRequest, log) -> dict[str, Scorer]:
    """Load each model and refuse one whose tokenizer does not fit or whose logits are not finite. The models
    share one residency: one model's weights in memory at a time (audit/residency.py)."""
    scorers = {}
    residency = Residency(plan.engine.stats)
    for role, src in plan.sources.items():
        log(f"loading {role} {src.source}")
        model = load_model(src, allow_unsafe=req.allow_unsafe, dtype=plan.dtypes[role], residency=residency)
        log(f"{role} weights in {model.dtype} ({model.dtype_reason})")
        check_tokenizer(model, plan.eval.texts)
        task = plan.suite.task
        scorer = scorers[role] = Scorer(plan.engine, model, plan.alignments[role], role, len(plan.suite.labels),
                                        task.target_delimiter, task.generation,
                                        task.chat_fewshot if task.chat or req.chat_template else None)
        smoke(scorer, plan.eval)
        limit = plan.engine.max_length(model)
        if plan.engine.config.max_length and limit < plan.engine.config.max_length:
            log(f"{role}: max_length {plan.engine.config.max_length} clamped to {limit} ({model.max_length_limit})")
    return scorers


def truncation(scorers: dict[str, Scorer], split: Split, task: str, log) -> dict | None:
    """How many eval items the engine must cut to fit each model (the worse model's count decides), said in
    the log when more than a few are; None for running text, which is scored in windows and never cut."""
    if task == PERPLEXITY:
        return None
    counts = {role: int(s.truncated(split.inputs).sum()) for role, s in scorers.items()}
    role = max(counts, key=counts.get)
    n, cut = len(split), counts[role]
    limit = scorers[role].engine.max_length(scorers[role].model)
    out = {"share": cut / n, "n_truncated": cut, "n": n, "max_length": limit, "by_role": counts}
    if out["share"] > gates_mod.TRUNCATION_NOTE:
        log(f"warning: {cut} of {n} eval items ({out['share']:.0%}) are longer than max_length {out['max_length']} "
            f"in the {role}'s tokens and are cut")
    return out


def check(req: CheckRequest, log=lambda msg: None) -> dict:
    """Run an audit and write its report; returns the report dict."""
    plan = prepare(req, log)
    scorers = load_scorers(plan, req, log)
    ctx = ProbeContext(plan.suite, plan.eval, scorers["model"], scorers.get("baseline"), req.seed,
                       tuple(Path(p) for p in req.train_data), dict(plan.splits), req.limit)
    return run_and_report(req, plan, ctx, log, truncation(scorers, plan.eval, plan.suite.task.kind, log))


def contamination(req: CheckRequest, log=lambda msg: None) -> dict:
    """The contamination probe alone, without a model: for reviewers checking a benchmark against corpora."""
    plan = prepare(dataclasses.replace(req, probes=("contamination",)), log, with_models=False)
    ctx = ProbeContext(plan.suite, plan.eval, None, None, req.seed, tuple(Path(p) for p in req.train_data),
                       dict(plan.splits), req.limit)
    return run_and_report(req, plan, ctx, log)


def run_probe(name: str, params: dict, ctx: ProbeContext, strict: bool) -> dict:
    """One probe's report section: ok (its estimates, checked against its declaration), skipped, or error."""
    spec = contract.get(name)
    if spec.needs_baseline and ctx.baseline is None:
        return {"status": "skipped", "reason": "needs --baseline", "metrics": {}}
    started = time.perf_counter()
    try:
        result = implementation(name)(ctx, **params)
        if result.skipped:
            return {"status": "skipped", "reason": result.skipped, "metrics": {}}
        section = section_of(result, spec, ctx.suite.labels, params)
    except AuditError:  # bad input found mid-run (e.g. a corrupt corpus line, NaN logits): exit 2, no report
        raise
    except Exception as exc:  # a failing probe becomes an ERROR section, not a crash
        if strict:
            raise
        return {"status": "error", "error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc(),
                "metrics": {}}
    return {"status": "ok", "params": params, "n": len(ctx.eval), **section,
            "seconds": round(time.perf_counter() - started, 3)}


def section_of(result: ProbeResult, spec: contract.ProbeSpec, labels: tuple[str, ...], params: dict) -> dict:
    """Estimates as report dicts. A metric the probe did not declare, or an undefined one without a reason,
    breaks its contract (an error)."""
    declared = set(spec.metric_names(labels, params))

    def estimates(metrics: dict) -> dict:
        undeclared = sorted(set(metrics) - declared)
        if undeclared:
            raise ValueError(f"probe {spec.name} returned undeclared metric(s) {undeclared} (declare them in its SPEC)")
        out = {k: Estimate.of(v) for k, v in metrics.items()}
        unexplained = sorted(k for k, est in out.items() if est.value is None and not est.note)
        if unexplained:  # a NaN nobody explained is a bug, not an inconclusive gate
            raise ValueError(f"probe {spec.name} returned no value and no reason for {unexplained} "
                             "(return Estimate(None, note=why))")
        return {k: est.as_dict() for k, est in out.items()}

    out = {"metrics": estimates(result.metrics)}
    if result.baseline_metrics is not None:
        base = out["baseline_metrics"] = estimates(result.baseline_metrics)
        out["deltas"] = {k: {"value": v["value"] - base[k]["value"], **({"ci": list(result.delta_ci[k])}
                                                                       if k in result.delta_ci else {})}
                         for k, v in out["metrics"].items() if v["value"] is not None
                         and base.get(k, {}).get("value") is not None}
    out["details"] = result.details
    return out


def run_and_report(req: CheckRequest, plan: Plan, ctx: ProbeContext, log, cut: dict | None = None) -> dict:
    """Run the probes, apply the gates, write the report files; returns the report dict. ``cut``: how many eval
    items the engine cuts (see ``truncation``)."""
    sections = {}
    for name, params in plan.probes.items():
        log(f"probe {name}")
        sections[name] = run_probe(name, params, ctx, req.strict)
    chance = chance_accuracy(plan.eval, plan.suite.labels) if plan.suite.task.labelled else None
    gate_results = [gates_mod.evaluate(g, sections, chance, cut) for g in plan.suite.gates
                    if req.command == "check" or g.probe in plan.probes]
    result = assemble.report(req=req, plan=plan, ctx=ctx, sections=sections, gates=gate_results, chance=chance,
                             truncation=cut)
    report.write_all(result, req.out)
    return result
