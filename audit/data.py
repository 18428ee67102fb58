"""Read labelled splits from local files (tsv/csv/jsonl/parquet/txt, optionally gzip or zstd) or `hf:` datasets.

TSV files are read unquoted (``QUOTE_NONE``): benchmark text contains literal ``"``
characters (see suites/data/SOURCES.md), and CSV quoting rules would corrupt it.
Compression is recognised by the file's first bytes, not its name; every error names the
file and, where there is one, the line.
"""

from __future__ import annotations

import csv
import dataclasses
import gzip
import io
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import orjson
import zstandard
from isal import igzip
from isal.isal_zlib import IsalError

from audit.errors import DataError
from audit.causal_lm import ChoiceContexts, Continuations
from audit.generation import Query
from audit.suite import (CHOICES_SLOT, GENERATE, LAST_WORD, MULTIPLE_CHOICE, PERPLEXITY, DataSpec, Prompt, Suite,
                         TaskSpec, template_fields)

FORMATS = (".tsv", ".csv", ".jsonl", ".parquet", ".txt")
FIELD_LIMIT = 4 << 20  # characters in one CSV/TSV field; a longer one is nearly always an unclosed quote
csv.field_size_limit(max(csv.field_size_limit(), FIELD_LIMIT))
COMPRESSED = {".gz": "gzip", ".zst": "zstd"}  # name suffixes; the file's first bytes decide
# What a damaged compressed file raises: isal's gzip (3x the standard library's speed, measured in
# benchmarks/scale_bench.py) has its own error type, zstandard too.
READ_ERRORS = (OSError, EOFError, IsalError, zstandard.ZstdError)
MAGIC = {b"\x1f\x8b": "gzip", b"\x28\xb5\x2f\xfd": "zstd", b"BZh": "bzip2", b"\xfd7zXZ\x00": "xz",
         b"PK\x03\x04": "zip", b"PAR1": "parquet"}


@dataclass(frozen=True)
class Split:
    """Items with integer labels indexing the suite's label list; ``rows`` are source row numbers.

    ``texts`` are what text analyses read (contamination, length, rarity, report examples); ``items``, when
    given, are what a causal LM scores (a multiple-choice item's context and choices, a last word), so a
    probe scores ``inputs``: the items, else the texts. ``groups`` (contrast sets) name the pair each row
    belongs to; ``slices`` hold fields to slice by (e.g. an MMLU subject). A multiple-choice split keeps its
    source ``records`` (and each item's few-shot ``prefixes``) so that probes can render its items again
    another way (another prompt, another choice order, an edited question: ``render_choices``)."""

    name: str
    texts: list[str]
    labels: np.ndarray
    rows: np.ndarray
    groups: np.ndarray | None = None
    items: list | None = None
    slices: dict[str, np.ndarray] | None = None
    records: list[dict] | None = None
    prefixes: list[str] | None = None

    def __len__(self) -> int:
        return len(self.texts)

    @property
    def inputs(self) -> list:
        return self.items if self.items is not None else self.texts

    def subset(self, idx: np.ndarray) -> "Split":
        pick = lambda xs: None if xs is None else [xs[i] for i in idx]
        return Split(self.name, pick(self.texts), self.labels[idx], self.rows[idx],
                     None if self.groups is None else self.groups[idx], pick(self.items),
                     None if self.slices is None else {k: v[idx] for k, v in self.slices.items()},
                     pick(self.records), pick(self.prefixes))

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
    if suffixes and suffixes[-1] in COMPRESSED:
        suffixes = suffixes[:-1]
    fmt = suffixes[-1] if suffixes else ""
    if fmt not in FORMATS:
        raise DataError(f"unsupported file type '{fmt or path.name}'", str(path),
                        f"use one of {', '.join(FORMATS)} (optionally .gz or .zst)")
    return fmt


def compression_of(path: Path) -> str | None:
    """The container the file's first bytes name (gzip, zstd, parquet, ...), or None for plain bytes."""
    with open(path, "rb") as f:
        head = f.read(6)
    return next((name for magic, name in MAGIC.items() if head.startswith(magic)), None)


