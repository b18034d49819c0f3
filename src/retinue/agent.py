"""Agent: a frozen definition of what runs (instructions, model, tools, limits)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeAlias, get_args

from . import approvals
from .approvals import Approver
from .errors import ConfigurationError
from .events import Event, EventSink, RunFinished, fan_out, guard_listener
from .limits import Budget, Limits
from .loop import run_loop
from .messages import Message, ModelSettings, SendBack
from .model_calls import ToolOffer
from .models.base import Model, close_model
from .output import output_tool
from .result import OutputT, RunResult
from .run_context import RunContext, new_run_id
from .tools import Tool, ToolFunction, as_tool
from .window.policy import ContextPolicy

if TYPE_CHECKING:
    from .journal import Journal
    from .journal.journal import JournalledRun, RunJournal

AnswerCheck: TypeAlias = Callable[[RunContext, str], str | SendBack | None]
"""A check of a final text answer: the problem to send back to the model, or None (see `Agent`)."""

ToolScheduling: TypeAlias = Literal["concurrent", "sequential"]
"""How the tool calls of one model turn run: all at once, or each after the one before (see `Agent`)."""


@dataclass(frozen=True, eq=False)
class Agent(Generic[OutputT]):
    """An agent definition. It holds no run state, so one definition serves any number of concurrent runs.

    Args:
        name: How the agent is named in events, traces and (as a specialist) to other agents.
        instructions: The goal and context the model works from; sent as the system prompt, unchanged.
        model: A `Model`, a model string such as "anthropic:claude-sonnet-4-5", "openai:gpt-4.1",
            "openai:<model>@<base_url>" or "local"; None picks the default for this machine.
        tools: Tools or plain typed functions.
        output_type: A pydantic model (or any type pydantic validates) for a structured final answer.
        description: What the agent is good at, shown to a lead that can consult it.
        limits: When to stop a run that has not answered.
        settings: Sampling settings for every model call.
        tool_timeout: Seconds a tool may run before it is stopped (a tool's own timeout wins).
        max_tool_concurrency: At most this many tool calls of one turn run at once; None for no cap.
        max_tool_output_chars: Longer tool outputs are truncated, with a note saying how much was cut.
        output_retries: How many times in a row an invalid final answer is sent back for another try (a turn
            that calls tools starts the count again).
        context_policy: Compaction and tool-output offloading for long runs (see `retinue.window`).
        tool_scheduling: How the tool calls of one model turn run. "concurrent" (the default) starts them all
            at once, sync tools in threads where they may block (see `tool`), so two calls of a tool that is
            not thread-safe can interleave (two bookings taking the same id). "sequential" runs each call
            after the one before has finished, in the order the model gave them; once one ends the run, the
            rest are not run.
        strict_tool_arguments: Validate every tool's arguments strictly: a value of the wrong JSON type ("250"
            for an int) or a key no parameter type names is an error the model reads, never converted or
            dropped, and what passes reaches the tool as sent (see `Tool.validate`). A tool's own `strict` wins.
        note_repeated_failures: When a tool call fails again with the same arguments, add a note to its error
            saying so and suggesting another approach (small models repeat failing calls). False leaves tool
            errors exactly as the tools wrote them.
        answer_checks: Functions of the run's context and a final text answer that return a problem for the
            model to fix, or None to accept it. An answer with a problem is sent back (`output_retries` times
            at most; after that the first answer sent back stands). For what a validator cannot see: an
            answer that says "I will ask the hotels specialist" instead of asking.
    """

    name: str
    instructions: str = ""
    model: Model | str | None = None
    tools: Sequence[Tool | ToolFunction] = ()
    output_type: type[OutputT] | None = None
    description: str = ""
    limits: Limits = field(default_factory=Limits)
    settings: ModelSettings = field(default_factory=ModelSettings)
    tool_timeout: float | None = None
    max_tool_concurrency: int | None = None
    max_tool_output_chars: int | None = None
    output_retries: int = 2
    context_policy: ContextPolicy | None = None
    tool_scheduling: ToolScheduling = "concurrent"
    strict_tool_arguments: bool = False
    note_repeated_failures: bool = True
    answer_checks: Sequence[AnswerCheck] = ()
    _run_tools: tuple[Tool, ...] = field(init=False, repr=False)
    _model: Model | None = field(init=False, repr=False, default=None)
    _tool_offers: dict[bool, ToolOffer] = field(init=False, repr=False, default_factory=dict)  # by attended

    def __post_init__(self) -> None:
        own_tools = tuple(as_tool(item) for item in self.tools)
        tools = own_tools
        if self.context_policy is not None:
            tools += tuple(self.context_policy.tools())
        if self.output_type is not None:
            tools += (output_tool(self.output_type),)
        seen: set[str] = set()
        for item in tools:
            if item.name in seen:
                raise ConfigurationError(f"Agent '{self.name}' has two tools named '{item.name}'; rename one.")
            seen.add(item.name)
        if self.max_tool_concurrency is not None and self.max_tool_concurrency < 1:
            raise ConfigurationError("max_tool_concurrency must be at least 1, or None for no cap.")
        if self.tool_scheduling not in get_args(ToolScheduling):
            raise ConfigurationError(
                f"Agent '{self.name}': tool_scheduling={self.tool_scheduling!r}; "
                f"give {' or '.join(map(repr, get_args(ToolScheduling)))}."
            )
        if self.tool_scheduling == "sequential" and self.max_tool_concurrency not in (None, 1):
            raise ConfigurationError(
                f"Agent '{self.name}': max_tool_concurrency={self.max_tool_concurrency} has no effect with "
                'tool_scheduling="sequential", which runs one call at a time; drop one of them.'
            )
        object.__setattr__(self, "tools", own_tools)
        object.__setattr__(self, "_run_tools", tools)
        if not isinstance(self.model, str | None):
            object.__setattr__(self, "_model", self.model)

    def resolved_model(self) -> Model:
        if self._model is None:
            from .models.resolve import resolve_model

            object.__setattr__(self, "_model", resolve_model(self.model))
        assert self._model is not None
        return self._model

    def tools_for_run(self) -> tuple[Tool, ...]:
        """Every tool the model is shown, the output tool included."""
        return self._run_tools

    def offered_tools(self, approver: Approver | None) -> ToolOffer:
        """The tools a run with `approver` shows the model.

        Built once per agent, so all requests list the same schemas, which keeps the prompt prefix stable.
        """
        attended = approver is not approvals.unattended
        offer = self._tool_offers.get(attended)
        if offer is None:
            offer = self._tool_offers[attended] = ToolOffer.of(self.tools_for_run(), attended=attended)
        return offer

    def instructions_for(self, context: RunContext) -> str:
        return self.instructions

    def preview(self, prompt: str | list[Message], **options: Any) -> str:
        """Exactly what the model would be sent for `prompt` next, with token estimates per part."""
        from .inspect_request import preview_request

        return preview_request(self, prompt, **options)

    def override(self, **changes: Any) -> Agent[Any]:
        """A copy with some fields changed, e.g. `agent.override(model=ScriptedModel([...]))` in a test."""
        return dataclasses.replace(self, **changes)

    def new_context(
        self,
        *,
        deps: Any = None,
        approver: Approver | None = None,
        on_event: EventSink | None = None,
        limits: Limits | None = None,
        run_id: str | None = None,
        journal: RunJournal | None = None,
    ) -> RunContext:
        context = RunContext(
            agent=self,
            run_id=run_id or new_run_id(),
            budget=Budget(self.name, limits or self.limits),
            emit=guard_listener(on_event),
            approver=approver,
            deps=deps,
        )
        if journal is not None:
            context.journal = journal
        return context

    async def run(
        self,
        prompt: str,
        *,
        history: list[Message] | None = None,
        deps: Any = None,
        approver: Approver | None = None,
        on_event: EventSink | None = None,
        limits: Limits | None = None,
    ) -> RunResult[OutputT]:
        """Run the agent on `prompt` until it answers or a limit stops it.

        A failed run does not raise: its result says how it ended. `history`
        continues an earlier conversation (pass `result.messages`).
        """
        context = self.new_context(deps=deps, approver=approver, on_event=on_event, limits=limits)
        return await run_loop(self, prompt, context, history=history)

    async def start(
        self,
        prompt: str,
        *,
        journal: Journal | str | os.PathLike[str],
        run_id: str | None = None,
        history: list[Message] | None = None,
        deps: Any = None,
        approver: Approver | None = None,
        on_event: EventSink | None = None,
        limits: Limits | None = None,
        allow_changed_definition: bool = False,
    ) -> RunResult[OutputT]:
        """Run durably: written ahead into `journal` (a `Journal`, a SQLite path or a postgresql:// URL), resumable.

        Idempotent on `run_id` (a new one by default, in `result.run_id`): starting a run the journal already
        holds resumes it (see `resume`), which needs the same agent and prompt. Raises `RunLeasedError` while
        another process runs it, and `JournalError` when the journal holds a different run under that id.
        An approver answering `Later` (`approvals.decide_later()`) suspends the run: it ends "waiting", with
        `result.pending_approvals`, until a decision is recorded (`journal.decide`, `retinue approve`).
        """
        from .journal.resume import check_start, open_journal

        with open_journal(journal) as opened:
            run_id = run_id or new_run_id()
            check_start(opened, self.name, run_id, prompt)
            handle = self._pinned_handle(opened, run_id, allow_changed_definition)
            context = self.new_context(
                deps=deps, approver=approver, on_event=on_event, limits=limits, run_id=run_id, journal=handle
            )
            return await run_loop(self, prompt, context, history=history)

    async def resume(
        self,
        run_id: str,
        *,
        journal: Journal | str | os.PathLike[str],
        deps: Any = None,
        approver: Approver | None = None,
        on_event: EventSink | None = None,
        limits: Limits | None = None,
        allow_changed_definition: bool = False,
    ) -> RunResult[OutputT]:
        """Go on with the durable run `run_id` from where its journal stops.

        What the journal recorded is replayed (model calls are not paid again, tools are not run again); the
        run goes on live from there, within the same limits. A run that had ended replays to the same result.
        A call that waited for a decision gets the one recorded; one still undecided is put to `approver`
        (`Later` keeps the run waiting).
        Raises `JournalError` when the journal has no such run of this agent, `RunLeasedError` while another
        process runs it, and `DefinitionChangedError` when this agent's tree is not defined as when the run
        started (instructions, tools, models, sub-agents), unless `allow_changed_definition`, which the
        journal records.
        """
        from .journal.resume import open_journal, recorded_prompt

        with open_journal(journal) as opened:
            prompt = recorded_prompt(opened, self.name, run_id)
            handle = self._pinned_handle(opened, run_id, allow_changed_definition)
            context = self.new_context(
                deps=deps, approver=approver, on_event=on_event, limits=limits, run_id=run_id, journal=handle
            )
            return await run_loop(self, prompt, context)

    def _pinned_handle(self, journal: Journal, run_id: str, allow_changed_definition: bool) -> JournalledRun:
        """The journal handle of the root run `run_id`, pinned to this agent's definition (see `definition`)."""
        from .journal.definition import check_definition, fingerprint
        from .journal.journal import JournalledRun

        definition = fingerprint(self)
        changes = check_definition(journal, run_id, definition, allow_changed=allow_changed_definition)
        return JournalledRun.root(journal, run_id, definition=definition, definition_changes=changes)

    def run_sync(
        self,
        prompt: str,
        *,
        history: list[Message] | None = None,
        deps: Any = None,
        approver: Approver | None = None,
        on_event: EventSink | None = None,
        limits: Limits | None = None,
    ) -> RunResult[OutputT]:
        """`run` for code that is not async. Do not call it from inside a running event loop."""

        async def main() -> RunResult[OutputT]:
            try:
                return await self.run(
                    prompt, history=history, deps=deps, approver=approver, on_event=on_event, limits=limits
                )
            finally:
                # asyncio.run ends its loop next: models must close what they opened in it (HTTP connections).
                from .models.resolve import close_resolved_models

                if self._model is not None:
                    await close_model(self._model)
                await close_resolved_models()

        return asyncio.run(main())

    async def stream(
        self,
        prompt: str,
        *,
        history: list[Message] | None = None,
        deps: Any = None,
        approver: Approver | None = None,
        on_event: EventSink | None = None,
        limits: Limits | None = None,
    ) -> AsyncIterator[Event]:
        """Run the agent and yield every event as it happens, sub-agents' included, ending with RunFinished."""
        queue: asyncio.Queue[Event | None] = asyncio.Queue()  # None: the run task failed
        sink = fan_out(queue.put_nowait, guard_listener(on_event))
        context = self.new_context(deps=deps, approver=approver, on_event=sink, limits=limits)
        task = asyncio.create_task(run_loop(self, prompt, context, history=history, stream_text=True))

        def wake_reader_on_failure(done: asyncio.Task[RunResult[OutputT]]) -> None:
            # run_loop reports failures in its result; should it raise anyway, the reader must not wait forever.
            if not done.cancelled() and done.exception() is not None:
                queue.put_nowait(None)

        task.add_done_callback(wake_reader_on_failure)
        try:
            while True:
                event = await queue.get()
                if event is None:
                    task.result()  # re-raises the run's exception
                    return
                yield event
                if isinstance(event, RunFinished) and event.run_id == context.run_id:
                    break
        finally:
            if not task.done():
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
