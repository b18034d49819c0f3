"""A worker: take the pending runs of a journal, one at a time or a few at once, resume each, wait for more.

    await work("postgresql://db/app", [planner, booker], concurrency=4)

Any number of workers, in any number of processes and machines, may serve one journal: each run is taken
by one of them at a time (`Journal.claim_pending` leases it), and a run whose worker died is taken over by
another once that worker's lease has expired. Pending runs are those killed or cancelled mid-way, those
queued with `submit_run`, and those that waited for decisions now recorded (or expired). A run that comes to
wait for a decision ends here "waiting"; a worker takes it again once it is decided. Cancelling `work` stops
the worker: the runs it was running are cancelled, which leaves them pending and released, for another
worker to go on with.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from ..errors import JournalError, LeaseLostError, RunLeasedError
from .journal import Journal, JournalRun
from .resume import agents_by_name, open_journal

if TYPE_CHECKING:
    from ..agent import Agent
    from ..result import RunResult

log = logging.getLogger("retinue.journal")

IDLE_CHECK_SECONDS = 5.0
"""The longest a waiting worker sleeps before looking for pending runs again, woken by nothing."""

RunDone = Callable[[str, "RunResult[Any]"], None]


async def work(
    journal: Journal | str | os.PathLike[str],
    agents: Agent[Any] | Iterable[Agent[Any]] | Mapping[str, Agent[Any]],
    *,
    concurrency: int = 1,
    drain: bool = False,
    on_done: RunDone | None = None,
    **run_options: Any,
) -> int:
    """Resume the pending runs of `journal` whose agent is among `agents`, `concurrency` at a time, until cancelled.

    `drain`: return instead once no pending run of these agents is left (runs other workers hold count as
    left: their worker may die). `on_done(run_id, result)` is called as each run ends; `run_options`
    (deps, approver, on_event, limits) go to every `resume`. Returns how many runs this worker ended.
    """
    if concurrency < 1:
        raise ValueError(f"concurrency={concurrency!r}: give 1 or more runs at a time")
    by_name = agents_by_name(agents)
    with open_journal(journal) as opened:
        return await _Worker(opened, by_name, on_done, run_options).work(concurrency, drain)


class _Worker:
    def __init__(
        self, journal: Journal, agents: dict[str, Agent[Any]], on_done: RunDone | None, run_options: dict[str, Any]
    ) -> None:
        self.journal = journal
        self.agents = agents
        self.on_done = on_done
        self.run_options = run_options
        self.running: dict[asyncio.Task[bool], str] = {}
        self.failed: set[str] = set()  # runs that could not be resumed here: not taken again by this worker
        self.ended = 0

    async def work(self, concurrency: int, drain: bool) -> int:
        try:
            while True:
                while len(self.running) < concurrency and (run := await self._claim()) is not None:
                    task = asyncio.create_task(self._resume(run), name=f"retinue worker: run {run.run_id}")
                    self.running[task] = run.run_id
                if drain and not self.running and not self._pending_left():
                    return self.ended
                await self._wait(concurrency)
        finally:
            await self._stop_running()

    async def _claim(self) -> JournalRun | None:
        await self.journal.expire_approvals()  # a run whose approvals have all expired may go on, denied
        return await self.journal.claim_pending(self.agents, exclude={*self.failed, *self.running.values()})

    def _pending_left(self) -> bool:
        return any(run.agent in self.agents and run.run_id not in self.failed for run in self.journal.pending_runs())

    async def _wait(self, concurrency: int) -> None:
        """Until a run of ours ends, or (with a slot free) a pending run may have become free to claim."""
        waiting: set[asyncio.Future[Any]] = set(self.running)
        wake = None
        if len(self.running) < concurrency:
            wake = asyncio.ensure_future(self.journal.wait_for_pending(IDLE_CHECK_SECONDS))
            waiting.add(wake)
        try:
            done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if wake is not None and not wake.done():
                wake.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await wake
        if wake is not None and wake in done:
            wake.result()  # a journal that cannot be reached stops the worker
        for task in done:
            if task in self.running:
                del self.running[task]
                self.ended += task.result()

    async def _resume(self, run: JournalRun) -> bool:
        """Resume `run`; whether it ended here (a run another process took over meanwhile did not)."""
        try:
            result = await self.agents[run.agent].resume(run.run_id, journal=self.journal, **self.run_options)
        except RunLeasedError as exc:
            log.info("run %s: taken by another worker first (%s)", run.run_id, exc)
            return False
        except Exception as exc:  # noqa: BLE001 - one run that cannot be resumed must not stop the others
            log.error("run %s cannot be resumed here, so it is left for others: %s", run.run_id, exc)
            self.failed.add(run.run_id)
            with contextlib.suppress(JournalError):
                await self.journal.release_lease(run.run_id)
            return False
        if isinstance(result.error, LeaseLostError):
            log.warning("run %s: this worker lost its lease (it stalled), and another took the run over", run.run_id)
            return False
        log.info("run %s: %s", run.run_id, result.describe())
        if self.on_done is not None:
            self.on_done(run.run_id, result)
        return True

    async def _stop_running(self) -> None:
        for task in self.running:
            task.cancel()  # each run records "cancelled" and releases its lease: pending, for another worker
        await asyncio.gather(*self.running, return_exceptions=True)
        self.running.clear()
