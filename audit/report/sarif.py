"""report.sarif (SARIF 2.1.0): one result per failed or inconclusive gate, so CI annotates pull requests.

Each result points at the gate's line in the suite YAML. Fingerprints hash the benchmark, the gate
and the model's source (not the observed values), so the same problem keeps its identity across runs.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

from audit.status import STATUSES

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"


def _level(gate: dict) -> str:
    return "error" if gate["severity"] == "fail" and gate["status"] == "fail" else "warning"


def _location(suite_files: list[str], gate_name: str) -> dict:
    """The suite file and line that declare the gate (first match), as a repository-relative URI when possible."""
    for path in suite_files:
        try:
            lines = Path(path).read_text(encoding="utf-8").splitlines()
        except OSError:
            continue
        for n, line in enumerate(lines, 1):
            if re.search(r"name:\s*['\"]?%s['\"]?\s*($|[,}#])" % re.escape(gate_name), line):
                return {"physicalLocation": {"artifactLocation": {"uri": _uri(path)}, "region": {"startLine": n}}}
    return {"physicalLocation": {"artifactLocation": {"uri": _uri(suite_files[0]) if suite_files else "suite.yaml"}}}


def _uri(path: str) -> str:
    try:
        return Path(os.path.relpath(path)).as_posix()
    except ValueError:  # another drive (Windows)
        return Path(path).as_posix()


def fingerprint(report: dict, gate: dict) -> str:
    model = (report.get("model") or {}).get("path", "")
    key = json.dumps([report["benchmark"]["name"], gate["name"], gate["metric"], model])
    return hashlib.sha256(key.encode()).hexdigest()


def render(report: dict) -> str:
    files = list(report["manifest"]["suite"].get("files") or [report["manifest"]["suite"]["path"]])
    rules = [{"id": g["name"], "name": g["name"], "shortDescription": {"text": g["description"] or g["metric"]},
              "properties": {"metric": g["metric"], "threshold": g["threshold"], "severity": g["severity"]}}
             for g in report["gates"]]
    results = [{"ruleId": g["name"], "ruleIndex": i, "level": _level(g),
                "message": {"text": f"{g['status'].upper()}: {g['message']}"},
                "locations": [_location(files, g["name"])],
                "partialFingerprints": {"auditGate/v1": fingerprint(report, g)},
                "properties": {"status": g["status"], "observed": g["observed"], "ci": g["ci"]}}
               for i, g in enumerate(report["gates"]) if g["status"] in ("fail", "inconclusive")]
    run = {"tool": {"driver": {"name": "audit", "version": report["manifest"]["packages"].get("audit") or "0",
                               "rules": rules}},
           "results": results,
           "invocations": [{"executionSuccessful": True, "exitCode": STATUSES[report["verdict"]].exit_code,
                            "exitCodeDescription": f"verdict {report['verdict']}: "
                                                   f"{report['summary'].get('verdict_reason', '')}"}],
           "properties": {"verdict": report["verdict"], "benchmark": report["benchmark"]["name"]}}
    return json.dumps({"$schema": SCHEMA, "version": "2.1.0", "runs": [run]}, indent=2) + "\n"
