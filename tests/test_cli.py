import json

import pytest
from click.testing import CliRunner

from audit import registry
from audit.cli import main
from audit.report import FILES
from test_models import pickle_only


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def assert_bad_input(result, out, *fragments):
    """Exit 2, exactly one error line naming the problem, no traceback, no report written."""
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in errors[0]
    assert not any((out / name).exists() for name in FILES)


@pytest.mark.parametrize("command", sorted(main.commands))
def test_every_command_has_help(command):
    result = run(command, "--help")
    assert result.exit_code == 0 and "Usage:" in result.output and len(main.commands[command].help or "") > 20


def test_check_with_baseline_writes_both_reports(tiny_bert, tiny_bert_other, tiny_suite, tmp_path):
    out = tmp_path / "out"
    result = run("check", tiny_bert_other, "--benchmark", tiny_suite, "--baseline", tiny_bert, "--out", out, "--device", "cpu")
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert report["schema_version"] == "1.1" and report["verdict"] == "pass"
    acc = report["probes"]["accuracy"]
    assert acc["status"] == "ok" and 0 <= acc["metrics"]["accuracy"] <= 1
    assert acc["deltas"]["accuracy"] == pytest.approx(acc["metrics"]["accuracy"] - acc["baseline_metrics"]["accuracy"])
    comp = report["probes"]["comparison"]["metrics"]
    assert comp["flip_rate"] == pytest.approx(comp["n_flipped"] / 64)
    assert comp["accuracy_delta"] == pytest.approx(acc["deltas"]["accuracy"])
    assert comp["n_flipped"] > 0  # two random models disagree somewhere
    assert {g["name"]: g["status"] for g in report["gates"]} == {"accuracy-floor": "pass", "flip-rate": "pass"}
    assert report["model"]["fingerprint"] != report["baseline"]["fingerprint"]
    m = report["manifest"]
    assert m["seed"] == 0 and m["packages"]["torch"] and len(m["suite"]["sha256"]) == 64
    assert all(len(h) == 64 for h in m["data"].values())
    md = (out / "report.md").read_text()
    assert "# audit: PASS" in md and "| flip-rate |" in md


def test_failing_gate_exits_1_and_skips_baseline_probe(tiny_bert, tiny_suite, tmp_path):
    strict = tiny_suite.parent / "strict.yaml"
    strict.write_text(tiny_suite.read_text().replace("min: 0.0", "min: 0.99"))
    result = run("check", tiny_bert, "--benchmark", strict, "--out", tmp_path / "out")
    assert result.exit_code == 1, result.output
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    gates = {g["name"]: g for g in report["gates"]}
    assert report["verdict"] == "fail" and gates["accuracy-floor"]["status"] == "fail"
    assert gates["accuracy-floor"]["threshold"] == {"min": 0.99}
    assert report["probes"]["comparison"]["status"] == "skipped" and gates["flip-rate"]["status"] == "skipped"


def test_limit_samples_eval_with_seed(tiny_bert, tiny_suite, tmp_path):
    for seed in (1, 1, 2):
        assert run("check", tiny_bert, "-b", tiny_suite, "--limit", 20, "--seed", seed, "--out", tmp_path / str(seed)).exit_code == 0
    r1, r2 = (json.loads((tmp_path / s / "report.json").read_text())["benchmark"] for s in ("1", "2"))
    assert r1["n_eval"] == 20 and r1["n_eval_total"] == 64 and len(set(r1["sampled_rows"])) == 20
    assert r1["sampled_rows"] != r2["sampled_rows"]


def test_missing_model_dir(tiny_suite, tmp_path):
    out = tmp_path / "out"
    assert_bad_input(run("check", tmp_path / "nope", "-b", tiny_suite, "--out", out), out, "model directory not found")


def test_pickle_only_checkpoint(tiny_bert, tiny_suite, tmp_path):
    out = tmp_path / "out"
    assert_bad_input(run("check", pickle_only(tiny_bert, tmp_path), "-b", tiny_suite, "--out", out), out,
                     "pytorch_model.bin", "--allow-unsafe")


