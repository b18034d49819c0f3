"""Durable runs as people look at them: running, waiting for a decision, interrupted, resumable, or done.

    for view in durable_runs(journal):
        print(view.run.run_id, view.describe_state(), view.usage.paid.describe())

What `retinue runs --journal` prints, and what a web page needs to draw a run's state, its Resume action
(`resumable`) and its pending approvals (each decided with `journal.decide`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypeAlias

from ..approvals import ApprovalRecord
from .journal import DefinitionPin, Journal, JournalRun, RunUsage

DurableRunState: TypeAlias = Literal["running", "waiting", "interrupted", "resumable", "done"]
"""How a durable root run stands:

- "running": a live process holds it now;
- "waiting": suspended until a person decides its pending approvals;
- "interrupted": its process was killed (or it was cancelled) mid-way: resume it to go on;
- "resumable": every approval it waited for is decided (or has expired): resume it to go on;
- "done": it reached an ending of its own (`JournalRun.status` says which: completed, limit, error).
"""


@dataclass(frozen=True, slots=True)
class DurableRunView:
    """One root run of a journal, with what is needed to show it: its state, approvals, spending, pins."""

    run: JournalRun
    state: DurableRunState
    approvals: tuple[ApprovalRecord, ...]
    usage: RunUsage
    definition_pins: tuple[DefinitionPin, ...]

    @property
    def pending_approvals(self) -> tuple[ApprovalRecord, ...]:
        """The approvals it waits for: undecided, and not expired."""
        return tuple(record for record in self.approvals if not record.decided and not record.expired())

    @property
    def resumable(self) -> bool:
        """Whether resuming it now would go on (a Resume action): interrupted, or decided."""
        return self.state in ("interrupted", "resumable")

    @property
    def allowed_changes(self) -> tuple[str, ...]:
        """Every change of definition allowed on a resume, oldest first."""
        return tuple(change for pin in self.definition_pins for change in pin.changes)

    def describe_state(self) -> str:
        """The state in a few words: "waiting for approval (1)", "interrupted (resumable)", "done (limit)"."""
        match self.state:
            case "waiting":
                return f"waiting for approval ({len(self.pending_approvals)})"
            case "interrupted":
                return "interrupted (resumable)"
            case "resumable":
                return "decided (resumable)"
            case "done":
                return f"done ({self.run.status})"
        return self.state


def durable_runs(journal: Journal, limit: int | None = 30) -> list[DurableRunView]:
    """The root runs of `journal`, newest first, at most `limit`."""
    return [view_of(journal, run) for run in journal.list_runs(limit)]


def durable_run(journal: Journal, run_id: str) -> DurableRunView | None:
    """One root run of `journal` (None if it has no such run, or only a sub-run of that id)."""
    run = journal.get_run(run_id)
    if run is None or run.parent_run_id is not None:
        return None
    return view_of(journal, run)


def view_of(journal: Journal, run: JournalRun) -> DurableRunView:
    records = tuple(journal.approvals(run.run_id))
    return DurableRunView(
        run=run,
        state=_state(journal, run, records),
        approvals=records,
        usage=journal.run_usage(run.run_id),
        definition_pins=tuple(journal.definition_pins(run.run_id)),
    )


def _state(journal: Journal, run: JournalRun, records: tuple[ApprovalRecord, ...]) -> DurableRunState:
    if run.status in ("completed", "limit", "error"):
        return "done"
    if run.status == "decided":
        return "resumable"
    if run.status == "waiting":
        # Past their expiry, its approvals are denials that nobody has recorded yet: it may go on.
        undecided = [record for record in records if not record.decided]
        return "resumable" if undecided and all(record.expired() for record in undecided) else "waiting"
    return "running" if journal.lease_is_live(run) else "interrupted"
