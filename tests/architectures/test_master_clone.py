"""Master-Clone: an agent hands sub-tasks to copies of itself."""

from __future__ import annotations

import pytest

from retinue import Agent, Limits, tool
from retinue.architectures import clone_tool
from retinue.errors import ConfigurationError
from retinue.events import Event, RunFinished, RunStarted, SubAgentStarted
from retinue.messages import AssistantMessage, ModelRequest, ToolResultsMessage, UserMessage
from retinue.testing.scripted import ScriptedModel, call


def tool_results(request: ModelRequest) -> list[str]:
    return [r.content for m in request.messages if isinstance(m, ToolResultsMessage) for r in m.results]


def first_user_text(request: ModelRequest) -> str:
    return next(m.content for m in request.messages if isinstance(m, UserMessage))


def is_clone_request(request: ModelRequest) -> bool:
    return first_user_text(request).startswith(("Find", "Summary"))


@tool
def get_weather(city: str) -> str:
    """Weather for a city."""
    return f"{city}: 12C, light rain"


def travel_master(script: object, latency: float = 0.0, **clone_options: object) -> Agent:
    return Agent(
        name="master",
        instructions="You plan trips.",
        model=ScriptedModel(script, latency=latency),  # type: ignore[arg-type]
        tools=[get_weather, clone_tool(**clone_options)],  # type: ignore[arg-type]
    )


async def test_clones_share_the_masters_instructions_and_tools_and_run_concurrently() -> None:
    seen: list[ModelRequest] = []

    def script(request: ModelRequest) -> object:
        seen.append(request)
        if is_clone_request(request):
            return f"Result for: {first_user_text(request)}"
        if not tool_results(request):
            return [call("spawn_clone", task="Find weather in Paris"), call("spawn_clone", task="Find hotels")]
        return "Combined: " + " | ".join(tool_results(request))

    master = travel_master(script, latency=0.02)
    events: list[Event] = []

    result = await master.run("Plan Paris.", on_event=events.append)

    assert result.output == "Combined: Result for: Find weather in Paris | Result for: Find hotels"
    clone_requests = [r for r in seen if is_clone_request(r)]
    assert len(clone_requests) == 2
    for request in clone_requests:
        assert request.instructions == seen[0].instructions
        assert request.tools == seen[0].tools
    child_ids = {e.child_run_id for e in events if isinstance(e, SubAgentStarted)}
    starts = [e.timestamp for e in events if isinstance(e, RunStarted) and e.run_id in child_ids]
    ends = [e.timestamp for e in events if isinstance(e, RunFinished) and e.run_id in child_ids]
    assert max(starts) < min(ends)


async def test_a_task_only_clone_sees_nothing_but_its_task() -> None:
    seen: list[ModelRequest] = []

    def script(request: ModelRequest) -> object:
        seen.append(request)
        if is_clone_request(request):
            return "done"
        if not tool_results(request):
            return call("spawn_clone", task="Find a hotel")
        return "ok"

    await travel_master(script, inherit="task").run("Secret detail: I hate noise. Plan Paris.")

    [clone_request] = [r for r in seen if is_clone_request(r)]
    assert [m.content for m in clone_request.messages if isinstance(m, UserMessage)] == ["Find a hotel"]


async def test_a_forked_clone_starts_with_exactly_the_masters_conversation() -> None:
    seen: list[ModelRequest] = []

    def script(request: ModelRequest) -> object:
        seen.append(request)
        if first_user_text(request) == "Plan Paris." and request.messages[-1] == UserMessage("Find a hotel"):
            return "clone done"
        if len(tool_results(request)) == 0:
            return call("get_weather", city="Paris")
        if len(tool_results(request)) == 1:
            return call("spawn_clone", task="Find a hotel")
        return "ok"

    await travel_master(script, inherit="full").run("Plan Paris.")

    master_second, clone_first = seen[1], seen[2]
    # The clone's request repeats the master's previous request byte for byte, then adds its task:
    # the prompt-cache-friendly fork.
    assert clone_first.messages[: len(master_second.messages)] == master_second.messages
    assert clone_first.messages[len(master_second.messages) :] == [UserMessage("Find a hotel")]
    assert clone_first.instructions == master_second.instructions
    assert clone_first.tools == master_second.tools


