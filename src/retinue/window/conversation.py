"""The shape of a conversation, as compaction must respect it.

Providers reject a tool result whose call is missing and a call whose result
is missing, so an assistant turn with tool calls and the results message after
it form one *exchange*: compaction keeps or drops an exchange whole, never half.
The first user message is the goal and is always kept; the last exchange is
the one the model is in the middle of and is always kept verbatim (its
reasoning blocks included, which Anthropic requires unchanged).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence

from ..messages import AssistantMessage, Message, ToolResultsMessage, UserMessage

SUMMARY_MARK = "[Context summary]"
NOTE_MARK = "[Context note]"


def head_end(messages: Sequence[Message]) -> int:
    """The index just after the goal (the first user message): everything before it is always kept."""
    for index, message in enumerate(messages):
        if isinstance(message, UserMessage):
            return index + 1
    return 0


def exchanges(messages: Sequence[Message], start: int = 0) -> list[range]:
    """`messages[start:]` cut into the smallest pieces compaction may drop.

    A piece is a tool-use turn with its results, or a single message.
    """
    pieces: list[range] = []
    index = start
    while index < len(messages):
        message = messages[index]
        answered = (
            isinstance(message, AssistantMessage)
            and bool(message.tool_calls)
            and index + 1 < len(messages)
            and isinstance(messages[index + 1], ToolResultsMessage)
        )
        end = index + 2 if answered else index + 1
        pieces.append(range(index, end))
        index = end
    return pieces


def is_context_note(message: Message) -> bool:
    """Whether `message` is a summary or note that an earlier compaction put after the goal."""
    return isinstance(message, UserMessage) and message.content.startswith((SUMMARY_MARK, NOTE_MARK))


def render_transcript(messages: Sequence[Message], *, tool_output_chars: int | None = None) -> str:
    """The messages as plain text: what a summarizer reads and what is stored when turns are dropped.

    `tool_output_chars` shortens each tool output to that many characters (a clone's brief needs the gist).
    """
    return "\n\n".join(render_message(message, tool_output_chars=tool_output_chars) for message in messages)


def render_message(message: Message, *, tool_output_chars: int | None = None) -> str:
    if isinstance(message, UserMessage):
        label = "Earlier context" if is_context_note(message) else "User"
        return f"{label}: {message.content}"
    if isinstance(message, AssistantMessage):
        lines = [f"Assistant (thinking): {r.text}" for r in message.reasoning if r.text]
        if message.text:
            lines.append(f"Assistant: {message.text}")
        for call in message.tool_calls:
            arguments = call.invalid_arguments if call.invalid_arguments is not None else _json(call.arguments)
            lines.append(f"Assistant called {call.name}({arguments}) [id {call.id}]")
        return "\n".join(lines) or "Assistant: (empty turn)"
    lines = []
    for result in message.results:
        label = "Error from" if result.is_error else "Result of"
        content = result.content
        if tool_output_chars is not None and len(content) > tool_output_chars:
            content = f"{content[:tool_output_chars]} [... {len(result.content):,} characters in all]"
        lines.append(f"{label} {result.name} [id {result.tool_call_id}]:\n{content}")
    return "\n".join(lines)


def tool_call_counts(messages: Sequence[Message]) -> str:
    """Which tools the messages called and how often, e.g. "search ×12, read_file ×3"."""
    counts = Counter(call.name for m in messages if isinstance(m, AssistantMessage) for call in m.tool_calls)
    return ", ".join(f"{name} ×{count}" for name, count in counts.most_common())


def _json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True)
