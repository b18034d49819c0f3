"""What a tool can know about the run calling it."""

from __future__ import annotations

import uuid
import warnings
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .approvals import Approver
from .events import Event, EventSink
from .limits import Budget
from .messages import Message

if TYPE_CHECKING:
    from .agent import Agent


@dataclass(slots=True, eq=False)
class RunContext:
    """One agent run, as seen by its tools.

    A tool asks for it by annotating a parameter with `RunContext`; that
    parameter is hidden from the model. `deps` is whatever the caller passed to
    `run(deps=...)` (a database handle, a user id). `shared` is one dict for the
    whole agent tree, for state agents must agree on (the decision record).
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
    shared: dict[str, Any] = field(default_factory=dict)
    cleanups: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    failed_calls: dict[str, int] = field(default_factory=dict)  # identical failing calls, counted

    @property
    def root(self) -> RunContext:
        context = self
        while context.parent is not None:
            context = context.parent
        return context

    def announce(self, event_type: type[Event], /, **fields: Any) -> None:
        """Emit an event of this run, stamped with its run id and agent name.

        When nobody listens, nothing is emitted and the event is never built.
        """
        if self.emit is not None:
            self.emit(event_type(run_id=self.run_id, agent=self.agent.name, **fields))

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

    def child(self, agent: Agent[Any], *, tool_call_id: str | None, kind: str = "sub-agent") -> RunContext:
        """The context of a sub-agent run started by one of this run's tools."""
        return RunContext(
            agent=agent,
            run_id=new_run_id(),
            budget=Budget(agent.name, agent.limits, parent=self.budget),
            emit=self.emit,
            approver=self.approver,
            deps=self.deps,
            depth=self.depth + 1,
            parent=self,
            tool_call_id=tool_call_id,
            kind=kind,
            shared=self.shared,
        )


def new_run_id() -> str:
    return uuid.uuid4().hex
