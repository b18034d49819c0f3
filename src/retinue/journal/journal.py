"""What the loop writes ahead, and what it replays: the journal protocol and a run's handle on it.

A durable run awaits a committed journal entry at three points of every step: the model's response, before
any of its tools run; a write tool's start (with its idempotency key), before the tool body; each tool's
output, before the next model request. A restarted process runs the loop again from the start. Each model
call whose response is recorded is answered from the journal without calling the model, each tool call
whose output is recorded is answered without running the tool, and the run goes on live from the first
point nothing was recorded for.

Entries are keyed by run id and turn (and tool call id, or the purpose and number of a model call), never
by their order in the file, so the concurrent sub-runs of one tree cannot be mis-paired; sub-run ids derive
from their parent's (`run_context.sub_run_id`).

`Journal` is what a backend implements (`SQLiteJournal`, `PostgresJournal`). `RunJournal` is one run's handle, in
`RunContext.journal`: the loop calls only its few methods. `NO_JOURNAL`, the handle of a run without a
journal, does nothing and costs next to nothing.

Payloads are exact, not redacted: the journal must give back what the model and the tools said. It is
readable by its owner only; the trace store (`retinue.store`) is the redacted view for people.

Wall time spent in earlier processes counts against `Limits.max_wall_seconds`: each entry records how long
its run had been going when it was written, and the lease's heartbeat records it for the root between
entries (a long tool call). A resumed run's clock starts from the latest of these, so a run cannot escape
its wall-time limit by being restarted; the time between a kill and the resume does not count.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeAlias

from ..errors import JournalError, LeaseLostError
from ..messages import Message, ModelResponse
from ..usage import Usage

# The serializer (in the trace store's package) is imported by the methods of durable runs only: a run
# without a journal must not pay for loading the store.
if TYPE_CHECKING:
    from ..limits import Budget
    from ..messages import ToolCall
    from ..result import UncertainCall
    from ..run_context import RunContext, SubRuns

log = logging.getLogger("retinue.journal")

JournalStatus: TypeAlias = Literal["running", "completed", "limit", "error", "cancelled"]
"""A journalled run's status: "running" until it ends; a run killed mid-way stays "running"."""

PENDING_STATUSES: tuple[JournalStatus, ...] = ("running", "cancelled")
"""Runs that ended without an ending of their own (killed, or cancelled), which `resume_pending` resumes."""


@dataclass(frozen=True, slots=True)
class RunOpening:
    """A run as it opens: who it is, where it sits in its tree, and what it was asked."""

    run_id: str
    root_run_id: str
    parent_run_id: str | None
    parent_turn: int | None
    parent_tool_call_id: str | None
    agent: str
    prompt: str
    history: str | None  # the messages it continues from, as JSON


@dataclass(slots=True)
class RecordedRun:
    """What a run that already exists in the journal recorded, for its replay."""

    prompt: str
    history: str | None
    status: JournalStatus
    entries: dict[tuple[int, str], str]
    """Entry bodies (JSON) by (turn, slot): "model:<purpose>:<n>", "start:<call id>", "output:<call id>"."""
    delegated: set[tuple[int, str]]
    """(turn, tool call id) of this run's calls that started sub-runs."""
    elapsed_seconds: float = 0.0
    """How long the run had been going at its last entry or heartbeat, in every process that ran it."""


@dataclass(frozen=True, slots=True)
class JournalRun:
    """A run as listed by the journal."""

    run_id: str
    root_run_id: str
    parent_run_id: str | None
    agent: str
    prompt: str
    status: JournalStatus
    created_at: float
    updated_at: float
    lease_owner: str | None
    lease_expires_at: float | None


