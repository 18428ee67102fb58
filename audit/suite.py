"""Benchmark suites: YAML → frozen dataclasses, with `include:` inheritance and validation.

A suite is the unit of work (as in lm-evaluation-harness task YAMLs): data sources, labels,
shift sets, probes with their parameters, and the gates. The file is validated here against
the probes' declarations (audit/contract.py), without importing any probe; each error names
the file, the key and the fix. Reading the data files is `audit.data.read_suite_data`.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import math
import re
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from audit import contract, yamlfile
from audit.errors import SpecError, did_you_mean
from audit.generation import AnswerFilter, GenerationSpec, Normalizer

SUITES_DIR = Path(str(importlib.resources.files("audit.suites")))  # the repository's suites/ folder

TOP_KEYS = {"include", "name", "description", "task", "labels", "target_delimiter", "fewshot", "data", "shift_sets",
            "text_sets", "prompts", "probes", "gates", "max_length", "inconclusive", "min_samples", "generation",
            "source", "hardware"}
SOURCE_KEYS = {"harness": str, "version": str, "task": str, "config_sha256": str, "subtasks": list}
DATA_KEYS = {"path", "text_field", "text_template", "label_field", "label_map", "columns", "hf_config", "hf_split",
             "description", "sample", "pair_field", "choices_field", "choices_fields", "choices", "gold",
             "choice_labels_field", "answer", "target_field", "slice_field", "choice_contexts", "label_file",
             "prefix_field"}
PROMPT_KEYS = {"template", "answer", "description"}
ANSWERS = ("text", "letter")  # a multiple-choice item's continuations: the choices' texts, or the positions' labels
CHOICES_SLOT = "choices"  # in a multiple-choice template, {choices} lists the item's choices as "A. text" lines
CLASSIFICATION, MULTIPLE_CHOICE, PERPLEXITY, LAST_WORD = "classification", "multiple_choice", "perplexity", "last_word"
GENERATE = "generate"
TASKS = (CLASSIFICATION, MULTIPLE_CHOICE, PERPLEXITY, LAST_WORD, GENERATE)
FEWSHOT_TASKS = (MULTIPLE_CHOICE, GENERATE)  # tasks whose items may be preceded by solved examples
LABELLED = (CLASSIFICATION, MULTIPLE_CHOICE)  # tasks whose items have a gold label among the suite's labels
GOLD = ("index", "index1", "letter", "text", "choice_label")  # index1: 1-based (WinoGrande's "1"/"2")
FEWSHOT_KEYS = {"k", "split", "seed", "delimiter", "sampler"}
SAMPLERS = ("random", "first_n")  # few-shot examples drawn per item (seeded), or the pool's first k for every item
SPLITS = {"eval", "reference", "fewshot"}  # fewshot: a split only few-shot examples come from (fixed exemplars)
GENERATION_KEYS = {"until", "max_new_tokens", "answers", "normalize", "chat", "chat_fewshot"}
ANSWER_KEYS = {"regex", "group", "group_select", "fallback"}
NORMALIZE_KEYS = {"ignore_case", "ignore_punctuation", "regexes_to_ignore"}
CHAT_FEWSHOT = ("turns", "message")  # with a chat template: solved examples as dialogue turns, or in one message
GATE_KEYS = {"name", "metric", "min", "max", "max_regression", "confidence", "min_samples", "severity", "description",
             "override"}
SEVERITIES = ("fail", "warn")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")  # shift-set names become metric names and HTML ids
# No gate decides on a handful of examples (one item gives a zero-width bootstrap CI): a suite that sets no
# min_samples gets this; a suite or a gate may set its own.
MIN_SAMPLES = 30


@dataclass(frozen=True)
class DataSpec:
    """Where one split comes from. ``path`` is absolute, or ``hf:<dataset id>``. The text (a multiple-choice
    item's context, a last-word item's context) is the ``text_field``, or ``text_template`` filled from
    several (``"{title}. {description}"``); field names may be dotted paths into JSON (``question.stem``).
    ``columns`` names the fields of a headerless .csv/.tsv file. Multiple-choice items take their choices
    from a list field, from several fields, or from a fixed list, and their gold from ``label_field`` read
    as ``gold`` says (an index, a letter, the choice's text, or one of ``choice_labels_field``)."""

    name: str
    path: str
    text_field: str | None
    label_field: str | None
    label_map: dict[str, str] | None = None
    hf_config: str | None = None
    hf_split: str | None = None
    description: str = ""
    sample: int | None = None  # shift sets: score a seeded sample of this many rows (whole pairs when paired)
    pair_field: str | None = None  # contrast sets: rows sharing this field's value form a pair
    columns: tuple[str, ...] | None = None
    text_template: str | None = None
    choices_field: str | None = None  # a list field holding the choices
    choices_fields: tuple[str, ...] | None = None  # one field per choice
    choices: tuple[str, ...] | None = None  # the same choices for every item (e.g. the letters A-D)
    gold: str = "index"
    choice_labels_field: str | None = None
    answer: str = "text"  # multiple choice: score the choices' texts, or the positions' labels (A, B, ...)
    target_field: str | None = None  # last_word: the word to predict
    slice_field: str | None = None  # a field to slice the long-tail probe by (e.g. an MMLU subject)
    choice_contexts: tuple[str, ...] | None = None  # one context template per choice; the text is what each continues
    label_file: str | None = None  # labels in a file of their own, one per line in row order (PIQA's .lst)
    prefix_field: str | None = None  # multiple choice: text before the item's context(s), e.g. few-shot examples

    @property
    def is_hub(self) -> bool:
        return self.path.startswith("hf:")

    @property
    def multiple_choice(self) -> bool:
        return bool(self.choices_field or self.choices_fields or self.choices or self.choice_contexts)


@dataclass(frozen=True)
class Prompt:
    """Another way to ask a multiple-choice suite's items: a template over the eval split's fields (``{choices}``
    lists the choices) and whether the answers are the choices' texts or the positions' labels."""

    template: str
    answer: str = "text"
    description: str = ""

    @property
    def lists_choices(self) -> bool:
        return CHOICES_SLOT in template_fields(self.template, "prompt")


@dataclass(frozen=True)
class TaskSpec:
    """What a suite's items are: classification texts, multiple-choice items (scored as continuations after
    ``target_delimiter``, with ``fewshot`` solved examples before each), running text (perplexity), context +
    last word (last_word), or prompts whose free-text answers are generated and read out (generate)."""

    kind: str = CLASSIFICATION
    target_delimiter: str = " "
    fewshot: int = 0
    fewshot_split: str | None = None  # None: other items of the split being asked
    fewshot_seed: int = 1234
    fewshot_delimiter: str = "\n\n"
    fewshot_sampler: str = "random"
    generation: GenerationSpec | None = None  # generate: stopping, answer extraction, exact match
    chat: bool = False  # generate: render prompts with the tokenizer's chat template
    chat_fewshot: str = "turns"

    @property
    def labelled(self) -> bool:
        return self.kind in LABELLED

    @property
    def graded(self) -> bool:
        """Is each item answered right or wrong (a gold label, choice or answer)?"""
        return self.kind in LABELLED or self.kind == GENERATE


@dataclass(frozen=True)
class GateSpec:
    """A threshold on one metric (``probe.metric``); data, never code."""

    name: str
    metric: str
    min: float | None = None
    max: float | None = None
    max_regression: float | None = None  # worst allowed change against the baseline, in the metric's bad direction
    confidence: float | None = None  # decide on the metric's CI instead of its point estimate
    min_samples: int | None = None  # fewer examples behind the metric than this: inconclusive
    severity: str = "fail"
    description: str = ""
    hardware: str | None = None  # a timing gate: the machines it holds on (text in the hardware's name)

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
    probes: dict[str, dict[str, Any]]  # probe name -> parameters as written (validated), in run order
    gates: tuple[GateSpec, ...]
    max_length: int | None = None
    inconclusive_fails: bool = True  # does an inconclusive blocking gate fail the run?
    raw: dict[str, Any] = field(default_factory=dict, repr=False)
    task: TaskSpec = field(default_factory=TaskSpec)
    text_sets: dict[str, DataSpec] = field(default_factory=dict)  # running text (perplexity, KL) for LM suites
    prompts: dict[str, Prompt] = field(default_factory=dict)  # multiple choice: other prompts for the same items
    fewshot: DataSpec | None = None  # a split that only few-shot examples come from (fixed exemplars)
    source: dict[str, Any] | None = None  # the harness task definition the suite was built from (lm-eval:)

    def prompt(self, name: str | None) -> Prompt:
        """A declared prompt, or (None) the eval split's own."""
        return self.prompts[name] if name else Prompt(self.eval.text_template or "{" + self.eval.text_field + "}",
                                                     self.eval.answer, "the suite's own prompt")

    def sha256(self) -> str:
        h = hashlib.sha256()
        for f in self.files:
            h.update(f.read_bytes())
        return h.hexdigest()

    def options(self) -> dict[str, tuple[str, ...]]:
        """What probe parameters with ``choices_from`` may name."""
        return {"shift_sets": tuple(self.shift_sets), "splits": ("reference", *self.shift_sets) if self.reference
                else tuple(self.shift_sets), "text_sets": ("eval", *self.text_sets) if self.task.kind == PERPLEXITY
                else tuple(self.text_sets), "prompts": tuple(self.prompts),
                "answers": self.task.generation.filter_names if self.task.generation else ()}

    def probe_params(self, name: str, given: dict[str, Any] | None = None) -> dict[str, Any]:
        """A probe's full parameters: declared defaults, overlaid with the suite's (or ``given``)."""
        return contract.get(name).resolve(self.probes.get(name, {}) if given is None else given,
                                          f"{self.path}: probes.{name}", self.options())


def builtin_suites() -> dict[str, Path]:
    """Built-in benchmarks: every ``suites/*.yaml`` whose name does not start with ``_``."""
    return {p.stem: p for p in sorted(SUITES_DIR.glob("*.yaml")) if not p.stem.startswith("_")}


def resolve(name_or_path: str) -> Path:
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml"):
        if not path.is_file():
            raise SpecError("suite file not found" if not path.is_dir() else "is a directory", str(path),
                            "check the path, or name a built-in suite: audit suites")
        return path.resolve()
    suites = builtin_suites()
    if name_or_path not in suites:
        raise SpecError(f"unknown benchmark '{name_or_path}'", "--benchmark", did_you_mean(name_or_path, suites))
    return suites[name_or_path]


def load(name_or_path: str) -> Suite:
    """Read, merge includes, and validate a suite (a built-in name or a YAML path)."""
    path = resolve(name_or_path)
    merged, files, _ = _read_with_includes(path, ())
    return _build(merged, path, files)


def _read_yaml(path: Path) -> dict[str, Any]:
    doc = yamlfile.load(path)
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise SpecError("a suite must be a YAML mapping", str(path), "start the file with keys such as 'name:'")
    _check_keys(doc, TOP_KEYS, str(path))
    return doc


def _check_keys(mapping: dict, allowed: set[str], where: str) -> None:
    for key in mapping:
        if key not in allowed:
            raise SpecError(f"unknown key '{key}'", where, did_you_mean(str(key), allowed))


def _read_with_includes(path: Path, chain: tuple[Path, ...]) -> tuple[dict, tuple[Path, ...], dict[str, Path]]:
    """The merged document, the files read, and which file declared each gate."""
    if path in chain:
        raise SpecError("include cycle", " -> ".join(map(str, chain + (path,))), "remove one of the includes")
    doc = _read_yaml(path)
    _absolutize_paths(doc, path)
    includes = doc.pop("include", [])
    includes = [includes] if isinstance(includes, str) else includes
    if not isinstance(includes, list) or not all(isinstance(i, str) for i in includes):
        raise SpecError("'include' must be a file name or a list of them", f"{path}: include", "write include: _defaults.yaml")
    merged: dict[str, Any] = {}
    files: tuple[Path, ...] = ()
    origins: dict[str, Path] = {}
    for inc in includes:
        inc_path = _include_path(inc, path)
        inc_doc, inc_files, inc_origins = _read_with_includes(inc_path, chain + (path,))
        merged = _merge(merged, inc_doc, inc_path, origins)
        origins |= inc_origins
        files += inc_files
    return _merge(merged, doc, path, origins), (path,) + files, origins


BUILTIN_INCLUDE = "audit:"  # include: audit:_lm_defaults.yaml names a file of the built-in suites from anywhere


def _include_path(name: str, path: Path) -> Path:
    """An included file: ``audit:NAME`` is one of the built-in suites' files (its data paths resolve where it
    lives); anything else is relative to the including file and, like data paths, stays inside its folder."""
    if name.startswith(BUILTIN_INCLUDE):
        inc_path = (SUITES_DIR / name.removeprefix(BUILTIN_INCLUDE)).resolve()
        builtin = sorted(p.name for p in SUITES_DIR.glob("*.yaml"))
        if inc_path.parent != SUITES_DIR.resolve() or not inc_path.is_file():
            raise SpecError(f"'{name}' is not a built-in suite file", f"{path}: include",
                            did_you_mean(name.removeprefix(BUILTIN_INCLUDE), builtin))
        return inc_path
    inc_path = (path.parent / name).resolve()
    if not inc_path.is_relative_to(path.parent.resolve()):  # as data paths: a shared suite reads only its folder
        raise SpecError(f"included file '{name}' leaves the suite's folder {path.parent.resolve()}", f"{path}: include",
                        "put the included file in the suite's folder (or below it), or name a built-in one: "
                        f"{BUILTIN_INCLUDE}_lm_defaults.yaml")
    if not inc_path.is_file():
        raise SpecError(f"included file '{name}' not found", f"{path}: include",
                        f"give a path relative to the suite file, or a built-in one: {BUILTIN_INCLUDE}_lm_defaults.yaml")
    return inc_path


def _absolutize_paths(doc: dict, path: Path) -> None:
    """Data paths are relative to the file that declares them and stay inside its folder, so a shared
    suite cannot read files elsewhere on the machine into its reports."""
    folder = path.parent.resolve()
    for section_name in ("data", "shift_sets", "text_sets"):
        section = doc.get(section_name)
        if not isinstance(section, dict):
            continue
        for key, spec in section.items():
            for name in ("path", "label_file"):
                raw = spec.get(name) if isinstance(spec, dict) else None
                if not isinstance(raw, str) or raw.startswith("hf:"):
                    continue
                where = f"{path}: {section_name}.{key}.{name}"
                if Path(raw).is_absolute():
                    raise SpecError(f"data paths must be relative to the suite file, got '{raw}'", where,
                                    "put the file in the suite's folder and give its relative path")
                resolved = (folder / raw).resolve()
                if not resolved.is_relative_to(folder):
                    raise SpecError(f"data path '{raw}' leaves the suite's folder {folder}", where,
                                    "put the file in the suite's folder (or below it)")
                spec[name] = str(resolved)


def _merge(base: dict, over: dict, over_path: Path, origins: dict[str, Path]) -> dict:
    """Deep-merge mappings. Gates merge by name: a gate whose name is already declared needs
    ``override: true`` to replace it, so an inherited (maybe stricter) gate never vanishes silently."""
    out = dict(base)
    for key, value in over.items():
        if key == "gates" and isinstance(value, list):
            out[key] = _merge_gates(out.get(key) or [], value, over_path, origins)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value, over_path, origins)
        else:
            out[key] = value
    return out


