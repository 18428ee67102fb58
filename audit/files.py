"""Writing folders and files so that no reader ever sees half of them, and checking where they may go."""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

from audit.errors import AuditError

# What the operating system says when a write cannot be done for want of room: the user can fix it.
NO_ROOM = {errno.ENOSPC: "no space left on the device", errno.EDQUOT: "the disk quota is exceeded",
           errno.EFBIG: "the file is too large for the file system"}


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def no_room(exc: OSError, target: Path, option: str) -> AuditError | None:
    """The one-line error for a write that failed for want of room, or None for any other failure."""
    if exc.errno not in NO_ROOM:
        return None
    return AuditError(f"cannot write {target}: {NO_ROOM[exc.errno]}", option, "free some space, or write elsewhere")


@contextmanager
def new_directory(out: Path, option: str = "--out"):
    """Yield a private temporary folder beside ``out``; when the block ends without an error, make its files
    ordinary (mkdtemp and some writers make them private) and rename it into place, replacing ``out``. A full
    disk is bad input naming ``option``; nothing is left behind either way."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        yield tmp
        mask = umask()
        tmp.chmod(0o777 & ~mask)
        for path in tmp.iterdir():
            path.chmod(0o666 & ~mask)
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    except OSError as exc:
        raise no_room(exc, out, option) or exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def check_out_dir(out: Path, protected: dict[str, Path], option: str = "--out", replaces: bool = False) -> None:
    """The output folder can be written, without writing anything now, and writing it cannot change a model:
    it is not inside a model's directory (the files would change the model's fingerprint) and, when the
    folder is replaced whole (``replaces``), it holds no model. ``protected`` maps a role to the directory,
    or the single file (a GGUF), that must stay untouched."""
    out = Path(out)
    resolved = out.resolve()
    for what, path in protected.items():
        path = Path(path).resolve()
        if path.is_dir() and (resolved == path or path in resolved.parents):
            raise AuditError(f"{out} is inside the {what}'s directory {path}; writing there would change its files",
                             option, "write elsewhere, e.g. a new folder beside it")
        if replaces and resolved in path.parents:
            raise AuditError(f"{out} holds the {what} ({path}), and writing it replaces the folder whole", option,
                             "write elsewhere, e.g. a new folder beside it")
    if out.exists() and not out.is_dir():
        raise AuditError(f"{out} is a file, not a folder", option, "give a folder")
    existing = next(p for p in (resolved, *resolved.parents) if p.exists())
    if not existing.is_dir():
        raise AuditError(f"{existing} is a file, so {out} cannot be created", option, "give a folder")
    try:
        with tempfile.TemporaryFile(dir=existing):  # O_TMPFILE where available: nothing appears in the folder
            pass
    except OSError as exc:
        raise AuditError(f"cannot write in {existing} ({exc.strerror})", option, "choose a folder you can write to") \
            from None