def open_raw(path: Path, fmt: str | None = None):
    """The file's bytes, decompressed when its first bytes say gzip or zstd; other containers are named, not
    guessed."""
    if not path.is_file():
        raise DataError("is a directory, not a data file" if path.is_dir() else "file not found", str(path),
                        "check the path")
    kind = compression_of(path)
    if kind == "gzip":
        return igzip.open(path, "rb")
    if kind == "zstd":
        return io.BufferedReader(zstandard.ZstdDecompressor().stream_reader(open(path, "rb"), closefd=True), 1 << 20)
    named = COMPRESSED.get(path.suffix.lower())
    if named:
        raise DataError(f"named {path.suffix} but not {named}-compressed", str(path),
                        f"rename it without {path.suffix}, or compress it with {named}")
    fmt = fmt or file_format(path)
    if kind == "parquet" and fmt != ".parquet":
        raise DataError(f"is a parquet file, not {fmt}", str(path), "name it .parquet")
    if kind in ("bzip2", "xz", "zip"):
        raise DataError(f"is {kind}-compressed", str(path), "decompress it, or recompress it with gzip or zstd")
    return open(path, "rb")


def _lines(path: Path, fmt: str) -> Iterator[tuple[int, str]]:
    """(line number, decoded line with its newline); a byte that is not UTF-8 is an error naming its line."""
    try:
        with open_raw(path, fmt) as raw:
            for n, line in enumerate(raw, 1):
                text = decode_line(line, f"{path}:{n}")
                yield n, text.removeprefix("\ufeff") if n == 1 else text
    except READ_ERRORS as exc:
        raise read_error(exc, str(path)) from None


def read_error(exc: Exception, where: str) -> DataError:
    """What a damaged compressed file means: cut short, or followed by bytes that are not its format."""
    if isinstance(exc, gzip.BadGzipFile):  # gzip data read in full, then bytes that start no gzip member
        return DataError(f"bytes after the end of its gzip data are not gzip ({exc}): trailing garbage, not a "
                         "truncated file", where, "re-compress it: gzip -dc FILE > plain; gzip plain")
    if isinstance(exc, EOFError):
        return DataError(f"is truncated: its compressed data ends early ({exc})", where,
                         "copy or download the whole file again")
    return DataError(f"cannot read file ({exc})", where, "check that the file is complete and of its stated type")


def iter_records(path: Path, fmt: str | None = None, columns: tuple[str, ...] | None = None
                 ) -> Iterator[tuple[int, dict]]:
    """Yield (line or row number, record) from a local file, streaming; text must be UTF-8.
    ``columns`` names the fields of a headerless .csv/.tsv file."""
    fmt = fmt or file_format(path)
    if fmt == ".parquet":
        yield from _iter_parquet(path)
    elif fmt == ".txt":
        yield from ((n, {"text": line.rstrip("\r\n")}) for n, line in _lines(path, fmt) if line.strip())
    elif fmt == ".jsonl":
        yield from ((n, json_record(line, f"{path}:{n}")) for n, line in _lines(path, fmt) if line.strip())
    else:
        yield from _iter_table(path, fmt, columns)


def _iter_table(path: Path, fmt: str, columns: tuple[str, ...] | None) -> Iterator[tuple[int, dict]]:
    tsv = fmt == ".tsv"
    lines = _lines(path, fmt)
    reader = csv.reader((line for _, line in lines), delimiter="\t" if tsv else ",",
                        quoting=csv.QUOTE_NONE if tsv else csv.QUOTE_MINIMAL)
    try:
        header = list(columns) if columns else next(reader, None)
        if header is None:
            return
        for row in reader:
            if not row or row == [""]:
                continue
            if len(row) != len(header):
                what = "the suite's columns list" if columns else "the header has"
                raise DataError(f"line {reader.line_num} has {len(row)} field(s); {what} {len(header)} "
                                f"({', '.join(header)})", f"{path}:{reader.line_num}",
                                "give each line one field per column, separated by tabs (TSV is never quoted, so a text "
                                "may not hold a tab)" if tsv else "give each line one field per column; quote fields "
                                "that hold commas (\"a, b\")")
            yield reader.line_num, dict(zip(header, row))
    except csv.Error as exc:
        raise DataError(f"cannot parse line {reader.line_num} ({exc})", f"{path}:{reader.line_num}",
                        "check for an unclosed quote or a binary file") from None


def decode_line(line: bytes, where: str) -> str:
    """A line as UTF-8 text; a byte that is not UTF-8 is an error naming the line (``where``)."""
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"not UTF-8 text (byte {exc.start} of the line is {line[exc.start:exc.start + 1]!r})",
                        where, "re-encode the file as UTF-8, e.g. iconv -f latin1 -t utf-8") from None


