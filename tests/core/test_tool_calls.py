"""Running tools inside a run.

Whatever goes wrong in a tool call (an unknown name, arguments that are not
JSON or do not validate, an exception, a timeout) comes back to the model as an
error tool result that says how to fix the call, and the run goes on. The calls
of one turn run concurrently; sync tools run in a thread.
"""

import asyncio
import functools
import itertools
import threading
import time
from collections.abc import Callable
from typing import Any

import pydantic
import pytest

from retinue import Agent, RunContext, ToolCall, ToolError, ToolResult, tool
from retinue.messages import ModelRequest, ToolResultsMessage
from retinue.testing.scripted import ScriptedModel, call


def results_sent_in(request: ModelRequest) -> list[ToolResult]:
    """The tool results the model read in `request` (they are its last message)."""
    last = request.messages[-1]
    assert isinstance(last, ToolResultsMessage)
    return last.results


async def first_tool_result(agent: Agent[Any], *script_start: Any) -> ToolResult:
    """Run `agent` with a script of `script_start` then a final answer; return the first tool result."""
    model = ScriptedModel([*script_start, "done"])
    result = await agent.override(model=model).run("go")
    assert result.status == "completed", result.error
    assert result.output == "done", "the run goes on after a failed tool call"
    return results_sent_in(model.requests[1])[0]


@tool
def get_weather(city: str, days: int = 1) -> str:
    """Get the weather.

    Args:
        city: The city.
        days: How many days.
    """
    return f"sunny in {city} for {days} day(s)"


# --- the happy path ----------------------------------------------------------------------------


async def test_the_model_reads_the_tool_result_and_answers() -> None:
    model = ScriptedModel([call("get_weather", city="Paris"), "It is sunny in Paris."])
    result = await Agent("a", model=model, tools=[get_weather]).run("Weather in Paris?")

    assert result.status == "completed"
    assert result.output == "It is sunny in Paris."
    assert result.turns == 2
    (tool_result,) = results_sent_in(model.requests[1])
    assert tool_result == ToolResult(
        tool_call_id=model.requests[1].messages[1].tool_calls[0].id,  # type: ignore[union-attr]
        name="get_weather",
        content="sunny in Paris for 1 day(s)",
        is_error=False,
    )
    assert [schema.name for schema in model.requests[0].tools] == ["get_weather"]


async def test_run_context_is_injected_with_the_callers_deps() -> None:
    seen: list[RunContext] = []

    @tool
    async def whoami(ctx: RunContext) -> str:
        seen.append(ctx)
        return f"{ctx.agent.name} for user {ctx.deps['user']}"

    model = ScriptedModel([call("whoami"), "ok"])
    agent = Agent("helper", model=model, tools=[whoami])
    result = await agent.run("who?", deps={"user": 42})
    assert seen[0].run_id == result.run_id
    assert seen[0].agent is agent
    assert seen[0].messages is result.messages, "a tool can read the conversation so far"
    assert results_sent_in(model.requests[1])[0].content == "helper for user 42"


# --- every failure goes back to the model ------------------------------------------------------


async def test_an_unknown_tool_is_reported_with_the_available_names() -> None:
    result = await first_tool_result(Agent("a", tools=[get_weather]), call("get_wether", city="Paris"))
    assert result.is_error
    assert result.content == "Error: there is no tool named 'get_wether'. Available tools: get_weather."


async def test_arguments_that_are_not_json_are_reported() -> None:
    broken = ToolCall(id="c1", name="get_weather", arguments={}, invalid_arguments='{"city": "Par')
    result = await first_tool_result(Agent("a", tools=[get_weather]), broken)
    assert result.is_error
    assert "not valid JSON" in result.content
    assert '{"city": "Par' in result.content
    assert "Send a single JSON object" in result.content


async def test_arguments_that_fail_validation_are_reported_with_the_expected_parameters() -> None:
    result = await first_tool_result(Agent("a", tools=[get_weather]), call("get_weather", days="many"))
    assert result.is_error
    assert result.content.startswith("Error: invalid arguments for 'get_weather':")
    assert "city: Field required" in result.content
    assert "days: Input should be a valid integer" in result.content
    # Optional parameters are marked with '?'.
    assert result.content.endswith("Parameters: city, days?.")


async def test_an_exception_in_a_tool_is_reported_with_its_type_and_message() -> None:
    @tool
    def divide(a: float, b: float) -> float:
        return a / b

    result = await first_tool_result(Agent("a", tools=[divide]), call("divide", a=1, b=0))
    assert result.is_error
    assert result.content == "Error: 'divide' failed with ZeroDivisionError: float division by zero"


async def test_a_tool_error_is_passed_to_the_model_as_written() -> None:
    @tool
    def book(date: str) -> str:
        raise ToolError("dates must look like 2026-12-01; you sent 'next friday'")

    result = await first_tool_result(Agent("a", tools=[book]), call("book", date="next friday"))
    assert result.is_error
    assert result.content == "Error: dates must look like 2026-12-01; you sent 'next friday'"


