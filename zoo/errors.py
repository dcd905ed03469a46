"""Errors a user can fix, and a collector that reports every corpus problem at once."""
from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from typing import Literal

log = logging.getLogger("zoo")

OnError = Literal["raise", "skip"]


class ZooUserError(Exception):
    """An error the user can fix (bad path, bad option, invalid corpus).

    The CLI prints it as one paragraph instead of a traceback.
    """


class CorpusError(ZooUserError):
    """The corpus on disk cannot be used as configured."""


@dataclass(frozen=True)
class Problem:
    """One bad row or file: where it is and what is wrong with it."""

    source: str
    reason: str
    row: int | None = None  # 1-based line number in the CSV/JSONL file (the header is line 1)
    column: str | None = None

    def __str__(self) -> str:
        where = self.source
        if self.row is not None:
            where += f", row {self.row}"
        if self.column is not None:
            where += f", column {self.column!r}"
        return f"{where}: {self.reason}"


class ProblemLog:
    """Collects problems while a corpus is read, then raises once or reports what was skipped.

    ``on_error="raise"`` lists every problem in one error; ``"skip"`` drops the offending rows
    and logs how many were dropped and why, so one bad file never stops a long run.
    """

    def __init__(self, on_error: OnError = "raise", max_listed: int = 20):
        if on_error not in ("raise", "skip"):
            raise ZooUserError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
        self.on_error = on_error
        self.max_listed = max_listed
        self.items: list[Problem] = []

    def add(self, source, reason: str, row: int | None = None, column: str | None = None) -> None:
        self.items.append(Problem(str(source), reason, row, column))

    def __len__(self) -> int:
        return len(self.items)

    def counts(self) -> Counter:
        """Problems per reason (the reason text up to the first colon)."""
        return Counter(p.reason.split(":")[0] for p in self.items)

    def summary(self) -> str:
        lines = [str(p) for p in self.items[: self.max_listed]]
        if len(self.items) > self.max_listed:
            lines.append(f"... and {len(self.items) - self.max_listed} more")
        return "\n  ".join(lines)

    def check(self, what: str) -> None:
        """Raise a CorpusError listing all problems (on_error='raise'), or log them ('skip')."""
        if not self.items:
            return
        if self.on_error == "raise":
            raise CorpusError(
                f"{what}: {len(self.items)} problem(s) found:\n  {self.summary()}\n"
                "Fix them, or set on_error: skip (e.g. --data.init_args.on_error skip) "
                "to drop these rows and go on."
            )
        by_reason = ", ".join(f"{n} x {r}" for r, n in self.counts().most_common())
        log.warning("%s: skipped %d row(s) (%s). First ones:\n  %s", what, len(self.items),
                    by_reason, self.summary())
