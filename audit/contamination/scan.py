"""Benchmark-vs-corpus contamination scan: index the (small) benchmark, stream the corpus through it.

Per benchmark item the scan keeps only its best match, so memory depends on the benchmark,
not the corpus. Two candidate sources feed one exact verification:

* MinHash LSH (``num_perm`` permutations, bands and rows chosen by datasketch for the Jaccard
  threshold) proposes documents whose shingle set resembles the item's as a whole;
* an exact index of the items' shingles finds every document sharing any shingle with an
  item, which is what catches an item pasted inside a long page (high containment, low Jaccard).

Every candidate is verified on the exact shingle sets (64-bit hashes); the best match of each
item is re-verified on the word strings themselves (``normalize.words``) for the report.
A separate detector reports exact long n-gram overlap in the GPT-3 / lm-eval style.

Short items: an item of ``w`` words with ``min_words <= w < shingle_size`` is one shingle (the
whole item), matched against the document's ``w``-grams; items under ``min_words`` words are
too short to judge and are counted as ``n_too_short``, never as contaminated.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace

import numpy as np
from datasketch.lsh import _optimal_param

from audit.contamination import kernels as K
from audit.contamination.normalize import pack, prepare, words
from audit.contamination.shards import lines_before


@dataclass(frozen=True)
class ScanConfig:
    shingle_size: int = 5  # words per shingle
    num_perm: int = 128
    jaccard_threshold: float = 0.8
    containment_threshold: float = 0.8
    ngram_size: int = 13  # the exact-overlap detector's n (whole item when shorter)
    min_words: int = 4
    seed: int = 0


@dataclass
class BestMatch:
    containment: float = 0.0
    jaccard: float = 0.0
    source: str | None = None
    row: int | None = None
    excerpt: str = ""
    found_by: tuple[str, ...] = ()
    key: tuple[float, float] = (0.0, 0.0)  # (containment, Jaccard) on hashed shingles: what ranks matches


COUNTS = ("documents", "bytes", "candidate_pairs", "lsh_pairs")


@dataclass
class Partial:
    """What one shard adds: the best match of each item it touches, each item's first exact n-gram hit
    (source, row) and counts. Merged in shard order, partials give the result of one sequential scan."""

    best: dict[int, BestMatch] = field(default_factory=dict)
    ngram: dict[int, tuple[str, int]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTS, 0))

    def as_json(self) -> dict:
        return {"best": {str(i): asdict(m) for i, m in self.best.items()},
                "ngram": {str(i): list(w) for i, w in self.ngram.items()}, "counts": self.counts}

    @classmethod
    def from_json(cls, data: dict) -> "Partial":
        best = {int(i): BestMatch(**{**m, "found_by": tuple(m["found_by"]), "key": tuple(m["key"])})
                for i, m in data["best"].items()}
        return cls(best, {int(i): (w[0], int(w[1])) for i, w in data["ngram"].items()}, dict(data["counts"]))


@dataclass
class ScanResult:
    config: ScanConfig
    n_items: int
    n_words: np.ndarray
    best: list[BestMatch]
    ngram_hit: np.ndarray  # bool per item
    ngram_where: list[tuple[str, int] | None]
    stats: dict = field(default_factory=dict)

    @property
    def too_short(self) -> np.ndarray:
        return self.n_words < self.config.min_words

    @property
    def contaminated(self) -> np.ndarray:
        c = self.config
        return np.array([(m.jaccard >= c.jaccard_threshold or m.containment >= c.containment_threshold)
                         for m in self.best], dtype=bool) & ~self.too_short


def _postings(grams: list[np.ndarray], items: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(hash, item) pairs sorted by hash, one per distinct n-gram of each item."""
    if not len(items):
        return np.zeros(0, np.uint64), np.zeros(0, np.int64)
    hashes = np.concatenate([grams[i] for i in items])
    owners = np.concatenate([np.full(len(grams[i]), i, np.int64) for i in items])
    order = np.argsort(hashes, kind="stable")
    return hashes[order], owners[order]


