import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from audit.gates import evaluate, findings, verdict
from audit.metrics.classification import flip_rate, macro_f1_score, recall_per_class
from audit.suite import GateSpec

labels = st.lists(st.integers(0, 2), min_size=1, max_size=50)


@given(labels, st.randoms())
def test_flip_rate_matches_plain_numpy_for_labels_and_answer_strings(y, rnd):
    y = np.array(y)
    p = np.array([rnd.randint(0, 2) for _ in y])
    assert flip_rate(y, p) == pytest.approx(np.mean(y != p))
    assert flip_rate(p, p) == 0.0
    assert flip_rate([str(v) for v in y], [str(v) for v in p]) == pytest.approx(np.mean(y != p))


def test_macro_f1_and_recall_hand_computed():
    y = np.array([0, 0, 1, 1])
    p = np.array([0, 1, 1, 1])
    # class 0: P=1, R=.5, F1=2/3; class 1: P=2/3, R=1, F1=.8
    assert macro_f1_score(y, p, 2) == pytest.approx((2 / 3 + 0.8) / 2)
    assert recall_per_class(y, p, 2).tolist() == [0.5, 1.0]
    assert recall_per_class(y, p, 3).tolist() == [0.5, 1.0, 0.0]  # absent class gets 0, not an error


def test_one_validation_message():
    with pytest.raises(ValueError, match="same length"):
        macro_f1_score(np.array([0, 1]), np.array([0]), 2)
    with pytest.raises(ValueError, match="non-empty 1-D array of integer labels"):
        recall_per_class(np.array([0.5]), np.array([1]), 2)
    with pytest.raises(ValueError, match="same length"):
        flip_rate(np.array([0, 1]), np.array([0]))


def est(value, low=None, high=None, n=None, note=None):
    out = {"value": value}
    if low is not None:
        out["ci"] = [low, high]
    if n is not None:
        out["n"] = n
    if note:
        out["note"] = note
    return out


def section(baseline=None, delta_ci=None, n=100, **metrics):
    """A report section: metrics given as numbers or (value, low, high) tuples."""
    wrap = lambda m: {k: est(*v) if isinstance(v, tuple) else est(v) for k, v in m.items()}
    out = {"status": "ok", "metrics": wrap(metrics), "n": n}
    if baseline is not None:
        out["baseline_metrics"] = wrap(baseline)
        out["deltas"] = {k: {"value": out["metrics"][k]["value"] - v["value"], **({"ci": delta_ci[k]} if delta_ci and
                                                                                 k in delta_ci else {})}
                         for k, v in out["baseline_metrics"].items()}
    return out


ACC, FLIP, ECE = "accuracy.accuracy", "comparison.flip_rate", "calibration.ece"
SLICE = "longtail.worst_slice_accuracy"


