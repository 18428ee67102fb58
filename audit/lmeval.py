"""An lm-evaluation-harness task as an audit suite (``--benchmark lm-eval:TASK`` or ``lm-eval:PATH.yaml``).

lm-eval builds the task's requests itself (its prompts, few-shot contexts, choices and target delimiter, its
partial scoring, its generation settings); audit writes each document's requests as one JSON line
(audit/lmeval_requests.py: one translation per output type) and scores them through its own engine under
the LM or generative defaults' probes and gates. Every request is checked to be exactly the one lm-eval
built, and every metric, filter and setting the task names is one audit applies (else the task is
refused), so a document's acc, acc_norm or exact match is lm-eval's by construction. A group (``mmlu``)
is one suite over all its subtasks' documents, sliced by subtask. The materialized items live in the cache
folder under the hash of lm-eval's version and the tasks' configs, which the report records
(``benchmark.source``), so a re-run (``audit verify``) reads the same bytes and says when they changed.

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
from audit.lmeval_requests import translation
from audit.suite import Suite, load as load_suite

PREFIX = "lm-eval:"
INSTALL = "pip install 'audit[lmeval]'"
PYTHON_TAG = re.compile(r"!function\b")


def is_lmeval(benchmark: str) -> bool:
    return benchmark.startswith(PREFIX)


def load(benchmark: str, allow_unsafe: bool = False) -> Suite:
    """The suite for ``lm-eval:TASK`` / ``lm-eval:PATH.yaml``: lm-eval's requests, audit's defaults."""
    name = benchmark.removeprefix(PREFIX)
    if importlib.util.find_spec("lm_eval") is None:
        raise AuditError("lm-eval tasks need lm-evaluation-harness, which is not installed", "--benchmark", INSTALL)
    if not name:
        raise AuditError("names no task", "--benchmark", "e.g. --benchmark lm-eval:arc_easy or lm-eval:my_task.yaml")
    path = Path(name) if name.endswith((".yaml", ".yml")) else None
    group = group_name(path, allow_unsafe) if path is not None else None
    return load_suite(str(materialize(*build_tasks(name, path, group))))


def _yaml(file: Path) -> dict:
    """A task file's keys, its ``!function`` tags read as plain strings (nothing imported)."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("!", lambda loader, tag, node: f"{tag} {getattr(node, 'value', '')}")
    try:
        doc = yaml.load(file.read_text(encoding="utf-8"), Loader=Loader)
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise AuditError(f"not a readable task YAML ({exc})".replace("\n", " "), str(file), "fix the YAML") from None
    return doc if isinstance(doc, dict) else {}


def group_name(path: Path, allow_unsafe: bool) -> str | None:
    """A user's task file checked for Python; a group file (``group:`` and a ``task:`` list) names subtasks
    that lm-eval finds in the file's folder, so every task file there is checked too. Its group name."""
    check_task_file(path, allow_unsafe)
    doc = _yaml(path)
    if not (isinstance(doc.get("group"), str) and isinstance(doc.get("task"), list)):
        return None
    for file in sorted(path.parent.rglob("*.y*ml")):
        check_task_file(file, allow_unsafe)
    return doc["group"]


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


def build_tasks(name: str, path: Path | None, group: str | None) -> tuple[str, list, list, object]:
    """(the task or group's name, its [(task name, task)] leaves with their requests built (rank 0 of 1,
    the whole split), the groups' configs, their translation). A file is loaded by its path; a group file by its name, from
    its own folder (lm-eval 0.4.13 cannot load a group by path)."""
    from lm_eval.defaults import DEFAULT_OTHER_SEED
    from lm_eval.tasks import TaskManager, get_task_dict

    manager = TaskManager(include_path=str(path.parent.resolve())) if group else TaskManager()
    if path is None and name not in manager.all_tasks:
        raise AuditError(f"lm-eval knows no task '{name}'", "--benchmark",
                         "see `lm_eval ls tasks`, or give a task file: --benchmark lm-eval:PATH.yaml")
    try:
        tasks = get_task_dict([group or (str(path.resolve()) if path else name)], manager)
    except Exception as exc:  # lm-eval raises whatever its loaders raise (offline hub, missing files, bad YAML)
        raise AuditError(f"lm-eval could not load the task ({type(exc).__name__}: {exc})", str(path or "--benchmark"),
                         "check the task's dataset_path (offline: a local file, dataset_path: json)") from None
    leaves, groups = [], []
    flatten(tasks, leaves, groups)
    if not leaves:
        raise AuditError(f"'{name}' holds no task", "--benchmark", "name a task or a group of tasks")
    title = group or (groups[0].group_name if groups else name if len(leaves) > 1 else leaves[0][0])
    kind = check_group(title, leaves, groups)
    for _, task in leaves:  # prepared as lm-eval's simple_evaluate prepares a task by default
        if task.get_config("num_fewshot") is None:
            task.set_config(key="num_fewshot", value=0)
        task.set_fewshot_seed(seed=DEFAULT_OTHER_SEED)  # its few-shot examples drawn as lm-eval draws them
        task.build_all_requests(limit=None, rank=0, world_size=1)
    return title, leaves, groups, kind