def _expand(post_hash: np.ndarray, post_item: np.ndarray, docs: np.ndarray, hashes: np.ndarray):
    """(doc, item) for each (doc, hash) hit: a hash may belong to several items."""
    lo = np.searchsorted(post_hash, hashes, "left")
    hi = np.searchsorted(post_hash, hashes, "right")
    n = hi - lo
    rep = np.repeat(np.arange(len(lo)), n)
    within = np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)
    return docs[rep], post_item[lo[rep] + within]


class BenchmarkIndex:
    """The benchmark's shingles, n-grams, MinHash signatures and LSH bands."""

    def __init__(self, texts: list[str], config: ScanConfig = ScanConfig()):
        self.config = c = config
        self.texts = texts
        buf, offsets = pack(texts)
        item_words = [K.word_hashes(buf, offsets[i], offsets[i + 1], K.BYTE_CLASSES) for i in range(len(texts))]
        self.n_words = np.array([len(w) for w in item_words], np.int64)
        judged = np.flatnonzero(self.n_words >= c.min_words)
        self.shingle_k = np.minimum(self.n_words, c.shingle_size)
        self.shingles = [np.unique(K.gram_hashes(w, int(k))) for w, k in zip(item_words, self.shingle_k)]
        self.ngrams = [np.unique(K.gram_hashes(w, min(len(w), c.ngram_size))) for w in item_words]
        self.shingle_hash, self.shingle_item = _postings(self.shingles, judged)
        self.ngram_hash, self.ngram_item = _postings(self.ngrams, judged)
        self.keys = np.unique(np.concatenate([self.shingle_hash, self.ngram_hash]))
        self.prefix_bits = K.new_filter()  # every min_words-gram of the judged items
        for i in judged:
            K.add_to_filter(self.prefix_bits, K.gram_hashes(item_words[i], c.min_words))
        self.shingle_sizes = np.unique(self.shingle_k[judged]).astype(np.int64)
        self.size_slot = np.searchsorted(self.shingle_sizes, self.shingle_k)  # column in collect_hits' counts
        self.n_shingles = np.array([len(s) for s in self.shingles], np.float64)
        self.sizes = np.unique(np.concatenate([self.shingle_sizes, np.minimum(self.n_words[judged], c.ngram_size)])
                               ).astype(np.int64)

        rng = np.random.default_rng(c.seed)
        self.perm_a = rng.integers(1, 1 << 63, c.num_perm, dtype=np.uint64) | np.uint64(1)
        self.perm_b = rng.integers(0, 1 << 63, c.num_perm, dtype=np.uint64)
        self.bands, self.rows = _optimal_param(c.jaccard_threshold, c.num_perm, 0.5, 0.5)
        self.band_mult = rng.integers(1, 1 << 63, (self.bands, self.rows), dtype=np.uint64) | np.uint64(1)
        sig, _, _ = self.signatures(buf, offsets)
        self.lsh_items = np.flatnonzero(self.n_words >= c.shingle_size)  # shorter items have no full shingle
        self.item_bands = self.band_hashes(sig[self.lsh_items])

    def signatures(self, buf, offsets):
        return K.scan_chunk(buf, offsets, K.BYTE_CLASSES, self.config.shingle_size, self.perm_a, self.perm_b,
                            self.sizes, self.config.min_words, self.prefix_bits, self.keys)

    def band_hashes(self, sig: np.ndarray) -> np.ndarray:
        """(n, bands) hashes of each band's ``rows`` signature values."""
        cols = sig[:, : self.bands * self.rows].astype(np.uint64).reshape(len(sig), self.bands, self.rows)
        with np.errstate(over="ignore"):
            return (cols * self.band_mult).sum(axis=2, dtype=np.uint64)

    def lsh_candidates(self, sig: np.ndarray, has_shingles: np.ndarray) -> set[tuple[int, int]]:
        """(doc, item) pairs that share a whole band of their MinHash signatures."""
        docs = np.flatnonzero(has_shingles)
        if not len(docs) or not len(self.lsh_items):
            return set()
        doc_bands = self.band_hashes(sig[docs])
        pairs: set[tuple[int, int]] = set()
        for band in range(self.bands):
            match = np.isin(doc_bands[:, band], self.item_bands[:, band])
            for d in np.flatnonzero(match):
                for i in np.flatnonzero(self.item_bands[:, band] == doc_bands[d, band]):
                    pairs.add((int(docs[d]), int(self.lsh_items[i])))
        return pairs


