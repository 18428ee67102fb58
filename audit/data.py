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
    """Texts with integer labels indexing the suite's label list; ``rows`` are source row numbers."""

    name: str
    texts: list[str]
    labels: np.ndarray
    rows: np.ndarray

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, idx: np.ndarray) -> "Split":
        return Split(self.name, [self.texts[i] for i in idx], self.labels[idx], self.rows[idx])


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
    if not path.is_file():
        raise DataError("file not found", str(path), "check the path")
    if fmt == ".parquet":
        yield from _iter_parquet(path)
        return
    opener = gzip.open if path.suffix.lower() == ".gz" else open
    try:
        with opener(path, "rb") as raw:
            stream = io.TextIOWrapper(raw, encoding="utf-8", newline="")
            if fmt == ".jsonl":
                for n, line in enumerate(stream, 1):
                    if line.strip():
                        yield n, _json_line(line, path, n)
            elif fmt == ".txt":
                for n, line in enumerate(stream, 1):
                    if line.strip():
                        yield n, {"text": line.rstrip("\r\n")}
            else:
                quoting = csv.QUOTE_NONE if fmt == ".tsv" else csv.QUOTE_MINIMAL
                reader = csv.reader(stream, delimiter="\t" if fmt == ".tsv" else ",", quoting=quoting)
                header = next(reader, None)
                if header is None:
                    return
                for row in reader:
                    if row:
                        yield reader.line_num, dict(zip(header, row))
    except UnicodeDecodeError as exc:
        raise DataError(f"not UTF-8 text (byte {exc.start} of a line is {exc.object[exc.start:exc.start + 1]!r})",
                        str(path), "re-encode the file as UTF-8, e.g. iconv -f latin1 -t utf-8") from None
    except (OSError, EOFError, csv.Error) as exc:
        raise DataError(f"cannot read file ({exc})", str(path), "check that the file is complete and of its stated type") from None


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


def _iter_hub(spec: DataSpec) -> Iterator[tuple[int, dict]]:
    """Stream an `hf:` dataset (needs network access and the `datasets` package)."""
    import datasets

    try:
        ds = datasets.load_dataset(spec.path[3:], spec.hf_config, split=spec.hf_split or "train", streaming=True)
        for n, record in enumerate(ds, 1):
            yield n, record
    except Exception as exc:  # hub errors come in many types; all mean "cannot fetch"
        raise DataError(f"cannot load hub dataset ({type(exc).__name__}: {exc})", spec.path,
                        "check the id, hf_config and hf_split, and that you are online, or use a local file") from None


def read_split(spec: DataSpec, labels: tuple[str, ...]) -> Split:
    """Read one labelled split, mapping raw label values onto ``labels`` indices."""
    records = _iter_hub(spec) if spec.is_hub else iter_records(Path(spec.path))
    texts, ys, rows = [], [], []
    for n, record in records:
        where = f"{spec.path}:{n}"
        if spec.text_field not in record:
            raise DataError(f"no field '{spec.text_field}' (fields: {', '.join(map(str, record))})", where,
                            "set text_field to the column that holds the text")
        if spec.label_field not in record:
            raise DataError(f"no field '{spec.label_field}' (fields: {', '.join(map(str, record))})", where,
                            "set label_field to the column that holds the label")
        texts.append(str(record[spec.text_field]))
        ys.append(label_index(record[spec.label_field], spec, labels, where))
        rows.append(n)
    if not texts:
        raise DataError("no rows", spec.path, "the split needs at least one labelled example")
    return Split(spec.name, texts, np.asarray(ys, dtype=np.int64), np.asarray(rows, dtype=np.int64))


def label_index(raw, spec: DataSpec, labels: tuple[str, ...], where: str) -> int:
    value = str(raw).strip()
    name = spec.label_map.get(value) if spec.label_map else value
    if name not in labels:
        known = sorted(spec.label_map) if spec.label_map else list(labels)
        raise DataError(f"label '{value}' is not one of {known}", where,
                        f"fix the row, or add it to label_map for '{spec.name}' in the suite")
    return labels.index(name)
