"""Gates: a suite's thresholds applied to a report's estimates → pass / fail / inconclusive / skipped / error.

A gate bounds a metric (``min``/``max``) or its regression against the baseline (``max_regression``,
in the metric's worse direction, as the probe declares it). With ``confidence``, the estimate's
interval decides: pass when it lies wholly on the good side, fail when wholly on the bad side,
inconclusive when it straddles the threshold. Fewer examples than ``min_samples`` behind the
estimate, or an estimate the probe could not define (with its reason), is inconclusive too.
"""

from __future__ import annotations

from typing import Any

from audit import contract
from audit.status import RISK_ORDER, STATUSES, blocks
from audit.suite import GateSpec

# A share of the eval items cut to fit the model's max length above this is a finding; above the second,
# a gate on scores of those items is inconclusive: the model was not asked what the benchmark asks.
TRUNCATION_NOTE, TRUNCATION_LIMIT = 0.01, 0.10


def _observed(gate: GateSpec, section: dict, metric: str, decl) -> tuple[dict | None, str]:
    """(the estimate the gate compares, what it is called); None with a reason to skip."""
    own = section["metrics"].get(metric)
    if gate.max_regression is None:
        if own is None and decl is not None and decl.vs_baseline and "baseline_metrics" not in section:
            return None, f"{gate.metric} compares against a baseline (needs --baseline)"
        return own or {"value": None, "note": f"{gate.probe} did not report {metric}"}, gate.metric
    base = (section.get("baseline_metrics") or {}).get(metric)
    if base is None:
        return None, f"{gate.metric} has no baseline value (needs --baseline)"
    value, ref = (own or {}).get("value"), base.get("value")
    if value is None or ref is None:
        note = (own or {}).get("note") or base.get("note") or f"{gate.probe} did not report {metric}"
        return {"value": None, "note": note}, f"regression of {gate.metric}"
    lower = decl.lower_is_better
    ci = ((section.get("deltas") or {}).get(metric) or {}).get("ci")
    regression = {"value": value - ref if lower else ref - value, "n": (own or {}).get("n")}
    if ci is not None:
        regression["ci"] = ci if lower else [-ci[1], -ci[0]]  # regression = the worse-direction change
    return regression, f"regression of {gate.metric}"


def _at_end(est: dict, end: float, lower_is_better: bool) -> bool:
    """Does the estimate sit at its range's worst end: its value there (or past it), or its CI reaching it?"""
    tol = 1e-9
    value, ci = est["value"], est.get("ci")
    if lower_is_better:
        return value >= end - tol or (ci is not None and ci[1] >= end - tol)
    return value <= end + tol or (ci is not None and ci[0] <= end + tol)


def _vacuous(gate: GateSpec, section: dict, metric: str, decl, chance: float | None) -> str | None:
    """Why a regression gate compared nothing, or None: model and baseline both sit at the worst end of the
    metric's declared range (consistency 0 for both, accuracy at chance for both, every attack succeeding),
    so no regression could show. One rule for every probe, from the declarations."""
    end = decl.worst_end(chance) if decl is not None else None
    own, base = section["metrics"].get(metric), (section.get("baseline_metrics") or {}).get(metric)
    if end is None or gate.max_regression is None or not own or not base or None in (own["value"], base["value"]):
        return None
    if not (_at_end(own, end, decl.lower_is_better) and _at_end(base, end, decl.lower_is_better)):
        return None
    where = f"chance ({end:.3g})" if decl.range[1 if decl.lower_is_better else 0] == contract.CHANCE else f"{end:g}"
    return (f"model ({own['value']:.4g}) and baseline ({base['value']:.4g}) both sit at {metric}'s worst value, "
            f"{where}, or their CIs reach it: no regression could show")


