"""Efficiency probe: exact counting on models with known sizes; timing output checked for structure only; a
speedup's interval against a reference, and its gate deciding on the interval and the hardware."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from audit import gates, hardware
from audit.footprint import count_parameters
from audit.metrics.stats import ratio_interval
from audit.suite import GateSpec
from test_cli import assert_bad_input, run


def two_layer():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(10, 5), torch.nn.ReLU(), torch.nn.Linear(5, 2))


def test_counts_parameters_bytes_and_zeros_of_a_known_model():
    model = two_layer()
    assert count_parameters(model) == {"params": 67, "nonzero_params": 67, "weight_bytes": 268,
                                       "weight_bytes_by_dtype": {"float32": 268}}  # 10*5+5 + 5*2+2 floats
    with torch.no_grad():
        model[0].weight[:2] = 0  # a pruned copy: 20 zeros
    assert count_parameters(model)["nonzero_params"] == 47


def test_counts_what_torchao_weights_really_hold():
    from torchao.quantization import quantize_

    from audit.recipes import torchao_config

    quantized = two_layer()
    quantize_(quantized, torchao_config("int8-weight"))
    counts = count_parameters(quantized)
    assert counts["params"] == 67  # the logical parameters, as before quantization
    # int8 weights (50 + 10), one float32 scale per output row (5 + 2) and the float32 biases (5 + 2);
    # one int8 zero point per output row (5 + 2)
    assert counts["weight_bytes_by_dtype"] == {"int8": 60 + 7, "float32": 4 * (7 + 7)}


@pytest.fixture
def efficiency_suite(tiny_suite):
    text = tiny_suite.read_text().replace("  comparison: {}\n", """  comparison: {}
  efficiency: {latency_sample: 5, throughput_sample: 32, warmup: 2, rounds: 3}
