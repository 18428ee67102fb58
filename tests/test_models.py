import json
import shutil

import numpy as np
import pytest

from audit.errors import ModelError
from audit.models import align_labels, fingerprint, load_model


def test_loads_tiny_bert_with_fingerprint(tiny_bert):
    m = load_model(str(tiny_bert))
    assert m.labels == ("negative", "positive") and len(m.fingerprint) == 64
    assert m.fingerprint == fingerprint(tiny_bert)


def test_fingerprint_changes_with_weights(tiny_bert, tmp_path):
    copy = shutil.copytree(tiny_bert, tmp_path / "copy")
    assert fingerprint(copy) == fingerprint(tiny_bert)
    cfg = json.loads((copy / "config.json").read_text())
    cfg["id2label"] = {"0": "positive", "1": "negative"}
    (copy / "config.json").write_text(json.dumps(cfg))
    assert fingerprint(copy) != fingerprint(tiny_bert)


def pickle_only(tiny_bert, tmp_path):
    import torch

    m = load_model(str(tiny_bert))
    d = shutil.copytree(tiny_bert, tmp_path / "pickled")
    (d / "model.safetensors").unlink()
    torch.save(m.module.state_dict(), d / "pytorch_model.bin")
    return d


def test_pickle_checkpoint_refused_unless_allowed(tiny_bert, tmp_path):
    d = pickle_only(tiny_bert, tmp_path)
    with pytest.raises(ModelError, match=r"only pickle checkpoints \(pytorch_model.bin\).*--allow-unsafe"):
        load_model(str(d))
    unsafe = load_model(str(d), allow_unsafe=True)
    safe = load_model(str(tiny_bert))
    ref = safe.module.state_dict()["classifier.weight"]
    assert np.allclose(unsafe.module.state_dict()["classifier.weight"].numpy(), ref.numpy())


def test_remote_code_refused(tiny_bert, tmp_path):
    d = shutil.copytree(tiny_bert, tmp_path / "remote")
    cfg = json.loads((d / "config.json").read_text())
    cfg["auto_map"] = {"AutoModelForSequenceClassification": "modeling_evil.Evil"}
    (d / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelError, match="trust_remote_code.*--allow-unsafe"):
        load_model(str(d))


def test_missing_directory_and_not_a_model(tmp_path):
    with pytest.raises(ModelError, match="model directory not found"):
        load_model(str(tmp_path / "nope"))
    with pytest.raises(ModelError, match="no config.json"):
        load_model(str(tmp_path))


@pytest.mark.parametrize("model_labels, suite_labels, label_map, drop, columns, how", [
    (("negative", "positive"), ("negative", "positive"), None, (), [0, 1], "by-name"),
    (("POSITIVE", "NEGATIVE"), ("negative", "positive"), None, (), [1, 0], "by-name"),
    (("LABEL_0", "LABEL_1"), ("negative", "positive"), None, (), [0, 1], "by-position"),
    (("neg", "pos"), ("negative", "positive"), {"pos": "positive", "neg": "negative"}, (), [0, 1], "label-map"),
    (("contradiction", "negative", "positive"), ("negative", "positive"), None, ("contradiction",), [1, 2],
     "by-name, dropped contradiction"),
])
def test_align_labels(model_labels, suite_labels, label_map, drop, columns, how):
    alignment = align_labels(model_labels, suite_labels, label_map, drop)
    assert alignment.matrix.argmax(axis=0).tolist() == columns and alignment.how == how
    assert alignment.dropped == drop and alignment.matrix.sum() == len(model_labels) - len(drop)


def test_an_extra_model_class_is_refused_unless_mapped_or_dropped():
    """A 3-class model on a 2-label benchmark: main dropped 'neutral' and renormalised without a word."""
    three = ("negative", "neutral", "positive")
    with pytest.raises(ModelError, match=r"model label 'neutral' is not a suite label.*--label-map neutral=.*--drop-label neutral"):
        align_labels(three, ("negative", "positive"))
    merged = align_labels(three, ("negative", "positive"), {"neutral": "negative"})
    probs = np.array([[0.2, 0.5, 0.3]], dtype=np.float32)
    assert np.allclose(probs @ merged.matrix, [[0.7, 0.3]]) and merged.mapping["neutral"] == "negative"
    with pytest.raises(ModelError, match="--label-map: maps 'neutral' to 'negativ'.*did you mean 'negative'"):
        align_labels(three, ("negative", "positive"), {"neutral": "negativ"})
    with pytest.raises(ModelError, match="--drop-label: names 'neutrl'.*did you mean 'neutral'"):
        align_labels(three, ("negative", "positive"), drop=("neutrl",))


def test_align_labels_mismatch_is_clear():
    with pytest.raises(ModelError, match=r"model label 'joy' is not a suite label.*--label-map"):
        align_labels(("joy", "anger"), ("negative", "positive"))
    with pytest.raises(ModelError, match=r"cannot match suite labels \['negative', 'positive'\].*no model class for 'positive'"):
        align_labels(("negative", "other"), ("negative", "positive"), drop=("other",))


def test_fixture_tokenizer_knows_its_words(tiny_bert):
    """transformers 5 ignores BertTokenizerFast(vocab_file=...): the old fixture had 5 tokens, every word [UNK]."""
    from conftest import sst2_rows

    tok = load_model(str(tiny_bert)).tokenizer
    texts = [t for t, _ in sst2_rows(64)]
    ids = tok(texts, add_special_tokens=False)["input_ids"]
    assert len(tok) > 500 and sum(map(len, ids)) > 1000
    assert tok.unk_token_id not in {i for seq in ids for i in seq}
    assert tok.convert_ids_to_tokens(tok("A Film, Amélie.", add_special_tokens=False)["input_ids"]) == \
        ["a", "film", ",", "amelie", "."]
