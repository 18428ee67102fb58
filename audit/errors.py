"""Errors the user can fix. One message template: where, what, how to fix.

`cli.py` is the only place that turns these into exit codes (2 = bad input).
"""

from __future__ import annotations

import difflib


class AuditError(Exception):
    """Bad input the user can fix; rendered as one line: ``WHERE: WHAT (fix: FIX)``."""

    def __init__(self, what: str, where: str = "", fix: str = ""):
        self.what, self.where, self.fix = what, where, fix
        super().__init__(self.message)

    @property
    def message(self) -> str:
        text = f"{self.where}: {self.what}" if self.where else self.what
        text = f"{text} (fix: {self.fix})" if self.fix else text
        return " ".join(text.split())  # one line, whatever the parts held


class SpecError(AuditError):
    """A suite YAML file is invalid."""


class DataError(AuditError):
    """A data file cannot be read or does not match its spec."""


class ModelError(AuditError):
    """A model cannot be loaded safely, does not fit the suite, or produces garbage."""


def did_you_mean(word: str, choices) -> str:
    """The fix for an unknown name: the closest choice, or the list of them."""
    names = sorted(map(str, choices))
    if not names:
        return "there is nothing to choose from here"
    close = difflib.get_close_matches(word, names, n=1)
    return f"did you mean '{close[0]}'?" if close else f"choose from: {', '.join(names)}"