def json_record(line: str | bytes, where: str) -> dict:
    """One JSON-lines record, parsed by orjson (3-4x the json module, benchmarks/scale_bench.py)."""
    try:
        record = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise DataError(f"invalid JSON ({exc.msg})", where, "write one JSON object per line") from None
    if not isinstance(record, dict):
        raise DataError("a JSON line must be an object", where, 'write {"text": ..., "label": ...}')
    return record


def _iter_parquet(path: Path) -> Iterator[tuple[int, dict]]:
    import pyarrow.parquet as pq

    open_raw(path, ".parquet").close()
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


def spec_records(spec: DataSpec) -> Iterator[tuple[int, dict]]:
    """The records of a data source, local or `hf:`, with a headerless file's ``columns`` applied."""
    if spec.is_hub:
        return iter_hub(spec.path, spec.hf_config, spec.hf_split)
    return iter_records(Path(spec.path), columns=spec.columns)


def get_field(record: dict, path: str):
    """A field, or a dotted path into nested JSON; across a list of objects it maps (``question.choices.text``
    is the list of the choices' texts). KeyError, IndexError or TypeError when absent."""
    value = record
    for part in path.split("."):
        value = [v[part] for v in value] if isinstance(value, list) else value[part]
    return value


def has_field(record: dict, path: str) -> bool:
    try:
        get_field(record, path)
        return True
    except (KeyError, IndexError, TypeError):
        return False


def stem_field(spec: DataSpec) -> str:
    """The field holding the item's own text (the question): the text field, else the template's first field
    (attacks and corruptions edit it, never the prompt's fixed words)."""
    return spec.text_field or next(f for f in template_fields(spec.text_template, spec.name) if f != CHOICES_SLOT)


def text_of(record: dict, spec: DataSpec, where: str = "", *, template: str | None = None, listing: str | None = None,
            stem: str | None = None) -> str:
    """The item's text: its ``text_field``, or a template (``spec.text_template`` or ``template``) filled from
    the record's fields; in a multiple-choice template ``{choices}`` is ``listing``; ``stem``, when given,
    replaces the value of the stem field."""
    template = template or spec.text_template
    own = stem_field(spec) if stem is not None else None
    if template is None:
        value = stem if stem is not None else get_field(record, spec.text_field)
        return "" if value is None else str(value)
    out = []
    for literal, name, _, _ in string.Formatter().parse(template):
        value = "" if name is None else stem if name == own else listing if name == CHOICES_SLOT and listing is not None \
            else get_field(record, name)
        out.append(literal + ("" if value is None else str(value)))
    return "".join(out)


def required_fields(spec: DataSpec) -> dict[str, str]:
    """Spec key -> field name, for every field a record must have."""
    text = {"text_field": spec.text_field} if spec.text_field else {} if spec.text_template == "" else \
        {f"text_template field '{f}'": f for f in template_fields(spec.text_template, spec.name)
         if not (f == CHOICES_SLOT and spec.multiple_choice)}
    keys = ("pair_field", "choices_field", "choice_labels_field", "target_field", "slice_field", "prefix_field") + \
        (() if spec.label_file else ("label_field",))  # labels from a file of their own join the records later
    return {**text, **{k: getattr(spec, k) for k in keys if getattr(spec, k)},
            **{f"choices_fields '{f}'": f for f in spec.choices_fields or ()},
            **{f"choice_contexts field '{f}'": f for t in spec.choice_contexts or () for f in template_fields(t, spec.name)}}


