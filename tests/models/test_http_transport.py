"""The shared transport: SSE parsing, retries, error mapping, for both providers alike."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from multidict import CIMultiDict

from retinue.errors import (
    AuthenticationError,
    BadRequestError,
    ProviderUnavailableError,
    RateLimitError,
    ResponseFormatError,
)
from retinue.messages import ModelRequest
from retinue.models.anthropic import AnthropicModel
from retinue.models.base import Model
from retinue.models.http import SSEParser, parse_retry_after, shared_session
from retinue.models.openai import OpenAIModel
from retinue.testing import (
    DropConnection,
    FakeAnthropicServer,
    FakeOpenAIServer,
    HttpFault,
    MalformedBody,
    MidStreamError,
    ScriptItem,
)
from retinue.testing.fake_server_base import FakeServer

SECRET = "sk-secret-do-not-leak-123456789"


# --- SSE parsing ------------------------------------------------------------

STREAM = (
    b'event: message_start\r\ndata: {"a": 1}\r\n\r\n'
    b": keep-alive comment\n\n"
    b"data: first line\ndata: second line\n\n"
    b"event: caf\xc3\xa9\ndata: \xe2\x82\xac uro\n\n"
    b"data:no-space\rdata: lone-cr\r\r"
    b"data: [DONE]\n\n"
)
EXPECTED = [
    ("message_start", '{"a": 1}'),
    ("message", "first line\nsecond line"),
    ("café", "€ uro"),
    ("message", "no-space\nlone-cr"),
    ("message", "[DONE]"),
]


def parse_in_chunks(data: bytes, sizes: Callable[[int], int]) -> list[tuple[str, str]]:
    parser = SSEParser()
    events: list[tuple[str, str]] = []
    position = 0
    step = 0
    while position < len(data):
        size = sizes(step)
        events += parser.feed(data[position : position + size])
        position += size
        step += 1
    return events


def test_sse_parser_whole_stream() -> None:
    assert SSEParser().feed(STREAM) == EXPECTED


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 11])
def test_sse_parser_is_robust_to_any_chunk_boundary(size: int) -> None:
    # Size 1 splits every CRLF and every multi-byte character.
    assert parse_in_chunks(STREAM, lambda _: size) == EXPECTED


def test_sse_parser_drops_an_unterminated_event() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: complete\n\ndata: never finished") == [("message", "complete")]


# --- Retry-after parsing ----------------------------------------------------


def test_parse_retry_after_prefers_milliseconds() -> None:
    assert parse_retry_after(CIMultiDict({"retry-after-ms": "250", "retry-after": "3"})) == 0.25
    assert parse_retry_after(CIMultiDict({"retry-after": "1.5"})) == 1.5
    assert parse_retry_after(CIMultiDict({"retry-after": "nonsense"})) is None
    assert parse_retry_after(CIMultiDict()) is None
    http_date = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 30))
    delay = parse_retry_after(CIMultiDict({"retry-after": http_date}))
    assert delay is not None and 25 < delay <= 31


# --- Faults, for both providers ---------------------------------------------


@dataclass
class Provider:
    name: str
    server: type[FakeServer]
    env_var: str
    custom_server_env_var: str  # the key variable for a server named by base_url

    def model(self, server: FakeServer, **options: Any) -> Model:
        options.setdefault("api_key", server.api_key)
        options.setdefault("retry_backoff", 0.01)
        if self.server is FakeOpenAIServer:
            return OpenAIModel("gpt-4.1-mini", base_url=server.base_url, **options)
        return AnthropicModel("claude-sonnet-4-5", base_url=server.base_url, **options)


PROVIDERS = [
    Provider("openai", FakeOpenAIServer, "OPENAI_API_KEY", "OPENAI_COMPATIBLE_API_KEY"),
    Provider("anthropic", FakeAnthropicServer, "ANTHROPIC_API_KEY", "ANTHROPIC_COMPATIBLE_API_KEY"),
]


@pytest.fixture(params=PROVIDERS, ids=lambda provider: provider.name)
def provider(request: pytest.FixtureRequest) -> Provider:
    result: Provider = request.param
    return result


async def run(
    provider: Provider,
    script: list[ScriptItem],
    request: ModelRequest,
    *,
    stream: bool = False,
    **options: Any,
) -> tuple[Any, FakeServer, list[str]]:
    """One model call against a fresh fake; returns the response or raised error, the server, streamed text."""
    pieces: list[str] = []
    async with provider.server(script) as server:
        model = provider.model(server, **options)
        try:
            outcome: Any = await model.request(request, on_text=pieces.append if stream else None)
        except Exception as error:  # noqa: BLE001 - the tests inspect whichever error it was
            outcome = error
    return outcome, server, pieces


async def test_429_honours_retry_after_then_succeeds(provider: Provider, weather_request: ModelRequest) -> None:
    started = time.perf_counter()
    # A long backoff proves the wait came from the header, not the backoff.
    response, server, _ = await run(
        provider, [HttpFault(429, retry_after=0.1), "Sunny."], weather_request, retry_backoff=5.0
    )
    elapsed = time.perf_counter() - started
    assert response.message.text == "Sunny."
    assert len(server.requests) == 2
    assert 0.09 <= elapsed < 1.0


async def test_retry_after_ms_is_honoured(provider: Provider, weather_request: ModelRequest) -> None:
    started = time.perf_counter()
    response, _, _ = await run(
        provider, [HttpFault(429, retry_after_ms=120), "Sunny."], weather_request, retry_backoff=5.0
    )
    assert response.message.text == "Sunny."
    assert 0.11 <= time.perf_counter() - started < 1.0


async def test_retry_after_beyond_the_cap_fails_at_once(provider: Provider, weather_request: ModelRequest) -> None:
    error, server, _ = await run(provider, [HttpFault(429, retry_after=3600), "never"], weather_request)
    assert isinstance(error, RateLimitError)
    assert "3600" in str(error)
    assert len(server.requests) == 1


async def test_429_forever_raises_rate_limit_error(provider: Provider, weather_request: ModelRequest) -> None:
    error, server, _ = await run(provider, [HttpFault(429)] * 3, weather_request, max_retries=2)
    assert isinstance(error, RateLimitError)
    assert error.status == 429
    assert len(server.requests) == 3


@pytest.mark.parametrize("status", [500, 503, 529])
async def test_server_error_then_success(provider: Provider, weather_request: ModelRequest, status: int) -> None:
    response, server, _ = await run(provider, [HttpFault(status), "Recovered."], weather_request)
    assert response.message.text == "Recovered."
    assert len(server.requests) == 2


async def test_server_error_forever_gives_up_after_max_retries(
    provider: Provider, weather_request: ModelRequest
) -> None:
    error, server, _ = await run(provider, [HttpFault(500)] * 4, weather_request, max_retries=3)
    assert isinstance(error, ProviderUnavailableError)
    assert error.status == 500
    assert "HTTP 500" in str(error) and "3 retries" in str(error)
    assert len(server.requests) == 4


async def test_zero_retries_means_one_attempt(provider: Provider, weather_request: ModelRequest) -> None:
    error, server, _ = await run(provider, [HttpFault(500), "unused"], weather_request, max_retries=0)
    assert isinstance(error, ProviderUnavailableError)
    assert len(server.requests) == 1


async def test_wrong_key_names_the_env_var_and_hides_the_key(provider: Provider, weather_request: ModelRequest) -> None:
    error, server, _ = await run(provider, ["unused"], weather_request, api_key=SECRET)
    assert isinstance(error, AuthenticationError)
    assert error.status == 401
    assert provider.custom_server_env_var in str(error)
    assert "rejected the API key" in str(error)
    # Not the key, nor the masked form OpenAI quotes back.
    for leak in (SECRET, SECRET[-4:]):
        assert leak not in str(error)
        assert leak not in repr(error)
    assert len(server.requests) == 1  # never retried


async def test_the_key_never_appears_in_reprs(provider: Provider) -> None:
    async with provider.server(["unused"]) as server:
        model = provider.model(server, api_key=SECRET)
        assert SECRET not in repr(model)
        assert SECRET not in repr(vars(model) if hasattr(model, "__dict__") else model)


async def test_the_openai_key_is_never_sent_to_another_server(
    weather_request: ModelRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.delenv("OPENAI_COMPATIBLE_API_KEY", raising=False)
    async with FakeOpenAIServer(["Hello."], api_key=None) as server:
        await OpenAIModel("local-llm", base_url=server.base_url).request(weather_request)
    assert SECRET not in str(server.requests[0].headers)


async def test_missing_key_fails_before_any_request(
    provider: Provider, weather_request: ModelRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(provider.env_var, raising=False)
    model: Model = OpenAIModel("gpt-4.1-mini") if provider.name == "openai" else AnthropicModel("claude-sonnet-4-5")
    with pytest.raises(AuthenticationError, match=provider.env_var):
        await model.request(weather_request)


@pytest.mark.parametrize("status", [400, 404, 422])
async def test_bad_request_carries_the_providers_message(
    provider: Provider, weather_request: ModelRequest, status: int
) -> None:
    fault = HttpFault(status, message="messages.0.content: this field is wrong in a very specific way")
    error, server, _ = await run(provider, [fault, "unused"], weather_request)
    assert isinstance(error, BadRequestError)
    assert error.status == status
    assert "this field is wrong in a very specific way" in str(error)
    assert len(server.requests) == 1


async def test_malformed_json_body_is_a_format_error(provider: Provider, weather_request: ModelRequest) -> None:
    error, _, _ = await run(provider, [MalformedBody(), "unused"], weather_request)
    assert isinstance(error, ResponseFormatError)
    assert "not valid JSON" in str(error)


async def test_malformed_event_in_a_stream_is_a_format_error(provider: Provider, weather_request: ModelRequest) -> None:
    error, _, _ = await run(provider, [MalformedBody(), "unused"], weather_request, stream=True)
    assert isinstance(error, ResponseFormatError)


async def test_dropped_connection_is_retried(provider: Provider, weather_request: ModelRequest) -> None:
    response, server, _ = await run(provider, [DropConnection(), "Back."], weather_request)
    assert response.message.text == "Back."
    assert len(server.requests) == 2


async def test_stream_dropped_before_any_text_is_retried(provider: Provider, weather_request: ModelRequest) -> None:
    response, server, pieces = await run(provider, [DropConnection(), "Back again."], weather_request, stream=True)
    assert response.message.text == "Back again."
    assert "".join(pieces) == "Back again."
    assert len(server.requests) == 2


async def test_stream_cut_after_text_is_not_retried(provider: Provider, weather_request: ModelRequest) -> None:
    error, server, pieces = await run(
        provider, [DropConnection(after_text="It is sunny in Par"), "never"], weather_request, stream=True
    )
    assert isinstance(error, ProviderUnavailableError)
    assert "cut" in str(error)
    assert "".join(pieces) == "It is sunny in Par"
    assert len(server.requests) == 1


async def test_in_stream_overload_before_text_is_retried(provider: Provider, weather_request: ModelRequest) -> None:
    response, server, _ = await run(provider, [MidStreamError(), "Fine now."], weather_request, stream=True)
    assert response.message.text == "Fine now."
    assert len(server.requests) == 2


async def test_in_stream_error_after_text_is_not_retried(provider: Provider, weather_request: ModelRequest) -> None:
    error, server, _ = await run(
        provider, [MidStreamError(after_text="Partial"), "never"], weather_request, stream=True
    )
    assert isinstance(error, ProviderUnavailableError)
    assert len(server.requests) == 1


async def test_timeouts_are_retried_then_reported(provider: Provider, weather_request: ModelRequest) -> None:
    async with provider.server(["slow", "slow"], latency_ms=400) as server:
        model = provider.model(server, timeout=0.1, max_retries=1)
        with pytest.raises(ProviderUnavailableError, match="timed out"):
            await model.request(weather_request)
        assert len(server.requests) == 2


async def test_connection_refused_is_reported(provider: Provider, weather_request: ModelRequest) -> None:
    async with provider.server(["unused"]) as server:
        model = provider.model(server, max_retries=1)
    # The server is closed now: nothing listens on its port.
    with pytest.raises(ProviderUnavailableError, match="connection"):
        await model.request(weather_request)


async def test_one_session_per_loop_with_unlimited_connections() -> None:
    session = shared_session()
    assert shared_session() is session
    assert session.connector is not None and session.connector.limit == 0


async def test_concurrent_requests_share_the_session(provider: Provider, weather_request: ModelRequest) -> None:
    async with provider.server(["ok"] * 50, latency_ms=20) as server:
        model = provider.model(server)
        started = time.perf_counter()
        responses = await asyncio.gather(*(model.request(weather_request) for _ in range(50)))
        # Concurrent, not serialised behind a connection limit.
        assert time.perf_counter() - started < 1.0
    assert [response.message.text for response in responses] == ["ok"] * 50