def _merge_gates(inherited: list, own: list, path: Path, origins: dict[str, Path]) -> list:
    result = list(inherited)
    position = {g["name"]: i for i, g in enumerate(result) if isinstance(g, dict) and isinstance(g.get("name"), str)}
    for i, gate in enumerate(own):
        if not isinstance(gate, dict) or not isinstance(gate.get("name"), str):
            result.append(gate)  # _gate() says what is wrong with it
            continue
        name, override = gate.get("name"), gate.get("override", False)
        where = f"{path}: gates[{i}]"
        if override not in (True, False):
            raise SpecError("'override' must be true or false", f"{where}.override", "write override: true")
        if name in position and not override:
            raise SpecError(f"gate '{name}' is already declared in {origins.get(name, path)}", where,
                            "give it another name, or add override: true to replace the inherited gate")
        if override and name not in position:
            raise SpecError(f"override: true, but no included file declares a gate '{name}'", where,
                            "remove override, or use the inherited gate's exact name")
        gate = {k: v for k, v in gate.items() if k != "override"}  # settled here, not passed on to includers
        if name in position:
            result[position[name]] = gate
        else:
            position[name] = len(result)
            result.append(gate)
        origins[name] = path
    return result


def _build(doc: dict[str, Any], path: Path, files: tuple[Path, ...]) -> Suite:
    where = str(path)
    name = doc.get("name", path.stem)
    if not isinstance(name, str) or not name.strip():
        raise SpecError("'name' must be a non-empty string", f"{where}: name", "e.g. name: sst2")
    task = _task(doc, where)
    labels = doc.get("labels")
    if task.labelled:
        if not isinstance(labels, list) or len(labels) < 2 or not all(isinstance(x, str) and x.strip() for x in labels):
            raise SpecError("'labels' must list at least two label names", f"{where}: labels",
                            "write labels: [negative, positive] (multiple choice: the choice positions, [A, B, C, D])")
        if len(set(labels)) != len(labels):
            raise SpecError("'labels' has duplicates", f"{where}: labels", "give each label once")
    elif labels is not None:
        raise SpecError(f"a {task.kind} suite has no labels", f"{where}: labels", "remove labels:")
    labels = tuple(labels or ())

    data = doc.get("data")
    if not isinstance(data, dict) or "eval" not in data:
        raise SpecError("missing the eval split", f"{where}: data.eval", "declare data: {eval: {path: ..., text_field: ...}}")
    _check_keys(data, SPLITS, f"{where}: data")
    splits = {k: _data_spec(k, v, labels, task.kind, f"{where}: data.{k}") for k, v in data.items()}
    shift_sets = _named_specs(doc, "shift_sets", labels, task.kind, where)
    text_sets = _named_specs(doc, "text_sets", labels, PERPLEXITY, where)
    if task.fewshot_split is not None and task.fewshot_split not in splits:
        raise SpecError(f"fewshot split '{task.fewshot_split}' is not declared under data", f"{where}: fewshot.split",
                        did_you_mean(task.fewshot_split, splits))
    if "fewshot" in splits and task.fewshot_split != "fewshot":
        raise SpecError("the fewshot split would be ignored: fewshot.split does not name it", f"{where}: data.fewshot",
                        "add fewshot: {k: N, split: fewshot}, or remove data.fewshot")

    max_length = doc.get("max_length")
    if max_length is not None and (not isinstance(max_length, int) or isinstance(max_length, bool) or max_length < 8):
        raise SpecError("'max_length' must be an integer ≥ 8", f"{where}: max_length", "e.g. max_length: 128")
    inconclusive = doc.get("inconclusive", "fail")
    if inconclusive not in ("fail", "warn"):
        raise SpecError(f"unknown value '{inconclusive}'", f"{where}: inconclusive", "use fail or warn")
    min_samples = _positive_int(doc.get("min_samples", MIN_SAMPLES), f"{where}: min_samples")
    suite = Suite(name=name, description=str(doc.get("description", "")), path=path, files=files, labels=labels,
                  eval=splits["eval"], reference=splits.get("reference"), shift_sets=shift_sets,
                  probes=_probes(doc.get("probes") or {}, task.kind, where), gates=(), max_length=max_length,
                  inconclusive_fails=inconclusive == "fail", raw=doc, task=task, text_sets=text_sets,
                  prompts=_prompts(doc, task.kind, where), fewshot=splits.get("fewshot"),
                  source=_source(doc.get("source"), f"{where}: source"))
    params = {p: suite.probe_params(p) for p in suite.probes}  # every parameter value checked here
    gates = doc.get("gates") or []
    if not isinstance(gates, list):
        raise SpecError("'gates' must be a list", f"{where}: gates", "write gates: [{name: ..., metric: ..., max: ...}]")
    hardware = doc.get("hardware")
    if hardware is not None and (not isinstance(hardware, str) or not hardware.strip()):
        raise SpecError("'hardware' must name the machines the suite's timing gates hold on", f"{where}: hardware",
                        'text found in the CPU or GPU name, e.g. hardware: "EPYC" or hardware: "H100"')
    built = tuple(_gate(g, i, params, labels, min_samples, where, hardware) for i, g in enumerate(gates))
    if len({g.name for g in built}) != len(built):
        raise SpecError("two gates share a name", f"{where}: gates", "give each gate a unique name")
    return Suite(**{**suite.__dict__, "gates": built})