def read_split(spec: DataSpec, labels: tuple[str, ...], task: TaskSpec = TaskSpec()) -> Split:
    """Read one split as items of the suite's task: labelled texts, multiple-choice items, running text or
    context + last word; labels map onto ``labels`` indices."""
    texts, ys, rows, groups, items, slices, records = [], [], [], [], [], [], []
    fields = required_fields(spec)
    delimiter = task.target_delimiter
    labels_from = label_lines(spec)
    for n, record in spec_records(spec):
        where = f"{spec.path}:{n}"
        if labels_from is not None:
            record = {**record, spec.label_field: next(labels_from, None)}
            if record[spec.label_field] is None:
                raise DataError(f"the label file {spec.label_file} has fewer labels than the data has rows", where,
                                "give one label per row, in row order")
        check_fields(record, fields, spec, where)
        if task.kind == MULTIPLE_CHOICE:
            item, text, gold = choice_item(record, spec, labels, task, where)
            items.append(item)
            texts.append(text)
            ys.append(gold)
            records.append(record)
        elif task.kind in (LAST_WORD, GENERATE):
            text, target = text_of(record, spec, where), str(get_field(record, spec.target_field))
            if not target.strip():
                raise DataError(f"the target '{spec.target_field}' is blank", where, "fix the row, or remove it")
            items.append(Continuations(text, (delimiter + target,)) if task.kind == LAST_WORD else
                         Query(text, target, text))
            texts.append(text + delimiter + target)
            ys.append(0)
            if task.kind == GENERATE:  # kept to render the item again (an edited question, another prompt)
                records.append(record)
        else:
            texts.append(text_of(record, spec, where))
            if task.kind == PERPLEXITY and not texts[-1].strip():
                raise DataError("the document is blank: it holds no token to score", where, "remove the line")
            ys.append(label_index(get_field(record, spec.label_field), spec, labels, where) if task.labelled else 0)
        rows.append(n)
        if spec.pair_field:
            groups.append(str(get_field(record, spec.pair_field)))
        if spec.slice_field:
            slices.append(str(get_field(record, spec.slice_field)))
    if not texts:
        raise DataError("no rows", spec.path, "the split needs at least one example")
    if labels_from is not None and next(labels_from, None) is not None:
        raise DataError(f"the label file has more labels than {spec.path} has rows", spec.label_file,
                        "give one label per row, in row order")
    return Split(spec.name, texts, np.asarray(ys, dtype=np.int64), np.asarray(rows, dtype=np.int64),
                 np.asarray(groups) if spec.pair_field else None, items if items else None,
                 {spec.slice_field: np.asarray(slices)} if spec.slice_field else None, records or None)


def label_lines(spec: DataSpec) -> Iterator[str] | None:
    """The labels of a split whose labels sit in a file of their own (one per non-blank line, in row order)."""
    if spec.label_file is None:
        return None
    return (line.strip() for _, line in _lines(Path(spec.label_file), ".txt") if line.strip())


def check_fields(record: dict, fields: dict[str, str], spec: DataSpec, where: str) -> None:
    for key, name in fields.items():
        if not has_field(record, name):
            raise DataError(f"no field '{name}' (fields: {', '.join(map(str, record))})", where,
                            f"set {key.split()[0]} in the suite to the field that holds it" + (
                                ", or name a headerless file's fields with columns:" if spec.columns is None else ""))


def choice_item(record: dict, spec: DataSpec, labels: tuple[str, ...], task: TaskSpec, where: str, *,
                prompt: Prompt | None = None, order=None, stem: str | None = None) -> tuple[Continuations, str, int]:
    """(scoring request, text, gold index) of one multiple-choice item, rendered with the split's own template
    or ``prompt``, its choices in ``order`` (order[i] = the source index of the choice shown at position i)
    and its stem replaced by ``stem``. The answers are the choices' texts, or with ``answer: letter`` the
    positions' labels (A, B, ...)."""
    choices = choices_of(record, spec, where)
    gold = gold_index(record, spec, choices, labels, where)
    if len(choices) > len(labels):
        raise DataError(f"the item has {len(choices)} choices and the suite names {len(labels)} labels", where,
                        "list one label per choice position in the suite's labels:")
    if order is not None:
        choices, gold = [choices[j] for j in order], list(order).index(gold)
    listing = "\n".join(f"{labels[i]}. {c}" for i, c in enumerate(choices))
    context = text_of(record, spec, where, template=prompt.template if prompt else None, listing=listing, stem=stem)
    prefix = str(get_field(record, spec.prefix_field)) if spec.prefix_field else ""
    if spec.choice_contexts:  # the choices are contexts; the text is the one continuation each is scored with
        continuation = task.target_delimiter + context
        return ChoiceContexts(tuple(choices), continuation, prefix), prefix + choices[gold] + continuation, gold
    answers = labels[:len(choices)] if (prompt.answer if prompt else spec.answer) == "letter" else choices
    continuations = tuple(task.target_delimiter + a for a in answers)
    return Continuations(prefix + context, continuations), prefix + context + continuations[gold], gold


