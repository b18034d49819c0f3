"""What the reflection model reads, and the reflection model itself.

For each text GEPA chooses to rewrite, the reflection model gets a prompt made of one of the templates below
(the text's place in the agent tree filled in) and, for each task of the minibatch, a record: the task, the
grader's verdict as text (which state rows differ, which facts are missing, the error), the tool calls that
matter for this text with their results and errors, and the end of the conversation. That is what a good
engineer would read to diagnose a failure, rather than a bare score.

Each reflection is one run of the `improve-reflector` agent, so it goes through the loop's `send_request`: it
is traced with the optimisation's other runs and priced.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any, TypeVar

from ..agent import Agent
from ..evals import EvalTask, ToolCallRecord, TrialResult
from ..events import EventSink
from ..limits import Limits
from ..models.base import Model
from ..result import RunResult
from .spending import SearchStopped, Spending
from .texts import TextSite

T = TypeVar("T")
Submit = Callable[[Coroutine[Any, Any, T]], T]
"""Runs a coroutine on the optimisation's event loop from GEPA's thread, and returns its result."""

REFLECTOR_INSTRUCTIONS = """You improve the instructions and tool descriptions of AI agents. You are shown one \
text, how the agents did on some tasks with it, and the grader's verdict on each. Find what in the text made the \
agents fail, or what it left out, and rewrite it so they succeed. Answer with the complete new text inside one \
``` block."""

# GEPA fills in <curr_param> (the text) and <side_info> (the records); the rest is filled in per text.
INSTRUCTIONS_TEMPLATE = """These are the instructions of the agent `{agent}`{role}. It works from them as its \
system prompt{tools}.
```
<curr_param>
```

Below are tasks the system was given. Each comes with the grader's verdict (how the end state differed from the \
expected one, which required facts the answers missed, errors), the tool calls that matter for this agent with \
their results, and the end of the conversation.

<side_info>

Work out why the tasks that failed failed: what in these instructions led the agent astray, or which fact or \
rule it needed and did not have. Then write new instructions that fix those failures and keep what made the \
passing tasks pass. State rules in general terms: instructions that answer the particular tasks above would not \
carry over to new ones.

Write the complete new instructions inside one ``` block."""

TOOL_TEMPLATE = """This is the description of the tool `{tool}` of the agent `{agent}`. The model reads it, \
with the tool's parameters, to decide when to call the tool and how to fill in its arguments. The parameters: \
{parameters}
```
<curr_param>
```

Below are tasks the system was given. Each comes with the grader's verdict (how the end state differed from the \
expected one, which required facts the answers missed, errors), the calls of this tool and the calls that \
failed, with their results, and the end of the conversation.

<side_info>

Work out which failures come from this description: a call the model should not have made, arguments it got \
wrong, a result it misread. Then write a new description that prevents them and keeps what works. Describe the \
tool in general terms: a description that answers the particular tasks above would not carry over to new ones.

Write the complete new description inside one ``` block."""

MAX_CALL_LINES = 25
CONVERSATION_CHARS = 2_000


def reflection_templates(sites: Sequence[TextSite]) -> dict[str, str]:
    """The reflection prompt template of each text, by path (see INSTRUCTIONS_TEMPLATE and TOOL_TEMPLATE)."""
    tools_of: dict[str, list[str]] = {}
    for site in sites:
        if site.tool is not None:
            tools_of.setdefault(site.agent_path, []).append(site.tool)
    templates = {}
    for site in sites:
        if site.kind == "instructions":
            parent = site.agent_path.rpartition("/")[0]
            role = f", which `{parent}` consults" if parent else ", the one the user talks to"
            tools = tools_of.get(site.agent_path, [])
            listed = f", with the tools {', '.join(tools)}" if tools else ""
            templates[site.path] = INSTRUCTIONS_TEMPLATE.format(agent=site.agent_path, role=role, tools=listed)
        else:
            parameters = json.dumps(site.parameters or {}, ensure_ascii=False)
            templates[site.path] = TOOL_TEMPLATE.format(tool=site.tool, agent=site.agent_path, parameters=parameters)
    return templates


def reflective_record(
    site: TextSite, result: TrialResult, task: EvalTask | None, agent_paths: Sequence[str]
) -> dict[str, str]:
    """What the reflection model reads about one trial, for the text at `site`."""
    calls = relevant_calls(site, result.tool_calls, agent_paths)
    return {
        "Task (the user's goal; the assistant did not see this)": task.instruction if task else result.task_id,
        "Outcome": "passed" if result.passed else "FAILED",
        "Grader's verdict": result.verdict or ("passed" if result.passed else "failed"),
        "Tool calls": "\n".join(calls) if calls else "(none)",
        "End of the conversation": conversation_excerpt(result.transcript),
    }


