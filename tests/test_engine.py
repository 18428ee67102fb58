import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from audit.cache import PredictionCache
from audit.engine import Engine, EngineConfig, length_batches
from audit.models import load_model
from conftest import sst2_rows


@given(st.lists(st.integers(1, 300), min_size=1, max_size=200), st.integers(1, 64), st.integers(16, 4096))
@settings(max_examples=200, deadline=None)
def test_length_batches_cover_each_index_once_within_budget(lengths, batch_size, batch_tokens):
    lengths = np.asarray(lengths)
    batches = length_batches(lengths, batch_size, batch_tokens)
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(len(lengths)))
    for b in batches:
        assert len(b) <= batch_size
        assert len(b) == 1 or len(b) * lengths[b].max() <= batch_tokens
        assert lengths[b[0]] == lengths[b].max()  # padded to the first (longest) row


def reference_proba(model, texts):
    """One text at a time, no padding at all: what the batched engine must reproduce."""
    out = []
    with torch.inference_mode():
        for t in texts:
            enc = model.tokenizer(t, return_tensors="pt", truncation=True, max_length=128)
            out.append(torch.softmax(model.module(**enc).logits, -1)[0].numpy())
    return np.stack(out)


def test_batched_equals_unbatched_and_keeps_order(tiny_bert):
    model = load_model(str(tiny_bert))
    texts = [t for t, _ in sst2_rows(64)]
    engine = Engine(EngineConfig(device="cpu", batch_size=16, batch_tokens=256))
    got = engine.predict_proba(model, texts)
    assert got.shape == (64, 2) and got.dtype == np.float32
    np.testing.assert_allclose(got, reference_proba(model, texts), atol=1e-5)
    assert engine.stats.batches > 4  # the budget really split the work


def test_duplicates_scored_once_and_cache_reused(tiny_bert, tmp_path):
    model = load_model(str(tiny_bert))
    texts = [t for t, _ in sst2_rows(10)]
    cache = PredictionCache(tmp_path / "p.sqlite")
    first = Engine(EngineConfig(device="cpu"), cache)
    a = first.predict_proba(model, texts + texts[:5])
    assert first.stats.computed == 10 and first.stats.unique == 10
    np.testing.assert_array_equal(a[10:], a[:5])
    second = Engine(EngineConfig(device="cpu"), PredictionCache(tmp_path / "p.sqlite"))
    b = second.predict_proba(model, texts)
    assert second.stats.computed == 0 and second.stats.cached == 10
    np.testing.assert_array_equal(a[:10], b)


def test_truncation_is_counted(tiny_bert):
    model = load_model(str(tiny_bert))
    engine = Engine(EngineConfig(device="cpu", max_length=16))
    engine.predict_proba(model, ["good " * 40, "bad"])
    assert engine.stats.truncated == 1


def test_int8_results_do_not_depend_on_the_cache_state(tiny_bert, tmp_path):
    """Dynamic int8 depends on batch-mates; cached texts must not change who shares a batch."""
    from test_cli import run

    assert run("compress", tiny_bert, "--method", "int8", "--out", tmp_path / "int8").exit_code == 0
    model = load_model(str(tmp_path / "int8"))
    texts = [t for t, _ in sst2_rows(64)]
    warm = Engine(EngineConfig(device="cpu", batch_size=8), PredictionCache(tmp_path / "c.sqlite"))
    warm.predict_proba(model, texts[::3])  # some texts cached first, in other batches
    fresh = Engine(EngineConfig(device="cpu", batch_size=8))
    assert np.array_equal(warm.predict_proba(model, texts), fresh.predict_proba(model, texts))