def _best_per_item(items: np.ndarray, containment: np.ndarray, jaccard: np.ndarray, docs: np.ndarray) -> np.ndarray:
    """Index of each item's best pair (highest containment, then Jaccard, then the earliest document, as
    across chunks and shards: so chunk boundaries never change a result)."""
    if not len(items):
        return np.zeros(0, np.int64)
    order = np.lexsort((-docs, jaccard, containment, items))
    last = np.r_[items[order][1:] != items[order][:-1], True]
    return order[last]


def exact_overlap(item: str, doc: str, k: int) -> tuple[float, float, str]:
    """(Jaccard, containment, excerpt) of ``k``-word shingles, on the word strings themselves."""
    a, b = words(item), words(doc)
    grams_a = {tuple(w for w, _, _ in a[i:i + k]) for i in range(len(a) - k + 1)}
    spans = {}
    for i in range(len(b) - k + 1):
        spans.setdefault(tuple(w for w, _, _ in b[i:i + k]), (b[i][1], b[i + k - 1][2]))
    inter = grams_a & spans.keys()
    if not grams_a or not inter:
        return 0.0, 0.0, ""
    jaccard = len(inter) / len(grams_a | spans.keys())
    start = min(spans[g][0] for g in inter)
    end = max(spans[g][1] for g in inter)
    return jaccard, len(inter) / len(grams_a), _excerpt(doc, start, end)


def _excerpt(doc: str, start: int, end: int, context: int = 80, limit: int = 600) -> str:
    """The matched region with some context; ``doc`` offsets are in ``prepare(doc)`` for non-ASCII text."""
    text = prepare(doc)
    lo, hi = max(0, start - context), min(len(text), end + context)
    snippet = text[lo:hi] if hi - lo <= limit else text[lo:lo + limit]
    return ("…" if lo > 0 else "") + snippet + ("…" if hi < len(text) else "")


def scan(index: BenchmarkIndex, corpus_chunks) -> ScanResult:
    """Stream ``(texts, [(source, row)])`` chunks through the index (one shard's worth, or a whole corpus)."""
    t0 = time.perf_counter()
    return merge(index, [(None, scan_part(index, corpus_chunks))], time.perf_counter() - t0)


