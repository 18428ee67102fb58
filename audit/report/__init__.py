"""Report writers. All files of one report are rendered first, then moved into place atomically."""

from __future__ import annotations

import json
import os
import shutil
import signal
import tempfile
from contextlib import contextmanager
from pathlib import Path

from audit.files import no_room, umask
from audit.report import html, junit, markdown, sarif


def _json_default(obj):
    import numpy as np

    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


FILES = ("report.json", "report.md", "report.html", "junit.xml", "report.sarif")


def render_all(report: dict) -> dict[str, str]:
    return {
        "report.json": json.dumps(report, indent=2, default=_json_default, allow_nan=False) + "\n",
        "report.md": markdown.render(report),
        "report.html": html.render(report),
        "junit.xml": junit.render(report),
        "report.sarif": sarif.render(report),
    }


@contextmanager
def _no_interrupt():
    """Hold Ctrl-C back while the files are swapped in, so a report is never half old, half new."""
    try:
        old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    except (AttributeError, ValueError):  # no pthread_sigmask (Windows), or not the main thread
        old = None
    try:
        yield
    finally:
        if old is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)


def write_all(report: dict, out: Path) -> list[Path]:
    """Render every file, then replace each in one step, so no reader sees a half-written report. A write that
    fails (a full disk) leaves nothing behind: no temporary file, no new folder, and one line naming --out."""
    files = render_all(report)
    created = not out.exists()
    staged, done = [], False
    try:
        out.mkdir(parents=True, exist_ok=True)
        for name, text in files.items():
            fd, tmp = tempfile.mkstemp(prefix=f".{name}.", dir=out)
            staged.append((tmp, out / name))  # before the write, so a failed write is cleaned up too
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
            os.chmod(tmp, 0o666 & ~umask())  # mkstemp makes 0600; reports are ordinary files
        with _no_interrupt():
            for tmp, final in staged:
                os.replace(tmp, final)
        done = True
    except OSError as exc:
        raise no_room(exc, out, "--out") or exc
    finally:
        for tmp, _ in staged:
            if os.path.exists(tmp):
                os.unlink(tmp)
        if created and not done:
            shutil.rmtree(out, ignore_errors=True)  # an interrupted first write leaves no report folder either
    return [final for _, final in staged]
