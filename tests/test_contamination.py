"""Contamination scan: tokenizer agreement, planted duplicates, corpus formats, streaming, CLI."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from audit.contamination import kernels as K
from audit.contamination.corpus import CorpusSource, expand
from audit.contamination.shards import chunks, plan
from audit.contamination.normalize import pack, words
from audit.contamination.scan import BenchmarkIndex, ScanConfig, exact_overlap, scan
from audit.errors import DataError
from audit.metrics.stats import fisher_exact_p, wilson_interval
from audit.probes.contamination import score_split
from conftest import build_tiny_bert
from test_cli import assert_bad_input, run


def kernel_words(text: str) -> np.ndarray:
    buf, offsets = pack([text])
    return K.word_hashes(buf, offsets[0], offsets[1], K.BYTE_CLASSES)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(list("abXY09 '’-.,!é\u00a0ﬁ\t") + ["n't", " 's", " n't", "'re ", "'ll"]), max_size=30)
       .map("".join))
def test_kernel_tokenizer_agrees_with_reference(text):
    reference = [w for w, _, _ in words(text)]
    assert np.array_equal(kernel_words(text), kernel_words(" ".join(reference)))
    assert len(kernel_words(text)) == len(reference)


@pytest.mark.parametrize("a,b", [("it 's good", "It's GOOD!"), ("do n't", "don't"), ("ca n't stop", "can't stop"),
                                 ("well-made", "well - made"), ("ﬁlm", "film"), ("it’s", "it's"),
                                 ("a  b\tc", "a b c")])
def test_normalization_equates_surface_variants(a, b):
    assert np.array_equal(kernel_words(a), kernel_words(b)) and len(kernel_words(a)) > 0


def make_docs(rng, vocab, n, length):
    return [" ".join(rng.choice(vocab, length)) for _ in range(n)]


def edit(rng, text, rate, vocab):
    toks = text.split()
    for i in rng.choice(len(toks), max(1, int(rate * len(toks))), replace=False):
        toks[i] = rng.choice(vocab)
    return " ".join(toks)


def brute_force_best(item, corpus, k):
    """The best (containment, Jaccard) over all documents, by the string reference."""
    return max((exact_overlap(item, doc, k)[:2][::-1] for doc in corpus), default=(0.0, 0.0))


def test_planted_duplicates_are_found_with_exact_scores(tmp_path):
    rng = np.random.default_rng(0)
    vocab_a = np.array([f"w{i}" for i in range(3000)])
    vocab_b = np.array([f"z{i}" for i in range(3000)])  # disjoint from the corpus
    corpus = make_docs(rng, vocab_a, 400, 40)
    near = [edit(rng, corpus[i], rng.uniform(0.05, 0.2), vocab_a) for i in range(40)]
    embedded_items = make_docs(rng, vocab_a, 30, 25)
    hosts = [" ".join([*rng.choice(vocab_a, 150), item, *rng.choice(vocab_a, 150)]) for item in embedded_items]
    disjoint = make_docs(rng, vocab_b, 40, 30)
    corpus_file = tmp_path / "corpus.txt"
    corpus_file.write_text("\n".join(corpus + hosts) + "\n")
    items = near + embedded_items + disjoint

    config = ScanConfig(jaccard_threshold=0.5, containment_threshold=0.8)
    result = scan(BenchmarkIndex(items, config), chunks(plan([CorpusSource(str(corpus_file))]), max_docs=97))
    everything = corpus + hosts
    truth = [brute_force_best(item, everything, 5) for item in items]

    for i, (cont, jac) in enumerate(truth):  # reported scores equal the exact ones
        assert result.best[i].containment == pytest.approx(cont) and result.best[i].jaccard == pytest.approx(jac)
    above = [i for i, (_, jac) in enumerate(truth) if jac >= 0.5]
    assert len(above) >= 10 and np.mean(result.contaminated[above]) >= 0.95
    embedded = range(len(near), len(near) + len(embedded_items))
    assert np.mean(result.contaminated[list(embedded)]) >= 0.95
    assert all(result.best[i].jaccard < 0.5 for i in embedded)  # caught by containment, not Jaccard
    assert all(result.best[i].source is None for i in range(len(items) - len(disjoint), len(items)))
    assert not result.contaminated[-len(disjoint):].any() and not result.ngram_hit[-len(disjoint):].any()
    assert result.ngram_hit[list(embedded)].all()  # 25 unedited words hold a 13-gram
    assert result.best[embedded[0]].source == str(corpus_file) and result.best[embedded[0]].row == 401


def test_lsh_proposes_near_duplicates_and_short_items_are_whole_shingles(tmp_path):
    rng = np.random.default_rng(1)
    vocab = np.array([f"w{i}" for i in range(5000)])
    doc = " ".join(rng.choice(vocab, 200))
    near = edit(rng, doc, 0.005, vocab)  # one word: Jaccard ~0.95
    (tmp_path / "c.txt").write_text(doc + "\nthe cat sat down\nmat\n")
    result = scan(BenchmarkIndex([near, "The cat sat down.", "cat"], ScanConfig()),
                  chunks(plan([CorpusSource(str(tmp_path / "c.txt"))])))
    assert "minhash-lsh" in result.best[0].found_by and result.contaminated[0]
    assert result.best[1].jaccard == 1.0 and result.contaminated[1]  # 4 words: one whole-item shingle
    assert result.too_short[2] and not result.contaminated[2]


def test_corpus_formats_folders_globs_and_text_field(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a.jsonl").write_text('{"text": "one two"}\n{"text": "three"}\n')
    (tmp_path / "d" / "b.csv").write_text('sentence,x\n"four, five",1\n')
    with gzip.open(tmp_path / "d" / "c.txt.gz", "wt") as f:
        f.write("six\n\nseven\n")
    (tmp_path / "d" / "notes.md").write_text("ignored")
    sources = expand([tmp_path / "d"])
    texts = [t for chunk, _ in chunks(plan(sources)) for t in chunk]
    assert texts == ["one two", "three", "four, five", "six", "seven"]
    assert [s.path for s in expand([str(tmp_path / "d" / "*.jsonl")])] == [str(tmp_path / "d" / "a.jsonl")]
    with pytest.raises(DataError, match="no field 'body'.*--text-field"):
        list(chunks(plan(expand([tmp_path / "d" / "a.jsonl"], text_field="body"))))
    with pytest.raises(DataError, match="no corpus files found"):
        expand([tmp_path / "nothing*.txt"])


def test_score_split_matches_hand_counts():
    y = np.array([0, 1, 0, 1, 0, 1, 0, 1])
    pred = np.array([0, 1, 0, 1, 1, 0, 0, 1])
    dirty = np.array([1, 1, 0, 0, 0, 0, 0, 0], bool)
    out = score_split(pred == y, dirty)
    assert out["contaminated_accuracy"].value == 1.0 and out["clean_accuracy"].value == pytest.approx(4 / 6)
    assert out["clean_accuracy"].ci[0] < 4 / 6 < out["clean_accuracy"].ci[1] and out["clean_accuracy"].n == 6
    assert out["accuracy_gap_p_value"].value == pytest.approx(fisher_exact_p(2, 2, 4, 6))
    low, high = wilson_interval(4, 6)  # by hand: (p + z²/2n ± z·sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n)
    assert (low, high) == pytest.approx((0.3000, 0.9032), abs=1e-4)
    assert all(np.isnan(wilson_interval(0, 0)))
    none = score_split(pred == y, np.zeros(8, bool))
    assert none["contaminated_accuracy"].value is None and none["contaminated_accuracy"].note == "no contaminated items"


def test_contamination_command_and_probe_in_check(tiny_bert, tiny_suite, tmp_path):
    out = tmp_path / "out"
    corpus = tmp_path / "web.txt"
    corpus.write_text("unrelated words only here\n")
    text = tiny_suite.read_text().replace("  comparison: {}\n", "  comparison: {}\n  contamination: {}\n")
    text += "  - {name: contamination, metric: contamination.contaminated_fraction, max: 0.01}\n"
    tiny_suite.write_text(text)
    result = run("contamination", "-b", tiny_suite, "--train-data", corpus, "--out", out)
    assert result.exit_code == 1, result.output  # the tiny suite's train split repeats its dev split
    report = json.loads((out / "report.json").read_text())
    section = report["probes"]["contamination"]
    assert section["metrics"]["contaminated_fraction"]["value"] > 0.9 and report["model"] is None
    assert [g["name"] for g in report["gates"]] == ["contamination"]
    assert "matched training text" in (out / "report.html").read_text()  # item and match side by side

    result = run("check", tiny_bert, "-b", tiny_suite, "--out", out, "--device", "cpu")
    section = json.loads((out / "report.json").read_text())["probes"]["contamination"]
    assert result.exit_code == 1 and section["metrics"]["contaminated_accuracy"]["value"] is not None


@pytest.mark.parametrize("content,fragment", [(b"", "corpus has no documents"), (b"caf\xe9 latin-1\n", "not UTF-8")])
def test_empty_or_garbled_corpus_is_bad_input(tiny_suite, tmp_path, content, fragment):
    corpus = tmp_path / "corpus.txt"
    corpus.write_bytes(content)
    out = tmp_path / "out"
    assert_bad_input(run("contamination", "-b", tiny_suite, "--train-data", corpus, "--out", out), out, fragment,
                     "corpus.txt")


STREAM_SCRIPT = """
import resource, sys
from audit.contamination.corpus import CorpusSource
from audit.contamination.executors import scan_shard
from audit.contamination.scan import BenchmarkIndex
from audit.contamination.shards import plan
index = BenchmarkIndex(["a benchmark item of several words here", "another test sentence for the index"])
(shard,) = plan([CorpusSource(sys.argv[1])])
part = scan_shard(index, shard)  # what a Ray worker runs for one shard
print(part.counts["bytes"], resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


@pytest.mark.parametrize("suffix", [".txt.gz", ".jsonl.zst"])
def test_a_shard_scan_streams_in_bounded_memory(tmp_path, suffix):
    """A worker holds the index and one chunk (4 MiB of text), never the shard: peak RSS must not grow with
    the shard's size (8x the text, same memory to within chunk noise)."""
    import zstandard

    rng = np.random.default_rng(0)
    lines = [" ".join(rng.choice([f"w{i}" for i in range(2000)], 150)) for _ in range(2000)]
    block = "".join((json.dumps({"text": t}) if suffix == ".jsonl.zst" else t) + "\n" for t in lines).encode()
    peaks = {}
    for copies in (10, 80):
        path = tmp_path / f"c{copies}{suffix}"
        with (gzip.open(path, "wb", compresslevel=1) if suffix.endswith(".gz")
              else zstandard.ZstdCompressor().stream_writer(open(path, "wb"))) as f:
            for _ in range(copies):
                f.write(block)
        out = subprocess.run([sys.executable, "-c", STREAM_SCRIPT, str(path)], capture_output=True, text=True, check=True)
        scanned, peak_kb = map(int, out.stdout.split())
        peaks[copies] = (scanned, peak_kb)
    grown_text_mb = (peaks[80][0] - peaks[10][0]) / 1e6
    grown_rss_mb = (peaks[80][1] - peaks[10][1]) / 1024
    assert grown_text_mb > 100 and grown_rss_mb < 30, peaks


AG_ROWS = [  # AG News's own layout: headerless CSV, class index (1-4), title, description
    ("3", "Wall St. Bears Claw Back Into the Black (Reuters)", "Reuters - Short-sellers, Wall Street's dwindling band of "
                                                             "ultra-cynics, are seeing green again."),
    ("2", "Phelps Wins Again", "Michael Phelps won his fifth gold medal of the games on Tuesday night, in the relay."),
    ("4", "New Chip Doubles Speed", "A chip maker said its new processor runs twice as fast while using less power."),
    ("1", "Talks Resume in Geneva", "Diplomats from both sides returned to the table on Monday after a week of silence."),
]


def test_a_headerless_csv_with_a_text_template(tiny_bert, tmp_path):
    """main could not describe AG News's files at all, and `validate` said ok while `contamination` failed."""
    import csv

    def write(name, rows):
        with open(tmp_path / name, "w", newline="", encoding="utf-8") as f:
            csv.writer(f).writerows(rows)

    write("test.csv", AG_ROWS)
    write("train.csv", [("1", "Unrelated", "Nothing in common with the benchmark at all, not one shingle."), AG_ROWS[1]])
    spec = ('{path: %s, columns: [label, title, description], text_template: "{title}. {description}", '
            'label_field: label, label_map: {1: World, 2: Sports, 3: Business, 4: Sci/Tech}}')
    (tmp_path / "ag.yaml").write_text(f"""\
name: ag_news
labels: [World, Sports, Business, Sci/Tech]
data:
  eval: {spec % "test.csv"}
  reference: {spec % "train.csv"}
probes: {{accuracy: {{}}, contamination: {{}}}}
gates:
  - {{name: contamination, metric: contamination.contaminated_fraction, max: 0.01}}
""")
    ok = run("validate", tmp_path / "ag.yaml")
    assert ok.exit_code == 0 and "eval 4, reference 2" in ok.output, ok.output
    out = tmp_path / "out"
    result = run("contamination", "-b", tmp_path / "ag.yaml", "--out", out)
    assert result.exit_code == 1, result.output  # the planted training row is found
    section = json.loads((out / "report.json").read_text())["probes"]["contamination"]
    assert section["metrics"]["n_contaminated"]["value"] == 1
    assert section["details"]["examples"][0]["text"] == f"{AG_ROWS[1][1]}. {AG_ROWS[1][2]}"
    model = build_tiny_bert(tmp_path / "ag-model", labels=("World", "Sports", "Business", "Sci/Tech"),
                            vocab_texts=[" ".join(row) for row in AG_ROWS])
    checked = run("check", model, "-b", tmp_path / "ag.yaml", "--out", tmp_path / "out2")
    assert checked.exit_code in (0, 1) and (tmp_path / "out2" / "report.json").exists(), checked.output