async def test_a_tool_that_takes_too_long_is_stopped_at_its_own_timeout() -> None:
    @tool(timeout=0.05)
    async def slow() -> str:
        await asyncio.sleep(5)
        return "never"

    started = time.perf_counter()
    result = await first_tool_result(Agent("a", tools=[slow], tool_timeout=10), call("slow"))
    assert time.perf_counter() - started < 2
    assert result.is_error
    assert result.content == "Error: 'slow' did not finish within 0.05 seconds and was stopped."


async def test_the_agent_tool_timeout_applies_to_tools_without_their_own() -> None:
    @tool
    async def slow() -> str:
        await asyncio.sleep(5)
        return "never"

    result = await first_tool_result(Agent("a", tools=[slow], tool_timeout=0.05), call("slow"))
    assert result.content == "Error: 'slow' did not finish within 0.05 seconds and was stopped."


async def test_a_tools_own_timeout_wins_over_the_agent_timeout() -> None:
    @tool(timeout=2)
    async def slowish() -> str:
        await asyncio.sleep(0.1)
        return "finished"

    result = await first_tool_result(Agent("a", tools=[slowish], tool_timeout=0.01), call("slowish"))
    assert not result.is_error
    assert result.content == "finished"


async def test_a_timeout_raised_by_the_tool_itself_is_reported_like_any_exception() -> None:
    # A TimeoutError from the tool's own code is not the tool's timeout (none is configured here): it is an
    # error result like any other, and the run goes on.
    @tool
    async def fetch(url: str) -> str:
        raise TimeoutError("the server did not answer")

    result = await first_tool_result(Agent("a", tools=[fetch]), call("fetch", url="https://example.com"))
    assert result.is_error
    assert "TimeoutError" in result.content
    assert "the server did not answer" in result.content


