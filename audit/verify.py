"""`audit verify`: re-run an audit from its report's manifest, or check a paper's claims against a report.

A re-run reproduces when the verdict matches and every metric either matches (to float noise),
or, where the original reported a confidence interval, falls inside it. Timing metrics, which
differ on every run by nature, are listed but not compared.
"""

from __future__ import annotations

import json
import math
from functools import lru_cache
from importlib import resources
from pathlib import Path

from audit import contract, gates as gates_mod, yamlfile
from audit.assemble import SCHEMA_VERSION
from audit.diff import hardware_of
from audit.files import sha256_file
from audit.errors import AuditError, did_you_mean
from audit.suite import GateSpec

REL_TOL = 1e-6
CLAIM_KEYS = {"claim", "metric", "role", "value", "tolerance", "min", "max", "max_regression"}


@lru_cache(maxsize=1)
def schema() -> dict:
    return json.loads(resources.files("audit.report").joinpath("report.schema.json").read_text(encoding="utf-8"))


def load_report(path: Path) -> dict:
    """A report.json, checked against the shipped schema; a bad file is bad input."""
    import jsonschema

    try:
        report = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise AuditError("report not found", str(path), "give the report.json an audit run wrote") from None
    except IsADirectoryError:
        raise AuditError("is a directory", str(path), f"give the report.json file, e.g. {Path(path) / 'report.json'}") \
            from None
    except OSError as exc:
        raise AuditError(f"cannot read the report ({exc.strerror})", str(path), "check the path") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise AuditError(f"not a JSON report ({exc})", str(path), "give the report.json an audit run wrote") from None
    version = report.get("schema_version") if isinstance(report, dict) else None
    if isinstance(version, str) and version != SCHEMA_VERSION:
        raise AuditError(f"report schema {version}, but this audit reads schema {SCHEMA_VERSION}", str(path),
                         "re-run the audit with this version of audit")
    error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(schema()).iter_errors(report))
    if error is not None:
        where = "/".join(map(str, error.absolute_path)) or "(top level)"
        raise AuditError(f"does not match the report schema at {where}: {error.message}", str(path),
                         "give a report.json written by this version of audit")
    return report


def input_changes(manifest: dict) -> list[dict]:
    """Files the original run read whose bytes are now different or missing."""
    expected = dict(manifest["data"]) | dict(manifest["suite"]["files"])
    for role, m in manifest.get("models", {}).items():
        expected |= {str(Path(m["directory"]) / name): h for name, h in m["files"].items()}
    changes = []
    for path, digest in expected.items():
        if not Path(path).is_file():
            changes.append({"path": path, "change": "missing"})
        elif sha256_file(Path(path)) != digest:
            changes.append({"path": path, "change": "content differs"})
    return changes


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= REL_TOL * max(1.0, abs(a), abs(b))


def varies(probe: str, metric: str) -> bool:
    """Does the probe declare this metric as differing run to run (a timing)?"""
    spec = contract.declarations().get(probe)
    decl = spec.metric(metric) if spec else None
    return bool(decl and decl.varies)


def environment(manifest: dict) -> dict:
    """What a re-run's numbers depend on besides the inputs: hardware, platform, package versions."""
    return {"device": manifest.get("device"), "platform": manifest.get("platform"), "python": manifest.get("python"),
            "packages": manifest.get("packages")}


def _status(old: dict, new: dict | None, exact: bool) -> str:
    """How one re-run metric compares with the recorded one. Every random choice is seeded, so on the same
    hardware and versions every metric must come out exactly as recorded. Elsewhere float rounding may move a
    sampled estimate (one with a CI) a little: "within CI" then means the two estimates are compatible, each
    inside the other's interval (a recorded value edited by hand, its CI left as it was, is not inside the
    re-run's). A metric without a CI must reproduce anywhere."""
    value, ci = (new or {}).get("value"), old.get("ci")
    if old["value"] is None or value is None:
        return "reproduced" if old["value"] is value else "differs"
    if _close(old["value"], value):
        return "reproduced"
    new_ci = (new or {}).get("ci") or ci
    if not exact and ci is not None and ci[0] <= value <= ci[1] and new_ci[0] <= old["value"] <= new_ci[1]:
        return "within CI"
    return "differs"


