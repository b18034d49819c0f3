"""Context policies: keep a long run inside its model's window, and tell people when they act.

`CompactingPolicy` does the accounting every policy needs: before each call it
estimates the request, compares it with the limit (the model's window less
room for the answer, or an explicit token budget), compacts when the request
passes `compact_at` of that limit, and stops the run with
`ContextWindowExceeded` when even the compacted request would not fit. It also
offloads large tool outputs to the run's workspace. Subclasses only decide
*how* to compact:

- `Summarize`: older exchanges are replaced by a summary written by the model
  (or a cheaper `summarizer`), which keeps decisions, open questions and
  pointers to what was dropped.
- `DropToolOutputs`: older tool outputs are replaced by a placeholder naming
  where to read them again; if that is not enough, the oldest exchanges go.
- `NoCompaction`: nothing is rewritten, but the window is still checked.

Compaction aims below `compact_to` of the limit rather than just below the
trigger, so it happens rarely: every compaction rewrites the conversation and
costs one prompt-cache miss, and between compactions requests only grow at
the end, which keeps the cached prefix intact.

A policy object holds settings only; what a run learns (its estimator, its
workspace) lives in that run's state, so one agent serves concurrent runs.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from ..errors import ConfigurationError, ContextWindowExceeded, ToolError
from ..events import Notice
from ..messages import (
    Message,
    ModelRequest,
    ModelSettings,
    ToolResult,
    ToolResultsMessage,
    UserMessage,
)
from ..model_calls import build_request, send_request
from ..models.base import Model
from ..models.windows import context_window_of
from ..run_context import RunContext
from ..tools import Tool, tool_from_function
from ..usage import Usage
from . import workspace
from .budget import ContextLimit, TokenCounter, TokenEstimator, output_reserve
from .conversation import (
    NOTE_MARK,
    SUMMARY_MARK,
    exchanges,
    head_end,
    is_context_note,
    render_message,
    render_transcript,
    tool_call_counts,
)
from .workspace import READ_TOOL_NAME, OutputStore, handle_in_preview

_STATE_KEY = "retinue.context:"
_DROPPED_MARK = "[Dropped output of "
_MIN_DROPPED_CHARS = 400
# Exact counts cost a round trip, so they are fetched only once an estimate is this close to the trigger.
_EXACT_COUNT_FROM = 0.8


@dataclass(eq=False)
class CompactionJob:
    """What a compaction strategy works with. Build new message objects; never change the given ones.

    Earlier events still hold the old messages, so an in-place edit would
    rewrite history that listeners already saw.
    """

    messages: list[Message]
    context: RunContext
    model: Model
    target_tokens: int
    limit_tokens: int
    estimator: TokenEstimator
    measure: Callable[[Sequence[Message]], int]
    """Estimated tokens of the whole request (instructions and tools included) with these messages."""
    keep_text: Callable[[str], str | None]
    """Store text in the run's workspace; its handle, or None when the policy keeps nothing."""
    extra_usage: Usage = field(default_factory=Usage)
    """Model calls a custom strategy made on its own while compacting, charged to the run afterwards."""
    sent_usage: Usage = field(default_factory=Usage)
    """Model calls made through `send_request` (already charged and announced), for the compaction notice."""


@dataclass(frozen=True, slots=True)
class ContextStatus:
    """Where a run stood at its latest model call: the request's estimated tokens against its limit."""

    tokens: int
    limit: ContextLimit
    trigger_tokens: int | None
    compactions: int

    @property
    def share_of_limit(self) -> float | None:
        """How full the window was (0 to 1), or None when the window is unknown."""
        max_input = self.limit.max_input_tokens
        return None if not max_input else self.tokens / max_input


@dataclass(eq=False)
class _RunState:
    estimator: TokenEstimator
    store: OutputStore | None = None
    compactions: int = 0
    status: ContextStatus | None = None
    last_request: tuple[int, int, int] | None = None  # raw estimate, input tokens and requests before it
    told_window_unknown: bool = False
    told_no_counter: bool = False


