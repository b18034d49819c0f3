"""Events: what a listener sees of a run.

`run(on_event=...)` calls the sink with every event; `stream()` yields the same
events, plus `TextDelta` pieces of the answer as they arrive, and ends with
`RunFinished`. Leaving a stream early cancels its run.
"""

import asyncio
import contextlib

import pytest

from retinue import Agent, tool
from retinue.errors import ConfigurationError
from retinue.events import (
    Event,
    ModelRequestSent,
    ModelResponseReceived,
    RunFinished,
    RunStarted,
    TextDelta,
    ToolCallFinished,
    ToolCallStarted,
)
from retinue.testing.scripted import ScriptedModel, call

ANSWER = "It is sunny in Paris and Rome today, with a light breeze."


@tool
def get_weather(city: str) -> str:
    """Get the weather."""
    return f"sunny in {city}"


def weather_agent(**options: object) -> Agent[str]:
    model = ScriptedModel([[call("get_weather", city="Paris"), call("get_weather", city="Rome")], ANSWER])
    return Agent("weather", model=model, tools=[get_weather], **options)  # type: ignore[arg-type]


def names(events: list[Event]) -> list[str]:
    return [type(event).__name__ for event in events]


async def test_a_tool_using_run_emits_this_exact_sequence() -> None:
    events: list[Event] = []
    result = await weather_agent().run("Weather?", on_event=events.append)

    assert names(events) == [
        "RunStarted",
        "ModelRequestSent",
        "ModelResponseReceived",
        "ToolCallStarted",
        "ToolCallStarted",
        "ToolCallFinished",
        "ToolCallFinished",
        "ModelRequestSent",
        "ModelResponseReceived",
        "RunFinished",
    ]
    assert all(event.run_id == result.run_id and event.agent == "weather" for event in events)
    started, first_request = events[0], events[1]
    assert isinstance(started, RunStarted)
    assert (started.prompt, started.model_id, started.depth, started.parent_run_id) == (
        "Weather?",
        "scripted:test",
        0,
        None,
    )
    assert isinstance(first_request, ModelRequestSent)
    assert first_request.turn == 1
    finished_calls = [e for e in events if isinstance(e, ToolCallFinished)]
    assert sorted(e.result.content for e in finished_calls) == ["sunny in Paris", "sunny in Rome"]
    assert all(e.duration_seconds >= 0 for e in finished_calls)
    last_response = events[-2]
    assert isinstance(last_response, ModelResponseReceived)
    assert last_response.turn == 2
    assert last_response.response.message.text == ANSWER
    finished = events[-1]
    assert isinstance(finished, RunFinished)
    assert finished.result is result


async def test_run_emits_no_text_deltas() -> None:
    events: list[Event] = []
    await weather_agent().run("Weather?", on_event=events.append)
    assert not any(isinstance(event, TextDelta) for event in events)


async def test_stream_yields_text_deltas_that_join_to_the_answer_and_ends_with_run_finished() -> None:
    events = [event async for event in weather_agent().stream("Weather?")]

    deltas = [event for event in events if isinstance(event, TextDelta)]
    assert len(deltas) > 1, "the answer arrives in pieces"
    assert "".join(delta.text for delta in deltas) == ANSWER
    finished = events[-1]
    assert isinstance(finished, RunFinished)
    assert finished.result.output == ANSWER
    # The pieces arrive between the request and the response of the answering turn.
    kinds = names(events)
    last_request = len(kinds) - 1 - kinds[::-1].index("ModelRequestSent")
    assert set(kinds[last_request + 1 : -2]) == {"TextDelta"}
    assert kinds[-2] == "ModelResponseReceived"


async def test_on_event_receives_the_same_events_as_the_stream() -> None:
    seen: list[Event] = []
    streamed = [event async for event in weather_agent().stream("Weather?", on_event=seen.append)]
    assert seen == streamed
    assert {type(event) for event in seen} >= {RunStarted, ToolCallStarted, ToolCallFinished, TextDelta, RunFinished}


