"""junit.xml: one test case per gate, plus one for the verdict, so any CI test-report viewer shows them
(a run whose every gate was skipped is not green: its verdict case fails)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from audit.status import blocks


def render(report: dict) -> str:
    gates = report["gates"]
    inconclusive_fails = report["summary"].get("inconclusive", "fail") == "fail"
    suite = ET.Element("testsuite", name=f"audit.{report['benchmark']['name']}", tests=str(len(gates)),
                       timestamp=report["manifest"]["created"])
    counts = {"failures": 0, "errors": 0, "skipped": 0}
    for g in gates:
        case = ET.SubElement(suite, "testcase", classname=f"audit.{report['benchmark']['name']}.gates", name=g["name"])
        text = f"{g['metric']}: {g['message']}"
        if blocks(g, inconclusive_fails):
            ET.SubElement(case, "failure", message=g["message"], type=g["status"]).text = text
            counts["failures"] += 1
        elif g["status"] == "error":
            ET.SubElement(case, "error", message=g["message"], type="error").text = text
            counts["errors"] += 1
        elif g["status"] == "skipped":
            ET.SubElement(case, "skipped", message=g["message"])
            counts["skipped"] += 1
        elif g["status"] != "pass":  # a warning gate that did not pass: reported, not failing
            ET.SubElement(case, "system-out").text = f"WARNING ({g['status']}): {text}"
    case = ET.SubElement(suite, "testcase", classname=f"audit.{report['benchmark']['name']}", name="verdict")
    reason = report["summary"].get("verdict_reason", "")
    if report["verdict"] in ("fail", "inconclusive"):
        ET.SubElement(case, "failure", message=reason, type=report["verdict"]).text = f"verdict {report['verdict']}: {reason}"
        counts["failures"] += 1
    elif report["verdict"] == "error":
        ET.SubElement(case, "error", message=reason, type="error").text = reason
        counts["errors"] += 1
    for name, p in report["probes"].items():
        if p["status"] == "error":
            case = ET.SubElement(suite, "testcase", classname=f"audit.{report['benchmark']['name']}.probes", name=name)
            ET.SubElement(case, "error", message=p["error"], type="probe-error").text = p.get("traceback", p["error"])
            counts["errors"] += 1
    suite.set("tests", str(len(suite)))
    for k, v in counts.items():
        suite.set(k, str(v))
    ET.indent(suite)
    return ET.tostring(suite, encoding="unicode", xml_declaration=True) + "\n"
