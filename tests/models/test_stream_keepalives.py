"""A streamed answer that never starts times out, even when the server keeps the connection alive.

Servers and gateways keep a slow stream open with keep-alives: SSE comments
(`: keep-alive`, OpenRouter's `: OPENROUTER PROCESSING`) or Anthropic's `ping`
events. A read timeout between bytes never fires on such a stream, so a
request to a stuck server used to wait forever. The stream's `timeout` now
counts only events that are part of the answer, from the request on.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from aiohttp import web

from retinue.errors import ProviderUnavailableError
from retinue.messages import ModelRequest
from retinue.models.anthropic import AnthropicModel
from retinue.models.base import Model
from retinue.models.openai import OpenAIModel

KEEP_ALIVE_EVERY_SECONDS = 0.02


@dataclass(frozen=True)
class StuckProvider:
    """A provider's wire format for a stream that opens and then only ever sends keep-alives."""

    name: str
    path: str
    opening: bytes
    keep_alive: bytes

    def model(self, base_url: str, *, timeout: float, max_retries: int) -> Model:
        if self.name == "openai":
            return OpenAIModel(
                "gpt-4.1-mini",
                base_url=f"{base_url}/v1",
                api_key="key",
                timeout=timeout,
                max_retries=max_retries,
                retry_backoff=0.01,
            )
        return AnthropicModel(
            "claude-sonnet-4-5",
            base_url=base_url,
            api_key="key",
            timeout=timeout,
            max_retries=max_retries,
            retry_backoff=0.01,
        )


MESSAGE_START = {
    "type": "message_start",
    "message": {
        "id": "msg_stuck",
        "type": "message",
        "role": "assistant",
        "content": [],
        "model": "claude-sonnet-4-5",
        "stop_reason": None,
        "usage": {"input_tokens": 12, "output_tokens": 1},
    },
}

STUCK_PROVIDERS = [
    StuckProvider("openai", "/v1/chat/completions", opening=b"", keep_alive=b": keep-alive\n\n"),
    StuckProvider(
        "anthropic",
        "/v1/messages",
        opening=f"event: message_start\ndata: {json.dumps(MESSAGE_START)}\n\n".encode(),
        keep_alive=b'event: ping\ndata: {"type": "ping"}\n\n',
    ),
]


@pytest.fixture
async def stuck_server(request: pytest.FixtureRequest) -> AsyncIterator[tuple[StuckProvider, str, list[float]]]:
    """A server that accepts the request and then sends keep-alives until the client hangs up.

    Yields the provider, the server's base URL and the time each request arrived.
    """
    provider: StuckProvider = request.param
    arrivals: list[float] = []

    async def keep_alive_forever(http_request: web.Request) -> web.StreamResponse:
        arrivals.append(time.monotonic())
        await http_request.read()
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await response.prepare(http_request)
        try:
            if provider.opening:
                await response.write(provider.opening)
            while True:
                await response.write(provider.keep_alive)
                await asyncio.sleep(KEEP_ALIVE_EVERY_SECONDS)
        except ConnectionResetError:
            return response  # the client gave up: what the test waits for

    app = web.Application()
    app.router.add_post(provider.path, keep_alive_forever)
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield provider, f"http://127.0.0.1:{port}", arrivals
    finally:
        await runner.cleanup()


@pytest.mark.parametrize("stuck_server", STUCK_PROVIDERS, indirect=True, ids=lambda provider: provider.name)
async def test_a_stream_of_nothing_but_keep_alives_times_out_and_is_retried(
    stuck_server: tuple[StuckProvider, str, list[float]], weather_request: ModelRequest
) -> None:
    provider, base_url, arrivals = stuck_server
    model = provider.model(base_url, timeout=0.3, max_retries=1)
    pieces: list[str] = []
    started = time.monotonic()

    # Without a bound of its own, the stream would wait for as long as the server keeps it alive.
    async with asyncio.timeout(10):
        with pytest.raises(ProviderUnavailableError) as raised:
            await model.request(weather_request, on_text=pieces.append)

    message = str(raised.value)
    assert "no part of the answer came for 0.3 s (keep-alives do not count)" in message
    assert "gave up after 1 retry" in message
    assert "timeout=" in message, "it says what to change if the model really is that slow"
    assert len(arrivals) == 2, "the first attempt and one retry"
    assert 0.3 <= arrivals[1] - arrivals[0] < 1.5, "each attempt waited its timeout, about"
    assert time.monotonic() - started < 3
    assert pieces == []
