"""Gates: a suite's thresholds applied to observed metrics → pass / fail / skipped / error."""

from __future__ import annotations

import math
from typing import Any

from audit.suite import GateSpec


def evaluate(gate: GateSpec, probes: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """One gate against the report's probe sections; the result echoes the threshold."""
    result = {"name": gate.name, "metric": gate.metric, "threshold": gate.threshold, "severity": gate.severity,
              "observed": None, "status": "", "message": "", "description": gate.description}
    section = probes.get(gate.probe)
    metric = gate.metric.split(".", 1)[1]
    if section is None or section["status"] == "skipped":
        reason = section["reason"] if section else "probe not run"
        return {**result, "status": "skipped", "message": f"{gate.probe} skipped: {reason}"}
    if section["status"] == "error" or metric not in section["metrics"]:
        return {**result, "status": "error", "message": f"{gate.probe} did not produce {metric}"}
    observed = section["metrics"][metric]
    result["observed"] = observed
    if observed is None or math.isnan(observed):
        return {**result, "status": "error", "message": f"{gate.metric} is NaN"}
    if gate.min is not None and observed < gate.min:
        return {**result, "status": "fail", "message": f"{gate.metric} = {observed:.4g} is below min {gate.min:g}"}
    if gate.max is not None and observed > gate.max:
        return {**result, "status": "fail", "message": f"{gate.metric} = {observed:.4g} is above max {gate.max:g}"}
    return {**result, "status": "pass", "message": f"{gate.metric} = {observed:.4g} within {gate.threshold}"}


def verdict(gates: list[dict[str, Any]], probes: dict[str, dict[str, Any]]) -> str:
    """fail: a fail-severity gate failed; error: a probe or blocking gate could not be evaluated; else pass."""
    blocking = [g for g in gates if g["severity"] == "fail"]
    if any(g["status"] == "fail" for g in blocking):
        return "fail"
    if any(g["status"] == "error" for g in blocking) or any(p["status"] == "error" for p in probes.values()):
        return "error"
    return "pass"
