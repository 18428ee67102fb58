"""Compiled hashing of word n-grams and MinHash signatures over UTF-8 byte buffers.

Why not datasketch or Python strings: on 1 KB documents datasketch's per-shingle ``update``
loop runs ~0.14k docs/s and ``MinHash.bulk`` ~1.7k, and building one Python string per shingle
caps a pipeline at ~10 MB/s/core. Here a chunk of documents is one byte buffer plus offsets,
and one numba pass per document splits words, hashes them, rolls n-gram hashes and takes the
128 minima, in parallel over documents.

Tokenization (mirrored exactly by ``normalize.words``): ASCII letters and digits and every
non-ASCII byte are word bytes (ASCII lower-cased); an apostrophe is dropped; every other
ASCII byte separates words; a clitic token (``'s 're 've 'll 'd 'm 't`` or ``n't``) joins
the word before it, so ``it 's`` == ``it's`` == ``its`` and ``do n't`` == ``don't``.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

FNV_OFFSET = np.uint64(0xCBF29CE484222325)
FNV_PRIME = np.uint64(0x100000001B3)
GRAM_MULT = np.uint64(0x9E3779B97F4A7C15)
SEPARATOR, WORD, DROPPED = 0, 1, 2


def byte_classes() -> np.ndarray:
    cls = np.full(256, WORD, np.uint8)
    for c in range(128):
        if not chr(c).isalnum():
            cls[c] = SEPARATOR
    cls[ord("'")] = DROPPED
    return cls


BYTE_CLASSES = byte_classes()
CLITICS = ("s", "re", "ve", "ll", "d", "m", "t")


@njit(cache=True, inline="always")
def _mix(h):
    """splitmix64's finalizer: spreads FNV and polynomial hashes over all 64 bits."""
    h = (h ^ (h >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    h = (h ^ (h >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return h ^ (h >> np.uint64(31))


@njit(cache=True, inline="always")
def _lower(c):
    return c + 32 if 65 <= c <= 90 else c


@njit(cache=True)
def _is_clitic(buf, i, end, cls):
    """Does a clitic token (``'s``, ``'re``, ... or ``n't``) start at ``buf[i]``?"""
    if buf[i] == 39:  # apostrophe, then 1-2 letters, then a separator
        j = i + 1
        while j < end and cls[buf[j]] == 1 and j - i <= 3:
            j += 1
        if j < end and cls[buf[j]] != 0:
            return False
        n = j - i - 1
        if n == 1:
            c = _lower(buf[i + 1])
            return c == 115 or c == 100 or c == 109 or c == 116  # s d m t
        if n == 2:
            a, b = _lower(buf[i + 1]), _lower(buf[i + 2])
            return (a == 114 and b == 101) or (a == 118 and b == 101) or (a == 108 and b == 108)  # re ve ll
        return False
    if _lower(buf[i]) == 110 and i + 2 < end and buf[i + 1] == 39 and _lower(buf[i + 2]) == 116:  # n't
        return i + 3 == end or cls[buf[i + 3]] == 0
    return False


@njit(cache=True)
def word_hashes(buf, start, end, cls):
    """Hashes of the words of ``buf[start:end]`` (one document), in order."""
    raw = np.empty(end - start + 1, np.uint64)
    n = 0
    h = FNV_OFFSET
    in_token = False
    has_bytes = False
    i = start
    while i < end:
        c = buf[i]
        k = cls[c]
        if k == 0:
            if in_token and has_bytes:
                raw[n] = h
                n += 1
            in_token = False
            i += 1
            continue
        if not in_token:
            in_token = True
            if n > 0 and _is_clitic(buf, i, end, cls):
                n -= 1  # reopen the previous word
                h = raw[n]
                has_bytes = True
            else:
                h = FNV_OFFSET
                has_bytes = False
        if k == 1:
            h = (h ^ np.uint64(_lower(c))) * FNV_PRIME
            has_bytes = True
        i += 1
    if in_token and has_bytes:
        raw[n] = h
        n += 1
    out = np.empty(n, np.uint64)
    for j in range(n):
        out[j] = _mix(raw[j])
    return out


@njit(cache=True, inline="always")
def _gram(words, i, k):
    h = np.uint64(k)
    for j in range(i, i + k):
        h = h * GRAM_MULT + words[j]
    return _mix(h)


@njit(cache=True)
def gram_hashes(words, k):
    """Hashes of every run of ``k`` consecutive words (empty when there are fewer words)."""
    m = max(len(words) - k + 1, 0)
    out = np.empty(m, np.uint64)
    for i in range(m):
        out[i] = _gram(words, i, k)
    return out


@njit(cache=True, inline="always")
def _in_bits(bits, h):
    slot = h >> np.uint64(40)  # top 24 bits choose one of 2^24 bits
    return (bits[slot >> np.uint64(6)] >> (slot & np.uint64(63))) & np.uint64(1)


@njit(cache=True)
def _doc_hits(words, sizes, min_words, prefix_bits, keys, out, pos):
    """Count (and, when ``out`` has room, record) the document's k-grams (k in ``sizes``) that are
    benchmark n-grams (sorted ``keys``). Every benchmark n-gram starts with a benchmark
    ``min_words``-gram, so one filter probe per position rules out almost all positions."""
    hits = 0
    for i in range(len(words) - min_words + 1):
        if not _in_bits(prefix_bits, _gram(words, i, min_words)):
            continue
        for k in sizes:
            if i + k > len(words):
                break
            h = _gram(words, i, k)
            j = np.searchsorted(keys, h)
            if j < len(keys) and keys[j] == h:
                if pos + hits < len(out):
                    out[pos + hits] = h
                hits += 1
    return hits


@njit(parallel=True, cache=True)
def scan_chunk(buf, offsets, cls, shingle_k, a, b, sizes, min_words, prefix_bits, keys):
    """Per document: MinHash signature of its ``shingle_k``-grams, its word count, and how many
    of its k-grams (k in ``sizes``, ascending) are benchmark n-grams (``keys``)."""
    n_docs = len(offsets) - 1
    n_perm = len(a)
    sig = np.empty((n_docs, n_perm), np.uint32)
    n_words = np.zeros(n_docs, np.int64)
    hits = np.zeros(n_docs, np.int64)
    nowhere = np.empty(0, np.uint64)
    for d in prange(n_docs):
        words = word_hashes(buf, offsets[d], offsets[d + 1], cls)
        n_words[d] = len(words)
        mins = np.full(n_perm, np.uint64(0xFFFFFFFF))
        for i in range(len(words) - shingle_k + 1):
            x = _gram(words, i, shingle_k) & np.uint64(0xFFFFFFFF)
            for p in range(n_perm):
                v = (a[p] * x + b[p]) >> np.uint64(32)  # multiply-add-shift: strongly universal on 32-bit x
                if v < mins[p]:
                    mins[p] = v
        for p in range(n_perm):
            sig[d, p] = np.uint32(mins[p])
        hits[d] = _doc_hits(words, sizes, min_words, prefix_bits, keys, nowhere, 0)
    return sig, n_words, hits


@njit(parallel=True, cache=True)
def collect_hits(buf, offsets, cls, sizes, min_words, prefix_bits, keys, docs, starts, shingle_sizes):
    """For the documents ``docs`` (hit counts laid out at ``starts``): every hit as
    (document, n-gram hash), and each document's number of distinct k-grams per shingle size."""
    hit_doc = np.empty(starts[-1], np.int64)
    hit_hash = np.empty(starts[-1], np.uint64)
    distinct = np.zeros((len(docs), len(shingle_sizes)), np.int64)
    for j in prange(len(docs)):
        words = word_hashes(buf, offsets[docs[j]], offsets[docs[j] + 1], cls)
        n = _doc_hits(words, sizes, min_words, prefix_bits, keys, hit_hash, starts[j])
        hit_doc[starts[j]:starts[j] + n] = docs[j]
        for s in range(len(shingle_sizes)):
            distinct[j, s] = len(np.unique(gram_hashes(words, shingle_sizes[s])))
    return hit_doc, hit_hash, distinct


@njit(cache=True)
def add_to_filter(bits, hashes):
    for h in hashes:
        slot = h >> np.uint64(40)
        bits[slot >> np.uint64(6)] |= np.uint64(1) << (slot & np.uint64(63))


def new_filter() -> np.ndarray:
    return np.zeros((1 << 24) // 64, np.uint64)  # 2 MiB of bits
