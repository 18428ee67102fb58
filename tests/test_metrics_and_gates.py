import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from audit.gates import evaluate, verdict
from audit.metrics.classification import accuracy_score, flip_rate, macro_f1_score, recall_per_class
from audit.suite import GateSpec

labels = st.lists(st.integers(0, 2), min_size=1, max_size=50)


@given(labels, st.randoms())
def test_accuracy_and_flip_rate_match_plain_numpy(y, rnd):
    y = np.array(y)
    p = np.array([rnd.randint(0, 2) for _ in y])
    assert accuracy_score(y, p) == pytest.approx(np.mean(y == p))
    assert flip_rate(y, p) == pytest.approx(np.mean(y != p))
    assert flip_rate(p, p) == 0.0


def test_macro_f1_and_recall_hand_computed():
    y = np.array([0, 0, 1, 1])
    p = np.array([0, 1, 1, 1])
    # class 0: P=1, R=.5, F1=2/3; class 1: P=2/3, R=1, F1=.8
    assert macro_f1_score(y, p, 2) == pytest.approx((2 / 3 + 0.8) / 2)
    assert recall_per_class(y, p, 2).tolist() == [0.5, 1.0]
    assert recall_per_class(y, p, 3).tolist() == [0.5, 1.0, 0.0]  # absent class gets 0, not an error


def test_one_validation_message():
    with pytest.raises(ValueError, match="same length"):
        accuracy_score(np.array([0, 1]), np.array([0]))
    with pytest.raises(ValueError, match="non-empty 1-D array of integer labels"):
        flip_rate(np.array([0.5]), np.array([1]))


def section(**metrics):
    return {"status": "ok", "metrics": metrics}


@pytest.mark.parametrize("gate, probes, status", [
    (GateSpec("g", "a.x", min=0.5), {"a": section(x=0.5)}, "pass"),
    (GateSpec("g", "a.x", min=0.5), {"a": section(x=0.49)}, "fail"),
    (GateSpec("g", "a.x", max=0.05), {"a": section(x=0.06)}, "fail"),
    (GateSpec("g", "a.x", min=0.1, max=0.2), {"a": section(x=0.15)}, "pass"),
    (GateSpec("g", "a.x", max=0.05), {"a": {"status": "skipped", "reason": "needs --baseline", "metrics": {}}}, "skipped"),
    (GateSpec("g", "a.x", max=0.05), {}, "skipped"),
    (GateSpec("g", "a.x", max=0.05), {"a": {"status": "error", "metrics": {}}}, "error"),
    (GateSpec("g", "a.x", max=0.05), {"a": section(x=math.nan)}, "error"),
])
def test_gate_status(gate, probes, status):
    result = evaluate(gate, probes)
    assert result["status"] == status and result["threshold"] == gate.threshold


def test_verdict_ranks_fail_over_error_and_ignores_warnings():
    fail = {"severity": "fail", "status": "fail"}
    warn_fail = {"severity": "warn", "status": "fail"}
    ok = {"severity": "fail", "status": "pass"}
    err_probe = {"p": {"status": "error"}}
    assert verdict([ok, warn_fail], {}) == "pass"
    assert verdict([fail], err_probe) == "fail"
    assert verdict([ok], err_probe) == "error"
