"""Calibration metrics against hand-computable cases and references; comparison statistics."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from sklearn.metrics import brier_score_loss as sk_brier, log_loss as sk_log_loss

from audit.context import ProbeContext
from audit.data import Split
from audit.metrics import calibration as cal
from audit.metrics.stats import bootstrap_ci, mcnemar_exact_p
from conftest import StandInScorer, call_probe, sst2_rows, values, write_tsv
from test_cli import run


def reference_ece(probs, labels, n_bins=15):
    """The textbook equal-width ECE, written out."""
    conf, pred = probs.max(1), probs.argmax(1)
    edges = np.linspace(0, 1, n_bins + 1)
    total = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        mask = (conf >= lo) & (conf < hi) if hi < 1 else (conf >= lo) & (conf <= hi)
        if mask.any():
            total += mask.mean() * abs((pred[mask] == labels[mask]).mean() - conf[mask].mean())
    return total


def binary(p1):
    return np.stack([1 - p1, p1], axis=1)


def calibrated_sample(n, seed=0):
    rng = np.random.default_rng(seed)
    p1 = rng.uniform(0, 1, n)
    return binary(p1), (rng.uniform(0, 1, n) < p1).astype(int)


def test_perfect_calibration_has_ece_near_zero_within_its_ci():
    probs, y = calibrated_sample(20000)
    ece = cal.expected_calibration_error(probs, y)
    low, high = bootstrap_ci(cal.expected_calibration_error, (probs, y), n_boot=100)
    assert ece < 0.02 and low < 0.02 and low <= ece <= high


def test_constant_overconfidence_has_known_ece_and_mce():
    probs = binary(np.full(100, 0.9))
    y = np.array([1] * 60 + [0] * 40)  # 90% confident, 60% right
    assert cal.expected_calibration_error(probs, y) == pytest.approx(0.3)
    assert cal.maximum_calibration_error(probs, y) == pytest.approx(0.3)
    assert cal.adaptive_calibration_error(probs, y) >= 0.3 - 1e-12  # tied confidences split across bins: never less


def test_metrics_match_reference_implementations():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(500, 3)) * 2
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    y = rng.integers(0, 3, 500)
    assert cal.expected_calibration_error(probs, y) == pytest.approx(reference_ece(probs, y))
    assert cal.log_loss(probs, y) == pytest.approx(sk_log_loss(y, probs, labels=[0, 1, 2]))
    p2, y2 = calibrated_sample(300, seed=2)
    assert cal.brier_score_loss(p2, y2) == pytest.approx(2 * sk_brier(y2, p2[:, 1]))
    diagram = cal.reliability_diagram(probs, y)
    assert sum(diagram["count"]) == 500 and all(0 <= a <= 1 for a in diagram["accuracy"])


@settings(max_examples=60, deadline=None)
@given(st.integers(5, 200), st.integers(0, 10_000))
def test_ece_is_a_permutation_invariant_fraction(n, seed):
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.ones(3), n)
    y = rng.integers(0, 3, n)
    perm = rng.permutation(n)
    for fn in (cal.expected_calibration_error, cal.adaptive_calibration_error, cal.classwise_calibration_error):
        value = fn(probs, y)
        assert 0 <= value <= 1 and fn(probs[perm], y[perm]) == pytest.approx(value)


def test_temperature_scaling_undoes_overconfidence():
    probs, y = calibrated_sample(5000, seed=3)
    sharp = cal.temperature_scale(probs, 0.5)  # overconfident copy
    t = cal.fit_temperature(sharp, y)
    assert t == pytest.approx(2.0, rel=0.15)
    assert cal.expected_calibration_error(cal.temperature_scale(sharp, t), y) < cal.expected_calibration_error(sharp, y) / 2


def test_invalid_input_has_one_message_template():
    with pytest.raises(ValueError, match="invalid calibration input: each row of probs must be a probability"):
        cal.expected_calibration_error(np.array([[0.5, 0.6]]), np.array([0]))
    with pytest.raises(ValueError, match="invalid calibration input: labels must lie in"):
        cal.brier_score_loss(binary(np.array([0.5])), np.array([2]))


class FixedScorer(StandInScorer):
    """A model that returns fixed probabilities (in the suite's label order)."""

    def __init__(self, probs, role):
        self.probs, self.role = probs, role

    def proba(self, texts):
        return self.probs

    def predict(self, texts):
        return self.probs.argmax(1)


def comparison_context(model_probs, base_probs, y):
    class Suite:
        labels = ("negative", "positive")

    n = len(y)
    split = Split("eval", [f"t{i}" for i in range(n)], np.asarray(y), np.arange(n))
    return ProbeContext(Suite(), split, FixedScorer(model_probs, "model"), FixedScorer(base_probs, "baseline"), 0)


def test_identical_models_have_no_flips_and_no_divergence():
    probs, y = calibrated_sample(200)
    result = call_probe("comparison", comparison_context(probs, probs, y))
    m = values(result.metrics)
    assert m["flip_rate"] == 0 and m["kl_mean"] == pytest.approx(0, abs=1e-9) and m["js_mean"] == pytest.approx(0, abs=1e-9)
    assert m["accuracy_delta"] == 0 and m["mcnemar_p_value"] == 1.0 and result.metrics["flip_rate"].ci[1] < 0.03


def test_a_model_with_flipped_labels_is_significantly_worse():
    y = np.array([0, 1] * 100)
    base = binary(np.where(y == 1, 0.9, 0.1))
    base[:20] = base[:20, ::-1]  # the baseline is right on 90%
    result = call_probe("comparison", comparison_context(base[:, ::-1], base, y))
    m = values(result.metrics)
    assert m["flip_rate"] == 1.0 and m["n_good_to_bad"] == 180 and m["n_bad_to_good"] == 20
    assert m["mcnemar_p_value"] < 0.001 and m["accuracy_delta"] == pytest.approx(-0.8)
    assert result.metrics["accuracy_delta"].ci[1] < -0.7 and m["kl_mean"] > 1
    assert mcnemar_exact_p(0, 30) < 0.001
    assert result.details["flipped_examples"][0]["direction"] == "good_to_bad"


def test_calibration_probe_in_check_reports_both_models_and_delta_ci(tiny_bert, tiny_bert_other, tiny_suite, tmp_path):
    out = tmp_path / "out"
    write_tsv(tiny_suite.parent / "held.tsv", sst2_rows(128)[64:])
    text = tiny_suite.read_text().replace("  comparison: {}\n", "  comparison: {}\n  calibration: "
                                          "{fit_split: held, fit_size: 32, n_bootstrap: 50}\n")
    tiny_suite.write_text(text.replace("probes:\n", "shift_sets:\n  held: {path: held.tsv, text_field: sentence, "
                                       "label_field: label, label_map: {0: negative, 1: positive}}\nprobes:\n"))
    result = run("check", tiny_bert_other, "-b", tiny_suite, "--baseline", tiny_bert, "--out", out, "--device", "cpu")
    assert result.exit_code == 0, result.output
    section = json.loads((out / "report.json").read_text())["probes"]["calibration"]
    ece = section["metrics"]["ece"]
    assert ece["ci"][0] <= ece["value"] <= ece["ci"][1] and ece["n"] == 64
    assert set(section["baseline_metrics"]) == set(section["metrics"]) and "ece" in section["deltas"]
    delta = section["deltas"]["ece"]
    assert delta["ci"][0] <= delta["value"] <= delta["ci"][1]
    assert section["details"]["n_fit"] == 32 and section["metrics"]["temperature"]["value"] > 0
