import json

import pytest
from click.testing import CliRunner

from audit import contract, runner
from audit.cli import main
from audit.report import FILES
from conftest import build_tiny_bert, sst2_rows, write_tsv
from test_models import pickle_only


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], prog_name="audit")


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
    assert report["schema_version"] == "2.3" and report["verdict"] == "pass"
    acc = report["probes"]["accuracy"]
    value = lambda section, name, part="metrics": section[part][name]["value"]
    assert acc["status"] == "ok" and 0 <= value(acc, "accuracy") <= 1 and acc["metrics"]["accuracy"]["n"] == 64
    assert value(acc, "accuracy", "deltas") == pytest.approx(value(acc, "accuracy") - value(acc, "accuracy", "baseline_metrics"))
    comp = report["probes"]["comparison"]
    assert value(comp, "flip_rate") == pytest.approx(value(comp, "n_flipped") / 64)
    assert value(comp, "accuracy_delta") == pytest.approx(value(acc, "accuracy", "deltas"))
    assert value(comp, "n_flipped") > 0  # two random models disagree somewhere
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
        assert run("check", tiny_bert, "-b", tiny_suite, "--limit", 40, "--seed", seed, "--out", tmp_path / str(seed)).exit_code == 0
    r1, r2 = (json.loads((tmp_path / s / "report.json").read_text())["benchmark"] for s in ("1", "2"))
    assert r1["n_eval"] == 40 and r1["n_eval_total"] == 64 and len(set(r1["sampled_rows"])) == 40
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
    assert_bad_input(run("check", emotions, "-b", tiny_suite, "--out", out), out, "model label 'joy' is not a suite label",
                     "--label-map")
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
    assert_bad_input(run("check", tiny_bert, "-b", tiny_suite, "--probes", "accuracy,contamination", "--train-data",
                         tmp_path / "no.txt", "--out", out), out, "no.txt")


@pytest.fixture
def boom_probe(monkeypatch):
    def boom(ctx):
        raise RuntimeError("probe exploded")

    monkeypatch.setitem(contract.declarations(), "boom", contract.build_spec("boom", {"metrics": {"x": {}}}))
    real = runner.implementation
    monkeypatch.setattr(runner, "implementation", lambda name: boom if name == "boom" else real(name))


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
    assert report["probes"]["comparison"]["metrics"]["flip_rate"]["value"] <= 0.1  # int8 of the same weights mostly agrees


def test_suites_and_validate(tiny_suite, tmp_path):
    assert "sst2" in run("suites").output
    ok = run("validate", tiny_suite)
    assert ok.exit_code == 0 and "ok" in ok.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("labels: [a]\n")
    assert_bad_input(run("validate", bad), tmp_path, "labels")


def test_a_run_that_evaluates_no_blocking_gate_is_inconclusive_not_pass(tiny_bert, tiny_suite, tmp_path):
    """main: `--probes comparison` without a baseline skipped every gate and PASSed (exit 0)."""
    only_flips = tiny_suite.parent / "flips.yaml"
    only_flips.write_text(tiny_suite.read_text().replace("  - {name: accuracy-floor, metric: accuracy.accuracy, min: 0.0}\n", ""))
    out = tmp_path / "out"
    result = run("check", tiny_bert, "-b", only_flips, "--out", out)
    report = json.loads((out / "report.json").read_text())
    assert result.exit_code == 1 and report["verdict"] == "inconclusive"
    assert "no blocking gate passed (1 skipped)" in report["summary"]["verdict_reason"]
    assert "verdict: INCONCLUSIVE" in result.output and "needs --baseline" in result.output