def evaluate(gate: GateSpec, probes: dict[str, dict[str, Any]], chance: float | None = None,
             truncation: dict | None = None) -> dict[str, Any]:
    """One gate against the report's probe sections; the result echoes threshold, CI and sample size.
    ``chance`` is the run's chance accuracy, where a metric's declared range starts; ``truncation`` how
    many eval items the engine cut (``share``, ``n_truncated``, ``n``, ``max_length``: the worse model's)."""
    result = {"name": gate.name, "metric": gate.metric, "threshold": gate.threshold, "severity": gate.severity,
              "confidence": gate.confidence, "observed": None, "ci": None, "n": None, "status": "", "message": "",
              "description": gate.description}
    section = probes.get(gate.probe)
    metric = gate.metric.split(".", 1)[1]
    if section is None or section["status"] == "skipped":
        reason = section["reason"] if section else "probe not run"
        return {**result, "status": "skipped", "message": f"{gate.probe} skipped: {reason}"}
    if section["status"] == "error":
        return {**result, "status": "error", "message": f"{gate.probe} raised an error, so {metric} is unknown"}
    decl = contract.get(gate.probe).metric(metric)
    est, what = _observed(gate, section, metric, decl)
    if est is None:
        return {**result, "status": "skipped", "message": what}
    n = est.get("n") if est.get("n") is not None else section.get("n")
    result.update(observed=est["value"], n=n)
    if est["value"] is None:
        return {**result, "status": "inconclusive", "message": f"{what} is undefined: {est.get('note') or 'no value'}"}
    if gate.min_samples and (n or 0) < gate.min_samples:
        return {**result, "status": "inconclusive",
                "message": f"{what} = {est['value']:.4g} rests on {n} examples, fewer than min_samples {gate.min_samples}"}
    if truncation and truncation["share"] > TRUNCATION_LIMIT and contract.get(gate.probe).scores_items:
        return {**result, "status": "inconclusive",
                "message": f"{what} = {est['value']:.4g}, but {truncation['n_truncated']} of {truncation['n']} eval "
                           f"items were cut to fit max_length {truncation['max_length']}: the model did not see "
                           "what the benchmark asks"}
    timed_on = (section.get("details") or {}).get("hardware")
    if gate.hardware and timed_on is not None and gate.hardware.lower() not in timed_on.lower():
        return {**result, "status": "inconclusive",
                "message": f"{what} was timed on {timed_on}, and this gate holds on hardware '{gate.hardware}'"}
    vacuous = _vacuous(gate, section, metric, decl, chance)
    if vacuous:
        return {**result, "status": "inconclusive", "message": f"{what} compared nothing: {vacuous}"}
    lo_bound, hi_bound = gate.min, gate.max if gate.max is not None else gate.max_regression
    if gate.confidence is not None:
        ci = est.get("ci")
        if ci is None:
            return {**result, "status": "error", "message": f"{gate.probe} reports no confidence interval for {metric}"}
        result["ci"] = list(ci)
        bad = (lo_bound is not None and ci[1] < lo_bound) or (hi_bound is not None and ci[0] > hi_bound)
        good = (lo_bound is None or ci[0] >= lo_bound) and (hi_bound is None or ci[1] <= hi_bound)
        status = "fail" if bad else "pass" if good else "inconclusive"
        text = f"{what} = {est['value']:.4g}, {gate.confidence:.0%} CI [{ci[0]:.4g}, {ci[1]:.4g}]"
    else:
        v = est["value"]
        status = "fail" if (lo_bound is not None and v < lo_bound) or (hi_bound is not None and v > hi_bound) else "pass"
        text = f"{what} = {v:.4g}"
    bounds = ", ".join(f"{k} {v:g}" for k, v in gate.threshold.items())
    verb = {"pass": "within", "fail": "violates", "inconclusive": "straddles"}[status]
    return {**result, "status": status, "message": f"{text} {verb} {bounds}"}


def verdict(gates: list[dict[str, Any]], probes: dict[str, dict[str, Any]],
            inconclusive_fails: bool = True) -> tuple[str, str]:
    """(verdict, why). fail: a blocking gate failed (or was inconclusive, if the suite says so); error: a probe
    or blocking gate could not be evaluated; inconclusive: no blocking gate passed, so nothing was shown;
    pass: the blocking gates that were evaluated passed, at least one of them."""
    blocking = [g for g in gates if g["severity"] == "fail"]
    failed = [g["name"] for g in blocking if blocks(g, inconclusive_fails)]
    if failed:
        return "fail", f"blocking gate(s) did not pass: {', '.join(failed)}"
    errors = [f"gate {g['name']}" for g in blocking if g["status"] == "error"] + \
        [f"probe {name}" for name, p in probes.items() if p["status"] == "error"]
    if errors:
        return "error", f"could not be evaluated: {', '.join(errors)}"
    passed = [g for g in blocking if g["status"] == "pass"]
    if not passed:
        if not blocking:
            return "inconclusive", "the suite has no blocking gate (severity: fail) for the probes that ran"
        counts = {s: sum(g["status"] == s for g in blocking) for s in ("skipped", "inconclusive")}
        reasons = sorted({g["message"] for g in blocking})
        return "inconclusive", (f"no blocking gate passed ({', '.join(f'{n} {s}' for s, n in counts.items() if n)}): "
                                + "; ".join(reasons[:3]) + ("; ..." if len(reasons) > 3 else ""))
    return "pass", f"{len(passed)} blocking gate(s) passed" + (
        f", {len(blocking) - len(passed)} skipped or inconclusive (warn)" if len(passed) < len(blocking) else "")


def findings(gates: list[dict[str, Any]], truncation: dict | None = None) -> list[dict[str, Any]]:
    """Gates that did not pass, ranked by risk: failed blocking gates, then inconclusive, then warnings; and
    eval items cut to fit the model beyond ``TRUNCATION_NOTE``, after the failed blocking gates."""
    risky = [g for g in gates if (g["severity"], g["status"]) in RISK_ORDER]
    ranked = [{"gate": g["name"], "severity": g["severity"], "status": g["status"], "metric": g["metric"],
               "observed": g["observed"], "ci": g["ci"], "message": g["message"]}
              for g in sorted(risky, key=lambda g: (RISK_ORDER.index((g["severity"], g["status"])),
                                                    -STATUSES[g["status"]].rank))]
    if truncation and truncation["share"] > TRUNCATION_NOTE:
        cut = truncation["share"] > TRUNCATION_LIMIT
        at = sum(f["severity"] == "fail" and f["status"] == "fail" for f in ranked)
        ranked.insert(at, {"gate": "truncated-inputs", "severity": "warn", "status": "inconclusive" if cut else "fail",
                           "metric": "benchmark.truncation", "observed": truncation["share"], "ci": None,
                           "message": f"{truncation['n_truncated']} of {truncation['n']} eval items "
                                      f"({truncation['share']:.0%}) were cut to fit max_length "
                                      f"{truncation['max_length']}" + (f": gates on item scores are inconclusive "
                                      f"above {TRUNCATION_LIMIT:.0%}" if cut else "")})
    return ranked