def test_suite_with_unknown_key(tiny_bert, tiny_suite, tmp_path):
    bad = tiny_suite.parent / "bad.yaml"
    bad.write_text(tiny_suite.read_text() + "thresholds: {}\n")
    out = tmp_path / "out"
    assert_bad_input(run("check", tiny_bert, "-b", bad, "--out", out), out, "bad.yaml", "unknown key 'thresholds'")


def test_label_mismatch(tiny_suite, tmp_path):
    from conftest import build_tiny_bert

    emotions = build_tiny_bert(tmp_path / "emo", labels=("joy", "anger"))
    out = tmp_path / "out"
    assert_bad_input(run("check", emotions, "-b", tiny_suite, "--out", out), out, "cannot match suite labels", "--label-map")
    assert run("check", emotions, "-b", tiny_suite, "--out", out, "--label-map", "joy=positive,anger=negative").exit_code == 0


def test_empty_and_non_utf8_data(tiny_bert, tiny_suite, tmp_path):
    out = tmp_path / "out"
    (tiny_suite.parent / "dev.tsv").write_text("")
    assert_bad_input(run("check", tiny_bert, "-b", tiny_suite, "--out", out), out, "dev.tsv", "no rows")
    (tiny_suite.parent / "dev.tsv").write_bytes("sentence\tlabel\nna\xefve\t1\n".encode("latin-1"))
    assert_bad_input(run("check", tiny_bert, "-b", tiny_suite, "--out", out), out, "dev.tsv", "not UTF-8")


def test_unknown_probe_and_missing_train_data(tiny_bert, tiny_suite, tmp_path):
    out = tmp_path / "out"
    assert_bad_input(run("check", tiny_bert, "-b", tiny_suite, "--probes", "acuracy", "--out", out), out, "did you mean 'accuracy'")
    assert_bad_input(run("check", tiny_bert, "-b", tiny_suite, "--train-data", tmp_path / "no.txt", "--out", out), out, "no.txt")


@pytest.fixture
def boom_probe(monkeypatch):
    def boom(ctx):
        raise RuntimeError("probe exploded")

    monkeypatch.setitem(registry._PROBES, "boom", registry.Probe("boom", boom, ("x",), False, "fails"))


def test_failing_probe_becomes_error_section_unless_strict(tiny_bert, tiny_suite, tmp_path, boom_probe):
    suite = tiny_suite.parent / "boom.yaml"
    suite.write_text(tiny_suite.read_text().replace("  comparison: {}", "  comparison: {}\n  boom: {}"))
    result = run("check", tiny_bert, "-b", suite, "--out", tmp_path / "out")
    assert result.exit_code == 1 and "probe boom: RuntimeError: probe exploded" in result.output
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["verdict"] == "error" and report["probes"]["boom"]["status"] == "error"
    assert report["probes"]["accuracy"]["status"] == "ok"  # the other probes still ran
    strict = run("check", tiny_bert, "-b", suite, "--out", tmp_path / "out2", "--strict")
    assert isinstance(strict.exception, RuntimeError) and not (tmp_path / "out2").exists()


def test_compress_then_check_compressed_against_base(tiny_bert, tiny_suite, tmp_path):
    q = tmp_path / "int8"
    result = run("compress", tiny_bert, "--method", "int8", "--out", q)
    assert result.exit_code == 0 and (q / "audit_compression.json").is_file()
    assert run("compress", tiny_bert, "--method", "int3", "--out", tmp_path / "x").exit_code == 2
    out = tmp_path / "out"
    assert run("check", q, "-b", tiny_suite, "--baseline", tiny_bert, "--out", out).exit_code == 0
    report = json.loads((out / "report.json").read_text())
    assert report["model"]["compression"]["method"] == "int8"
    assert report["probes"]["comparison"]["metrics"]["flip_rate"] <= 0.1  # int8 of the same weights mostly agrees


def test_suites_and_validate(tiny_suite, tmp_path):
    assert "sst2" in run("suites").output
    ok = run("validate", tiny_suite)
    assert ok.exit_code == 0 and "ok" in ok.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("labels: [a]\n")
    assert_bad_input(run("validate", bad), tmp_path, "labels")
