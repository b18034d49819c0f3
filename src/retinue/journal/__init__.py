"""Durable runs: a write-ahead journal that lets a killed run resume without losing or repeating anything.

    journal = SQLiteJournal("runs.journal")
    result = await agent.start("Book the trip", journal=journal, run_id="trip-42")
    # ... the process is killed; in another one:
    result = await agent.resume("trip-42", journal=journal)
    results = await resume_pending(journal, [agent])

A run whose approver answers "later" (`retinue.approvals.decide_later()`) suspends, "waiting", until a
decision is recorded; then it is resumed like any other:

    result = await agent.start("Book the trip", journal=journal, approver=decide_later())
    (pending,) = result.pending_approvals                      # result.status == "waiting"
    await journal.decide(result.run_id, pending.approval_id, approved=True, by="ana")
    result = await agent.resume(result.run_id, journal=journal)

Many workers share a Postgres journal (`pip install 'retinue[postgres]'`):

    journal = PostgresJournal("postgresql://db/app")     # or pass the URL itself wherever a journal goes
    await submit_run(journal, agent, "Book the trip")   # queued, for whichever worker is free
    await work(journal, [agent], concurrency=4)         # what `retinue worker` runs

See `retinue.journal.journal` for what is recorded and how a run is replayed, `retinue.journal.definition`
for the definitions runs are pinned to, `retinue.journal.listing` for runs as `retinue runs --journal` shows
them. Names load on first use, so that importing the loop does not load SQLite (nor psycopg).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..lazy_exports import lazy_exports

if TYPE_CHECKING:
    from .journal import NO_JOURNAL, DefinitionPin, Journal, JournalRun, JournalStatus, RunJournal, RunUsage
    from .listing import DurableRunState, DurableRunView, durable_run, durable_runs
    from .postgres_journal import PostgresJournal
    from .resume import default_journal_path, open_journal, resume_pending, submit_run
    from .sqlite_journal import SQLiteJournal
    from .worker import work

_WHERE = {
    "NO_JOURNAL": ".journal",
    "DefinitionPin": ".journal",
    "DurableRunState": ".listing",
    "DurableRunView": ".listing",
    "RunUsage": ".journal",
    "durable_run": ".listing",
    "durable_runs": ".listing",
    "Journal": ".journal",
    "JournalRun": ".journal",
    "JournalStatus": ".journal",
    "RunJournal": ".journal",
    "PostgresJournal": ".postgres_journal",
    "SQLiteJournal": ".sqlite_journal",
    "default_journal_path": ".resume",
    "open_journal": ".resume",
    "resume_pending": ".resume",
    "submit_run": ".resume",
    "work": ".worker",
}


__getattr__ = lazy_exports(__name__, _WHERE)


__all__ = [
    "NO_JOURNAL",
    "DefinitionPin",
    "DurableRunState",
    "DurableRunView",
    "Journal",
    "JournalRun",
    "JournalStatus",
    "PostgresJournal",
    "RunJournal",
    "RunUsage",
    "SQLiteJournal",
    "default_journal_path",
    "durable_run",
    "durable_runs",
    "open_journal",
    "resume_pending",
    "submit_run",
    "work",
]
