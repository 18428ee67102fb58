"""Gates: a suite's thresholds applied to observed metrics → pass / fail / inconclusive / skipped / error.

A gate bounds a metric (``min``/``max``) or its regression against the baseline (``max_regression``,
in the metric's worse direction, declared once per metric in the probe registry). With
``confidence``, the metric's confidence interval decides: pass when it lies wholly on the good
side, fail when wholly on the bad side, inconclusive when it straddles the threshold or the
sample is smaller than ``min_samples``.
"""

from __future__ import annotations

import math
from typing import Any

from audit import registry
from audit.suite import GateSpec


def _ci(gate: GateSpec, section: dict, metric: str, lower_better: bool) -> tuple[float, float] | None:
    """The CI of what the gate compares: the metric itself, or its regression against the baseline."""
    if gate.max_regression is None:
        m = section["metrics"]
        low, high = m.get(f"{metric}_ci_low"), m.get(f"{metric}_ci_high")
        return (low, high) if low is not None and high is not None else None
    ci = (section.get("delta_ci") or {}).get(metric)
    if ci is None:
        return None
    low, high = ci
    return (low, high) if lower_better else (-high, -low)  # regression = worse-direction change


def evaluate(gate: GateSpec, probes: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """One gate against the report's probe sections; the result echoes threshold, CI and sample size."""
    result = {"name": gate.name, "metric": gate.metric, "threshold": gate.threshold, "severity": gate.severity,
              "confidence": gate.confidence, "observed": None, "ci": None, "n": None, "status": "", "message": "",
              "description": gate.description}
    section = probes.get(gate.probe)
    metric = gate.metric.split(".", 1)[1]
    if section is None or section["status"] == "skipped":
        reason = section["reason"] if section else "probe not run"
        return {**result, "status": "skipped", "message": f"{gate.probe} skipped: {reason}"}
    spec = registry.get(gate.probe)
    lower_better = spec.is_lower_better(metric)
    if section["status"] == "ok" and metric not in section["metrics"] and spec.needs_baseline_for(metric):
        return {**result, "status": "skipped", "message": f"{gate.metric} compares against a baseline (needs --baseline)"}
    if gate.max_regression is not None:
        value, base = section["metrics"].get(metric), (section.get("baseline_metrics") or {}).get(metric)
        if section["status"] == "ok" and base is None:
            return {**result, "status": "skipped", "message": f"{gate.metric} has no baseline value (needs --baseline)"}
        observed = None if value is None or base is None else (value - base if lower_better else base - value)
        what = f"regression of {gate.metric}"
    else:
        observed = section["metrics"].get(metric)
        what = gate.metric
    result["observed"], result["n"] = observed, section.get("n")
    if section["status"] == "error" or observed is None or math.isnan(observed):
        return {**result, "status": "error", "message": f"{gate.probe} did not produce {metric}"}
    lo_bound, hi_bound = gate.min, gate.max if gate.max is not None else gate.max_regression
    if gate.confidence is not None:
        ci = _ci(gate, section, metric, lower_better)
        if ci is None:
            return {**result, "status": "error", "message": f"{gate.probe} reports no confidence interval for {metric}"}
        result["ci"] = list(ci)
        if gate.min_samples and (result["n"] or 0) < gate.min_samples:
            return {**result, "status": "inconclusive",
                    "message": f"{what}: only {result['n']} examples, fewer than min_samples {gate.min_samples}"}
        bad = (lo_bound is not None and ci[1] < lo_bound) or (hi_bound is not None and ci[0] > hi_bound)
        good = (lo_bound is None or ci[0] >= lo_bound) and (hi_bound is None or ci[1] <= hi_bound)
        status = "fail" if bad else "pass" if good else "inconclusive"
        text = f"{what} = {observed:.4g}, {gate.confidence:.0%} CI [{ci[0]:.4g}, {ci[1]:.4g}]"
    else:
        bad = (lo_bound is not None and observed < lo_bound) or (hi_bound is not None and observed > hi_bound)
        status = "fail" if bad else "pass"
        text = f"{what} = {observed:.4g}"
    bounds = ", ".join(f"{k} {v:g}" for k, v in gate.threshold.items())
    verb = {"pass": "within", "fail": "violates", "inconclusive": "straddles"}[status]
    return {**result, "status": status, "message": f"{text} {verb} {bounds}"}


def verdict(gates: list[dict[str, Any]], probes: dict[str, dict[str, Any]], inconclusive_fails: bool = True) -> str:
    """fail: a blocking gate failed (or was inconclusive, if the suite says so); error: a probe or
    blocking gate could not be evaluated; else pass."""
    blocking = [g for g in gates if g["severity"] == "fail"]
    if any(g["status"] == "fail" or (g["status"] == "inconclusive" and inconclusive_fails) for g in blocking):
        return "fail"
    if any(g["status"] == "error" for g in blocking) or any(p["status"] == "error" for p in probes.values()):
        return "error"
    return "pass"


RISK_ORDER = {("fail", "fail"): 0, ("fail", "error"): 1, ("fail", "inconclusive"): 2, ("warn", "fail"): 3,
              ("warn", "inconclusive"): 4, ("warn", "error"): 5}


def findings(gates: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Gates that did not pass, ranked by risk: failed blocking gates, then inconclusive, then warnings."""
    risky = [g for g in gates if (g["severity"], g["status"]) in RISK_ORDER]
    return [{"gate": g["name"], "severity": g["severity"], "status": g["status"], "metric": g["metric"],
             "observed": g["observed"], "ci": g["ci"], "message": g["message"]}
            for g in sorted(risky, key=lambda g: RISK_ORDER[g["severity"], g["status"]])]