def render_choices(split: Split, spec: DataSpec, labels: tuple[str, ...], task: TaskSpec, *, prompt: Prompt | None = None,
                   orders=None, stems: list[str] | None = None) -> tuple[list[Continuations], np.ndarray]:
    """A multiple-choice split's items rendered again (see ``choice_item``), each after its few-shot prefix;
    returns the items and their gold indices (which move with the order)."""
    items, golds = [], []
    for i, record in enumerate(split.records):
        item, _, gold = choice_item(record, spec, labels, task, f"{spec.path}:{split.rows[i]}", prompt=prompt,
                                    order=None if orders is None else orders[i], stem=None if stems is None else stems[i])
        items.append(with_prefix(item, split.prefixes[i] if split.prefixes else ""))
        golds.append(gold)
    return items, np.asarray(golds, dtype=np.int64)


def render_queries(split: Split, spec: DataSpec, task: TaskSpec, *, template: str | None = None,
                   stems: list[str] | None = None, fewshot: bool = True) -> list[Query]:
    """A generation split's items rendered again: with another ``template``, the stems replaced by ``stems``,
    and with (or without) their few-shot prefix."""
    out = []
    for i, (record, item) in enumerate(zip(split.records, split.items)):
        question = text_of(record, spec, f"{spec.path}:{split.rows[i]}", template=template,
                           stem=None if stems is None else stems[i])
        prefix = split.prefixes[i] if fewshot and split.prefixes else ""
        out.append(Query(prefix + question, item.target, question, item.shots if fewshot else ()))
    return out


def choices_of(record: dict, spec: DataSpec, where: str) -> list[str]:
    """The item's choices; a blank one is refused: it tokenizes to nothing (only the delimiter would be scored),
    so it would win and turn any model's accuracy into the share of items whose gold choice is blank."""
    if spec.choices is not None:
        choices = list(spec.choices)
    elif spec.choice_contexts is not None:
        choices = [text_of(record, spec, where, template=t) for t in spec.choice_contexts]
    elif spec.choices_fields is not None:
        choices = [str(get_field(record, f)) for f in spec.choices_fields]
    else:
        value = get_field(record, spec.choices_field)
        if not isinstance(value, list) or len(value) < 2:
            raise DataError(f"'{spec.choices_field}' must hold a list of at least two choices, got {value!r}"[:200],
                            where, "point choices_field at the list of choices")
        choices = [str(v) for v in value]
    blank = [i for i, c in enumerate(choices) if not c.strip()]
    if blank:
        raise DataError(f"choice {blank[0]} of the item is blank ({choices[blank[0]]!r}); a blank choice scores only "
                        "the delimiter and wins", where, "fix the row, or remove it from the file")
    return choices


def gold_index(record: dict, spec: DataSpec, choices: list[str], labels: tuple[str, ...], where: str) -> int:
    """The gold choice's index, from ``label_field``: through ``label_map`` to a suite label (a choice position),
    else read as ``spec.gold`` says (a 0- or 1-based index, a letter, the choice's text, or its label)."""
    raw = get_field(record, spec.label_field)
    value = str(raw).strip()
    if spec.label_map:
        name = spec.label_map.get(value)
        if name is None:
            raise DataError(f"gold {raw!r} is not one of label_map's values {sorted(spec.label_map)}", where,
                            "fix the row, or add it to label_map")
        index = labels.index(name)
    elif spec.gold in ("index", "index1"):
        index = int(value) - (spec.gold == "index1") if value.lstrip("-").isdigit() else -1
    elif spec.gold == "letter":
        index = ord(value.upper()) - ord("A") if len(value) == 1 and value.isalpha() else -1
    elif spec.gold == "text":
        index = choices.index(value) if value in choices else -1
    else:
        names = [str(x).strip() for x in get_field(record, spec.choice_labels_field)]
        index = names.index(value) if value in names else -1
    if not 0 <= index < len(choices):
        raise DataError(f"gold {raw!r} ({'label_map' if spec.label_map else spec.gold}) names none of the item's "
                        f"{len(choices)} choices", where,
                        "fix the row, or set gold: index | index1 | letter | text | choice_label to how it is written")
    return index


