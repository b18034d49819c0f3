"""Shared fixtures for the provider tests: every test gets its loop's HTTP session closed."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from retinue.messages import ModelRequest, ToolSchema, UserMessage
from retinue.models.http import close_sessions


@pytest.fixture(autouse=True)
async def _close_http_sessions() -> AsyncIterator[None]:
    # pytest-asyncio gives each test its own loop; the shared session must
    # close with it, as the sync wrappers do in production.
    yield
    await close_sessions()


WEATHER_TOOL = ToolSchema(
    name="get_weather",
    description="Current weather for a city.",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)


@pytest.fixture
def weather_request() -> ModelRequest:
    return ModelRequest(
        instructions="You are a weather assistant.",
        messages=[UserMessage("What's the weather in Paris and Rome?")],
        tools=[WEATHER_TOOL],
    )
