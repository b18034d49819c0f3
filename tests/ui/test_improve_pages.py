"""The improvement run pages in the browser: scores per iteration as a line chart, the accepted diffs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from retinue.store import RunStore
from retinue.ui import UIServer

from .improve_samples import NEW_INSTRUCTIONS, OLD_INSTRUCTIONS, save_improvement

ARTIFACTS = Path(__file__).parent / "artifacts"


async def test_a_run_charts_train_and_held_out_per_iteration_and_shows_the_accepted_diffs(
    tmp_path: Path, browser_page: Any, page_problems: list[str]
) -> None:
    page = browser_page
    run_id = save_improvement(tmp_path / "improve")
    nothing = save_improvement(tmp_path / "improve", run_id="0000aaaa1111", accept=False)
    with RunStore(tmp_path / "runs.sqlite") as store:
        async with UIServer(store, port=0) as ui:
            await page.goto(ui.url)
            await page.get_by_role("link", name="Improvement runs").click()
            item = page.locator(f".report-item[data-run-id='{run_id}']")
            await item.wait_for()
            assert "held-out pass^2 0.00 → 0.50" in await item.inner_text()
            assert "nothing accepted" in await page.locator(f".report-item[data-run-id='{nothing}']").inner_text()

            await item.click()
            chart = page.locator("svg.score-chart")
            await chart.wait_for()
            # A point per candidate on each line (seed, iteration 1, iteration 3), and a × for each iteration
            # that made none.
            train = chart.locator(".ic-train-point")
            held_out = chart.locator(".ic-held-out-point")
            assert [await train.nth(n).get_attribute("data-candidate") for n in range(3)] == ["0", "1", "2"]
            assert await held_out.count() == 3
            assert [await mark.get_attribute("data-iteration") for mark in await chart.locator(".ic-none").all()] == [
                "2",
                "4",
            ]
            # Later iterations sit further right; a better score sits higher.
            seed_box, first_box, accepted_box = [await train.nth(n).bounding_box() for n in range(3)]
            assert seed_box["x"] < first_box["x"] < accepted_box["x"]
            assert seed_box["y"] > first_box["y"] > accepted_box["y"]
            assert await chart.locator(".ic-accepted").count() == 1

            await held_out.nth(2).hover()
            tip = await page.locator("#tip").inner_text()
            assert tip.startswith("iteration 3 · candidate 2 (from 1)\ntrain 0.75 · held-out pass^2 0.50")
            assert "gate: accepted" in tip
            await chart.locator(".ic-none[data-iteration='2']").hover()
            assert (await page.locator("#tip").inner_text()).startswith(
                "iteration 2: rejected on the minibatch (minibatch 0.33 → 0.33)"
            )

            change = page.locator(".change[data-path='travel-lead.instructions']")
            assert await change.locator("del").all_inner_texts() == ["dollars"]
            assert await change.locator("ins").all_inner_texts() == ["euros, as the booking tools do"]
            assert await change.locator("pre.old").inner_text() == OLD_INSTRUCTIONS
            assert await change.locator("pre.new").inner_text() == NEW_INSTRUCTIONS
            weather = page.locator(".change[data-path='travel-lead.tools.get_weather']")
            assert await weather.locator("ins").all_inner_texts() == [" forecast for a city, by day"]
            assert await weather.locator("del").count() == 0
            assert await page.locator(".change").count() == 2
            gates = await page.locator("table.candidates td.gate").all_inner_texts()
            assert gates == ["seed", "rejected: no better", "accepted"]
            await page.screenshot(path=str(ARTIFACTS / "improvement_run.png"), full_page=True)
            # For a person to check that the chart still reads without colour.
            greyscale = await page.add_style_tag(content="html { filter: grayscale(1); }")
            await page.screenshot(path=str(ARTIFACTS / "improvement_run_greyscale.png"), full_page=True)
            await greyscale.evaluate("style => style.remove()")

            await page.locator(f".report-item[data-run-id='{nothing}']").click()
            await page.get_by_text("No candidate beat the seed on the held-out tasks").wait_for()
            assert await page.locator("svg.score-chart .ic-accepted").count() == 0
    assert page_problems == []
