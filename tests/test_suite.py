from pathlib import Path

import pytest

from audit import suite as suite_mod
from audit.errors import SpecError


def write(tmp_path: Path, text: str, name: str = "s.yaml") -> Path:
    (tmp_path / name).write_text(text)
    return tmp_path / name


def test_builtin_sst2_loads_with_includes():
    s = suite_mod.load("sst2")
    assert s.labels == ("negative", "positive")
    assert set(s.probes) >= {"accuracy", "comparison"}
    names = {g.name for g in s.gates}
    assert {"accuracy-floor", "accuracy-drop", "flip-rate"} <= names  # own gate + two from _defaults.yaml
    assert Path(s.eval.path).is_file() and Path(s.reference.path).is_file()
    assert set(s.shift_sets) == {"imdb_original", "imdb_contrast", "imdb_pairs", "amazon_books", "amazon_dvd"}
    assert s.shift_sets["imdb_pairs"].pair_field == "batch_id" and all(x.sample for x in s.shift_sets.values())
    assert len(s.files) == 2 and len(s.sha256()) == 64


def test_unknown_top_level_key_names_file_key_and_fix(tiny_suite):
    bad = write(tiny_suite.parent, tiny_suite.read_text() + "gate: []\n", "bad.yaml")
    with pytest.raises(SpecError) as err:
        suite_mod.load(str(bad))
    assert str(bad) in err.value.message and "'gate'" in err.value.message and "did you mean 'gates'" in err.value.message


BAD_EDITS = [  # (text to replace, replacement, the error it must give)
    ("  accuracy: {}", "  acuracy: {}", "unknown probe 'acuracy'.*did you mean 'accuracy'"),
    ("comparison: {}", "comparison: {max_exmples: 3}", "probes.comparison.*unknown parameter 'max_exmples'"),
    ("metric: accuracy.accuracy", "metric: accuracy.accurcy", "has no metric 'accurcy'.*did you mean 'accuracy'"),
    ("min: 0.0", "minimum: 0.0", "gates\\[0\\]: unknown key 'minimum'.*did you mean 'min'"),
    ("min: 0.0", "min: low", "needs a numeric 'min', 'max' or 'max_regression'"),
    ("accuracy.accuracy, min: 0.0}", "accuracy.macro_f1, min: 0.0, confidence: 0.95}",
     "probe 'accuracy' reports no confidence interval for 'macro_f1'"),
    ("max: 1.0}", "max: 1.0, confidence: 0.9}", "confidence 0.9 differs from the 0.95"),
    ("min: 0.0}", "max_regression: 0.01, min: 0.0}", "cannot be combined"),
    ("labels: [", "inconclusive: maybe\nlabels: [", "inconclusive: unknown value 'maybe'"),
    ("path: dev.tsv", "path: nope.tsv", "data file not found"),
    ("path: dev.tsv,", "path: dev.tsv, sample: 0,", "data.eval.sample: must be a positive integer, got 0"),
    ("path: dev.tsv,", "path: dev.tsv, pair_field: [a],", "data.eval.pair_field: 'pair_field' must be a non-empty string"),
    ("metric: accuracy.accuracy", "metric: shift.accuracy_nowhere", "names probe 'shift', which the suite does not run"),
    ("1: positive}}\n  reference", "1: pos}}\n  reference", "unknown label 'pos'"),
]


@pytest.mark.parametrize("old,new,error", BAD_EDITS)
def test_bad_suite_edits_name_the_key_and_the_fix(tiny_suite, old, new, error):
    text = tiny_suite.read_text()
    assert old in text
    with pytest.raises(SpecError, match=error):
        suite_mod.load(str(write(tiny_suite.parent, text.replace(old, new), "bad.yaml")))


def test_good_gate_threshold_is_echoed(tiny_suite):
    assert suite_mod.load(str(tiny_suite)).gates[0].threshold == {"min": 0.0}


def test_include_merges_and_gates_override_only_when_asked(tmp_path, tiny_suite):
    base = write(tmp_path, "probes: {accuracy: {}}\ngates:\n  - {name: floor, metric: accuracy.accuracy, min: 0.7}\n",
                 "_base.yaml")
    child = """include: _base.yaml
labels: [negative, positive]
data:
  eval: {path: dev.tsv, text_field: sentence, label_field: label, label_map: {0: negative, 1: positive}}
gates:
  - {name: floor, metric: accuracy.accuracy, min: 0.5%s}
"""
    # main merged these silently: the inherited, stricter floor vanished and the run could PASS
    with pytest.raises(SpecError, match=r"gate 'floor' is already declared in .*_base.yaml.*override: true"):
        suite_mod.load(str(write(tmp_path, child % "", "child.yaml")))
    s = suite_mod.load(str(write(tmp_path, child % ", override: true", "child.yaml")))
    assert [(g.name, g.min) for g in s.gates] == [("floor", 0.5)]
    assert s.files == ((tmp_path / "child.yaml").resolve(), base.resolve())
    with pytest.raises(SpecError, match="override: true, but no included file declares a gate 'flor'"):
        suite_mod.load(str(write(tmp_path, (child % ", override: true").replace("name: floor", "name: flor"), "c.yaml")))


def test_include_cycle_and_invalid_yaml(tmp_path):
    write(tmp_path, "include: b.yaml\n", "a.yaml")
    write(tmp_path, "include: a.yaml\n", "b.yaml")
    with pytest.raises(SpecError, match="include cycle"):
        suite_mod.load(str(tmp_path / "a.yaml"))
    with pytest.raises(SpecError, match=r"invalid YAML"):
        suite_mod.load(str(write(tmp_path, "labels: [a, b\n", "broken.yaml")))


def test_unknown_builtin_name_suggests():
    with pytest.raises(SpecError, match="did you mean 'sst2'"):
        suite_mod.load("sst-2")
