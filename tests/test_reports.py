"""The five report files, the JSON schema, a real headless browser on hostile text, verify and diff."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET

import jsonschema
import pytest
import yaml

from audit.report import FILES
from audit.verify import schema
from conftest import build_tiny_bert, sst2_rows, write_tsv
from test_cli import assert_bad_input, run

PAYLOAD = ("<script>document.body.setAttribute('data-pwned','1')</script>"
           "<img src=x onerror=\"document.body.setAttribute('data-pwned','2')\"> & \"quotes\"")


@pytest.fixture(scope="module")
def audited(tmp_path_factory):
    """One full check (every probe, with a baseline) on a suite whose first eval item is hostile HTML."""
    root = tmp_path_factory.mktemp("reports")
    rows = sst2_rows(64)
    rows[0] = (PAYLOAD + " " + rows[0][0], rows[0][1])
    write_tsv(root / "dev.tsv", rows)
    write_tsv(root / "train.tsv", rows[::-1][:40] + sst2_rows(64)[:8])
    write_tsv(root / "shift.tsv", [(t.upper(), y) for t, y in rows[:30]])
    (root / "suite.yaml").write_text("""\
name: hostile
labels: [negative, positive]
data:
  eval: {path: dev.tsv, text_field: sentence, label_field: label, label_map: {0: negative, 1: positive}}
  reference: {path: train.tsv, text_field: sentence, label_field: label, label_map: {0: negative, 1: positive}}
shift_sets:
  upper: {path: shift.tsv, text_field: sentence, label_field: label, label_map: {0: negative, 1: positive}}
probes:
  accuracy: {}
  comparison: {}
  calibration: {fit_split: reference, fit_size: 40, n_bootstrap: 50}
  contamination: {}
  shift: {corruption_sample: 16, corruptions: [typo]}
  longtail: {min_support: 10}
  adversarial: {sample_size: 12, query_budget: 40, recipes: [deepwordbug]}
  efficiency: {latency_sample: 3, throughput_sample: 16, warmup: 1, rounds: 2}
gates:
  - name: accuracy-floor
    metric: accuracy.accuracy
    min: 0.99
    description: deliberately failing
  - {name: flip-rate, metric: comparison.flip_rate, max: 1.0}
  - {name: ece, metric: calibration.ece, max: 0.5, confidence: 0.95, severity: warn}
  - {name: contamination, metric: contamination.contaminated_fraction, max: 0.01}
