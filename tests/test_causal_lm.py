"""Causal-LM scoring: packed continuations and rolling windows equal a plain one-sequence-at-a-time reference."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from audit.causal_lm import Continuations, encode, prefix_token, rolling_windows
from audit.engine import Engine, EngineConfig
from audit.models import CAUSAL_LM, load_model
from conftest import sst2_rows

TEXTS = [t for t, _ in sst2_rows(24)]


def reference_scores(model, request: Continuations) -> np.ndarray:
    """lm-eval's recipe, written out: each continuation in its own forward pass, no padding, no packing."""
    tok = model.tokenizer
    context, conts = request.context, list(request.continuations)
    spaces = len(context) - len(context.rstrip())
    if spaces:
        conts, context = [context[-spaces:] + c for c in conts], context[:-spaces]
    ctx = tok(context)["input_ids"] or [prefix_token(tok)]
    rows = []
    for c in conts:
        whole = tok(context + c)["input_ids"]
        cont = whole[len(tok(context)["input_ids"]):]
        ids = torch.tensor([ctx + cont])
        with torch.inference_mode():
            lp = torch.log_softmax(model.module(ids).logits.float(), -1)[0]
        picked = [lp[len(ctx) - 1 + j, t] for j, t in enumerate(cont)]
        greedy = all(int(lp[len(ctx) - 1 + j].argmax()) == t for j, t in enumerate(cont))
        rows.append((float(sum(picked)), float(greedy), float(len(cont))))
    return np.array(rows)


def requests() -> list[Continuations]:
    out = []
    for i, text in enumerate(TEXTS):
        words = text.split()
        choices = [" " + " ".join(words[-k:]) for k in (1, 2, 3)][: 2 + i % 2]
        out.append(Continuations(" ".join(words[:-3]) + ("" if i % 4 else " "), tuple(choices)))
    out.append(Continuations("", (" good film", " bad")))  # empty context: the prefix token
    # continuations that share their first tokens (one is a prefix of another): those run once
    out.append(Continuations(TEXTS[0], (" the good film", " the bad film", " the good")))
    return out


@pytest.mark.parametrize("batching", [dict(), dict(batch_size=3, batch_tokens=64), dict(batch_size=1)])
def test_packed_continuations_equal_the_one_at_a_time_reference(tiny_llama, batching):
    model = load_model(str(tiny_llama))
    assert model.kind == CAUSAL_LM
    engine = Engine(EngineConfig(device="cpu", **batching))
    got = engine.continuation_scores(model, requests())
    for request, scores in zip(requests(), got):
        np.testing.assert_allclose(scores, reference_scores(model, request), atol=1e-4, rtol=0)
    assert engine.stats.batches >= (len(requests()) if batching.get("batch_size") == 1 else 1)


def test_only_the_predicting_positions_reach_the_lm_head(tiny_llama, monkeypatch):
    model = load_model(str(tiny_llama))
    seen = []
    handle = model.module.lm_head.register_forward_hook(lambda m, args, out: seen.append(tuple(args[0].shape)))
    engine = Engine(EngineConfig(device="cpu", batch_size=4))
    got = engine.continuation_scores(model, requests())
    handle.remove()
    predicted, tokens = sum(g[:, 2].sum() for g in got), engine.stats.tokens
    through_head = sum(int(np.prod(s[:-1])) for s in seen)  # the model's own call, and the head's slices after
    assert predicted < tokens / 2 and predicted <= through_head <= predicted + 128 + engine.stats.batches
    # a head the hook cannot reach: the full logits are indexed instead, with the same scores
    monkeypatch.setattr(type(model.module), "get_output_embeddings", lambda self: None)
    again = Engine(EngineConfig(device="cpu", batch_size=4)).continuation_scores(model, requests())
    for a, b in zip(again, got):
        np.testing.assert_allclose(a, b, atol=1e-5, rtol=0)


