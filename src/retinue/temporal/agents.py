"""Agents for Temporal workflows: their model calls and I/O tool calls become activities.

`temporal_agent(agent)` is a copy of `agent` whose model and I/O tools, when it runs in a workflow that
`TemporalRuns` started, hand each call to an activity, and anywhere else call through as before. The loop
itself runs in the workflow unchanged: Temporal replays it after a crash, answering every completed
activity from the workflow's history, so nothing completed is done or paid again.

Where each tool runs:
- In an activity: "read" and "write" tools, the ones that touch the world. Their `RunContext` there holds the
  run id, the agent and the worker's `deps`, and none of the run's memory.
- In the workflow: "local" tools, the architectures' own tools (specialists, clones, the decision record), a
  context policy's tools, and the tools named in `in_workflow`. They work on the run's memory, and run again
  each time the workflow is replayed, so they must not touch the world.

Context policies run in the workflow too: compaction works (its summaries are the agent's model calls, so
activities), but a policy may not keep outputs in files (`offload_over_chars=None, keep_dropped=False`).

A sub-agent run by a tool (a specialist) is an agent of its own: build the lead from `temporal_agent(...)`
specialists, and list every agent of the tree in `TemporalRuns(agents=...)`, which the activities look calls
up in. A model called from inside the workflow, not through an activity, fails the run with an error that
says so (see `model_outside_activities`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from temporalio import workflow

from ..agent import Agent
from ..errors import ConfigurationError
from ..events import Event, ModelRequestSent
from ..messages import ModelRequest, ModelResponse, ToolCall, ToolResult
from ..models.base import Model, TextSink, close_model, model_spec
from ..result import OutputT
from ..tools import Tool, as_tool
from ..window import CompactingPolicy
from .errors import ModelOutsideActivities, TemporalRunError

if TYPE_CHECKING:
    from ..run_context import RunContext
    from ..window.policy import ContextPolicy

ACTIVITY_SPEC = "temporal-activity:"
"""How an activity model names itself inside a workflow, where only the workflow's own listener reads it."""

_RUN_MACHINERY = ("retinue.architectures.", "retinue.window.")  # tools that work on the run's memory
_SANDBOXED = "retinue.architectures.scripting"  # its sandbox lives in the process that started it

# Names of the stub's injected parameters: a tool's own parameters cannot start with "_" (pydantic fields).
_CONTEXT, _CALL, _KEY = "_retinue_context", "_retinue_call", "_retinue_key"


@runtime_checkable
class ActivityCalls(Protocol):
    """What the workflow of a run does with the calls of its temporal agents (see `retinue.temporal.workflow`)."""

    async def request_model(self, agent: str, request: ModelRequest) -> ModelResponse: ...

    async def call_tool(self, agent: str, tool: Tool, call: ToolCall, context: RunContext, key: str | None) -> str: ...


def _activity_calls() -> ActivityCalls:
    instance = workflow.instance()
    if not isinstance(instance, ActivityCalls):
        raise TemporalRunError(
            f"a temporal_agent ran in the workflow {type(instance).__name__}; it runs only in the workflows that "
            "retinue.temporal.TemporalRuns starts"
        )
    return instance


class ActivityModel:
    """The model of a temporal agent: in a workflow each request is an activity; elsewhere `source`'s model answers.

    Everything else (`model_id`, a price, a context window) is the real model's, so limits and context
    policies see the model they would see without Temporal.
    """

    def __init__(self, source: Agent[Any]) -> None:
        self.source = source  # resolved lazily: in a worker, only the activities need the real model

    @property
    def model(self) -> Model:
        return self.source.resolved_model()

    @property
    def model_id(self) -> str:
        return self.model.model_id

    @property
    def spec(self) -> str:
        if workflow.in_workflow():
            return ACTIVITY_SPEC + self.source.name
        return model_spec(self.model)

    async def request(self, request: ModelRequest, on_text: TextSink | None = None) -> ModelResponse:
        if workflow.in_workflow():
            return await _activity_calls().request_model(self.source.name, request)
        return await self.model.request(request, on_text)

    async def aclose(self) -> None:
        await close_model(self.model)

    def __getattr__(self, name: str) -> Any:
        if name in ("source", "model"):  # not set yet (an object being copied), or failing: no recursion
            raise AttributeError(name)
        return getattr(self.model, name)

    def __repr__(self) -> str:
        return f"ActivityModel(agent={self.source.name!r})"


