"""report.html: one self-contained page (inline CSS, plots as PNG data URIs, no script, no network).

Rendered by Jinja2 with autoescaping on, so every dataset and model string is escaped; the
highlighting of changed words is built as (text, changed) segments, never as markup strings.
Each probe's section comes from its own view, ``audit/probes/<name>.html.j2`` (a probe without
one gets the metric table alone); views get the helpers below and the plot functions.
"""

from __future__ import annotations

import difflib
from importlib import resources

from audit.contract import PROBES_DIR
from audit.report import plots
from audit.status import STATUSES


def word_diff(before: str, after: str) -> tuple[list[tuple[str, bool]], list[tuple[str, bool]]]:
    """Both texts as (word, changed) segments: what an attack or corruption changed."""
    a, b = before.split(), after.split()
    left, right = [], []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        left += [(w, op != "equal") for w in a[i1:i2]]
        right += [(w, op != "equal") for w in b[j1:j2]]
    return left, right


def roles(section: dict) -> list[str]:
    return ["model"] + (["baseline"] if section.get("baseline_metrics") else [])


def estimate(section: dict, name: str, role: str = "model") -> dict:
    part = "metrics" if role == "model" else "baseline_metrics"
    return (section.get(part) or {}).get(name) or {}


def value(section: dict, name: str, role: str = "model"):
    return estimate(section, name, role).get("value")


def series(section: dict, names: list[str]) -> dict[str, list]:
    """{role: [value of each named metric]}: one bar group per name, one bar per role."""
    return {role: [value(section, n, role) for n in names] for role in roles(section)}


def grid(section: dict, rows: list, cols: list, pattern: str) -> dict[str, dict]:
    """{role: {row: [value of pattern.format(row=row, col=col) for each col]}}, e.g. accuracy by family and severity."""
    return {role: {r: [value(section, pattern.format(row=r, col=c), role) for c in cols] for r in rows}
            for role in roles(section)}


def column(rows: list[dict], *path: str) -> list:
    """rows[i][path[0]][path[1]]... for every row."""
    out = []
    for row in rows:
        for key in path:
            row = row[key]
        out.append(row)
    return out


def metric_rows(section: dict) -> list[dict]:
    base, deltas = section.get("baseline_metrics") or {}, section.get("deltas") or {}
    return [{"name": k, "model": v, "baseline": base.get(k), "delta": deltas.get(k)} for k, v in section["metrics"].items()]


def number(v, digits: int = 4) -> str:
    """4 significant digits; large counts (parameters, bytes) in full with thousands separators."""
    if v is None:
        return "–"
    if isinstance(v, float) and abs(v) >= 1e4:
        return f"{v:,.0f}"
    return f"{v:.{digits}g}" if isinstance(v, float) else str(v)


def environment():
    from jinja2 import ChoiceLoader, DictLoader, Environment, FileSystemLoader

    main = resources.files("audit.report").joinpath("templates/report.html.j2").read_text(encoding="utf-8")
    env = Environment(loader=ChoiceLoader([DictLoader({"report.html.j2": main}), FileSystemLoader(str(PROBES_DIR))]),
                      autoescape=True, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(num=number, pct=lambda v: "–" if v is None else f"{100 * v:.3g}%",
                       prefix=lambda s, p: f"{p}{s}")
    env.globals.update(plots=plots, word_diff=word_diff, value=value, estimate=estimate, series=series, grid=grid,
                       column=column, roles=roles, css=lambda s: STATUSES[s].css if s in STATUSES else "error")
    return env


def render(report: dict) -> str:
    probes = [{"name": name, "section": section, "rows": metric_rows(section) if section["status"] == "ok" else []}
              for name, section in report["probes"].items()]
    failed = [g for g in report["gates"] if g["status"] in ("fail", "inconclusive", "error")]
    gate_names = {g["name"] for g in report["gates"]}
    notes = [f for f in report["summary"]["findings"] if f["gate"] not in gate_names]  # e.g. truncated inputs
    return environment().get_template("report.html.j2").render(report=report, probes=probes, failed=failed, notes=notes)
