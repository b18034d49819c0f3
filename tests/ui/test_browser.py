"""The UI in a real headless browser, watching a run live: approve in the page, replay a step, resume a run.

Needs Debian's chromium (`apt-get install chromium`) and the Playwright Python
package; Playwright's own browser download is not used. Screenshots go to
tests/ui/artifacts/ for a person to look at.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from retinue.messages import AssistantMessage
from retinue.store import RunStore
from retinue.testing.scripted import ScriptedModel
from retinue.ui import UIServer
from store.trace_samples import SampleRun

from .test_durable_view import RUN_ID, agent_workdir, booker, kill_inside_booking

ARTIFACTS = Path(__file__).parent / "artifacts"

KEY = "sk-ant-api03-Zq9x7Lm2Pw4Rt6Yv8Bn0Kc3Hd5Fg7Js9Lq1Wz"


async def test_a_live_run_updates_in_the_page_and_is_approved_and_replayed_there(
    tmp_path: Path, browser_page: Any, page_problems: list[str]
) -> None:
    page = browser_page

    replayer = ScriptedModel([AssistantMessage(text="Which dates would you like to travel?")], name="replayer")
    with RunStore(tmp_path / "runs.sqlite") as store:
        async with UIServer(store, port=0, poll_interval=0.05, resolve_model=lambda spec: replayer) as ui:
            sample = SampleRun(secret=KEY, model_latency=0.4)
            run = asyncio.create_task(sample.run(store.recorder(), approver=ui.approver()))

            await page.goto(ui.url)
            await page.locator(".run-item").first.click()
            cost = page.locator("[data-stat=cost] .value")
            await page.locator(".step.chat .num").first.filter(has_text="$").wait_for()
            early_cost = await cost.inner_text()

            # The lead reaches the booking and waits for a person.
            card = page.locator(".approval")
            await card.wait_for(timeout=15_000)
            assert (await page.locator(".run-header .pill").inner_text()).strip() == "running"
            late_cost = await cost.inner_text()
            assert early_cost != late_cost  # dollars ticked up while we watched
            assert await page.locator(".node[data-run-id] .node .agent").first.inner_text() == "researcher"
            tool_text = await page.locator(".step.tool").first.inner_text()
            assert 'in:  {"city":"Paris"}' in tool_text and "out: Sunny and 24°C in Paris." in tool_text
            assert "book_flight" in await card.inner_text()
            assert "sk-ant-[REDACTED]" in await card.inner_text()
            await page.screenshot(path=str(ARTIFACTS / "live_run_waiting_for_approval.png"), full_page=True)

            await card.get_by_role("button", name="Approve").click()
            result = await asyncio.wait_for(run, 15)
            assert result.completed
            await page.locator(".run-header .pill", has_text="completed").wait_for(timeout=10_000)
            await page.locator(".answer", has_text="Confirmation ZX81").first.wait_for()

            # Replay the first model call with other instructions, from its request view.
            await page.locator(".step.chat").first.click()
            drawer = page.locator("#drawer")
            await drawer.get_by_text("Request as sent").wait_for()
            assert "Plan a trip to Paris in June." in await drawer.inner_text()
            await drawer.locator("textarea[name=instructions]").fill("Always ask for travel dates first.")
            await drawer.get_by_role("button", name="Replay this call").click()
            await drawer.locator(".diff .add", has_text="Which dates would you like to travel?").wait_for()
            assert replayer.requests[0].instructions == "Always ask for travel dates first."
            await page.screenshot(path=str(ARTIFACTS / "replay_of_a_step.png"), full_page=True)

            assert KEY not in await page.content()
    assert page_problems == []


async def test_the_durable_view_shows_a_killed_run_interrupted_and_resumes_it_to_the_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, browser_page: Any, page_problems: list[str]
) -> None:
    page = browser_page
    killed = kill_inside_booking(agent_workdir(tmp_path, monkeypatch))
    with RunStore(killed.store) as store:
        async with UIServer(store, port=0, poll_interval=0.05, journal=killed.journal, agents=[booker()]) as ui:
            await page.goto(ui.url + "#durable")
            item = page.locator("#durable-list .run-item", has_text=RUN_ID)
            await item.locator(".pill", has_text="interrupted").wait_for(timeout=10_000)
            assert "book car" in await item.inner_text()

            await item.click()
            detail = page.locator("#detail")
            await detail.locator(".run-header .pill", has_text="interrupted").wait_for()
            assert "Its process died (or was killed)" in await detail.locator(".durable-note").inner_text()
            assert await detail.locator("[data-stat=turns] .value").inner_text() == "1"
            await page.screenshot(path=str(ARTIFACTS / "durable_run_interrupted.png"), full_page=True)

            await detail.get_by_role("button", name="Resume").click()
            await detail.locator(".run-header .pill", has_text="finished (completed)").wait_for(timeout=15_000)
            assert await detail.locator("[data-stat=turns] .value").inner_text() == "2"
            assert "1 call" in await detail.locator("[data-stat=replayed] .value").inner_text()
            assert "Resumed here: booker: completed" in await detail.inner_text()
            assert await item.locator(".pill", has_text="finished (completed)").count() == 1
            assert await detail.get_by_role("button", name="Resume").count() == 0
            await page.screenshot(path=str(ARTIFACTS / "durable_run_resumed.png"), full_page=True)

            # Its trace, on the Runs page: the same run, finished there too, with the answer.
            await detail.get_by_role("link", name="Open its trace").click()
            await page.locator(".run-header .pill", has_text="completed").wait_for(timeout=10_000)
            await page.locator(".answer", has_text="booked car").first.wait_for()
    assert killed.lines("served.log") == ["book car 0", "book car 1"]
    assert page_problems == []