def _source(source: Any, where: str) -> dict[str, Any] | None:
    """Where a suite built from another harness's task came from: reported, never read for scoring."""
    if source is None:
        return None
    if not isinstance(source, dict) or set(source) != set(SOURCE_KEYS) or \
            not all(isinstance(source[k], t) for k, t in SOURCE_KEYS.items()):
        raise SpecError(f"'source' must give {', '.join(SOURCE_KEYS)}", where,
                        "remove it: audit writes it for lm-eval: benchmarks")
    return dict(source)


def _task(doc: dict, where: str) -> TaskSpec:
    kind = doc.get("task", CLASSIFICATION)
    if kind not in TASKS:
        raise SpecError(f"unknown task {kind!r}", f"{where}: task", did_you_mean(str(kind), TASKS))
    delimiter = doc.get("target_delimiter", " ")
    if not isinstance(delimiter, str):
        raise SpecError("'target_delimiter' must be a string", f"{where}: target_delimiter", 'e.g. target_delimiter: " "')
    fewshot = doc.get("fewshot") or {}
    if not isinstance(fewshot, dict):
        raise SpecError("'fewshot' must be a mapping", f"{where}: fewshot", "e.g. fewshot: {k: 5, seed: 1234}")
    _check_keys(fewshot, FEWSHOT_KEYS, f"{where}: fewshot")
    k = fewshot.get("k", 0)
    if not isinstance(k, int) or isinstance(k, bool) or k < 0 or k and kind not in FEWSHOT_TASKS:
        raise SpecError(f"fewshot.k must be a non-negative integer ({' and '.join(FEWSHOT_TASKS)} only), got {k!r}",
                        f"{where}: fewshot.k", "e.g. fewshot: {k: 5}")
    seed = fewshot.get("seed", 1234)
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise SpecError("fewshot.seed must be a non-negative integer", f"{where}: fewshot.seed", "e.g. seed: 1234")
    for key in ("split", "delimiter"):
        if fewshot.get(key) is not None and not isinstance(fewshot[key], str):
            raise SpecError(f"fewshot.{key} must be a string", f"{where}: fewshot.{key}", "e.g. split: reference")
    sampler = fewshot.get("sampler", "random")
    if sampler not in SAMPLERS:
        raise SpecError(f"unknown sampler {sampler!r}", f"{where}: fewshot.sampler", did_you_mean(str(sampler), SAMPLERS))
    if fewshot and not k:
        raise SpecError("fewshot settings without fewshot.k would be ignored", f"{where}: fewshot", "add k: N, or remove fewshot")
    if kind == CLASSIFICATION and (doc.get("target_delimiter") is not None):
        raise SpecError("'target_delimiter' is for language-model tasks", f"{where}: target_delimiter", "remove it")
    generation, chat, chat_fewshot = _generation(doc, kind, where)
    return TaskSpec(kind, delimiter, k, fewshot.get("split"), seed, fewshot.get("delimiter", "\n\n"), sampler,
                    generation, chat, chat_fewshot)


