"""What goes through Temporal: the inputs and outputs of the run's workflow, activities, signal and query.

Plain dataclasses of strings and numbers, which Temporal's default converter writes as JSON. Retinue's own
objects (responses, messages, usage) travel as JSON text made by `retinue.store.serialize`, which rebuilds
them exactly. Every byte here lands in the workflow's history, so nothing is sent that the other side
already has: conversations go by reference (see `retinue.temporal.references`).
"""

from __future__ import annotations

from dataclasses import dataclass

WORKFLOW = "retinue.run"
MODEL_CALL = "retinue.model_call"
TOOL_CALL = "retinue.tool_call"
APPROVE_SIGNAL = "approve"
PENDING_APPROVALS_QUERY = "pending_approvals"

NOT_RUN = "RetinueCallNotRun"
"""The failure type of an activity that did not get to run its call (so nothing can have taken effect)."""


@dataclass
class RunStart:
    """A workflow's input: which agent runs, on what, and how long an approval may wait."""

    agent: str
    prompt: str
    approval_timeout_seconds: float | None = None


@dataclass
class RunOutcome:
    """A workflow's result: the `RunResult`, with its conversation as a reference into the blob store."""

    agent: str
    run_id: str
    status: str
    output: str | None  # the answer's text, or the JSON of a structured one
    usage: str
    total_usage: str
    turns: int
    duration_seconds: float
    conversation_head: str | None  # the stored conversation the messages start with
    conversation_tail: str  # the messages after it, as JSON
    limit: str | None = None
    error_type: str | None = None
    error: str | None = None
    uncertain_calls: str = "[]"


@dataclass
class ModelCallInput:
    """One model request, by reference: `frame` (instructions, tools, settings) and the stored conversation
    `parent`, followed by the `messages` it does not hold yet. `frame_json` is sent until a call with it has
    completed, which stored it. `stored_outputs` has an entry per tool result of `messages`, in order: the
    key of its content in the blob store (sent empty), or "" for a content sent as it is."""

    agent: str
    frame: str
    frame_json: str | None
    parent: str | None
    messages: str
    stored_outputs: list[str]


@dataclass
class ModelCallOutput:
    response: str
    head: str  # the stored conversation: the request's messages and the response's


@dataclass
class ToolCallInput:
    agent: str
    tool: str
    run_id: str
    call_id: str
    arguments: str
    key: str | None


@dataclass
class ToolCallOutput:
    """What the tool said, or `error`: the text of the error the model reads (a ToolError's message).

    `stored` is the key of `content` in the blob store, where a long output is also kept: the next model
    request refers to it there instead of carrying it through the history a second time.
    """

    content: str = ""
    error: str | None = None
    stored: str | None = None


@dataclass
class ApprovalDecision:
    """A decision on a pending approval: which call of which (sub-)run, bound to the digest of its arguments."""

    run_id: str
    tool_call_id: str
    arguments_digest: str
    approved: bool
    reason: str = ""


@dataclass
class PendingApproval:
    agent: str
    tool: str
    arguments: str  # JSON
    run_id: str
    tool_call_id: str
    uncertain: bool
    arguments_digest: str
    asked_at: float = 0.0  # workflow time, seconds since the epoch
