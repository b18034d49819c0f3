"""Durable runs as the UI shows them, and its Resume action: a journal's runs, resumed in the server's loop.

The trace store says what runs did; the journal (`retinue.journal`) says which of them can go on. The page
lists the journal's root runs in their state (`retinue.journal.listing`): running, waiting for approval,
interrupted (its process ended mid-way and no live process holds its lease), decided, or finished.

A run that can go on is resumed here with the agent it started with: a run of an application (`retinue run
APP --durable`) is rebuilt from the launch record beside the journal, any other with one of the agents the
server was given (`retinue ui --agent MODULE:NAME`). The resume is `Agent.resume`, as `retinue resume` and
workers do it: it takes the run's lease first, so a run another process holds is refused, never run twice.
It runs as a task of the server's event loop; its events go to the trace store, where the run's timeline
shows it live, and its approvals come to the page's Approve and Deny buttons.

The journal holds exact payloads (secrets included): only the fields the page draws are sent, and the server
redacts them as it redacts traces.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shlex
import threading
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from ..errors import ConfigurationError, DefinitionChangedError, RetinueError, RunLeasedError
from ..journal.app_runs import Launch, load_launch, state_dir_of
from ..journal.listing import DurableRunView, durable_run, durable_runs
from ..journal.resume import is_postgres_url, journal_at

if TYPE_CHECKING:
    from ..agent import Agent
    from ..approvals import Approver
    from ..events import Event
    from ..journal import Journal
    from ..result import RunResult
    from ..store import RunStore

log = logging.getLogger("retinue.ui")

LISTED_RUNS = 50
STATE_LABELS = {
    "running": "running",
    "waiting": "waiting for approval",
    "interrupted": "interrupted",
    "resumable": "decided",
}


class ResumeRefused(Exception):
    """Why a run is not resumed here, with the HTTP status that says so."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class DurableRuns:
    """The durable runs of the journal at `location` (a SQLite path or a postgresql:// URL), for one UI.

    The journal is opened when first needed, and only if it exists: a journal that is not there yet (or
    cannot be opened) is a `problem` the page shows, and is looked for again on the next request.
    `agents` are the agents the server may resume runs with, besides applications' runs; `approver`
    decides the calls of resumed runs that need approval.
    """

    def __init__(
        self,
        location: str | os.PathLike[str] | None,
        store: RunStore,
        approver: Approver,
        agents: Iterable[Agent[Any]] = (),
    ) -> None:
        self.location = None if location is None else os.fspath(location)
        self.store = store
        self.approver = approver
        self.agents = {agent.name: agent for agent in agents}
        self.problem: str | None = None
        self._journal: Journal | None = None
        self._opening = threading.Lock()
        # Runs this server resumes now (None: reserved while a resume is checked), and how the last ended.
        self._resuming: dict[str, asyncio.Task[None] | None] = {}
        self._endings: dict[str, str] = {}
        self._resumed_any = False

    # -- the journal ----------------------------------------------------------------------------------

    @property
    def where(self) -> str | None:
        """The journal's location as shown: a Postgres URL without its password."""
        if self.location is None or not is_postgres_url(self.location):
            return self.location
        parts = urlsplit(self.location)
        host = parts.hostname or ""
        user = f"{parts.username}@" if parts.username else ""
        port = f":{parts.port}" if parts.port else ""
        return urlunsplit((parts.scheme, f"{user}{host}{port}", parts.path, "", ""))

    def journal(self) -> Journal | None:
        """The journal, opened on first use; None (and `problem` says why) while there is none to open."""
        with self._opening:
            if self._journal is None:
                self._journal = self._open()
            return self._journal

    def _open(self) -> Journal | None:
        if self.location is None:
            self.problem = "This UI was started without a journal: start it with `retinue ui --journal PATH_OR_URL`."
            return None
        if not is_postgres_url(self.location) and not os.path.exists(self.location):
            # Not created here: a mistyped path must not become an empty journal.
            self.problem = (
                f"No journal at {self.location} yet. Durable runs are written to one by `retinue run APP "
                "--durable` or `agent.start(prompt, journal=...)`; to watch another journal, start "
                "`retinue ui --journal PATH_OR_URL`."
            )
            return None
        try:
            journal = journal_at(self.location)
        except RetinueError as exc:  # not a journal, Postgres unreachable, or psycopg not installed
            self.problem = str(exc)
            return None
        self.problem = None
        return journal

    async def close(self) -> None:
        """Stop the resumes running here (each run records "cancelled" and stays resumable), close the journal.

        Also closes what the resumed runs' models opened in this event loop (HTTP connections, which the loop's
        models share), so that the loop can end cleanly; a model asked again later opens them again.
        """
        running = [task for task in self._resuming.values() if task is not None]
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        if self._resumed_any:
            await _close_models(self.agents.values())
        with self._opening:
            journal, self._journal = self._journal, None
        if journal is not None:
            await asyncio.to_thread(journal.close)

    # -- what the page shows --------------------------------------------------------------------------

    def listing(self, limit: int = LISTED_RUNS) -> dict[str, Any]:
        """The journal's root runs, newest first, with what the list draws; or the problem with the journal."""
        body: dict[str, Any] = {"journal": self.where, "problem": None, "agents": sorted(self.agents), "runs": []}
        journal = self.journal()
        if journal is None:
            body["problem"] = self.problem
            return body
        try:
            views = durable_runs(journal, limit)
        except RetinueError as exc:
            body["problem"] = str(exc)
            return body
        body["runs"] = [self._summary(view) for view in views]
        return body

    def detail(self, run_id: str) -> dict[str, Any] | None:
        """One root run with its approvals and definition changes; None if the journal has no such run."""
        journal = self.journal()
        try:
            view = None if journal is None else durable_run(journal, run_id)
        except RetinueError as exc:  # a Postgres journal that cannot be reached now
            self.problem = str(exc)
            return None
        if view is None:
            return None
        return {
            **self._summary(view),
            "approvals": [
                {
                    "approval_id": record.approval_id,
                    "agent": record.agent,
                    "tool": record.tool,
                    "arguments": record.arguments,
                    "asked_at": record.asked_at,
                    "expires_at": record.expires_at,
                    "approved": record.approved,
                    "reason": record.reason,
                    "decided_by": record.decided_by,
                    "decide": None
                    if record.decided
                    else f"retinue approve {run_id} {record.approval_id}{self._journal_flag()} --yes",
                }
                for record in view.approvals
            ],
            "definition_changes": list(view.allowed_changes),
            "lease_expires_at": view.run.lease_expires_at if view.state == "running" else None,
        }

    def _summary(self, view: DurableRunView) -> dict[str, Any]:
        run, paid = view.run, view.usage.paid
        resume_by, resume_problem = self._resume_plan(view)
        return {
            "run_id": run.run_id,
            "agent": run.agent,
            # Whole: cut here, a secret in it could lose the shape the redactor knows it by.
            "prompt": run.prompt,
            "state": view.state,
            "status": run.status,
            "label": _label(view),
            "note": self._note(view),
            "started_at": run.created_at,
            "updated_at": run.updated_at,
            # Each model call recorded in the journal is one turn of one of the tree's agents, paid once.
            "turns": paid.requests,
            "paid": paid.headline(),
            "replayed": view.usage.replayed.headline(),
            "pending_approvals": len(view.pending_approvals),
            "resumable": view.resumable and run.run_id not in self._resuming,
            "resuming_here": run.run_id in self._resuming,
            "resume_by": resume_by,
            "resume_problem": resume_problem,
            "resumed_here": self._endings.get(run.run_id),
            "traced": self.store.get_run(run.run_id) is not None,
        }

    def _resume_plan(self, view: DurableRunView) -> tuple[str | None, str | None]:
        """For a run that can go on: what would resume it here, or why nothing can."""
        if not view.resumable:
            return None, None
        try:
            resumer = self._resumer(view)
        except ResumeRefused as refused:
            return None, str(refused)
        if isinstance(resumer, Launch):
            options = "".join(f" --{name} {shlex.quote(value)}" for name, value in resumer.options.items())
            return f"retinue run {resumer.app} --arch {resumer.architecture}{options}, as it was started", None
        return f"agent '{resumer.name}', given with --agent", None

    def _note(self, view: DurableRunView) -> str:
        """The state in a sentence: what happened, and what can be done about it."""
        run = view.run
        if run.run_id in self._resuming:
            return "This UI is resuming it: its trace shows it live."
        match view.state:
            case "running":
                until = (
                    "" if run.lease_expires_at is None else f" (its lease runs until {_clock(run.lease_expires_at)})"
                )
                return f"A live process holds it{until}: it cannot be resumed while that process runs it."
            case "waiting":
                return (
                    f"It waits for {len(view.pending_approvals)} approval(s) to be decided (`retinue approve`); "
                    "then it can be resumed."
                )
            case "interrupted":
                how = "was cancelled" if run.status == "cancelled" else "died (or was killed)"
                return (
                    f"Its process {how} before the run ended, and no live process holds its lease. Resumed, it goes "
                    "on where its journal stops: recorded model calls are not paid again, recorded tool calls not "
                    "run again."
                )
            case "resumable":
                return "Every approval it waited for is decided (or expired): resumed, it goes on with the decisions."
        return f"It has finished ({run.status}): there is nothing to resume."

    def _journal_flag(self) -> str:
        from ..journal.resume import default_journal_path

        if self.location is None or self.location == os.fspath(default_journal_path()):
            return ""
        return f" --journal {self.where}"

    # -- resuming -------------------------------------------------------------------------------------

    async def resume(self, run_id: str) -> dict[str, Any]:
        """Resume `run_id` in the background, once its lease is taken; raises `ResumeRefused` saying why not.

        Returns once the run has started again here (or has already ended): from then on its trace shows it.
        """
        if run_id in self._resuming:
            raise ResumeRefused(409, f"run {run_id} is being resumed by this UI already: its trace shows it live")
        self._resuming[run_id] = None  # reserved while it is checked and claimed
        try:
            journal = await asyncio.to_thread(self.journal)
            if journal is None:
                raise ResumeRefused(404, self.problem or "no journal")
            await journal.expire_approvals()  # an approval past its expiry is a denial: its run may go on
            view = await asyncio.to_thread(durable_run, journal, run_id)
            if view is None:
                raise ResumeRefused(404, f"the journal {self.where} has no durable run {run_id}")
            if not view.resumable:
                raise ResumeRefused(409, _why_not_resumable(view))
            resumer = await asyncio.to_thread(self._resumer, view)
            await self._claim(journal, view)
            started = asyncio.Event()
            task = asyncio.create_task(self._go_on(journal, run_id, resumer, started), name=f"retinue ui: {run_id}")
            self._resuming[run_id] = task
            await _first_of(task, started)
            if not started.is_set():  # it ended before running: the journal refused it, or it could not be built
                error = task.exception()
                if error is not None:
                    raise _refusal(run_id, error)
            return {"run_id": run_id, "resuming": not task.done(), "ended": self._endings.get(run_id)}
        finally:
            if self._resuming.get(run_id) is None:
                self._resuming.pop(run_id, None)

    async def _claim(self, journal: Journal, view: DurableRunView) -> None:
        """Lease the run to this server, as a worker claims a run: only a pending run no live process holds.

        Between the look above and here another process (another UI, a worker) may have taken the run, or
        even finished it; the claim, one transaction, is what decides.
        """
        run_id = view.run.run_id
        others = await asyncio.to_thread(lambda: {run.run_id for run in journal.pending_runs()} - {run_id})
        claimed = await journal.claim_pending([view.run.agent], exclude=others)
        if claimed is not None and claimed.run_id != run_id:  # a run queued since: not the one asked for
            await journal.release_lease(claimed.run_id)
            claimed = None
        if claimed is None:
            now = await asyncio.to_thread(durable_run, journal, run_id)
            if now is not None and not now.resumable:
                raise ResumeRefused(409, _why_not_resumable(now))
            raise ResumeRefused(409, f"Another process took run {run_id} first: resume it once that one has ended.")

    def _resumer(self, view: DurableRunView) -> Launch | Agent[Any]:
        """What resumes the run: its application's launch record, else the agent of its name given to the UI."""
        run = view.run
        if self.location is not None:
            try:
                launch = load_launch(state_dir_of(self.location, run.run_id))
            except RetinueError as exc:
                raise ResumeRefused(422, str(exc)) from exc
            if launch is not None:
                return launch
        agent = self.agents.get(run.agent)
        if agent is None:
            given = f" (it was given {', '.join(sorted(self.agents))})" if self.agents else ""
            raise ResumeRefused(
                400,
                f"This UI does not know agent '{run.agent}', which runs {run.run_id}{given}: start it with "
                "`retinue ui --agent MODULE:NAME`, naming where that agent is defined (repeat --agent for several).",
            )
        return agent

    async def _go_on(self, journal: Journal, run_id: str, resumer: Launch | Agent[Any], started: asyncio.Event) -> None:
        recorder = self.store.recorder()
        self._resumed_any = True

        def on_event(event: Event) -> None:
            started.set()  # the first event comes once the journal has leased the run to this server
            recorder(event)

        try:
            if isinstance(resumer, Launch):
                result = await self._resume_app_run(journal, run_id, resumer, on_event)
            else:
                result = await resumer.resume(run_id, journal=journal, approver=self.approver, on_event=on_event)
            self._endings[run_id] = result.describe()
            log.info("resumed run %s: %s", run_id, result.describe())
        except BaseException as exc:
            if not started.is_set():
                # Claimed but never opened: give the lease back, for another process to take.
                with contextlib.suppress(RetinueError):
                    await journal.release_lease(run_id)
                raise  # `resume` tells the one who asked
            if not isinstance(exc, Exception):
                raise  # cancelled (the server stops): the run records it, and stays resumable
            log.exception("the resume of run %s failed", run_id)
            self._endings[run_id] = f"failed: {exc}"
        finally:
            self._resuming.pop(run_id, None)

    async def _resume_app_run(self, journal: Journal, run_id: str, launch: Launch, on_event: Any) -> RunResult[Any]:
        """Go on with a run of `retinue run APP --durable` as it was started: application, architecture, model."""
        from ..apps import load_app, named_options
        from ..journal.app_runs import DurableApp

        assert self.location is not None
        # The app as installed, without `retinue improve` patches: the run is pinned to the definition it
        # started with, and `retinue run --durable` runs the app itself.
        app = load_app(launch.app)
        if not isinstance(app, DurableApp):
            raise ConfigurationError(f"{launch.app} cannot run durably: it does not say where its state is kept")
        state_dir = state_dir_of(self.location, run_id)
        # By the names the app gives its options now: a record may hold one under an old name (`user`).
        options = named_options(app, launch.options)
        session = app.durable_session(launch.architecture, launch.model, self.approver, options, state_dir=state_dir)
        try:
            return await session.agent.resume(
                run_id, journal=journal, deps=session.deps, approver=self.approver, on_event=on_event
            )
        finally:
            if session.close is not None:
                closing = session.close()
                if closing is not None:
                    await closing