@dataclass(frozen=True, kw_only=True, eq=False)
class CompactingPolicy:
    """Window accounting, tool-output offloading and the compaction trigger; subclasses say how to compact.

    Args:
        window: The model's context window in tokens; by default looked up for the model
            (`retinue.models.windows`). Needed for models the table does not know.
        token_budget: Keep every request under this many input tokens even if the window is larger.
        compact_at: Compact when a request passes this share of the limit.
        compact_to: After compacting, aim for at most this share of the limit.
        reserve_output_tokens: Tokens kept free for the answer; by default the agent's `settings.max_tokens`,
            or 1,024 (plus any thinking budget) when that is not set.
        offload_over_chars: Tool outputs longer than this are stored and shown as a preview; None keeps them whole.
        preview_chars: How much of an offloaded output the model sees at once.
        page_chars: The page size of `read_tool_output`.
        workspace: A directory for stored outputs and dropped turns; by default a temporary one per run.
        keep_dropped: Store what compaction removes, so the model can read it back.
        exact_token_counts: Near the trigger, count tokens with the model when it is a `TokenCounter`.
    """

    window: int | None = None
    token_budget: int | None = None
    compact_at: float = 0.8
    compact_to: float = 0.5
    reserve_output_tokens: int | None = None
    offload_over_chars: int | None = 8_000
    preview_chars: int = 1_500
    page_chars: int = 4_000
    workspace: str | Path | None = None
    keep_dropped: bool = True
    exact_token_counts: bool = False
    strategy: ClassVar[str] = "custom"

    def __post_init__(self) -> None:
        if not 0 < self.compact_to < self.compact_at <= 1:
            raise ConfigurationError(
                f"A context policy needs 0 < compact_to < compact_at <= 1 (got compact_to={self.compact_to}, "
                f"compact_at={self.compact_at})."
            )
        for name in ("window", "token_budget"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ConfigurationError(f"{name} must be a positive number of tokens, or None.")

    # -- the ContextPolicy protocol ------------------------------------------------------------

    def tools(self) -> Sequence[Tool]:
        if self.offload_over_chars is None and not (self.keep_dropped and self.compacts):
            return ()
        return (self._read_tool(),)

    async def before_request(self, context: RunContext, model: Model) -> None:
        state = self._state(context, model)
        self._learn_from_last_request(state, context)
        build = _request_builder(context)
        estimator = state.estimator
        messages = context.messages

        def measure(candidate: Sequence[Message]) -> int:
            return estimator.request(build(candidate))

        limit = self.limit_for(model, context.agent.settings)
        max_input = limit.max_input_tokens
        raw = estimator.raw(build(messages))
        tokens = estimator.scale(raw)
        trigger: int | None = None
        if max_input is None:
            self._tell_window_unknown(state, context, model)
        else:
            trigger = math.floor(max_input * self.compact_at)
            tokens = await self._count(state, context, model, build(messages), raw, tokens, trigger)
            if tokens > trigger and self.compacts:
                compactions = state.compactions
                tokens = await self._compact(state, context, model, measure, tokens, trigger, max_input)
                if state.compactions != compactions:
                    raw = estimator.raw(build(messages))
            state.status = ContextStatus(tokens, limit, trigger, state.compactions)
            if tokens > max_input:
                raise ContextWindowExceeded(
                    self._explain_overflow(context, model, measure, tokens, limit),
                    estimated_tokens=tokens,
                    limit_tokens=max_input,
                    model_id=model.model_id,
                )
        state.status = ContextStatus(tokens, limit, trigger, state.compactions)
        usage = context.budget.own_usage
        state.last_request = (raw, usage.input_tokens, usage.requests)

    async def on_tool_result(self, result: ToolResult, context: RunContext) -> ToolResult:
        if (
            self.offload_over_chars is None
            or result.name == READ_TOOL_NAME
            or len(result.content) <= self.offload_over_chars
        ):
            return result
        store = self._store(context)
        handle = store.new_handle("out")
        await asyncio.to_thread(store.write, handle, result.content)
        shown = workspace.preview(result.content, handle, head_chars=self.preview_chars, page_chars=self.page_chars)
        return ToolResult(result.tool_call_id, result.name, shown, result.is_error)

    # -- what subclasses provide ----------------------------------------------------------------

    @property
    def compacts(self) -> bool:
        """Whether this policy ever rewrites the conversation (False only for `NoCompaction`)."""
        return True

    async def compact(self, job: CompactionJob) -> list[Message] | None:
        """The conversation rewritten to fit `job.target_tokens` where possible, or None if nothing can go."""
        raise NotImplementedError(f"{type(self).__name__} must implement compact()")

    # -- accounting -----------------------------------------------------------------------------

    def limit_for(self, model: Model, settings: ModelSettings) -> ContextLimit:
        """The input-token limit a request to `model` must respect under this policy."""
        window = self.window if self.window is not None else context_window_of(model)
        return ContextLimit(window, output_reserve(settings, self.reserve_output_tokens), self.token_budget)

    def status(self, context: RunContext) -> ContextStatus | None:
        """The run's latest request size against its limit (None before its first model call)."""
        return self._state(context).status

    def estimator_for(self, context: RunContext) -> TokenEstimator:
        """The run's token estimator, calibrated by the usage its provider has reported so far."""
        return self._state(context).estimator

    def _state(self, context: RunContext, model: Model | None = None) -> _RunState:
        # Run state rides on the run tree's shared dict: it lives as long as the run and no longer.
        key = _STATE_KEY + context.run_id
        state = context.shared.get(key)
        if not isinstance(state, _RunState):
            model_id = (model or context.agent.resolved_model()).model_id
            state = _RunState(TokenEstimator(model_id))
            context.shared[key] = state
        return state

    def _store(self, context: RunContext) -> OutputStore:
        state = self._state(context)
        if state.store is None:
            state.store = OutputStore.open(self.workspace, context.run_id)
        return state.store

    def _learn_from_last_request(self, state: _RunState, context: RunContext) -> None:
        usage = context.budget.own_usage
        if state.last_request is None:
            return
        raw, input_before, requests_before = state.last_request
        state.last_request = None
        # Only when exactly the loop's one call happened since, so the difference is that request's size.
        if usage.requests == requests_before + 1:
            state.estimator.observe(raw, usage.input_tokens - input_before)

    async def _count(
        self,
        state: _RunState,
        context: RunContext,
        model: Model,
        request: ModelRequest,
        raw: int,
        estimate: int,
        trigger: int,
    ) -> int:
        if not self.exact_token_counts or estimate < trigger * _EXACT_COUNT_FROM:
            return estimate
        if not isinstance(model, TokenCounter):
            if not state.told_no_counter:
                state.told_no_counter = True
                _notify(
                    context,
                    "token_count",
                    f"{model.model_id} cannot count tokens exactly; the context policy uses estimates.",
                )
            return estimate
        exact = await model.count_tokens(request)
        state.estimator.observe(raw, exact)
        return exact

    async def _compact(
        self,
        state: _RunState,
        context: RunContext,
        model: Model,
        measure: Callable[[Sequence[Message]], int],
        tokens: int,
        trigger: int,
        max_input: int,
    ) -> int:
        messages = context.messages

        def keep_text(text: str) -> str | None:
            if not self.keep_dropped:
                return None
            store = self._store(context)
            handle = store.new_handle("ctx")
            store.write(handle, text)
            return handle

        job = CompactionJob(
            messages=list(messages),
            context=context,
            model=model,
            target_tokens=math.floor(max_input * self.compact_to),
            limit_tokens=max_input,
            estimator=state.estimator,
            measure=measure,
            keep_text=keep_text,
        )
        compacted = await self.compact(job)
        if job.extra_usage.requests:
            context.budget.charge(job.extra_usage)
        summarizer_usage = job.sent_usage + job.extra_usage
        if compacted is None:
            return tokens
        after = measure(compacted)
        if self.exact_token_counts and isinstance(model, TokenCounter):
            after = await model.count_tokens(_request_builder(context)(compacted))
        if after >= tokens:
            # Rewriting the conversation costs a prompt-cache miss; not worth it for nothing.
            return tokens
        removed = len(messages) - len(compacted)
        messages[:] = compacted
        state.compactions += 1
        _notify(
            context,
            "compaction",
            f"Compacted the conversation ({self.strategy}): about {tokens:,} -> {after:,} tokens "
            f"(compacting at {trigger:,}, limit {max_input:,}).",
            {
                "strategy": self.strategy,
                "before_tokens": tokens,
                "after_tokens": after,
                "trigger_tokens": trigger,
                "limit_tokens": max_input,
                "removed_messages": removed,
                "compaction": state.compactions,
                "turn": context.budget.turns,
                "summarizer_usage": _usage_data(summarizer_usage) if summarizer_usage.requests else None,
            },
        )
        return after

    def _explain_overflow(
        self,
        context: RunContext,
        model: Model,
        measure: Callable[[Sequence[Message]], int],
        tokens: int,
        limit: ContextLimit,
    ) -> str:
        max_input = limit.max_input_tokens
        assert max_input is not None
        messages = context.messages
        where = (
            f"The next request to {model.model_id} needs about {tokens:,} tokens, "
            f"more than {limit.describe()} ({max_input:,})."
        )
        if not self.compacts:
            return (
                f"{where} Agent '{context.agent.name}' does not compact its conversation (NoCompaction); give it "
                "context_policy=Summarize() or DropToolOutputs(), or make its tools return less."
            )
        kept = head_end(messages)
        fixed = measure([])
        goal = measure(messages[:kept]) - fixed
        pieces = exchanges(messages, kept)
        latest = measure([messages[i] for i in pieces[-1]]) - fixed if pieces else 0
        return (
            f"{where} Compaction ({self.strategy}) cannot shrink it further: the instructions and tool schemas take "
            f"about {fixed:,} tokens, the goal {goal:,} and the latest exchange {latest:,}, and these are always kept. "
            "Shorten them, lower offload_over_chars so large tool outputs are stored, or use a model with a larger "
            "window."
        )

    def _tell_window_unknown(self, state: _RunState, context: RunContext, model: Model) -> None:
        if state.told_window_unknown:
            return
        state.told_window_unknown = True
        _notify(
            context,
            "context_window_unknown",
            f"The context window of {model.model_id} is unknown, so agent '{context.agent.name}' will not compact "
            "or check its conversation; pass window=... (or token_budget=...) to its context policy.",
        )

    # -- reading stored outputs back ------------------------------------------------------------

    def _read_tool(self) -> Tool:
        page_chars = self.page_chars

        def read_tool_output(handle: str, page: int = 1, *, context: RunContext) -> str:
            """Read a stored tool output (or dropped earlier turns) page by page.

            Large outputs are shown as a preview that names a handle; this returns the full text in pages.

            Args:
                handle: The handle named in the preview or note, e.g. 'out_1a2b3c4d_3'.
                page: Which page, from 1.
            """
            handle = handle.strip().strip("'\"")
            text = self._store(context).read(handle)
            if text is None:
                raise ToolError(
                    f"There is no stored output '{handle}'. Use a handle exactly as a preview or note names it."
                )
            pages = workspace.page_count(text, page_chars)
            if not 1 <= page <= pages:
                raise ToolError(f"'{handle}' has pages 1 to {pages}; page {page} does not exist.")
            return workspace.page(text, handle, page, page_chars)

        return tool_from_function(read_tool_output, name=READ_TOOL_NAME)


@dataclass(frozen=True, kw_only=True, eq=False)
class NoCompaction(CompactingPolicy):
    """Never rewrite the conversation, but stop the run with `ContextWindowExceeded` before it overflows."""

    strategy: ClassVar[str] = "none"

    @property
    def compacts(self) -> bool:
        return False

    async def compact(self, job: CompactionJob) -> list[Message] | None:
        return None


SUMMARY_INSTRUCTIONS = """\
You compress the earlier part of an AI agent's working conversation so the agent can continue its task \
without it. Write a summary the agent will read in place of those turns. Keep, in this order:
1. Progress towards the goal: what has been done and what was found (exact numbers, names, identifiers).
2. Decisions made and why, and approaches that failed (so they are not retried).
3. Open questions and the next steps that were planned.
4. Pointers to anything dropped that may be needed again: file paths, URLs, ids, and stored-output handles \
(such as out_1a2b3c4d_3) with what each one holds.
Be concise and factual; do not invent anything; write no preamble."""


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
        summary = await self._summarize(job, summarizer, goal, dropped)
        note = _summary_note(summary, dropped, handle)
        return [*messages[:kept_head], note, *messages[tail_start:]]

    def _summarizer(self, agent_model: Model) -> Model:
        if self.summarizer is None:
            return agent_model
        if isinstance(self.summarizer, str):
            from ..models.resolve import resolve_model  # providers load only when a string names one

            return resolve_model(self.summarizer)
        return self.summarizer

    async def _summarize(
        self, job: CompactionJob, summarizer: Model, goal: Message | None, dropped: Sequence[Message]
    ) -> str:
        goal_text = f"The agent's goal:\n{goal.content}\n\n" if isinstance(goal, UserMessage) else ""
        summary = ""
        for chunk in self._chunks(summarizer, dropped):
            earlier = f"Summary of the turns before these:\n{summary}\n\n" if summary else ""
            request = ModelRequest(
                instructions=self.summary_instructions,
                messages=[
                    UserMessage(f"{goal_text}{earlier}The turns to summarize:\n\n{chunk}\n\nWrite the summary now.")
                ],
                tools=[],
                settings=ModelSettings(max_tokens=self.summary_max_tokens),
            )
            response = await send_request(job.context, summarizer, request, purpose="compaction")
            job.sent_usage.add(response.usage)
            summary = response.message.text.strip() or summary
        return summary or "(The summarizer returned no text.)"

    def _chunks(self, summarizer: Model, dropped: Sequence[Message]) -> list[str]:
        # A summarizer with a smaller window than the agent's reads the dropped turns in parts,
        # folding each part into the summary so far.
        window = context_window_of(summarizer)
        rendered = [render_message(message) for message in dropped]
        if window is None:
            return ["\n\n".join(rendered)]
        estimator = TokenEstimator(summarizer.model_id)
        room = max((window - 2 * self.summary_max_tokens) // 2, 1)
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


def _request_builder(context: RunContext) -> Callable[[Sequence[Message]], ModelRequest]:
    """The request the loop is about to send, built around any conversation: what the policy measures."""
    agent, last_turn = context.agent, context.budget.must_answer_now()

    def build(messages: Sequence[Message]) -> ModelRequest:
        return build_request(agent, context, messages, last_turn=last_turn)

    return build


def _usage_data(usage: Usage) -> dict[str, object]:
    return {
        "requests": usage.requests,
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "cost_usd": usage.cost_usd,
    }


def _notify(context: RunContext, kind: str, message: str, data: dict[str, object] | None = None) -> None:
    if context.emit is not None:
        context.emit(
            Notice(run_id=context.run_id, agent=context.agent.name, kind=kind, message=message, data=dict(data or {}))
        )


__all__ = [
    "CompactingPolicy",
    "CompactionJob",
    "ContextStatus",
    "DropToolOutputs",
    "NoCompaction",
    "Summarize",
]
