"""Limits: when a run that has not answered is stopped.

Limits are checked before every model call (and wall time is a deadline over
the whole run). A stopped run has status "limit", `result.limit` names the
limit, and the conversation and usage so far are kept.
"""

import asyncio
from typing import Any

import pytest

from retinue import Agent, AssistantMessage, Limits, ModelRequest, ModelResponse, ToolResultsMessage, Usage, tool
from retinue.errors import ConfigurationError
from retinue.events import Event, ModelResponseReceived
from retinue.messages import ToolCall
from retinue.models.base import TextSink
from retinue.models.openai import OpenAIModel
from retinue.models.pricing import Price
from retinue.testing.scripted import ScriptedModel, call


@tool
def step(n: int) -> str:
    """Take a step."""
    return f"step {n} taken"


def never_answers(request: ModelRequest) -> ToolCall:
    """A script that keeps calling tools, so only a limit can stop the run."""
    return call("step", n=len(request.messages))


def looping_agent(**limits: Any) -> Agent[str]:
    return Agent("looper", model=ScriptedModel(never_answers), tools=[step], limits=Limits(**limits))


async def test_max_turns_stops_the_run_after_that_many_model_calls() -> None:
    result = await looping_agent(max_turns=3).run("go")

    assert result.status == "limit"
    assert result.stop_reason == "max_turns"
    assert result.limit is not None
    assert (result.limit.limit, result.limit.agent, result.limit.value, result.limit.used) == (
        "max_turns",
        "looper",
        3,
        3,
    )
    assert result.turns == 3
    assert result.output is None
    assert len(result.messages) == 7, "the prompt and three (tool call, tool result) pairs"
    assert result.usage.requests == 3
    assert result.describe().startswith("looper: stopped: max_turns of agent 'looper' reached (3 used, limit 3)")


async def test_the_default_turn_limit_is_fifty() -> None:
    result = await Agent("a", model=ScriptedModel(never_answers), tools=[step]).run("go")
    assert result.stop_reason == "max_turns"
    assert result.turns == 50


def per_call(events: list[Event], field: str) -> list[int]:
    return [getattr(e.response.usage, field) for e in events if isinstance(e, ModelResponseReceived)]


async def test_max_input_tokens_stops_the_run_once_reached() -> None:
    events: list[Event] = []
    result = await looping_agent(max_input_tokens=60).run("go", on_event=events.append)

    assert result.status == "limit"
    assert result.limit is not None
    assert result.limit.limit == "max_input_tokens"
    assert result.limit.used == result.usage.input_tokens
    assert result.usage.requests == result.turns >= 2
    calls = per_call(events, "input_tokens")
    assert sum(calls[:-1]) < 60 <= sum(calls), "it stopped at the first check that found the limit reached"


async def test_max_output_tokens_stops_the_run_once_reached() -> None:
    events: list[Event] = []
    result = await looping_agent(max_output_tokens=10).run("go", on_event=events.append)

    assert result.status == "limit"
    assert result.limit is not None
    assert result.limit.limit == "max_output_tokens"
    assert result.limit.used == result.usage.output_tokens
    assert result.usage.requests == result.turns >= 2
    calls = per_call(events, "output_tokens")
    assert sum(calls[:-1]) < 10 <= sum(calls)


async def test_max_cost_usd_stops_the_run_once_reached() -> None:
    agent = Agent(
        "a",
        model=ScriptedModel(never_answers, cost_per_call=0.01),
        tools=[step],
        limits=Limits(max_cost_usd=0.025),
    )
    result = await agent.run("go")

    assert result.status == "limit"
    assert result.limit is not None
    assert result.limit.limit == "max_cost_usd"
    assert result.turns == 3, "0.01 and 0.02 are under the limit; 0.03 is not"
    assert result.usage.cost_usd is not None
    assert abs(result.usage.cost_usd - 0.03) < 1e-9
    assert abs(result.limit.used - 0.03) < 1e-9


async def test_max_wall_seconds_stops_a_slow_model() -> None:
    agent = Agent("a", model=ScriptedModel(["too late"], latency=5), limits=Limits(max_wall_seconds=0.1))
    result = await agent.run("go")

    assert result.status == "limit"
    assert result.limit is not None
    assert result.limit.limit == "max_wall_seconds"
    assert result.limit.value == 0.1
    assert 0.09 < result.limit.used < 2
    assert result.duration_seconds < 2
    assert result.messages[0].content == "go"  # type: ignore[union-attr]
    assert result.usage.requests == 0, "the call that was cut short is not charged"


async def test_max_wall_seconds_stops_a_slow_tool() -> None:
    @tool
    async def crawl() -> str:
        await asyncio.sleep(5)
        return "never"

    agent = Agent("a", model=ScriptedModel([call("crawl"), "done"]), tools=[crawl], limits=Limits(max_wall_seconds=0.1))
    result = await agent.run("go")

    assert result.status == "limit"
    assert result.limit is not None
    assert result.limit.limit == "max_wall_seconds"
    assert result.duration_seconds < 2
    assert result.usage.requests == 1