@pytest.mark.parametrize("gate, probes, status", [
    (GateSpec("g", ACC, min=0.5), {"accuracy": section(accuracy=0.5)}, "pass"),
    (GateSpec("g", ACC, min=0.5), {"accuracy": section(accuracy=0.49)}, "fail"),
    (GateSpec("g", FLIP, max=0.05), {"comparison": section(flip_rate=0.06)}, "fail"),
    (GateSpec("g", ACC, min=0.1, max=0.2), {"accuracy": section(accuracy=0.15)}, "pass"),
    (GateSpec("g", FLIP, max=0.05), {"comparison": {"status": "skipped", "reason": "needs --baseline", "metrics": {}}},
     "skipped"),
    (GateSpec("g", FLIP, max=0.05), {}, "skipped"),
    (GateSpec("g", FLIP, max=0.05), {"comparison": {"status": "error", "metrics": {}}}, "error"),
    # an undefined estimate (the probe says why) is inconclusive, not an error and never a pass
    (GateSpec("g", SLICE, min=0.5), {"longtail": section(worst_slice_accuracy=(None, None, None, None, "no slice"))},
     "inconclusive"),
    # with confidence: the CI decides
    (GateSpec("g", FLIP, max=0.05, confidence=0.95), {"comparison": section(flip_rate=(0.04, 0.03, 0.06))}, "inconclusive"),
    (GateSpec("g", FLIP, max=0.05, confidence=0.95), {"comparison": section(flip_rate=(0.04, 0.03, 0.045))}, "pass"),
    (GateSpec("g", FLIP, max=0.05, confidence=0.95), {"comparison": section(flip_rate=(0.08, 0.06, 0.1))}, "fail"),
    (GateSpec("g", FLIP, max=0.05, confidence=0.95, min_samples=500),
     {"comparison": section(flip_rate=(0.01, 0.0, 0.02))}, "inconclusive"),
    # min_samples reads the estimate's own n before the section's
    (GateSpec("g", FLIP, max=0.05, min_samples=30), {"comparison": section(flip_rate=(0.01, 0.0, 0.02, 12))},
     "inconclusive"),
    (GateSpec("g", FLIP, max=0.05, min_samples=30), {"comparison": section(n=12, flip_rate=0.01)}, "inconclusive"),
    # regression against the baseline, in the metric's bad direction
    (GateSpec("g", ACC, max_regression=0.01), {"accuracy": section(accuracy=0.80, baseline={"accuracy": 0.82})}, "fail"),
    (GateSpec("g", ACC, max_regression=0.01), {"accuracy": section(accuracy=0.84, baseline={"accuracy": 0.82})}, "pass"),
    (GateSpec("g", ECE, max_regression=0.02), {"calibration": section(ece=0.10, baseline={"ece": 0.05})}, "fail"),
    (GateSpec("g", ECE, max_regression=0.02), {"calibration": section(ece=0.01, baseline={"ece": 0.05})}, "pass"),
    (GateSpec("g", ACC, max_regression=0.01, confidence=0.95),
     {"accuracy": section(accuracy=0.80, baseline={"accuracy": 0.82}, delta_ci={"accuracy": [-0.03, -0.005]})},
     "inconclusive"),
    (GateSpec("g", ACC, max_regression=0.01, confidence=0.95),
     {"accuracy": section(accuracy=0.80, baseline={"accuracy": 0.85}, delta_ci={"accuracy": [-0.07, -0.03]})}, "fail"),
    (GateSpec("g", ACC, max_regression=0.01), {"accuracy": section(accuracy=0.8)}, "skipped"),
])
def test_gate_status(gate, probes, status):
    result = evaluate(gate, probes)
    assert result["status"] == status, result["message"]
    assert result["threshold"] == gate.threshold


def test_regression_ci_is_flipped_into_the_bad_direction():
    gate = GateSpec("g", ACC, max_regression=0.01, confidence=0.95)
    result = evaluate(gate, {"accuracy": section(accuracy=0.8, baseline={"accuracy": 0.82},
                                                 delta_ci={"accuracy": [-0.03, -0.005]})})
    assert result["observed"] == pytest.approx(0.02) and result["ci"] == [0.005, 0.03]


def gates(*pairs):
    return [{"name": f"g{i}", "severity": sev, "status": st, "metric": "m", "observed": 0.1, "ci": None, "message": st}
            for i, (sev, st) in enumerate(pairs)]


def test_inconclusive_fails_only_when_the_suite_says_so_and_findings_rank_by_risk():
    g = gates(("warn", "fail"), ("fail", "inconclusive"), ("fail", "fail"), ("fail", "pass"))
    assert verdict(g[:2], {}, inconclusive_fails=True)[0] == "fail"
    assert verdict([g[1], g[3]], {}, inconclusive_fails=False)[0] == "pass"
    assert [f["gate"] for f in findings(g)] == ["g2", "g1", "g0"]


