"""Tiny deterministic fixtures: a 2-layer random BERT with a word-level vocab, and 64-row SST-2 data."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SST2_DEV = ROOT / "suites" / "data" / "sst2" / "dev.tsv"


def sst2_rows(n: int = 64) -> list[tuple[str, str]]:
    with open(SST2_DEV, encoding="utf-8", newline="") as f:
        reader = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        next(reader)
        return [(t, y) for t, y in list(reader)[:n]]


def write_tsv(path: Path, rows, header=("sentence", "label")) -> Path:
    path.write_text("\n".join(["\t".join(header)] + ["\t".join(r) for r in rows]) + "\n", encoding="utf-8")
    return path


SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


def fixture_vocab(texts=None) -> dict[str, int]:
    """The special tokens and every word of the fixture's sentences as BERT's tokenizer sees them
    (lower-cased, accents stripped, punctuation split off): the tiny tokenizer knows every word."""
    from tokenizers.normalizers import BertNormalizer
    from tokenizers.pre_tokenizers import BertPreTokenizer

    normalize, split = BertNormalizer().normalize_str, BertPreTokenizer().pre_tokenize_str
    texts = [t for t, _ in sst2_rows()] if texts is None else texts
    words = sorted({w for text in texts for w, _ in split(normalize(text))})
    return {w: i for i, w in enumerate(SPECIAL_TOKENS + tuple(words))}


def call_probe(name: str, ctx, **params):
    """Run a built-in probe directly, with its declared defaults for the parameters not given."""
    from audit import contract, runner

    options = {"shift_sets": tuple(getattr(ctx.suite, "shift_sets", None) or ()), "splits": ("reference",)}
    return runner.implementation(name)(ctx, **contract.get(name).resolve(params, f"probes.{name}", options))


def values(metrics: dict) -> dict:
    """Probe metrics (estimates or numbers) as plain values."""
    from audit.contract import Estimate

    return {k: Estimate.of(v).value for k, v in metrics.items()}


def build_tiny_bert(directory: Path, seed: int = 0, labels=("negative", "positive"), vocab_texts=None) -> Path:
    """A 2-layer BERT (hidden 32) with random weights and a vocab of the fixture's words (or of ``vocab_texts``)."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    tokenizer = BertTokenizerFast(vocab=fixture_vocab(vocab_texts), model_max_length=128)  # transformers 5 ignores vocab_file
    directory.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128, num_labels=len(labels),
                        id2label=dict(enumerate(labels)), label2id={lab: i for i, lab in enumerate(labels)})
    model = BertForSequenceClassification(config).eval()
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


TINY_SUITE = """\
name: tiny
description: 64 SST-2 dev sentences
labels: [negative, positive]
data:
  eval: {path: dev.tsv, text_field: sentence, label_field: label, label_map: {0: negative, 1: positive}}
  reference: {path: train.tsv, text_field: sentence, label_field: label, label_map: {0: negative, 1: positive}}
probes:
  accuracy: {}
  comparison: {}
gates:
  - {name: accuracy-floor, metric: accuracy.accuracy, min: 0.0}
  - {name: flip-rate, metric: comparison.flip_rate, max: 1.0}
"""


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    """Every test gets its own prediction cache and demo cache."""
    monkeypatch.setenv("AUDIT_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory) -> Path:
    return build_tiny_bert(tmp_path_factory.mktemp("models") / "tiny-bert")


@pytest.fixture(scope="session")
def tiny_bert_other(tmp_path_factory) -> Path:
    """A second random BERT (another seed): a stand-in for a compressed model that disagrees."""
    return build_tiny_bert(tmp_path_factory.mktemp("models") / "tiny-bert-other", seed=1)


@pytest.fixture
def tiny_suite(tmp_path) -> Path:
    """A 64-row suite in the sst2 format with a gate every random model passes."""
    write_tsv(tmp_path / "dev.tsv", sst2_rows(64))
    write_tsv(tmp_path / "train.tsv", sst2_rows(64)[::-1])
    (tmp_path / "tiny.yaml").write_text(TINY_SUITE)
    return tmp_path / "tiny.yaml"


def build_tiny_llama(directory: Path, seed: int = 0, texts=None, hidden: int = 32) -> Path:
    """A 2-layer Llama (hidden 32, MLP twice that) with random weights and a word-level tokenizer of the given
    texts' words (default: the fixture's SST-2 sentences) plus the words the LM tests' prompts use."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    texts = [t for t, _ in sst2_rows()] if texts is None else texts
    words = sorted({w for text in texts + LM_PROMPT_WORDS for w in pre_tokenizers.WhitespaceSplit().pre_tokenize_str(text)
                    for w in [w[0]]})
    vocab = {w: i for i, w in enumerate(["<unk>", "<s>", "</s>"] + words)}
    core = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, unk_token="<unk>", bos_token="<s>", eos_token="</s>",
                                        model_max_length=256)
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(vocab), hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                         bos_token_id=1, eos_token_id=2, tie_word_embeddings=False)
    model = LlamaForCausalLM(config).eval()
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


LM_PROMPT_WORDS = ["Question: Answer: yes no maybe good bad film A B C D E 1 2 3 4"]


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory) -> Path:
    return build_tiny_llama(tmp_path_factory.mktemp("models") / "tiny-llama")


@pytest.fixture(scope="session")
def tiny_llama_other(tmp_path_factory) -> Path:
    """Another random Llama with the same tokenizer: a stand-in for a compressed build that disagrees."""
    return build_tiny_llama(tmp_path_factory.mktemp("models") / "tiny-llama-other", seed=1)


class StandInScorer:
    """What a test's scorer stand-in shares with audit's Scorer beyond proba/predict: answers are the
    highest-ranked label or choice, and right means the gold one."""

    has_probabilities = True

    def answers(self, inputs, answer=None):
        return self.predict(inputs)

    def right(self, inputs, labels, answer=None):
        return self.predict(inputs) == labels