async def test_a_run_stopped_during_a_tool_call_leaves_a_history_that_can_be_continued() -> None:
    # Providers reject a history in which a tool call has no result, so a call cut off by a limit gets one
    # saying so, and `run(history=result.messages)` can continue the conversation.
    @tool
    async def crawl() -> str:
        await asyncio.sleep(5)
        return "never"

    agent = Agent("a", model=ScriptedModel([call("crawl"), "done"]), tools=[crawl], limits=Limits(max_wall_seconds=0.1))
    result = await agent.run("go")
    assert result.status == "limit"

    call_ids = [c.id for m in result.messages if isinstance(m, AssistantMessage) for c in m.tool_calls]
    result_ids = [r.tool_call_id for m in result.messages if isinstance(m, ToolResultsMessage) for r in m.results]
    assert call_ids == result_ids, "every tool call in the history has a result"


async def test_limits_given_to_run_replace_the_agents_own() -> None:
    agent = looping_agent(max_turns=10)
    result = await agent.run("go", limits=Limits(max_turns=1))
    assert result.stop_reason == "max_turns"
    assert result.turns == 1


class UnpricedModel:
    """A model the price table does not know, which cannot price its own calls."""

    model_id = "openai:some-unpriced-model"

    def __init__(self) -> None:
        self.calls = 0

    async def request(self, request: ModelRequest, on_text: TextSink | None = None) -> ModelResponse:
        self.calls += 1
        usage = Usage(input_tokens=10, output_tokens=5, requests=1, cost_usd=None)
        return ModelResponse(message=AssistantMessage(text="hi"), usage=usage, model=self.model_id)


async def test_a_dollar_limit_on_an_unpriced_model_is_a_configuration_error() -> None:
    model = UnpricedModel()
    result = await Agent("a", model=model, limits=Limits(max_cost_usd=1.0)).run("go")

    assert result.status == "error"
    assert isinstance(result.error, ConfigurationError)
    message = str(result.error)
    assert "dollar limit" in message
    assert "'openai:some-unpriced-model' is unknown" in message
    assert "price=Price(" in message and "token limit" in message, "it says what to do"
    assert model.calls == 0, "the model is not called at all"


async def test_an_unpriced_model_without_a_dollar_limit_runs_and_reports_an_unknown_cost() -> None:
    result = await Agent("a", model=UnpricedModel()).run("go")
    assert result.status == "completed"
    assert result.usage.cost_usd is None
    assert "unknown cost" in result.describe()


class CannedOpenAIModel(OpenAIModel):
    """An OpenAIModel that answers without a network call."""

    async def request(self, request: ModelRequest, on_text: TextSink | None = None) -> ModelResponse:
        usage = Usage(input_tokens=10, output_tokens=5, requests=1, cost_usd=0.0001)
        return ModelResponse(message=AssistantMessage(text="hi"), usage=usage, model=self.model_id)


async def test_a_dollar_limit_works_with_a_model_given_its_own_price() -> None:
    # A dollar limit needs a price: a model given its own (the fix the error message for unpriced models
    # recommends) is priced by it, not by the table.
    model = CannedOpenAIModel("my-finetune", api_key="unused", price=Price(input=1.0, output=2.0))
    result = await Agent("a", model=model, limits=Limits(max_cost_usd=1.0)).run("go")
    assert result.status == "completed", result.error
    assert result.output == "hi"


async def test_the_last_turn_can_be_kept_for_an_answer() -> None:
    model = ScriptedModel([call("step", n=1), call("step", n=2), "What I found: steps 1 and 2."])
    agent = Agent("a", model=model, tools=[step], limits=Limits(max_turns=3, answer_on_last_turn=True))

    result = await agent.run("go")

    assert result.completed and result.output == "What I found: steps 1 and 2."
    assert [r.settings.tool_choice for r in model.requests] == [None, None, "none"]
    assert model.requests[2].tools == model.requests[0].tools  # the cached prefix is kept


@pytest.mark.parametrize(
    "limits",
    [
        {"max_turns": 0},
        {"max_turns": -1},
        {"max_input_tokens": 0},
        {"max_cost_usd": float("nan")},
        {"max_cost_usd": float("inf")},
        {"max_cost_usd": -0.5},
        {"max_wall_seconds": float("nan")},
        {"max_wall_seconds": 0},
    ],
)
def test_a_limit_that_could_never_stop_a_run_properly_is_refused_when_limits_are_made(limits: dict[str, Any]) -> None:
    (name,) = limits
    with pytest.raises(ConfigurationError, match=f"Limits\\({name}=.*or None for no limit"):
        Limits(**limits)


def test_ordinary_limits_and_no_limit_at_all_are_accepted() -> None:
    assert Limits(max_turns=1, max_cost_usd=0.01, max_wall_seconds=2).max_turns == 1
    assert Limits(max_turns=None).max_turns is None