async def test_leaving_a_stream_early_with_aclosing_cancels_the_run() -> None:
    seen: list[Event] = []
    model = ScriptedModel(["never sent"], latency=5)
    agent = Agent("slow", model=model)
    async with contextlib.aclosing(agent.stream("go", on_event=seen.append)) as events:
        async for event in events:
            assert isinstance(event, RunStarted)
            break
    # By the time the stream is closed, the run is over.
    finished = seen[-1]
    assert isinstance(finished, RunFinished)
    assert finished.result.status == "cancelled"


async def test_breaking_out_of_a_stream_cancels_the_run_soon_after() -> None:
    seen: list[Event] = []
    model = ScriptedModel(["never sent"], latency=5)
    async for event in Agent("slow", model=model).stream("go", on_event=seen.append):
        assert isinstance(event, RunStarted)
        break
    for _ in range(100):
        if isinstance(seen[-1], RunFinished):
            break
        await asyncio.sleep(0.01)
    finished = seen[-1]
    assert isinstance(finished, RunFinished)
    assert finished.result.status == "cancelled"


async def test_a_stream_whose_run_cannot_start_fails_instead_of_hanging() -> None:
    # A run that fails before its first turn (here: the model string names no provider) still ends its
    # stream with RunFinished, so a consumer is never left waiting.
    agent = Agent("a", model="no-such-model")

    async def consume() -> list[Event]:
        return [event async for event in agent.stream("go")]

    consumer = asyncio.create_task(consume())
    done, _ = await asyncio.wait({consumer}, timeout=1)
    if not done:
        consumer.cancel()
        with contextlib.suppress(BaseException):
            await consumer
        pytest.fail("stream() hung: no event and no exception within 1 s")
    if consumer.exception() is not None:
        assert isinstance(consumer.exception(), ConfigurationError), "raising the configuration error is fine"
        return
    finished = consumer.result()[-1]
    assert isinstance(finished, RunFinished)
    assert finished.result.status == "error"


async def test_a_listener_that_raises_is_warned_about_and_detached_and_the_run_completes() -> None:
    received: list[Event] = []

    def faulty(event: Event) -> None:
        received.append(event)
        raise ValueError("listener bug")

    with pytest.warns(RuntimeWarning, match="raised ValueError: listener bug"):
        result = await weather_agent().run("Weather?", on_event=faulty)

    assert result.status == "completed", result.error
    assert result.output == ANSWER
    assert names(received) == ["RunStarted"], "after its first failure the listener gets no more events"


async def test_a_listener_that_raises_while_streaming_does_not_stop_the_stream() -> None:
    def faulty(event: Event) -> None:
        raise RuntimeError("listener bug")

    with pytest.warns(RuntimeWarning, match="raised RuntimeError: listener bug"):
        events = [event async for event in weather_agent().stream("Weather?", on_event=faulty)]

    assert isinstance(events[-1], RunFinished)
    assert events[-1].result.output == ANSWER


def test_an_event_built_positionally_equals_the_one_built_by_name_and_its_timestamp_is_named_only() -> None:
    # The loop builds its events positionally (cheaper, for runs that do little else): the order is the declared
    # one, run id and agent first, and a timestamp can never be taken for a field.
    by_name = ModelResponseReceived(
        run_id="r1", agent="weather", turn=2, response=ANSWER, duration_seconds=0.5, purpose="summary", timestamp=1.0
    )  # type: ignore[arg-type]
    in_order = ModelResponseReceived("r1", "weather", 2, ANSWER, 0.5, "summary", timestamp=1.0)  # type: ignore[arg-type]

    assert in_order == by_name
    with pytest.raises(TypeError):
        ModelResponseReceived("r1", "weather", 2, ANSWER, 0.5, "summary", 1.0)  # type: ignore[arg-type,call-arg]
