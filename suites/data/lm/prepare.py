"""Build the language-model suites' data files from the project's shared copies (../shared/data/lm).

    python suites/data/lm/prepare.py [--shared ../shared/data/lm]

Every output is gzipped JSON lines with a fixed gzip mtime, so the bytes (and SHA256SUMS) are reproducible.
What each conversion does is in SOURCES.md beside this script; nothing is filtered or edited.
"""

from __future__ import annotations

import argparse
import bz2
import csv
import gzip
import hashlib
import io
import json
import re
from pathlib import Path

HERE = Path(__file__).resolve().parent


def write(name: str, records) -> None:
    raw = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode("utf-8")
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0, compresslevel=9) as f:
        f.write(raw)
    (HERE / name).write_bytes(buf.getvalue())


def arc(path: Path):
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            yield json.loads(line)


def mmlu(folder: Path):
    for csv_path in sorted(folder.glob("*_test.csv")):
        subject = csv_path.name.removesuffix("_test.csv")
        with open(csv_path, encoding="utf-8", newline="") as f:
            for question, a, b, c, d, answer in csv.reader(f):
                yield {"subject": subject, "question": question, "A": a, "B": b, "C": c, "D": d, "answer": answer}


def hellaswag(path: Path):
    """llama.cpp's layout: per item a query line ("activity label: context"), the gold index, four endings."""
    lines = bz2.open(path, "rt", encoding="utf-8").read().split("\n")
    for i in range(0, len(lines) - 5, 6):
        yield {"query": lines[i], "label": int(lines[i + 1]), "endings": lines[i + 2:i + 6]}


def wikitext(path: Path):
    """Articles: each top-level heading (" = Title = ") and the lines up to the next one."""
    heading = re.compile(r"^ = [^=].* = $")
    title, lines = None, []
    for line in path.read_text(encoding="utf-8").split("\n"):
        if heading.match(line):
            if title is not None:
                yield {"title": title, "text": "\n".join(lines).strip("\n")}
            title, lines = line.strip(" ="), [line]
        elif title is not None:
            lines.append(line)
    if title is not None:
        yield {"title": title, "text": "\n".join(lines).strip("\n")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=HERE.parents[2].parent / "shared" / "data" / "lm")
    src = parser.parse_args().shared
    write("arc_easy_test.jsonl.gz", arc(src / "arc_easy" / "ARC-Easy-Test.jsonl"))
    write("arc_challenge_test.jsonl.gz", arc(src / "arc_challenge" / "ARC-Challenge-Test.jsonl"))
    write("mmlu_test.jsonl.gz", mmlu(src / "mmlu" / "test"))
    write("hellaswag_validation.jsonl.gz", hellaswag(src / "hellaswag" / "hellaswag_val_full.txt.bz2"))
    write("lambada_openai.jsonl.gz", arc(src / "lambada" / "lambada_openai.llmfoundry.jsonl"))
    write("wikitext2_test_articles.jsonl.gz", wikitext(src / "wikitext2" / "wiki.test.tokens.pytorch-examples.txt"))
    sums = [f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.name}" for p in sorted(HERE.glob("*.jsonl.gz"))]
    (HERE / "SHA256SUMS").write_text("\n".join(sums) + "\n")


if __name__ == "__main__":
    main()