def _generation(doc: dict, kind: str, where: str) -> tuple[GenerationSpec | None, bool, str]:
    """A generate suite's ``generation:`` section, every pattern compiled: (spec, chat, chat_fewshot)."""
    section = doc.get("generation")
    here = f"{where}: generation"
    if kind != GENERATE:
        if section is not None:
            raise SpecError(f"'generation' is for generate suites, and this is a {kind} suite", here, "remove it")
        return None, False, "turns"
    if not isinstance(section, dict):
        raise SpecError("a generate suite needs a 'generation' mapping", here,
                        'e.g. generation: {until: ["Question:"], max_new_tokens: 256, answers: {...}}')
    _check_keys(section, GENERATION_KEYS, here)
    until = section.get("until", [])
    if not isinstance(until, list) or not all(isinstance(u, str) and u for u in until):
        raise SpecError("'until' must list non-empty stop strings", f"{here}.until", 'e.g. until: ["Question:"]')
    max_new = section.get("max_new_tokens", 256)
    if not isinstance(max_new, int) or isinstance(max_new, bool) or max_new < 1:
        raise SpecError(f"max_new_tokens must be a positive integer, got {max_new!r}", f"{here}.max_new_tokens",
                        "e.g. max_new_tokens: 256")
    answers = section.get("answers")
    if not isinstance(answers, dict) or not answers:
        raise SpecError("'answers' must name at least one way to read the answer", f"{here}.answers",
                        'e.g. answers: {strict-match: {regex: "#### (\\-?[0-9.,]+)"}}')
    filters = tuple(_answer_filter(name, spec, f"{here}.answers.{name}") for name, spec in answers.items())
    normalize = section.get("normalize") or {}
    if not isinstance(normalize, dict):
        raise SpecError("'normalize' must be a mapping", f"{here}.normalize", "e.g. normalize: {ignore_case: true}")
    _check_keys(normalize, NORMALIZE_KEYS, f"{here}.normalize")
    for key in ("ignore_case", "ignore_punctuation"):
        if not isinstance(normalize.get(key, False), bool):
            raise SpecError(f"'{key}' must be true or false", f"{here}.normalize.{key}", f"e.g. {key}: true")
    ignored = normalize.get("regexes_to_ignore", [])
    if not isinstance(ignored, list) or not all(isinstance(r, str) for r in ignored):
        raise SpecError("'regexes_to_ignore' must list patterns", f"{here}.normalize.regexes_to_ignore",
                        'e.g. regexes_to_ignore: [",", "\\$"]')
    for i, pattern in enumerate(ignored):
        _compile(pattern, f"{here}.normalize.regexes_to_ignore[{i}]")
    chat, chat_fewshot = section.get("chat", False), section.get("chat_fewshot", "turns")
    if not isinstance(chat, bool):
        raise SpecError("'chat' must be true or false", f"{here}.chat", "e.g. chat: true")
    if chat_fewshot not in CHAT_FEWSHOT:
        raise SpecError(f"unknown chat_fewshot {chat_fewshot!r}", f"{here}.chat_fewshot",
                        did_you_mean(str(chat_fewshot), CHAT_FEWSHOT))
    if "chat_fewshot" in section and not chat:
        raise SpecError("chat_fewshot is read only with chat: true", f"{here}.chat_fewshot",
                        "add chat: true, or remove it (--chat-template turns the chat template on too)")
    normalizer = Normalizer(normalize.get("ignore_case", False), normalize.get("ignore_punctuation", False),
                            tuple(ignored))
    return GenerationSpec(tuple(until), max_new, filters, normalizer), chat, chat_fewshot