def test_tiny_samples_are_inconclusive_and_longtail_survives_one_item(tiny_bert, tiny_bert_other, tiny_suite, tmp_path):
    """main: --limit 1 divided by zero in the long-tail probe, and gates decided on one example."""
    text = tiny_suite.read_text().replace("  comparison: {}\n", "  comparison: {}\n  longtail: {}\n")
    tiny_suite.write_text("min_samples: 30\n" + text + "  - {name: slice, metric: longtail.worst_slice_accuracy, min: 0.1}\n")
    out = tmp_path / "out"
    result = run("check", tiny_bert_other, "--baseline", tiny_bert, "-b", tiny_suite, "--out", out, "--limit", 1)
    report = json.loads((out / "report.json").read_text())
    assert result.exit_code == 1 and report["probes"]["longtail"]["status"] == "ok", result.output
    gates = {g["name"]: g for g in report["gates"]}
    assert all(g["status"] == "inconclusive" for g in gates.values())
    assert "rests on 1 examples, fewer than min_samples 30" in gates["accuracy-floor"]["message"]
    assert "no slice has 30 items" in gates["slice"]["message"]
    assert report["verdict"] == "fail"  # the suite's inconclusive: fail (the default)


def test_inputs_longer_than_the_models_positions_are_clamped_and_said(tiny_suite, tmp_path):
    """main: a model with max_position_embeddings 128 and a generous tokenizer crashed on long reviews
    ("The size of tensor a (256) must match the size of tensor b (128)")."""
    from audit.models import load_model

    model = build_tiny_bert(tmp_path / "short")
    config = json.loads((model / "tokenizer_config.json").read_text())
    (model / "tokenizer_config.json").write_text(json.dumps({**config, "model_max_length": 100_000}))
    assert load_model(str(model)).tokenizer.model_max_length == 100_000
    long_rows = [(" ".join([t] * 12), y) for t, y in sst2_rows(40)]  # up to ~500 tokens
    write_tsv(tiny_suite.parent / "long.tsv", long_rows)
    tiny_suite.write_text("max_length: 256\n" + tiny_suite.read_text().replace("probes:\n", """shift_sets:
  long: {path: long.tsv, text_field: sentence, label_field: label, label_map: {0: negative, 1: positive}}
probes:
  shift: {corruptions: []}
"""))
    out = tmp_path / "out"
    result = run("check", model, "-b", tiny_suite, "--out", out)
    assert result.exit_code == 0, result.output
    assert "max_length 256 clamped to 128 (max_position_embeddings)" in result.output
    report = json.loads((out / "report.json").read_text())
    assert report["model"]["max_length"] == 128 and report["model"]["max_length_limit"] == "max_position_embeddings"
    assert report["probes"]["shift"]["status"] == "ok" and report["probes"]["shift"]["details"]["sets"]["long"][
        "n_truncated_model"] > 0


def test_a_dropped_model_class_is_named_in_the_reports(tiny_suite, tmp_path):
    """main dropped a third class ('neutral') on a two-label benchmark and renormalised without a word."""
    three = build_tiny_bert(tmp_path / "three", labels=("negative", "neutral", "positive"))
    out = tmp_path / "out"
    result = run("check", three, "-b", tiny_suite, "--out", out, "--drop-label", "neutral")
    assert result.exit_code == 0, result.output
    model = json.loads((out / "report.json").read_text())["model"]
    assert model["dropped_labels"] == ["neutral"] and model["label_alignment"] == "by-name, dropped neutral"
    assert model["label_mapping"] == {"negative": "negative", "positive": "positive"}
    assert "classes neutral are not suite labels and were dropped" in (out / "report.md").read_text()
    assert "neutral are not suite labels and were dropped" in (out / "report.html").read_text()


def test_top_level_help_says_what_the_tool_does_today():
    result = run("--help")
    assert result.exit_code == 0 and "causal language model" in result.output and "GGUF" in result.output
    assert "text classifier" in result.output and all(name in result.output for name in main.commands)


def test_the_reproduce_line_is_the_command_as_typed(tiny_bert, tiny_suite, tmp_path):
    out = tmp_path / "out"
    assert run("check", tiny_bert, "-b", tiny_suite, "--out", out).exit_code == 0
    report = json.loads((out / "report.json").read_text())
    assert report["manifest"]["command"] == ["audit", "check", str(tiny_bert), "-b", str(tiny_suite), "--out", str(out)]
    md = (out / "report.md").read_text()
    assert f"\naudit check {tiny_bert}" in md and "bin/audit" not in md