def compare(original: dict, new: dict) -> list[dict]:
    """Every metric of every probe: reproduced, within CI (another environment only), differs, or varies
    (timing)."""
    exact = environment(original["manifest"]) == environment(new["manifest"])
    rows = []
    for name, section in original["probes"].items():
        fresh = new["probes"].get(name, {})
        for part in ("metrics", "baseline_metrics"):
            for metric, old in (section.get(part) or {}).items():
                estimate = (fresh.get(part) or {}).get(metric)
                status = "varies (timing, not compared)" if varies(name, metric) else _status(old, estimate, exact)
                rows.append({"probe": name, "role": "model" if part == "metrics" else "baseline", "metric": metric,
                             "original": old["value"], "new": (estimate or {}).get("value"), "status": status})
    return rows


def summarize(original: dict, new: dict, changes: list[dict]) -> dict:
    """Reproduced: the inputs are the recorded bytes, the verdict is the same, and no metric differs."""
    rows = compare(original, new)
    gates = [{"gate": g["name"], "original": g["status"],
              "new": next((h["status"] for h in new["gates"] if h["name"] == g["name"]), None)} for g in original["gates"]]
    bad = [r for r in rows if r["status"] == "differs"]
    same_environment = environment(original["manifest"]) == environment(new["manifest"])
    # an lm-eval: benchmark is rebuilt from the harness on a re-run: another version or task config is another test
    source = {"original": original["benchmark"]["source"], "new": new["benchmark"]["source"]}
    return {"reproduced": original["verdict"] == new["verdict"] and not bad and not changes and
                          source["original"] == source["new"],
            "benchmark_source": source | {"same": source["original"] == source["new"]},
            "hardware": {"original": hardware_of(original), "new": hardware_of(new)},
            "verdict": {"original": original["verdict"], "new": new["verdict"]}, "input_changes": changes,
            "same_environment": same_environment,
            "environment_changes": sorted(k for k, v in environment(original["manifest"]).items()
                                          if environment(new["manifest"])[k] != v),
            "gates": gates, "metrics": rows,
            "counts": {s: sum(r["status"] == s for r in rows) for s in sorted({r["status"] for r in rows})}}


def load_claims(path: Path) -> list[dict]:
    doc = yamlfile.load(Path(path), kind="claims")
    claims = doc.get("claims") if isinstance(doc, dict) else None
    if not isinstance(claims, list) or not claims:
        raise AuditError("no 'claims:' list", str(path), "write claims: [{metric: accuracy.accuracy, value: 0.91}]")
    for i, c in enumerate(claims):
        where = f"{path}: claims[{i}]"
        if not isinstance(c, dict) or not isinstance(c.get("metric"), str) or "." not in c["metric"]:
            raise AuditError("a claim needs 'metric: probe.metric'", where, "e.g. metric: accuracy.accuracy")
        unknown = set(c) - CLAIM_KEYS
        if unknown:
            raise AuditError(f"unknown key '{sorted(unknown)[0]}'", where, did_you_mean(sorted(unknown)[0], CLAIM_KEYS))
        if c.get("role", "model") not in ("model", "baseline") or c.get("role") == "baseline" and "max_regression" in c:
            raise AuditError("'role' must be model or baseline (max_regression compares the two)", where,
                             "e.g. role: baseline for a claim about the uncompressed model")
        kinds = [k for k in ("value", "min", "max", "max_regression") if k in c]
        if len(kinds) != 1 or not all(_finite(c[k]) for k in kinds + (["tolerance"] if "tolerance" in c else [])):
            raise AuditError("a claim needs exactly one finite number: value, min, max or max_regression", where,
                             "e.g. value: 0.91 (with tolerance:), or max_regression: 0.01")
    return claims