def _compile(pattern: str, where: str) -> re.Pattern:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise SpecError(f"the pattern {pattern!r} does not compile ({exc})", where, "fix the regular expression") from None


def _answer_filter(name: Any, spec: Any, where: str) -> AnswerFilter:
    if not isinstance(name, str) or not NAME.match(name):
        raise SpecError(f"answer name {name!r} must be letters, digits, '_', '.' or '-'", where, "e.g. strict-match")
    if not isinstance(spec, dict) or not isinstance(spec.get("regex"), str):
        raise SpecError("an answer needs a regex", where, 'e.g. {regex: "#### (\\-?[0-9.,]+)", group_select: 0}')
    _check_keys(spec, ANSWER_KEYS, where)
    pattern = _compile(spec["regex"], f"{where}.regex")
    select = spec.get("group_select", 0)
    if not isinstance(select, int) or isinstance(select, bool):
        raise SpecError(f"group_select must be an integer (0 the first match, -1 the last), got {select!r}",
                        f"{where}.group_select", "e.g. group_select: -1")
    group = spec.get("group")
    if group is not None and (not isinstance(group, int) or isinstance(group, bool) or not 0 <= group <= pattern.groups):
        raise SpecError(f"group {group!r} does not exist: the pattern has {pattern.groups} group(s)", f"{where}.group",
                        "give 0 (the whole match) up to the pattern's group count, or remove group")
    fallback = spec.get("fallback", "[invalid]")
    if not isinstance(fallback, str):
        raise SpecError("fallback must be a string", f"{where}.fallback", 'e.g. fallback: "[invalid]"')
    return AnswerFilter(name, spec["regex"], select, fallback, group)


