"""Summaries of turns: the `Summarize` compaction policy and the one summary writer it shares with clones."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from ..messages import Message, ModelRequest, ModelSettings, UserMessage
from ..model_calls import send_request
from ..models.base import Model
from ..models.windows import context_window_of
from ..run_context import RunContext
from ..usage import Usage
from .budget import TokenEstimator
from .compacting import CompactingPolicy, CompactionJob
from .conversation import (
    SUMMARY_MARK,
    exchanges,
    head_end,
    is_context_note,
    render_message,
    render_transcript,
    tool_call_counts,
)

SUMMARY_INSTRUCTIONS = """\
You compress the earlier part of an AI agent's working conversation so the agent can continue its task \
without it. Write a summary the agent will read in place of those turns. Keep, in this order:
1. Progress towards the goal: what has been done and what was found (exact numbers, names, identifiers).
2. Decisions made and why, and approaches that failed (so they are not retried).
3. Open questions and the next steps that were planned.
4. Pointers to anything dropped that may be needed again: file paths, URLs, ids, and stored-output handles \
(such as out_1a2b3c4d_3) with what each one holds.
Be concise and factual; do not invent anything; write no preamble."""


async def summarize_turns(
    context: RunContext,
    summarizer: Model,
    turns: Sequence[Message],
    *,
    instructions: str,
    purpose: str,
    max_tokens: int | None = None,
    goal: str | None = None,
    tool_output_chars: int | None = None,
) -> tuple[str, Usage]:
    """A summary of `turns` written by `summarizer`, and what writing it cost.

    Every call goes through `send_request`, so it is charged to the run,
    announced and journalled under `purpose`. A summarizer with a smaller
    window than the agent's reads the turns in parts, folding each part into
    the summary so far.
    """
    goal_text = f"The agent's goal:\n{goal}\n\n" if goal else ""
    settings = ModelSettings(max_tokens=max_tokens)
    summary = ""
    usage = Usage()
    for chunk in _chunks(summarizer, turns, max_tokens or 1_000, tool_output_chars):
        earlier = f"Summary of the turns before these:\n{summary}\n\n" if summary else ""
        request = ModelRequest(
            instructions=instructions,
            messages=[UserMessage(f"{goal_text}{earlier}The turns to summarize:\n\n{chunk}\n\nWrite the summary now.")],
            tools=[],
            settings=settings,
        )
        response = await send_request(context, summarizer, request, purpose=purpose)
        usage.add(response.usage)
        summary = response.message.text.strip() or summary
    return summary or "(The summarizer returned no text.)", usage


def _chunks(summarizer: Model, turns: Sequence[Message], max_tokens: int, tool_output_chars: int | None) -> list[str]:
    window = context_window_of(summarizer)
    rendered = [render_message(message, tool_output_chars=tool_output_chars) for message in turns]
    if window is None:
        return ["\n\n".join(rendered)]
    estimator = TokenEstimator(summarizer.model_id)
    room = max((window - 2 * max_tokens) // 2, 1)
    chunks: list[str] = []
    current: list[str] = []
    size = 0
    longest = room * 3  # characters: under `room` tokens at any plausible chars-per-token
    for text in rendered:
        if len(text) > longest:
            text = f"{text[:longest]}\n[... {len(text) - longest:,} characters cut for the summarizer]"
        tokens = estimator.text(text)
        if current and size + tokens > room:
            chunks.append("\n\n".join(current))
            current, size = [], 0
        current.append(text)
        size += tokens
    chunks.append("\n\n".join(current))
    return chunks


@dataclass(frozen=True, kw_only=True, eq=False)
class Summarize(CompactingPolicy):
    """Replace older exchanges with a summary written by a model.

    Args:
        summarizer: The model that writes summaries, or a model string; by default the agent's own.
            A cheaper model is usually enough (for example "anthropic:claude-haiku-4-5" for a Sonnet agent).
        summary_max_tokens: The longest summary asked for.
        summary_instructions: The summarizer's system prompt.
    """

    summarizer: Model | str | None = None
    summary_max_tokens: int = 1_000
    summary_instructions: str = SUMMARY_INSTRUCTIONS
    strategy: ClassVar[str] = "summarize"

    async def compact(self, job: CompactionJob) -> list[Message] | None:
        messages = job.messages
        kept_head = head_end(messages)
        pieces = exchanges(messages, kept_head)
        if len(pieces) < 2:
            return None
        fixed = job.measure(messages[:kept_head])
        allowance = job.estimator.scale(self.summary_max_tokens)
        room = job.target_tokens - fixed - allowance
        # The newest exchanges stay verbatim, as many as fit; the last one always does.
        tail_start = pieces[-1].start
        tail_tokens = job.estimator.messages(messages[tail_start:])
        for piece in reversed(pieces[:-1]):
            size = job.estimator.messages(messages[piece.start : piece.stop])
            if tail_tokens + size > room:
                break
            tail_tokens += size
            tail_start = piece.start
        dropped = messages[kept_head:tail_start]
        # Summarizing less than a summary's length, or nothing but the last summary, would cost a
        # call and gain nothing.
        if all(is_context_note(message) for message in dropped) or job.estimator.messages(dropped) <= allowance:
            return None
        handle = job.keep_text(render_transcript(dropped))
        summarizer = self._summarizer(job.model)
        goal = messages[kept_head - 1] if kept_head else None
        goal_text = goal.content if isinstance(goal, UserMessage) else None
        summary, usage = await summarize_turns(
            job.context,
            summarizer,
            dropped,
            instructions=self.summary_instructions,
            max_tokens=self.summary_max_tokens,
            goal=goal_text,
            purpose="compaction",
        )
        job.sent_usage.add(usage)
        note = _summary_note(summary, dropped, handle)
        return [*messages[:kept_head], note, *messages[tail_start:]]

    def _summarizer(self, agent_model: Model) -> Model:
        if self.summarizer is None:
            return agent_model
        if isinstance(self.summarizer, str):
            from ..models.resolve import resolve_model  # providers load only when a string names one

            return resolve_model(self.summarizer)
        return self.summarizer


def _summary_note(summary: str, dropped: Sequence[Message], handle: str | None) -> UserMessage:
    calls = tool_call_counts(dropped)
    pointer = (
        f" Their full text is stored: read it with read_tool_output(handle='{handle}') if a detail is missing."
        if handle is not None
        else ""
    )
    return UserMessage(
        f"{SUMMARY_MARK} {len(dropped)} earlier messages"
        f"{f' (tool calls: {calls})' if calls else ''} were replaced by this summary to fit the context "
        f"window.{pointer}\n\n{summary}"
    )