""")
    model, baseline = build_tiny_bert(root / "m", seed=3), build_tiny_bert(root / "b", seed=4)
    out = root / "out"
    result = run("check", model, "--baseline", baseline, "-b", root / "suite.yaml", "--out", out)
    assert result.exit_code == 1, result.output
    return root, out


def test_all_five_files_and_json_matches_schema(audited):
    _, out = audited
    assert sorted(p.name for p in out.iterdir()) == sorted(FILES)
    report = json.loads((out / "report.json").read_text())
    jsonschema.Draft202012Validator(schema()).validate(report)
    assert all(r["status"] == "ok" for r in report["probes"].values()), {k: r.get("error") for k, r in report["probes"].items()}
    broken = json.loads(json.dumps(report))
    broken["gates"][0]["status"] = "maybe"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, schema())
    for task, labels in (("classification", ["negative"]), ("generate", ["negative", "positive"])):
        broken = json.loads(json.dumps(report))
        broken["benchmark"].update(task=task, labels=labels)
        with pytest.raises(jsonschema.ValidationError, match="short|long|non-empty|expected"):
            jsonschema.validate(broken, schema())


def test_junit_has_one_case_per_gate_with_failure_messages(audited):
    _, out = audited
    report = json.loads((out / "report.json").read_text())
    suite = ET.parse(out / "junit.xml").getroot()
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == [g["name"] for g in report["gates"]] + ["verdict"]
    failing = {g["name"]: g for g in report["gates"] if g["severity"] == "fail" and g["status"] in ("fail", "inconclusive")}
    assert int(suite.get("failures")) == len(failing) + 1 >= 3  # accuracy-floor, contamination and the verdict
    assert cases[-1].find("failure").get("type") == "fail"
    for case in cases[:-1]:
        failure = case.find("failure")
        assert (failure is not None) == (case.get("name") in failing)
        if failure is not None:
            assert failure.get("message") == failing[case.get("name")]["message"]


def test_sarif_results_rules_locations_and_stable_fingerprints(audited, tmp_path):
    root, out = audited
    sarif = json.loads((out / "report.sarif").read_text())
    pytest.importorskip("sarif_pydantic").Sarif.model_validate(sarif)  # the SARIF 2.1.0 object model
    assert sarif["version"] == "2.1.0"
    runs = sarif["runs"][0]
    report = json.loads((out / "report.json").read_text())
    assert [r["id"] for r in runs["tool"]["driver"]["rules"]] == [g["name"] for g in report["gates"]]
    expected = [g["name"] for g in report["gates"] if g["status"] in ("fail", "inconclusive")]
    assert [r["ruleId"] for r in runs["results"]] == expected and expected
    for r in runs["results"]:
        loc = r["locations"][0]["physicalLocation"]
        line = (root / "suite.yaml").read_text().splitlines()[loc["region"]["startLine"] - 1]
        assert r["ruleId"] in line and loc["artifactLocation"]["uri"].endswith("suite.yaml")
        assert r["level"] == ("error" if r["ruleId"] in ("accuracy-floor", "contamination") else "warning")
    again = tmp_path / "again"
    run("check", root / "m", "--baseline", root / "b", "-b", root / "suite.yaml", "--out", again, "--probes",
        "accuracy,comparison,calibration,contamination")
    prints = lambda d: {r["ruleId"]: r["partialFingerprints"] for r in json.loads((d / "report.sarif").read_text())["runs"][0]["results"]}
    assert prints(again) == prints(out)


def test_markdown_is_short_and_links_the_html(audited):
    _, out = audited
    md = (out / "report.md").read_text()
    assert md.startswith("# audit: FAIL") and "(report.html)" in md and "| accuracy-floor |" in md
    assert "**Trade-off** " in md and len(md.splitlines()) < 40
    assert "<script>" not in md


def chromium() -> str | None:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None and os.environ.get("CI"):
        pytest.fail("CI must have Debian's chromium (.ci/run installs it)")
    return found


def rendered_dom(browser: str, page, tmp_path) -> str:
    """The DOM after Chromium loaded the page and ran whatever scripts it would run."""
    args = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=2000", "--dump-dom", page.as_uri()]
    return subprocess.run(args, capture_output=True, text=True, timeout=120, check=True).stdout


def test_hostile_benchmark_text_is_inert_in_a_real_browser(audited, tmp_path):
    browser = chromium() or pytest.skip("chromium not installed (apt-get install chromium)")
    _, out = audited
    control = tmp_path / "control.html"  # the same payload unescaped: proves the browser would run it
    control.write_text(f"<html><body><p>{PAYLOAD}</p></body></html>")
    control_dom = rendered_dom(browser, control, tmp_path)
    assert 'data-pwned="' in control_dom and '<img src="x"' in control_dom

    page = (out / "report.html").read_text()
    assert "<script" not in page.lower() and "&lt;script&gt;document.body.setAttribute" in page
    dom = rendered_dom(browser, out / "report.html", tmp_path)
    assert 'data-pwned="' not in dom and "<script" not in dom.lower() and '<img src="x"' not in dom
    assert "&lt;script&gt;document.body.setAttribute" in dom  # shown as text
    assert dom.count('src="data:image/png;base64,') >= 4  # reliability, shift sets, corruption, slices
    assert "http://" not in page.replace("http://www.w3.org", "") and "https://" not in page  # nothing to fetch


def test_verify_reproduces_the_audit_and_notices_tampering(audited, tmp_path):
    _, out = audited
    result = run("verify", out / "report.json", "--out", tmp_path / "v")
    assert result.exit_code == 0, result.output
    assert "reproduced: yes" in result.output and "varies (timing, not compared)" in result.output

    tampered = json.loads((out / "report.json").read_text())
    tampered["probes"]["accuracy"]["metrics"]["accuracy"] |= {"value": 0.999, "ci": [0.99, 1.0]}
    (tmp_path / "t.json").write_text(json.dumps(tampered))
    result = run("verify", tmp_path / "t.json", "--out", tmp_path / "v2")
    assert result.exit_code == 1 and "[differs] accuracy.accuracy (model)" in result.output
    assert "reproduced: no" in result.output
    tampered["manifest"]["request"]["colour"] = "blue"  # a request this version cannot re-run
    (tmp_path / "t.json").write_text(json.dumps(tampered))
    assert_bad_input(run("verify", tmp_path / "t.json", "--out", tmp_path / "v3"), tmp_path / "v3",
                     "manifest.request cannot be re-run")


def test_verify_claims_supported_contradicted_inconclusive(audited, tmp_path):
    _, out = audited
    report = json.loads((out / "report.json").read_text())
    acc = report["probes"]["accuracy"]["metrics"]["accuracy"]
    claims = {"claims": [
        {"claim": "accuracy as measured", "metric": "accuracy.accuracy", "value": round(acc["value"], 2)},
        {"claim": "accuracy 0.99", "metric": "accuracy.accuracy", "value": 0.99},
        {"claim": "accuracy near its CI edge", "metric": "accuracy.accuracy", "value": round(acc["ci"][1], 3),
         "tolerance": 0.001},
        {"claim": "loses less than 100 points", "metric": "accuracy.accuracy", "max_regression": 1.0},
        {"claim": "nothing measured", "metric": "membership.exchangeability_p", "min": 0.5},
        {"claim": "baseline as measured", "metric": "accuracy.accuracy", "role": "baseline",
         "value": round(report["probes"]["accuracy"]["baseline_metrics"]["accuracy"]["value"], 3)},
    ]}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(claims))
    result = run("verify", out / "report.json", "--claims", tmp_path / "c.yaml", "--json")
    statuses = [r["status"] for r in json.loads(result.output)]
    # two random models sit at chance, so a claim that one loses little against the other says nothing
    assert statuses == ["supported", "contradicted", "inconclusive", "inconclusive", "inconclusive", "supported"]
    assert result.exit_code == 1
    (tmp_path / "bad.yaml").write_text("claims:\n  - {metric: accuracy.accuracy, valu: 0.9}\n")
    assert_bad_input(run("verify", out / "report.json", "--claims", tmp_path / "bad.yaml"), tmp_path / "none",
                     "claims[0]", "unknown key 'valu'")


def test_diff_reports_gate_and_metric_changes(audited, tmp_path):
    _, out = audited
    new = json.loads((out / "report.json").read_text())
    new["gates"][1]["status"] = "fail"
    new["probes"]["accuracy"]["metrics"]["accuracy"]["value"] += 0.25
    (tmp_path / "new.json").write_text(json.dumps(new))
    result = run("diff", out / "report.json", tmp_path / "new.json", "--json")
    d = json.loads(result.output)
    assert d["worse"] == ["flip-rate"] and result.exit_code == 0
    moved = [m for m in d["metrics"] if m["metric"] == "accuracy.accuracy"][0]
    assert moved["delta"] == pytest.approx(0.25) and moved["direction"] == "better"
    assert run("diff", out / "report.json", tmp_path / "new.json", "--fail-on-regression").exit_code == 1
    same = run("diff", out / "report.json", out / "report.json")
    assert same.exit_code == 0 and "gates: no status changed" in same.output and "metrics: none changed" in same.output
    assert "hardware differs" not in same.output and d["hardware"]["same"]
    new["manifest"]["device"]["hardware"] |= {"cpu": "Intel Xeon Platinum 8480+", "cpu_features": ["avx512_vnni", "amx_int8"]}
    (tmp_path / "elsewhere.json").write_text(json.dumps(new))
    other = run("diff", out / "report.json", tmp_path / "elsewhere.json")
    assert "hardware differs: " in other.output and "-> Intel Xeon Platinum 8480+ (avx512_vnni, amx_int8; " in other.output


def test_verify_and_diff_reject_a_file_that_is_not_a_report(tmp_path):
    (tmp_path / "x.json").write_text('{"verdict": "pass"}')
    assert_bad_input(run("verify", tmp_path / "x.json"), tmp_path, "does not match the report schema")
    assert_bad_input(run("diff", tmp_path / "x.json", tmp_path / "missing.json"), tmp_path, "x.json")
    assert re.search(r"report", run("diff", "--help").output)


HOSTILE = "<img src=x onerror=alert(1)>"


def html_tokens(markdown_text: str) -> list[str]:
    """Raw HTML that a CommonMark renderer (markdown-it-py, with GFM tables) would pass through."""
    from markdown_it import MarkdownIt

    found = []

    def walk(tokens):
        for t in tokens:
            if t.type in ("html_inline", "html_block"):
                found.append(t.content)
            walk(t.children or [])

    walk(MarkdownIt("commonmark", {"html": True}).enable("table").parse(markdown_text))
    return found


def test_markdown_escapes_every_user_string(tmp_path):
    """Suite name, gate names and descriptions, labels, a model path with a backtick: main rendered the
    suite name's <img onerror> as HTML and a backtick in the path closed its code span."""
    from markdown_it import MarkdownIt

    labels = (f"neg{HOSTILE}", "pos*itive*")
    write_tsv(tmp_path / "dev.tsv", [(PAYLOAD + " " + t, y) for t, y in sst2_rows(64)])
    (tmp_path / "s.yaml").write_text(f"""\
name: "{HOSTILE}"
labels: ["{labels[0]}", "{labels[1]}"]
data:
  eval: {{path: dev.tsv, text_field: sentence, label_field: label, label_map: {{0: "{labels[0]}", 1: "{labels[1]}"}}}}
probes: {{accuracy: {{}}}}
gates:
  - {{name: "{HOSTILE}", metric: accuracy.accuracy, min: 0.99, description: "<script>x</script> | [link](javascript:x)"}}
""")
    model = build_tiny_bert(tmp_path / f"m`{HOSTILE}`", labels=labels)
    out = tmp_path / "out"
    assert run("check", model, "-b", tmp_path / "s.yaml", "--out", out).exit_code == 1
    md = (out / "report.md").read_text()
    assert html_tokens(md) == []
    rendered = MarkdownIt("commonmark", {"html": True}).enable("table").render(md)
    assert "<img" not in rendered and "<script" not in rendered
    assert set(re.findall(r'href="([^"]*)"', rendered)) == {"report.html", "report.json", "junit.xml", "report.sarif"}
    assert "&lt;img src=x onerror=alert(1)&gt;" in rendered  # shown as text
    assert html_tokens(f"# {HOSTILE}\n\n`{HOSTILE}`x`{HOSTILE}`") != []  # the check can fail
