"""The workflow of a run: the retinue loop itself, run inside Temporal, its model and I/O tool calls activities.

The loop is deterministic once its model calls and I/O tool calls are activities (see
`retinue.temporal.agents`): Temporal replays it on any worker, answering every completed activity from the
history, so the run goes on from where the last worker left it, with nothing completed done or paid again.
The run id is the workflow id, so sub-run ids and idempotency keys come out the same in every replay and
every retry. Approvals wait for signals (`retinue.temporal.approvals`); model requests go by reference
(`retinue.temporal.references`).

A call that may have to be repeated after a lost worker is retried with the same idempotency key when that
is safe: model calls, "read" tools, idempotent writes. A write that is not idempotent runs once: if its
worker is lost mid-call, it may or may not have taken effect, and the run's approver is asked, as a journal
does for a call cut off mid-way; it runs again only with a yes. Such calls are in `RunResult.uncertain_calls`.

The workflow runs outside Temporal's sandbox: retinue's modules are not re-imported for each run, and the
agents are the worker's own objects. What keeps it deterministic is the rule above, and that no agent of
a Temporal run reads the clock (`temporal_agent` refuses wall-time limits).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from datetime import timedelta
from typing import Any

import pydantic_core
from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError, TimeoutError, TimeoutType
from temporalio.worker import (
    ExecuteWorkflowInput,
    Interceptor,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
)

from .. import approvals, errors
from ..errors import ModelError, ToolError
from ..events import Event, Notice
from ..journal.journal import RunJournal
from ..loop import run_loop
from ..messages import ModelRequest, ModelResponse, ToolCall
from ..result import RunResult, UncertainCall
from ..run_context import RunContext
from ..store.serialize import dumps, loads_as
from ..tools import Tool
from .agents import ServedAgents, model_outside_activities
from .approvals import SignalledApprovals
from .errors import ModelOutsideActivities, TemporalRunError
from .payloads import (
    APPROVE_SIGNAL,
    MODEL_CALL,
    NOT_RUN,
    PENDING_APPROVALS_QUERY,
    TOOL_CALL,
    WORKFLOW,
    ApprovalDecision,
    ModelCallInput,
    ModelCallOutput,
    PendingApproval,
    RunOutcome,
    RunStart,
    ToolCallInput,
    ToolCallOutput,
)
from .references import SentReferences


@dataclasses.dataclass(frozen=True)
class ActivityOptions:
    """How the workflow schedules its activities.

    `heartbeat_timeout` is how soon a lost worker's call moves on; `call_timeout` bounds one call (a tool's
    own timeout is the loop's, as without Temporal); `attempts` is how often a call safe to repeat is tried.
    """

    heartbeat_timeout: timedelta
    call_timeout: timedelta
    attempts: int

    def retry_policy(self, attempts: int) -> RetryPolicy:
        # Soon after a lost worker: the heartbeat timeout has already waited.
        first, longest = timedelta(milliseconds=200), timedelta(seconds=10)
        return RetryPolicy(initial_interval=first, maximum_interval=longest, maximum_attempts=attempts)


class UncertainCalls(RunJournal):
    """The run journal of a workflow's runs. The history is their journal; this only gathers the uncertain calls."""

    __slots__ = ("_calls", "_root_run_id", "run_id")

    def __init__(self, run_id: str, root_run_id: str, calls: list[UncertainCall]) -> None:
        self.run_id = run_id
        self._root_run_id = root_run_id
        self._calls = calls

    def child(self, run_id: str) -> RunJournal:
        return UncertainCalls(run_id, self._root_run_id, self._calls)

    def note_uncertain(self, call: UncertainCall) -> None:
        self._calls.append(call)

    def uncertain_calls(self) -> tuple[UncertainCall, ...]:
        if self.run_id == self._root_run_id:
            return tuple(self._calls)  # the root answers for its whole tree
        return tuple(call for call in self._calls if call.run_id == self.run_id)


