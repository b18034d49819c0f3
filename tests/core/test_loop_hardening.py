"""The loop under failures that escape a tool's ordinary error handling.

A BaseException from a tool, a stray CancelledError, SystemExit, Ctrl-C, a
sync tool that never returns, a provider that reports no usage: each must
end in a result that says truthfully what ran, what it cost and how the run
ended, and must never leave work running behind the caller's back.
"""

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from retinue import Agent, Limits, ModelRequest, ModelResponse, ToolResult, Usage, tool
from retinue.events import Event, RunFinished
from retinue.messages import ToolResultsMessage
from retinue.models.base import TextSink
from retinue.models.pricing import Price
from retinue.result import RunResult
from retinue.testing.scripted import ScriptedModel, call


class Crash(BaseException):
    """Something a tool raises that is not an ordinary failure (as pytest.fail or a greenlet exit are)."""


def last_results(result: RunResult[Any]) -> dict[str, ToolResult]:
    """The tool results of the run's last tool turn, by tool name."""
    last = result.messages[-1]
    assert isinstance(last, ToolResultsMessage), last
    return {r.name: r for r in last.results}


# --- 1. a call that ends the run stops its siblings, and the transcript says what ran -----------


async def test_the_siblings_of_a_call_that_ends_the_run_do_not_run_on_after_it() -> None:
    booked: list[str] = []

    @tool
    async def book() -> str:
        """Book the flight."""
        await asyncio.sleep(0.3)
        booked.append("flight")
        return "booked"

    @tool
    async def explode() -> str:
        """Fail badly."""
        raise Crash("boom")

    model = ScriptedModel([[call("book"), call("explode")], "unreachable"])
    result = await Agent("a", model=model, tools=[book, explode]).run("go")
    await asyncio.sleep(0.5)  # anything left running would have finished by now

    assert result.status == "error"
    assert isinstance(result.error, Crash)
    results = last_results(result)
    if booked:
        assert not results["book"].is_error and results["book"].content == "booked"
    else:
        assert results["book"].is_error
        assert results["book"].content.startswith(("Not run", "Stopped")), results["book"].content
    assert results["explode"].is_error and "Crash" in results["explode"].content


async def test_calls_of_the_turn_that_finished_keep_their_real_results() -> None:
    @tool
    async def quick() -> str:
        """Answer at once."""
        return "quick answer"

    @tool
    async def explode() -> str:
        """Fail badly, after quick has answered."""
        await asyncio.sleep(0.05)
        raise Crash("boom")

    model = ScriptedModel([[call("quick"), call("explode")], "unreachable"])
    result = await Agent("a", model=model, tools=[quick, explode]).run("go")

    assert result.status == "error"
    assert last_results(result)["quick"] == ToolResult(
        last_results(result)["quick"].tool_call_id, "quick", "quick answer", False
    )


async def test_a_call_still_waiting_for_its_turn_when_the_run_is_cancelled_is_reported_as_not_run() -> None:
    started = asyncio.Event()
    finished: list[RunFinished] = []

    @tool
    async def slow() -> str:
        """Hold the only slot for a long time."""
        started.set()
        await asyncio.sleep(10)
        return "slow answer"

    @tool
    async def later() -> str:
        """Never reached: the concurrency cap holds it back."""
        return "ran"

    def on_event(event: Event) -> None:
        if isinstance(event, RunFinished):
            finished.append(event)

    model = ScriptedModel([[call("slow"), call("later")], "unreachable"])
    agent = Agent("a", model=model, tools=[slow, later], max_tool_concurrency=1)
    task = asyncio.create_task(agent.run("go", on_event=on_event))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    results = last_results(finished[0].result)
    assert results["later"].content.startswith("Not run"), results["later"].content
    assert results["slow"].content.startswith("Stopped before it finished"), results["slow"].content


# --- 2. a CancelledError nobody asked for is a tool failure; a real cancel still cancels ---------


