"""How and where the tool calls of a turn run.

`Agent(tool_scheduling=...)` says how one turn's calls run: "concurrent" (the
default) starts them all at once; "sequential" runs each after the one before,
for tools that are not safe to run twice at the same time.

Where a sync tool's call runs: its first calls run in a thread and are timed;
once they have been fast, its calls run on the event loop (a thread costs more
than they do), until one is slow, which sends the tool back to threads until
it has been fast again, for four times as many calls each time.
`run_in_thread=True` or `False` fixes the choice.

And the note a call gets when it fails again word for word can be turned off.
"""

import asyncio
import threading
import time
from typing import Any

import pytest

from retinue import Agent, Limits, ToolError, ToolResult, tool
from retinue.errors import ConfigurationError
from retinue.messages import ModelRequest, ToolResultsMessage
from retinue.testing import ScriptedModel, call
from retinue.testing.scripted import Reply
from retinue.tools import TIMED_CALLS_IN_THREAD


def results_of(request: ModelRequest) -> list[ToolResult]:
    last = request.messages[-1]
    assert isinstance(last, ToolResultsMessage)
    return last.results


def booking_tool(bookings: list[str]) -> Any:
    @tool
    def book(traveller: str) -> str:
        """Book a seat; not thread-safe, like many a client of a database without transactions."""
        booking_id = f"B{len(bookings) + 1}"  # read the next id ...
        time.sleep(0.1)  # ... a round trip to the database ...
        bookings.append(booking_id)  # ... and write it
        return f"{booking_id} for {traveller}"

    return book


# --- concurrent or sequential ---------------------------------------------------------------------


async def test_sequential_scheduling_gives_a_tool_that_is_not_thread_safe_one_call_at_a_time() -> None:
    bookings: list[str] = []
    calls = [call("book", traveller=name) for name in ("Ada", "Alan", "Grace")]
    model = ScriptedModel([calls, "done"])
    await Agent("a", model=model, tools=[booking_tool(bookings)], tool_scheduling="sequential").run("book")

    assert bookings == ["B1", "B2", "B3"]
    assert [r.content for r in results_of(model.requests[1])] == ["B1 for Ada", "B2 for Alan", "B3 for Grace"]


async def test_concurrent_scheduling_lets_the_same_tool_interleave_with_itself() -> None:
    # Why the choice exists: the default runs the three calls at once, each in its own thread.
    bookings: list[str] = []
    calls = [call("book", traveller=name) for name in ("Ada", "Alan", "Grace")]
    await Agent("a", model=ScriptedModel([calls, "done"]), tools=[booking_tool(bookings)]).run("book")

    assert len(bookings) == 3
    assert len(set(bookings)) < 3, "two calls read the same next id before either wrote it"


async def test_sequential_calls_run_in_the_order_the_model_gave_them() -> None:
    order: list[str] = []

    @tool
    async def step(label: str, seconds: float) -> str:
        await asyncio.sleep(seconds)
        order.append(label)
        return label

    calls = [call("step", label="slow", seconds=0.05), call("step", label="quick", seconds=0)]
    agent = Agent("a", model=ScriptedModel([calls, "done"]), tools=[step], tool_scheduling="sequential")
    await agent.run("go")
    assert order == ["slow", "quick"]


class Fatal(BaseException):
    """Not an Exception: a tool raising it ends the run (as pytest.fail or a greenlet exit would)."""


async def test_once_a_sequential_call_ends_the_run_the_later_calls_are_not_run() -> None:
    ran: list[str] = []

    @tool
    def work(label: str) -> str:
        ran.append(label)
        if label == "fatal":
            raise Fatal("the tool gave up")
        return label

    calls = [call("work", label="first"), call("work", label="fatal"), call("work", label="never")]
    agent = Agent("a", model=ScriptedModel([calls, "done"]), tools=[work], tool_scheduling="sequential")
    result = await agent.run("go")

    assert result.status == "error"
    assert ran == ["first", "fatal"]
    last = result.messages[-1]
    assert isinstance(last, ToolResultsMessage)
    first, fatal, never = last.results
    assert first.content == "first"
    assert fatal.content.startswith("Error: 'work' raised Fatal: the tool gave up")
    assert never.content == f"Not run: 'work' (call {fatal.tool_call_id}) failed and ended the run."


def test_an_unknown_scheduling_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="give 'concurrent' or 'sequential'"):
        Agent("a", tool_scheduling="parallel")  # type: ignore[arg-type]


def test_sequential_scheduling_with_a_concurrency_cap_above_one_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="max_tool_concurrency=4 has no effect"):
        Agent("a", tool_scheduling="sequential", max_tool_concurrency=4)


# --- where a sync tool runs ------------------------------------------------------------------------


async def test_a_fast_sync_tool_moves_from_threads_to_the_event_loop_after_its_timed_calls() -> None:
    threads: list[int] = []

    @tool
    def lookup(key: str) -> str:
        threads.append(threading.get_ident())
        return key

    script: list[Reply] = [call("lookup", key=str(n)) for n in range(TIMED_CALLS_IN_THREAD + 2)]
    await Agent("a", model=ScriptedModel([*script, "done"]), tools=[lookup]).run("go")

    loop_thread = threading.get_ident()
    timed, later = threads[:TIMED_CALLS_IN_THREAD], threads[TIMED_CALLS_IN_THREAD:]
    assert loop_thread not in timed
    assert later == [loop_thread, loop_thread]