def scan_part(index: BenchmarkIndex, corpus_chunks) -> Partial:
    """The partial result of the chunks; an item's match replaces an earlier one only when strictly better."""
    c = index.config
    part = Partial()
    counts = part.counts
    for texts, where in corpus_chunks:
        buf, offsets = pack(texts)
        sig, n_words, hits = index.signatures(buf, offsets)
        counts["documents"] += len(texts)
        counts["bytes"] += int(len(buf))
        lsh = index.lsh_candidates(sig, n_words >= c.shingle_size)
        counts["lsh_pairs"] += len(lsh)
        docs = np.flatnonzero(hits)
        starts = np.zeros(len(docs) + 1, np.int64)
        np.cumsum(hits[docs], out=starts[1:])
        hit_doc, hit_hash, distinct = K.collect_hits(buf, offsets, K.BYTE_CLASSES, index.sizes, c.min_words,
                                                     index.prefix_bits, index.keys, docs, starts, index.shingle_sizes)
        # exact n-gram detector: each item's first hit
        d_ng, i_ng = _expand(index.ngram_hash, index.ngram_item, hit_doc, hit_hash)
        for i, doc in np.unique(np.stack([i_ng, d_ng]), axis=1).T.tolist() if len(d_ng) else ():
            part.ngram.setdefault(i, where[doc])  # pairs sorted by item, then document: the first one wins
        # shingle overlap: |A ∩ B| per (doc, item) from distinct shared shingles
        pair_hash = np.unique(np.stack([hit_doc.astype(np.uint64), hit_hash]), axis=1) if len(hit_doc) else \
            np.zeros((2, 0), np.uint64)
        d_sh, i_sh = _expand(index.shingle_hash, index.shingle_item, pair_hash[0].astype(np.int64), pair_hash[1])
        if len(d_sh):
            pairs, inter = np.unique(np.stack([d_sh, i_sh]), axis=1, return_counts=True)
        else:
            pairs, inter = np.zeros((2, 0), np.int64), np.zeros(0, np.int64)
        counts["candidate_pairs"] += pairs.shape[1]
        size_a = index.n_shingles[pairs[1]]
        size_b = distinct[np.searchsorted(docs, pairs[0]), index.size_slot[pairs[1]]]
        containment = inter / np.maximum(size_a, 1)
        jaccard = inter / np.maximum(size_a + size_b - inter, 1)
        for j in _best_per_item(pairs[1], containment, jaccard, pairs[0]):
            d, i = int(pairs[0, j]), int(pairs[1, j])
            key = (float(containment[j]), float(jaccard[j]))
            if key > part.best.get(i, BestMatch()).key:
                jac_x, cont_x, excerpt = exact_overlap(index.texts[i], texts[d], int(index.shingle_k[i]))
                by = ("minhash-lsh", "shingle-index") if (d, i) in lsh else ("shingle-index",)
                part.best[i] = BestMatch(cont_x, jac_x, where[d][0], where[d][1], excerpt, by, key)
    return part


def merge(index: BenchmarkIndex, parts, seconds: float) -> ScanResult:
    """One result from ``(shard, partial)`` pairs in shard order: the first strictly best match and the first
    n-gram hit win, as in a sequential scan. A ranged shard's rows become file line numbers."""
    n = len(index.texts)
    best = [BestMatch() for _ in range(n)]
    ngram_where: list[tuple[str, int] | None] = [None] * n
    best_from, ngram_from = [None] * n, [None] * n
    counts = dict.fromkeys(COUNTS, 0)
    shards = 0
    for shard, part in parts:
        shards += 1
        for name in COUNTS:
            counts[name] += part.counts[name]
        for i, m in part.best.items():
            if m.key > best[i].key:
                best[i], best_from[i] = m, shard
        for i, w in part.ngram.items():
            if ngram_where[i] is None:
                ngram_where[i], ngram_from[i] = w, shard
    starts: dict[str, set[int]] = {}
    for shard in best_from + ngram_from:
        if shard is not None and shard.ranged:
            starts.setdefault(shard.source.path, set()).add(shard.start)
    before = {path: lines_before(path, offsets) for path, offsets in starts.items()}
    for i in range(n):
        if best_from[i] is not None and best_from[i].ranged:
            best[i] = replace(best[i], row=best[i].row + before[best[i].source][best_from[i].start])
        if ngram_from[i] is not None and ngram_from[i].ranged:
            path, row = ngram_where[i]
            ngram_where[i] = (path, row + before[path][ngram_from[i].start])
    stats = {**counts, "shards": shards, "seconds": seconds, "config": asdict(index.config),
             "lsh": {"bands": index.bands, "rows": index.rows}}
    ngram_hit = np.array([w is not None for w in ngram_where], bool)
    return ScanResult(index.config, n, index.n_words, best, ngram_hit, ngram_where, stats)