@pytest.mark.filterwarnings("ignore:coroutine .* was never awaited:RuntimeWarning")
async def test_a_sync_wrapper_around_an_async_tool_is_awaited() -> None:
    # A sync decorator around an async function returns a coroutine; whichever way the tool runs, it is
    # awaited, so the model reads the result and never '"<coroutine object ...>"'.
    def logged(function: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(function)
        def wrapper(**kwargs: Any) -> Any:
            return function(**kwargs)

        return wrapper

    @tool
    @logged
    async def fetch(url: str) -> str:
        await asyncio.sleep(0)
        return f"fetched {url}"

    result = await first_tool_result(Agent("a", tools=[fetch]), call("fetch", url="https://example.com"))
    assert result.content == "fetched https://example.com"


# --- concurrency -------------------------------------------------------------------------------


def timed_tools(spans: dict[str, tuple[float, float]]) -> list[Any]:
    @tool
    async def wait(label: str) -> str:
        start = time.perf_counter()
        await asyncio.sleep(0.2)
        spans[label] = (start, time.perf_counter())
        return label

    return [wait]


async def test_the_tool_calls_of_one_turn_run_concurrently() -> None:
    spans: dict[str, tuple[float, float]] = {}
    calls = [call("wait", label=label) for label in "abc"]
    model = ScriptedModel([calls, "done"])
    started = time.perf_counter()
    await Agent("a", model=model, tools=timed_tools(spans)).run("go")
    elapsed = time.perf_counter() - started

    starts = [span[0] for span in spans.values()]
    ends = [span[1] for span in spans.values()]
    assert max(starts) < min(ends), "every call started before any finished"
    assert elapsed < 0.55, "three 0.2 s calls one after another would take 0.6 s"
    # Results come back in call order, whatever order they finished in.
    assert [r.content for r in results_sent_in(model.requests[1])] == ["a", "b", "c"]


async def test_max_tool_concurrency_one_runs_them_one_after_another() -> None:
    spans: dict[str, tuple[float, float]] = {}
    calls = [call("wait", label=label) for label in "abc"]
    model = ScriptedModel([calls, "done"])
    await Agent("a", model=model, tools=timed_tools(spans), max_tool_concurrency=1).run("go")

    ordered = sorted(spans.values())
    assert len(ordered) == 3
    for earlier, later in itertools.pairwise(ordered):
        assert later[0] >= earlier[1], "no two calls overlapped"


async def test_a_sync_tool_runs_in_a_thread_and_does_not_block_async_tools() -> None:
    spans: dict[str, tuple[float, float]] = {}
    threads: list[int] = []

    @tool
    def blocking() -> str:
        threads.append(threading.get_ident())
        start = time.perf_counter()
        time.sleep(0.3)
        spans["blocking"] = (start, time.perf_counter())
        return "blocked"

    @tool
    async def quick() -> str:
        start = time.perf_counter()
        await asyncio.sleep(0.05)
        spans["quick"] = (start, time.perf_counter())
        return "quick"

    model = ScriptedModel([[call("blocking"), call("quick")], "done"])
    await Agent("a", model=model, tools=[blocking, quick]).run("go")
    assert threads[0] != threading.get_ident()
    assert spans["quick"][1] < spans["blocking"][1], "the async tool finished while the sync one was still sleeping"


async def test_run_in_thread_false_runs_a_sync_tool_on_the_event_loop() -> None:
    threads: list[int] = []

    @tool(run_in_thread=False)
    def cheap() -> str:
        threads.append(threading.get_ident())
        return "cheap"

    await Agent("a", model=ScriptedModel([call("cheap"), "done"]), tools=[cheap]).run("go")
    assert threads == [threading.get_ident()]


# --- what the model reads ----------------------------------------------------------------------


async def test_long_outputs_are_truncated_with_a_note_saying_how_much_was_cut() -> None:
    @tool
    def dump() -> str:
        return "H" * 500 + "T" * 500

    result = await first_tool_result(Agent("a", tools=[dump], max_tool_output_chars=100), call("dump"))
    assert not result.is_error
    assert "[... 900 of 1000 characters cut here to fit the output limit ...]" in result.content
    head, _, rest = result.content.partition("\n[...")
    assert head == "H" * 80, "the head of the output is kept"
    assert rest.endswith("...]\n" + "T" * 20), "and so is the tail"


async def test_a_tools_own_output_limit_wins_over_the_agents() -> None:
    @tool(max_output_chars=10)
    def dump() -> str:
        return "x" * 50

    result = await first_tool_result(Agent("a", tools=[dump], max_tool_output_chars=1000), call("dump"))
    assert "40 of 50 characters cut" in result.content


async def test_short_outputs_are_not_touched() -> None:
    @tool
    def small() -> str:
        return "x" * 100

    result = await first_tool_result(Agent("a", tools=[small], max_tool_output_chars=100), call("small"))
    assert result.content == "x" * 100


class Flight(pydantic.BaseModel):
    number: str
    seats: int


class Opaque:
    def __str__(self) -> str:
        return "<opaque thing>"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"temp": 21, "unit": "C"}, '{"temp":21,"unit":"C"}'),
        ([1, 2, 3], "[1,2,3]"),
        (Flight(number="AF1", seats=3), '{"number":"AF1","seats":3}'),
        (None, "Done (the tool returned no output)."),
        (42, "42"),
        (Opaque(), '"<opaque thing>"'),
    ],
    ids=["dict", "list", "pydantic-model", "none", "int", "unserialisable"],
)
async def test_return_values_that_are_not_strings_are_rendered_for_the_model(value: Any, expected: str) -> None:
    @tool
    def produce() -> Any:
        return value

    result = await first_tool_result(Agent("a", tools=[produce]), call("produce"))
    assert not result.is_error
    assert result.content == expected


async def test_a_call_that_keeps_failing_word_for_word_is_called_out() -> None:
    @tool
    def find(name: str) -> str:
        """Find a thing."""
        raise ToolError(f"nothing is called {name}")

    model = ScriptedModel([call("find", name="x"), call("find", name="x"), call("find", name="y"), "gave up"])
    await Agent("a", model=model, tools=[find]).run("go")

    first, second, other = (model.requests[i].messages[-1].results[0].content for i in (1, 2, 3))  # type: ignore[union-attr]
    assert "failed" not in first
    assert "This exact call has now failed 2 times" in second
    assert "now failed" not in other  # different arguments, a new call


class Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no text for you")


async def test_bytes_that_are_not_utf8_come_back_as_an_error_result_and_the_run_goes_on() -> None:
    @tool
    def read_blob() -> bytes:
        """Read a binary blob."""
        return b"\xff\xfe\x00binary"

    result = await first_tool_result(Agent("a", tools=[read_blob]), call("read_blob"))

    assert result.is_error
    assert "'read_blob' ran, but its result cannot be shown" in result.content
    assert "not UTF-8" in result.content


async def test_utf8_bytes_are_read_as_their_text() -> None:
    @tool
    def read_note() -> bytes:
        """Read a note."""
        return "café".encode()

    result = await first_tool_result(Agent("a", tools=[read_note]), call("read_note"))

    assert not result.is_error
    assert result.content == "café"


async def test_a_value_whose_str_raises_comes_back_as_an_error_result_and_the_run_goes_on() -> None:
    @tool
    def fetch() -> Any:
        """Fetch something."""
        return Unprintable()

    result = await first_tool_result(Agent("a", tools=[fetch]), call("fetch"))

    assert result.is_error
    assert "the tool's return value (a Unprintable) could not be turned into text" in result.content
    assert "RuntimeError: no text for you" in result.content, "the model is told what went wrong"
