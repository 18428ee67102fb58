"""`audit diff`: what changed between two reports (verdict, gate statuses, metrics), for ratcheting in CI."""

from __future__ import annotations

RANK = {"pass": 0, "skipped": 1, "inconclusive": 2, "error": 3, "fail": 4}


def diff(old: dict, new: dict, tolerance: float = 0.0) -> dict:
    gates_old, gates_new = {g["name"]: g for g in old["gates"]}, {g["name"]: g for g in new["gates"]}
    gates = []
    for name in list(gates_old) + [n for n in gates_new if n not in gates_old]:
        a, b = gates_old.get(name), gates_new.get(name)
        change = ("added" if a is None else "removed" if b is None else "same" if a["status"] == b["status"]
                  else "worse" if RANK[b["status"]] > RANK[a["status"]] else "better")
        gates.append({"gate": name, "old": a and a["status"], "new": b and b["status"], "change": change,
                      "old_observed": a and a["observed"], "new_observed": b and b["observed"]})
    metrics = []
    for probe in list(old["probes"]) + [p for p in new["probes"] if p not in old["probes"]]:
        for part in ("metrics", "baseline_metrics"):
            a = (old["probes"].get(probe) or {}).get(part) or {}
            b = (new["probes"].get(probe) or {}).get(part) or {}
            for name in list(a) + [k for k in b if k not in a]:
                x, y = a.get(name), b.get(name)
                if x is None and y is None or x is not None and y is not None and abs(y - x) <= tolerance:
                    continue
                metrics.append({"metric": f"{probe}.{name}", "role": "model" if part == "metrics" else "baseline",
                                "old": x, "new": y, "delta": y - x if x is not None and y is not None else None})
    return {"verdict": {"old": old["verdict"], "new": new["verdict"]}, "gates": gates, "metrics": metrics,
            "worse": [g["gate"] for g in gates if g["change"] == "worse"]}


def render(d: dict) -> str:
    from audit.report.markdown import table

    lines = [f"verdict: {d['verdict']['old']} -> {d['verdict']['new']}", ""]
    changed = [g for g in d["gates"] if g["change"] != "same"]
    lines += table(["gate", "old", "new", "change", "old observed", "new observed"],
                   [[g["gate"], g["old"], g["new"], g["change"], g["old_observed"], g["new_observed"]] for g in changed]) \
        if changed else ["gates: no status changed"]
    lines.append("")
    lines += table(["metric", "role", "old", "new", "delta"],
                   [[m["metric"], m["role"], m["old"], m["new"], m["delta"]] for m in d["metrics"]]) \
        if d["metrics"] else ["metrics: none changed"]
    return "\n".join(lines) + "\n"
