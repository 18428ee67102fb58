"""report.md: short enough for a pull-request comment."""

from __future__ import annotations

STATUS_MARK = {"pass": "✅ pass", "fail": "❌ fail", "inconclusive": "❔ inconclusive", "skipped": "⏭ skipped",
               "error": "⚠️ error", "ok": "ok"}


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


def contamination_examples(examples: list[dict] | None, limit: int = 10) -> list[str]:
    if not examples:
        return []
    return ["", f"Worst {min(limit, len(examples))} benchmark items by overlap with the training data:", ""] + table(
        ["row", "benchmark item", "contaminated", "Jaccard", "containment", "corpus", "matched text"],
        [[e["row"], e["text"], "yes" if e["contaminated"] else "no", e["jaccard"], e["containment"],
          f"{e['source']}:{e['source_row']}" if e["source"] else "–", e["matched_text"]] for e in examples[:limit]])


def render(report: dict) -> str:
    model, base, bench = report["model"], report.get("baseline"), report["benchmark"]
    lines = [f"# audit: {report['verdict'].upper()}", ""]
    who = f"model `{model['path']}` (`{model['fingerprint'][:12]}`)" if model else "no model (data checks only)"
    if base:
        who += f" vs baseline `{base['path']}` (`{base['fingerprint'][:12]}`)"
    lines += [f"{who} on **{bench['name']}** ({bench['n_eval']} eval examples"
              + (f", sampled from {bench['n_eval_total']}" if bench["n_eval"] != bench["n_eval_total"] else "") + ").", ""]
    if report.get("summary", {}).get("tradeoff"):
        lines += [f"**Trade-off** {cell(report['summary']['tradeoff'], 400)}", ""]
    findings = report.get("summary", {}).get("findings", [])
    if findings:
        lines += ["## Findings, by risk", ""]
        lines += [f"{i}. {STATUS_MARK.get(f['status'], f['status'])} **{cell(f['gate'])}** ({f['severity']}): "
                  f"{cell(f['message'], 300)}" for i, f in enumerate(findings, 1)] + [""]
    sampled = report.get("summary", {}).get("sampled") or {}
    if sampled:
        lines += [f"Sampled with seed {report['manifest']['seed']}: "
                  + "; ".join(f"{probe}: {', '.join(parts)}" for probe, parts in sampled.items()), ""]
    lines += ["## Gates", ""]
    lines += table(["gate", "metric", "threshold", "observed", "CI", "severity", "status"],
                   [[g["name"], g["metric"], ", ".join(f"{k} {v:g}" for k, v in g["threshold"].items()),
                     g["observed"], f"[{g['ci'][0]:.4g}, {g['ci'][1]:.4g}]" if g.get("ci") else None, g["severity"],
                     STATUS_MARK.get(g["status"], g["status"])] for g in report["gates"]])
    for name, section in report["probes"].items():
        lines += ["", f"## {name} ({section['status']})", ""]
        if section["status"] != "ok":
            lines.append(section.get("reason") or section.get("error") or "")
            continue
        base_m, deltas = section.get("baseline_metrics"), section.get("deltas") or {}
        header = ["metric", "model"] + (["baseline", "delta"] if base_m else [])
        lines += table(header, [[k, v] + ([base_m.get(k), deltas.get(k)] if base_m else [])
                                for k, v in section["metrics"].items()])
        lines += contamination_examples(section.get("details", {}).get("examples") if name == "contamination" else None)
        flipped = section.get("details", {}).get("flipped_examples")
        if flipped:
            lines += ["", f"First {min(5, len(flipped))} flipped examples:", ""]
            lines += table(["row", "text", "label", "model", "baseline"],
                           [[e["row"], e["text"], e["label"], e["model"], e["baseline"]] for e in flipped[:5]])
    m = report["manifest"]
    lines += ["", "## Reproduce", "", "```", " ".join(m["command"]), "```",
              f"seed {m['seed']} · audit {m['packages'].get('audit')} · torch {m['packages'].get('torch')} · "
              f"transformers {m['packages'].get('transformers')} · device {m['device']['type']}", ""]
    return "\n".join(lines)
