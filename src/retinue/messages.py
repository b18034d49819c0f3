"""The conversation, in types every provider translates to and from.

A conversation is a list of messages: what the user said, what the model
answered (text, tool calls, and any reasoning the provider wants carried
forward), and the results of the tools it called. Instructions (the system
prompt) are not a message: they travel beside the list in `ModelRequest`, so
they stay a stable prefix that prompt caches can hit.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

from .usage import Usage


@dataclass(slots=True)
class ToolCall:
    """The model asking for one tool to run.

    `arguments` is the parsed JSON object. When the model produced arguments
    that are not valid JSON, `arguments` is empty and `invalid_arguments`
    keeps the raw text, so the loop can tell the model exactly what was wrong.
    """

    id: str
    name: str
    arguments: dict[str, Any]
    invalid_arguments: str | None = None


@dataclass(slots=True)
class Reasoning:
    """Thinking the model did before answering, carried across tool-use turns.

    Anthropic requires thinking blocks (with their signature, or the opaque
    redacted data) to be sent back unchanged while a tool-use turn continues.
    """

    text: str = ""
    signature: str | None = None
    redacted_data: str | None = None


@dataclass(slots=True)
class UserMessage:
    content: str
    role: Literal["user"] = "user"


ANSWER_SENT_BACK_MARK = "[Answer sent back]"
"""Opens the user message that sends a final answer back to the model (an answer check's problem)."""


Reply: TypeAlias = Literal["anything", "a tool call", "an answer"]
"""What the turn replying to an answer sent back may be: either, or only one of them."""


@dataclass(frozen=True, slots=True)
class SendBack:
    """An answer check's problem with an answer, and what the turn replying to it may be.

    A plain string from a check is `SendBack(problem)`: the model may answer again or call tools. Told in
    words to call a tool, Qwen2.5-Coder-1.5B answered by copying the words; told its plan left out the flight,
    it called a specialist nobody needed. `reply_with` makes the next turn a tool call or an answer.
    """

    problem: str
    reply_with: Reply = "anything"

    @property
    def note(self) -> str:
        """The user message that carries the problem to the model, marked with what its reply may be."""
        return f"{_MARKS[self.reply_with]} {self.problem}"


_MARKS: dict[Reply, str] = {
    "anything": ANSWER_SENT_BACK_MARK,
    "a tool call": "[Answer sent back: call a tool]",
    "an answer": "[Answer sent back: answer in words]",
}


def is_answer_sent_back(message: Message) -> bool:
    """Whether `message` is the loop sending an answer back, not a message from the user."""
    return isinstance(message, UserMessage) and message.content.startswith(tuple(_MARKS.values()))


def reply_asked(messages: Sequence[Message]) -> Reply:
    """What the next turn may be: "anything", unless it replies to an answer sent back that says otherwise."""
    last = messages[-1] if messages else None
    if isinstance(last, UserMessage):
        for reply, mark in _MARKS.items():
            if reply != "anything" and last.content.startswith(mark):
                return reply
    return "anything"


@dataclass(slots=True)
class AssistantMessage:
    text: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    reasoning: list[Reasoning] = field(default_factory=list)
    role: Literal["assistant"] = "assistant"


@dataclass(slots=True)
class ToolResult:
    """What one tool call produced, as the text the model will read."""

    tool_call_id: str
    name: str
    content: str
    is_error: bool = False


@dataclass(slots=True)
class ToolResultsMessage:
    """The results of every tool call from one assistant turn, in call order."""

    results: list[ToolResult]
    role: Literal["tool"] = "tool"


Message: TypeAlias = UserMessage | AssistantMessage | ToolResultsMessage


@dataclass(frozen=True, slots=True)
class ToolSchema:
    """A tool as the model sees it: a name, a description and a JSON schema."""

    name: str
    description: str
    parameters: dict[str, Any]


@dataclass(slots=True)
class ModelSettings:
    """Sampling settings; None means the provider's default.

    `extra` is merged into the provider's request body as is, for options
    retinue does not model (for example `{"reasoning_effort": "low"}`).
    """

    temperature: float | None = None
    max_tokens: int | None = None
    top_p: float | None = None
    tool_choice: Literal["auto", "required", "none"] | None = None
    parallel_tool_calls: bool | None = None
    thinking_budget_tokens: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class ModelRequest:
    """Everything one model call needs, independent of the provider."""

    instructions: str
    messages: list[Message]
    tools: list[ToolSchema]
    settings: ModelSettings = field(default_factory=ModelSettings)


StopReason: TypeAlias = Literal["end_turn", "tool_use", "max_tokens", "content_filter", "other"]


@dataclass(slots=True)
class ModelResponse:
    """One answer of the model: text and/or tool calls, and what it cost."""

    message: AssistantMessage
    usage: Usage
    model: str
    stop_reason: StopReason = "end_turn"
    response_id: str | None = None
