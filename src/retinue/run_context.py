"""What a tool can know about the run calling it."""

from __future__ import annotations

import hashlib
import threading
import uuid
import warnings
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Concatenate, Generic, ParamSpec, TypeVar, cast

from .approvals import Approver
from .events import Event, EventSink
from .journal.journal import NO_JOURNAL, RunJournal
from .limits import Budget
from .messages import Message
from .usage import Usage

if TYPE_CHECKING:
    from .agent import Agent

EventFields = ParamSpec("EventFields")  # an event's own fields, after its run id and agent name
StateT = TypeVar("StateT")
# Covariant: a key only ever gives its value, so a key to a list of str serves where an iterable of str is wanted.
KeyedStateT = TypeVar("KeyedStateT", covariant=True)


@dataclass(frozen=True, slots=True, eq=False)
class TreeState(Generic[KeyedStateT]):
    """A key to one value kept for a whole run tree, declared by the feature that owns the value.

    `name` says what the value is, for people reading a repr. `make_first_value` makes it from the root
    run's context the first time a run of the tree asks for it (an empty table, or what the tree's journal
    saved). Keys are compared by identity, so two features never share a value by choosing the same name,
    and the key's type parameter is the value's type wherever it is read:

        SANDBOXES: TreeState[dict[str, Sandbox]] = TreeState("sandboxes by run id", lambda root: {})
        sandboxes = context.tree_state(SANDBOXES)  # dict[str, Sandbox]
    """

    name: str
    make_first_value: Callable[[RunContext], KeyedStateT] = field(repr=False)


class _TreeValues:
    """The tree state of one run tree, held by every context of the tree."""

    __slots__ = ("_making", "values")

    def __init__(self) -> None:
        self.values: dict[TreeState[Any], Any] = {}
        # Sync tools run in threads: two asking for a new key at once must get one value, made once.
        # Reentrant, so that making one value may ask for another.
        self._making = threading.RLock()

    def make_first_value(self, key: TreeState[StateT], root: RunContext) -> StateT:
        with self._making:
            if key not in self.values:  # or another thread made it while this one waited
                self.values[key] = key.make_first_value(root)
            return cast(StateT, self.values[key])


