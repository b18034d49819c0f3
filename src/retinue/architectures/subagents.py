"""Running another agent as a child of the current run: the mechanism under specialists and clones."""

from __future__ import annotations

from typing import Any

import pydantic_core

from ..agent import Agent
from ..events import SubAgentFinished, SubAgentStarted
from ..loop import run_loop
from ..messages import ToolCall
from ..result import RunResult
from ..run_context import RunContext


async def run_sub_agent(
    agent: Agent[Any], prompt: str, context: RunContext, call: ToolCall, *, kind: str, **run_options: Any
) -> RunResult[Any]:
    """Run `agent` as a child of the run in `context`: one event tree, one budget chain.

    The child's run id derives from the parent's and the call's: a resumed parent that runs this call again
    re-enters the same child run, which replays from its own journal entries and goes on where it stopped.
    """
    child = context.child(agent, tool_call_id=call.id, kind=kind)
    context.announce(
        SubAgentStarted, child_run_id=child.run_id, child_agent=agent.name, tool_call_id=call.id, kind=kind
    )
    result = await run_loop(agent, prompt, child, **run_options)
    context.sub_runs_of(call.id).usage.add(result.total_usage)  # journalled with the call's output
    context.announce(
        SubAgentFinished,
        child_run_id=child.run_id,
        child_agent=agent.name,
        status=result.status,
        usage=result.total_usage,
    )
    return result


def answer_text(result: RunResult[Any]) -> str:
    """What a sub-agent's caller reads: its answer, or its last words if it did not finish."""
    if result.output is None:
        return _last_text(result)
    if isinstance(result.output, str):
        return result.output
    return pydantic_core.to_json(result.output, fallback=str).decode()


def _last_text(result: RunResult[Any]) -> str:
    for message in reversed(result.messages):
        text = getattr(message, "text", "")
        if message.role == "assistant" and text:
            return f"Its last words were: {text}"
    return ""


def describe_ending(result: RunResult[Any]) -> str:
    if result.limit is not None:
        return result.limit.describe()
    return f"{result.status}: {result.error}"