async def test_a_cancelled_error_from_inside_a_tool_is_a_tool_error_the_model_sees() -> None:
    @tool
    async def waits() -> str:
        """Wait on something another task cancels."""
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        asyncio.get_running_loop().call_soon(future.cancel)
        return await future

    model = ScriptedModel([call("waits"), "done"])
    result = await Agent("a", model=model, tools=[waits]).run("go")

    assert result.status == "completed", result.error
    sent = model.requests[1].messages[-1]
    assert isinstance(sent, ToolResultsMessage)
    assert sent.results[0].is_error
    assert sent.results[0].content.startswith("Error: 'waits' failed with CancelledError")


async def test_cancelling_the_run_still_cancels_it_and_says_which_calls_were_stopped() -> None:
    started = asyncio.Event()
    finished: list[RunFinished] = []

    @tool
    async def slow(label: str) -> str:
        """Take a long time."""
        started.set()
        await asyncio.sleep(10)
        return label

    @tool
    async def quick() -> str:
        """Answer at once."""
        return "quick answer"

    def on_event(event: Event) -> None:
        if isinstance(event, RunFinished):
            finished.append(event)

    model = ScriptedModel([[call("slow", label="a"), call("quick")], "unreachable"])
    task = asyncio.create_task(Agent("a", model=model, tools=[slow, quick]).run("go", on_event=on_event))
    await started.wait()
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    (event,) = finished
    assert event.result.status == "cancelled"
    results = last_results(event.result)
    assert results["quick"].content == "quick answer", "a call that finished says what it returned"
    assert results["slow"].is_error and results["slow"].content.startswith("Stopped")


# --- 3. SystemExit and KeyboardInterrupt inside a tool --------------------------------------------


def test_system_exit_in_a_tool_is_a_tool_error_the_model_sees() -> None:
    @tool
    def quits() -> str:
        """Call sys.exit, as a careless script might."""
        raise SystemExit(3)

    model = ScriptedModel([call("quits"), "done"])
    try:
        result = Agent("a", model=model, tools=[quits]).run_sync("go")
    except (SystemExit, KeyboardInterrupt) as exc:
        pytest.fail(f"{type(exc).__name__} escaped run_sync")

    assert result.status == "completed", result.error
    sent = model.requests[1].messages[-1]
    assert isinstance(sent, ToolResultsMessage)
    assert sent.results[0].is_error and sent.results[0].content.startswith("Error: 'quits' failed with SystemExit")


@tool
async def interrupted() -> str:
    """Be interrupted by Ctrl-C."""
    raise KeyboardInterrupt


def collect_run_finished(finished: list[RunFinished]) -> Callable[[Event], None]:
    def on_event(event: Event) -> None:
        if isinstance(event, RunFinished):
            finished.append(event)

    return on_event


def test_keyboard_interrupt_in_a_tool_ends_the_run_as_cancelled_without_raising() -> None:
    finished: list[RunFinished] = []
    on_event = collect_run_finished(finished)

    model = ScriptedModel([call("interrupted"), "unreachable"])
    try:
        result = Agent("a", model=model, tools=[interrupted]).run_sync("go", on_event=on_event)
    except (SystemExit, KeyboardInterrupt) as exc:
        pytest.fail(f"{type(exc).__name__} escaped run_sync")

    assert result.status == "cancelled"
    assert [e.result.status for e in finished] == ["cancelled"], "the store records what the caller was told"
    assert last_results(result)["interrupted"].is_error


def test_keyboard_interrupt_in_a_sub_agents_tool_stops_the_whole_tree() -> None:
    from retinue.architectures import lead_agent

    finished: list[RunFinished] = []
    on_event = collect_run_finished(finished)

    helper = Agent("helper", model=ScriptedModel([call("interrupted"), "unreachable"]), tools=[interrupted])
    lead_model = ScriptedModel([call("ask_helper", question="?"), "unreachable"])
    lead = lead_agent("lead", specialists=[helper], model=lead_model, share_decisions=False)
    try:
        result = lead.run_sync("go", on_event=on_event)
    except (SystemExit, KeyboardInterrupt) as exc:
        pytest.fail(f"{type(exc).__name__} escaped run_sync")

    assert result.status == "cancelled"
    assert sorted((e.result.agent, e.result.status) for e in finished) == [
        ("helper", "cancelled"),
        ("lead", "cancelled"),
    ]
    assert len(lead_model.requests) == 1, "the lead does not go on after Ctrl-C"