""").replace("gates:\n", "gates:\n  - {name: min-speedup, metric: efficiency.speedup, min: 1000.0, confidence: 0.95}\n")
    # a blocking gate on a timing names the machines it holds on: this one's CPU
    tiny_suite.write_text(f"hardware: {json.dumps(hardware.cpuinfo()[0])}\n" + text)
    return tiny_suite


def test_efficiency_report_structure_and_tradeoff_line(efficiency_suite, tiny_bert, tmp_path):
    pruned = tmp_path / "pruned"
    assert run("compress", tiny_bert, "--method", "prune:0.5", "--out", pruned).exit_code == 0
    out = tmp_path / "out"
    result = run("check", pruned, "--baseline", tiny_bert, "-b", efficiency_suite, "--out", out)
    report = json.loads((out / "report.json").read_text())
    eff = report["probes"]["efficiency"]
    m, b = ({k: v["value"] for k, v in eff[part].items()} for part in ("metrics", "baseline_metrics"))
    assert m["params"] == b["params"]  # pruning zeroes weights, it does not remove them
    recipe = json.loads((pruned / "audit_compression.json").read_text())
    # the tiny BERT's Linear weights: 2 layers x (4 x 32x32 attention + 2 x 32x64 feed-forward) + 32x32 pooler
    linear_weights = 2 * (4 * 32 * 32 + 2 * 32 * 64) + 32 * 32
    assert b["nonzero_params"] - m["nonzero_params"] == round(recipe["measured_sparsity"] * linear_weights)
    assert m["sparsity"] == pytest.approx(1 - m["nonzero_params"] / m["params"])
    for x in (m, b):
        assert 0 < x["latency_p50_ms"] <= x["latency_p95_ms"] and x["throughput_tokens_per_s"] > x["throughput_items_per_s"] > 0
        assert x["energy_j_per_1k"] is None and x["peak_gpu_bytes"] is None and x["peak_rss_bytes"] > 0
    assert eff["metrics"]["energy_j_per_1k"]["note"].startswith("not measured") and eff["metrics"]["speedup"]["n"] == eff["details"]["throughput_n"]
    assert m["speedup_min"] <= m["speedup"] <= m["speedup_max"]
    rounds = eff["details"]["speedup_rounds"]
    assert len(rounds) == len(eff["details"]["throughput_seconds"]["model"]) == 3
    assert m["speedup"] == pytest.approx(np.exp(np.mean(np.log(rounds))))  # the geometric mean of the rounds
    ci = eff["metrics"]["speedup"]["ci"]
    assert ci[0] <= m["speedup"] <= ci[1] and eff["metrics"]["latency_speedup"]["ci"] is not None
    info = report["manifest"]["device"]["hardware"]
    assert info["cpu"] == hardware.cpuinfo()[0] and set(info["cpu_features"]) <= set(hardware.FEATURES)
    assert eff["details"]["hardware"] == hardware.label(info) and info["cpu"] in eff["details"]["hardware"]
    assert eff["details"]["energy"]["model"].startswith("not measured")
    gate = report["gates"][0]
    assert gate["name"] == "min-speedup" and gate["status"] == "fail" and result.exit_code == 1
    line = report["summary"]["tradeoff"]
    assert line.startswith("prune: ") and "x throughput" in line and "pts accuracy" in line and "flips" in line
    assert f"95% CI, on {eff['details']['hardware']}" in line


def test_speedup_gate_is_skipped_without_a_baseline(efficiency_suite, tiny_bert, tmp_path):
    out = tmp_path / "out"
    result = run("check", tiny_bert, "-b", efficiency_suite, "--out", out, "--probes", "accuracy,efficiency")
    report = json.loads((out / "report.json").read_text())
    assert report["gates"][0]["status"] == "skipped" and "needs --baseline" in report["gates"][0]["message"]
    assert "speedup" not in report["probes"]["efficiency"]["metrics"] and report["summary"]["tradeoff"] is None
    assert result.exit_code == 0, result.output


def test_a_blocking_gate_on_a_timing_needs_the_suite_to_name_its_hardware(efficiency_suite, tmp_path):
    plain = tmp_path / "plain.yaml"
    plain.write_text("\n".join(efficiency_suite.read_text().splitlines()[1:]) + "\n")  # no hardware: line
    assert_bad_input(run("validate", plain), tmp_path / "out", "is a timing", "hardware:")
    plain.write_text(plain.read_text().replace("confidence: 0.95}", "confidence: 0.95, severity: warn}"))
    assert run("validate", plain).exit_code == 0


SPEEDUP = {"status": "ok", "metrics": {"speedup": {"value": 1.02, "ci": [0.9, 1.1], "n": 64}},
           "details": {"hardware": "AMD EPYC (avx2, fma; 2 threads)"}}


@pytest.mark.parametrize("gate, status, message", [
    (GateSpec("s", "efficiency.speedup", min=1.0, confidence=0.95, hardware="EPYC"), "inconclusive", "straddles"),
    (GateSpec("s", "efficiency.speedup", min=0.5, confidence=0.95, hardware="EPYC"), "pass", "within"),
    (GateSpec("s", "efficiency.speedup", min=1.2, confidence=0.95, hardware="epyc"), "fail", "violates"),
    (GateSpec("s", "efficiency.speedup", min=0.5, confidence=0.95, hardware="Xeon"), "inconclusive",
     "was timed on AMD EPYC (avx2, fma; 2 threads), and this gate holds on hardware 'Xeon'"),
])
def test_a_speedup_gate_decides_on_its_interval_and_its_hardware(gate, status, message):
    result = gates.evaluate(gate, {"efficiency": SPEEDUP})
    assert result["status"] == status and message in result["message"]


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(0.2, 5.0), min_size=2, max_size=12), st.sampled_from([0.8, 0.9, 0.95, 0.99]))
def test_the_speedup_interval_is_a_t_interval_on_the_log_ratios(ratios, confidence):
    from scipy import stats

    logs = np.log(ratios)
    value, (lo, hi) = ratio_interval(ratios, confidence)
    scale = stats.sem(logs) if logs.std() > 0 else 0.0
    ref = stats.t.interval(confidence, len(logs) - 1, loc=logs.mean(), scale=scale) if scale else (logs.mean(),) * 2
    assert value == pytest.approx(np.exp(logs.mean())) and (lo, hi) == pytest.approx(tuple(np.exp(ref)), rel=1e-9)
    assert ratio_interval(ratios[:1], confidence)[1] is None
