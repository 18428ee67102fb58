"""The one table of statuses: how each gate status, probe status and verdict ranks, blocks, shows and exits.

Gates, the verdict, `audit diff` and every report writer read this table, so a status means the
same everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Status:
    rank: int  # worse is higher: `audit diff` calls a move up "worse"
    mark: str  # Markdown
    css: str  # HTML badge class
    exit_code: int | None = None  # for verdicts


STATUSES = {
    "pass": Status(0, "✅ pass", "pass", exit_code=0),
    "ok": Status(0, "ok", "pass"),
    "skipped": Status(1, "⏭ skipped", "skipped"),
    "inconclusive": Status(2, "❔ inconclusive", "inconclusive", exit_code=1),
    "error": Status(3, "⚠️ error", "error", exit_code=1),
    "fail": Status(4, "❌ fail", "fail", exit_code=1),
}
# findings, most urgent first: (severity, status) of gates that did not pass
RISK_ORDER = (("fail", "fail"), ("fail", "error"), ("fail", "inconclusive"), ("warn", "fail"), ("warn", "inconclusive"),
              ("warn", "error"))


def blocks(gate: dict, inconclusive_fails: bool) -> bool:
    """Does this gate's result fail the run on its own?"""
    return gate["severity"] == "fail" and (gate["status"] == "fail" or gate["status"] == "inconclusive"
                                           and inconclusive_fails)
