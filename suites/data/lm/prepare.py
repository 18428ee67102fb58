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


def jsonl(path: Path):
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            yield json.loads(line)


# The 8 chain-of-thought exemplars of Wei et al. 2022 ("Chain-of-thought prompting elicits reasoning in large
# language models", Table 20), as lm-evaluation-harness 0.4.13 ships them for gsm8k_cot
# (lm_eval/tasks/gsm8k/gsm8k-cot.yaml, fewshot_config.samples; MIT licence), verbatim.
GSM8K_COT_EXEMPLARS = [
    ("There are 15 trees in the grove. Grove workers will plant trees in the grove today. After they are done, there "
     "will be 21 trees. How many trees did the grove workers plant today?",
     "There are 15 trees originally. Then there were 21 trees after some more were planted. So there must have been "
     "21 - 15 = 6. The answer is 6."),
    ("If there are 3 cars in the parking lot and 2 more cars arrive, how many cars are in the parking lot?",
     "There are originally 3 cars. 2 more cars arrive. 3 + 2 = 5. The answer is 5."),
    ("Leah had 32 chocolates and her sister had 42. If they ate 35, how many pieces do they have left in total?",
     "Originally, Leah had 32 chocolates. Her sister had 42. So in total they had 32 + 42 = 74. After eating 35, "
     "they had 74 - 35 = 39. The answer is 39."),
    ("Jason had 20 lollipops. He gave Denny some lollipops. Now Jason has 12 lollipops. How many lollipops did Jason "
     "give to Denny?",
     "Jason started with 20 lollipops. Then he had 12 after giving some to Denny. So he gave Denny 20 - 12 = 8. The "
     "answer is 8."),
    ("Shawn has five toys. For Christmas, he got two toys each from his mom and dad. How many toys does he have now?",
     "Shawn started with 5 toys. If he got 2 toys each from his mom and dad, then that is 4 more toys. 5 + 4 = 9. "
     "The answer is 9."),
    ("There were nine computers in the server room. Five more computers were installed each day, from monday to "
     "thursday. How many computers are now in the server room?",
     "There were originally 9 computers. For each of 4 days, 5 more computers were added. So 5 * 4 = 20 computers "
     "were added. 9 + 20 is 29. The answer is 29."),
    ("Michael had 58 golf balls. On tuesday, he lost 23 golf balls. On wednesday, he lost 2 more. How many golf balls "
     "did he have at the end of wednesday?",
     "Michael started with 58 golf balls. After losing 23 on tuesday, he had 58 - 23 = 35. After losing 2 more, he "
     "had 35 - 2 = 33 golf balls. The answer is 33."),
    ("Olivia has $23. She bought five bagels for $3 each. How much money does she have left?",
     "Olivia had 23 dollars. 5 bagels for 3 dollars each will be 5 x 3 = 15 dollars. So she has 23 - 15 dollars "
     "left. 23 - 15 is 8. The answer is 8."),
]


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


def winogrande(path: Path):
    """Each record with its sentence split at the blank: ``before`` (the text up to "_") and ``after`` (the text
    after it, stripped), as lm-eval's partial scoring uses them: each option after ``before`` is a context, and
    ``after`` the one continuation."""
    for record in jsonl(path):
        blank = record["sentence"].index("_")
        yield {**record, "before": record["sentence"][:blank], "after": record["sentence"][blank + 1:].strip()}


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
    write("arc_easy_test.jsonl.gz", jsonl(src / "arc_easy" / "ARC-Easy-Test.jsonl"))
    write("arc_challenge_test.jsonl.gz", jsonl(src / "arc_challenge" / "ARC-Challenge-Test.jsonl"))
    write("mmlu_test.jsonl.gz", mmlu(src / "mmlu" / "test"))
    write("hellaswag_validation.jsonl.gz", hellaswag(src / "hellaswag" / "hellaswag_val_full.txt.bz2"))
    write("lambada_openai.jsonl.gz", jsonl(src / "lambada" / "lambada_openai.llmfoundry.jsonl"))
    write("gsm8k_test.jsonl.gz", jsonl(src / "gsm8k" / "test.jsonl"))
    write("gsm8k_train.jsonl.gz", jsonl(src / "gsm8k" / "train.jsonl"))
    write("gsm8k_cot_exemplars.jsonl.gz", ({"question": q, "target": t} for q, t in GSM8K_COT_EXEMPLARS))
    write("piqa_validation.jsonl.gz", jsonl(src / "piqa" / "valid.jsonl"))
    (HERE / "piqa_validation-labels.lst").write_bytes((src / "piqa" / "valid-labels.lst").read_bytes())
    write("winogrande_dev.jsonl.gz", winogrande(src / "winogrande" / "dev.jsonl"))
    write("boolq_validation.jsonl.gz", jsonl(src / "boolq" / "val.jsonl"))
    write("wikitext2_test_articles.jsonl.gz", wikitext(src / "wikitext2" / "wiki.test.tokens.pytorch-examples.txt"))
    sums = [f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.name}" for p in sorted([*HERE.glob("*.jsonl.gz"), *HERE.glob("*.lst")])]
    (HERE / "SHA256SUMS").write_text("\n".join(sums) + "\n")


if __name__ == "__main__":
    main()