def _named_specs(doc: dict, key: str, labels: tuple[str, ...], task: str, where: str) -> dict[str, DataSpec]:
    section = doc.get(key) or {}
    if not isinstance(section, dict):
        raise SpecError(f"'{key}' must be a mapping of name to data source", f"{where}: {key}", "see suites/sst2.yaml")
    for name in section:
        if not isinstance(name, str) or not NAME.match(name):
            raise SpecError(f"{key} name {name!r} must be letters, digits, '_', '.' or '-'", f"{where}: {key}",
                            "e.g. imdb_contrast")
    return {k: _data_spec(k, v, labels, task, f"{where}: {key}.{k}") for k, v in section.items()}


def _prompts(doc: dict, task: str, where: str) -> dict[str, Prompt]:
    section = doc.get("prompts") or {}
    if section and task not in (MULTIPLE_CHOICE, GENERATE):
        raise SpecError("prompts are for multiple_choice and generate suites", f"{where}: prompts", "remove prompts:")
    if not isinstance(section, dict):
        raise SpecError("'prompts' must map names to {template: ...}", f"{where}: prompts",
                        'e.g. prompts: {plain: {template: "{question}\\nAnswer:"}}')
    out = {}
    for name, spec in section.items():
        here = f"{where}: prompts.{name}"
        if not isinstance(name, str) or not NAME.match(name):
            raise SpecError(f"prompt name {name!r} must be letters, digits, '_', '.' or '-'", f"{where}: prompts",
                            "e.g. listed")
        if not isinstance(spec, dict) or not isinstance(spec.get("template"), str):
            raise SpecError("a prompt needs a template", here, 'e.g. {template: "Q: {question}\\nA:"}')
        _check_keys(spec, PROMPT_KEYS, here)
        fields = template_fields(spec["template"], f"{here}.template")
        answer = spec.get("answer", "text")
        if answer not in ANSWERS:
            raise SpecError(f"unknown answer {answer!r}", f"{here}.answer", did_you_mean(str(answer), ANSWERS))
        if task == GENERATE and (answer != "text" or CHOICES_SLOT in fields):
            raise SpecError("a generation prompt has no choices to list or letter", here,
                            "remove answer: and {choices} from the template")
        out[name] = Prompt(spec["template"], answer, str(spec.get("description", "")))
    return out


def _positive_int(value: Any, where: str) -> int | None:
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
        raise SpecError(f"must be a positive integer, got {value!r}", where, "e.g. 30, or remove it")
    return value


FIELD = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*$")  # a field name, or a dotted path into JSON


def template_fields(template: str, where: str) -> list[str]:
    """The field names of a ``text_template`` such as ``"{title}. {description}"`` or
    ``"Question: {question.stem}"`` (names or dotted paths, no formatting)."""
    try:
        parsed = [(f, spec, conv) for _, f, spec, conv in string.Formatter().parse(template) if f is not None]
    except ValueError as exc:
        raise SpecError(f"invalid text_template ({exc})", where, 'e.g. text_template: "{title}. {description}"') from None
    names = [f for f, _, _ in parsed]
    if not names or any(not FIELD.match(f) or spec or conv for f, spec, conv in parsed):
        raise SpecError("text_template must name fields as {field} or {a.b} (no formatting)", where,
                        'e.g. text_template: "{title}. {description}"')
    return names