def _finite(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def check_claims(report: dict, claims: list[dict], where: str = "claims") -> list[dict]:
    """Each claim against the measured value and its CI: supported, contradicted or inconclusive. A claim
    on a metric no probe has (a typo) is bad input, not an inconclusive claim."""
    for i, c in enumerate(claims):
        _check_metric_name(report, c["metric"], f"{where}: claims[{i}].metric")
    return [_claim(report, c) for c in claims]


def _check_metric_name(report: dict, name: str, where: str) -> None:
    """The metric a probe of the report measured, or (the probe did not run) one its declaration names."""
    probe, metric = name.split(".", 1)
    spec = contract.get(probe, where)
    section = report["probes"].get(probe)
    if section is not None and section["status"] == "ok":
        known = set(section.get("metrics") or {}) | set(section.get("baseline_metrics") or {})
        if metric not in known:
            raise AuditError(f"the report's {probe} probe has no metric '{metric}'", where,
                             did_you_mean(metric, known))
    elif spec.metric(metric) is None:
        raise AuditError(f"probe '{probe}' has no metric '{metric}'", where,
                         did_you_mean(metric, [m.name for m in spec.metrics]))


def _claim(report: dict, c: dict) -> dict:
    probe, metric = c["metric"].split(".", 1)
    role = c.get("role", "model")
    section = report["probes"].get(probe)
    out = {"claim": c.get("claim", c["metric"]), "metric": c["metric"], "role": role}
    if section is not None and role == "baseline":  # judge the baseline's values as if they were the model's
        section = {**section, "metrics": section.get("baseline_metrics") or {}}
    if section is None or section["status"] != "ok" or (section["metrics"].get(metric) or {}).get("value") is None:
        return out | {"status": "inconclusive", "reason": f"the report has no measured {c['metric']} for the {role}"}
    if "value" in c:
        return out | _value_claim(section, metric, c)
    confidence = section.get("params", {}).get("confidence")
    bounds = {k: float(c[k]) for k in ("min", "max", "max_regression") if k in c}
    probes = {**report["probes"], probe: section}
    facts = report["benchmark"].get("chance_accuracy"), report["benchmark"].get("truncation")
    gate = gates_mod.evaluate(GateSpec(name=out["claim"], metric=c["metric"], confidence=confidence, **bounds), probes,
                              *facts)
    if gate["status"] == "error" and confidence is not None:  # no CI for this metric: judge the point estimate
        gate = gates_mod.evaluate(GateSpec(name=out["claim"], metric=c["metric"], **bounds), probes, *facts)
    status = {"pass": "supported", "fail": "contradicted"}.get(gate["status"], "inconclusive")
    return out | {"status": status, "measured": gate["observed"], "ci": gate["ci"], "reason": gate["message"]}


def _value_claim(section: dict, metric: str, c: dict) -> dict:
    """A claimed number (± its rounding): contradicted when the CI excludes it, supported when the point
    estimate rounds to it, inconclusive when only the CI reaches it."""
    value = float(c["value"])
    tol = float(c.get("tolerance", _half_unit(c["value"])))
    est = section["metrics"][metric]
    measured, ci = est["value"], est.get("ci")
    low, high = ci if ci else (measured, measured)
    if high < value - tol or low > value + tol:
        status = "contradicted"
    elif abs(measured - value) <= tol:
        status = "supported"
    else:
        status = "inconclusive"
    return {"status": status, "measured": measured, "ci": ci,
            "reason": f"claimed {value:g} ± {tol:g}; measured {measured:.4g}"
                      + (f", CI [{low:.4g}, {high:.4g}]" if ci else " (no CI)")}


def _half_unit(value) -> float:
    """Half a unit of the claimed number's last written digit: 0.91 -> 0.005."""
    text = str(value)
    return 0.5 * 10 ** -(len(text.split(".")[1]) if "." in text and "e" not in text else 0)