@dataclass(slots=True, eq=False)
class RunContext:
    """One agent run, as seen by its tools.

    A tool asks for it by annotating a parameter with `RunContext`; that
    parameter is hidden from the model. `deps` is whatever the caller passed to
    `run(deps=...)` (a database handle, a user id). `journal` is where a durable
    run writes ahead what it does (`NO_JOURNAL` for a run that is not durable).

    State that every run of one agent tree must agree on (the decision record)
    or that a feature keeps for as long as the tree runs (its sandboxes) is tree
    state: the feature declares a `TreeState` key, and `tree_state(key)` gives
    the value. Each value is made once per tree, from the root's context, when a
    run of the tree first asks for it; the root and every sub-run see that same
    value, and separate top-level runs never share one.
    """

    agent: Agent[Any]
    run_id: str
    budget: Budget
    emit: EventSink | None = None
    approver: Approver | None = None
    deps: Any = None
    depth: int = 0
    parent: RunContext | None = None
    tool_call_id: str | None = None
    kind: str = "root"
    messages: list[Message] = field(default_factory=list)
    _tree: _TreeValues = field(default_factory=_TreeValues, repr=False)  # one for the whole tree
    cleanups: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    failed_calls: dict[str, int] = field(default_factory=dict)  # identical failing calls, counted
    journal: RunJournal = NO_JOURNAL
    sub_runs: dict[tuple[int, str | None], SubRuns] = field(default_factory=dict)  # by (turn, tool call id)

    @property
    def root(self) -> RunContext:
        context = self
        while context.parent is not None:
            context = context.parent
        return context

    def announce(
        self,
        event_type: Callable[Concatenate[str, str, EventFields], Event],
        /,
        *values: EventFields.args,
        **fields: EventFields.kwargs,
    ) -> None:
        """Emit an event of this run, stamped with its run id and agent name; `values` and `fields` are the
        event's own fields, in their declared order or by name.

        When nobody listens, nothing is emitted and the event is never built.
        """
        emit = self.emit
        if emit is not None:
            emit(event_type(self.run_id, self.agent.name, *values, **fields))

    def tree_state(self, key: TreeState[StateT]) -> StateT:
        """The value `key` names for this run's tree, made by `key.make_first_value` when a run of it first asks."""
        values = self._tree.values
        if key in values:
            return cast(StateT, values[key])
        return self._tree.make_first_value(key, self.root)

    def on_finish(self, cleanup: Callable[[], Awaitable[None]]) -> None:
        """Run `cleanup` when this run ends, however it ends (to close a sandbox or a server it started)."""
        self.cleanups.append(cleanup)

    async def run_cleanups(self) -> None:
        # Last started, first closed; a failing cleanup must not stop the others.
        while self.cleanups:
            cleanup = self.cleanups.pop()
            try:
                await cleanup()
            except Exception as exc:  # noqa: BLE001
                warnings.warn(f"a cleanup of run {self.run_id} failed: {exc!r}", RuntimeWarning, stacklevel=1)

    def sub_runs_of(self, tool_call_id: str | None) -> SubRuns:
        """The sub-runs started so far by the call `tool_call_id` of this run's current turn."""
        key = (self.budget.turns, tool_call_id)
        started = self.sub_runs.get(key)
        if started is None:
            started = self.sub_runs[key] = SubRuns()
        return started

    def child(self, agent: Agent[Any], *, tool_call_id: str | None, kind: str = "sub-agent") -> RunContext:
        """The context of a sub-agent run started by one of this run's tools.

        Its run id derives from this run's, so a resumed run re-enters the same child run: the n-th sub-run
        started by the call `tool_call_id` of this run's current turn always has the same id.
        """
        turn = self.budget.turns
        started = self.sub_runs_of(tool_call_id)
        run_id = sub_run_id(self.run_id, turn, tool_call_id, started.count)
        started.count += 1
        return RunContext(
            agent=agent,
            run_id=run_id,
            budget=Budget(agent.name, agent.limits, parent=self.budget),
            emit=self.emit,
            approver=self.approver,
            deps=self.deps,
            depth=self.depth + 1,
            parent=self,
            tool_call_id=tool_call_id,
            kind=kind,
            _tree=self._tree,
            journal=self.journal.child(run_id),
        )


@dataclass(slots=True)
class SubRuns:
    """The sub-runs one tool call started: how many, and what their trees spent once they ended.

    A durable run records them with the call's output, so that a resumed run that replays the output, and
    does not run the sub-agents again, still counts them against its limits.
    """

    count: int = 0
    usage: Usage = field(default_factory=Usage)


def new_run_id() -> str:
    return uuid.uuid4().hex


def sub_run_id(parent_run_id: str, turn: int, tool_call_id: str | None, index: int = 0) -> str:
    """The id of the `index`-th sub-run started by the call `tool_call_id` in turn `turn` of `parent_run_id`.

    Tool call ids are the model's and may repeat across turns, hence the turn. Each part is delimited, so
    no two different parents or calls give the same text to hash.
    """
    identity = f"{len(parent_run_id)}:{parent_run_id}/{turn}/{tool_call_id}/{index}"
    return hashlib.sha256(identity.encode()).hexdigest()[:32]


def idempotency_key(run_id: str, turn: int, tool_call_id: str) -> str:
    """The idempotency key of one tool call: the same whenever that call runs, in this process or a resumed one."""
    identity = f"key/{len(run_id)}:{run_id}/{turn}/{tool_call_id}"
    return hashlib.sha256(identity.encode()).hexdigest()[:32]
