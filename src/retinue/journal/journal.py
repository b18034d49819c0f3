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

Besides the entries, a journal holds each run's approvals (`ApprovalRecord`: a call waiting for a person,
and the decision once recorded; see `retinue.approvals`) and the definition its tree is pinned to (see
`retinue.journal.definition`): a run that waits for a decision ends "waiting", and becomes "decided", for
`resume_pending` and workers to go on with, once every approval it waits for is decided or has expired.
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

from .. import approvals
from ..approvals import Approval, ApprovalRecord, ApprovalRequest, Approver, AwaitingDecision
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

JournalStatus: TypeAlias = Literal["running", "waiting", "decided", "completed", "limit", "error", "cancelled"]
"""A journalled run's status: "running" until it ends; a run killed mid-way stays "running".

"waiting": suspended until a person decides an approval; "decided": every approval it waited for is
decided (or expired), and it is ready to go on.
"""

PENDING_STATUSES: tuple[JournalStatus, ...] = ("running", "cancelled", "decided")
"""Runs to go on with, which `resume_pending` and workers resume: killed, cancelled, or decided."""

UNFINISHED_STATUSES: tuple[JournalStatus, ...] = (*PENDING_STATUSES, "waiting")
"""Runs that have not reached an ending of their own: the time they ran so far counts when they go on."""

DECIDED_BY_APPROVER = "the run's approver"
DECIDED_BY_EXPIRY = "expiry"


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
    definition: str | None = None  # a root's pinned definition (`definition.fingerprint`), as JSON


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


@dataclass(frozen=True, slots=True)
class RunUsage:
    """What a run's tree spent: `paid`, every model call its processes made (each recorded once in the
    journal); `replayed`, what resumes were answered from the journal instead, free (over every process
    that reached an ending or a wait)."""

    paid: Usage
    replayed: Usage


@dataclass(frozen=True, slots=True)
class DefinitionPin:
    """The definition a root run is pinned to from `at` on; `changes` say how it differs from the one before
    (empty for the first), allowed by whoever resumed it with `allow_changed_definition=True`."""

    definition: str
    changes: tuple[str, ...]
    at: float


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

    async def finish_run(
        self, root_run_id: str, run_id: str, status: JournalStatus, replayed: Usage | None = None
    ) -> None:
        """Record how the run ended (or that it waits), and what this process replayed of it; a root's lease is
        released. A root ending "waiting" with no approval left undecided is "decided" instead."""
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
        """Root runs to go on with (`PENDING_STATUSES`), oldest first."""
        ...

    def list_runs(self, limit: int | None = None) -> list[JournalRun]:
        """Root runs, newest first: at most `limit`."""
        ...

    def lease_is_live(self, run: JournalRun) -> bool:
        """Whether a live owner holds `run`'s lease now (not merely one that has not expired yet)."""
        ...

    def run_usage(self, root_run_id: str) -> RunUsage: ...

    # Approvals: a decision is not fenced by any lease (a person decides while nobody runs the run).

    async def record_approval(self, record: ApprovalRecord) -> None:
        """Record a call of the tree `record.root_run_id` waiting for a decision (this owner holds its lease)."""
        ...

    def get_approval(self, root_run_id: str, approval_id: str) -> ApprovalRecord | None: ...

    def approvals(self, root_run_id: str) -> list[ApprovalRecord]:
        """Every approval of the tree, decided or not, in the order they were asked."""
        ...

    async def decide(
        self,
        root_run_id: str,
        approval_id: str,
        *,
        approved: bool,
        reason: str = "",
        by: str | None = None,
        arguments_digest: str | None = None,
    ) -> ApprovalRecord:
        """Record a decision; the run becomes "decided" (resumable) once none it waits for is left undecided.

        Raises `JournalError` for an unknown approval, one already decided otherwise, one expired (it is
        denied), and, with `arguments_digest`, a decision made for other arguments than the call's.
        """
        ...

    async def expire_approvals(self) -> list[ApprovalRecord]:
        """Record every undecided approval past its expiry as denied; the ones so decided."""
        ...

    # Pinned definitions.

    def pinned_definition(self, root_run_id: str) -> DefinitionPin | None:
        """The definition the run is pinned to now (its latest pin), or None (queued, or an older journal)."""
        ...

    def definition_pins(self, root_run_id: str) -> list[DefinitionPin]:
        """Every pin of the run, the first one first: the changes allowed on each resume that allowed some."""
        ...

    async def pin_definition(self, root_run_id: str, definition: str, changes: tuple[str, ...]) -> None:
        """Pin the tree to `definition` from now on (this owner holds its lease)."""
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

    async def ask_approval(self, turn: int, request: ApprovalRequest, approver: Approver | None) -> Approval:
        """The decision on `request`: the approver's, now. A durable run may wait instead (`AwaitingDecision`)."""
        return await approvals.ask(approver, request)

    def note_waiting(self, waiting: AwaitingDecision) -> None:
        """A call of the current turn waits for a decision (its own, or a sub-run's)."""
        return None

    def raise_if_waiting(self) -> None:
        """Raise `AwaitingDecision` if a call of the turn just run waits for a decision: the run suspends."""
        return None

    @property
    def waiting(self) -> bool:
        """Whether a call of the current turn waits for a decision."""
        return False

    async def save_state(self, name: str, snapshot: Callable[[], str]) -> None:
        """Save the tree's state `name`, as `snapshot()` gives it now (not called without a journal)."""
        return None

    def load_state(self, name: str) -> str | None:
        return None

    async def finish(self, status: JournalStatus, replayed: Usage | None = None) -> None:
        return None


