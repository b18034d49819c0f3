"""The agentic loop.

Call the model; if it asked for tools, run them (concurrently) and append
their results; repeat until the model answers or a limit stops the run. The
whole loop is `run_loop`; each step is a named helper below it. Everything
else (streaming, tracing, cost, UIs) listens to the events it emits.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeAlias

import pydantic

from . import approvals
from .errors import ConfigurationError, OutputValidationError, ToolError, ToolOutputError
from .events import (
    ApprovalRequested,
    ApprovalResolved,
    ModelRequestSent,
    ModelResponseReceived,
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
    ModelRequest,
    ModelResponse,
    ToolCall,
    ToolResult,
    ToolResultsMessage,
    ToolSchema,
    UserMessage,
)
from .models.base import Model, TextSink, model_spec
from .models.pricing import price_of
from .output import OUTPUT_TOOL_NAME, FinalOutput, parse_text_output
from .result import OutputT, RunResult
from .tokens import estimate_message_tokens, estimate_request_tokens
from .tools import DEFAULT_MAX_OUTPUT_CHARS, Tool, render_tool_output, truncate_output
from .usage import Usage

if TYPE_CHECKING:
    from .agent import Agent
    from .run_context import RunContext


async def run_loop(
    agent: Agent[OutputT],
    prompt: str,
    context: RunContext,
    *,
    history: list[Message] | None = None,
    stream_text: bool = False,
) -> RunResult[OutputT]:
    """Run `agent` on `prompt` until it answers or a limit stops it.

    Never raises for a failed run; only the caller's cancellation, or a KeyboardInterrupt or SystemExit raised
    outside any tool, propagates (after RunFinished has recorded how the run ended).
    """
    started = time.perf_counter()
    tools = tuple(t for t in agent.tools_for_run() if t.name not in _unavailable_actions(agent, context))
    tools_by_name = {t.name: t for t in tools}
    schemas = [t.schema for t in tools]  # one list for every request of the run: the stable prefix
    messages = context.messages
    messages.extend(history or ())
    messages.append(UserMessage(prompt))
    budget = context.budget
    emit = context.emit
    on_text = _text_sink(context) if stream_text else None
    model, setup_error = _resolve_model(agent)
    if emit is not None:
        emit(
            RunStarted(
                run_id=context.run_id,
                agent=agent.name,
                prompt=prompt,
                model_id=model_spec(model) if model is not None else str(agent.model),
                parent_run_id=context.parent.run_id if context.parent else None,
                parent_tool_call_id=context.tool_call_id,
                depth=context.depth,
            )
        )
    output: FinalOutput[OutputT] | None = None
    limit: LimitReached | None = None
    error: BaseException | None = None
    cancelled = False
    wall_clock = asyncio.timeout_at(_deadline(context))
    try:
        if model is None:
            raise setup_error or ConfigurationError(f"Agent '{agent.name}' has no model.")
        _check_cost_limit_is_enforceable(model, context)
        async with wall_clock:
            output_retries = agent.output_retries
            while True:
                limit = budget.check()
                if limit is not None:
                    break
                response = await call_model(agent, model, messages, schemas, context, on_text)
                calls = response.message.tool_calls
                if calls:
                    turn = await run_tool_calls(agent, calls, tools_by_name, context)
                    messages.append(ToolResultsMessage(turn.results))
                    if turn.stop is not None:
                        raise turn.stop  # only now that the transcript says what each call did
                    output = turn.output
                else:
                    output = parse_text_output(agent.output_type, response.message.text)
                    if not output.valid:
                        messages.append(UserMessage(output.problem))
                if output is None:
                    continue
                if output.valid:
                    break
                output_retries -= 1
                if output_retries < 0:
                    raise OutputValidationError(output.problem)
    except TimeoutError as exc:
        if wall_clock.expired():
            limit = budget.check() or _wall_limit(context)
        else:
            error = exc
    except asyncio.CancelledError:
        cancelled = True
        raise
    except RunInterrupted:
        # Ctrl-C inside a tool: the run ends as cancelled and the root returns, like any other ending;
        # a sub-agent passes it up, so the whole tree stops.
        cancelled = True
        if context.parent is not None:
            raise
    except Exception as exc:  # noqa: BLE001 - a failed run is reported in its result, never raised
        error = exc
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt | SystemExit):
            # Not from a tool (those became tool errors or RunInterrupted): the process is stopping; record and let it.
            cancelled = isinstance(exc, KeyboardInterrupt)
            error = exc
            raise
        error = exc  # a tool's BaseException (pytest.fail, a greenlet exit) ends the run, as an error
    finally:
        await context.run_cleanups()
        if limit is not None or error is not None or cancelled:
            _answer_pending_calls(messages, "the run stopped before this call finished")
        result = _result(agent, context, output, limit, error, cancelled, started)
        if emit is not None:
            emit(RunFinished(run_id=context.run_id, agent=agent.name, result=result))
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


def _resolve_model(agent: Agent[Any]) -> tuple[Model | None, Exception | None]:
    # A bad model string must end the run like any error, with the usual events, not raise from run().
    try:
        return agent.resolved_model(), None
    except Exception as exc:  # noqa: BLE001
        return None, exc


async def call_model(
    agent: Agent[Any],
    model: Model,
    messages: list[Message],
    schemas: list[ToolSchema],
    context: RunContext,
    on_text: TextSink | None,
) -> ModelResponse:
    """One model call: build the request, send it, charge its usage, append its answer."""
    budget = context.budget
    budget.turns += 1
    if agent.context_policy is not None:
        await agent.context_policy.before_request(context, model)
    settings = agent.settings
    limits = budget.limits
    if limits.answer_on_last_turn and budget.turns == limits.max_turns and schemas:
        settings = dataclasses.replace(settings, tool_choice="none")
    instructions = agent.instructions_for(context)
    unavailable = _unavailable_actions(agent, context)
    if unavailable:
        instructions += (
            f"\n\nNobody is attending this session to approve actions, so these are unavailable: "
            f"{', '.join(unavailable)}. Say what you would do with them instead."
        )
    request = ModelRequest(
        instructions=instructions,
        messages=list(messages),
        tools=schemas,
        settings=settings,
    )
    response = await send_request(context, model, request, on_text)
    messages.append(response.message)
    return response


def _unavailable_actions(agent: Agent[Any], context: RunContext) -> list[str]:
    """The tools needing approval, when nobody can give it (the `unattended` approver): they are not offered."""
    if context.approver is not approvals.unattended:
        return []
    return [t.name for t in agent.tools_for_run() if t.requires_approval]


async def send_request(
    context: RunContext,
    model: Model,
    request: ModelRequest,
    on_text: TextSink | None = None,
    *,
    purpose: str = "turn",
) -> ModelResponse:
    """Send one request on behalf of the run in `context`: charged to its budget, announced by events.

    Every model call of a run goes through here, the loop's own turns and the
    calls made for it (summaries, compaction), so no cost goes unseen.
    """
    emit = context.emit
    agent_name, turn = context.agent.name, context.budget.turns
    if emit is not None:
        emit(
            ModelRequestSent(
                run_id=context.run_id,
                agent=agent_name,
                turn=turn,
                model_id=model_spec(model),
                request=request,
                purpose=purpose,
            )
        )
    sent = time.perf_counter()
    response = await model.request(request, on_text)
    response.usage = _with_missing_usage_estimated(response.usage, request, response, model)
    context.budget.charge(response.usage)
    if emit is not None:
        emit(
            ModelResponseReceived(
                run_id=context.run_id,
                agent=agent_name,
                turn=turn,
                response=response,
                duration_seconds=time.perf_counter() - sent,
                purpose=purpose,
            )
        )
    return response


def _with_missing_usage_estimated(usage: Usage, request: ModelRequest, response: ModelResponse, model: Model) -> Usage:
    """`usage`, with an offline estimate for the token counts the provider did not report.

    A provider that sends no usage (an OpenAI-compatible server without `usage`, a stream cut short) would
    otherwise be charged 0 tokens and $0, and no token or dollar limit could ever stop the run.
    """
    message = response.message
    missing_input = usage.input_tokens == 0  # every real request has input tokens
    missing_output = usage.output_tokens == 0 and bool(message.text or message.tool_calls)
    if not (missing_input or missing_output):
        return usage
    estimate = usage.copy()
    estimate.estimated = True
    if missing_input:
        estimate.input_tokens = estimate_request_tokens(request)
    if missing_output:
        estimate.output_tokens = estimate_message_tokens(message)
    price = price_of(model)
    estimate.cost_usd = None if price is None else price.cost(estimate)
    return estimate


class RunInterrupted(Exception):
    """A KeyboardInterrupt inside a tool, carried to the loop as an exception asyncio does not re-raise.

    asyncio lets a KeyboardInterrupt escape the event loop from whichever task raised it, past the run's own
    handling; this one ends the run as cancelled instead.
    """


@dataclass(slots=True)
class ToolTurn(Generic[OutputT]):
    """What the tool calls of one model turn came to.

    `results` has one result per call, in call order, each saying what happened to that call. `stop` is set
    when the run cannot go on (its cancellation, Ctrl-C or a BaseException in a tool): by then every call of
    the turn has finished or been stopped, and the loop raises `stop` once the results are recorded.
    """

    results: list[ToolResult]
    output: FinalOutput[OutputT] | None = None
    stop: BaseException | None = None


async def run_tool_calls(
    agent: Agent[OutputT],
    calls: list[ToolCall],
    tools_by_name: dict[str, Tool],
    context: RunContext,
) -> ToolTurn[OutputT]:
    """Run every tool call of one model turn, concurrently, results in call order.

    A call to the output tool ends the run when its arguments are valid; the
    other calls of that turn are then not run, and say so. When one call ends
    the run, its siblings are stopped, and waited for, before this returns: a
    call must not go on acting after the transcript was written.
    """
    output_call = next((call for call in calls if call.name == OUTPUT_TOOL_NAME), None)
    if output_call is not None and agent.output_type is not None:
        output = FinalOutput.from_arguments(agent.output_type, output_call.arguments, output_call.invalid_arguments)
        problem = None if output.valid else output.problem
        return ToolTurn([_output_result(call, output_call, problem) for call in calls], output)
    progress: dict[str, CallProgress] = {}
    turn_started = time.perf_counter()
    if len(calls) == 1:
        # No siblings to stop: run it in this task (a task per call costs about a tenth of a step's CPU).
        call = calls[0]
        try:
            return ToolTurn([await execute_tool_call(call, tools_by_name, context, progress)])
        except BaseException as exc:  # noqa: BLE001 - recorded in the transcript, then raised by the loop
            error = None if isinstance(exc, asyncio.CancelledError) else exc
            reason = "the run was stopped (cancelled, or out of time)" if error is None else ""
            result = _stopped_result(call, error, progress.get(call.id), tools_by_name.get(call.name), reason)
            if call.id in progress:
                _announce_stopped(call, result, context, time.perf_counter() - turn_started)
            return ToolTurn([result], stop=exc)
    semaphore = asyncio.Semaphore(agent.max_tool_concurrency or len(calls))

    async def run_call(call: ToolCall) -> ToolResult:
        async with semaphore:
            return await execute_tool_call(call, tools_by_name, context, progress)

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
    if context.emit is not None:
        context.emit(
            ToolCallFinished(
                run_id=context.run_id, agent=context.agent.name, call=call, result=result, duration_seconds=duration
            )
        )


CallProgress: TypeAlias = Literal["announced", "running"]
"""How far a call got: ToolCallStarted sent, or the tool's function entered (so it may have had effects)."""