class Journal(Protocol):
    """A write-ahead journal of durable runs. Every `async` method returns once its write is committed.

    A root run is leased to one owner at a time: `open_run` of a root (or `claim_pending`) takes the lease
    (or raises `RunLeasedError`), `renew_lease` extends it, finishing the root or `release_lease` releases
    it, and every append of a tree is refused (`LeaseLostError`) once another owner has taken its root over.
    `elapsed` arguments are how long the run has been going, in seconds, over every process that ran it.
    """

    owner: str
    lease_seconds: float

    async def open_run(self, opening: RunOpening) -> RecordedRun | None:
        """Create the run and return None, or return what it recorded; a root run is leased first."""
        ...

    async def append(self, root_run_id: str, run_id: str, turn: int, slot: str, body: str, elapsed: float) -> None:
        """Record one entry of `run_id` (in the tree `root_run_id`, whose lease this owner must hold)."""
        ...

    async def finish_run(self, root_run_id: str, run_id: str, status: JournalStatus) -> None:
        """Record how the run ended; a root run's lease is released."""
        ...

    async def renew_lease(self, root_run_id: str, elapsed: float) -> None: ...

    async def release_lease(self, root_run_id: str) -> None:
        """Give the root's lease up without ending the run: it stays pending, for another owner to take."""
        ...

    async def claim_pending(self, agents: Collection[str], exclude: Collection[str] = ()) -> JournalRun | None:
        """Take the lease of the oldest pending root run of one of `agents` that no live owner holds.

        For workers: two owners never claim the same run. Runs in `exclude` are passed over. The lease is
        this owner's until it opens the run (which keeps it) or releases it; None when there is nothing to take.
        """
        ...

    async def wait_for_pending(self, max_seconds: float) -> None:
        """Return once a pending run may have become free to claim (released, or its lease ran out), or after
        `max_seconds`, whichever is first; it may return earlier."""
        ...

    async def save_state(self, root_run_id: str, name: str, body: str) -> None:
        """Keep `body` as the latest state `name` of the tree (the decision record, say)."""
        ...

    def load_state(self, root_run_id: str, name: str) -> str | None: ...

    def get_run(self, run_id: str) -> JournalRun | None: ...

    def pending_runs(self) -> list[JournalRun]:
        """Root runs that ended without an ending of their own (`PENDING_STATUSES`), oldest first."""
        ...

    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class RecordedOutput:
    """A tool call's recorded output, with the sub-runs it had started and what they spent (replayed, not rerun)."""

    content: str
    is_error: bool
    sub_runs: int = 0
    sub_run_usage: Usage | None = None


@dataclass(frozen=True, slots=True)
class RecordedCall:
    """A tool call an earlier process recorded: its output, or only its start (it was cut off mid-way)."""

    output: tuple[str, bool] | None
    delegated: bool  # it had started a sub-run, which journals its own calls


class RunJournal:
    """A run's handle on its journal. This base class is the handle of a run without one: it does nothing.

    `JournalledRun` is the real one. The loop calls the same methods either way, so it has no branches for
    durable runs.
    """

    __slots__ = ()

    active: bool = False

    def child(self, run_id: str) -> RunJournal:
        """The handle of the sub-run `run_id` of this run."""
        return self

    async def open(self, context: RunContext, prompt: str, history: list[Message] | None) -> tuple[str, Any]:
        """Open the run in the journal; the prompt and history to run with (the recorded ones, on resume)."""
        return prompt, history

    def model_slot(self, turn: int, purpose: str) -> str:
        """The slot of the next model call of `purpose` in `turn`: its key in the journal."""
        return ""

    def replayed_response(self, turn: int, slot: str) -> ModelResponse | None:
        """The recorded response of that model call, or None if it must be made live."""
        return None

    async def record_response(self, turn: int, slot: str, response: ModelResponse) -> None:
        return None

    def replayed_output(self, turn: int, call: ToolCall) -> RecordedOutput | None:
        """The recorded output of a tool call, or None if it must run."""
        return None

    def cut_off_call(self, turn: int, call: ToolCall) -> RecordedCall | None:
        """The record of a call that an earlier process started but did not finish, if this is one."""
        return None

    async def record_call_start(self, turn: int, call: ToolCall, key: str) -> None:
        return None

    async def record_call_output(
        self, turn: int, call: ToolCall, output: tuple[str, bool], sub_runs: SubRuns | None
    ) -> None:
        return None

    def note_uncertain(self, call: UncertainCall) -> None:
        return None

    def uncertain_calls(self) -> tuple[UncertainCall, ...]:
        return ()

    async def save_state(self, name: str, snapshot: Callable[[], str]) -> None:
        """Save the tree's state `name`, as `snapshot()` gives it now (not called without a journal)."""
        return None

    def load_state(self, name: str) -> str | None:
        return None

    async def finish(self, status: JournalStatus) -> None:
        return None


