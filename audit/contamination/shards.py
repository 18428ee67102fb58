"""Corpus shards, the contamination scan's unit of work, and the fast way to read them.

A shard is one corpus file, or a byte range of a large uncompressed .jsonl/.txt file (a line belongs to the
range it starts in; rows are then counted from the range's first line, and `lines_before` turns them into
file line numbers). Every executor scans shards independently and merges them in plan order, so a result
does not depend on which worker scanned what, or on a resumed run.

Reading must not dominate the scan (measured in benchmarks/scale_bench.py): lines are split from 4 MiB
blocks rather than read one by one, JSON is parsed by orjson, gzip decompressed by isal and zstd by
zstandard (audit.data picks the codec from the file's first bytes).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import orjson

from audit.contamination.corpus import CorpusSource, record_text
from audit.data import READ_ERRORS, compression_of, decode_line, file_format, json_record, open_raw, read_error
from audit.errors import DataError

RANGE_BYTES = 256 << 20  # an uncompressed file larger than this is split into byte ranges of this size
BLOCK_BYTES = 4 << 20


@dataclass(frozen=True)
class Shard:
    source: CorpusSource
    start: int = 0
    end: int | None = None  # None: to the end of the file
    size: int = 0  # bytes on disk it covers (progress, ETA); 0 when unknown (a hub stream)

    @property
    def key(self) -> str:
        """Names the shard in resume records and errors."""
        return self.source.path if self.end is None else f"{self.source.path}@{self.start}-{self.end}"

    @property
    def ranged(self) -> bool:
        return self.end is not None


def plan(sources: list[CorpusSource], range_bytes: int = RANGE_BYTES) -> list[Shard]:
    """The shards of the corpora, in a fixed order (sources in order, ranges by offset)."""
    shards = []
    for source in sources:
        if source.spec is not None or source.path.startswith("hf:"):
            shards.append(Shard(source))
            continue
        path = Path(source.path)
        size = path.stat().st_size
        splittable = file_format(path) in (".jsonl", ".txt") and compression_of(path) is None
        if not splittable or size <= range_bytes:
            shards.append(Shard(source, size=size))
            continue
        shards.extend(Shard(source, start, min(start + range_bytes, size), min(range_bytes, size - start))
                      for start in range(0, size, range_bytes))
    return shards


def read(shard: Shard, block_bytes: int = BLOCK_BYTES) -> Iterator[list[tuple[int, str]]]:
    """Lists of (row, text), one per document; rows are line numbers (counted from the range's first line
    for a ranged shard)."""
    source = shard.source
    if source.spec is not None or source.path.startswith("hf:"):
        yield from source.blocks()
        return
    fmt = file_format(Path(source.path))
    if fmt not in (".jsonl", ".txt"):
        yield from source.blocks()  # tables and parquet: audit.data's readers
        return
    for first, lines in _line_blocks(shard, block_bytes):
        if fmt == ".txt":
            yield [(first + i, _decode(line, shard, first + i)) for i, line in enumerate(lines) if line.strip()]
        else:
            yield [(first + i, record_text(_parse(line, shard, first + i), source, first + i))
                   for i, line in enumerate(lines) if line.strip()]


def chunks(shards: list[Shard], max_chars: int = 4 << 20, max_docs: int = 20000
           ) -> Iterator[tuple[list[str], list[tuple[str, int]]]]:
    """(texts, [(source path, row)]) chunks of about ``max_chars`` characters, at most ``max_docs`` documents:
    what one scan step holds in memory, whatever the shard's size."""
    texts: list[str] = []
    where: list[tuple[str, int]] = []
    size = 0
    for shard in shards:
        n_docs = 0
        for block in read(shard):
            pos = 0
            while pos < len(block):
                part = block[pos:pos + max_docs - len(texts)]
                pos += len(part)
                texts.extend(text for _, text in part)
                where.extend((shard.source.path, row) for row, _ in part)
                size += sum(len(text) for _, text in part)
                n_docs += len(part)
                if size >= max_chars or len(texts) >= max_docs:
                    yield texts, where
                    texts, where, size = [], [], 0
        if n_docs == 0 and not shard.ranged:  # a range may hold no line start; a file must hold a document
            raise DataError("corpus has no documents", shard.source.path,
                            "give a non-empty file (one document per line for .txt)")
    if texts:
        yield texts, where


def _line_blocks(shard: Shard, block_bytes: int) -> Iterator[tuple[int, list[bytes]]]:
    """(row of the first line, lines without their newline) for the lines that start inside the shard."""
    path = Path(shard.source.path)
    try:
        with open_raw(path) as f:
            pos, row = 0, 1
            if shard.start:
                f.seek(shard.start - 1)
                pos = shard.start - 1 + len(f.readline())  # the line in progress belongs to the previous range
            rest = b""
            while shard.end is None or pos < shard.end:
                block = f.read(block_bytes)
                if not block:
                    if rest:
                        yield row, [rest.rstrip(b"\r")]
                    return
                block = rest + block
                cut = block.rfind(b"\n") + 1
                if not cut:
                    rest = block
                    continue
                rest = block[cut:]
                lines = block[:cut - 1].split(b"\n")
                if shard.end is not None and pos + cut > shard.end:  # keep the lines that start before the end
                    lines = lines[:1 + block.count(b"\n", 0, shard.end - pos - 1)]
                    rest = b""
                yield row, [line.rstrip(b"\r") for line in lines]
                row += len(lines)
                pos += cut
    except READ_ERRORS as exc:
        raise read_error(exc, shard.key) from None


def _parse(line: bytes, shard: Shard, row: int) -> dict:
    try:  # the fast path; json_record formats the error (the location string is built only then)
        record = orjson.loads(line)
        if type(record) is dict:
            return record
    except orjson.JSONDecodeError:
        pass
    return json_record(line, where(shard, row))


def _decode(line: bytes, shard: Shard, row: int) -> str:
    try:
        return line.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError:
        return decode_line(line, where(shard, row))


def where(shard: Shard, row: int) -> str:
    return f"{shard.source.path}:{row}" if not shard.ranged else f"{shard.key}: line {row} of the range"


def lines_before(path: str, starts: set[int]) -> dict[int, int]:
    """For each range start, the number of lines of the file that start before it, which turns a ranged
    shard's rows into line numbers: one pass up to the last start, done only for the rows a report names."""
    out, newlines, pos = {}, 0, 0
    with open(path, "rb") as f:
        for start in sorted(starts):
            while pos < start - 1:  # a line starts at 0 and after every newline before start - 1
                block = f.read(min(start - 1 - pos, BLOCK_BYTES))
                if not block:
                    break
                newlines += block.count(b"\n")
                pos += len(block)
            out[start] = newlines + 1 if start else 0
    return out
