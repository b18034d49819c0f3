"""Fixtures for the embedded-model tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from retinue.models.http import close_sessions


@pytest.fixture(autouse=True)
async def _close_http_sessions() -> AsyncIterator[None]:
    # Each test has its own event loop; the shared HTTP session must close with it.
    yield
    await close_sessions()