NO_JOURNAL = RunJournal()


@dataclass(eq=False)
class JournalledTree:
    """What the runs of one tree share: the journal, the root's id and lease, the uncertain calls found.

    `definition` is the root's fingerprint to pin (None: pin nothing), `definition_changes` how it differs
    from the pinned one, which the caller allowed: both recorded when the root opens.
    """

    journal: Journal
    root_run_id: str
    uncertain: list[UncertainCall] = field(default_factory=list)
    lease_renewal: asyncio.Task[None] | None = None
    definition: str | None = None
    definition_changes: tuple[str, ...] = ()

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

    __slots__ = ("_budget", "_delegated", "_model_calls", "_recorded", "_tree", "_waiting", "run_id")

    active = True

    def __init__(self, tree: JournalledTree, run_id: str) -> None:
        self._tree = tree
        self.run_id = run_id
        self._recorded: dict[tuple[int, str], str] = {}  # what is left to replay
        self._delegated: set[tuple[int, str]] = set()
        self._model_calls: dict[tuple[int, str], int] = {}  # model calls made so far, by (turn, purpose)
        self._budget: Budget | None = None  # set by `open`: the run's clock, for the elapsed time of entries
        self._waiting: list[ApprovalRecord] = []  # what the calls of the current turn wait for

    @classmethod
    def root(
        cls, journal: Journal, run_id: str, *, definition: str | None = None, definition_changes: tuple[str, ...] = ()
    ) -> JournalledRun:
        """The handle of the root run `run_id`; `definition` is pinned when it opens (see `JournalledTree`)."""
        tree = JournalledTree(journal, run_id, definition=definition, definition_changes=definition_changes)
        return cls(tree, run_id)

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
            definition=tree.definition if parent is None else None,
        )
        recorded = await tree.journal.open_run(opening)
        self._budget = context.budget
        if recorded is not None and recorded.status in UNFINISHED_STATUSES:
            # Cut off mid-way (or suspended): the time it ran before counts against its wall-time limit. A run
            # that had ended is replayed to its recorded ending, within the limits it met the first time.
            context.budget.started_at -= recorded.elapsed_seconds
        if parent is None:
            tree.start_lease_renewal(self._elapsed)
            if recorded is not None and tree.definition is not None:
                await self._pin_definition(tree.definition)
        if recorded is None:
            return prompt, history
        self._recorded = recorded.entries
        self._delegated = recorded.delegated
        # The recorded prompt, not the one computed again: a sub-agent's prompt may quote shared state (the
        # decision record) that has moved on since.
        restored = None if recorded.history is None else decode(json.loads(recorded.history), list[Message])
        return recorded.prompt, restored

    async def _pin_definition(self, definition: str) -> None:
        # A run queued without one (submit_run) is pinned by its first opening; a changed one was allowed.
        tree = self._tree
        if tree.definition_changes or tree.journal.pinned_definition(tree.root_run_id) is None:
            try:
                await tree.journal.pin_definition(tree.root_run_id, definition, tree.definition_changes)
            except BaseException:
                await tree.stop_lease_renewal()
                with contextlib.suppress(JournalError):
                    await tree.journal.release_lease(tree.root_run_id)
                raise

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

    async def ask_approval(self, turn: int, request: ApprovalRequest, approver: Approver | None) -> Approval:
        """The decision on `request`: recorded in the journal, else the approver's; `Later` suspends the run.

        A decision recorded (by a person, or by expiry) is used as it is. A call still waiting is put to this
        process's approver, whose decision is recorded; if it too answers `Later`, the call goes on waiting.
        """
        journal, root = self.journal, self._tree.root_run_id
        digest = approvals.arguments_digest(request.arguments)
        approval_id = approvals.approval_id(
            self.run_id, turn, request.tool_call_id, digest, uncertain=request.uncertain
        )
        record = journal.get_approval(root, approval_id)
        if record is not None and record.expired():
            await journal.expire_approvals()
            record = journal.get_approval(root, approval_id)
        if record is not None and record.approved is not None:
            decided = f"{'approved' if record.approved else 'denied'} by {record.decided_by or 'a person'}"
            return Approval(record.approved, record.reason or decided)
        answer = await approvals.answer_of(approver, request)
        if isinstance(answer, Approval):
            if record is not None:
                await journal.decide(
                    root, approval_id, approved=answer.approved, reason=answer.reason, by=DECIDED_BY_APPROVER
                )
            return answer
        if record is None:
            now = time.time()
            record = ApprovalRecord(
                approval_id=approval_id,
                root_run_id=root,
                run_id=self.run_id,
                turn=turn,
                tool_call_id=request.tool_call_id,
                agent=request.agent,
                tool=request.tool,
                arguments=request.arguments,
                arguments_digest=digest,
                uncertain=request.uncertain,
                asked_at=now,
                expires_at=None if answer.expires_in is None else now + answer.expires_in,
            )
            await journal.record_approval(record)
        raise AwaitingDecision((record,))

    def note_waiting(self, waiting: AwaitingDecision) -> None:
        self._waiting.extend(waiting.approvals)

    def raise_if_waiting(self) -> None:
        if self._waiting:
            waiting, self._waiting = tuple(self._waiting), []
            raise AwaitingDecision(waiting)

    @property
    def waiting(self) -> bool:
        return bool(self._waiting)

    async def save_state(self, name: str, snapshot: Callable[[], str]) -> None:
        # Taken now, before any other change: snapshots are committed in the order they were taken.
        await self.journal.save_state(self._tree.root_run_id, name, snapshot())

    def load_state(self, name: str) -> str | None:
        return self.journal.load_state(self._tree.root_run_id, name)

    async def finish(self, status: JournalStatus, replayed: Usage | None = None) -> None:
        tree = self._tree
        is_root = self.run_id == tree.root_run_id
        if is_root:
            await tree.stop_lease_renewal()
        try:
            await tree.journal.finish_run(tree.root_run_id, self.run_id, status, replayed)
        except JournalError as exc:
            # The run has ended either way; a resume will find it "running" and replay it to the same end.
            log.warning("run %s ended %s, but the journal could not record it: %s", self.run_id, status, exc)
