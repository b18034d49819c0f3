"""A run's timeline in the browser: agents as bars over time, parallel specialists side by side.

The run is a real lead built with `lead_agent`, asking two specialists in one
model turn (so they run concurrently), recorded into a real trace store.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from retinue import Agent, RunResult
from retinue.architectures import clone_tool, lead_agent
from retinue.events import EventSink
from retinue.messages import ModelRequest, UserMessage
from retinue.store import RunStore
from retinue.testing.scripted import Reply, ScriptedModel, call
from retinue.ui import UIServer

ARTIFACTS = Path(__file__).parent / "artifacts"


def lead_with_two_specialists(specialist_latency: float, lead_latency: float = 0.0) -> Agent[Any]:
    """A lead that asks its flights and hotels specialists at once, then answers."""
    flights = Agent(
        "flights",
        instructions="You find flights.",
        model=ScriptedModel(["TP 1234, Paris to Lisbon, 9:05."], name="flights", latency=specialist_latency),
    )
    hotels = Agent(
        "hotels",
        instructions="You find hotels.",
        model=ScriptedModel(["Hotel Avenida, 120 EUR a night."], name="hotels", latency=specialist_latency),
    )
    asks_both = [
        call("ask_flights", question="A flight from Paris to Lisbon on 3 May?"),
        call("ask_hotels", question="A hotel in Lisbon from 3 to 5 May?"),
    ]
    lead_model = ScriptedModel(
        [asks_both, "TP 1234 on 3 May and two nights at Hotel Avenida."],
        name="lead",
        cost_per_call=0.01,
        latency=lead_latency,
    )
    return lead_agent("lead", specialists=[flights, hotels], share_decisions=False, model=lead_model)


async def run_trip(lead: Agent[Any], on_event: EventSink) -> RunResult[Any]:
    return await lead.run("Book me Paris to Lisbon, 3 to 5 May.", on_event=on_event)


async def bar_box(page: Any, agent: str) -> dict[str, float]:
    """The on-screen box of `agent`'s bar (its body, without labels or marks)."""
    box: dict[str, float] = await page.locator(f".tl-bar[data-agent='{agent}'] .tl-body").bounding_box()
    return box


async def first_call_width(page: Any, agent: str) -> float:
    """The drawn width of `agent`'s first model-call mark, read in one step of the page's own script.

    A live timeline redraws its bars every poll; measured through a locator, the mark can be replaced between
    finding it and measuring it (seen under load: no box at all).
    """
    width: float = await page.evaluate(
        "agent => document.querySelector(`.tl-bar[data-agent='${agent}'] .tl-call`).getBoundingClientRect().width",
        agent,
    )
    return width


async def bar_seconds(bar: Any) -> float:
    """How long a bar lasts, in seconds of the run, as drawn."""
    return float(await bar.get_attribute("data-end")) - float(await bar.get_attribute("data-start"))


async def test_a_lead_and_two_parallel_specialists_draw_three_bars_the_specialists_overlapping(
    tmp_path: Path, browser_page: Any, page_problems: list[str]
) -> None:
    page = browser_page
    with RunStore(tmp_path / "runs.sqlite") as store:
        result = await run_trip(lead_with_two_specialists(specialist_latency=0.3), store.recorder())
        await asyncio.to_thread(store.flush)
        async with UIServer(store, port=0, poll_interval=0.05) as ui:
            await page.goto(ui.url + f"#run={result.run_id}")
            bars = page.locator(".timeline .tl-bar")
            await bars.nth(2).wait_for()
            assert await bars.count() == 3
            agents = [await bars.nth(n).get_attribute("data-agent") for n in range(3)]
            assert agents == ["lead", "flights", "hotels"]
            assert [await bars.nth(n).get_attribute("class") for n in range(3)] == [
                "tl-bar lead",
                "tl-bar specialist",
                "tl-bar specialist",
            ]

            lead, flights, hotels = [await bar_box(page, agent) for agent in agents]
            # Asked in one turn, the specialists worked at the same time: their bars overlap on the time axis,
            # each on its own row, both inside the lead's bar.
            overlap = min(flights["x"] + flights["width"], hotels["x"] + hotels["width"]) - max(
                flights["x"], hotels["x"]
            )
            assert overlap > 0.8 * min(flights["width"], hotels["width"])
            assert lead["y"] < flights["y"] < hotels["y"]
            for specialist in (flights, hotels):
                assert lead["x"] <= specialist["x"]
                assert specialist["x"] + specialist["width"] <= lead["x"] + lead["width"] + 0.5

            # The lead's bar carries its two model calls and its two tool calls (the questions it asked).
            lead_bar = page.locator(".tl-bar[data-agent='lead']")
            assert await lead_bar.locator(".tl-call").count() == 2
            assert await lead_bar.locator(".tl-tool").count() == 2
            assert await page.locator(".tl-bar[data-agent='hotels'] .tl-call").count() == 1

            # Hovering a bar says what it was; so does keyboard focus.
            tip = page.locator("#tip")
            await page.hover(".tl-bar[data-agent='flights'] .tl-body", position={"x": 10, "y": 16})
            await tip.wait_for()
            text = await tip.inner_text()
            assert text.startswith("flights (specialist) · completed")
            assert "took " in text and " out tokens · $0" in text
            await page.hover(".tl-bar[data-agent='lead'] .tl-call >> nth=0")
            assert (await tip.inner_text()).startswith("model call #1 · turn 1 · scripted:lead")
            assert "$0.0100" in await tip.inner_text()
            await page.mouse.move(5, 5)
            await tip.wait_for(state="hidden")
            await bars.nth(2).focus()
            assert (await tip.inner_text()).startswith("hotels (specialist)")
            await page.screenshot(path=str(ARTIFACTS / "timeline_parallel_specialists.png"), full_page=True)
    assert page_problems == []


