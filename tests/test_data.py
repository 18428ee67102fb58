import gzip
import json

import numpy as np
import pytest

from audit.data import iter_records, read_split
from audit.errors import DataError
from audit.suite import DataSpec

LABELS = ("negative", "positive")


def spec(path, **kw) -> DataSpec:
    return DataSpec(name="eval", path=str(path), text_field=kw.pop("text_field", "text"),
                    label_field=kw.pop("label_field", "label"), label_map={"0": "negative", "1": "positive"}, **kw)


def test_tsv_is_read_unquoted(tmp_path):
    p = tmp_path / "d.tsv"
    p.write_text('text\tlabel\n"quoted start, no end\t1\nplain "middle" quote\t0\n', encoding="utf-8")
    split = read_split(spec(p), LABELS)
    assert split.texts == ['"quoted start, no end', 'plain "middle" quote']
    assert split.labels.tolist() == [1, 0] and split.rows.tolist() == [2, 3]


def test_jsonl_csv_and_gzip_agree(tmp_path):
    rows = [{"text": "good, fine", "label": 1}, {"text": "bad", "label": 0}]
    (tmp_path / "d.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    (tmp_path / "d.csv").write_text('text,label\n"good, fine",1\nbad,0\n')
    with gzip.open(tmp_path / "d.jsonl.gz", "wt") as f:
        f.write("\n".join(json.dumps(r) for r in rows))
    splits = [read_split(spec(tmp_path / n), LABELS) for n in ("d.jsonl", "d.csv", "d.jsonl.gz")]
    for s in splits:
        assert s.texts == ["good, fine", "bad"] and s.labels.tolist() == [1, 0]


def test_parquet(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"text": ["a", "b"], "label": [0, 1]}), tmp_path / "d.parquet")
    assert read_split(spec(tmp_path / "d.parquet"), LABELS).labels.tolist() == [0, 1]


def test_non_utf8_names_file_and_fix(tmp_path):
    p = tmp_path / "latin.tsv"
    p.write_bytes("text\tlabel\ncaf\xe9\t1\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"latin.tsv:2: not UTF-8.*fix: re-encode"):
        read_split(spec(p), LABELS)


def test_empty_file_missing_field_unknown_label(tmp_path):
    (tmp_path / "empty.tsv").write_text("")
    with pytest.raises(DataError, match="no rows"):
        read_split(spec(tmp_path / "empty.tsv"), LABELS)
    (tmp_path / "d.tsv").write_text("sentence\tlabel\nx\t1\n")
    with pytest.raises(DataError, match=r"d.tsv:2: no field 'text' \(fields: sentence, label\)"):
        read_split(spec(tmp_path / "d.tsv"), LABELS)
    (tmp_path / "e.tsv").write_text("text\tlabel\nx\t7\n")
    with pytest.raises(DataError, match=r"e.tsv:2: label '7'"):
        read_split(spec(tmp_path / "e.tsv"), LABELS)


def test_unsupported_type_and_subset(tmp_path):
    with pytest.raises(DataError, match="unsupported file type"):
        list(iter_records(tmp_path / "x.xlsx"))
    (tmp_path / "f.tsv").write_text("text\tlabel\na\t0\nb\t1\nc\t1\n")
    split = read_split(spec(tmp_path / "f.tsv"), LABELS)
    sub = split.subset(np.array([2, 0]))
    assert sub.texts == ["c", "a"] and sub.labels.tolist() == [1, 0] and sub.rows.tolist() == [4, 2]
