"""The activities of a Temporal run: one model request, one tool call. They are where the run meets the world.

A model activity rebuilds the request from its references (`retinue.temporal.references`), sends it to the
agent's real model, stores the conversation with the response, and returns the response with the new head.
A tool activity runs the agent's real tool with its idempotency key and returns what the model will read.
Both heartbeat while they work, so that a worker killed mid-call is noticed within the heartbeat timeout
and the call moves to another worker (or, for a write that may have taken effect, to the approver).

A tool's failure is its output (the error text the model reads), never a failed activity: an activity fails
only when the worker could not run the call at all, which the workflow can then tell apart from a call that
ran. A model's failure (`ModelError`, after the provider's own retries) fails the activity for good; the
workflow raises it again in the loop, which ends the run with it, as without Temporal.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from ..errors import ToolError, ToolOutputError
from ..messages import ModelRequest, ToolCall
from ..store.serialize import dumps
from ..tools import render_tool_output
from .agents import ServedAgents
from .blobs import BlobStore
from .errors import TemporalRunError
from .payloads import (
    MODEL_CALL,
    NOT_RUN,
    TOOL_CALL,
    ModelCallInput,
    ModelCallOutput,
    ToolCallInput,
    ToolCallOutput,
)
from .references import ReferenceReader


class RunActivities:
    """The activities a worker runs for the agents it serves, with `deps` for their tools."""

    def __init__(self, agents: ServedAgents, store: BlobStore, deps: Any = None) -> None:
        self.agents = agents
        self.references = ReferenceReader(store)
        self.deps = deps

    @activity.defn(name=MODEL_CALL)
    async def model_call(self, sent: ModelCallInput) -> ModelCallOutput:
        with _not_run_failures():
            model = self.agents.model(sent.agent)
            frame = await self.references.frame(sent.frame, sent.frame_json)
            added = await self.references.messages(sent.messages, sent.stored_outputs)
            messages = [*await self.references.conversation(sent.parent), *added]
        request = ModelRequest(frame.instructions, messages, frame.tools, frame.settings)
        async with _heartbeating():
            try:
                response = await model.request(request)
            except Exception as exc:  # the model's own retries are done: the run ends with it
                raise ApplicationError(str(exc), type=type(exc).__name__, non_retryable=True) from exc
        added.append(response.message)
        head = await self.references.store_conversation(sent.parent, added, [*messages, response.message])
        return ModelCallOutput(dumps(response), head)

    @activity.defn(name=TOOL_CALL)
    async def tool_call(self, sent: ToolCallInput) -> ToolCallOutput:
        with _not_run_failures():
            agent = self.agents.agent(sent.agent)
            tool = self.agents.tool(sent.agent, sent.tool)
        call = ToolCall(sent.call_id, sent.tool, json.loads(sent.arguments))
        context = agent.new_context(run_id=sent.run_id, deps=self.deps)
        async with _heartbeating():
            try:
                arguments = tool.validate(call.arguments, strict=agent.strict_tool_arguments)
                value = await tool.call(arguments, call, context, sent.key)
            except ToolError as exc:
                return ToolCallOutput(error=str(exc))
            except (Exception, SystemExit) as exc:  # noqa: BLE001 - as in the loop: the model reads what failed
                return ToolCallOutput(error=f"'{tool.name}' failed with {type(exc).__name__}: {exc}")
        try:
            content = render_tool_output(value)
        except ToolOutputError as exc:
            return ToolCallOutput(error=f"'{tool.name}' ran, but its result cannot be shown: {exc}.")
        return ToolCallOutput(content, stored=await self.references.store_output(content))

    @property
    def all(self) -> list[Any]:
        return [self.model_call, self.tool_call]


@contextlib.contextmanager
def _not_run_failures() -> Iterator[None]:
    """Failures that come before a call runs (an agent not served, a blob missing): reported as such, and not
    retried, since a retry would fail the same."""
    try:
        yield
    except TemporalRunError as exc:
        raise ApplicationError(str(exc), type=NOT_RUN, non_retryable=True) from exc


@contextlib.asynccontextmanager
async def _heartbeating() -> AsyncIterator[None]:
    """Heartbeat while the body runs: a third of the timeout apart, so one late beat is not a lost worker."""
    timeout = activity.info().heartbeat_timeout
    if not timeout:
        yield
        return

    async def beat() -> None:
        while True:
            activity.heartbeat()
            await asyncio.sleep(timeout.total_seconds() / 3)

    beating = asyncio.create_task(beat(), name="retinue activity heartbeat")
    try:
        yield
    finally:
        beating.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await beating
