"""`DropToolOutputs`: compaction without a model call, by placeholders for old tool outputs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ..messages import Message, ToolResult, ToolResultsMessage, UserMessage
from .compacting import CompactingPolicy, CompactionJob
from .conversation import NOTE_MARK, exchanges, head_end, is_context_note, render_transcript, tool_call_counts
from .offloaded import handle_in_preview

_DROPPED_MARK = "[Dropped output of "
_MIN_DROPPED_CHARS = 400


@dataclass(frozen=True, kw_only=True, eq=False)
class DropToolOutputs(CompactingPolicy):
    """Replace the oldest tool outputs with placeholders naming where to read them again; no model call.

    Args:
        drop_exchanges: When placeholders alone do not bring the request under the target, remove the
            oldest exchanges whole (stored, and named in a note after the goal).
    """

    drop_exchanges: bool = True
    strategy: ClassVar[str] = "drop_tool_outputs"

    async def compact(self, job: CompactionJob) -> list[Message] | None:
        messages = list(job.messages)
        kept_head = head_end(messages)
        pieces = exchanges(messages, kept_head)
        if len(pieces) < 2:
            return None
        changed = False
        tokens = job.measure(messages)
        for piece in pieces[:-1]:
            if tokens <= job.target_tokens:
                break
            index = piece.stop - 1
            old = messages[index]
            if not isinstance(old, ToolResultsMessage):
                continue
            new = ToolResultsMessage([self._placeholder(result, job) for result in old.results])
            tokens += job.estimator.message(new) - job.estimator.message(old)
            if new.results != old.results:
                messages[index] = new
                changed = True
        if tokens > job.target_tokens and self.drop_exchanges:
            dropped_to = self._drop_oldest(job, messages, kept_head, pieces, tokens)
            if dropped_to is not None:
                return dropped_to
        return messages if changed else None

    def _placeholder(self, result: ToolResult, job: CompactionJob) -> ToolResult:
        # A placeholder costs some 50 tokens: replacing anything shorter would grow the conversation.
        if result.content.startswith(_DROPPED_MARK) or len(result.content) < _MIN_DROPPED_CHARS:
            return result
        handle = handle_in_preview(result.content) or job.keep_text(result.content)
        where = (
            f"It is stored: read it with read_tool_output(handle='{handle}') if you need it."
            if handle is not None
            else "Call the tool again if you need it."
        )
        text = f"{_DROPPED_MARK}{result.name} ({len(result.content):,} characters) to save context. {where}]"
        return ToolResult(result.tool_call_id, result.name, text, result.is_error)

    def _drop_oldest(
        self, job: CompactionJob, messages: list[Message], kept_head: int, pieces: list[range], tokens: int
    ) -> list[Message] | None:
        start = kept_head
        # An earlier note goes with the dropped turns: its pointers stay reachable through the stored text.
        if pieces and is_context_note(messages[pieces[0].start]):
            pieces = pieces[1:]
        drop_to = start
        for piece in pieces[:-1]:
            if tokens <= job.target_tokens:
                break
            tokens -= job.estimator.messages(messages[piece.start : piece.stop])
            drop_to = piece.stop
        if drop_to == start:
            return None
        dropped = messages[start:drop_to]
        handle = job.keep_text(render_transcript(dropped))
        calls = tool_call_counts(dropped)
        count = sum(1 for message in dropped if not is_context_note(message))
        where = (
            f" Their full text (with any earlier note) is stored: read_tool_output(handle='{handle}')."
            if handle is not None
            else ""
        )
        note = UserMessage(
            f"{NOTE_MARK} {count} earlier messages were removed to fit the context window"
            f"{f' (tool calls: {calls})' if calls else ''}.{where}"
        )
        return [*messages[:start], note, *messages[drop_to:]]
