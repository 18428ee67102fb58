"""Errors the user can fix. One message template: where, what, how to fix.

`cli.py` is the only place that turns these into exit codes (2 = bad input).
"""


class AuditError(Exception):
    """Bad input the user can fix; rendered as one line: ``WHERE: WHAT (fix: FIX)``."""

    def __init__(self, what: str, where: str = "", fix: str = ""):
        self.what, self.where, self.fix = what, where, fix
        super().__init__(self.message)

    @property
    def message(self) -> str:
        text = f"{self.where}: {self.what}" if self.where else self.what
        return f"{text} (fix: {self.fix})" if self.fix else text


class SpecError(AuditError):
    """A suite YAML file is invalid."""


class DataError(AuditError):
    """A data file cannot be read or does not match its spec."""


class ModelError(AuditError):
    """A model cannot be loaded safely or does not fit the suite."""