def relevant_calls(site: TextSite, calls: Sequence[ToolCallRecord], agent_paths: Sequence[str]) -> list[str]:
    """The calls that matter for `site`'s text, one line each: its agent's calls (or its tool's), and failures.

    Failing calls come first when there are more than MAX_CALL_LINES.
    """
    chosen: list[ToolCallRecord] = []
    for call in calls:
        owner = owner_path(call.agent, agent_paths)
        if site.kind == "instructions":
            mine = owner == site.agent_path
        else:
            mine = owner == site.agent_path and call.name == site.tool
        if mine or not call.ok:
            chosen.append(call)
    if len(chosen) > MAX_CALL_LINES:
        failing = [call for call in chosen if not call.ok]
        chosen = (failing + [call for call in chosen if call.ok])[:MAX_CALL_LINES]
    return [f"{call.agent}: {call.describe()}" + ("" if call.ok else "  [FAILED]") for call in chosen]


def owner_path(agent_name: str, agent_paths: Sequence[str]) -> str | None:
    """The path of the agent named `agent_name` in the tree: its clones (`name/clone-2`) are the agent itself."""
    by_name = {path.rsplit("/", 1)[-1]: path for path in agent_paths}
    name = agent_name
    while name:
        if name in by_name:
            return by_name[name]
        if name in agent_paths:
            return name
        name = name.rpartition("/")[0]
    return None


def conversation_excerpt(transcript: Sequence[tuple[str, str]], max_chars: int = CONVERSATION_CHARS) -> str:
    lines = [f"{role}: {' '.join(text.split())}" for role, text in transcript]
    text = "\n".join(lines)
    return text if len(text) <= max_chars else "[...]\n" + text[-max_chars:]


class ReflectionModel:
    """GEPA's reflection LM: each call is one run of the reflector agent on the optimisation's event loop.

    Called from GEPA's thread. A reflection that fails is recorded in `failures` (GEPA carries on without the
    proposal; the optimisation's stop condition reads `failures` and ends the search).
    """

    def __init__(
        self,
        model: Model | str | None,
        *,
        submit: Submit[RunResult[str]],
        spending: Spending,
        on_event: EventSink | None = None,
        reserve: int = 0,
        instructions: str = REFLECTOR_INSTRUCTIONS,
    ) -> None:
        # One turn, no tools: a reflection is a single model call.
        self.agent: Agent[str] = Agent(
            name="improve-reflector", instructions=instructions, model=model, limits=Limits(max_turns=1)
        )
        self.submit = submit
        self.spending = spending
        self.on_event = on_event
        self.reserve = reserve  # episodes kept for the held-out gate: their estimated cost may not be spent here
        self.calls = 0
        self.failures: list[str] = []
        self.cost_usd = 0.0  # of the reflections alone; `Spending` counts everything

    @property
    def total_cost(self) -> float:
        """The reflections' spend, under the name GEPA reads."""
        return self.cost_usd

    def __call__(self, prompt: str | list[dict[str, Any]]) -> str:
        text = prompt if isinstance(prompt, str) else "\n\n".join(str(part.get("content", "")) for part in prompt)
        try:
            self.spending.check_cost(reserve=self.reserve)
        except SearchStopped as stop:
            self.failures.append(stop.reason)
            raise
        self.calls += 1
        before = self.spending.cost_usd
        result = self.submit(self.agent.run(text, on_event=self.on_event))
        self.cost_usd += self.spending.cost_usd - before
        if not result.completed or not (result.output or "").strip():
            reason = f"the reflection model gave no answer ({result.describe()})"
            self.failures.append(reason)
            raise SearchStopped(reason)
        return str(result.output)


def submitter(loop: asyncio.AbstractEventLoop) -> Callable[[Coroutine[Any, Any, T]], T]:
    """A `Submit` for `loop`: from another thread, run a coroutine there and wait for its result."""

    def submit(coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, loop).result()

    return submit


def records_for(
    sites: Mapping[str, TextSite],
    paths: Sequence[str],
    results: Sequence[TrialResult],
    tasks: Mapping[str, EvalTask],
) -> dict[str, list[dict[str, str]]]:
    """The reflective dataset GEPA hands the reflection model: the records of `results`, for each path."""
    agent_paths = sorted({site.agent_path for site in sites.values()})
    return {
        path: [reflective_record(sites[path], result, tasks.get(result.task_id), agent_paths) for result in results]
        for path in paths
    }
