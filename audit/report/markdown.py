"""report.md: short enough for a pull-request comment (verdict, trade-off, findings, gates, link to the HTML).

Every string that comes from the user, the suite, the data or the model is escaped (``text``) or put
in a code span whose fence is longer than any backtick run inside it (``code``), so a hostile name
or path renders as text, never as HTML or Markdown (tests render the file with a CommonMark parser).
"""

from __future__ import annotations

import re

from audit.status import STATUSES

TOP_FINDINGS = 5
SPECIAL = re.compile(r"([\\`*_\[\]<>|&~!])")  # what makes inline Markdown or HTML
LINE_START = re.compile(r"^(?:(\d+)([.)])|([#+=-]))")  # what starts a heading or list at a line's start


def text(value, limit: int = 300) -> str:
    """User text for inline Markdown: whitespace folded, shortened, every Markdown character escaped."""
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.4g}"
    flat = " ".join(str(value).split())
    flat = flat if len(flat) <= limit else flat[: limit - 1] + "…"
    return LINE_START.sub(lambda m: f"{m[1]}\\{m[2]}" if m[1] else f"\\{m[3]}", SPECIAL.sub(r"\\\1", flat))


def code(value) -> str:
    """An inline code span that no backtick in ``value`` can close early (CommonMark's fence rule)."""
    flat = " ".join(str(value).split())
    fence = "`" * (max((len(run) for run in re.findall(r"`+", flat)), default=0) + 1)
    return f"{fence} {flat} {fence}"


def table(header: list[str], rows: list[list]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(text(v, 160) for v in row) + " |" for row in rows]


def mark(status: str) -> str:
    return STATUSES[status].mark if status in STATUSES else text(status)


def render(report: dict) -> str:
    model, base, bench, summary = report["model"], report.get("baseline"), report["benchmark"], report["summary"]
    lines = [f"# audit: {report['verdict'].upper()}", "", text(summary.get("verdict_reason")), ""]
    who = f"model {code(model['path'])} ({model['fingerprint'][:12]})" if model else "no model (data checks only)"
    if base:
        who += f" vs baseline {code(base['path'])} ({base['fingerprint'][:12]})"
    lines += [f"{who} on **{text(bench['name'])}** ({bench['n_eval']} eval examples"
              + (f", sampled from {bench['n_eval_total']}" if bench["n_eval"] != bench["n_eval_total"] else "") + ").", ""]
    for role, m in (("model", model), ("baseline", base)):
        if m:
            lines += [text(f"{role.capitalize()}: weights in {m['dtype']} ({m['dtype_reason']})"
                           + (f"; {m['compression_summary']}" if m.get("compression_summary") else "") + "."), ""]
    dropped = [(role, m["dropped_labels"]) for role, m in (("model", model), ("baseline", base)) if m and m.get("dropped_labels")]
    for role, labels in dropped:
        lines += [f"The {role}'s classes {text(', '.join(labels))} are not suite labels and were dropped "
                  "(--drop-label); its probabilities are renormalised over the rest.", ""]
    if summary.get("tradeoff"):
        lines += [f"**Trade-off** {text(summary['tradeoff'], 400)}", ""]
    findings = summary.get("findings", [])
    if findings:
        lines += ["## Top findings, by risk", ""]
        lines += [f"{i}. {mark(f['status'])} **{text(f['gate'])}** ({f['severity']}): {text(f['message'])}"
                  for i, f in enumerate(findings[:TOP_FINDINGS], 1)]
        if len(findings) > TOP_FINDINGS:
            lines.append(f"\n…and {len(findings) - TOP_FINDINGS} more in the gate table.")
        lines.append("")
    errors = [name for name, p in report["probes"].items() if p["status"] == "error"]
    if errors:
        lines += [f"⚠️ Probes that raised an error: {text(', '.join(errors))} (details in report.json).", ""]
    lines += ["## Gates", ""]
    lines += table(["gate", "metric", "threshold", "observed", "CI", "severity", "status"],
                   [[g["name"], g["metric"], ", ".join(f"{k} {v:g}" for k, v in g["threshold"].items()),
                     g["observed"], f"[{g['ci'][0]:.4g}, {g['ci'][1]:.4g}]" if g.get("ci") else None, g["severity"],
                     mark(g["status"])] for g in report["gates"]])
    sampled = summary.get("sampled") or {}
    if sampled:
        lines += ["", f"Sampled with seed {report['manifest']['seed']}: "
                  + text("; ".join(f"{probe}: {', '.join(parts)}" for probe, parts in sampled.items()), 1000)]
    m = report["manifest"]
    command = " ".join(m["command"])
    fence = "`" * max(3, max((len(run) + 1 for run in re.findall(r"`+", command)), default=0))
    lines += ["", "Plots, per-probe metrics and examples: [report.html](report.html) · machine-readable: "
              "[report.json](report.json), [junit.xml](junit.xml), [report.sarif](report.sarif)", "",
              "Reproduce: `audit verify report.json`, or", "", fence, command, fence,
              text(f"seed {m['seed']} · audit {m['packages'].get('audit')} · torch {m['packages'].get('torch')} · "
                   f"transformers {m['packages'].get('transformers')} · device {m['device']['type']}"), ""]
    return "\n".join(lines)
