"""The agentic loop.

Call the model; if it asked for tools, run them (concurrently or in turn, as
the agent says) and append their results; repeat until the model answers or a
limit stops the run. The whole loop is `run_loop`. Each turn comes to a named outcome (`RunAgain`,
`Answered`, `RetryAnswer`), and the run to one ending (`Completed`, `Stopped`,
`Failed`, `Cancelled`), which becomes its `RunResult` in one place. Each step
is a named helper below it. Everything else (streaming, tracing, cost, UIs)
listens to the events it emits.

A durable run writes ahead into `context.journal` (see `retinue.journal`): the
model's response before its tools run, a write tool's start before its body,
each tool's output before the next request. Resumed, the run goes through the
same code again, answered from the journal wherever it has a record. A call
whose approver answers "later" waits (`Waiting`): the turn's other calls end,
then the run suspends until a decision is recorded in its journal.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeAlias

import pydantic

from . import approvals
from .errors import ConfigurationError, OutputValidationError, RunInterrupted, ToolError, ToolOutputError
from .events import (
    ApprovalRequested,
    ApprovalResolved,
    Notice,
    RunFinished,
    RunStarted,
    TextDelta,
    ToolCallFinished,
    ToolCallStarted,
)
from .limits import Budget, LimitReached
from .messages import (
    AssistantMessage,
    Message,
    SendBack,
    ToolCall,
    ToolResult,
    ToolResultsMessage,
    UserMessage,
    is_answer_sent_back,
)
from .model_calls import build_request, send_request
from .models.base import Model, TextSink, model_spec
from .output import OUTPUT_TOOL_NAME, FinalOutput, parse_text_output
from .result import OutputT, RunResult, RunStatus, UncertainCall
from .run_context import idempotency_key
from .tools import DEFAULT_MAX_OUTPUT_CHARS, Tool, render_tool_output, truncate_output

if TYPE_CHECKING:
    from .agent import Agent
    from .journal.journal import RecordedOutput
    from .run_context import RunContext


async def run_loop(
    agent: Agent[OutputT],
    prompt: str,
    context: RunContext,
    *,
    history: list[Message] | None = None,
    stream_text: bool = False,
) -> RunResult[OutputT]:
    """Run `agent` on `prompt` until it answers or a limit stops it. `context` is this run's, made for `agent`.

    Never raises for a failed run. Only the caller's cancellation, or a KeyboardInterrupt or SystemExit raised
    outside any tool, propagates, after RunFinished has recorded how the run ended (and a sub-run's wait for a
    decision, which suspends its whole tree). A durable run whose journal refuses it (`RunLeasedError`: another
    process holds it) raises before it starts.
    """
    started = time.perf_counter()
    budget = context.budget
    prompt, history = await context.journal.open(context, prompt, history)
    tools = agent.offered_tools(context.approver).by_name
    context.messages.extend(history or ())
    context.messages.append(UserMessage(prompt))
    model, setup_error = _resolve_model(agent)
    _announce_start(agent, prompt, context, model)
    on_text = _text_sink(context) if stream_text else None
    wall_clock = asyncio.timeout_at(budget.wall_deadline())
    ending: RunEnding[OutputT]
    try:
        if model is None:
            raise setup_error or ConfigurationError(f"Agent '{agent.name}' has no model.")
        budget.require_known_price(model)
        async with wall_clock:
            retries_left, fallback = agent.output_retries, None
            while (limit := budget.check()) is None:
                message = await call_model(agent, model, context, on_text)
                match await take_turn(agent, message, tools, context):
                    case RunAgain():
                        retries_left, fallback = agent.output_retries, None  # it acted on what it was told
                        continue
                    case Answered(output):
                        ending = Completed(output)
                        break
                    case RetryAnswer(problem, settle_for):
                        retries_left -= 1
                        # The first answer sent back is the one kept: the later ones, written under the
                        # note, have been the note itself, copied.
                        fallback = fallback or settle_for
                        if retries_left < 0 and fallback is not None:
                            ending = Completed(fallback.output)
                            break
                        if retries_left < 0:
                            raise OutputValidationError(problem)
            else:  # a limit came before an answer
                ending = Stopped(limit)
    except BaseException as exc:  # every ending is recorded; only some go on past the run
        ending = _ending_after(exc, budget, wall_clock)
        if _goes_past_the_run(exc, context):
            raise
    finally:
        result = await _finish(agent, context, ending, started)
    return result


# -- how a turn ends, and how a run ends -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RunAgain:
    """The model called tools: their results are in the conversation, for it to read next turn."""


RUN_AGAIN = RunAgain()  # most turns end so: one instance, not one per step


@dataclass(frozen=True, slots=True)
class Answered(Generic[OutputT]):
    """The model gave a valid final answer."""

    output: OutputT | None


@dataclass(frozen=True, slots=True)
class RetryAnswer:
    """The model's final answer was not valid; `problem` says why, and the model has been told.

    `settle_for` is an answer that may stand when no retries are left (an answer check's problem); of those
    sent back in a row, the first is kept. Without one, running out of retries fails the run.
    """

    problem: str
    settle_for: Answered[Any] | None = None


TurnOutcome: TypeAlias = RunAgain | Answered[OutputT] | RetryAnswer


# How a run ended: `_run_result` makes each ending into the RunResult the caller reads.


@dataclass(frozen=True, slots=True)
class Completed(Generic[OutputT]):
    output: OutputT | None


@dataclass(frozen=True, slots=True)
class Stopped:
    limit: LimitReached


@dataclass(frozen=True, slots=True)
class Failed:
    error: BaseException


@dataclass(frozen=True, slots=True)
class Cancelled:
    error: BaseException | None = None  # a KeyboardInterrupt from outside any tool: the process is stopping


@dataclass(frozen=True, slots=True)
class Waiting:
    """A durable run suspended until a person decides `approvals` (recorded in its journal)."""

    approvals: tuple[approvals.ApprovalRecord, ...]


RunEnding: TypeAlias = Completed[OutputT] | Stopped | Failed | Cancelled | Waiting


# -- the start of a run ------------------------------------------------------------------------


def _resolve_model(agent: Agent[Any]) -> tuple[Model | None, Exception | None]:
    # A bad model string must end the run like any error, with the usual events, not raise from run().
    try:
        return agent.resolved_model(), None
    except Exception as exc:  # noqa: BLE001
        return None, exc


def _announce_start(agent: Agent[Any], prompt: str, context: RunContext, model: Model | None) -> None:
    model_id = model_spec(model) if model is not None else str(agent.model)
    parent_run_id = context.parent.run_id if context.parent else None
    context.announce(RunStarted, prompt, model_id, parent_run_id, context.tool_call_id, context.depth)


def _text_sink(context: RunContext) -> TextSink | None:
    # Without a listener, the provider is not asked to stream at all.
    emit, run_id, agent_name = context.emit, context.run_id, context.agent.name
    if emit is None:
        return None

    def on_text(text: str) -> None:
        emit(TextDelta(run_id, agent_name, text))  # one per streamed piece: nothing looked up again

    return on_text


# -- one turn ----------------------------------------------------------------------------------


async def call_model(
    agent: Agent[Any], model: Model, context: RunContext, on_text: TextSink | None
) -> AssistantMessage:
    """One model call: count the turn, let the context policy fit the conversation, send, keep the answer."""
    budget = context.budget
    budget.start_turn()
    if agent.context_policy is not None:
        await agent.context_policy.before_request(context, model)
    request = build_request(agent, context, context.messages, last_turn=budget.must_answer_now())
    response = await send_request(context, model, request, on_text)
    context.messages.append(response.message)
    return response.message


async def take_turn(
    agent: Agent[OutputT], message: AssistantMessage, tools: dict[str, Tool], context: RunContext
) -> TurnOutcome[OutputT]:
    """What the model's `message` comes to. What the model should read next is added to the conversation.

    Text alone is a final answer. So is a call to the output tool; the other calls of that turn are then not
    run, and their results say so. Any other tool calls are run.
    """
    answered_note = _drop_answered_note(context.messages, message)
    calls = message.tool_calls
    if not calls:
        output = parse_text_output(agent.output_type, message.text)
        if not output.valid:
            context.messages.append(UserMessage(output.problem))
            return RetryAnswer(output.problem)
        if answered_note is not None and _copies(message.text, answered_note):
            # Asked to write its whole plan, Qwen2.5-Coder-1.5B wrote out the note; it named the flight the
            # check looked for, so only this can tell the copy from a plan.
            context.messages[-1] = answered_note
            return RetryAnswer(answered_note.content)
        sent_back = _first_problem(agent, context, message.text)
        if sent_back is None:
            return Answered(output.value)
        # The answer leaves the conversation (the trace keeps it): a small model shown its own answer copies
        # it word for word once it has done what was missing.
        if context.messages and context.messages[-1] is message:
            context.messages.pop()
        context.messages.append(UserMessage(sent_back.note))
        return RetryAnswer(sent_back.problem, settle_for=Answered(output.value))
    output_call = next((call for call in calls if call.name == OUTPUT_TOOL_NAME), None)
    if output_call is not None and agent.output_type is not None:
        output = FinalOutput.from_arguments(agent.output_type, output_call.arguments, output_call.invalid_arguments)
        problem = None if output.valid else output.problem
        context.messages.append(ToolResultsMessage([_output_result(call, output_call, problem) for call in calls]))
        return Answered(output.value) if output.valid else RetryAnswer(output.problem)
    turn = await run_tool_calls(agent, calls, tools, context)
    context.messages.append(ToolResultsMessage(turn.results))
    if turn.stop is not None:
        raise turn.stop  # only now that the transcript says what each call did
    context.journal.raise_if_waiting()  # a call waits for a person: the run suspends, its other calls done
    return RUN_AGAIN


def _first_problem(agent: Agent[Any], context: RunContext, answer: str) -> SendBack | None:
    for check in agent.answer_checks:
        verdict = check(context, answer)
        if verdict:
            return SendBack(verdict) if isinstance(verdict, str) else verdict
    return None


def _drop_answered_note(messages: list[Message], message: AssistantMessage) -> UserMessage | None:
    """Take out the note that sent an answer back, now that `message` replies to it, and return it.

    The note is for one turn: left in, Qwen2.5-Coder-1.5B did what it asked, and then, at its next answer, copied
    the note as its answer. The trace keeps it.
    """
    note = messages[-2] if len(messages) >= 2 and messages[-1] is message else None
    if not isinstance(note, UserMessage) or not is_answer_sent_back(note):
        return None
    del messages[-2]
    return note


def _copies(answer: str, note: UserMessage) -> bool:
    """Whether `answer` repeats the problem `note` states (its first 60 characters, spacing and case aside)."""
    problem = note.content.split("] ", 1)[-1]
    return " ".join(problem.split()).lower()[:60] in " ".join(answer.split()).lower()


def _output_result(call: ToolCall, output_call: ToolCall, problem: str | None = None) -> ToolResult:
    if call is output_call:
        if problem is None:
            return ToolResult(call.id, call.name, "Final answer received.")
        return ToolResult(call.id, call.name, problem, is_error=True)
    return ToolResult(call.id, call.name, f"Not run: '{OUTPUT_TOOL_NAME}' was called in the same turn.", True)


# -- the tool calls of a turn ------------------------------------------------------------------


@dataclass(slots=True)
class ToolTurn:
    """What the tool calls of one model turn came to.

    `results` has one result per call, in call order, each saying what happened to that call. `stop` is set
    when the run cannot go on (its cancellation, Ctrl-C or a BaseException in a tool): by then every call of
    the turn has finished or been stopped, and the loop raises `stop` once the results are recorded.
    """

    results: list[ToolResult]
    stop: BaseException | None = None


async def run_tool_calls(
    agent: Agent[Any], calls: list[ToolCall], tools_by_name: dict[str, Tool], context: RunContext
) -> ToolTurn:
    """Run every tool call of one model turn, as `agent.tool_scheduling` says, results in call order.

    "concurrent" runs them all at once (at most `agent.max_tool_concurrency`); "sequential" runs each after
    the one before has finished. When one call ends the run, its siblings are stopped, and waited for, before
    this returns, or are not started: a call must not go on acting after the transcript was written.
    """
    progress: dict[str, CallProgress] = {}
    turn_started = time.perf_counter()
    if len(calls) == 1 or agent.tool_scheduling == "sequential":
        # In this task: a task per call costs about a tenth of a step's CPU, and one call at a time needs none.
        return await _run_in_order(agent, calls, tools_by_name, context, progress, turn_started)
    semaphore = asyncio.Semaphore(agent.max_tool_concurrency or len(calls))

    async def run_call(call: ToolCall) -> ToolResult:
        async with semaphore:
            return await execute_tool_call(agent, call, tools_by_name, context, progress)

    tasks = [asyncio.create_task(run_call(call), name=f"tool call {call.id} ({call.name})") for call in calls]
    stop: BaseException | None = None
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    except asyncio.CancelledError as exc:
        stop = exc  # the run is cancelled or out of time: stop the calls, record them, then let it end
    if stop is None:
        stop = next((task.exception() for task in tasks if _failed(task)), None)
    if stop is None:
        return ToolTurn([task.result() for task in tasks])
    stop = await _stop_calls(tasks) or stop
    reason = _stop_reason(stop, calls, tasks)
    results = []
    for call, task in zip(calls, tasks, strict=True):
        if _succeeded(task):
            results.append(task.result())
            continue
        error = None if task.cancelled() else task.exception()
        result = _stopped_result(call, error, progress.get(call.id), tools_by_name.get(call.name), reason)
        if call.id in progress:
            _announce_stopped(call, result, context, time.perf_counter() - turn_started)
        results.append(result)
    return ToolTurn(results, stop=stop)


async def _run_in_order(
    agent: Agent[Any],
    calls: list[ToolCall],
    tools_by_name: dict[str, Tool],
    context: RunContext,
    progress: dict[str, CallProgress],
    turn_started: float,
) -> ToolTurn:
    """Run the calls one after another; once one ends the run, or waits for a decision, the rest are not run."""
    results: list[ToolResult] = []
    for position, call in enumerate(calls):
        if context.journal.waiting:  # they run in order once the decision is in, when the run goes on
            results.extend(_stopped_result(rest, None, None, None, WAITING_REASON) for rest in calls[position:])
            break
        try:
            results.append(await execute_tool_call(agent, call, tools_by_name, context, progress))
        except BaseException as exc:  # noqa: BLE001 - recorded in the transcript, then raised by the loop
            error = None if isinstance(exc, asyncio.CancelledError) else exc
            reason = (
                "the run was stopped (cancelled, or out of time)"
                if error is None
                else f"'{call.name}' (call {call.id}) failed and ended the run"
            )
            result = _stopped_result(call, error, progress.get(call.id), tools_by_name.get(call.name), reason)
            if call.id in progress:
                _announce_stopped(call, result, context, time.perf_counter() - turn_started)
            results.append(result)
            results.extend(_stopped_result(rest, None, None, None, reason) for rest in calls[position + 1 :])
            return ToolTurn(results, stop=exc)
    return ToolTurn(results)


def _succeeded(task: asyncio.Task[ToolResult]) -> bool:
    return task.done() and not task.cancelled() and task.exception() is None


def _failed(task: asyncio.Task[ToolResult]) -> bool:
    return task.done() and not task.cancelled() and task.exception() is not None


async def _stop_calls(tasks: list[asyncio.Task[ToolResult]]) -> asyncio.CancelledError | None:
    """Cancel the calls still running and wait until each has ended.

    A cancellation of the run that arrives meanwhile is returned, for the caller to raise.
    """
    for task in tasks:
        task.cancel()
    arrived: asyncio.CancelledError | None = None
    while not all(task.done() for task in tasks):
        try:
            await asyncio.wait(tasks)
        except asyncio.CancelledError as exc:
            arrived = exc  # keep waiting: returning now would leave the calls running unseen
    return arrived


def _stop_reason(stop: BaseException, calls: list[ToolCall], tasks: list[asyncio.Task[ToolResult]]) -> str:
    for call, task in zip(calls, tasks, strict=True):
        if _failed(task) and task.exception() is stop:
            return f"'{call.name}' (call {call.id}) failed and ended the run"
    return "the run was stopped (cancelled, or out of time)"


def _stopped_result(
    call: ToolCall, error: BaseException | None, progress: CallProgress | None, tool: Tool | None, reason: str
) -> ToolResult:
    """The result of a call that did not finish on its own: it ended the run (`error`), or was stopped."""
    if error is not None:
        if isinstance(error, RunInterrupted):
            return ToolResult(call.id, call.name, f"Stopped: {error}; the run was cancelled.", True)
        return ToolResult(
            call.id, call.name, f"Error: '{call.name}' raised {type(error).__name__}: {error}; the run ended.", True
        )
    if progress != "running":
        return ToolResult(call.id, call.name, f"Not run: {reason}.", True)
    if tool is not None and tool.runs_in_thread:
        aftermath = "it runs in a thread, which cannot be stopped, and may still finish"
    else:
        aftermath = "it may have done part of its work"
    return ToolResult(call.id, call.name, f"Stopped before it finished: {reason}; {aftermath}.", True)


def _announce_stopped(call: ToolCall, result: ToolResult, context: RunContext, duration: float) -> None:
    # The call announced ToolCallStarted; say how it ended, so no call is left looking as if still running.
    context.announce(ToolCallFinished, call=call, result=result, duration_seconds=duration)


WAITING_REASON = "an earlier call of this turn waits for a decision, and the run is suspended until it is made"

CallProgress: TypeAlias = Literal["announced", "running"]
"""How far a call got: ToolCallStarted sent, or the tool's function entered (so it may have had effects)."""


async def execute_tool_call(
    agent: Agent[Any],
    call: ToolCall,
    tools_by_name: dict[str, Tool],
    context: RunContext,
    progress: dict[str, CallProgress] | None = None,
) -> ToolResult:
    """Run one tool call. Every failure becomes a result the model can read and act on.

    Only what must end the run escapes: the run's cancellation, RunInterrupted (Ctrl-C in the tool) and
    BaseExceptions other than SystemExit. `progress`, when given, records how far the call got.
    """
    progress = {} if progress is None else progress
    tool = tools_by_name.get(call.name)
    # A recorded output is replayed, unannounced (the trace has it); a local tool runs again, to rebuild its state.
    replayed = (
        None
        if tool is not None and tool.effect == "local"
        else context.journal.replayed_output(context.budget.turns, call)
    )
    started = time.perf_counter()
    if replayed is None:
        context.announce(ToolCallStarted, call)
        progress[call.id] = "announced"
        try:
            content, is_error = await _tool_output(agent, call, tools_by_name, context, progress)
        except approvals.AwaitingDecision as waiting:  # nothing recorded: the call runs when the run goes on
            context.journal.note_waiting(waiting)
            content, is_error = f"Waiting for a decision on: {waiting}. The run is suspended until it is made.", False
    else:
        content, is_error = _replay_output(replayed, tool, call, context)
    result = ToolResult(call.id, call.name, content, is_error)
    # The context policy sees the whole output (to offload it); the size cap applies to what the model reads.
    if agent.context_policy is not None:
        result = await agent.context_policy.on_tool_result(result, context)
    max_chars = (tool.max_output_chars if tool else None) or agent.max_tool_output_chars
    result.content = truncate_output(result.content, max_chars or DEFAULT_MAX_OUTPUT_CHARS)
    if result.is_error and agent.note_repeated_failures:
        _note_repeated_failure(call, result, context)
    if replayed is None:
        context.announce(ToolCallFinished, call, result, time.perf_counter() - started)
    return result


def _replay_output(
    recorded: RecordedOutput, tool: Tool | None, call: ToolCall, context: RunContext
) -> tuple[str, bool]:
    """A recorded output, reused: what the call left behind (sub-runs' spending, a tool's memory) is restored."""
    if recorded.sub_run_usage is not None:
        context.budget.charge_replayed_sub_runs(recorded.sub_runs, recorded.sub_run_usage)
    if tool is not None and tool.replay is not None:
        tool.replay(context, call, idempotency_key(context.run_id, context.budget.turns, call.id))
    return recorded.content, recorded.is_error


def _note_repeated_failure(call: ToolCall, result: ToolResult, context: RunContext) -> None:
    # Small models in particular repeat a failing call word for word; saying so plainly breaks the cycle.
    key = f"{call.name}:{json.dumps(call.arguments, sort_keys=True, default=str)}:{call.invalid_arguments}"
    failures = context.failed_calls[key] = context.failed_calls.get(key, 0) + 1
    if failures > 1:
        result.content += (
            f"\nThis exact call has now failed {failures} times and will fail again with the same arguments: "
            "change them, use another tool, or answer with what you know."
        )


async def _tool_output(
    agent: Agent[Any],
    call: ToolCall,
    tools_by_name: dict[str, Tool],
    context: RunContext,
    progress: dict[str, CallProgress],
) -> tuple[str, bool]:
    tool = tools_by_name.get(call.name)
    if tool is None:
        available = ", ".join(sorted(tools_by_name)) or "none"
        return f"Error: there is no tool named '{call.name}'. Available tools: {available}.", True
    if call.invalid_arguments is not None:
        return (
            f"Error: the arguments for '{call.name}' were not valid JSON ({call.invalid_arguments[:200]!r}). "
            "Send a single JSON object matching the tool's parameters.",
            True,
        )
    try:
        arguments = tool.validate(call.arguments, strict=agent.strict_tool_arguments)
    except pydantic.ValidationError as exc:
        return _describe_invalid_arguments(tool, exc), True
    if tool.effect == "local":
        key = idempotency_key(context.run_id, context.budget.turns, call.id) if tool.key_parameter else None
        return await _approved_output(agent, tool, call, arguments, context, progress, key)
    return await _journalled_output(agent, tool, call, arguments, context, progress)


async def _journalled_output(
    agent: Agent[Any],
    tool: Tool,
    call: ToolCall,
    arguments: pydantic.BaseModel,
    context: RunContext,
    progress: dict[str, CallProgress],
) -> tuple[str, bool]:
    """The output of a read or write call, recorded in the run's journal (a no-op without one).

    A write call's start is recorded before its body runs, with its idempotency key, so that a resumed run
    can tell a call that may have taken effect from one that never began.
    """
    journal, turn = context.journal, context.budget.turns
    key = idempotency_key(context.run_id, turn, call.id) if tool.key_parameter or journal.active else None
    cut_off = journal.cut_off_call(turn, call)
    if cut_off is not None:
        output = await _resumed_output(agent, tool, call, arguments, context, progress, key, cut_off.delegated)
    elif tool.effect == "write" and journal.active:
        output = await _approved_output(agent, tool, call, arguments, context, progress, key, journal_start=True)
    else:
        output = await _approved_output(agent, tool, call, arguments, context, progress, key)
    await journal.record_call_output(turn, call, output, context.sub_runs.get((turn, call.id)))
    return output


async def _resumed_output(
    agent: Agent[Any],
    tool: Tool,
    call: ToolCall,
    arguments: pydantic.BaseModel,
    context: RunContext,
    progress: dict[str, CallProgress],
    key: str | None,
    delegated: bool,
) -> tuple[str, bool]:
    """A write call an earlier process started and never recorded the end of: it may have taken effect.

    It runs again, with the same idempotency key, when that is safe: the tool is idempotent, or the call had
    started a sub-agent, which journals its own calls and is re-entered where it stopped. Otherwise the
    approver decides, and without a yes the model hears that the effect is uncertain. Never silently twice.
    """
    if tool.idempotent or delegated:
        return await _run_tool(agent, tool, call, arguments, context, progress, key)
    approval = await _ask_approval(agent, tool, call, context, uncertain=True)
    uncertain = UncertainCall(
        context.run_id, agent.name, tool.name, call.id, call.arguments, approval.approved, approval.reason
    )
    context.journal.note_uncertain(uncertain)
    context.announce(
        Notice,
        kind="uncertain_call",
        message=f"'{tool.name}' (call {call.id}) was cut off before its result was recorded: "
        + ("run again, as approved" if approval.approved else f"not run again ({approval.reason})"),
        data={"tool": tool.name, "tool_call_id": call.id, "rerun": approval.approved},
    )
    if approval.approved:
        return await _run_tool(agent, tool, call, arguments, context, progress, key)
    return (
        f"Not done again: '{tool.name}' was started before the run was interrupted, and it may or may not have "
        f"taken effect; it was not run again ({approval.reason}). Check whether it took effect before calling "
        "it again, or tell the user it is uncertain.",
        True,
    )


async def _approved_output(
    agent: Agent[Any],
    tool: Tool,
    call: ToolCall,
    arguments: pydantic.BaseModel,
    context: RunContext,
    progress: dict[str, CallProgress],
    key: str | None,
    *,
    journal_start: bool = False,
) -> tuple[str, bool]:
    """Ask for approval if the tool needs it, then run it; `journal_start` records its start first."""
    if tool.requires_approval:
        approval = await _ask_approval(agent, tool, call, context)
        if not approval.approved:
            return (
                f"Not done: the call to '{tool.name}' was not approved ({approval.reason}). "
                "Do not retry it unless the user asks; tell the user what you wanted to do.",
                True,
            )
    if journal_start:
        assert key is not None
        await context.journal.record_call_start(context.budget.turns, call, key)
    return await _run_tool(agent, tool, call, arguments, context, progress, key)


async def _run_tool(
    agent: Agent[Any],
    tool: Tool,
    call: ToolCall,
    arguments: pydantic.BaseModel,
    context: RunContext,
    progress: dict[str, CallProgress],
    key: str | None,
) -> tuple[str, bool]:
    """The tool's body, within its timeout; every failure but the run's own end becomes an error output."""
    timeout = tool.timeout if tool.timeout is not None else agent.tool_timeout
    deadline = asyncio.timeout(timeout)
    progress[call.id] = "running"
    try:
        async with deadline:
            value = await tool.call(arguments, call, context, key)
    except ToolError as exc:
        return f"Error: {exc}", True
    except TimeoutError as exc:
        if deadline.expired():
            return f"Error: '{tool.name}' did not finish within {timeout:g} seconds and was stopped.", True
        return f"Error: '{tool.name}' failed with TimeoutError: {exc}", True
    except asyncio.CancelledError as exc:
        if _is_being_cancelled():
            raise
        # Nobody cancelled this call: the tool awaited something another task cancelled. That is the tool's
        # failure, for the model to hear about, not a cancelled run.
        return f"Error: '{tool.name}' failed with CancelledError: {exc or 'something it awaited was cancelled'}", True
    except KeyboardInterrupt as exc:
        raise RunInterrupted(f"'{tool.name}' was interrupted (KeyboardInterrupt)") from exc
    except (RunInterrupted, approvals.AwaitingDecision):
        raise  # from a sub-agent this tool ran: the whole tree stops, or waits
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - any tool failure goes back to the model
        # SystemExit included: a tool (or a script it wraps) calling sys.exit() must not end the program.
        return f"Error: '{tool.name}' failed with {type(exc).__name__}: {exc}", True
    try:
        return render_tool_output(value), False
    except ToolOutputError as exc:
        return f"Error: '{tool.name}' ran, but its result cannot be shown: {exc}.", True


async def _ask_approval(
    agent: Agent[Any], tool: Tool, call: ToolCall, context: RunContext, *, uncertain: bool = False
) -> approvals.Approval:
    context.announce(ApprovalRequested, call=call)
    request = approvals.ApprovalRequest(agent.name, tool.name, call.arguments, context.run_id, call.id, uncertain)
    try:
        approval = await context.journal.ask_approval(context.budget.turns, request, context.approver)
    except approvals.AwaitingDecision as waiting:
        _announce_waiting(waiting, context)
        raise
    context.announce(ApprovalResolved, call=call, approved=approval.approved, reason=approval.reason)
    return approval


def _announce_waiting(waiting: approvals.AwaitingDecision, context: RunContext) -> None:
    for record in waiting.approvals:
        context.announce(
            Notice,
            kind="approval_waiting",
            message=f"'{record.tool}' (call {record.tool_call_id}) waits for a decision: approval {record.approval_id}",
            data={
                "approval_id": record.approval_id,
                "root_run_id": record.root_run_id,
                "tool_call_id": record.tool_call_id,
                "arguments_digest": record.arguments_digest,
                "expires_at": record.expires_at,
            },
        )


def _is_being_cancelled() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def _describe_invalid_arguments(tool: Tool, exc: pydantic.ValidationError) -> str:
    problems = []
    for problem in exc.errors(include_url=False):
        where = ".".join(str(part) for part in problem["loc"]) or "arguments"
        problems.append(f"{where}: {problem['msg']}")
    expected = ", ".join(
        f"{name}{'' if name in tool.schema.parameters.get('required', ()) else '?'}"
        for name in tool.schema.parameters.get("properties", {})
    )
    return f"Error: invalid arguments for '{tool.name}': {'; '.join(problems)}. Parameters: {expected}."


# -- the end of a run --------------------------------------------------------------------------


def _ending_after(
    exc: BaseException, budget: Budget, wall_clock: asyncio.Timeout
) -> Stopped | Failed | Cancelled | Waiting:
    """How `exc`, raised while the run was being set up or taking turns, ends the run."""
    if isinstance(exc, TimeoutError) and wall_clock.expired():
        return Stopped(budget.check() or budget.wall_limit())
    if isinstance(exc, approvals.AwaitingDecision):
        return Waiting(exc.approvals)
    if isinstance(exc, asyncio.CancelledError | RunInterrupted):
        return Cancelled()
    if isinstance(exc, KeyboardInterrupt):
        return Cancelled(exc)
    # Any other failure ends the run as an error: a SystemExit from outside any tool, and a BaseException from
    # a tool (pytest.fail, a greenlet exit) as well.
    return Failed(exc)


def _goes_past_the_run(exc: BaseException, context: RunContext) -> bool:
    """Whether `exc` is raised again once the run has recorded its ending.

    The caller's cancellation is. So are a KeyboardInterrupt or a SystemExit from outside any tool: those from
    tools became tool errors or RunInterrupted, so the process itself is stopping. Ctrl-C inside a tool
    (RunInterrupted) passes up from a sub-agent, so the whole tree stops; the root returns, like any other ending.
    """
    if isinstance(exc, RunInterrupted | approvals.AwaitingDecision):
        return context.parent is not None  # a sub-run's wait suspends its parent's turn too
    return isinstance(exc, asyncio.CancelledError | KeyboardInterrupt | SystemExit)


async def _finish(
    agent: Agent[OutputT], context: RunContext, ending: RunEnding[OutputT], started: float
) -> RunResult[OutputT]:
    """Close what the run opened, answer its unfinished calls, and announce its result."""
    await context.run_cleanups()
    if not isinstance(ending, Completed):
        _answer_pending_calls(context.messages, "the run stopped before this call finished")
    result = _run_result(agent, context, ending, started)
    await context.journal.finish(result.status, result.replayed_usage)
    context.announce(RunFinished, result)
    return result


def _answer_pending_calls(messages: list[Message], reason: str) -> None:
    """Give every unanswered tool call of the last turn a result, so the conversation can be continued.

    Providers reject a history whose last assistant turn has tool calls without results.
    """
    if not messages:
        return
    last = messages[-1]
    if isinstance(last, AssistantMessage) and last.tool_calls:
        messages.append(
            ToolResultsMessage([ToolResult(c.id, c.name, f"Not run: {reason}.", True) for c in last.tool_calls])
        )


def _run_result(
    agent: Agent[OutputT], context: RunContext, ending: RunEnding[OutputT], started: float
) -> RunResult[OutputT]:
    """The run's ending, as the `RunResult` its caller reads."""
    status: RunStatus
    output: OutputT | None = None
    limit: LimitReached | None = None
    error: BaseException | None = None
    waiting_for: tuple[approvals.ApprovalRecord, ...] = ()
    match ending:
        case Completed(output):
            status = "completed"
        case Stopped(limit):
            status = "limit"
        case Failed(error):
            status = "error"
        case Cancelled(error):
            status = "cancelled"
        case Waiting(waiting_for):
            status = "waiting"
    budget = context.budget
    return RunResult(
        agent=agent.name,
        run_id=context.run_id,
        status=status,
        output=output,
        messages=context.messages,
        usage=budget.own_usage.copy(),
        total_usage=budget.usage.copy(),
        turns=budget.turns,
        duration_seconds=time.perf_counter() - started,
        limit=limit,
        error=error,
        replayed_usage=budget.replayed_usage.copy(),
        uncertain_calls=context.journal.uncertain_calls(),
        pending_approvals=waiting_for,
    )
