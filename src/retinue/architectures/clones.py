"""Master-Clone: an agent hands sub-tasks to copies of itself.

An agent given `clone_tool()` can call `spawn_clone(task)`: a copy of the
agent (same instructions, tools and model) works on the task in its own loop
and returns a concise result. Several calls in one turn run concurrently.

What a clone knows is the caller's choice, because the seed's known failure of
this pattern is cost: every clone needing all the context.
- "task": only the task text the master writes (cheapest; the master must
  put every needed fact in it).
- "summary": a summary of the master's conversation, written once per master
  turn by the model and shared by the clones spawned in that turn.
- "full": a fork of the master's conversation. The clone's requests then start
  with exactly the master's bytes (instructions, tools, messages), so provider
  prompt caches serve that prefix.

Clones run on the master's budget chain: a tree of clones cannot spend more
tokens or dollars than the root was given. Depth and count are capped.
"""

from __future__ import annotations

import asyncio
from typing import Literal, TypeAlias

import pydantic

from ..errors import ConfigurationError, ToolError
from ..limits import Limits
from ..messages import AssistantMessage, Message, ToolCall
from ..run_context import RunContext, TreeState
from ..tools import Tool
from ..window.summarize import summarize_turns
from .subagents import answer_text, describe_ending, run_sub_agent

Inheritance: TypeAlias = Literal["task", "summary", "full"]

SUMMARY_INSTRUCTIONS = (
    "Summarise the conversation below for a colleague who will take on one part of the work. "
    "Keep the goal, every decision and fact established so far, and open questions. Be brief."
)

_DESCRIPTIONS: dict[Inheritance, str] = {
    "task": (
        "Hand a self-contained sub-task to a copy of yourself (same tools and instructions), which returns a "
        "concise result. It sees only the task text: include every fact it needs. Call this several times in "
        "one turn to work on independent sub-tasks in parallel."
    ),
    "summary": (
        "Hand a sub-task to a copy of yourself (same tools and instructions) that also gets a summary of this "
        "conversation, and returns a concise result. Call this several times in one turn to work on "
        "independent sub-tasks in parallel."
    ),
    "full": (
        "Hand a sub-task to a copy of yourself that continues from this whole conversation, and returns a "
        "concise result. Call this several times in one turn to work on independent sub-tasks in parallel."
    ),
}

_CLONES_SPAWNED: TreeState[dict[str, int]] = TreeState("clones spawned, by master run id", lambda root: {})
_SUMMARIES: TreeState[dict[tuple[str, int], asyncio.Task[str]]] = TreeState(
    "summaries for clones, by master run id and conversation length", lambda root: {}
)


class CloneTask(pydantic.BaseModel):
    task: str = pydantic.Field(description="The sub-task, stated so it can be done on its own.")


def clone_tool(
    *,
    inherit: Inheritance = "task",
    max_clones: int = 8,
    max_depth: int = 1,
    limits: Limits | None = None,
    summary_instructions: str = SUMMARY_INSTRUCTIONS,
) -> Tool:
    """The `spawn_clone` tool. Put it in an agent's tools to let it clone itself.

    Args:
        inherit: What a clone knows besides its task: "task", "summary" or "full" (see the module doc).
        max_clones: At most this many clones per master run.
        max_depth: How deep clones may nest (1: clones cannot clone themselves).
        limits: The clones' own limits; by default the master's. Tokens and dollars always also count
            against the master's limits.
        summary_instructions: The instructions for the summary call when `inherit="summary"`.
    """
    if inherit not in _DESCRIPTIONS:
        raise ConfigurationError(f"inherit must be one of {sorted(_DESCRIPTIONS)}, not {inherit!r}.")
    if max_clones < 1 or max_depth < 1:
        raise ConfigurationError("max_clones and max_depth must be at least 1.")

    async def spawn_clone(context: RunContext, call: ToolCall, task: str) -> str:
        depth = _clone_depth(context)
        if depth >= max_depth:
            raise ToolError(
                f"you are a clone {depth} level(s) deep and clones may nest only {max_depth} deep: "
                "do this task yourself."
            )
        counts = context.tree_state(_CLONES_SPAWNED)
        spawned = counts.get(context.run_id, 0)
        if spawned >= max_clones:
            raise ToolError(
                f"this agent already spawned {max_clones} clones, its limit: do the rest yourself or combine "
                "the results you have."
            )
        counts[context.run_id] = spawned + 1
        master = context.agent
        clone = master.override(name=f"{master.name}/clone-{spawned + 1}", limits=limits or master.limits)
        history: list[Message] | None = None
        prompt = task
        if inherit == "full":
            history = _forkable_history(context.messages)
        elif inherit == "summary":
            summary = await _shared_summary(context, summary_instructions)
            prompt = f"Summary of the conversation so far:\n{summary}\n\nYour task: {task}"
        result = await run_sub_agent(clone, prompt, context, call, kind="clone", history=history)
        answer = answer_text(result)
        if not result.completed:
            raise ToolError(f"the clone did not finish ({describe_ending(result)}). {answer}".strip())
        return answer

    return Tool(
        name="spawn_clone",
        description=_DESCRIPTIONS[inherit],
        function=spawn_clone,
        args_model=CloneTask,
        context_parameter="context",
        call_parameter="call",
        run_in_thread=False,
        # Run again on resume: that rebuilds the clone count, and the clone's run, re-entered by its derived
        # id, replays from its own journal entries.
        effect="local",
    )


def _clone_depth(context: RunContext) -> int:
    depth = 0
    current: RunContext | None = context
    while current is not None and current.kind == "clone":
        depth += 1
        current = current.parent
    return depth


def _forkable_history(messages: list[Message]) -> list[Message]:
    """The master's conversation up to its last complete turn.

    The master's newest assistant message is the one calling spawn_clone; its
    results do not exist yet, and providers reject a tool call without results.
    """
    history = list(messages)
    if history and isinstance(history[-1], AssistantMessage) and history[-1].tool_calls:
        history.pop()
    return history


async def _shared_summary(context: RunContext, instructions: str) -> str:
    # Clones spawned in one master turn share one summary: one model call, not one per clone.
    summaries = context.tree_state(_SUMMARIES)
    key = (context.run_id, len(context.messages))
    if key not in summaries:
        summaries[key] = asyncio.ensure_future(_summarise(context, instructions))
    return await asyncio.shield(summaries[key])


async def _summarise(context: RunContext, instructions: str) -> str:
    summary, _ = await summarize_turns(
        context,
        context.agent.resolved_model(),
        _forkable_history(context.messages),
        instructions=instructions,
        purpose="summary",
        tool_output_chars=600,
    )
    return summary
