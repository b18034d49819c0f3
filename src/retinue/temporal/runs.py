"""`TemporalRuns`: start, follow and approve durable runs on a Temporal cluster, and serve them from workers."""

from __future__ import annotations

import contextlib
import json
import typing
import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import pydantic
from temporalio.client import Client, WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.worker import Worker

from ..agent import Agent
from ..approvals import ApprovalRequest, arguments_digest
from ..errors import ConfigurationError
from ..limits import LimitReached
from ..messages import Message
from ..result import RunResult, RunStatus, UncertainCall
from ..store.serialize import decode, loads_as
from ..usage import Usage
from .activities import RunActivities
from .agents import ServedAgents
from .approvals import request_of
from .blobs import BlobStore
from .errors import ReportedError
from .payloads import (
    APPROVE_SIGNAL,
    PENDING_APPROVALS_QUERY,
    WORKFLOW,
    ApprovalDecision,
    PendingApproval,
    RunOutcome,
    RunStart,
)
from .references import ReferenceReader
from .workflow import ActivityOptions, RetinueRun, ServeAgents


class TemporalRuns:
    """Durable runs of `agents` on the task queue `task_queue` of a Temporal cluster, through `client`.

    `agents` are every agent of the trees that run there, specialists included (see `temporal_agent`);
    `store` is the blob store every worker and client of the queue shares (see `retinue.temporal.blobs`).
    The same object starts runs (`start`, `result`, `approve`) and serves them (`worker`); workers and
    clients may be in different processes, each with its own `TemporalRuns` over the same agents.

    `heartbeat_timeout` is how soon a call of a lost worker moves on to another; `call_timeout` bounds any
    one model or tool call; `attempts` is how often a call that is safe to repeat is tried.
    """

    def __init__(
        self,
        client: Client,
        agents: Sequence[Agent[Any]],
        *,
        store: BlobStore,
        task_queue: str = "retinue",
        heartbeat_timeout: timedelta = timedelta(seconds=5),
        call_timeout: timedelta = timedelta(hours=1),
        attempts: int = 5,
    ) -> None:
        if attempts < 1:
            raise ConfigurationError(f"attempts={attempts}: a call is tried at least once; give 1 or more.")
        if heartbeat_timeout <= timedelta(0) or call_timeout <= heartbeat_timeout:
            raise ConfigurationError(
                f"heartbeat_timeout={heartbeat_timeout} and call_timeout={call_timeout}: the heartbeat timeout "
                "must be positive (a few seconds) and shorter than the call timeout."
            )
        self.client = client
        self.agents = ServedAgents(agents)
        self.store = store
        self.task_queue = task_queue
        self.options = ActivityOptions(heartbeat_timeout, call_timeout, attempts)

    def worker(self, *, deps: Any = None, sticky_timeout: timedelta = timedelta(seconds=1), **options: Any) -> Worker:
        """A worker for this queue's runs and their activities; run it with `async with` (or `await .run()`).

        `deps` is what the tools' `RunContext.deps` holds in the activities. `sticky_timeout` is how long a
        run's next step waits for the worker that did the last one (which has the run in memory) before any
        worker may take it: short, so a killed worker's runs move on within a second or two. Other keyword
        arguments go to `temporalio.worker.Worker`.
        """
        activities = RunActivities(self.agents, self.store, deps)
        interceptors = [ServeAgents(self.agents, self.options), *options.pop("interceptors", ())]
        # Beats go out a third of the timeout apart (the SDK's default holds them back to 80% of it), so a
        # worker slowed down for a moment is not taken for a lost one.
        options.setdefault("max_heartbeat_throttle_interval", self.options.heartbeat_timeout / 3)
        return Worker(
            self.client,
            task_queue=self.task_queue,
            workflows=[RetinueRun],
            activities=activities.all,
            interceptors=interceptors,
            sticky_queue_schedule_to_start_timeout=sticky_timeout,
            **options,
        )

    async def start(
        self,
        agent: Agent[Any] | str,
        prompt: str,
        *,
        run_id: str | None = None,
        approval_timeout: timedelta | None = None,
        execution_timeout: timedelta | None = None,
    ) -> str:
        """Start a run of `agent` (one of `agents`, or its name) on `prompt`; its run id, which is the workflow id.

        Idempotent on `run_id`: starting a run that exists (running or ended) starts nothing. An approval
        undecided after `approval_timeout` is denied; `execution_timeout` bounds the whole run.
        """
        name = agent if isinstance(agent, str) else agent.name
        self.agents.agent(name)  # fails here, not in a worker, when the agent is not one of ours
        if approval_timeout is not None and approval_timeout <= timedelta(0):
            raise ConfigurationError(f"approval_timeout={approval_timeout}: give a positive time, or None to wait.")
        run_id = run_id or uuid.uuid4().hex
        start = RunStart(name, prompt, None if approval_timeout is None else approval_timeout.total_seconds())
        with contextlib.suppress(WorkflowAlreadyStartedError):  # it exists already: a start is idempotent
            await self.client.start_workflow(
                WORKFLOW,
                start,
                id=run_id,
                task_queue=self.task_queue,
                execution_timeout=execution_timeout,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            )
        return run_id

    async def result(self, run_id: str) -> RunResult[Any]:
        """Wait for the run `run_id` to end, and how it ended.

        Raises `temporalio.client.WorkflowFailureError` for a run that could not run at all (an agent the
        workers do not serve, a model called outside the activities), whose message says what to change.
        """
        outcome: RunOutcome = await self._handle(run_id).result()
        return await self._run_result(outcome)

    async def run(self, agent: Agent[Any] | str, prompt: str, **options: Any) -> RunResult[Any]:
        """`start` a run and wait for its `result`."""
        return await self.result(await self.start(agent, prompt, **options))

    async def pending_approvals(self, run_id: str) -> list[ApprovalRequest]:
        """The calls of the run (and its sub-runs) waiting for a decision. Needs a worker to answer."""
        pending = await self._handle(run_id).query(PENDING_APPROVALS_QUERY, result_type=list[PendingApproval])
        return [request_of(item) for item in pending]

    async def approve(self, run_id: str, request: ApprovalRequest, *, approved: bool = True, reason: str = "") -> None:
        """Decide `request` (from `pending_approvals`) of the run `run_id`; `approved=False` denies it.

        A signal: it is kept by the server and reaches the run whenever a worker next serves it, so no worker
        needs to be up now. The decision holds only for this call with these arguments.
        """
        decision = ApprovalDecision(
            request.run_id, request.tool_call_id, arguments_digest(request.arguments), approved, reason
        )
        await self._handle(run_id).signal(APPROVE_SIGNAL, decision)

    def _handle(self, run_id: str) -> WorkflowHandle[Any, RunOutcome]:
        return self.client.get_workflow_handle(run_id, result_type=RunOutcome)

    async def _run_result(self, outcome: RunOutcome) -> RunResult[Any]:
        reader = ReferenceReader(self.store, cached=1)
        messages = await reader.conversation(outcome.conversation_head)
        messages += decode(json.loads(outcome.conversation_tail), list[Message])
        output_type = self.agents.agent(outcome.agent).output_type
        output: Any = outcome.output
        if output is not None and output_type is not None:
            output = pydantic.TypeAdapter(output_type).validate_json(output)
        status = typing.cast(RunStatus, outcome.status)  # written by the workflow from a RunResult
        return RunResult(
            agent=outcome.agent,
            run_id=outcome.run_id,
            status=status,
            output=output,
            messages=messages,
            usage=loads_as(Usage, outcome.usage),
            total_usage=loads_as(Usage, outcome.total_usage),
            turns=outcome.turns,
            duration_seconds=outcome.duration_seconds,
            limit=None if outcome.limit is None else loads_as(LimitReached, outcome.limit),
            error=None if outcome.error is None else ReportedError(outcome.error_type or "Exception", outcome.error),
            uncertain_calls=tuple(decode(json.loads(outcome.uncertain_calls), list[UncertainCall])),
        )
