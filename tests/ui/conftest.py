"""A headless Chromium page for the browser tests: Debian's chromium, never Playwright's own download."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).parent / "artifacts"
"""Screenshots the browser tests take, for a person to look at."""


@pytest.fixture
async def browser_page() -> AsyncIterator[Any]:
    """A 1440x960 page in headless Chromium (skips the test where Chromium or Playwright is missing)."""
    if not shutil.which(CHROMIUM):
        pytest.skip("needs Debian's chromium at /usr/bin/chromium")
    async_api = pytest.importorskip("playwright.async_api")
    ARTIFACTS.mkdir(exist_ok=True)
    async with async_api.async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield await browser.new_page(viewport={"width": 1440, "height": 960})
        finally:
            await browser.close()


@pytest.fixture
def page_problems(browser_page: Any) -> list[str]:
    """Every error the page throws or logs to its console; a test ends by asserting there were none."""
    problems: list[str] = []
    browser_page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    browser_page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    return problems
