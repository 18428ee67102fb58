"""Property: whatever a suite file says, `validate` and `check` answer with exit 0, 1 or 2, never a traceback."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import sst2_rows, write_tsv
from test_cli import run

SUITE = """\
name: tiny
labels: [negative, positive]
min_samples: 10
data:
  eval: {path: dev.tsv, text_field: sentence, label_field: label}
  reference: {path: train.tsv, text_field: sentence, label_field: label}
shift_sets:
  upper: {path: upper.tsv, text_field: sentence, label_field: label, sample: 20}
probes:
  accuracy: {confidence: 0.95}
  comparison: {max_examples: 3}
  calibration: {fit_size: 20, n_bootstrap: 20}
  shift: {corruptions: [typo], corruption_sample: 10}
  longtail: {min_support: 5}
gates:
  - {name: floor, metric: accuracy.accuracy, min: 0.0, confidence: 0.95}
  - {name: flips, metric: comparison.flip_rate, max: 1.0}
  - {name: ece, metric: calibration.ece, max_regression: 1.0, severity: warn}
  - {name: upper, metric: shift.accuracy_upper, min: 0.0}
"""
VALUES = [".nan", ".inf", "-1", "0", "1", "1.5", "1e309", "''", "[]", "{}", "null", "true", "*a", "&a 1", "~",
          '"<img src=x onerror=1>"', "../dev.tsv", "/etc/passwd", "dev.tsv.gz", "9999999999999999999", "[a, b]",
          "{x: 1}", "accuracy.nope", "shift.accuracy_nowhere", "'{title}'", "!!python/object:os.system", "- x"]
TOKENS = ["{", "}", "[", "]", ":", ",", "-", "\n", "  ", "'", '"', "&", "*", "!", "|", ">", "%", "@", "`", "\t"]

NUMBERS = ["0", "1", "2", "5", "10", "30", "100", "1000", "0.5", "0.01", "0.99"]
number = st.tuples(st.just("number"), st.integers(0, 10_000), st.sampled_from(NUMBERS))
mutation = st.one_of(
    number, number, number,  # weighted: a third of mutated suites stay valid and reach the probes
    st.tuples(st.just("replace"), st.integers(0, 10_000), st.sampled_from(VALUES)),
    st.tuples(st.just("insert"), st.integers(0, 10_000), st.sampled_from(TOKENS + VALUES)),
    st.tuples(st.just("delete_line"), st.integers(0, 10_000), st.just("")),
    st.tuples(st.just("duplicate_line"), st.integers(0, 10_000), st.just("")),
    st.tuples(st.just("delete_chars"), st.integers(0, 10_000), st.integers(1, 12).map(str)),
)


def mutate(text: str, edits) -> str:
    for kind, at, what in edits:
        lines = text.splitlines(keepends=True)
        i = at % max(len(lines), 1)
        numbers = list(re.finditer(r"\d+(\.\d+)?", text))
        if kind == "number" and numbers:  # mostly still a valid suite: reaches the probes and gates
            m = numbers[at % len(numbers)]
            text = text[:m.start()] + what + text[m.end():]
        elif kind == "replace":  # the value after some colon
            colons = [k for k, ch in enumerate(text) if ch == ":"]
            if colons:
                k = colons[at % len(colons)] + 1
                end = min([text.find(c, k) for c in ",}\n" if text.find(c, k) != -1] or [len(text)])
                text = text[:k] + " " + what + text[end:]
        elif kind == "insert":
            k = at % (len(text) + 1)
            text = text[:k] + what + text[k:]
        elif kind == "delete_line" and lines:
            text = "".join(lines[:i] + lines[i + 1:])
        elif kind == "duplicate_line" and lines:
            text = "".join(lines[: i + 1] + lines[i:])
        elif kind == "delete_chars":
            k = at % (len(text) + 1)
            text = text[:k] + text[k + int(what):]
    return text


def folder() -> Path:
    root = Path(tempfile.mkdtemp(prefix="audit-fuzz-"))
    rows = [(t, ("negative", "positive")[int(y)]) for t, y in sst2_rows(64)]  # label names: no digits in label maps
    write_tsv(root / "dev.tsv", rows)
    write_tsv(root / "train.tsv", rows[::-1])
    write_tsv(root / "upper.tsv", [(t.upper(), y) for t, y in rows[:30]])
    return root


def answered_cleanly(result) -> bool:
    return result.exit_code in (0, 1, 2) and "Traceback" not in result.output and (
        result.exception is None or isinstance(result.exception, SystemExit))


@given(edits=st.lists(mutation, min_size=1, max_size=3))
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_validate_answers_every_mutated_suite_cleanly(edits):
    root = folder()
    (root / "s.yaml").write_text(mutate(SUITE, edits))
    result = run("validate", root / "s.yaml")
    assert answered_cleanly(result), result.output
    if result.exit_code == 2:
        assert len([line for line in result.output.splitlines() if line.startswith("Error:")]) == 1


@given(edits=st.lists(mutation, min_size=1, max_size=3))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
def test_check_answers_every_mutated_suite_cleanly(edits, tiny_bert, tiny_bert_other):
    root = folder()
    (root / "s.yaml").write_text(mutate(SUITE, edits))
    valid = run("validate", root / "s.yaml").exit_code
    result = run("check", tiny_bert_other, "--baseline", tiny_bert, "-b", root / "s.yaml", "--out", root / "out")
    assert answered_cleanly(result), result.output
    assert (result.exit_code == 2) == (valid == 2), result.output  # validate finds exactly what check refuses
    assert (root / "out" / "report.json").exists() == (result.exit_code != 2)