async def test_a_live_run_s_bars_grow_as_it_goes_and_stop_when_it_ends(
    tmp_path: Path, browser_page: Any, page_problems: list[str]
) -> None:
    page = browser_page
    with RunStore(tmp_path / "runs.sqlite") as store:
        async with UIServer(store, port=0, poll_interval=0.05) as ui:
            await page.goto(ui.url)
            run = asyncio.create_task(
                run_trip(lead_with_two_specialists(specialist_latency=2.5, lead_latency=0.3), store.recorder())
            )
            await page.locator(".run-item").first.click()
            # Both specialists have started and are still thinking.
            running = page.locator(".tl-bar.specialist.running")
            await running.nth(1).wait_for(timeout=10_000)
            # The axis always ends at "now": the running bars keep reaching it, so as time passes their
            # duration grows and what is already over (the lead's first model call) takes less of the width.
            hotels = page.locator(".tl-bar[data-agent='hotels']")
            duration_before = await bar_seconds(hotels)
            call_width_before = await first_call_width(page, "lead")
            # Each redraw draws a new bar, so the page is asked for the bar it shows now.
            await page.wait_for_function(
                """at_least => {
                    const bar = document.querySelector(".tl-bar[data-agent='hotels']");
                    return bar.dataset.end - bar.dataset.start > at_least;
                }""",
                arg=duration_before + 0.4,
                timeout=10_000,
            )
            assert await first_call_width(page, "lead") < 0.8 * call_width_before
            assert await page.locator(".tl-bar.lead.running").count() == 1

            result = await asyncio.wait_for(run, 15)
            assert result.completed
            await page.locator(".tl-bar.lead:not(.running)").wait_for(timeout=10_000)
            assert await page.locator(".tl-bar.running").count() == 0
            finished = await bar_box(page, "lead")
            await page.wait_for_timeout(600)
            assert await bar_box(page, "lead") == finished  # a finished run's bars stay put
    assert page_problems == []


def planner_with_clones() -> Agent[Any]:
    """A planner that hands two sub-tasks to clones of itself in one turn, then answers."""

    def reply(request: ModelRequest) -> Reply:
        last = request.messages[-1]
        if isinstance(last, UserMessage) and last.content.startswith("Plan"):
            return [call("spawn_clone", task="Find a flight."), call("spawn_clone", task="Find a hotel.")]
        if isinstance(last, UserMessage):
            return f"Done: {last.content}"  # a clone, given its task
        return "A flight and a hotel, found by my clones."

    model = ScriptedModel(reply, name="planner", latency=0.2)
    return Agent("planner", instructions="You plan trips.", model=model, tools=[clone_tool()])


async def test_clones_working_in_parallel_are_hatched_bars_side_by_side(
    tmp_path: Path, browser_page: Any, page_problems: list[str]
) -> None:
    page = browser_page
    with RunStore(tmp_path / "runs.sqlite") as store:
        result = await planner_with_clones().run("Plan a weekend in Rome.", on_event=store.recorder())
        await asyncio.to_thread(store.flush)
        async with UIServer(store, port=0, poll_interval=0.05) as ui:
            await page.goto(ui.url + f"#run={result.run_id}")
            clones = page.locator(".tl-bar.clone")
            await clones.nth(1).wait_for()
            names = [await clones.nth(n).get_attribute("data-agent") for n in range(2)]
            assert names == ["planner/clone-1", "planner/clone-2"]
            # Told apart from specialists by a pattern, not only a colour.
            fill = await clones.first.locator(".tl-body").evaluate("body => getComputedStyle(body).fill")
            assert fill == 'url("#hatch")'
            first, second = [await bar_box(page, name) for name in names]
            assert min(first["x"] + first["width"], second["x"] + second["width"]) > max(first["x"], second["x"])
    assert page_problems == []
