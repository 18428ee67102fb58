"""An lm-evaluation-harness task as an audit suite (``--benchmark lm-eval:TASK`` or ``lm-eval:PATH.yaml``).

lm-eval builds the task's requests itself (its prompts, few-shot contexts, choices and target delimiter, its
partial scoring); audit writes each document's requests as one JSON line (a context and its choices, or a
``multiple_input`` item's per-choice contexts and shared continuation) and scores them through its own
engine under the LM defaults' probes and gates. Every request is checked to be exactly the one lm-eval
built, so acc and acc_norm are lm-eval's by construction. The materialized items live in the cache folder
under the task config's hash, so a re-run (``audit verify``) reads the same bytes.

Safety: lm-eval task YAMLs can name Python (``!function``, custom classes) that lm-eval imports while loading
the task. The tasks installed with lm-eval are trusted like installed code; a user's task file, or any
file it includes, that names Python loads only with ``--allow-unsafe``, checked before lm-eval reads it.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
from pathlib import Path

from audit.errors import AuditError
from audit.suite import Suite, load as load_suite

PREFIX = "lm-eval:"
INSTALL = "pip install 'audit[lmeval]'"
PYTHON_TAG = re.compile(r"!function\b")


def is_lmeval(benchmark: str) -> bool:
    return benchmark.startswith(PREFIX)


def load(benchmark: str, allow_unsafe: bool = False) -> Suite:
    """The suite for ``lm-eval:TASK`` / ``lm-eval:PATH.yaml``: lm-eval's requests, audit's LM defaults."""
    name = benchmark.removeprefix(PREFIX)
    if importlib.util.find_spec("lm_eval") is None:
        raise AuditError("lm-eval tasks need lm-evaluation-harness, which is not installed", "--benchmark", INSTALL)
    if not name:
        raise AuditError("names no task", "--benchmark", "e.g. --benchmark lm-eval:arc_easy or lm-eval:my_task.yaml")
    path = Path(name) if name.endswith((".yaml", ".yml")) else None
    if path is not None:
        check_task_file(path, allow_unsafe)
    task, task_name = build_task(name, path)
    return load_suite(str(materialize(task, task_name)))


def check_task_file(path: Path, allow_unsafe: bool) -> None:
    """A user's task file, and every file it includes, names no Python unless ``--allow-unsafe``."""
    installed = Path(importlib.util.find_spec("lm_eval").submodule_search_locations[0]).resolve() / "tasks"
    seen: set[Path] = set()
    todo = [path]
    while todo:
        file = todo.pop()
        if not file.is_file():
            raise AuditError("task file not found", str(file), "give the path of an lm-eval task YAML")
        if file.resolve() in seen or file.resolve().is_relative_to(installed):  # lm-eval's own tasks: installed code
            continue
        seen.add(file.resolve())
        text = file.read_text(encoding="utf-8", errors="replace")
        if PYTHON_TAG.search(text) and not allow_unsafe:
            raise AuditError("the task file names Python (!function), which lm-eval would import and run",
                             str(file), "pass --allow-unsafe if you trust it, or use a task without !function")
        for included in re.findall(r"^include:\s*['\"]?([^'\"\n#]+?)['\"]?\s*(?:#.*)?$", text, re.M):
            target = Path(included)
            todo.append(target if target.is_absolute() else file.parent / target)


def build_task(name: str, path: Path | None):
    """lm-eval's task object (a file is loaded by its path alone: lm-eval scans no folder), its requests
    built (rank 0 of 1, no limit: the whole split)."""
    from lm_eval.api.task import Task
    from lm_eval.tasks import TaskManager, get_task_dict

    manager = TaskManager()
    if path is None and name not in manager.all_tasks:
        raise AuditError(f"lm-eval knows no task '{name}'", "--benchmark",
                         "see `lm_eval ls tasks`, or give a task file: --benchmark lm-eval:PATH.yaml")
    try:
        tasks = get_task_dict([str(path.resolve()) if path else name], manager)
    except Exception as exc:  # lm-eval raises whatever its loaders raise (offline hub, missing files, bad YAML)
        raise AuditError(f"lm-eval could not load the task ({type(exc).__name__}: {exc})", str(path or "--benchmark"),
                         "check the task's dataset_path (offline: a local file, dataset_path: json)") from None
    found = [(n, t) for n, t in tasks.items() if isinstance(t, Task)]
    if len(tasks) != 1 or len(found) != 1:
        raise AuditError(f"'{name}' is a group of tasks, and audit runs one task at a time", "--benchmark",
                         "name one of its subtasks")
    task_name, task = found[0]
    if task.OUTPUT_TYPE not in ("multiple_choice", "loglikelihood_rolling"):
        raise AuditError(f"task '{task_name}' is a {task.OUTPUT_TYPE} task; lm-eval: runs multiple_choice and "
                         "loglikelihood_rolling tasks so far", "--benchmark",
                         "use a native suite (audit suites) for generation, e.g. gsm8k")
    task.build_all_requests(limit=None, rank=0, world_size=1)
    return task, task_name


