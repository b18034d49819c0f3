"""How a run ended."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeAlias

from typing_extensions import TypeVar

from .approvals import ApprovalRecord
from .limits import LimitReached
from .messages import Message
from .usage import Usage

OutputT = TypeVar("OutputT", default=str)

RunStatus: TypeAlias = Literal["completed", "limit", "error", "cancelled", "waiting"]


@dataclass(frozen=True, slots=True)
class UncertainCall:
    """A call to a write tool that an earlier process started and never saw finish: it may have taken effect.

    A resumed run does not run such a call again unless the tool is idempotent or the approver says so;
    `rerun` says whether it was run again, `reason` why (the approver's answer).
    """

    run_id: str
    agent: str
    tool: str
    tool_call_id: str
    arguments: dict[str, Any]
    rerun: bool
    reason: str


@dataclass(slots=True)
class RunResult(Generic[OutputT]):
    """The outcome of one agent run, whatever the ending.

    `status` is "completed" when the model gave a final answer (in `output`),
    "limit" when a limit stopped it (`limit` says which and whose), "error"
    when something the loop cannot hand to the model failed (`error`), and
    "cancelled" when the caller cancelled it. The conversation so far and the
    usage are always there. `usage` is this agent's own model calls;
    `total_usage` adds every sub-agent it started.

    A durable run resumed from its journal counts its calls from before the restart too (the limits do);
    `replayed_usage` is the part of `total_usage` replayed from the journal, which cost nothing this time.
    `uncertain_calls` are the write calls found cut off mid-way on resume (see `UncertainCall`).
    "waiting" is a durable run suspended until a person decides `pending_approvals` (see `retinue.approvals`).
    """

    agent: str
    run_id: str
    status: RunStatus
    output: OutputT | None
    messages: list[Message]
    usage: Usage
    total_usage: Usage
    turns: int
    duration_seconds: float
    limit: LimitReached | None = None
    error: BaseException | None = None
    replayed_usage: Usage = field(default_factory=Usage)
    uncertain_calls: tuple[UncertainCall, ...] = ()
    pending_approvals: tuple[ApprovalRecord, ...] = ()

    @property
    def completed(self) -> bool:
        return self.status == "completed"

    @property
    def stop_reason(self) -> str:
        """'completed', the name of the limit that stopped the run, 'error' or 'cancelled'."""
        if self.limit is not None:
            return self.limit.limit
        return self.status

    def describe(self) -> str:
        """One line for people: how it ended and what it cost."""
        if self.status == "completed":
            ending = "completed"
        elif self.limit is not None:
            ending = f"stopped: {self.limit.describe()}"
        elif self.status == "waiting":
            waits = ", ".join(f"{record.tool} (approval {record.approval_id})" for record in self.pending_approvals)
            ending = f"waiting for a decision on {waits}"
        else:
            ending = f"{self.status}: {self.error}"
        replayed = self.replayed_usage.requests
        from_journal = f" ({replayed} replayed from the journal)" if replayed else ""
        return f"{self.agent}: {ending} after {self.turns} turns; {self.total_usage.describe()}{from_journal}"
