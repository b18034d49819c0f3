"""The eval report pages in the browser: the list, and pass^k per task and architecture charted with the delta."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from retinue.store import RunStore
from retinue.ui import UIServer

from .eval_samples import save_travel_history

ARTIFACTS = Path(__file__).parent / "artifacts"


async def test_a_report_charts_pass_hat_k_per_task_and_architecture_beside_the_previous_one(
    tmp_path: Path, browser_page: Any, page_problems: list[str]
) -> None:
    page = browser_page
    ids = save_travel_history(tmp_path / "evals")
    (tmp_path / "evals" / "half-written.json").write_text('{"label": "travel/lead", "results": [')
    with RunStore(tmp_path / "runs.sqlite") as store:
        async with UIServer(store, port=0) as ui:
            await page.goto(ui.url)
            await page.get_by_role("link", name="Eval reports").click()
            items = page.locator("#eval-list .report-item")
            await items.nth(3).wait_for()
            assert await items.count() == 4
            # Newest first: the half-written file was written last; reports go by the time they were made.
            order = [await items.nth(n).get_attribute("data-report-id") for n in range(4)]
            assert order == ["half-written", ids["lead_after"], ids["clones"], ids["lead_before"]]
            assert "unreadable" in await items.first.inner_text()
            newest = items.nth(1)
            assert "travel / lead / local" in await newest.inner_text()
            assert "pass^2 0.50" in await newest.inner_text()

            await newest.click()
            chart = page.locator("svg.pass-chart")
            await chart.wait_for()
            assert page.url.endswith(f"#eval={ids['lead_after']}")
            assert await page.locator("[data-stat=pass-2] .value").inner_text() == "0.50"
            assert "null" not in await page.locator("#detail").inner_text()
            assert await page.locator("[data-stat=delta] .value").inner_text() == "= 0.00"

            # One panel per architecture, the chosen report's marked; k = 2 by default.
            panels = chart.locator(".pass-panel")
            assert [await panels.nth(n).get_attribute("data-architecture") for n in range(2)] == ["clones", "lead"]
            lead = chart.locator(".pass-panel.chosen")
            assert await lead.get_attribute("data-architecture") == "lead"
            # paris went from 0 to 1 at k = 2, lisbon from 1 to 0: both deltas written, signed by shape too.
            assert await lead.locator(".delta[data-task='paris']").text_content() == "▲ +1.00"
            assert await lead.locator(".delta[data-task='lisbon']").text_content() == "▼ −1.00"
            assert await chart.locator(".pass-panel[data-architecture='clones'] .delta").count() == 0
            # The newest report's bar is as long as its score: paris full, lisbon empty.
            full = await lead.locator(".pk-cur[data-task='paris']").bounding_box()
            empty = await lead.locator(".pk-cur[data-task='lisbon']").bounding_box()
            assert full["width"] > 150 and empty["width"] <= 1.5
            await page.hover(".pass-panel.chosen .pk-cur[data-task='paris']")
            tip = await page.locator("#tip").inner_text()
            assert tip == "lead · paris\nnewest: pass^2 = 1.00 (2 of 2 trials passed)\nchange: ▲ +1.00"

            await page.get_by_role("radio", name="1").click()
            assert await lead.locator(".delta[data-task='paris']").text_content() == "▲ +0.50"
            assert await page.locator("[data-stat=delta] .value").inner_text() == "= 0.00"
            failure = page.locator(".failure[data-task-id='lisbon']")
            assert "the booking row differs: seats 1, expected 2" in await failure.inner_text()
            await page.screenshot(path=str(ARTIFACTS / "eval_report.png"), full_page=True)
            # For a person to check that the chart still reads without colour.
            greyscale = await page.add_style_tag(content="html { filter: grayscale(1); }")
            await page.screenshot(path=str(ARTIFACTS / "eval_report_greyscale.png"), full_page=True)
            await greyscale.evaluate("style => style.remove()")

            await page.locator(".report-item[data-report-id='half-written']").click()
            note = page.locator(".unreadable")
            await note.wait_for()
            assert (await note.inner_text()).startswith("This report file cannot be read: half-written.json is not")

            # Back to the runs page, and an unknown report's address says so instead of breaking.
            await page.get_by_role("link", name="Runs", exact=True).click()
            await page.locator("#detail .empty", has_text="Select a run.").wait_for()
            await page.goto(ui.url + "#eval=no-such-report")
            await page.locator("#detail .errtext", has_text="No eval report 'no-such-report'").wait_for()
    assert page_problems == ["Failed to load resource: the server responded with a status of 404 (Not Found)"]
