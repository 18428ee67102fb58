"""A record of a scan's finished shards, so an interrupted scan (Ctrl-C, a pre-empted cluster) continues
without rescanning them. One JSON file per shard (no pickle: a resume folder may come from elsewhere),
written atomically after the shard's result arrives; `scan.json` fingerprints the scan (benchmark items,
settings, and each shard's path, range, size and modification time), so a folder is never reused for a
different scan or a changed corpus.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from audit.contamination.scan import BenchmarkIndex, Partial
from audit.contamination.shards import Shard
from audit.errors import DataError


def fingerprint(index: BenchmarkIndex, shards: list[Shard]) -> str:
    h = hashlib.sha256(json.dumps(index.config.__dict__, sort_keys=True).encode())
    for text in index.texts:
        h.update(text.encode() + b"\0")
    for shard in shards:
        path = Path(shard.source.path)
        mtime = path.stat().st_mtime_ns if path.is_file() else 0
        h.update(f"{shard.key}\0{shard.size}\0{mtime}\0{shard.source.text_field}\n".encode())
    return h.hexdigest()


RECORD = "scan.json"


def check_folder(folder: Path) -> None:
    """A resume folder is new, empty, or one an earlier scan wrote (its record file): never a folder of other files,
    which the store would write into and mistake for its own."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise DataError("is a file, not a folder", str(folder), "give a folder for --resume")
    if folder.is_dir() and not (folder / RECORD).is_file() and any(folder.iterdir()):
        raise DataError(f"the folder holds other files and no {RECORD} (it is not a resume folder of audit)", str(folder),
                        "give a new or empty folder for --resume")


class ResumeStore:
    def __init__(self, folder: Path, index: BenchmarkIndex, shards: list[Shard]):
        self.folder = Path(folder)
        self.fingerprint = fingerprint(index, shards)
        check_folder(self.folder)
        record = self.folder / RECORD
        if record.is_file():
            try:
                saved = json.loads(record.read_text())["fingerprint"]
            except (ValueError, KeyError, TypeError):
                raise DataError("not a resume record of audit", str(record), "use an empty folder for --resume") from None
            if saved != self.fingerprint:
                raise DataError("the resume folder holds another scan (a different benchmark, setting or corpus file)",
                                str(self.folder), "use a new folder, or delete this one to start over")
        else:
            try:
                (self.folder / "shards").mkdir(parents=True, exist_ok=True)
                self._write(record, {"fingerprint": self.fingerprint, "shards": len(shards)})
            except OSError as exc:
                raise DataError(f"cannot write the resume folder ({exc.strerror})", str(self.folder),
                                "give a folder you can write to") from None

    def _path(self, shard: Shard) -> Path:
        return self.folder / "shards" / (hashlib.sha256(shard.key.encode()).hexdigest()[:32] + ".json")

    def finished(self, shards: list[Shard]) -> dict[str, Partial]:
        """The recorded partial results of these shards, by shard key."""
        done = {}
        for shard in shards:
            path = self._path(shard)
            if path.is_file():
                try:
                    data = json.loads(path.read_text())
                    if data["key"] == shard.key:
                        done[shard.key] = Partial.from_json(data["partial"])
                except (ValueError, KeyError, TypeError):
                    raise DataError("damaged resume record", str(path), "delete the file; that shard is then rescanned") \
                        from None
        return done

    def save(self, shard: Shard, partial: Partial) -> None:
        self._write(self._path(shard), {"key": shard.key, "partial": partial.as_json()})

    @staticmethod
    def _write(path: Path, data: dict) -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data))
        os.replace(tmp, path)
