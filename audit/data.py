"""Read labelled splits from local files (tsv/csv/jsonl/parquet/txt, optionally .gz) or `hf:` datasets.

TSV files are read unquoted (``QUOTE_NONE``): benchmark text contains literal ``"``
characters (see suites/data/SOURCES.md), and CSV quoting rules would corrupt it.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from audit.errors import DataError
from audit.suite import DataSpec

FORMATS = (".tsv", ".csv", ".jsonl", ".parquet", ".txt")


@dataclass(frozen=True)
class Split:
    """Texts with integer labels indexing the suite's label list; ``rows`` are source row numbers;
    ``groups`` (contrast sets) the pair each row belongs to."""

    name: str
    texts: list[str]
    labels: np.ndarray
    rows: np.ndarray
    groups: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, idx: np.ndarray) -> "Split":
        return Split(self.name, [self.texts[i] for i in idx], self.labels[idx], self.rows[idx],
                     None if self.groups is None else self.groups[idx])

    def sample(self, size: int | None, seed: int) -> "Split":
        """A seeded sample of ``size`` rows in source order (whole groups when grouped), or the whole split."""
        if size is None or size >= len(self):
            return self
        rng = np.random.default_rng(seed)
        if self.groups is None:
            return self.subset(np.sort(rng.choice(len(self), size=size, replace=False)))
        ids = np.unique(self.groups)
        keep = rng.choice(ids, size=max(1, min(len(ids), size * len(ids) // len(self))), replace=False)
        return self.subset(np.flatnonzero(np.isin(self.groups, keep)))


def file_format(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    fmt = suffixes[-1] if suffixes else ""
    if fmt not in FORMATS:
        raise DataError(f"unsupported file type '{fmt or path.name}'", str(path),
                        f"use one of {', '.join(FORMATS)} (optionally .gz)")
    return fmt


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def iter_records(path: Path, fmt: str | None = None) -> Iterator[tuple[int, dict]]:
    """Yield (line or row number, record) from a local file, streaming; text must be UTF-8."""
    fmt = fmt or file_format(path)
    if fmt == ".parquet":
        _must_exist(path)
        yield from _iter_parquet(path)
    elif fmt == ".txt":
        yield from ((n, {"text": line}) for n, line in iter_lines(path))
    else:
        yield from _read_text(path, lambda stream: _iter_table(stream, fmt, path))


def iter_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, line) of the non-blank lines of a text file (optionally .gz)."""
    for block in iter_line_blocks(path):
        yield from block


def iter_line_blocks(path: Path, hint: int = 1 << 22) -> Iterator[list[tuple[int, str]]]:
    """``iter_lines`` in lists of about ``hint`` characters: block reads cost far less per line."""
    def parse(stream):
        first = 1
        while lines := stream.readlines(hint):
            yield [(first + i, line.rstrip("\r\n")) for i, line in enumerate(lines) if not line.isspace()]
            first += len(lines)

    return _read_text(path, parse)


def _must_exist(path: Path) -> None:
    if not path.is_file():
        raise DataError("file not found", str(path), "check the path")


def _read_text(path: Path, parse) -> Iterator:
    """Stream ``parse(text stream)`` over a UTF-8 file, turning read errors into one-line DataErrors."""
    _must_exist(path)
    opener = gzip.open if path.suffix.lower() == ".gz" else open
    try:
        with opener(path, "rb") as raw:
            yield from parse(io.TextIOWrapper(raw, encoding="utf-8", newline=""))
    except UnicodeDecodeError as exc:
        raise DataError(f"not UTF-8 text (byte {exc.start} of a line is {exc.object[exc.start:exc.start + 1]!r})",
                        str(path), "re-encode the file as UTF-8, e.g. iconv -f latin1 -t utf-8") from None
    except (OSError, EOFError, csv.Error) as exc:
        raise DataError(f"cannot read file ({exc})", str(path), "check that the file is complete and of its stated type") from None


def _iter_table(stream, fmt: str, path: Path) -> Iterator[tuple[int, dict]]:
    if fmt == ".jsonl":
        for n, line in enumerate(stream, 1):
            if line.strip():
                yield n, _json_line(line, path, n)
        return
    quoting = csv.QUOTE_NONE if fmt == ".tsv" else csv.QUOTE_MINIMAL
    reader = csv.reader(stream, delimiter="\t" if fmt == ".tsv" else ",", quoting=quoting)
    header = next(reader, None)
    if header is None:
        return
    for row in reader:
        if row:
            yield reader.line_num, dict(zip(header, row))


def _json_line(line: str, path: Path, n: int) -> dict:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise DataError(f"invalid JSON ({exc.msg})", f"{path}:{n}", "write one JSON object per line") from None
    if not isinstance(record, dict):
        raise DataError("a JSON line must be an object", f"{path}:{n}", 'write {"text": ..., "label": ...}')
    return record


def _iter_parquet(path: Path) -> Iterator[tuple[int, dict]]:
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises several types for a damaged file
        raise DataError(f"cannot read parquet ({exc})", str(path), "check the file") from None
    n = 0
    for batch in pf.iter_batches(batch_size=4096):
        for record in batch.to_pylist():
            n += 1
            yield n, record


def iter_hub(path: str, config: str | None = None, split: str | None = None) -> Iterator[tuple[int, dict]]:
    """Stream an `hf:<dataset id>` (needs network access and the `datasets` package)."""
    import datasets

    try:
        ds = datasets.load_dataset(path[3:], config, split=split or "train", streaming=True)
        for n, record in enumerate(ds, 1):
            yield n, record
    except Exception as exc:  # hub errors come in many types; all mean "cannot fetch"
        raise DataError(f"cannot load hub dataset ({type(exc).__name__}: {exc})", path,
                        "check the id, hf_config and hf_split, and that you are online, or use a local file") from None


def read_split(spec: DataSpec, labels: tuple[str, ...]) -> Split:
    """Read one labelled split, mapping raw label values onto ``labels`` indices."""
    records = iter_hub(spec.path, spec.hf_config, spec.hf_split) if spec.is_hub else iter_records(Path(spec.path))
    texts, ys, rows, groups = [], [], [], []
    fields = {"text_field": spec.text_field, "label_field": spec.label_field, "pair_field": spec.pair_field}
    for n, record in records:
        where = f"{spec.path}:{n}"
        for key, name in fields.items():
            if name is not None and name not in record:
                raise DataError(f"no field '{name}' (fields: {', '.join(map(str, record))})", where,
                                f"set {key} to the column that holds the {key.split('_')[0]}")
        texts.append(str(record[spec.text_field]))
        ys.append(label_index(record[spec.label_field], spec, labels, where))
        rows.append(n)
        if spec.pair_field:
            groups.append(str(record[spec.pair_field]))
    if not texts:
        raise DataError("no rows", spec.path, "the split needs at least one labelled example")
    return Split(spec.name, texts, np.asarray(ys, dtype=np.int64), np.asarray(rows, dtype=np.int64),
                 np.asarray(groups) if spec.pair_field else None)


def label_index(raw, spec: DataSpec, labels: tuple[str, ...], where: str) -> int:
    value = str(raw).strip()
    name = spec.label_map.get(value) if spec.label_map else value
    if name not in labels:
        known = sorted(spec.label_map) if spec.label_map else list(labels)
        raise DataError(f"label '{value}' is not one of {known}", where,
                        f"fix the row, or add it to label_map for '{spec.name}' in the suite")
    return labels.index(name)
