"""report.md: short enough for a pull-request comment (verdict, trade-off, findings, gates, link to the HTML)."""

from __future__ import annotations

STATUS_MARK = {"pass": "✅ pass", "fail": "❌ fail", "inconclusive": "❔ inconclusive", "skipped": "⏭ skipped",
               "error": "⚠️ error", "ok": "ok"}
TOP_FINDINGS = 5


def cell(value, limit: int = 160) -> str:
    """A table cell: numbers to 4 significant digits, text escaped for Markdown and shortened."""
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.4g}"
    text = " ".join(str(value).split())
    text = text if len(text) <= limit else text[: limit - 1] + "…"
    for ch in "\\|`*_<>[]":
        text = text.replace(ch, "\\" + ch)
    return text


def table(header: list[str], rows: list[list]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]


def render(report: dict) -> str:
    model, base, bench, summary = report["model"], report.get("baseline"), report["benchmark"], report.get("summary", {})
    lines = [f"# audit: {report['verdict'].upper()}", ""]
    who = f"model `{model['path']}` (`{model['fingerprint'][:12]}`)" if model else "no model (data checks only)"
    if base:
        who += f" vs baseline `{base['path']}` (`{base['fingerprint'][:12]}`)"
    lines += [f"{who} on **{bench['name']}** ({bench['n_eval']} eval examples"
              + (f", sampled from {bench['n_eval_total']}" if bench["n_eval"] != bench["n_eval_total"] else "") + ").", ""]
    if summary.get("tradeoff"):
        lines += [f"**Trade-off** {cell(summary['tradeoff'], 400)}", ""]
    findings = summary.get("findings", [])
    if findings:
        lines += ["## Top findings, by risk", ""]
        lines += [f"{i}. {STATUS_MARK.get(f['status'], f['status'])} **{cell(f['gate'])}** ({f['severity']}): "
                  f"{cell(f['message'], 300)}" for i, f in enumerate(findings[:TOP_FINDINGS], 1)]
        if len(findings) > TOP_FINDINGS:
            lines.append(f"\n…and {len(findings) - TOP_FINDINGS} more in the gate table.")
        lines.append("")
    errors = [name for name, p in report["probes"].items() if p["status"] == "error"]
    if errors:
        lines += [f"⚠️ Probes that raised an error: {', '.join(errors)} (details in report.json).", ""]
    lines += ["## Gates", ""]
    lines += table(["gate", "metric", "threshold", "observed", "CI", "severity", "status"],
                   [[g["name"], g["metric"], ", ".join(f"{k} {v:g}" for k, v in g["threshold"].items()),
                     g["observed"], f"[{g['ci'][0]:.4g}, {g['ci'][1]:.4g}]" if g.get("ci") else None, g["severity"],
                     STATUS_MARK.get(g["status"], g["status"])] for g in report["gates"]])
    sampled = summary.get("sampled") or {}
    if sampled:
        lines += ["", f"Sampled with seed {report['manifest']['seed']}: "
                  + "; ".join(f"{probe}: {', '.join(parts)}" for probe, parts in sampled.items())]
    m = report["manifest"]
    lines += ["", "Plots, per-probe metrics and examples: [report.html](report.html) · machine-readable: "
              "[report.json](report.json), [junit.xml](junit.xml), [report.sarif](report.sarif)", "",
              "Reproduce: `audit verify report.json`, or", "", "```", " ".join(m["command"]), "```",
              f"seed {m['seed']} · audit {m['packages'].get('audit')} · torch {m['packages'].get('torch')} · "
              f"transformers {m['packages'].get('transformers')} · device {m['device']['type']}", ""]
    return "\n".join(lines)
