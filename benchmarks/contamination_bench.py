"""Contamination scan throughput: audit's compiled path vs datasketch's per-shingle loop and MinHash.bulk.

    python benchmarks/contamination_bench.py [--docs 200000] [--check]

Generates a synthetic corpus of ~1 KB documents (seeded; words drawn from a Zipf-like vocabulary)
into a temporary .txt file, then times, in the same run:
  * audit: read the file, normalize, hash word 5-grams, 128-permutation MinHash, LSH band lookup and
    exact shingle-index lookup against the SST-2 dev index, verify candidates (the whole scan);
  * datasketch loop: MinHash(num_perm=128).update per shingle (on a sample: it is slow);
  * datasketch bulk: MinHash.bulk (on a sample).
audit runs on 1 thread (per-core figures; also on the first quarter and half of the corpus, for
linearity) and on all cores. --check exits 1 unless audit reaches 40 MB/s on one thread and 100x
the loop on all cores.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time

import numpy as np


def make_corpus(path: str, n_docs: int, seed: int) -> float:
    rng = np.random.default_rng(seed)
    vocab = np.array(["".join(rng.choice(list("abcdefghijklmnopqrstuvwxyz"), rng.integers(2, 9)))
                      for _ in range(30000)])
    weights = 1.0 / np.arange(1, len(vocab) + 1)
    weights /= weights.sum()
    size = 0
    with open(path, "w", encoding="utf-8") as f:
        for start in range(0, n_docs, 10000):
            n = min(10000, n_docs - start)
            ids = rng.choice(len(vocab), size=(n, 180), p=weights)
            for row in vocab[ids]:
                line = " ".join(row) + "\n"
                size += len(line)
                f.write(line)
    return size / 1e6


def shingle_bytes(text: str, k: int = 5) -> list[bytes]:
    from audit.contamination.normalize import words

    w = [x for x, _, _ in words(text)]
    return [" ".join(w[i:i + k]).encode() for i in range(len(w) - k + 1)]


def main() -> int:
    import numba
    from datasketch import MinHash

    from audit import suite as suite_mod
    from audit.contamination.corpus import CorpusSource
    from audit.contamination.shards import chunks, plan
    from audit.contamination.scan import BenchmarkIndex, ScanConfig, scan
    from audit.data import read_split

    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=200000)
    ap.add_argument("--loop-sample", type=int, default=300)
    ap.add_argument("--bulk-sample", type=int, default=3000)
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args()

    suite = suite_mod.load("sst2")
    index = BenchmarkIndex(read_split(suite.eval, suite.labels).texts, ScanConfig())
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "corpus.txt")
        mb = make_corpus(path, args.docs, seed=0)
        print(f"corpus: {args.docs} docs, {mb:.1f} MB ({mb * 1e3 / args.docs:.2f} KB/doc)")
        texts = [line.rstrip("\n") for _, line in zip(range(args.bulk_sample), open(path, encoding="utf-8"))]
        sample_mb = sum(map(len, texts)) / 1e6 / len(texts)

        scan(index, chunks(plan([CorpusSource(path)]), max_docs=100))  # warm-up: JIT compile, page cache
        rates = {}
        for threads, frac in [(1, 0.25), (1, 0.5), (1, 1.0), (numba.config.NUMBA_NUM_THREADS, 1.0)]:
            numba.set_num_threads(threads)
            t0 = time.perf_counter()
            result = scan(index, _head(chunks(plan([CorpusSource(path)])), int(args.docs * frac)))
            dt = time.perf_counter() - t0
            rates[threads, frac] = (result.stats["documents"] / dt, result.stats["bytes"] / 1e6 / dt)
            print(f"audit, {threads} thread(s), {frac:.0%} of corpus: "
                  f"{rates[threads, frac][0]:,.0f} docs/s, {rates[threads, frac][1]:.1f} MB/s, {dt:.2f} s")
        docs_s, mb_s = rates[1, 1.0]
        docs_all = rates[numba.config.NUMBA_NUM_THREADS, 1.0][0]

        t0 = time.perf_counter()
        for text in texts[: args.loop_sample]:
            m = MinHash(num_perm=128, seed=0)
            for sh in shingle_bytes(text):
                m.update(sh)
        loop = args.loop_sample / (time.perf_counter() - t0)
        t0 = time.perf_counter()
        MinHash.bulk([shingle_bytes(t) for t in texts], num_perm=128, seed=0)
        bulk = len(texts) / (time.perf_counter() - t0)
        print(f"datasketch update loop: {loop:,.0f} docs/s, {loop * sample_mb:.2f} MB/s")
        print(f"datasketch MinHash.bulk: {bulk:,.0f} docs/s, {bulk * sample_mb:.2f} MB/s")
        print(f"audit vs loop: {docs_s / loop:.0f}x on 1 thread, {docs_all / loop:.0f}x on all "
              f"{numba.config.NUMBA_NUM_THREADS}; vs bulk: {docs_s / bulk:.0f}x on 1 thread; MB/s per thread: {mb_s:.1f}")
        print("linearity, 1 thread (docs/s at 25%, 50%, 100%): "
              + ", ".join(f"{rates[1, f][0]:,.0f}" for f in (0.25, 0.5, 1.0)))
        print(f"peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    ok = mb_s >= 40 and docs_all / loop >= 100
    if args.check and not ok:
        print("FAIL: below 40 MB/s per thread or 100x the loop")
        return 1
    return 0


def _head(chunk_iter, n_docs: int):
    seen = 0
    for texts, where in chunk_iter:
        if seen >= n_docs:
            return
        keep = min(len(texts), n_docs - seen)
        seen += keep
        yield texts[:keep], where[:keep]


if __name__ == "__main__":
    sys.exit(main())
