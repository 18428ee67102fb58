"""`audit diff`: what changed between two reports (verdict, gate statuses, metrics), for ratcheting in CI.

Two reports are comparable only when they audited the same benchmark, with the same suite files, on
the same eval rows; otherwise their differences mean nothing and the diff refuses (``force`` overrides).
"""

from __future__ import annotations

from audit import contract
from audit.errors import AuditError
from audit.status import STATUSES


def comparable(old: dict, new: dict) -> None:
    """Refuse reports of different benchmarks, suites or eval samples (bad input, exit 2)."""
    source = [(r["benchmark"]["source"] or {}).get("config_sha256", "")[:12] for r in (old, new)]
    checks = [("benchmark", old["benchmark"]["name"], new["benchmark"]["name"]),
              ("task definition (lm-eval config sha256)", *source),
              ("suite files (sha256)", old["manifest"]["suite"]["sha256"][:12], new["manifest"]["suite"]["sha256"][:12]),
              ("eval rows", (old["benchmark"]["n_eval"], old["benchmark"]["sampled_rows"]),
               (new["benchmark"]["n_eval"], new["benchmark"]["sampled_rows"]))]
    for what, a, b in checks:
        if a != b:
            shown = (a, b) if what != "eval rows" else (f"{a[0]} rows", f"{b[0]} rows" if a[0] != b[0] else "other rows")
            raise AuditError(f"the reports differ in {what} ({shown[0]} vs {shown[1]}), so their metrics do not compare",
                             "audit diff", "diff reports of the same audit, or pass --force to compare anyway")


def direction(metric: str, delta: float | None) -> str | None:
    """better / worse by the probe's declaration of the metric, or None when it has no direction."""
    probe, _, name = metric.partition(".")
    spec = contract.declarations().get(probe)
    decl = spec.metric(name) if spec else None
    if decl is None or decl.better == "none" or not delta:
        return None
    return "better" if (delta > 0) == (decl.better == "higher") else "worse"


def diff(old: dict, new: dict, tolerance: float = 0.0) -> dict:
    gates_old, gates_new = {g["name"]: g for g in old["gates"]}, {g["name"]: g for g in new["gates"]}
    gates = []
    for name in list(gates_old) + [n for n in gates_new if n not in gates_old]:
        a, b = gates_old.get(name), gates_new.get(name)
        change = ("added" if a is None else "removed" if b is None else "same" if a["status"] == b["status"]
                  else "worse" if STATUSES[b["status"]].rank > STATUSES[a["status"]].rank else "better")
        gates.append({"gate": name, "old": a and a["status"], "new": b and b["status"], "change": change,
                      "old_observed": a and a["observed"], "new_observed": b and b["observed"]})
    metrics = []
    for probe in list(old["probes"]) + [p for p in new["probes"] if p not in old["probes"]]:
        for part in ("metrics", "baseline_metrics"):
            a = (old["probes"].get(probe) or {}).get(part) or {}
            b = (new["probes"].get(probe) or {}).get(part) or {}
            for name in list(a) + [k for k in b if k not in a]:
                x, y = (a.get(name) or {}).get("value"), (b.get(name) or {}).get("value")
                if x is None and y is None or x is not None and y is not None and abs(y - x) <= tolerance:
                    continue
                delta = y - x if x is not None and y is not None else None
                metrics.append({"metric": f"{probe}.{name}", "role": "model" if part == "metrics" else "baseline",
                                "old": x, "new": y, "delta": delta, "direction": direction(f"{probe}.{name}", delta)})
    machines = [hardware_of(r) for r in (old, new)]
    return {"verdict": {"old": old["verdict"], "new": new["verdict"]}, "gates": gates, "metrics": metrics,
            "hardware": {"old": machines[0], "new": machines[1], "same": machines[0] == machines[1]},
            "worse": [g["gate"] for g in gates if g["change"] == "worse"]
            + (["verdict"] if STATUSES[new["verdict"]].rank > STATUSES[old["verdict"]].rank else [])}


def hardware_of(report: dict) -> str | None:
    """The machine a report's timings were measured on, in one line (None: no model ran)."""
    from audit.hardware import label

    info = report["manifest"]["device"].get("hardware")
    return label(info) if info else None


def render(d: dict) -> str:
    from audit.report.markdown import table

    lines = [f"verdict: {d['verdict']['old']} -> {d['verdict']['new']}", ""]
    if not d["hardware"]["same"]:
        lines += [f"hardware differs: {d['hardware']['old']} -> {d['hardware']['new']} (timings do not compare)", ""]
    changed = [g for g in d["gates"] if g["change"] != "same"]
    lines += table(["gate", "old", "new", "change", "old observed", "new observed"],
                   [[g["gate"], g["old"], g["new"], g["change"], g["old_observed"], g["new_observed"]] for g in changed]) \
        if changed else ["gates: no status changed"]
    lines.append("")
    lines += table(["metric", "role", "old", "new", "delta", "direction"],
                   [[m["metric"], m["role"], m["old"], m["new"], m["delta"], m["direction"]] for m in d["metrics"]]) \
        if d["metrics"] else ["metrics: none changed"]
    return "\n".join(lines) + "\n"
