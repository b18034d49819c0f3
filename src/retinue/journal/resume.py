"""Starting and resuming durable runs: which journal, which run, every pending run at once, and queueing one."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import JournalError, RunLeasedError
from .journal import Journal, JournalRun, RunOpening

if TYPE_CHECKING:
    from ..agent import Agent
    from ..result import RunResult

log = logging.getLogger("retinue.journal")

JOURNAL_FILE_NAME = "journal.sqlite"
POSTGRES_URL_PREFIXES = ("postgresql://", "postgres://")


def default_journal_path() -> Path:
    """`$RETINUE_HOME/journal.sqlite`, or `~/.retinue/journal.sqlite`: beside the trace store."""
    home = os.environ.get("RETINUE_HOME")
    base = Path(home).expanduser() if home else Path.home() / ".retinue"
    return base / JOURNAL_FILE_NAME


def is_postgres_url(location: str | os.PathLike[str]) -> bool:
    return isinstance(location, str) and location.startswith(POSTGRES_URL_PREFIXES)


def journal_at(location: str | os.PathLike[str], *, lease_seconds: float | None = None) -> Journal:
    """The Postgres journal at a `postgresql://` (or `postgres://`) URL, or the SQLite journal at a path."""
    if is_postgres_url(location):
        from .postgres_journal import DEFAULT_LEASE_SECONDS, PostgresJournal

        return PostgresJournal(str(location), lease_seconds=lease_seconds or DEFAULT_LEASE_SECONDS)
    from .sqlite_journal import DEFAULT_LEASE_SECONDS, SQLiteJournal

    return SQLiteJournal(location, lease_seconds=lease_seconds or DEFAULT_LEASE_SECONDS)


@contextlib.contextmanager
def open_journal(journal: Journal | str | os.PathLike[str]) -> Iterator[Journal]:
    """`journal` itself, or the journal at that URL or path (`journal_at`), opened here and closed afterwards."""
    if not isinstance(journal, str | os.PathLike):
        yield journal
        return
    opened = journal_at(journal)
    try:
        yield opened
    finally:
        opened.close()


def check_start(journal: Journal, agent: str, run_id: str, prompt: str) -> None:
    """Refuse to start `run_id` when the journal holds another run under that id (a start resumes its own)."""
    existing = journal.get_run(run_id)
    if existing is None:
        return
    if existing.parent_run_id is not None:
        raise JournalError(f"{run_id} is a sub-run of {existing.parent_run_id}: start or resume that run instead")
    if existing.agent != agent or existing.prompt != prompt:
        differs = "agent" if existing.agent != agent else "prompt"
        raise JournalError(
            f"run {run_id} was started by agent '{existing.agent}' with a different {differs}; starting it "
            "again resumes it, so give the same agent and prompt, or a new run id"
        )


def recorded_prompt(journal: Journal, agent: str, run_id: str) -> str:
    """The prompt `run_id` was started with, after checking that it is a root run of `agent`."""
    existing = journal.get_run(run_id)
    if existing is None:
        raise JournalError(f"the journal has no run {run_id}: start it with agent.start(prompt, run_id=...)")
    if existing.parent_run_id is not None:
        raise JournalError(f"{run_id} is a sub-run of {existing.parent_run_id}: resume that run instead")
    if existing.agent != agent:
        raise JournalError(f"run {run_id} is a run of agent '{existing.agent}', not of '{agent}'")
    return existing.prompt


async def resume_pending(
    journal: Journal | str | os.PathLike[str],
    agents: Agent[Any] | Iterable[Agent[Any]] | Mapping[str, Agent[Any]],
    **run_options: Any,
) -> dict[str, RunResult[Any]]:
    """Resume, concurrently, every run of `journal` to go on with: killed, cancelled, or decided after a wait.

    Each run is resumed with the agent of its name among `agents`; `run_options` (deps, approver, on_event,
    limits) go to every `resume`. Runs of agents not given, and runs another process holds, are left alone
    (and logged). Returns the results by run id.
    """
    by_name = agents_by_name(agents)
    with open_journal(journal) as opened:
        await opened.expire_approvals()  # an approval past its expiry is a denial: its run may go on
        pending = [run for run in opened.pending_runs() if _known(run, by_name)]

        async def resume(run: JournalRun) -> RunResult[Any] | None:
            try:
                return await by_name[run.agent].resume(run.run_id, journal=opened, **run_options)
            except RunLeasedError as exc:
                log.info("not resuming %s: %s", run.run_id, exc)
                return None

        results = await asyncio.gather(*(resume(run) for run in pending))
    return {run.run_id: result for run, result in zip(pending, results, strict=True) if result is not None}


async def submit_run(
    journal: Journal | str | os.PathLike[str], agent: Agent[Any] | str, prompt: str, *, run_id: str | None = None
) -> str:
    """Queue a durable run of `agent` (an agent, or its name) for a worker (`retinue worker`); its run id.

    The run is recorded as pending, with nothing done yet; the first worker serving that agent takes it.
    Idempotent on `run_id`: submitting a run the journal already holds (with the same agent and prompt)
    changes nothing.
    """
    from ..run_context import new_run_id

    name = agent if isinstance(agent, str) else agent.name
    run_id = run_id or new_run_id()
    with open_journal(journal) as opened:
        check_start(opened, name, run_id, prompt)
        if opened.get_run(run_id) is None:
            await opened.open_run(RunOpening(run_id, run_id, None, None, None, name, prompt, history=None))
            await opened.release_lease(run_id)  # pending, and free for a worker to claim
    return run_id


def agents_by_name(agents: Agent[Any] | Iterable[Agent[Any]] | Mapping[str, Agent[Any]]) -> dict[str, Agent[Any]]:
    # Told apart by shape, not by class: this module is imported by the agent's, not the other way round.
    if isinstance(agents, Mapping):
        return dict(agents)
    if hasattr(agents, "resume"):
        single: Agent[Any] = agents  # type: ignore[assignment]
        return {single.name: single}
    return {agent.name: agent for agent in agents}


def _known(run: JournalRun, by_name: Mapping[str, Agent[Any]]) -> bool:
    if run.agent in by_name:
        return True
    log.info("not resuming %s: no agent named '%s' was given", run.run_id, run.agent)
    return False