@workflow.defn(name=WORKFLOW, sandboxed=False)
class RetinueRun:
    """The workflow of one run. Its worker's `ServeAgents` interceptor gives it the agents and options first."""

    served: ServedAgents
    options: ActivityOptions

    @workflow.init
    def __init__(self, start: RunStart) -> None:
        self.references = SentReferences()
        self.approvals = SignalledApprovals(start.approval_timeout_seconds)
        self.misuse: ModelOutsideActivities | None = None

    @workflow.run
    async def run(self, start: RunStart) -> RunOutcome:
        try:
            agent = self.served.agent(start.agent)
        except TemporalRunError as exc:
            raise ApplicationError(str(exc), type=NOT_RUN, non_retryable=True) from exc
        run_id = workflow.info().workflow_id
        context = agent.new_context(
            approver=self.approvals,
            on_event=self._watch,
            run_id=run_id,
            journal=UncertainCalls(run_id, run_id, []),
        )
        result = await run_loop(agent, start.prompt, context)
        if self.misuse is not None:  # a sub-run that ended with it may have been reported to its parent only
            raise ApplicationError(str(self.misuse), type=type(self.misuse).__name__, non_retryable=True)
        return self._outcome(result)

    def _watch(self, event: Event) -> None:
        """The listener of the workflow's runs: a model about to be called outside the activities ends the run."""
        misuse = model_outside_activities(event)
        if misuse is not None:
            self.misuse = misuse
            raise misuse  # a BaseException: the listener guard lets it through, the run ends here

    @workflow.signal(name=APPROVE_SIGNAL)
    def approve(self, decision: ApprovalDecision) -> None:
        self.approvals.decide(decision)

    @workflow.query(name=PENDING_APPROVALS_QUERY)
    def pending_approvals(self) -> list[PendingApproval]:
        return self.approvals.pending()

    async def request_model(self, agent: str, request: ModelRequest) -> ModelResponse:
        frame = self.references.frame(request)
        parent, added = self.references.conversation(request.messages)
        messages, stored_outputs = self.references.encode(added)
        sent = ModelCallInput(agent, frame.digest, frame.inline, parent, messages, stored_outputs)
        try:
            output = await workflow.execute_activity(
                MODEL_CALL,
                sent,
                result_type=ModelCallOutput,
                start_to_close_timeout=self.options.call_timeout,
                heartbeat_timeout=self.options.heartbeat_timeout,
                retry_policy=self.options.retry_policy(self.options.attempts),
            )
        except ActivityError as exc:
            if isinstance(exc.cause, CancelledError):
                raise asyncio.CancelledError from exc
            raise _model_error(exc, self.options.attempts) from None
        frame.stored = True
        response = loads_as(ModelResponse, output.response)
        self.references.remember([*request.messages, response.message], output.head)
        return response

    async def call_tool(self, agent: str, tool: Tool, call: ToolCall, context: RunContext, key: str | None) -> str:
        repeatable = tool.effect == "read" or tool.idempotent
        sent = ToolCallInput(agent, tool.name, context.run_id, call.id, json.dumps(call.arguments), key)
        try:
            output = await workflow.execute_activity(
                TOOL_CALL,
                sent,
                result_type=ToolCallOutput,
                start_to_close_timeout=self.options.call_timeout,
                heartbeat_timeout=self.options.heartbeat_timeout,
                retry_policy=self.options.retry_policy(self.options.attempts if repeatable else 1),
            )
        except ActivityError as exc:
            if isinstance(exc.cause, CancelledError):
                raise asyncio.CancelledError from exc  # the run's own (a tool timeout, say): the loop handles it
            if repeatable or _did_not_run(exc):
                raise ToolError(f"'{tool.name}' could not be run: {_cause(exc)}") from None
            return await self._uncertain_call(agent, tool, call, context, key)
        if output.error is not None:
            raise ToolError(output.error)
        content: str = output.content
        if output.stored is not None:
            self.references.output_stored(content, output.stored)
        return content

    async def _uncertain_call(
        self, agent: str, tool: Tool, call: ToolCall, context: RunContext, key: str | None
    ) -> str:
        """A write that is not idempotent whose worker was lost mid-call: the approver decides if it runs again."""
        request = approvals.ApprovalRequest(
            context.agent.name, tool.name, call.arguments, context.run_id, call.id, uncertain=True
        )
        approval = await approvals.ask(context.approver, request)
        uncertain = UncertainCall(
            context.run_id, context.agent.name, tool.name, call.id, call.arguments, approval.approved, approval.reason
        )
        context.journal.note_uncertain(uncertain)
        context.announce(
            Notice,
            kind="uncertain_call",
            message=f"'{tool.name}' (call {call.id}) was cut off with its worker: "
            + ("run again, as approved" if approval.approved else f"not run again ({approval.reason})"),
            data={"tool": tool.name, "tool_call_id": call.id, "rerun": approval.approved},
        )
        if approval.approved:
            return await self.call_tool(agent, tool, call, context, key)
        raise ToolError(
            f"Not done again: '{tool.name}' was running on a worker that was lost, and it may or may not have "
            f"taken effect; it was not run again ({approval.reason}). Check whether it took effect before calling "
            "it again, or tell the user it is uncertain."
        )

    def _outcome(self, result: RunResult[Any]) -> RunOutcome:
        head, tail = self.references.conversation(result.messages)
        output = result.output
        return RunOutcome(
            agent=result.agent,
            run_id=result.run_id,
            status=result.status,
            output=output if output is None or isinstance(output, str) else pydantic_core.to_json(output).decode(),
            usage=dumps(result.usage),
            total_usage=dumps(result.total_usage),
            turns=result.turns,
            duration_seconds=result.duration_seconds,
            conversation_head=head,
            conversation_tail=dumps(tail),
            limit=None if result.limit is None else dumps(result.limit),
            error_type=None if result.error is None else type(result.error).__name__,
            error=None if result.error is None else str(result.error),
            uncertain_calls=dumps(list(result.uncertain_calls)),
        )


