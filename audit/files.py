"""Writing folders and files so that no reader ever sees half of them."""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path


def umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def new_directory(out: Path):
    """Yield a private temporary folder beside ``out``; when the block ends without an error, make its files
    ordinary (mkdtemp and some writers make them private) and rename it into place, replacing ``out``."""
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
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