def test_the_context_is_encoded_once_per_item(tiny_llama):
    model = load_model(str(tiny_llama))
    request = Continuations("a charming and often affecting journey", (" good", " bad film", " maybe"))
    packed = encode(model.tokenizer, request, 256, prefix_token(model.tokenizer))
    n_context = len(model.tokenizer(request.context)["input_ids"])
    assert all(path[:n_context] == list(range(n_context)) for path in packed.paths)
    assert len(packed.ids) == n_context + 1 + 2 + 1  # not 3 x the context
    shared = encode(model.tokenizer, requests()[-1], 256, prefix_token(model.tokenizer))
    starts = [len(tuple(model.tokenizer(c)["input_ids"])) for c in (" the good film", " the bad film")]
    assert len(shared.ids) < len(shared.paths[0]) + starts[1]  # " the" once, " the good" inside " the good film"
    assert packed.positions[n_context:] == [n_context, n_context, n_context + 1, n_context]


def test_long_contexts_are_cut_from_the_left(tiny_llama):
    model = load_model(str(tiny_llama))
    long = Continuations(" ".join(TEXTS * 3), (" good", " bad film"))
    packed = encode(model.tokenizer, long, 32, prefix_token(model.tokenizer))
    assert packed.truncated and len(packed.paths[0]) - packed.scored[0] == 30 and max(packed.positions) == 31


def test_rolling_windows_predict_every_token_once():
    tokens = list(range(10, 33))
    windows = rolling_windows(tokens, 8, prefix_id=1)
    assert [t for _, targets in windows for t in targets] == tokens
    assert windows[0][0] == [1] + tokens[:7] and windows[1][0] == tokens[7:15]
    assert all(len(i) == len(t) <= 8 for i, t in windows)


def test_rolling_logprobs_equal_a_plain_reference(tiny_llama):
    model = load_model(str(tiny_llama))
    text = " ".join(TEXTS[:6])
    engine = Engine(EngineConfig(device="cpu", max_length=16, batch_size=4))
    (got,) = engine.token_logprobs(model, [text])
    tokens = model.tokenizer(text)["input_ids"]
    expected = []
    for inputs, targets in rolling_windows(tokens, 16, prefix_token(model.tokenizer)):
        with torch.inference_mode():
            lp = torch.log_softmax(model.module(torch.tensor([inputs])).logits.float(), -1)[0]
        expected += [float(lp[j, t]) for j, t in enumerate(targets)]
    assert len(got) == len(tokens)
    np.testing.assert_allclose(got, expected, atol=1e-4)


def test_divergence_from_itself_is_zero_and_from_another_model_is_not(tiny_llama, tiny_llama_other):
    model, other = load_model(str(tiny_llama)), load_model(str(tiny_llama_other))
    engine = Engine(EngineConfig(device="cpu", max_length=32))
    texts = [" ".join(TEXTS[:4]), TEXTS[5]]
    (same, _), (diff, _) = (engine.token_divergence(model, ref, texts) for ref in (model, other))
    # the reference's rows are kept on disk as float16 (audit/spill.py): a token's KL from itself is within the
    # rounding of its log-probabilities (here about -6.4, stored within 0.002), and the rounding cancels in the mean
    assert same.shape[1] == 4 and np.allclose(same[:, 2], 0, atol=1e-3) and abs(same[:, 2].mean()) < 1e-4
    assert same[:, 3].all()
    assert np.allclose(same[:, 0], same[:, 1]) and diff[:, 2].mean() > 0.01 and diff[:, 3].mean() < 1
    np.testing.assert_allclose(diff[:, 0], engine.token_logprobs(model, texts)[0], atol=1e-5)


def test_a_continuation_the_tokenizer_drops_is_bad_input_not_a_free_win():
    """A choice that tokenizes to nothing would score 0 nats, the best possible, and win every item."""
    from audit.errors import DataError

    class Dropping:  # keeps only letters, one token per word
        def __call__(self, texts):
            one = lambda t: [ord(w[0]) for w in t.split() if w.isalpha()]
            return {"input_ids": [one(t) for t in texts] if isinstance(texts, list) else one(texts)}

    assert encode(Dropping(), Continuations("the film", (" good", " bad")), 16, 1).scored[1] == 1
    with pytest.raises(DataError, match=r"continuation 1 \(' \?\?'\).*has no tokens"):
        encode(Dropping(), Continuations("the film", (" good", " ??")), 16, 1)