# --- 4. a timed-out sync tool is abandoned, not waited for -------------------------------------------


def test_run_sync_returns_soon_after_a_sync_tool_times_out() -> None:
    release = threading.Event()

    @tool(timeout=0.2)
    def hangs() -> str:
        """Block for a long time."""
        release.wait(30)
        return "late"

    model = ScriptedModel([call("hangs"), "done"])
    started = time.perf_counter()
    try:
        result = Agent("a", model=model, tools=[hangs]).run_sync("go")
        elapsed = time.perf_counter() - started
    finally:
        release.set()

    assert elapsed < 5, f"run_sync waited {elapsed:.1f}s for an abandoned thread"
    assert result.status == "completed", result.error
    sent = model.requests[1].messages[-1]
    assert isinstance(sent, ToolResultsMessage)
    assert "did not finish within 0.2 seconds" in sent.results[0].content


def test_a_sync_tool_still_sees_the_callers_context_variables_and_exceptions() -> None:
    @tool
    def fails() -> str:
        """Fail in the thread."""
        raise ValueError("bad input")

    @tool
    def thread_name() -> str:
        """Say which thread runs it."""
        return "main" if threading.current_thread() is threading.main_thread() else "worker"

    model = ScriptedModel([[call("fails"), call("thread_name")], "done"])
    result = Agent("a", model=model, tools=[fails, thread_name]).run_sync("go")

    assert result.status == "completed", result.error
    sent = model.requests[1].messages[-1]
    assert isinstance(sent, ToolResultsMessage)
    assert [r.content for r in sent.results] == ["Error: 'fails' failed with ValueError: bad input", "worker"]


# --- 5. a response without usage is estimated, never free --------------------------------------------


class NoUsageModel:
    """A provider that reports no usage at all (an OpenAI-compatible server without `usage`)."""

    model_id = "openai:no-usage"

    def __init__(self, script: list[Any], price: Price | None = None) -> None:
        self.scripted = ScriptedModel(script)
        self.price = price

    async def request(self, request: ModelRequest, on_text: TextSink | None = None) -> ModelResponse:
        response = await self.scripted.request(request, on_text)
        cost = None if self.price is None else 0.0  # what a provider computes from zero tokens
        return ModelResponse(response.message, Usage(requests=1, cost_usd=cost), self.model_id, response.stop_reason)


@tool
def step(n: int) -> str:
    """Take a step."""
    return f"step {n} taken " * 20


def endless() -> list[Any]:
    return [call("step", n=n) for n in range(50)]


async def test_a_response_without_usage_is_charged_an_estimate_not_zero() -> None:
    model = NoUsageModel(["x" * 400], price=Price(input=1_000_000.0, output=1_000_000.0))
    result = await Agent("a", model=model).run("hello " * 100)

    assert result.status == "completed"
    assert result.usage.estimated
    assert result.usage.input_tokens > 100 and result.usage.output_tokens >= 100
    assert result.usage.cost_usd is not None and result.usage.cost_usd > 0, "an estimate is priced, never free"


async def test_token_limits_stop_a_run_whose_provider_reports_no_usage() -> None:
    for limit in ("max_input_tokens", "max_output_tokens"):
        model = NoUsageModel(endless())
        result = await Agent("a", model=model, tools=[step], limits=Limits(**{limit: 200})).run("go")
        assert result.stop_reason == limit, (limit, result.describe())
        assert result.usage.estimated


async def test_a_dollar_limit_stops_a_run_whose_provider_reports_no_usage() -> None:
    model = NoUsageModel(endless(), price=Price(input=10_000.0, output=10_000.0))
    result = await Agent("a", model=model, tools=[step], limits=Limits(max_cost_usd=10.0)).run("go")
    assert result.stop_reason == "max_cost_usd", result.describe()


async def test_reported_usage_is_not_marked_estimated() -> None:
    result = await Agent("a", model=ScriptedModel(["hi"])).run("go")
    assert not result.usage.estimated