NO_JOURNAL = RunJournal()


@dataclass(eq=False)
class JournalledTree:
    """What the runs of one tree share: the journal, the root's id and lease, the uncertain calls found."""

    journal: Journal
    root_run_id: str
    uncertain: list[UncertainCall] = field(default_factory=list)
    lease_renewal: asyncio.Task[None] | None = None

    def start_lease_renewal(self, elapsed: Callable[[], float]) -> None:
        self.lease_renewal = asyncio.get_running_loop().create_task(
            self._renew_lease(elapsed), name=f"retinue journal lease of {self.root_run_id}"
        )

    async def stop_lease_renewal(self) -> None:
        task, self.lease_renewal = self.lease_renewal, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _renew_lease(self, elapsed: Callable[[], float]) -> None:
        # A third of the lease: two renewals may be late (a busy disk) before another process could take over.
        interval = self.journal.lease_seconds / 3
        while True:
            await asyncio.sleep(interval)
            try:
                await self.journal.renew_lease(self.root_run_id, elapsed())
            except LeaseLostError:
                log.warning("run %s: another process took its lease over; its next write will fail", self.root_run_id)
                return
            except JournalError as exc:  # the next append will meet the same problem and end the run
                log.warning("run %s: the lease could not be renewed: %s", self.root_run_id, exc)


