"""Corpus-scale contamination: shards and byte ranges, the Ray executor (a local 2-CPU cluster), faults and
resume. Every executor, and every way of cutting the corpus, must give the result of one sequential scan."""

from __future__ import annotations

import gzip
import json
import os
import random
from pathlib import Path

import pytest
import zstandard
from hypothesis import given, settings, strategies as st

from audit.contamination.corpus import CorpusSource, expand
from audit.contamination.executors import scan_corpus, scan_shard
from audit.contamination.scan import BenchmarkIndex, ScanConfig, scan
from audit.contamination.shards import chunks, lines_before, plan, read
from audit.contamination import resume as resume_mod
from test_cli import run

WORDS = [f"w{i}" for i in range(4000)]


def sentence(rnd: random.Random, n: int) -> str:
    return " ".join(rnd.choice(WORDS) for _ in range(n))


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """40 benchmark items and a corpus of 7 shards in every supported layout (gzip, zstd, plain jsonl cut into
    byte ranges, txt, parquet), with items planted whole, inside long documents, and with words changed;
    some planted twice, so that tie-breaking between shards matters."""
    rnd = random.Random(0)
    items = [sentence(rnd, 20) for _ in range(40)]
    folder = tmp_path_factory.mktemp("corpus")
    planted_at = {}

    def docs(k: int, n: int = 1500) -> list[str]:
        out = [sentence(rnd, rnd.randint(30, 200)) for _ in range(n)]
        for j in range(5):
            i = (k * 5 + j) % len(items)
            words = items[i].split()
            if j == 1:
                words[-1] = "changed"  # a near-duplicate: 15 of its 16 shingles (containment 0.94)
            text = " ".join(words)
            out[100 * j + k] = text if j % 2 else f"{sentence(rnd, 150)} {text} {sentence(rnd, 150)}"
            planted_at.setdefault(i, []).append(k)
        return out

    def jsonl(texts):
        return "".join(json.dumps({"id": n, "text": t}) + "\n" for n, t in enumerate(texts)).encode()

    (folder / "a.jsonl.gz").write_bytes(gzip.compress(jsonl(docs(0))))
    (folder / "b.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress(jsonl(docs(1))))
    (folder / "c.jsonl").write_bytes(jsonl(docs(2, 4000)))  # ~1.8 MB: cut into ranges below
    (folder / "d.txt").write_text("\n".join(docs(3)) + "\n")
    (folder / "e.jsonl.gz").write_bytes(gzip.compress(jsonl(docs(4))))
    import pyarrow as pa
    import pyarrow.parquet as pq
    pq.write_table(pa.table({"text": docs(5)}), folder / "f.parquet")
    (folder / "g.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress(jsonl(docs(6))))
    return items, expand([folder]), planted_at


def outcome(result):
    """Everything a report shows of a scan."""
    return ([(m.source, m.row, m.containment, m.jaccard, m.excerpt, m.found_by) for m in result.best],
            result.ngram_where, result.contaminated.tolist(), result.stats["documents"], result.stats["bytes"])


RANGE = 256 << 10  # c.jsonl and d.txt are cut into ranges


@pytest.fixture(scope="module")
def local_result(planted):
    items, sources, _ = planted
    return scan_corpus(BenchmarkIndex(items, ScanConfig()), sources, range_bytes=RANGE, progress=False)


def test_shards_give_the_result_of_one_sequential_scan(planted, local_result):
    items, sources, planted_at = planted
    index = BenchmarkIndex(items, ScanConfig())
    shards = plan(sources, RANGE)
    ranged = {s.source.path.rsplit('/', 1)[1] for s in shards if s.ranged}
    assert ranged == {"c.jsonl", "d.txt"} and sum(s.ranged for s in shards) >= 8
    whole = scan(index, chunks(plan(sources), max_docs=1000))  # no ranges, chunks across files
    assert outcome(local_result) == outcome(whole)
    assert set(map(int, local_result.contaminated.nonzero()[0])) == set(planted_at)
    # a ranged shard's match is reported at its line in the file
    for m in local_result.best:
        if m.source and m.source.endswith("c.jsonl"):
            lines = Path(m.source).read_text().splitlines()
            assert m.excerpt.strip("…")[:40] in " ".join(json.loads(lines[m.row - 1])["text"].split())


@settings(max_examples=40, deadline=None)
@given(lines=st.lists(st.text(alphabet="ab \n", min_size=0, max_size=30).map(lambda t: t.replace("\n", "")),
                      min_size=1, max_size=40),
       range_bytes=st.integers(1, 64), trailing_newline=st.booleans())
def test_byte_ranges_read_every_line_once(tmp_path_factory, lines, range_bytes, trailing_newline):
    path = tmp_path_factory.mktemp("r") / "t.txt"
    path.write_text("\n".join(lines) + ("\n" if trailing_newline else ""))
    source = CorpusSource(str(path))
    expected = [(n, line) for n, line in enumerate(lines, 1) if line.strip()]
    got = []
    for shard in plan([source], range_bytes):
        base = lines_before(str(path), {shard.start})[shard.start] if shard.ranged else 0
        got += [(base + row, text) for block in read(shard, block_bytes=7) for row, text in block]
    assert got == expected


@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray
    ray.shutdown()


def test_ray_gives_the_local_result(planted, local_result, ray_cluster):
    items, sources, _ = planted
    result = scan_corpus(BenchmarkIndex(items, ScanConfig()), sources, executor="ray", workers=2, range_bytes=RANGE,
                         progress=False)
    assert outcome(result) == outcome(local_result)


def test_a_worker_killed_mid_shard_is_retried_and_counted_once(planted, local_result, ray_cluster, tmp_path):
    items, sources, _ = planted
    marker = tmp_path / "killed"

    def dies_once(index, shard):  # pickled by value into the Ray worker
        if shard.source.path.endswith("b.jsonl.zst") and not marker.exists():
            next(iter(chunks([shard], max_docs=100)))  # mid-shard
            marker.write_text(str(os.getpid()))
            os._exit(1)
        return scan_shard(index, shard)

    result = scan_corpus(BenchmarkIndex(items, ScanConfig()), sources, executor="ray", workers=2, range_bytes=RANGE,
                         progress=False, task=dies_once)
    assert marker.exists()  # a worker process really died
    assert outcome(result) == outcome(local_result)  # retried; its documents counted once


@pytest.mark.parametrize("executor", ["local", "ray"])
def test_an_interrupted_scan_resumes_without_rescanning(planted, local_result, tmp_path, executor, request):
    if executor == "ray":
        request.getfixturevalue("ray_cluster")
    items, sources, _ = planted
    index = BenchmarkIndex(items, ScanConfig())
    scanned = []

    def interrupted(index, shard):
        if len(scanned) == 5:
            raise KeyboardInterrupt
        scanned.append(shard.key)
        return scan_shard(index, shard)

    options = dict(executor=executor, range_bytes=RANGE, progress=False, resume=tmp_path / "resume")
    if executor == "local":
        with pytest.raises(KeyboardInterrupt):
            scan_corpus(index, sources, task=interrupted, **options)
        assert len(list((tmp_path / "resume" / "shards").glob("*.json"))) == 5
    else:  # tasks run in workers: interrupt the driver after its fifth recorded shard
        saves = []
        real_save = resume_mod.ResumeStore.save

        def save(self, shard, part):
            real_save(self, shard, part)
            saves.append(shard.key)
            if len(saves) == 5:
                raise KeyboardInterrupt

        resume_mod.ResumeStore.save = save
        try:
            with pytest.raises(KeyboardInterrupt):
                scan_corpus(index, sources, **options)
        finally:
            resume_mod.ResumeStore.save = real_save
    result = scan_corpus(index, sources, **options)
    assert result.stats["resumed_shards"] == 5
    assert outcome(result) == outcome(local_result)


def test_a_resume_folder_of_another_scan_is_refused(planted, tmp_path):
    items, sources, _ = planted
    scan_corpus(BenchmarkIndex(items[:10], ScanConfig()), sources[:1], resume=tmp_path, progress=False)
    with pytest.raises(Exception, match="the resume folder holds another scan"):
        scan_corpus(BenchmarkIndex(items, ScanConfig()), sources[:1], resume=tmp_path, progress=False)


def test_cli_ctrl_c_exits_130_and_resume_gives_the_uninterrupted_report(tiny_suite, tmp_path, monkeypatch, planted):
    _, sources, _ = planted
    corpus = Path(sources[0].path).parent
    args = ["contamination", "-b", tiny_suite, "--train-data", corpus]
    assert run(*args, "--out", tmp_path / "whole").exit_code in (0, 1)
    real_save, saves = resume_mod.ResumeStore.save, []

    def save(self, shard, part):
        real_save(self, shard, part)
        saves.append(shard.key)
        if len(saves) == 3:
            raise KeyboardInterrupt

    monkeypatch.setattr(resume_mod.ResumeStore, "save", save)
    result = run(*args, "--resume", tmp_path / "resume", "--out", tmp_path / "cut")
    assert result.exit_code == 130 and not (tmp_path / "cut").exists()
    monkeypatch.setattr(resume_mod.ResumeStore, "save", real_save)
    assert run(*args, "--resume", tmp_path / "resume", "--out", tmp_path / "resumed").exit_code in (0, 1)

    def section(folder):
        probe = json.loads((folder / "report.json").read_text())["probes"]["contamination"]
        return probe["metrics"], probe["details"]["examples"], probe["details"]["scan"]["documents"]

    assert section(tmp_path / "resumed") == section(tmp_path / "whole")


@pytest.mark.parametrize("argv,fragment", [
    (["--workers", "2"], "--workers: it sets up the Ray executor"),
    (["--ray-address", "ray://x:10001"], "--ray-address: it sets up the Ray executor"),
    (["--executor", "dask"], "Invalid value for '--executor'"),
])
def test_executor_options_are_checked(tiny_suite, tmp_path, argv, fragment):
    result = run("contamination", "-b", tiny_suite, "--out", tmp_path / "out", *argv)
    assert result.exit_code == 2 and fragment in result.output and not (tmp_path / "out").exists()


def test_the_ray_executor_without_ray_is_bad_input(tiny_suite, tmp_path, monkeypatch):
    import importlib.util

    from audit import runner

    real = importlib.util.find_spec
    monkeypatch.setattr(runner.importlib.util, "find_spec", lambda name, *a: None if name == "ray" else real(name, *a))
    result = run("contamination", "-b", tiny_suite, "--out", tmp_path / "out", "--executor", "ray")
    assert result.exit_code == 2 and "pip install 'audit[ray]'" in result.output and not (tmp_path / "out").exists()


def test_ray_settings_in_a_suite_need_the_ray_executor(tiny_suite, tmp_path):
    text = tiny_suite.read_text().replace("probes:\n", "probes:\n  contamination: {workers: 4}\n")
    (tmp_path / "s.yaml").write_text(text)
    result = run("contamination", "-b", tmp_path / "s.yaml", "--out", tmp_path / "out")
    assert result.exit_code == 2 and "workers sets up the Ray executor" in result.output