async def test_a_sync_tool_that_blocks_from_the_start_never_runs_on_the_event_loop() -> None:
    threads: list[int] = []

    @tool
    def fetch(page: int) -> str:
        threads.append(threading.get_ident())
        time.sleep(0.01)
        return f"page {page}"

    script: list[Reply] = [call("fetch", page=n) for n in range(TIMED_CALLS_IN_THREAD + 3)]
    await Agent("a", model=ScriptedModel([*script, "done"]), tools=[fetch]).run("go")
    assert len(threads) == TIMED_CALLS_IN_THREAD + 3
    assert threading.get_ident() not in threads


async def test_a_tool_slow_once_by_accident_comes_back_to_the_event_loop_after_proving_fast_again() -> None:
    threads: list[int] = []
    accident = TIMED_CALLS_IN_THREAD + 1  # the first call on the loop; say the machine was busy

    @tool
    def lookup(n: int) -> str:
        threads.append(threading.get_ident())
        if n == accident:
            time.sleep(0.01)
        return str(n)

    proving = 4 * TIMED_CALLS_IN_THREAD
    script: list[Reply] = [call("lookup", n=n) for n in range(1, accident + proving + 3)]
    await Agent("a", model=ScriptedModel([*script, "done"]), tools=[lookup], limits=Limits(max_turns=None)).run("go")

    on_loop = [thread == threading.get_ident() for thread in threads]
    assert on_loop == [False] * TIMED_CALLS_IN_THREAD + [True] + [False] * proving + [True, True]


async def test_run_in_thread_true_keeps_even_a_fast_tool_in_threads() -> None:
    threads: list[int] = []

    @tool(run_in_thread=True)
    def lookup(key: str) -> str:
        threads.append(threading.get_ident())
        return key

    script: list[Reply] = [call("lookup", key=str(n)) for n in range(TIMED_CALLS_IN_THREAD + 2)]
    await Agent("a", model=ScriptedModel([*script, "done"]), tools=[lookup]).run("go")
    assert threading.get_ident() not in threads


async def test_a_tool_that_turns_slow_stalls_other_agents_once_then_runs_in_threads() -> None:
    """Two agents on one event loop: one calls a sync tool that is fast at first and then blocks; the other
    ticks all along. The first slow call runs on the loop and stalls the ticking agent (the price of not
    paying for a thread on fast calls); every later slow call runs in a thread and the other agent ticks on.
    """
    slow_calls: list[tuple[float, float, int]] = []  # start, end, thread
    fast_pages = TIMED_CALLS_IN_THREAD + 1

    @tool
    def fetch(page: int) -> str:
        if page > fast_pages:
            started = time.perf_counter()
            time.sleep(0.4)
            slow_calls.append((started, time.perf_counter(), threading.get_ident()))
        return f"page {page}"

    ticks: list[float] = []

    @tool
    async def tick() -> str:
        ticks.append(time.perf_counter())
        return "tick"

    fetcher_done = asyncio.Event()

    def ticker_script(request: ModelRequest) -> Reply:
        return "done" if fetcher_done.is_set() else call("tick")

    pages: list[Reply] = [call("fetch", page=n) for n in range(1, fast_pages + 4)]
    fetcher = Agent("fetcher", model=ScriptedModel([*pages, "done"], latency=0.01), tools=[fetch])
    ticker = Agent(
        "ticker", model=ScriptedModel(ticker_script, latency=0.01), tools=[tick], limits=Limits(max_turns=None)
    )

    async def fetch_all() -> None:
        await asyncio.sleep(0.05)  # the ticker is ticking first
        try:
            await fetcher.run("fetch the pages")
        finally:
            fetcher_done.set()

    await asyncio.gather(fetch_all(), ticker.run("tick until told"))

    def ticks_during(start: float, end: float) -> int:
        return sum(start < moment < end for moment in ticks)

    (first_start, first_end, first_thread), *later = slow_calls
    assert len(later) == 2
    assert first_thread == threading.get_ident(), "the first slow call ran on the event loop ..."
    assert ticks_during(first_start, first_end) == 0, "... and stalled the other agent"
    for start, end, thread in later:
        assert thread != threading.get_ident()
        assert ticks_during(start, end) >= 3, "the other agent went on while the slow call ran in a thread"


# --- the repeated-failure note -----------------------------------------------------------------------


@tool
def find(name: str) -> str:
    """Find a thing."""
    raise ToolError(f"nothing is called {name}")


async def test_the_repeated_failure_note_is_added_by_default() -> None:
    model = ScriptedModel([call("find", name="x"), call("find", name="x"), "gave up"])
    await Agent("a", model=model, tools=[find]).run("go")
    assert "This exact call has now failed 2 times" in results_of(model.requests[2])[0].content


async def test_the_repeated_failure_note_can_be_turned_off() -> None:
    model = ScriptedModel([call("find", name="x"), call("find", name="x"), "gave up"])
    await Agent("a", model=model, tools=[find], note_repeated_failures=False).run("go")

    first, second = (results_of(request)[0] for request in model.requests[1:])
    assert first.content == second.content == "Error: nothing is called x"
