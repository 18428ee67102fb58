"""How each lm-evaluation-harness output type becomes audit items and a suite section: one translation per
``OUTPUT_TYPE`` (a registry, as a model format is one loader). Each reads the requests lm-eval built for a
document and writes them as one JSON line that audit's engine scores the same way; what audit would score
differently (a metric it does not compute, a filter it does not apply, sampling) is refused, never dropped.

- ``multiple_choice``: a context and its choices (lm-eval's target delimiter between), or, for a
  ``multiple_input`` task such as WinoGrande, each choice's own context (few-shot prefix included) and the
  one shared continuation; acc and acc_norm.
- ``loglikelihood_rolling``: the text lm-eval scores token by token; word and byte perplexity, bits per byte.
- ``generate_until``: the whole prompt lm-eval built (few-shot examples included) and its gold answer;
  greedy decoding until the task's stop strings, its ``regex`` + ``take_first`` answer filters and
  ``exact_match`` settings as a native generate suite's ``answers`` and ``normalize``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Callable

from audit.errors import AuditError

WHERE = "--benchmark"


def refuse(task_name: str, what: str, fix: str) -> AuditError:
    return AuditError(f"task '{task_name}' {what}", WHERE, fix)


def check_metrics(task, task_name: str, known: set[str]) -> None:
    """Every metric the task reports is one audit reports (else the claim's number would be missing)."""
    if task.config.process_results is not None:
        raise refuse(task_name, "scores its documents with its own process_results (Python), which audit does "
                                "not run", "use a task scored by lm-eval's built-in metrics")
    names = [m["metric"] if isinstance(m, dict) else m for m in (task.config.metric_list or [])]
    unknown = [n for n in names if not isinstance(n, str) or n not in known]
    if unknown:
        raise refuse(task_name, f"reports {unknown[0]!r}, which audit does not compute for a {task.OUTPUT_TYPE} task",
                     f"audit reports {', '.join(sorted(known))}; drop the others from metric_list")


def _choice_record(task, task_name: str, insts: list) -> dict:
    doc = insts[0].doc
    choices = [str(c) for c in task.doc_to_choice(doc)]
    gold = task.doc_to_text(doc) if task.multiple_input else task.doc_to_target(doc)
    if isinstance(gold, str) and not gold.isdigit():
        gold = choices.index(gold) if gold in choices else -1
    where = f"document {insts[0].doc_id} of the lm-eval task {task_name}"
    if isinstance(gold, list) or not 0 <= int(gold) < len(choices):
        raise AuditError(f"gold {gold!r} names none of its {len(choices)} choices (or several)", where,
                         "audit scores tasks with one gold choice per document")
    args = [inst.arguments for inst in sorted(insts, key=lambda i: i.idx)]
    delimiter = task.config.target_delimiter
    if task.multiple_input:  # each choice is a context, after the few-shot examples (acc_norm: per choice length)
        continuation = args[0][1]
        prefixes = {ctx[:len(ctx) - len(choice)] for (ctx, _), choice in zip(args, choices) if ctx.endswith(choice)}
        if not continuation.startswith(delimiter) or any(c != continuation for _, c in args) or len(prefixes) != 1 \
                or len(args) != len(choices) or not all(ctx.endswith(choice) for (ctx, _), choice in zip(args, choices)):
            raise AuditError("its requests are not one shared prefix, each choice, then one continuation after the "
                             "target delimiter", where, "audit reads multiple_input tasks as lm-eval builds them")
        return {"choices": choices, **{f"choice{k}": c for k, c in enumerate(choices)}, "prefix": prefixes.pop(),
                "continuation": continuation.removeprefix(delimiter), "gold": int(gold)}
    context = args[0][0]
    if any(ctx != context for ctx, _ in args) or [c for _, c in args] != [delimiter + c for c in choices]:
        raise AuditError("its requests are not one context with each choice after the target delimiter", where,
                         "audit reads multiple_choice tasks as lm-eval builds them by default")
    return {"context": context, "choices": choices, "gold": int(gold)}


def _choice_suite(tasks: list, records: list[dict], data: str) -> dict:
    """A multiple-choice task under the LM defaults' probes and gates."""
    task = tasks[0][1]
    width = max(len(r["choices"]) for r in records)
    eval_spec = {"path": data, "label_field": "gold", "gold": "index"}
    if "continuation" in records[0]:
        eval_spec |= {"choice_contexts": [f"{{choice{k}}}" for k in range(width)], "text_template": "{continuation}",
                      "prefix_field": "prefix"}
    else:
        eval_spec |= {"text_field": "context", "choices_field": "choices"}
    return {"include": "audit:_lm_defaults.yaml",
            "labels": [chr(ord("A") + k) for k in range(width)] if width <= 26 else [str(k) for k in range(width)],
            "target_delimiter": task.config.target_delimiter, "data": {"eval": eval_spec},
            # the defaults' floor sits 5 points above a 4-choice guess; here, 5 points above this task's guess
            "gates": [{"name": "above-chance", "override": True, "metric": "accuracy.accuracy",
                       "min": round(1 / width + 0.05, 4), "confidence": 0.95,
                       "description": f"accuracy clearly above chance (95% Wilson CI above {1 / width + 0.05:.0%}; "
                                      f"{width} choices)"}]}


def _choice_shape(task, task_name: str) -> tuple:
    return task.config.target_delimiter, bool(task.multiple_input)


def _rolling_record(task, task_name: str, insts: list) -> dict:
    (text,) = insts[0].arguments
    return {"text": text}


def _rolling_suite(tasks: list, records: list[dict], data: str) -> dict:
    """Running text under the wikitext2 suite's probes and gates (perplexity, KL, membership); lm-eval's
    byte_perplexity is 2 ** bits_per_byte."""
    return {"include": "audit:wikitext2.yaml", "data": {"eval": {"path": data, "text_field": "text"}}}


GEN_KWARGS = {"until", "max_gen_toks", "max_new_tokens", "do_sample", "temperature"}
EXACT_MATCH_KWARGS = {"ignore_case", "ignore_punctuation", "regexes_to_ignore", "ignore_numbers"}


def _generation_section(task, task_name: str) -> dict:
    """The task's generation settings, answer filters and exact-match settings as a native suite's
    ``generation:`` (lm-eval 0.4.13: ``normalize_gen_kwargs``, ``RegexFilter``, ``exact_match_hf_evaluate``)."""
    kwargs = dict(task.config.generation_kwargs or {})
    unknown = sorted(set(kwargs) - GEN_KWARGS)
    if unknown:
        raise refuse(task_name, f"sets generation_kwargs.{unknown[0]}, which audit's greedy decoding would ignore",
                     f"audit reads {', '.join(sorted(GEN_KWARGS))}")
    if kwargs.get("do_sample") or float(kwargs.get("temperature") or 0) > 0:
        raise refuse(task_name, "samples its generations (do_sample / temperature > 0); audit decodes greedily",
                     "use a greedy task (do_sample: false, temperature: 0)")
    if (task.config.repeats or 1) != 1:
        raise refuse(task_name, f"generates {task.config.repeats} answers per document; audit generates one",
                     "use repeats: 1")
    until = kwargs.get("until") or []
    until = [until] if isinstance(until, str) else list(until)
    max_new = int(kwargs.get("max_gen_toks") or kwargs.get("max_new_tokens") or 256)
    answers = {}
    for pipeline in task.config.filter_list or [{"name": "none", "filter": [{"function": "take_first"}]}]:
        steps = [dict(s) for s in pipeline["filter"]]
        functions = [s.pop("function") for s in steps]
        if functions != ["regex", "take_first"]:
            raise refuse(task_name, f"reads its answers with the filters {functions} ('{pipeline['name']}'); audit "
                                    "applies a regex filter then take_first", "use regex + take_first filters")
        regex = steps[0]
        extra = sorted(set(regex) - {"regex_pattern", "group_select", "fallback"})
        if extra:
            raise refuse(task_name, f"sets {extra[0]} on its regex filter, which audit would ignore",
                         "use regex_pattern, group_select and fallback")
        answers[pipeline["name"]] = {"regex": regex.get("regex_pattern", r"#### (\-?[0-9\.\,]+)"),
                                     "group_select": int(regex.get("group_select", 0)),
                                     "fallback": regex.get("fallback", "[invalid]")}
    match = dict(task._metric_fn_kwargs.get("exact_match") or {})
    extra = sorted(set(match) - EXACT_MATCH_KWARGS - {"aggregation", "higher_is_better"})
    if extra or match.get("ignore_numbers"):
        raise refuse(task_name, f"sets exact_match {(extra or ['ignore_numbers'])[0]}, which audit's exact match does "
                                "not apply", "use ignore_case, ignore_punctuation and regexes_to_ignore")
    normalize = {"ignore_case": bool(match.get("ignore_case", False)),
                 "ignore_punctuation": bool(match.get("ignore_punctuation", False)),
                 "regexes_to_ignore": list(match.get("regexes_to_ignore") or [])}
    # lm-eval also stops at the decoded end-of-sequence token; audit stops at the token itself
    return {"until": [u for u in until if u], "max_new_tokens": max_new, "answers": answers, "normalize": normalize}


def _generation_record(task, task_name: str, insts: list) -> dict:
    (inst,) = insts
    context, kwargs = inst.arguments
    doc = inst.doc
    gold = task.doc_to_target(doc)
    if task.config.doc_to_choice is not None:
        gold = task.doc_to_choice(doc)[gold]
    if isinstance(gold, list) or task.multiple_target:
        raise AuditError("lists several gold answers; audit's exact match compares one",
                         f"document {inst.doc_id} of the lm-eval task {task_name}", "use a task with one target")
    return {"context": context, "target": str(gold)}


def _generation_suite(tasks: list, records: list[dict], data: str) -> dict:
    """A generate task under the generative defaults' probes and gates; the prompt is lm-eval's, whole."""
    name, task = tasks[0]
    return {"include": "audit:_gen_defaults.yaml", "generation": _generation_section(task, name),
            "data": {"eval": {"path": data, "text_field": "context", "target_field": "target"}},
            # the task's own documents only: no reference split to fit calibration on or to compare membership with
            "probes": {"calibration": {"fit_split": None}, "membership": {"reference": None}}}


@dataclass(frozen=True)
class Translation:
    """How one output type's requests become items, and the items a suite."""

    metrics: frozenset[str]
    record: Callable  # (task, task name, the document's instances) -> the item's JSON record
    suite: Callable  # ([(task name, task)], records, data file name) -> the suite's sections
    shape: Callable  # (task, task name) -> what the subtasks of one group must share to be one suite


TRANSLATIONS = {
    "multiple_choice": Translation(frozenset({"acc", "acc_norm"}), _choice_record, _choice_suite, _choice_shape),
    "loglikelihood_rolling": Translation(frozenset({"word_perplexity", "byte_perplexity", "bits_per_byte"}),
                                         _rolling_record, _rolling_suite, lambda task, name: ()),
    "generate_until": Translation(frozenset({"exact_match"}), _generation_record, _generation_suite,
                                  lambda task, name: json.dumps(_generation_section(task, name), sort_keys=True)),
}


def translation(task, task_name: str) -> Translation:
    """The task's translation, its metrics checked."""
    found = TRANSLATIONS.get(task.OUTPUT_TYPE)
    if found is None:
        raise refuse(task_name, f"is a {task.OUTPUT_TYPE} task, which audit's lm-eval: path does not run",
                     f"audit runs {', '.join(TRANSLATIONS)} tasks")
    check_metrics(task, task_name, set(found.metrics))
    return found