def temporal_agent(agent: Agent[OutputT], *, in_workflow: Collection[str] = ()) -> Agent[OutputT]:
    """A copy of `agent` for Temporal workflows: its model and I/O tool calls become activities there.

    `in_workflow` names tools that must run in the workflow although they are "read" or "write" (they work
    on the run's memory and do no I/O). An agent that is already a temporal agent is returned as it is.
    """
    if isinstance(agent.model, ActivityModel):
        return agent
    _check_runs_in_a_workflow(agent)
    unknown = set(in_workflow) - {tool.name for tool in _tools_of(agent)}
    if unknown:
        raise ConfigurationError(f"in_workflow names {sorted(unknown)}, which are not tools of agent '{agent.name}'.")
    tools = [
        _on_the_loop(tool) if _runs_in_workflow(tool, in_workflow) else _activity_tool(tool, agent.name)
        for tool in _tools_of(agent)
    ]
    policy = None if agent.context_policy is None else InWorkflowPolicy(agent.context_policy)
    return agent.override(model=ActivityModel(agent), tools=tools, context_policy=policy)


def source_of(agent: Agent[Any]) -> Agent[Any]:
    """The agent a temporal agent was made from (an agent that is not one is its own source)."""
    return agent.model.source if isinstance(agent.model, ActivityModel) else agent


def _tools_of(agent: Agent[Any]) -> list[Tool]:
    return [as_tool(item) for item in agent.tools]  # Tools already: the agent made them so


def _check_runs_in_a_workflow(agent: Agent[Any]) -> None:
    if agent.limits.max_wall_seconds is not None:
        raise ConfigurationError(
            f"Agent '{agent.name}' has max_wall_seconds, but a workflow cannot read its worker's clock (it is "
            "replayed on other workers, later). Drop the limit and bound the run with "
            "TemporalRuns.start(..., execution_timeout=...) instead."
        )
    policy = agent.context_policy
    if isinstance(policy, CompactingPolicy) and (policy.offload_over_chars is not None or policy.keep_dropped):
        raise ConfigurationError(
            f"Agent '{agent.name}' has a context policy that keeps offloaded outputs and dropped turns in files of "
            "its process, which a workflow cannot write (and another worker would not have): give it "
            "offload_over_chars=None and keep_dropped=False on Temporal."
        )
    sandboxed = [tool.name for tool in _tools_of(agent) if _module_of(tool).startswith(_SANDBOXED)]
    if sandboxed:
        raise ConfigurationError(
            f"Agent '{agent.name}' has the scripting tools {sandboxed}, whose sandbox lives in the process that "
            "started it; they cannot run on Temporal yet. Use the lead or clones architecture there."
        )


def _module_of(tool: Tool) -> str:
    module = getattr(tool.function, "__module__", None)
    return module if isinstance(module, str) else ""


def _runs_in_workflow(tool: Tool, named: Collection[str]) -> bool:
    return tool.effect == "local" or tool.name in named or _module_of(tool).startswith(_RUN_MACHINERY)


def _on_the_loop(tool: Tool) -> Tool:
    # A workflow's event loop has no threads to hand a sync call to (and must not: replays must match).
    return dataclasses.replace(tool, run_in_thread=False) if tool.runs_in_thread else tool