class JournalledRun(RunJournal):
    """The handle of a run written ahead into `tree.journal`."""

    __slots__ = ("_budget", "_delegated", "_model_calls", "_recorded", "_tree", "run_id")

    active = True

    def __init__(self, tree: JournalledTree, run_id: str) -> None:
        self._tree = tree
        self.run_id = run_id
        self._recorded: dict[tuple[int, str], str] = {}  # what is left to replay
        self._delegated: set[tuple[int, str]] = set()
        self._model_calls: dict[tuple[int, str], int] = {}  # model calls made so far, by (turn, purpose)
        self._budget: Budget | None = None  # set by `open`: the run's clock, for the elapsed time of entries

    @classmethod
    def root(cls, journal: Journal, run_id: str) -> JournalledRun:
        return cls(JournalledTree(journal, run_id), run_id)

    @property
    def journal(self) -> Journal:
        return self._tree.journal

    def child(self, run_id: str) -> RunJournal:
        return JournalledRun(self._tree, run_id)

    async def open(self, context: RunContext, prompt: str, history: list[Message] | None) -> tuple[str, Any]:
        from ..store.serialize import decode, dumps

        tree = self._tree
        parent = context.parent
        opening = RunOpening(
            run_id=self.run_id,
            root_run_id=tree.root_run_id,
            parent_run_id=parent.run_id if parent is not None else None,
            parent_turn=parent.budget.turns if parent is not None else None,
            parent_tool_call_id=context.tool_call_id,
            agent=context.agent.name,
            prompt=prompt,
            history=dumps(history) if history else None,
        )
        recorded = await tree.journal.open_run(opening)
        self._budget = context.budget
        if recorded is not None and recorded.status in PENDING_STATUSES:
            # Cut off mid-way: the time it ran before counts against its wall-time limit. A run that had
            # ended is replayed to its recorded ending, within the limits it met the first time.
            context.budget.started_at -= recorded.elapsed_seconds
        if parent is None:
            tree.start_lease_renewal(self._elapsed)
        if recorded is None:
            return prompt, history
        self._recorded = recorded.entries
        self._delegated = recorded.delegated
        # The recorded prompt, not the one computed again: a sub-agent's prompt may quote shared state (the
        # decision record) that has moved on since.
        restored = None if recorded.history is None else decode(json.loads(recorded.history), list[Message])
        return recorded.prompt, restored

    def _elapsed(self) -> float:
        budget = self._budget
        return 0.0 if budget is None else time.monotonic() - budget.started_at

    def model_slot(self, turn: int, purpose: str) -> str:
        # Numbered per purpose and turn: a compaction and the turn's own call, or two summaries, never collide.
        made = self._model_calls.get((turn, purpose), 0)
        self._model_calls[(turn, purpose)] = made + 1
        return f"model:{purpose}:{made}"

    def replayed_response(self, turn: int, slot: str) -> ModelResponse | None:
        if not self._recorded:
            return None
        body = self._recorded.pop((turn, slot), None)
        if body is None:
            return None
        from ..store.serialize import loads_as

        return loads_as(ModelResponse, body)

    async def record_response(self, turn: int, slot: str, response: ModelResponse) -> None:
        from ..store.serialize import dumps

        await self._append(turn, slot, dumps(response))

    def replayed_output(self, turn: int, call: ToolCall) -> RecordedOutput | None:
        if not self._recorded:
            return None
        body = self._recorded.pop((turn, f"output:{call.id}"), None)
        if body is None:
            return None
        self._recorded.pop((turn, f"start:{call.id}"), None)
        content, is_error, *sub_runs = json.loads(body)
        if not sub_runs:
            return RecordedOutput(str(content), bool(is_error))
        count, usage = sub_runs
        return RecordedOutput(str(content), bool(is_error), int(count), Usage(**usage))

    def cut_off_call(self, turn: int, call: ToolCall) -> RecordedCall | None:
        if not self._recorded or self._recorded.pop((turn, f"start:{call.id}"), None) is None:
            return None
        return RecordedCall(output=None, delegated=(turn, call.id) in self._delegated)

    async def record_call_start(self, turn: int, call: ToolCall, key: str) -> None:
        from ..store.serialize import dumps

        body = dumps({"name": call.name, "arguments": call.arguments, "key": key})
        await self._append(turn, f"start:{call.id}", body)

    async def record_call_output(
        self, turn: int, call: ToolCall, output: tuple[str, bool], sub_runs: SubRuns | None
    ) -> None:
        fields: list[Any] = list(output)
        if sub_runs is not None:
            fields += [sub_runs.count, dataclasses.asdict(sub_runs.usage)]
        body = json.dumps(fields, ensure_ascii=False)
        await self._append(turn, f"output:{call.id}", body)

    async def _append(self, turn: int, slot: str, body: str) -> None:
        await self.journal.append(self._tree.root_run_id, self.run_id, turn, slot, body, self._elapsed())

    def note_uncertain(self, call: UncertainCall) -> None:
        self._tree.uncertain.append(call)

    def uncertain_calls(self) -> tuple[UncertainCall, ...]:
        uncertain = self._tree.uncertain
        if self.run_id == self._tree.root_run_id:
            return tuple(uncertain)  # the root answers for its whole tree
        return tuple(call for call in uncertain if call.run_id == self.run_id)

    async def save_state(self, name: str, snapshot: Callable[[], str]) -> None:
        # Taken now, before any other change: snapshots are committed in the order they were taken.
        await self.journal.save_state(self._tree.root_run_id, name, snapshot())

    def load_state(self, name: str) -> str | None:
        return self.journal.load_state(self._tree.root_run_id, name)

    async def finish(self, status: JournalStatus) -> None:
        tree = self._tree
        is_root = self.run_id == tree.root_run_id
        if is_root:
            await tree.stop_lease_renewal()
        try:
            await tree.journal.finish_run(tree.root_run_id, self.run_id, status)
        except JournalError as exc:
            # The run has ended either way; a resume will find it "running" and replay it to the same end.
            log.warning("run %s ended %s, but the journal could not record it: %s", self.run_id, status, exc)
