"""The typed events a run emits, for streaming, tracing, cost accounting and UIs.

The loop only calls `emit(event)`; it knows nothing of who listens. Every event
names the run it belongs to (`run_id`) and, for sub-agents, the run that
started it (`parent_run_id`), so the events of a lead, its specialists and
their clones form one tree.

An event can be built with keywords, or positionally in the order its fields
are declared: `run_id`, `agent`, then its own fields. `timestamp` is keyword-only
and defaults to the time it is built. The loop builds its events positionally: a
run with an instant model does little but emit them, and keyword construction
costs nearly twice as much.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeAlias

from .messages import ModelRequest, ModelResponse, ToolCall, ToolResult
from .usage import Usage

if TYPE_CHECKING:
    from .result import RunResult


@dataclass(slots=True)
class _Event:
    run_id: str
    agent: str
    timestamp: float = field(default_factory=time.time, kw_only=True)


@dataclass(slots=True)
class RunStarted(_Event):
    prompt: str
    model_id: str
    parent_run_id: str | None
    parent_tool_call_id: str | None
    depth: int


@dataclass(slots=True)
class ModelRequestSent(_Event):
    """A request to a model. `purpose` is "turn" for the loop's own calls, else what the call was for
    ("summary" of a conversation for clones, "compaction"), so cost and traces miss no model call."""

    turn: int
    model_id: str
    request: ModelRequest
    purpose: str = "turn"


@dataclass(slots=True)
class TextDelta(_Event):
    text: str


@dataclass(slots=True)
class ModelResponseReceived(_Event):
    turn: int
    response: ModelResponse
    duration_seconds: float
    purpose: str = "turn"


@dataclass(slots=True)
class ToolCallStarted(_Event):
    call: ToolCall


@dataclass(slots=True)
class ToolCallFinished(_Event):
    call: ToolCall
    result: ToolResult
    duration_seconds: float


@dataclass(slots=True)
class ApprovalRequested(_Event):
    call: ToolCall


@dataclass(slots=True)
class ApprovalResolved(_Event):
    call: ToolCall
    approved: bool
    reason: str


@dataclass(slots=True)
class SubAgentStarted(_Event):
    """A tool of this run started another agent's run (a specialist or a clone)."""

    child_run_id: str
    child_agent: str
    tool_call_id: str | None
    kind: str


@dataclass(slots=True)
class SubAgentFinished(_Event):
    child_run_id: str
    child_agent: str
    status: str
    usage: Usage


@dataclass(slots=True)
class Notice(_Event):
    """Something a person watching should know: a decision conflict, a sandbox restart, a compaction."""

    kind: str
    message: str
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class RunFinished(_Event):
    result: RunResult[Any]


Event: TypeAlias = (
    RunStarted
    | ModelRequestSent
    | TextDelta
    | ModelResponseReceived
    | ToolCallStarted
    | ToolCallFinished
    | ApprovalRequested
    | ApprovalResolved
    | SubAgentStarted
    | SubAgentFinished
    | Notice
    | RunFinished
)

EventSink = Callable[[Event], None]


def fan_out(*sinks: EventSink | None) -> EventSink | None:
    """One sink that feeds every given sink, or None when there are none (so emitting costs nothing)."""
    present = [sink for sink in sinks if sink is not None]
    if not present:
        return None
    if len(present) == 1:
        return present[0]

    def emit(event: Event) -> None:
        for sink in present:
            sink(event)

    return emit


def guard_listener(sink: EventSink | None) -> EventSink | None:
    """`sink`, made unable to break the run: the first exception it raises is warned about and detaches it.

    A listener (a UI, a recorder, a user's callback) is an observer; a bug in it must not end the run it observes.
    """
    if sink is None:
        return None
    attached = True

    def emit(event: Event) -> None:
        nonlocal attached
        if not attached:
            return
        try:
            sink(event)
        except Exception as exc:  # noqa: BLE001 - a faulty listener is reported and dropped, the run goes on
            attached = False
            warnings.warn(
                f"the on_event listener {sink!r} raised {type(exc).__name__}: {exc} "
                f"(on {type(event).__name__}); it receives no more events of this run",
                RuntimeWarning,
                stacklevel=2,
            )

    return emit