def materialize(task, task_name: str) -> Path:
    """The task's documents as JSON lines and a suite YAML over them, in the cache folder under the hash of
    lm-eval's version, the task's config and its requests."""
    from audit.cache import cache_dir

    by_doc: dict[int, list] = {}
    for inst in task.instances:
        by_doc.setdefault(inst.doc_id, []).append(inst)
    rolling = task.OUTPUT_TYPE == "loglikelihood_rolling"
    records = [rolling_record(insts) if rolling else record(task, insts) for _, insts in sorted(by_doc.items())]
    config = json.dumps(task.dump_config(), sort_keys=True, default=str)
    version = version_of()
    digest = hashlib.sha256("\0".join([version, config, *map(json.dumps, records)]).encode()).hexdigest()[:16]
    folder = cache_dir() / "lm-eval" / f"{task_name}-{digest}"
    folder.mkdir(parents=True, exist_ok=True)
    data = folder / "items.jsonl"
    if not data.is_file():
        tmp = data.with_suffix(".tmp")
        tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
        tmp.replace(data)
    suite = {"name": f"lm-eval:{task_name}",
             "description": f"lm-evaluation-harness {version} task {task_name} (config sha256 "
                            f"{hashlib.sha256(config.encode()).hexdigest()[:16]}), {len(records)} documents",
             **(running_text_suite(data.name) if rolling else choice_suite(task, records, data.name))}
    (folder / "suite.yaml").write_text(json.dumps(suite, indent=1, ensure_ascii=False), encoding="utf-8")
    return folder / "suite.yaml"


def choice_suite(task, records: list[dict], data: str) -> dict:
    """A multiple-choice task under the LM defaults' probes and gates."""
    width = max(len(r["choices"]) for r in records)
    eval_spec = {"path": data, "label_field": "gold", "gold": "index"}
    if "continuation" in records[0]:  # multiple_input: each choice is a context; the target is the one continuation
        eval_spec |= {"choice_contexts": [f"{{choice{k}}}" for k in range(width)], "text_template": "{continuation}"}
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


def running_text_suite(data: str) -> dict:
    """A loglikelihood_rolling task under the wikitext2 suite's probes and gates (perplexity, KL, membership)."""
    return {"include": "audit:wikitext2.yaml", "data": {"eval": {"path": data, "text_field": "text"}}}


def rolling_record(insts: list) -> dict:
    """One document of a rolling task: the text lm-eval scores token by token."""
    (text,) = insts[0].arguments
    return {"text": text}


def record(task, insts: list) -> dict:
    """One document's requests as audit reads them; anything audit would score differently is refused."""
    doc = insts[0].doc
    choices = [str(c) for c in task.doc_to_choice(doc)]
    gold = task.doc_to_text(doc) if task.multiple_input else task.doc_to_target(doc)
    if isinstance(gold, str) and not gold.isdigit():
        gold = choices.index(gold) if gold in choices else -1
    if isinstance(gold, list) or not 0 <= int(gold) < len(choices):
        raise AuditError(f"document {insts[0].doc_id}: gold {gold!r} names none of its {len(choices)} choices "
                         "(or several)", "--benchmark", "audit scores tasks with one gold choice per document")
    args = [inst.arguments for inst in sorted(insts, key=lambda i: i.idx)]
    delimiter = task.config.target_delimiter
    where = f"document {insts[0].doc_id} of the lm-eval task"
    if task.multiple_input:
        continuation = args[0][1].removeprefix(delimiter)
        if any(ctx != choice for (ctx, _), choice in zip(args, choices)) or any(c != args[0][1] for _, c in args):
            raise AuditError("its per-choice contexts carry a few-shot prefix, which audit's lm-eval: path does not "
                             "read yet", where, "run it zero-shot (num_fewshot: 0)")
        return {"choices": choices, **{f"choice{k}": c for k, c in enumerate(choices)}, "continuation": continuation,
                "gold": int(gold)}
    context = args[0][0]
    if any(ctx != context for ctx, _ in args) or [c for _, c in args] != [delimiter + c for c in choices]:
        raise AuditError("its requests are not one context with each choice after the target delimiter", where,
                         "audit reads multiple_choice tasks as lm-eval builds them by default")
    return {"context": context, "choices": choices, "gold": int(gold)}


def version_of() -> str:
    from importlib.metadata import version

    return version("lm_eval")