def flatten(tasks: dict, leaves: list, groups: list) -> None:
    """lm-eval's nested {group: {task name: task}} as its leaf tasks, in order, and its groups."""
    from lm_eval.api.task import Task

    for key, value in tasks.items():
        if isinstance(value, Task):
            leaves.append((str(key), value))
        elif isinstance(value, dict):
            groups.append(key)
            flatten(value, leaves, groups)


def check_group(title: str, leaves: list, groups: list):
    """The subtasks of one report share what the suite holds once (output type, delimiter, generation
    settings); audit's accuracy is over every document, so a group whose score averages its subtasks
    unweighted is refused rather than reported as if it were that score."""
    first_name, first = leaves[0]
    kind = translation(first, first_name)
    for task_name, task in leaves[1:]:
        translation(task, task_name)
        if task.OUTPUT_TYPE != first.OUTPUT_TYPE or kind.shape(task, task_name) != kind.shape(first, first_name):
            raise AuditError(f"its subtasks '{first_name}' and '{task_name}' are scored differently (output type, "
                             "target delimiter or generation settings), and one audit report scores them one way",
                             "--benchmark", f"audit the subtasks one at a time, e.g. lm-eval:{task_name}")
    for group in groups:
        for agg in (group.config or {}).get("aggregate_metric_list") or []:
            if not agg.get("weight_by_size", True):
                raise AuditError(f"group '{group.group_name}' averages its subtasks' {agg['metric']} unweighted; audit's "
                                 "accuracy is over all documents (its per-subtask accuracy is in the long-tail slices)",
                                 "--benchmark", f"audit the subtasks one at a time, or a group with weight_by_size: true")
    return kind


def materialize(title: str, leaves: list, groups: list, kind) -> Path:
    """The documents as JSON lines and a suite YAML over them, in the cache folder under the hash of
    lm-eval's version, the tasks' configs and their requests."""
    from audit.cache import cache_dir

    records = []
    for task_name, task in leaves:
        by_doc: dict[int, list] = {}
        for inst in task.instances:
            by_doc.setdefault(inst.doc_id, []).append(inst)
        for _, insts in sorted(by_doc.items()):
            records.append(kind.record(task, task_name, insts) | ({"subtask": task_name} if len(leaves) > 1 else {}))
    config = json.dumps([t.dump_config() for _, t in leaves] + [g.config for g in groups], sort_keys=True, default=str)
    version = version_of()
    digest = hashlib.sha256("\0".join([version, config, *map(json.dumps, records)]).encode()).hexdigest()[:16]
    folder = cache_dir() / "lm-eval" / f"{title}-{digest}"
    folder.mkdir(parents=True, exist_ok=True)
    data = folder / "items.jsonl"
    if not data.is_file():
        tmp = data.with_suffix(".tmp")
        tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
        tmp.replace(data)
    config_hash = hashlib.sha256(config.encode()).hexdigest()
    subtasks = [n for n, _ in leaves] if len(leaves) > 1 else []
    suite = kind.suite(leaves, records, data.name)
    if subtasks:
        suite["data"]["eval"]["slice_field"] = "subtask"
    suite = {"name": f"lm-eval:{title}",
             "description": f"lm-evaluation-harness {version} " + (f"group {title} ({len(subtasks)} subtasks, sliced "
                            "by subtask)" if subtasks else f"task {title}") + f", {len(records)} documents",
             "source": {"harness": "lm-evaluation-harness", "version": version, "task": title,
                        "config_sha256": config_hash, "subtasks": subtasks}, **suite}
    (folder / "suite.yaml").write_text(json.dumps(suite, indent=1, ensure_ascii=False), encoding="utf-8")
    return folder / "suite.yaml"


def version_of() -> str:
    from importlib.metadata import version

    return version("lm_eval")
