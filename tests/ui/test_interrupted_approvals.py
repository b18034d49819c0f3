"""The UI with a run whose process was killed while it waited for approval: shown interrupted, not approvable.

The run is recorded by a real child process (see `store.interrupted_run`),
killed with SIGKILL so it writes nothing on the way out.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from retinue.store import RunStore
from retinue.ui import UIServer
from store.interrupted_run import WaitingRun, kill_hard, reap, start_run_waiting_for_approval

POST_HEADERS = {"X-Retinue": "1"}
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
ARTIFACTS = Path(__file__).parent / "artifacts"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[RunStore]:
    with RunStore(tmp_path / "runs.sqlite") as store:
        yield store


@pytest.fixture
def waiting_run(store: RunStore) -> Iterator[WaitingRun]:
    run = start_run_waiting_for_approval(store.path, store)
    yield run
    reap(run)


@pytest.fixture
async def ui(store: RunStore) -> AsyncIterator[UIServer]:
    async with UIServer(store, port=0, poll_interval=0.05, recheck_interval=0.1) as server:
        yield server


async def _tree(http: aiohttp.ClientSession, ui: UIServer, run_id: str) -> dict[str, Any]:
    async with http.get(ui.url + f"api/runs/{run_id}") as response:
        body: dict[str, Any] = json.loads(await response.text())
        return body


async def test_the_api_shows_a_killed_run_interrupted_and_refuses_its_approval(
    waiting_run: WaitingRun, ui: UIServer
) -> None:
    decision = {"run_id": waiting_run.run_id, "tool_call_id": waiting_run.tool_call_id, "approved": True}
    async with aiohttp.ClientSession() as http:
        alive = await _tree(http, ui, waiting_run.run_id)
        assert alive["tree"]["run"]["status"] == "running"
        assert [pending["tool"] for pending in alive["pending"]] == ["book_flight"]

        kill_hard(waiting_run)

        killed = await _tree(http, ui, waiting_run.run_id)
        assert killed["tree"]["run"]["status"] == "interrupted"
        assert killed["pending"] == []
        async with http.post(ui.url + "api/approvals", json=decision, headers=POST_HEADERS) as response:
            assert response.status == 410
            assert "no longer running (the process that asked for this approval has ended)" in await response.text()


@pytest.mark.skipif(not shutil.which(CHROMIUM), reason="needs Debian's chromium at /usr/bin/chromium")
async def test_the_page_stops_offering_the_approval_once_the_run_is_killed(
    waiting_run: WaitingRun, ui: UIServer
) -> None:
    async_api = pytest.importorskip("playwright.async_api")
    async with async_api.async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 800})
            problems: list[str] = []
            page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
            await page.goto(ui.url + f"#run={waiting_run.run_id}")
            approve = page.locator(".approval").get_by_role("button", name="Approve")
            await approve.wait_for(timeout=15_000)

            kill_hard(waiting_run)

            # Nothing is written when a process dies; the page learns it on the UI's next recheck.
            header = page.locator(".run-header .pill", has_text="interrupted")
            await header.wait_for(timeout=10_000)
            assert await approve.count() == 0
            assert await page.locator(".interrupted-note").count() == 1
            booking = page.locator(".step.tool", has_text="book_flight")
            assert "approval: interrupted" in await booking.inner_text()
            # The run list is a stream update of its own: it may land a moment after the run's header.
            listed = page.locator(".run-item .pill", has_text="interrupted")
            await listed.wait_for(timeout=10_000)
            assert await listed.count() == 1
            ARTIFACTS.mkdir(exist_ok=True)
            await page.screenshot(path=str(ARTIFACTS / "interrupted_run.png"), full_page=True)
            assert problems == []
        finally:
            await browser.close()