def _activity_tool(tool: Tool, agent: str) -> Tool:
    """`tool`, with a body that runs the real one in an activity when called in a workflow, and directly otherwise.

    The loop sees the same name, schema, effect and approval rule, so it treats every call as it would the
    real tool's; the stub asks for the call, its context and its idempotency key, to send them on.
    """

    async def call_in_activity(**fields: Any) -> Any:
        context: RunContext = fields[_CONTEXT]
        call: ToolCall = fields[_CALL]
        key: str | None = fields[_KEY]
        if workflow.in_workflow():
            return await _activity_calls().call_tool(agent, tool, call, context, key)
        arguments = tool.validate(call.arguments, strict=context.agent.strict_tool_arguments)
        return await tool.call(arguments, call, context, key)

    return dataclasses.replace(
        tool,
        function=call_in_activity,
        context_parameter=_CONTEXT,
        call_parameter=_CALL,
        key_parameter=_KEY,
        run_in_thread=False,
    )


class InWorkflowPolicy:
    """A context policy whose own tools (reading offloaded outputs) run on the workflow's event loop."""

    def __init__(self, policy: ContextPolicy) -> None:
        self.policy = policy

    def tools(self) -> Sequence[Tool]:
        return [_on_the_loop(tool) for tool in self.policy.tools()]

    async def before_request(self, context: RunContext, model: Model) -> None:
        await self.policy.before_request(context, model)

    async def on_tool_result(self, result: ToolResult, context: RunContext) -> ToolResult:
        return await self.policy.on_tool_result(result, context)

    def __getattr__(self, name: str) -> Any:
        if name == "policy":
            raise AttributeError(name)
        return getattr(self.policy, name)


def model_outside_activities(event: Event) -> ModelOutsideActivities | None:
    """What is wrong if `event` is a model request about to be sent from the workflow itself, not an activity.

    That happens when a sub-agent is not a temporal agent (a specialist built from the plain agent) or a
    context policy has a summarizer model of its own. Its call would be made again at every replay.
    """
    if not isinstance(event, ModelRequestSent) or event.model_id.startswith(ACTIVITY_SPEC):
        return None
    return ModelOutsideActivities(
        f"agent '{event.agent}' was about to call the model '{event.model_id}' inside the workflow, not in an "
        "activity: make it a temporal agent (build the lead from temporal_agent(specialist) for each "
        "specialist), list it in TemporalRuns(agents=...), and give context policies no model of their own"
    )


class ServedAgents:
    """The agents a task queue serves, by name, as temporal agents: where the activities find models and tools."""

    def __init__(self, agents: Sequence[Agent[Any]]) -> None:
        if not agents:
            raise ConfigurationError("TemporalRuns needs agents=[...]: every agent of the trees it runs.")
        self._agents: dict[str, Agent[Any]] = {}
        self._tools: dict[str, dict[str, Tool]] = {}
        for agent in agents:
            served = temporal_agent(agent)
            known = self._agents.get(agent.name)
            if known is not None and source_of(known) is not source_of(served):
                raise ConfigurationError(
                    f"Two different agents are named '{agent.name}': activities find agents by name, so rename one."
                )
            self._agents[agent.name] = served
            self._tools[agent.name] = {tool.name: tool for tool in _tools_of(source_of(served))}

    @property
    def names(self) -> list[str]:
        return sorted(self._agents)

    def agent(self, name: str) -> Agent[Any]:
        """The temporal agent named `name`."""
        agent = self._agents.get(name)
        if agent is None:
            raise TemporalRunError(
                f"this task queue serves no agent named '{name}' (it serves {', '.join(self.names)}): list every "
                "agent of the tree, specialists included, in TemporalRuns(agents=...) on every worker"
            )
        return agent

    def model(self, name: str) -> Model:
        """The real model of the agent `name`."""
        return source_of(self.agent(name)).resolved_model()

    def tool(self, agent: str, name: str) -> Tool:
        """The real tool `name` of the agent `agent`."""
        self.agent(agent)  # one that is not served fails with the explanation
        tool = self._tools[agent].get(name)
        if tool is None:
            raise TemporalRunError(f"agent '{agent}' has no tool named '{name}' on this worker")
        return tool
