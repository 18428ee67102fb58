"""report.html: one self-contained page (inline CSS, plots as PNG data URIs, no script, no network).

Rendered by Jinja2 with autoescaping on, so every dataset and model string is escaped; the
highlighting of changed words is built as (text, changed) segments, never as markup strings.
"""

from __future__ import annotations

import difflib
from importlib import resources

from audit.report import plots

STATUS_CLASS = {"pass": "pass", "fail": "fail", "inconclusive": "inconclusive", "skipped": "skipped", "error": "error"}


def word_diff(before: str, after: str) -> tuple[list[tuple[str, bool]], list[tuple[str, bool]]]:
    """Both texts as (word, changed) segments: what an attack or corruption changed."""
    a, b = before.split(), after.split()
    left, right = [], []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        left += [(w, op != "equal") for w in a[i1:i2]]
        right += [(w, op != "equal") for w in b[j1:j2]]
    return left, right


def metric_rows(section: dict) -> list[dict]:
    base, deltas = section.get("baseline_metrics") or {}, section.get("deltas") or {}
    return [{"name": k, "model": v, "baseline": base.get(k), "delta": deltas.get(k)} for k, v in section["metrics"].items()]


def _calibration(section: dict) -> dict:
    diagrams = section["details"].get("reliability") or {}
    return {"plot": plots.reliability(diagrams)} if diagrams else {}


def _shift(section: dict) -> dict:
    m, b = section["metrics"], section.get("baseline_metrics") or {}
    roles = {"model": m} | ({"baseline": b} if b else {})
    sets = list(section["details"].get("sets", {}))
    out: dict = {"sets": [{"name": n, **info, "model": m.get(f"accuracy_{n}"), "baseline": b.get(f"accuracy_{n}"),
                           "ci": [m.get(f"accuracy_{n}_ci_low"), m.get(f"accuracy_{n}_ci_high")],
                           "consistency": m.get(f"consistency_{n}"), "consistency_baseline": b.get(f"consistency_{n}")}
                          for n, info in section["details"].get("sets", {}).items()]}
    if sets:
        out["sets_plot"] = plots.grouped_bars(["in-distribution"] + sets, {
            role: [r.get("in_distribution_accuracy")] + [r.get(f"accuracy_{n}") for n in sets] for role, r in roles.items()},
            "Accuracy on shift sets")
    corr = section["details"].get("corruptions") or {}
    families, severities = corr.get("families") or [], corr.get("severities") or []
    if families:
        out["severity_plot"] = plots.severity_lines(families, severities, {
            role: {f: [r[f"corruption_{f}_s{s}"] for s in severities] for f in families} for role, r in roles.items()})
        out["corruption_examples"] = [{**e, "diff": word_diff(e["original"], e["corrupted"])}
                                      for e in corr.get("examples", [])]
    return out


def _longtail(section: dict) -> dict:
    rows = section["details"].get("slices", [])
    roles = ["model"] + (["baseline"] if rows and "baseline" in rows[0] else [])
    return {"slices": rows, "plot": plots.grouped_bars(
        [r["slice"] for r in rows], {role: [r[role]["accuracy"] for r in rows] for role in roles}, "Accuracy by slice")
        if rows else None}


def _adversarial(section: dict) -> dict:
    return {"attacks": {name: [{**e, "diff": word_diff(e["original"], e["perturbed"])} for e in examples]
                        for name, examples in section["details"].get("examples", {}).items()}}


VIEWS = {"calibration": _calibration, "shift": _shift, "longtail": _longtail, "adversarial": _adversarial}


def number(v, digits: int = 4) -> str:
    """4 significant digits; large counts (parameters, bytes) in full with thousands separators."""
    if v is None:
        return "–"
    if isinstance(v, float) and abs(v) >= 1e4:
        return f"{v:,.0f}"
    return f"{v:.{digits}g}" if isinstance(v, float) else str(v)


def render(report: dict) -> str:
    from jinja2 import Environment

    env = Environment(autoescape=True, trim_blocks=True, lstrip_blocks=True)
    env.filters["num"] = number
    env.filters["pct"] = lambda v: "–" if v is None else f"{100 * v:.3g}%"
    template = env.from_string(resources.files("audit.report").joinpath("templates/report.html.j2")
                               .read_text(encoding="utf-8"))
    probes = []
    for name, section in report["probes"].items():
        view = VIEWS[name](section) if section["status"] == "ok" and name in VIEWS else {}
        probes.append({"name": name, "section": section, "rows": metric_rows(section) if section["status"] == "ok"
                       else [], "view": view})
    failed = [g for g in report["gates"] if g["status"] in ("fail", "inconclusive", "error")]
    return template.render(report=report, probes=probes, failed=failed, status_class=STATUS_CLASS)
