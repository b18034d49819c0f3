"""The compacting policy's core: keep a long run inside its model's window, and tell people when it acts.

`CompactingPolicy` does the accounting every policy needs: before each call it
estimates the request, compares it with the limit (the model's window less
room for the answer, or an explicit token budget), compacts when the request
passes `compact_at` of that limit, and stops the run with
`ContextWindowExceeded` when even the compacted request would not fit. It also
offloads large tool outputs to the run's workspace. Subclasses only decide
*how* to compact:

- `Summarize` (summarize.py): older exchanges are replaced by a summary written by the model
  (or a cheaper `summarizer`), which keeps decisions, open questions and
  pointers to what was dropped.
- `DropToolOutputs` (drop_outputs.py): older tool outputs are replaced by a placeholder naming
  where to read them again; if that is not enough, the oldest exchanges go.
- `NoCompaction` (here): nothing is rewritten, but the window is still checked.

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
)
from ..model_calls import build_request
from ..models.base import Model
from ..models.windows import context_window_of
from ..run_context import RunContext, TreeState
from ..tools import Tool, tool_from_function
from ..usage import Usage
from . import offloaded
from .budget import ContextLimit, TokenCounter, TokenEstimator, output_reserve
from .conversation import (
    exchanges,
    head_end,
)
from .offloaded import READ_TOOL_NAME, OutputStore

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


_RUN_STATES: TreeState[dict[str, _RunState]] = TreeState("compaction state, by run id", lambda root: {})


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
        shown = offloaded.preview(result.content, handle, head_chars=self.preview_chars, page_chars=self.page_chars)
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
        # One state per run, kept with its tree's state: it goes when the tree does.
        states = context.tree_state(_RUN_STATES)
        state = states.get(context.run_id)
        if state is None:
            model_id = (model or context.agent.resolved_model()).model_id
            state = states[context.run_id] = _RunState(TokenEstimator(model_id))
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
                "summarizer_usage": summarizer_usage.headline() if summarizer_usage.requests else None,
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
            pages = offloaded.page_count(text, page_chars)
            if not 1 <= page <= pages:
                raise ToolError(f"'{handle}' has pages 1 to {pages}; page {page} does not exist.")
            return offloaded.page(text, handle, page, page_chars)

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


def _request_builder(context: RunContext) -> Callable[[Sequence[Message]], ModelRequest]:
    """The request the loop is about to send, built around any conversation: what the policy measures."""
    agent, last_turn = context.agent, context.budget.must_answer_now()

    def build(messages: Sequence[Message]) -> ModelRequest:
        return build_request(agent, context, messages, last_turn=last_turn)

    return build


def _notify(context: RunContext, kind: str, message: str, data: dict[str, object] | None = None) -> None:
    if context.emit is not None:
        context.emit(
            Notice(run_id=context.run_id, agent=context.agent.name, kind=kind, message=message, data=dict(data or {}))
        )


__all__ = ["CompactingPolicy", "CompactionJob", "ContextStatus", "NoCompaction"]
