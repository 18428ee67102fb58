"""One model's weights in memory at a time: a check against a baseline never holds both modules, whatever its
probes need (per-token KL on running text and along generations included), and gives what holding both gave."""

from __future__ import annotations

import gc
import json
import weakref

import pytest

from audit import models
from audit.engine import Engine, EngineConfig
from audit.models import load_model
from audit.residency import Residency
from test_causal_lm import TEXTS
from test_cli import run
from test_generation import ALL_PROBES, gen_suite
from test_lm_tasks import lm_suites  # noqa: F401 (a fixture)


@pytest.fixture
def loads(monkeypatch):
    """Every module load_weights builds, and how many earlier modules were still alive at each load."""
    live, alive_at_load = weakref.WeakSet(), []
    real = models.load_weights

    def spy(*args, **kwargs):
        gc.collect()
        alive_at_load.append(len(live))
        module = real(*args, **kwargs)
        live.add(module)
        return module

    monkeypatch.setattr(models, "load_weights", spy)
    return alive_at_load


def test_a_check_with_every_lm_probe_holds_one_model_at_a_time(lm_suites, tiny_llama, tiny_llama_other, tmp_path,  # noqa: F811
                                                                 loads):
    out = tmp_path / "out"
    result = run("check", tiny_llama, "--baseline", tiny_llama_other, "-b", lm_suites / "mc.yaml", "--out", out)
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert report["probes"]["perplexity"]["metrics"]["kl_mean"]["value"] > 0  # it compared the two models
    assert len(loads) > 2 and set(loads) == {0}, loads  # reloaded as the probes asked, never beside the other
    assert report["engine_stats"]["model_loads"] == len(loads)


def test_kl_along_generations_holds_one_model_at_a_time(tmp_path, tiny_llama, tiny_llama_other, loads):
    suite = gen_suite(tmp_path, ALL_PROBES, extra='prompts:\n  short: {template: "Q: {q}\\nA:"}\n')
    out = tmp_path / "out"
    result = run("check", tiny_llama, "--baseline", tiny_llama_other, "-b", suite, "--out", out)
    assert result.exit_code == 0, result.output
    agreement = json.loads((out / "report.json").read_text())["probes"]["agreement"]["metrics"]
    assert agreement["n_tokens"]["value"] > 0 and agreement["kl_mean"]["value"] > 0
    assert len(loads) > 2 and set(loads) == {0}, loads


def test_a_model_freed_and_loaded_again_scores_as_before(tiny_llama, tiny_llama_other):
    from audit.engine import EngineStats

    residency = Residency(EngineStats())
    model = load_model(str(tiny_llama), residency=residency)
    other = load_model(str(tiny_llama_other), residency=residency)
    assert not model.loaded and other.resident
    engine = Engine(EngineConfig(device="cpu"))
    first = engine.token_logprobs(model, TEXTS[:3])  # loads it again, freeing the other
    assert model.resident and not other.loaded and residency.stats.model_loads == 3  # two first loads, one again
    engine.token_logprobs(other, TEXTS[:3])
    again = Engine(EngineConfig(device="cpu")).token_logprobs(model, TEXTS[:3])
    assert residency.stats.model_loads == 5 and all((a == b).all() for a, b in zip(first, again))