def test_verdict_ranks_fail_over_error_and_ignores_warnings():
    fail, warn_fail, ok = gates(("fail", "fail"))[0], gates(("warn", "fail"))[0], gates(("fail", "pass"))[0]
    err_probe = {"p": {"status": "error"}}
    assert verdict([ok, warn_fail], {})[0] == "pass"
    assert verdict([fail], err_probe)[0] == "fail"
    assert verdict([ok], err_probe)[0] == "error"


@pytest.mark.parametrize("pairs, inconclusive_fails", [
    ((), True),                                                  # no gate at all
    ((("fail", "skipped"), ("fail", "skipped")), True),          # every blocking gate skipped (no baseline)
    ((("fail", "skipped"), ("warn", "pass")), True),             # only a warning gate passed
    ((("fail", "inconclusive"),), False),                        # inconclusive, and the suite only warns
])
def test_nothing_shown_is_inconclusive_never_pass(pairs, inconclusive_fails):
    """On main before this change each of these was a PASS that checked nothing."""
    result, why = verdict(gates(*pairs), {}, inconclusive_fails)
    assert result == "inconclusive" and why


CONSISTENCY, SUCCESS = "choice_order.consistency", "adversarial.deepwordbug_success_rate"


@pytest.mark.parametrize("gate, probes, chance, status", [
    # both at the worst end of the declared range: no regression could show
    (GateSpec("g", CONSISTENCY, max_regression=0.1), {"choice_order": section(consistency=(0.0, 0.0, 0.0),
                                                                              baseline={"consistency": (0.0, 0.0, 0.0)})},
     None, "inconclusive"),
    (GateSpec("g", SUCCESS, max_regression=0.1), {"adversarial": section(deepwordbug_success_rate=1.0,
                                                                         baseline={"deepwordbug_success_rate": 1.0})},
     None, "inconclusive"),
    # accuracy's range starts at chance: two models indistinguishable from it compared nothing
    (GateSpec("g", ACC, max_regression=0.02), {"accuracy": section(accuracy=(0.27, 0.2, 0.34),
                                                                   baseline={"accuracy": (0.26, 0.2, 0.33)})},
     0.25, "inconclusive"),
    # one of the two away from the worst end: the gate compares
    (GateSpec("g", CONSISTENCY, max_regression=0.1), {"choice_order": section(consistency=(0.0, 0.0, 0.05),
                                                                              baseline={"consistency": (0.5, 0.4, 0.6)})},
     None, "fail"),
    (GateSpec("g", ACC, max_regression=0.02), {"accuracy": section(accuracy=(0.6, 0.55, 0.65),
                                                                   baseline={"accuracy": (0.61, 0.56, 0.66)})},
     0.25, "pass"),
    # both at the best end is a measurement (the model could have dropped), and an absolute bound is not a comparison
    (GateSpec("g", CONSISTENCY, max_regression=0.1), {"choice_order": section(consistency=1.0,
                                                                              baseline={"consistency": 1.0})}, None, "pass"),
    (GateSpec("g", CONSISTENCY, min=0.0), {"choice_order": section(consistency=0.0, baseline={"consistency": 0.0})},
     None, "pass"),
])
def test_a_regression_gate_that_could_not_move_is_inconclusive(gate, probes, chance, status):
    result = evaluate(gate, probes, chance)
    assert result["status"] == status, result["message"]
    if status == "inconclusive":
        assert "compared nothing" in result["message"] and "worst value" in result["message"]


def test_chance_accuracy_is_the_best_input_blind_answer():
    from audit.metrics.classification import chance_accuracy

    assert chance_accuracy(np.array([0, 1, 0, 1]), 2) == 0.5
    assert chance_accuracy(np.array([0, 0, 0, 1]), 2) == 0.75  # always answering the majority class
    assert chance_accuracy(np.array([0, 1, 2, 3]), [4, 4, 2, 2]) == pytest.approx(0.375)  # uniform over each item's options