async def execute_tool_call(
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
    emit = context.emit
    agent_name = context.agent.name
    if emit is not None:
        emit(ToolCallStarted(run_id=context.run_id, agent=agent_name, call=call))
    progress[call.id] = "announced"
    started = time.perf_counter()
    content, is_error = await _tool_output(call, tools_by_name, context, progress)
    result = ToolResult(call.id, call.name, content, is_error)
    # The context policy sees the whole output (to offload it); the size cap applies to what the model reads.
    policy = context.agent.context_policy
    if policy is not None:
        result = await policy.on_tool_result(result, context)
    tool = tools_by_name.get(call.name)
    max_chars = (tool.max_output_chars if tool else None) or context.agent.max_tool_output_chars
    result.content = truncate_output(result.content, max_chars or DEFAULT_MAX_OUTPUT_CHARS)
    if result.is_error:
        _note_repeated_failure(call, result, context)
    if emit is not None:
        emit(
            ToolCallFinished(
                run_id=context.run_id,
                agent=agent_name,
                call=call,
                result=result,
                duration_seconds=time.perf_counter() - started,
            )
        )
    return result


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
    call: ToolCall, tools_by_name: dict[str, Tool], context: RunContext, progress: dict[str, CallProgress]
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
        arguments = tool.validate(call.arguments)
    except pydantic.ValidationError as exc:
        return _describe_invalid_arguments(tool, exc), True
    if tool.requires_approval:
        approval = await _ask_approval(tool, call, context)
        if not approval.approved:
            return (
                f"Not done: the call to '{tool.name}' was not approved ({approval.reason}). "
                "Do not retry it unless the user asks; tell the user what you wanted to do.",
                True,
            )
    timeout = tool.timeout if tool.timeout is not None else context.agent.tool_timeout
    deadline = asyncio.timeout(timeout)
    progress[call.id] = "running"
    try:
        async with deadline:
            value = await tool.call(arguments, call, context)
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
    except RunInterrupted:
        raise  # from a sub-agent this tool ran: the whole tree stops
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - any tool failure goes back to the model
        # SystemExit included: a tool (or a script it wraps) calling sys.exit() must not end the program.
        return f"Error: '{tool.name}' failed with {type(exc).__name__}: {exc}", True
    try:
        return render_tool_output(value), False
    except ToolOutputError as exc:
        return f"Error: '{tool.name}' ran, but its result cannot be shown: {exc}.", True


async def _ask_approval(tool: Tool, call: ToolCall, context: RunContext) -> approvals.Approval:
    emit = context.emit
    agent_name = context.agent.name
    if emit is not None:
        emit(ApprovalRequested(run_id=context.run_id, agent=agent_name, call=call))
    request = approvals.ApprovalRequest(agent_name, tool.name, call.arguments, context.run_id, call.id)
    approval = await approvals.ask(context.approver, request)
    if emit is not None:
        emit(
            ApprovalResolved(
                run_id=context.run_id, agent=agent_name, call=call, approved=approval.approved, reason=approval.reason
            )
        )
    return approval


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


def _output_result(call: ToolCall, output_call: ToolCall, problem: str | None = None) -> ToolResult:
    if call is output_call:
        if problem is None:
            return ToolResult(call.id, call.name, "Final answer received.")
        return ToolResult(call.id, call.name, problem, is_error=True)
    return ToolResult(call.id, call.name, f"Not run: '{OUTPUT_TOOL_NAME}' was called in the same turn.", True)


def _text_sink(context: RunContext) -> TextSink | None:
    emit = context.emit
    if emit is None:
        return None
    run_id, agent_name = context.run_id, context.agent.name

    def on_text(text: str) -> None:
        emit(TextDelta(run_id=run_id, agent=agent_name, text=text))

    return on_text


def _deadline(context: RunContext) -> float | None:
    deadline = context.budget.deadline()
    return None if deadline is None else deadline[0]


def _wall_limit(context: RunContext) -> LimitReached:
    deadline = context.budget.deadline()
    assert deadline is not None, "a timeout fired without a wall-time limit"
    owner = deadline[1]
    limit_seconds = owner.limits.max_wall_seconds or 0.0
    return LimitReached("max_wall_seconds", owner.agent, limit_seconds, time.monotonic() - owner.started_at)


def _check_cost_limit_is_enforceable(model: Model, context: RunContext) -> None:
    budget: Budget | None = context.budget
    while budget is not None:
        if budget.limits.max_cost_usd is not None and price_of(model) is None:
            raise ConfigurationError(
                f"Agent '{budget.agent}' has a dollar limit, but the price of '{model.model_id}' is unknown. "
                "Give the model a price (for example OpenAIModel(..., price=Price(input=..., output=...))) "
                "or use a token limit instead."
            )
        budget = budget.parent


def _result(
    agent: Agent[OutputT],
    context: RunContext,
    output: FinalOutput[OutputT] | None,
    limit: LimitReached | None,
    error: BaseException | None,
    cancelled: bool,
    started: float,
) -> RunResult[OutputT]:
    status: Any
    if cancelled:
        status = "cancelled"
    elif error is not None:
        status = "error"
    elif limit is not None:
        status = "limit"
    else:
        status = "completed"
    return RunResult(
        agent=agent.name,
        run_id=context.run_id,
        status=status,
        output=output.value if output is not None and output.valid and status == "completed" else None,
        messages=context.messages,
        usage=context.budget.own_usage.copy(),
        total_usage=context.budget.usage.copy(),
        turns=context.budget.turns,
        duration_seconds=time.perf_counter() - started,
        limit=limit,
        error=error,
    )