def _data_spec(name: str, spec: Any, labels: tuple[str, ...], task: str, where: str) -> DataSpec:
    if not isinstance(spec, dict):
        raise SpecError("a data source must be a mapping", where, "give path:, text_field: and label_field:")
    _check_keys(spec, DATA_KEYS, where)
    needs_label = task in LABELLED
    targeted = task in (LAST_WORD, GENERATE)
    for key in ("path",) + (("label_field",) if needs_label else ()) + (("target_field",) if targeted else ()):
        if not isinstance(spec.get(key), str) or not spec[key]:
            raise SpecError(f"missing '{key}'", where, f"add {key}: ...")
    task_keys = {MULTIPLE_CHOICE: {"choices_field", "choices_fields", "choices", "gold", "choice_labels_field", "answer",
                                   "choice_contexts", "prefix_field"},
                 LAST_WORD: {"target_field"}, GENERATE: {"target_field"}}
    for key in set().union(*task_keys.values()) - task_keys.get(task, set()):
        if key in spec:
            raise SpecError(f"'{key}' is not for a {task} split", f"{where}.{key}", "remove it")
    if not needs_label and spec.get("label_field") is not None:
        raise SpecError(f"a {task} split has no labels", f"{where}.label_field", "remove label_field")
    text_field, template = spec.get("text_field"), spec.get("text_template")
    if (text_field is None) == (template is None):
        raise SpecError("give exactly one of 'text_field' and 'text_template'", where,
                        'e.g. text_field: sentence, or text_template: "{title}. {description}"')
    empty_context = task == MULTIPLE_CHOICE and template == ""  # scored from the BOS token, as lm-eval does
    for key in ("text_field", "text_template", "label_field", "pair_field", "hf_config", "hf_split", "choices_field",
                "choice_labels_field", "target_field", "slice_field", "label_file", "prefix_field"):
        if spec.get(key) is not None and (not isinstance(spec[key], str) or not spec[key]) and \
                not (key == "text_template" and empty_context):
            raise SpecError(f"'{key}' must be a non-empty string", f"{where}.{key}", f"e.g. {key}: ...")
    choices = _choices(spec, task, where)
    fields = ([text_field] if text_field else [f for f in template_fields(template, f"{where}.text_template")
                                               if not (f == CHOICES_SLOT and task == MULTIPLE_CHOICE)]
              if not empty_context else []) + \
        [spec[k] for k in ("label_field", "pair_field", "choices_field", "choice_labels_field", "target_field",
                           "slice_field", "prefix_field") if spec.get(k)] + list(choices.get("choices_fields") or ()) + \
        [f for c in choices.get("choice_contexts") or () for f in template_fields(c, f"{where}.choice_contexts")]
    if spec.get("label_file") is not None:
        if spec["path"].startswith("hf:") or not Path(spec["label_file"]).is_file():
            raise SpecError(f"label file not found: {spec['label_file']}", f"{where}.label_file",
                            "give a local file beside the data, one label per line in row order")
        fields = [f for f in fields if f != spec.get("label_field")]  # the labels come from the file
    columns = spec.get("columns")
    if columns is not None:
        if not isinstance(columns, list) or not columns or not all(isinstance(c, str) and c for c in columns) \
                or len(set(columns)) != len(columns):
            raise SpecError("'columns' must list unique column names", f"{where}.columns",
                            "e.g. columns: [label, title, description]")
        if spec["path"].startswith("hf:") or not spec["path"].lower().removesuffix(".gz").endswith((".csv", ".tsv")):
            raise SpecError("'columns' is for headerless .csv and .tsv files", f"{where}.columns",
                            "remove it: this format names its own fields")
        missing = [f for f in fields if f not in columns]
        if missing:
            raise SpecError(f"field '{missing[0]}' is not one of columns {columns}", where, did_you_mean(missing[0], columns))
        columns = tuple(columns)
    if not spec["path"].startswith("hf:") and not Path(spec["path"]).is_file():
        raise SpecError(f"data file not found: {spec['path']}", f"{where}.path", "give a path relative to the suite file")
    label_map = spec.get("label_map")
    if label_map is not None:
        if not needs_label or not isinstance(label_map, dict) or not label_map:
            raise SpecError("'label_map' must map raw values to label names", f"{where}.label_map", "e.g. {0: negative}")
        if task == MULTIPLE_CHOICE and "gold" in spec:
            raise SpecError("label_map and gold are two ways to read the gold choice, and one would be ignored",
                            f"{where}.gold", "keep label_map (the raw value -> the gold choice's label), or gold")
        label_map = {str(k): str(v) for k, v in label_map.items()}
        for raw, lab in label_map.items():
            if lab not in labels:
                raise SpecError(f"label_map maps '{raw}' to unknown label '{lab}'", f"{where}.label_map",
                                f"use one of the suite labels: {', '.join(labels)}")
    sample = _positive_int(spec.get("sample"), f"{where}.sample")
    return DataSpec(
        name=name, path=spec["path"], text_field=text_field, label_field=spec.get("label_field"), label_map=label_map,
        hf_config=spec.get("hf_config"), hf_split=spec.get("hf_split"), description=str(spec.get("description", "")),
        sample=sample, pair_field=spec.get("pair_field"), columns=columns, text_template=template,
        target_field=spec.get("target_field"), slice_field=spec.get("slice_field"), label_file=spec.get("label_file"),
        prefix_field=spec.get("prefix_field"), **choices,
    )


def _choices(spec: dict, task: str, where: str) -> dict:
    """A multiple-choice split's choice source (exactly one of three) and how its gold label reads."""
    if task != MULTIPLE_CHOICE:
        return {}
    given = [k for k in ("choices_field", "choices_fields", "choices", "choice_contexts") if spec.get(k) is not None]
    if len(given) != 1:
        raise SpecError("give exactly one of 'choices_field' (a list field), 'choices_fields' (one field per choice), "
                        "'choices' (the same choices for every item) and 'choice_contexts' (one context per choice, "
                        "each continued by the text)", where, "e.g. choices_field: endings")
    for key in ("choices_fields", "choices", "choice_contexts"):
        value = spec.get(key)
        if value is not None and (not isinstance(value, list) or len(value) < 2
                                  or not all(isinstance(v, str) and v for v in value)):
            raise SpecError(f"'{key}' must list at least two strings", f"{where}.{key}", f"e.g. {key}: [A, B, C, D]")
    gold = spec.get("gold", "index")
    if gold not in GOLD:
        raise SpecError(f"unknown gold {gold!r}", f"{where}.gold", did_you_mean(str(gold), GOLD))
    if (gold == "choice_label") != (spec.get("choice_labels_field") is not None):
        raise SpecError("gold: choice_label goes with choice_labels_field (the field holding each choice's label)",
                        where, "e.g. gold: choice_label, choice_labels_field: question.choices.label")
    answer = spec.get("answer", "text")
    if answer not in ANSWERS:
        raise SpecError(f"unknown answer {answer!r}", f"{where}.answer", did_you_mean(str(answer), ANSWERS))
    if spec.get("choice_contexts") is not None:
        if "answer" in spec:
            raise SpecError("the choices are contexts, so there is no answer text or letter to score", f"{where}.answer",
                            "remove answer")
        for i, template in enumerate(spec["choice_contexts"]):
            template_fields(template, f"{where}.choice_contexts[{i}]")
    return {"choices_field": spec.get("choices_field"), "gold": gold, "choice_labels_field": spec.get("choice_labels_field"),
            "answer": answer, **{k: tuple(spec[k]) for k in ("choices_fields", "choices", "choice_contexts")
                                 if spec.get(k) is not None}}


