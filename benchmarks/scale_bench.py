"""Corpus-scale contamination scan: local (one process) vs Ray with 1 and 2 workers, end to end.

    pip install 'audit[ray]'
    python benchmarks/scale_bench.py [--gb 2.0] [--shards 64] [--seed 0] [--corpus DIR] [--check]

Writes a seeded synthetic corpus (once; reused while its parameters match): ``--shards`` compressed jsonl
shards, half .jsonl.gz and half .jsonl.zst, of ~1.1 KB English-like documents (sentences of Zipf-drawn
words), ``--gb`` GB uncompressed in all, with SST-2 dev sentences planted in some documents (whole, inside
a longer text, or with their last word changed). Then, in one run, on this machine:
  * where a shard's time goes, on one thread: decompression (standard-library gzip vs isal; zstandard),
    JSON parsing (json vs orjson), audit's shard reader, and the whole shard scan;
  * the whole corpus against the SST-2 dev index (read, decompress, parse, hash, match): the local executor
    (one process, numba on one thread), then Ray with 1 and with 2 workers (a local cluster of that many
    CPUs, workers warmed up on a small corpus first; cluster start and warm-up are timed separately).
Uncompressed MB/s per core, docs/s, and the scaling efficiency from 1 to 2 workers; the three executors'
matches must be identical. --check exits 1 unless end to end reaches 50 MB/s per core and 80% efficiency.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def make_corpus(folder: Path, gb: float, shards: int, seed: int, planted: list[str]) -> dict:
    """The corpus, built once per parameter set (manifest.json records them and what was planted where)."""
    import orjson
    import zstandard
    from isal import igzip

    params = {"gb": gb, "shards": shards, "seed": seed, "planted": len(planted)}
    manifest = folder / "manifest.json"
    if manifest.is_file() and json.loads(manifest.read_text())["params"] == params:
        return json.loads(manifest.read_text())
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("shard-*"):
        old.unlink()
    rng = np.random.default_rng(seed)
    letters = np.array(list("etaoinshrdlucmfwypvbgkjqxz"))
    vocab = np.array(["".join(rng.choice(letters, rng.integers(1, 10))) for _ in range(40000)], dtype=object)
    weights = 1.0 / np.arange(1, len(vocab) + 1) ** 1.1
    lengths = rng.integers(6, 30, 200000)
    words = vocab[rng.choice(len(vocab), lengths.sum(), p=weights / weights.sum())]
    ends = np.cumsum(lengths)
    sentences = [" ".join(words[e - k:e]) + "." for e, k in zip(ends, lengths)]
    per_shard = int(gb * 1e9 / shards)
    where: dict[str, list] = {}
    for s in range(shards):
        docs, size, n = [], 0, 0
        plant = {int(d): i for d, i in zip(rng.choice(20000, 5, replace=False), rng.choice(len(planted), 5))}
        counts = rng.integers(4, 16, per_shard // 500)  # more than enough documents
        picks = rng.integers(0, len(sentences), counts.sum())
        bounds = np.cumsum(counts)
        while size < per_shard:
            text = " ".join([sentences[i] for i in picks[bounds[n] - counts[n]:bounds[n]]])
            if n in plant:
                item = planted[plant[n]]
                kind = n % 3
                text = item if kind == 0 else f"{text} {item} {text[:200]}" if kind == 1 else \
                    item.rsplit(" ", 1)[0] + " changed"
                where.setdefault(str(plant[n]), []).append([s, n + 1, ["whole", "inside", "last word changed"][kind]])
            line = orjson.dumps({"id": f"{s}-{n}", "text": text, "url": f"https://example.org/{s}/{n}"}) + b"\n"
            docs.append(line)
            size += len(line)
            n += 1
        raw = b"".join(docs)
        if s % 2:
            (folder / f"shard-{s:04d}.jsonl.zst").write_bytes(zstandard.ZstdCompressor(level=3).compress(raw))
        else:
            (folder / f"shard-{s:04d}.jsonl.gz").write_bytes(igzip.compress(raw, compresslevel=1))
        print(f"  shard {s + 1}/{shards}: {len(raw) / 1e6:.1f} MB, {n:,} documents", end="\r", file=sys.stderr)
    data = {"params": params, "planted": where}
    manifest.write_text(json.dumps(data))
    return data


def corpus_bytes(folder: Path) -> tuple[int, int]:
    """(uncompressed bytes, bytes on disk)."""
    from audit.data import open_raw

    total = 0
    for path in sorted(folder.glob("shard-*")):
        with open_raw(path) as f:
            while block := f.read(1 << 24):
                total += len(block)
    return total, sum(p.stat().st_size for p in folder.glob("shard-*"))


def reader_breakdown(index, folder: Path) -> dict:
    """Seconds per stage on one gzip and one zstd shard, one thread."""
    import orjson
    from isal import igzip

    from audit.contamination.corpus import CorpusSource
    from audit.contamination.executors import scan_shard
    from audit.contamination.shards import plan, read
    from audit.data import open_raw

    out = {}
    for path in [sorted(folder.glob("*.gz"))[0], sorted(folder.glob("*.zst"))[0]]:
        row = {}
        t = time.perf_counter()
        with open_raw(path) as f:
            raw = f.read()
        row["decompress"] = time.perf_counter() - t
        if path.suffix == ".gz":
            t = time.perf_counter()
            with gzip.open(path, "rb") as f:
                f.read()
            row["decompress (stdlib gzip)"] = time.perf_counter() - t
            t = time.perf_counter()
            with igzip.open(path, "rb") as f:
                f.read()
            row["decompress (isal)"] = time.perf_counter() - t
        lines = raw.splitlines()
        t = time.perf_counter()
        for line in lines:
            json.loads(line)["text"]
        row["parse (json)"] = time.perf_counter() - t
        t = time.perf_counter()
        for line in lines:
            orjson.loads(line)["text"]
        row["parse (orjson)"] = time.perf_counter() - t
        shard = plan([CorpusSource(str(path))])[0]
        t = time.perf_counter()
        n = sum(len(block) for block in read(shard))
        row["audit reader (decompress + split + parse)"] = time.perf_counter() - t
        t = time.perf_counter()
        scan_shard(index, shard)
        row["whole shard scan"] = time.perf_counter() - t
        out[path.name] = {"mb": len(raw) / 1e6, "docs": n, "seconds": row}
    return out


def timed_scan(index, sources, executor: str, workers: int | None) -> tuple[float, object]:
    from audit.contamination.executors import scan_corpus

    t = time.perf_counter()
    result = scan_corpus(index, sources, executor=executor, workers=workers, progress=sys.stderr.isatty())
    return time.perf_counter() - t, result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gb", type=float, default=2.0)
    parser.add_argument("--shards", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--corpus", type=Path, default=Path(tempfile.gettempdir()) / "audit-scale-corpus")
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()

    import numba
    import ray

    from audit import suite as suite_mod
    from audit.contamination.corpus import expand
    from audit.contamination.executors import scan_corpus
    from audit.contamination.scan import BenchmarkIndex, ScanConfig
    from audit.data import read_split

    suite = suite_mod.load("sst2")
    items = read_split(suite.eval, suite.labels).texts
    t = time.perf_counter()
    manifest = make_corpus(args.corpus, args.gb, args.shards, args.seed, items)
    print(f"corpus: {args.corpus} ({time.perf_counter() - t:.0f} s to make or find)")
    raw_bytes, disk_bytes = corpus_bytes(args.corpus)
    print(f"  {args.shards} shards, {raw_bytes / 1e9:.2f} GB uncompressed, {disk_bytes / 1e9:.2f} GB on disk; "
          f"{sum(map(len, manifest['planted'].values()))} planted copies of {len(manifest['planted'])} SST-2 dev items")
    index = BenchmarkIndex(items, ScanConfig())
    sources = expand([args.corpus])
    numba.set_num_threads(1)
    scan_corpus(index, sources[:1], progress=False)  # JIT cache, page cache warm-up
    print(f"numba {numba.__version__} (1 thread), ray {ray.__version__}, {os.cpu_count()} CPUs")

    print("\nwhere a shard's time goes (one thread, seconds):")
    for name, row in reader_breakdown(index, args.corpus).items():
        print(f"  {name}: {row['mb']:.1f} MB, {row['docs']:,} docs")
        for stage, seconds in row["seconds"].items():
            print(f"    {stage:45s} {seconds:6.2f} s  {row['mb'] / seconds:7.0f} MB/s")

    runs = {}
    seconds, result = timed_scan(index, sources, "local", None)
    runs["local, 1 process"] = (1, seconds, result, 0.0)
    for workers in (1, 2):
        t = time.perf_counter()
        ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False, configure_logging=False)
        scan_corpus(index, sources[:workers], executor="ray", workers=workers, progress=False)  # start workers
        startup = time.perf_counter() - t
        seconds, result = timed_scan(index, sources, "ray", workers)
        ray.shutdown()
        runs[f"ray, {workers} worker{'s' if workers > 1 else ''}"] = (workers, seconds, result, startup)

    print(f"\nend to end, {raw_bytes / 1e9:.2f} GB uncompressed (read, decompress, parse, hash, match):")
    print(f"  {'executor':18s} {'seconds':>8s} {'docs/s':>10s} {'MB/s':>7s} {'MB/s/core':>10s}  start-up")
    rate = {}
    for name, (cores, seconds, result, startup) in runs.items():
        mbs = raw_bytes / 1e6 / seconds
        rate[name] = mbs
        print(f"  {name:18s} {seconds:8.1f} {result.stats['documents'] / seconds:10,.0f} {mbs:7.1f} {mbs / cores:10.1f}"
              f"  {startup:.1f} s" if startup else
              f"  {name:18s} {seconds:8.1f} {result.stats['documents'] / seconds:10,.0f} {mbs:7.1f} {mbs / cores:10.1f}")
    efficiency = rate["ray, 2 workers"] / (2 * rate["ray, 1 worker"])
    per_core = min(rate["local, 1 process"], rate["ray, 1 worker"], rate["ray, 2 workers"] / 2)
    print(f"  scaling efficiency 1 -> 2 workers: {efficiency:.0%}")

    def matches(result):
        return [(m.source, m.row, m.containment, m.jaccard) for m in result.best], list(result.ngram_where)

    local = runs["local, 1 process"][2]
    same = all(matches(r[2]) == matches(local) and r[2].stats["documents"] == local.stats["documents"]
               for r in runs.values())
    found = set(map(int, local.contaminated.nonzero()[0]))
    print(f"  identical matches across executors: {same}; contaminated items found {len(found)} of "
          f"{len(manifest['planted'])} planted; documents {local.stats['documents']:,}")
    ok = same and per_core >= 50 and efficiency >= 0.8
    if args.check:
        print("check:", "ok" if ok else f"FAILED (per core {per_core:.1f} MB/s >= 50, efficiency {efficiency:.0%} "
                                        f">= 80%, identical {same})")
        return 0 if ok else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
