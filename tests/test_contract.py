"""The probe contract: declarations read without importing probes, declarations that match the code,
and a house whose imports flow one way."""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import subprocess
import sys
from pathlib import Path

import pytest

from audit import contract
from audit.contract import Estimate
from audit.errors import SpecError
from test_cli import run

PACKAGE = Path(contract.__file__).parent


def test_importing_the_suite_loader_imports_no_probe_and_no_heavy_library():
    """`python -X importtime -c "import audit.suite"`: no probe module, numba, sklearn, scipy or torch."""
    out = subprocess.run([sys.executable, "-X", "importtime", "-c", "import audit.suite; audit.suite.load('sst2')"],
                         capture_output=True, text=True, check=True).stderr
    modules = {line.split("|")[-1].strip() for line in out.splitlines() if line.startswith("import time:")}
    assert "audit.suite" in modules and "audit.contract" in modules
    heavy = {m for m in modules if m.startswith(("audit.probes.", "numba", "sklearn", "scipy", "torch", "transformers"))}
    assert not heavy, sorted(heavy)


def module_imports(path: Path, modules: set[str]) -> set[str]:
    """The audit modules a file imports, at module level or inside functions (type-checking imports aside).
    ``from audit.report import plots`` depends on the module audit.report.plots, not on the package."""
    tree = ast.parse(path.read_text())
    typing_only = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
                   for n in ast.walk(node)}
    found = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("audit"):
            found |= {f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module
                      for a in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("audit")}
    return found


def test_audit_modules_import_each_other_without_a_cycle():
    """cli → runner → probes → engine → models/data, and never back (main had suite → registry → every
    probe → context → suite)."""
    names = {".".join(p.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__"): p
             for p in PACKAGE.rglob("*.py")}
    graph = {name: {m for m in module_imports(path, set(names)) if m in names and m != name}
             for name, path in names.items()}
    done, active = set(), []

    def visit(node):
        if node in active:
            pytest.fail("import cycle: " + " -> ".join(active[active.index(node):] + [node]))
        if node not in done:
            active.append(node)
            for dep in graph[node]:
                visit(dep)
            active.pop()
            done.add(node)

    for name in graph:
        visit(name)
    assert not {m for m in graph["audit.suite"] if m.startswith("audit.probes")}
    assert "audit.models" not in graph["audit.recipes"] and "audit.compress" not in graph["audit.models"]


@pytest.mark.parametrize("name", sorted(contract.declarations()))
def test_each_probe_declares_exactly_the_parameters_its_run_takes(name):
    spec = contract.declarations()[name]
    run_fn = importlib.import_module(f"audit.probes.{name}").run
    params = [p for p in inspect.signature(run_fn).parameters.values() if p.kind is p.KEYWORD_ONLY]
    assert [p.name for p in params] == list(spec.params)
    assert all(p.default is inspect.Parameter.empty for p in params)  # defaults live in the declaration only
    assert spec.doc and (PACKAGE / "probes" / f"{name}.py").read_text().count("SPEC = {") == 1


def test_declared_choices_are_the_implemented_ones():
    from audit.perturb import textattack_backend
    from audit.perturb.attack import RECIPES
    from audit.perturb.corruptions import FAMILIES

    params = {n: s.params for n, s in contract.declarations().items()}
    assert set(params["shift"]["corruptions"].choices) == set(FAMILIES) == set(params["shift"]["corruptions"].default)
    assert set(params["adversarial"]["recipes"].choices) == set(RECIPES) | {f"textattack_{r}"
                                                                           for r in textattack_backend.RECIPES}


def test_metric_lookup_prefers_exact_names_and_expands_templates():
    shift = contract.get("shift")
    assert shift.metric("corruption_drop").better == "lower"  # not the corruption_{corruptions} template
    assert shift.metric("drop_imdb").better == "lower" and shift.metric("accuracy_imdb").ci
    assert shift.metric("nothing_like_this") is None
    names = shift.metric_names(("neg", "pos"), {"sets": ["a"], "corruptions": ["typo"]})
    assert {"accuracy_a", "corruption_typo_s3", "corruption_typo"} <= set(names) and "accuracy_b" not in names


@pytest.mark.parametrize("given, error", [
    ({"confidence": 1.0}, "out of range"), ({"confidence": float("nan")}, "finite"),
    ({"n_bootstrap": True}, "must be an integer"), ({"n_bootstrap": 5}, "out of range"), ({"nbootstrap": 5}, "did you mean"),
])
def test_parameter_constraints(given, error):
    with pytest.raises(SpecError, match=error):
        contract.get("accuracy").resolve(given, "probes.accuracy", {})


def test_estimates_normalise_numbers_and_keep_reasons():
    assert Estimate.of(0.5).as_dict() == {"value": 0.5}
    assert Estimate.of(float("nan")) == Estimate(None)  # the runner refuses it: no reason given
    assert Estimate.of(Estimate(None, note="no slice")).as_dict() == {"value": None, "note": "no slice"}
    assert Estimate.of(Estimate(0.2, (0.1, float("inf")), 9)).as_dict() == {"value": 0.2, "n": 9}
    assert Estimate.of(Estimate(0.2, (0.1, 0.3), 9, note="ignored")).as_dict() == {"value": 0.2, "ci": [0.1, 0.3], "n": 9}


def test_a_probe_breaking_its_contract_is_an_error_not_a_number(tiny_bert, tiny_suite, tmp_path, monkeypatch):
    from audit import runner
    from audit.context import ProbeResult

    real = runner.implementation
    monkeypatch.setattr(runner, "implementation", lambda name: (lambda ctx, **p: ProbeResult({"acc": 1.0}))
                        if name == "accuracy" else real(name))
    out = tmp_path / "out"
    result = run("check", tiny_bert, "-b", tiny_suite, "--out", out)
    report = json.loads((out / "report.json").read_text())
    assert result.exit_code == 1 and report["verdict"] == "error"
    assert "undeclared metric(s) ['acc']" in report["probes"]["accuracy"]["error"]
    monkeypatch.setattr(runner, "implementation", lambda name: (lambda ctx, **p: ProbeResult({"accuracy": float("nan")}))
                        if name == "accuracy" else real(name))
    assert run("check", tiny_bert, "-b", tiny_suite, "--out", out).exit_code == 1
    report = json.loads((out / "report.json").read_text())
    assert "no value and no reason for ['accuracy']" in report["probes"]["accuracy"]["error"]
    assert {g["name"]: g["status"] for g in report["gates"]}["accuracy-floor"] == "error"  # never inconclusive


def test_every_probe_view_lives_beside_its_probe():
    views = {p.name.removesuffix(".html.j2") for p in (PACKAGE / "probes").glob("*.html.j2")}
    assert views <= set(contract.declarations()) and len(views) >= 7
    template = (PACKAGE / "report" / "templates" / "report.html.j2").read_text()
    assert not any(f'p.name == "{name}"' in template for name in contract.declarations())  # no per-probe if chain
