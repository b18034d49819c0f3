"""Limits on a tree of agents: how many sub-runs, and how deep.

An agent that hands work to copies of itself forks without end unless
something stops it: one fanning out three ways used to make some 17 000
sub-runs in five seconds. Every run tree is now capped by default. A sub-run
deeper than `max_depth` ends at once, before any model call, with that limit
for its caller to read, and the rest of the tree goes on. Past `max_sub_runs`
sub-runs the whole tree has spent its budget, as it would run out of tokens:
every run in it stops before its next model call.
"""

from __future__ import annotations

from typing import Any

import pytest

from retinue import Agent, Limits, ModelRequest, ToolResultsMessage, tool
from retinue.architectures import run_sub_agent
from retinue.errors import ConfigurationError
from retinue.events import Event, RunFinished
from retinue.messages import ToolCall
from retinue.run_context import RunContext
from retinue.testing.scripted import ScriptedModel, call


@tool
async def delegate(context: RunContext, call: ToolCall, task: str) -> str:
    """Hand a task to a copy of yourself."""
    result = await run_sub_agent(context.agent, task, context, call, kind="sub-agent")
    return str(result.output) if result.completed else f"Not done: {result.describe()}"


def delegating(fan_out: int) -> ScriptedModel:
    """A model that, on every task, delegates `fan_out` parts to copies of itself, then answers."""

    def reply(request: ModelRequest) -> str | list[ToolCall]:
        if isinstance(request.messages[-1], ToolResultsMessage):
            return "done"
        return [call("delegate", task=f"part {part}") for part in range(1, fan_out + 1)]

    return ScriptedModel(reply)


def recursive_agent(model: ScriptedModel, **limits: Any) -> Agent[str]:
    return Agent("root", model=model, tools=[delegate], limits=Limits(**limits))


def finished_runs(events: list[Event]) -> list[RunFinished]:
    return [event for event in events if isinstance(event, RunFinished)]


async def test_a_tree_forking_three_ways_stops_at_200_sub_runs_by_default() -> None:
    model = delegating(fan_out=3)
    events: list[Event] = []

    # The wall limit is only a safety net: before the cap, this run forked until it ran out of time.
    result = await recursive_agent(model, max_wall_seconds=10).run("go", on_event=events.append)

    assert result.status == "limit"
    assert result.limit is not None
    assert (result.limit.limit, result.limit.agent, result.limit.value) == ("max_sub_runs", "root", 200)
    assert result.limit.used > 200
    assert "max_sub_runs of agent 'root' reached" in result.describe()
    assert len(model.requests) == 201, "the root and the 200 sub-runs the cap allows made one call each, no more"
    runs = finished_runs(events)
    assert len(runs) == result.limit.used + 1, "every sub-run that was started has ended"
    assert {run.result.stop_reason for run in runs} == {"max_sub_runs"}, "the whole tree stopped"


async def test_a_sub_run_too_deep_ends_before_calling_the_model_and_its_caller_carries_on() -> None:
    model = delegating(fan_out=1)
    events: list[Event] = []

    result = await recursive_agent(model, max_depth=3).run("go", on_event=events.append)

    assert result.completed and result.output == "done", "the depth limit stops one branch, not the tree"
    too_deep = [run.result for run in finished_runs(events) if run.result.status == "limit"]
    assert len(too_deep) == 1
    limit = too_deep[0].limit
    assert limit is not None
    assert (limit.limit, limit.agent, limit.value, limit.used) == ("max_depth", "root", 3, 4)
    assert too_deep[0].turns == 0 and too_deep[0].usage.requests == 0
    assert len(model.requests) == 4 * 2, "the root and three levels below it each delegated once, then answered"
    results_read = [r.messages[-1] for r in model.requests if isinstance(r.messages[-1], ToolResultsMessage)]
    deepest_caller_read = results_read[0].results[0].content
    assert deepest_caller_read.startswith(
        "Not done: root: stopped: max_depth of agent 'root' reached (a sub-agent 4 levels below it, limit 3)"
    )


async def test_by_default_a_chain_of_sub_agents_goes_eight_levels_deep() -> None:
    events: list[Event] = []

    result = await recursive_agent(delegating(fan_out=1)).run("go", on_event=events.append)

    assert result.completed
    depth_limits = [run.result.limit for run in finished_runs(events) if run.result.limit is not None]
    assert [(limit.limit, limit.used) for limit in depth_limits] == [("max_depth", 9)]


async def test_a_sub_agent_with_its_own_sub_run_limit_bounds_its_own_subtree() -> None:
    worker_model = delegating(fan_out=2)
    worker = Agent("worker", model=worker_model, tools=[delegate], limits=Limits(max_sub_runs=2))

    @tool
    async def ask_worker(context: RunContext, call: ToolCall, task: str) -> str:
        """Ask the worker."""
        result = await run_sub_agent(worker, task, context, call, kind="specialist")
        return result.describe()

    lead_model = ScriptedModel([call("ask_worker", task="build it"), "the worker stopped"])
    lead = Agent("lead", model=lead_model, tools=[ask_worker])
    result = await lead.run("go")

    assert result.completed, "the lead's own cap (200) was not reached"
    worker_report = result.messages[2]
    assert isinstance(worker_report, ToolResultsMessage)
    assert worker_report.results[0].content.startswith("worker: stopped: max_sub_runs of agent 'worker' reached")
    assert "limit 2)" in worker_report.results[0].content


async def test_with_no_sub_runs_allowed_an_agent_works_alone() -> None:
    result = await recursive_agent(delegating(fan_out=1), max_sub_runs=0).run("go")

    assert result.status == "limit"
    assert result.limit is not None
    assert (result.limit.limit, result.limit.value, result.limit.used) == ("max_sub_runs", 0, 1)


@pytest.mark.parametrize(
    "limits",
    [{"max_depth": -1}, {"max_depth": 2.5}, {"max_depth": True}, {"max_sub_runs": -1}, {"max_sub_runs": "200"}],
)
def test_a_tree_limit_that_is_not_a_whole_number_of_at_least_zero_is_refused(limits: dict[str, Any]) -> None:
    (name,) = limits
    with pytest.raises(ConfigurationError, match=f"Limits\\({name}=.*give a whole number of at least 0"):
        Limits(**limits)
