"""What the trace store answers with: runs, their steps, and usage rolled up per agent."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

from ..messages import ModelRequest, ModelResponse
from ..usage import Usage

RunState: TypeAlias = Literal["running", "completed", "limit", "error", "cancelled", "interrupted"]
""""interrupted": the run never finished and never will, because the process recording it has ended."""
ApprovalState: TypeAlias = Literal["pending", "approved", "denied", "interrupted"]
""""interrupted": the process that asked has ended, so the approval can no longer be answered."""


@dataclass(slots=True)
class RunRecord:
    """One agent run. `usage` is its own model calls; `total_usage` adds every sub-agent under it.

    Both are summed from the recorded model calls, so they tick while the run
    is still going.
    """

    run_id: str
    root_run_id: str
    parent_run_id: str | None
    parent_tool_call_id: str | None
    agent: str
    kind: str | None
    model_id: str
    prompt: str
    depth: int
    status: str
    output: str | None
    error: str | None
    stop_reason: str | None
    turns: int
    started_at: float
    finished_at: float | None
    duration_seconds: float | None
    usage: Usage = field(default_factory=Usage)
    total_usage: Usage = field(default_factory=Usage)

    @property
    def running(self) -> bool:
        return self.status == "running"


@dataclass(slots=True)
class ModelCallRecord:
    """One model call. `request` is filled only by `RunStore.get_model_call` (it is the bulk of a trace)."""

    id: int
    run_id: str
    agent: str
    turn: int
    model_id: str
    started_at: float
    finished_at: float | None
    duration_seconds: float | None
    usage: Usage | None
    stop_reason: str | None
    response: ModelResponse | None
    error: str | None = None
    request: ModelRequest | None = None
    server_recorded: bool = True
    """False for a call from an older store, whose `model_id` may lack the compatible server it went to."""
    kind: Literal["model_call"] = "model_call"


@dataclass(slots=True)
class ApprovalRecord:
    run_id: str
    tool_call_id: str
    agent: str
    tool: str
    arguments: dict[str, Any]
    status: ApprovalState
    reason: str | None
    requested_at: float
    resolved_at: float | None
    decision: bool | None
    """What the UI decided, before the run picked it up (None: nobody has clicked yet)."""


@dataclass(slots=True)
class ToolCallRecord:
    id: int
    run_id: str
    agent: str
    tool_call_id: str
    name: str
    arguments: dict[str, Any]
    invalid_arguments: str | None
    result: str | None
    is_error: bool | None
    started_at: float
    finished_at: float | None
    duration_seconds: float | None
    approval: ApprovalRecord | None = None
    child_run_ids: list[str] = field(default_factory=list)
    kind: Literal["tool_call"] = "tool_call"


Step: TypeAlias = ModelCallRecord | ToolCallRecord


@dataclass(slots=True)
class NoticeRecord:
    run_id: str
    agent: str
    kind: str
    message: str
    data: dict[str, Any]
    at: float


@dataclass(slots=True)
class RunNode:
    """A run with its steps in the order they started, and the runs it started.

    A tool call that started sub-agents lists their ids in `child_run_ids`;
    `children` holds every child run, attached to a tool call or not.
    """

    run: RunRecord
    steps: list[Step] = field(default_factory=list)
    children: list[RunNode] = field(default_factory=list)
    notices: list[NoticeRecord] = field(default_factory=list)

    def walk(self) -> Iterator[RunNode]:
        """This node and every node under it, depth first."""
        yield self
        for child in self.children:
            yield from child.walk()

    def find(self, run_id: str) -> RunNode | None:
        return next((node for node in self.walk() if node.run.run_id == run_id), None)

    def pending_approvals(self) -> list[ApprovalRecord]:
        return [
            step.approval
            for node in self.walk()
            for step in node.steps
            if isinstance(step, ToolCallRecord) and step.approval is not None and step.approval.status == "pending"
        ]


@dataclass(slots=True)
class AgentUsage:
    """Everything one agent (by name) did in a run tree, summed over its runs."""

    agent: str
    runs: int = 0
    model_calls: int = 0
    tool_calls: int = 0
    usage: Usage = field(default_factory=Usage)
    model_seconds: float = 0.0
    tool_seconds: float = 0.0