class ServeAgents(Interceptor):
    """A worker's interceptor that gives each run's workflow the agents the worker serves, and its options.

    A workflow class is one per process (Temporal finds it by name), and its instances are made by Temporal:
    this is how an instance gets at the worker it runs on.
    """

    def __init__(self, served: ServedAgents, options: ActivityOptions) -> None:
        self.served = served
        self.options = options

    def workflow_interceptor_class(self, input: WorkflowInterceptorClassInput) -> type[WorkflowInboundInterceptor]:
        served, options = self.served, self.options

        class GiveAgents(WorkflowInboundInterceptor):
            async def execute_workflow(self, input: ExecuteWorkflowInput) -> Any:
                run = workflow.instance()
                if isinstance(run, RetinueRun):
                    run.served, run.options = served, options
                return await super().execute_workflow(input)

        return GiveAgents


def _did_not_run(exc: ActivityError) -> bool:
    cause = exc.cause
    return isinstance(cause, ApplicationError) and cause.type == NOT_RUN


def _cause(exc: ActivityError) -> str:
    cause = exc.cause
    if isinstance(cause, TimeoutError):
        lost = cause.type in (TimeoutType.HEARTBEAT, TimeoutType.START_TO_CLOSE)
        return "its worker was lost on every attempt" if lost else f"it timed out ({cause.type})"
    return str(cause or exc)


def _model_error(exc: ActivityError, attempts: int) -> Exception:
    """The error the loop ends the run with: the model's own (as a ModelError of the same class), or why not."""
    cause = exc.cause
    if isinstance(cause, ApplicationError):
        if cause.type == NOT_RUN:
            return TemporalRunError(cause.message)
        error_class = getattr(errors, cause.type or "", None)
        if isinstance(error_class, type) and issubclass(error_class, ModelError):
            return error_class(cause.message)
        return ModelError(f"{cause.type}: {cause.message}")
    return ModelError(f"the model call failed on {attempts} attempts: {_cause(exc)}")