async def _close_models(agents: Iterable[Agent[Any]]) -> None:
    from ..models.base import close_model
    from ..models.resolve import close_resolved_models

    for agent in agents:
        with contextlib.suppress(Exception):  # a model that never resolved has nothing open
            await close_model(agent.resolved_model())
    await close_resolved_models()  # the models named by a string: an application's, and sub-agents'


async def _first_of(task: asyncio.Task[None], started: asyncio.Event) -> None:
    waiting = asyncio.ensure_future(started.wait())
    try:
        await asyncio.wait({task, waiting}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiting.cancel()


def _refusal(run_id: str, error: BaseException) -> BaseException:
    """The answer to a resume that ended before its run started."""
    if isinstance(error, RunLeasedError):
        return ResumeRefused(409, f"Another process took run {run_id} first: {error}")
    if isinstance(error, DefinitionChangedError):
        return ResumeRefused(409, str(error))
    if isinstance(error, RetinueError):
        return ResumeRefused(422, f"Run {run_id} cannot be resumed here: {error}")
    return error


def _why_not_resumable(view: DurableRunView) -> str:
    run = view.run
    match view.state:
        case "running":
            return (
                f"Run {run.run_id} is running: a live process holds its lease. It can be resumed once that process "
                "has ended (or its lease has run out)."
            )
        case "waiting":
            return (
                f"Run {run.run_id} waits for approval: decide with `retinue approve {run.run_id}` (it lists the "
                "calls), then resume it."
            )
    return f"Run {run.run_id} has finished ({run.status}): there is nothing to resume."


def _label(view: DurableRunView) -> str:
    if view.state == "done":
        return f"finished ({view.run.status})"
    if view.state == "waiting":
        return f"waiting for approval ({len(view.pending_approvals)})"
    return STATE_LABELS[view.state]


def _clock(at: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at))
