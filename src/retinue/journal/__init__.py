"""Durable runs: a write-ahead journal that lets a killed run resume without losing or repeating anything.

    journal = SQLiteJournal("runs.journal")
    result = await agent.start("Book the trip", journal=journal, run_id="trip-42")
    # ... the process is killed; in another one:
    result = await agent.resume("trip-42", journal=journal)
    results = await resume_pending(journal, [agent])

See `retinue.journal.journal` for what is recorded and how a run is replayed. Names load on first use, so
that importing the loop does not load SQLite.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .journal import NO_JOURNAL, Journal, JournalRun, JournalStatus, RunJournal
    from .resume import default_journal_path, open_journal, resume_pending
    from .sqlite_journal import SQLiteJournal

_WHERE = {
    "NO_JOURNAL": ".journal",
    "Journal": ".journal",
    "JournalRun": ".journal",
    "JournalStatus": ".journal",
    "RunJournal": ".journal",
    "SQLiteJournal": ".sqlite_journal",
    "default_journal_path": ".resume",
    "open_journal": ".resume",
    "resume_pending": ".resume",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module, __name__), name)


__all__ = [
    "NO_JOURNAL",
    "Journal",
    "JournalRun",
    "JournalStatus",
    "RunJournal",
    "SQLiteJournal",
    "default_journal_path",
    "open_journal",
    "resume_pending",
]