async def test_clones_spawned_in_one_turn_share_one_summary_of_the_masters_conversation() -> None:
    seen: list[ModelRequest] = []

    def script(request: ModelRequest) -> object:
        seen.append(request)
        if request.instructions.startswith("Summarise"):
            return "The user wants a quiet trip to Paris."
        if first_user_text(request).startswith("Summary"):
            return "clone done"
        if not tool_results(request):
            return [call("spawn_clone", task="Find a hotel"), call("spawn_clone", task="Find a museum")]
        return "ok"

    await travel_master(script, inherit="summary").run("Quiet trip to Paris please.")

    summary_calls = [r for r in seen if r.instructions.startswith("Summarise")]
    assert len(summary_calls) == 1
    assert "Quiet trip to Paris please." in first_user_text(summary_calls[0])
    clone_prompts = sorted(first_user_text(r) for r in seen if first_user_text(r).startswith("Summary"))
    assert clone_prompts == [
        "Summary of the conversation so far:\nThe user wants a quiet trip to Paris.\n\nYour task: Find a hotel",
        "Summary of the conversation so far:\nThe user wants a quiet trip to Paris.\n\nYour task: Find a museum",
    ]


async def test_a_clone_that_hits_its_limit_is_reported_to_the_master() -> None:
    def script(request: ModelRequest) -> object:
        if is_clone_request(request):
            return call("get_weather", city="Paris")  # never answers
        if not tool_results(request):
            return call("spawn_clone", task="Find weather")
        return "gave up on weather"

    master = travel_master(script, limits=Limits(max_turns=2))

    result = await master.run("Plan.")

    assert result.completed
    [report] = next(m for m in result.messages if isinstance(m, ToolResultsMessage)).results
    assert report.is_error
    assert "max_turns of agent 'master/clone-1' reached" in report.content


async def test_clones_spend_from_the_masters_budget() -> None:
    def script(request: ModelRequest) -> object:
        if is_clone_request(request):
            return "x" * 400  # about 100 output tokens each
        if not tool_results(request):
            return [call("spawn_clone", task=f"Find {n}") for n in range(3)]
        return "final"

    master = travel_master(script)

    result = await master.run("Plan.", limits=Limits(max_output_tokens=250))

    assert result.status == "limit"
    assert result.limit is not None and result.limit.limit == "max_output_tokens"
    assert result.limit.agent == "master"
    assert result.total_usage.output_tokens >= 300


async def test_clones_cannot_nest_deeper_than_allowed() -> None:
    def script(request: ModelRequest) -> object:
        if is_clone_request(request) and not tool_results(request):
            return call("spawn_clone", task="Find deeper")
        if is_clone_request(request):
            return "clone: " + tool_results(request)[-1]
        if not tool_results(request):
            return call("spawn_clone", task="Find something")
        return tool_results(request)[-1]

    result = await travel_master(script, max_depth=1).run("Plan.")

    assert result.output is not None
    assert "clones may nest only 1 deep" in result.output


async def test_the_number_of_clones_is_capped() -> None:
    def script(request: ModelRequest) -> object:
        if is_clone_request(request):
            return "done"
        if not tool_results(request):
            return [call("spawn_clone", task=f"Find {n}") for n in range(3)]
        return "\n".join(tool_results(request))

    result = await travel_master(script, max_clones=2).run("Plan.")

    assert result.output is not None
    assert result.output.count("done") == 2
    assert "already spawned 2 clones" in result.output


def test_bad_clone_settings_are_refused() -> None:
    with pytest.raises(ConfigurationError):
        clone_tool(inherit="everything")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        clone_tool(max_depth=0)


def test_the_forked_history_drops_the_pending_spawn_call() -> None:
    from retinue.architectures.clones import _forkable_history

    pending = AssistantMessage(tool_calls=[call("spawn_clone", task="x")])
    assert _forkable_history([UserMessage("hi"), pending]) == [UserMessage("hi")]


async def test_the_summary_call_is_charged_and_announced_like_any_model_call() -> None:
    from retinue.events import ModelRequestSent
    from retinue.observe import UsageByAgent

    def script(request: ModelRequest) -> object:
        if request.instructions.startswith("Summarise"):
            return "A quiet trip."
        if first_user_text(request).startswith("Summary"):
            return "clone done"
        if not tool_results(request):
            return call("spawn_clone", task="Find a hotel")
        return "ok"

    meter = UsageByAgent()
    events: list[Event] = []

    result = await travel_master(script, inherit="summary").run(
        "Plan.", on_event=lambda e: (meter(e), events.append(e))
    )

    assert [e.purpose for e in events if isinstance(e, ModelRequestSent)].count("summary") == 1
    assert meter.total().requests == result.total_usage.requests == 4  # master x2, summary, clone