def _probes(section: Any, task: str, where: str) -> dict[str, dict[str, Any]]:
    if not isinstance(section, dict):
        raise SpecError("'probes' must map probe names to parameters", f"{where}: probes", "e.g. probes: {accuracy: {}}")
    out = {}
    for name, params in section.items():
        probe = contract.get(str(name), f"{where}: probes.{name}")
        if task not in probe.tasks:
            raise SpecError(f"probe '{name}' does not run on {task} suites (it runs on: {', '.join(probe.tasks)})",
                            f"{where}: probes.{name}", "remove it from this suite")
        if params is not None and not isinstance(params, dict):
            raise SpecError("probe parameters must be a mapping", f"{where}: probes.{name}", "write {} for defaults")
        out[name] = params or {}
    return out


def _gate(spec: Any, i: int, params: dict[str, dict], labels: tuple[str, ...], min_samples: int | None,
          where: str, hardware: str | None = None) -> GateSpec:
    here = f"{where}: gates[{i}]"
    if not isinstance(spec, dict):
        raise SpecError("a gate must be a mapping", here, "give name:, metric: and min: or max:")
    _check_keys(spec, GATE_KEYS, here)
    for key in ("name", "metric"):
        if not isinstance(spec.get(key), str) or not spec[key].strip():
            raise SpecError(f"missing '{key}'", here, f"add {key}: ...")
    probe_name, _, metric = spec["metric"].partition(".")
    if probe_name not in params:
        raise SpecError(f"gate metric '{spec['metric']}' names probe '{probe_name}', which the suite does not run",
                        f"{here}.metric", f"add it under probes:, or use one of: {', '.join(params)}")
    probe = contract.get(probe_name)
    known = probe.metric_names(labels, params[probe_name])
    if metric not in known:
        raise SpecError(f"probe '{probe_name}' has no metric '{metric}'", f"{here}.metric", did_you_mean(metric, known))
    declared = probe.metric(metric)
    bounds = {k: spec.get(k) for k in ("min", "max", "max_regression") if spec.get(k) is not None}
    if not bounds or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in bounds.values()):
        raise SpecError("a gate needs a numeric 'min', 'max' or 'max_regression'", here, "e.g. max: 0.05")
    for k, v in bounds.items():
        if not math.isfinite(v):
            raise SpecError(f"threshold {k} must be a finite number, got {v}", f"{here}.{k}", "e.g. max: 0.05")
    if "min" in bounds and "max" in bounds and bounds["min"] > bounds["max"]:
        raise SpecError(f"min {bounds['min']} is above max {bounds['max']}, so no value could pass", here,
                        "swap them, or split the gate in two")
    if "max_regression" in bounds and len(bounds) > 1:
        raise SpecError("'max_regression' cannot be combined with 'min' or 'max'", here, "split it into two gates")
    if "max_regression" in bounds and declared.better == "none":
        raise SpecError(f"'{metric}' has no better direction, so it cannot regress", f"{here}.max_regression",
                        "use min or max")
    severity = spec.get("severity", "fail")
    if severity not in SEVERITIES:
        raise SpecError(f"unknown severity '{severity}'", f"{here}.severity", "use fail or warn")
    confidence = spec.get("confidence")
    if confidence is not None:
        if isinstance(confidence, bool) or not isinstance(confidence, (int, float)) or not 0 < confidence < 1:
            raise SpecError(f"confidence must be a number between 0 and 1, got {confidence!r}", f"{here}.confidence",
                            "e.g. confidence: 0.95")
        has_ci = declared.delta_ci if "max_regression" in bounds else declared.ci
        level = params[probe_name].get("confidence")
        if not has_ci or level is None:
            raise SpecError(f"probe '{probe_name}' reports no confidence interval for '{metric}'"
                            + (" against the baseline" if "max_regression" in bounds else ""), f"{here}.confidence",
                            "remove confidence, or gate a metric that has one")
        if confidence != level:
            raise SpecError(f"confidence {confidence} differs from the {level} at which probe '{probe_name}' computes "
                            "its intervals", f"{here}.confidence", f"use confidence: {level}, or set the probe's confidence")
    if declared.varies and severity == "fail" and hardware is None:  # a timing holds on one kind of machine only
        raise SpecError(f"'{metric}' is a timing, and a blocking gate on it needs the suite to name the hardware it "
                        "holds on", here, 'add hardware: "<text of the CPU or GPU name>" to the suite, or severity: warn')
    own_min = _positive_int(spec.get("min_samples"), f"{here}.min_samples")
    return GateSpec(name=spec["name"], metric=spec["metric"], severity=severity, confidence=confidence,
                    min_samples=own_min if own_min is not None else min_samples,
                    description=str(spec.get("description", "")), hardware=hardware if declared.varies else None,
                    **{k: float(v) for k, v in bounds.items()})