def with_fewshot(split: Split, pool: Split, task: TaskSpec, same_split: bool, where: str) -> Split:
    """Each item's prompt preceded by ``task.fewshot`` solved examples from ``pool`` (another split, or other
    items of the same one): drawn per item by a seed of (fewshot seed, row), so an item keeps its examples
    however the split is sampled, or (``sampler: first_n``) the pool's first k for every item, so that every
    prompt starts with the same text (which the engine then encodes once)."""
    if task.fewshot == 0 or split.items is None:
        return split
    candidates = np.arange(len(pool))
    if len(pool) - int(same_split) < task.fewshot:
        raise DataError(f"fewshot.k asks for {task.fewshot} solved examples per item, and the few-shot split "
                        f"'{pool.name}' has {len(pool) - int(same_split)} to draw from", where,
                        "lower fewshot.k in the suite, or name a larger split in fewshot.split")
    solved = [solved_example(pool, j, task) for j in range(len(pool))]
    items, prefixes = [], []
    for i, item in enumerate(split.items):
        options = candidates[pool.rows != split.rows[i]] if same_split else candidates
        shots = options[:task.fewshot] if task.fewshot_sampler == "first_n" else \
            np.random.default_rng([task.fewshot_seed, int(split.rows[i])]).choice(options, size=task.fewshot,
                                                                                 replace=False)
        prefixes.append(task.fewshot_delimiter.join(solved[j][0] + solved[j][1] for j in shots) + task.fewshot_delimiter)
        if isinstance(item, Query):
            items.append(dataclasses.replace(item, context=prefixes[-1] + item.context,
                                             shots=tuple((solved[j][0], solved[j][1].removeprefix(task.target_delimiter))
                                                         for j in shots)))
        else:
            items.append(with_prefix(item, prefixes[-1]))
    return dataclasses.replace(split, items=items, prefixes=prefixes)


def with_prefix(item: "Continuations | ChoiceContexts", prefix: str) -> "Continuations | ChoiceContexts":
    """A multiple-choice item with few-shot examples before it."""
    if isinstance(item, ChoiceContexts):
        return dataclasses.replace(item, prefix=prefix + item.prefix)
    return Continuations(prefix + item.context, item.continuations)


def solved_example(pool: Split, j: int, task: TaskSpec) -> tuple[str, str]:
    """(prompt, delimiter + answer) of a pool item: a multiple-choice item with its gold choice, a generation
    item with its gold answer."""
    item = pool.items[j]
    if isinstance(item, Query):
        return item.question, task.target_delimiter + item.target
    if isinstance(item, ChoiceContexts):
        return item.contexts[pool.labels[j]], item.continuation
    return item.context, item.continuations[pool.labels[j]]


def read_suite_data(suite: Suite) -> dict[str, Split]:
    """Every split the suite declares (eval, reference, few-shot, shift sets, text sets), read and checked in
    full: what `audit validate` checks and what `audit check` reads before any model loads. Items get their
    few-shot examples here, drawn from the splits as read (never from prompts already given examples)."""
    task = suite.task
    specs = {"eval": suite.eval, **({"reference": suite.reference} if suite.reference else {}),
             **({"fewshot": suite.fewshot} if suite.fewshot else {}), **suite.shift_sets}
    read = {name: read_split(spec, suite.labels, task) for name, spec in specs.items()}
    splits = dict(read)
    if task.fewshot:
        for name in (n for n in specs if n != "fewshot"):  # the exemplars themselves are never asked
            pool = task.fewshot_split or name
            splits[name] = with_fewshot(read[name], read[pool], task, same_split=pool == name, where=specs[pool].path)
    for name, prompt in suite.prompts.items():  # every prompt variant renders every eval item
        fields = {f"prompts.{name}.template field '{f}'": f for f in template_fields(prompt.template, name)
                  if f != CHOICES_SLOT}
        for record, row in zip(splits["eval"].records, splits["eval"].rows):
            check_fields(record, fields, suite.eval, f"{suite.eval.path}:{row}")
    text = TaskSpec(PERPLEXITY)
    return splits | {name: read_split(spec, (), text) for name, spec in suite.text_sets.items()}


def label_index(raw, spec: DataSpec, labels: tuple[str, ...], where: str) -> int:
    value = str(raw).strip()
    name = spec.label_map.get(value) if spec.label_map else value
    if name not in labels:
        known = sorted(spec.label_map) if spec.label_map else list(labels)
        raise DataError(f"label '{value}' is not one of {known}", where,
                        f"fix the row, or add it to label_map for '{spec.name}' in the suite")
    return labels.index(name)
