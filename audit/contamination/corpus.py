"""Training corpora: files, folders, globs and `hf:` ids, and the text of each of their records.

Read through audit.contamination.shards, which holds nothing beyond one block, so memory does not grow
with the corpus.
"""

from __future__ import annotations

import glob
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from audit.data import FORMATS, file_format, iter_hub, iter_records, spec_records, text_of
from audit.errors import DataError
from audit.suite import DataSpec

TEXT_FIELDS = ("text", "sentence", "content", "document", "review", "Text")  # tried in order without --text-field


@dataclass(frozen=True)
class CorpusSource:
    """One corpus: a local file or an `hf:` dataset id, and the field holding the text; or a suite's
    split (``spec``: its columns and text template apply)."""

    path: str
    text_field: str | None = None
    hf_config: str | None = None
    hf_split: str | None = None
    spec: DataSpec | None = None

    @classmethod
    def of_split(cls, spec: DataSpec) -> "CorpusSource":
        return cls(spec.path, spec.text_field, spec.hf_config, spec.hf_split, spec)

    def check(self) -> None:
        """Read the first document only, so an unreadable, empty or mislabelled corpus file fails before any
        model loads (the full scan streams it later)."""
        if self.spec is not None or self.path.startswith("hf:"):
            return  # suite splits are read in full up front; hub streams are not fetched twice
        for row, record in iter_records(Path(self.path)):
            record_text(record, self, row)
            return
        raise DataError("corpus has no documents", self.path, "give a non-empty file (one document per line for .txt)")

    def blocks(self) -> Iterator[list[tuple[int, str]]]:
        """Lists of (line or row number, text), one document each, record by record (shards.read has the
        fast path for .jsonl and .txt files)."""
        if self.spec is not None:
            return _batched((row, text_of(record, self.spec, f"{self.path}:{row}"))
                            for row, record in spec_records(self.spec))
        records = iter_hub(self.path, self.hf_config, self.hf_split) if self.path.startswith("hf:") \
            else iter_records(Path(self.path))
        return _batched((row, record_text(record, self, row)) for row, record in records)


def expand(paths, text_field: str | None = None) -> list[CorpusSource]:
    """Files, folders (every supported file below, sorted) and globs; `hf:` ids pass through."""
    sources: list[CorpusSource] = []
    for raw in paths:
        raw = str(raw)
        if raw.startswith("hf:"):
            sources.append(CorpusSource(raw, text_field))
            continue
        path = Path(raw)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and _supported(p))
        elif path.is_file():
            file_format(path)  # rejects an unsupported type with a clear message
            found = [path]
        else:
            found = sorted(Path(p) for p in glob.glob(raw, recursive=True) if Path(p).is_file() and _supported(Path(p)))
        if not found:
            raise DataError("no corpus files found", raw,
                            f"give a file, a folder or a glob of {', '.join(FORMATS)} files (optionally .gz or .zst)")
        sources.extend(CorpusSource(str(p), text_field) for p in found)
    return sources


def _supported(path: Path) -> bool:
    try:
        file_format(path)
        return True
    except DataError:
        return False


def record_text(record: dict, source: CorpusSource, row: int) -> str:
    if source.text_field:
        if source.text_field not in record:
            raise DataError(f"no field '{source.text_field}' (fields: {', '.join(map(str, record))})",
                            f"{source.path}:{row}", "pass --text-field with the column that holds the text")
        return str(record[source.text_field] or "")
    for name in TEXT_FIELDS:
        if name in record:
            return str(record[name] or "")
    raise DataError(f"no text field (fields: {', '.join(map(str, record))})", f"{source.path}:{row}",
                    "pass --text-field with the column that holds the text")


def _batched(items: Iterator, size: int = 4096) -> Iterator[list]:
    batch = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
