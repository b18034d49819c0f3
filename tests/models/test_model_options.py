"""Timeouts and retries, set by a model string's options or by the model classes, against real fake servers.

openai:qwen2.5@http://127.0.0.1:8080/v1?timeout=120&connect_timeout=3&max_retries=5
"""

from __future__ import annotations

import socket
from collections import OrderedDict
from collections.abc import Iterator

import pytest

from retinue import Agent
from retinue.errors import ConfigurationError, ProviderUnavailableError
from retinue.messages import ModelRequest, UserMessage
from retinue.models import AnthropicModel, OpenAIModel, resolve
from retinue.models.resolve import resolve_model
from retinue.testing import FakeAnthropicServer, FakeOpenAIServer, HttpFault

HELLO = ModelRequest(instructions="Be brief.", messages=[UserMessage("Say hello.")], tools=[])
UNAVAILABLE = HttpFault(503, retry_after=0)  # retry_after=0: the retries are taken at once


@pytest.fixture(autouse=True)
def fresh_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(resolve, "_cache", OrderedDict())
    monkeypatch.setenv("OPENAI_COMPATIBLE_API_KEY", "test-key")
    monkeypatch.setenv("ANTHROPIC_COMPATIBLE_API_KEY", "test-key")


@pytest.fixture
def unanswered_port() -> Iterator[int]:
    """A port whose listen queue is full: the kernel drops new connection attempts, so connecting hangs."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = server.getsockname()[1]
    queued = []
    for _ in range(3):
        client = socket.socket()
        client.setblocking(False)
        client.connect_ex(("127.0.0.1", port))
        queued.append(client)
    yield port
    for client in queued:
        client.close()
    server.close()


# --- from the model string --------------------------------------------------


async def test_a_stalled_server_times_out_after_the_strings_timeout() -> None:
    async with FakeOpenAIServer(["Too late."], latency_ms=10_000) as server:
        model = resolve_model(f"openai:qwen2.5@{server.base_url}?timeout=0.2&max_retries=0")
        with pytest.raises(ProviderUnavailableError, match=r"timed out \(timeout 0.2 s"):
            await model.request(HELLO)


async def test_a_stalled_stream_times_out_after_the_strings_timeout() -> None:
    async with FakeOpenAIServer(["Too late."], latency_ms=10_000) as server:
        model = resolve_model(f"openai:qwen2.5@{server.base_url}?timeout=0.2&max_retries=0")
        pieces: list[str] = []
        with pytest.raises(ProviderUnavailableError, match=r"no part of the answer came for 0\.2 s"):
            await model.request(HELLO, on_text=pieces.append)
    assert pieces == []


async def test_an_agent_on_the_string_ends_its_run_with_the_timeout() -> None:
    async with FakeOpenAIServer(["Too late."], latency_ms=10_000) as server:
        agent = Agent("helper", model=f"openai:qwen2.5@{server.base_url}?timeout=0.2&max_retries=0")
        result = await agent.run("Say hello.")
    assert result.status == "error"
    assert isinstance(result.error, ProviderUnavailableError)
    assert "timed out (timeout 0.2 s" in str(result.error)


async def test_a_server_failing_twice_is_outlasted_by_two_retries() -> None:
    async with FakeOpenAIServer([UNAVAILABLE, UNAVAILABLE, "Hello!"]) as server:
        model = resolve_model(f"openai:qwen2.5@{server.base_url}?max_retries=2")
        response = await model.request(HELLO)
        assert response.message.text == "Hello!"
        assert len(server.requests) == 3


async def test_a_server_failing_twice_outlasts_one_retry_with_a_clear_error() -> None:
    async with FakeOpenAIServer([UNAVAILABLE, UNAVAILABLE, "Hello!"]) as server:
        model = resolve_model(f"openai:qwen2.5@{server.base_url}?max_retries=1")
        with pytest.raises(ProviderUnavailableError) as failed:
            await model.request(HELLO)
        assert len(server.requests) == 2
    message = str(failed.value)
    assert "is unavailable (HTTP 503)" in message
    assert message.endswith("(gave up after 1 retry)")


async def test_the_connect_timeout_fires_long_before_the_timeout(unanswered_port: int) -> None:
    model = resolve_model(f"openai:qwen2.5@http://127.0.0.1:{unanswered_port}/v1?connect_timeout=0.2&max_retries=0")
    with pytest.raises(ProviderUnavailableError, match=r"timed out \(timeout 600 s, connect_timeout 0.2 s\)"):
        await model.request(HELLO)


async def test_anthropic_strings_take_the_same_options() -> None:
    async with FakeAnthropicServer([UNAVAILABLE, UNAVAILABLE, "Hello!"]) as server:
        without_retries = resolve_model(f"anthropic:claude-haiku-4-5@{server.base_url}?max_retries=0")
        with pytest.raises(ProviderUnavailableError, match="HTTP 503"):
            await without_retries.request(HELLO)
        with_one = resolve_model(f"anthropic:claude-haiku-4-5@{server.base_url}?max_retries=1&timeout=30")
        assert (await with_one.request(HELLO)).message.text == "Hello!"  # after the second 503


def test_a_models_spec_keeps_its_options_so_it_resolves_to_a_model_that_waits_alike() -> None:
    model = OpenAIModel("qwen2.5", base_url="http://127.0.0.1:8080/v1", timeout=30, max_retries=0)
    assert model.spec == "openai:qwen2.5@http://127.0.0.1:8080/v1?timeout=30&max_retries=0"
    again = resolve_model(model.spec)
    assert isinstance(again, OpenAIModel) and again.spec == model.spec
    assert OpenAIModel("gpt-4.1").spec == "openai:gpt-4.1"  # the defaults need no options


@pytest.mark.parametrize(
    ("spec", "error"),
    [
        (
            "openai:gpt-4.1?retries=2",
            "Unknown option 'retries' in 'openai:gpt-4.1?retries=2'. Did you mean 'max_retries'?",
        ),
        ("openai:gpt-4.1?timeout=0", "timeout=0 in 'openai:gpt-4.1?timeout=0' is not valid: it must be a number of"),
        ("openai:gpt-4.1?timeout=soon", "'soon' is not a number of seconds"),
        ("openai:gpt-4.1?max_retries=1.5", "it must be a whole number, 0 or more, not '1.5'"),
        ("openai:gpt-4.1?timeout", "'timeout' in 'openai:gpt-4.1?timeout' is not an option: write <option>=<value>"),
        ("openai:gpt-4.1?timeout=3&timeout=4", "The option 'timeout' is given twice"),
        ("openai:gpt-4.1?", "'openai:gpt-4.1?' has an empty option"),
        ("anthropic:claude-haiku-4-5?timeout=3&&max_retries=1", "has an empty option"),
        ("local?timeout=3", "'local' model strings take no options"),
    ],
)
def test_every_bad_option_is_refused_by_name(spec: str, error: str) -> None:
    with pytest.raises(ConfigurationError) as refused:
        resolve_model(spec)
    assert error in str(refused.value)


def test_the_error_for_an_unknown_option_lists_the_known_ones() -> None:
    with pytest.raises(ConfigurationError, match="take: timeout, connect_timeout, max_retries"):
        resolve_model("openai:gpt-4.1?read_timeout=3")


# --- from the model classes -------------------------------------------------


async def test_the_public_model_classes_take_the_same_settings() -> None:
    async with FakeOpenAIServer(["Too late."], latency_ms=10_000) as server:
        stalled = OpenAIModel("qwen2.5", base_url=server.base_url, timeout=0.2, max_retries=0)
        with pytest.raises(ProviderUnavailableError, match="timed out"):
            await stalled.request(HELLO)
    async with FakeAnthropicServer([UNAVAILABLE, UNAVAILABLE, "Hello!"]) as server:
        patient = AnthropicModel("claude-haiku-4-5", base_url=server.base_url, max_retries=2)
        assert (await patient.request(HELLO)).message.text == "Hello!"


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"timeout": 0}, "timeout must be a number of seconds above 0, not 0."),
        ({"timeout": float("nan")}, "timeout must be a number of seconds above 0, not nan."),
        ({"connect_timeout": -1}, "connect_timeout must be a number of seconds above 0, not -1."),
        ({"max_retries": -1}, "max_retries must be a whole number, 0 or more, not -1."),
        ({"max_retries": 2.5}, "max_retries must be a whole number, 0 or more, not 2.5."),
        ({"retry_backoff": -0.1}, "retry_backoff must be a number of seconds, 0 or more, not -0.1."),
    ],
)
def test_bad_settings_on_a_model_class_are_refused(options: dict[str, float], error: str) -> None:
    with pytest.raises(ConfigurationError) as refused:
        OpenAIModel("gpt-4.1", api_key="k", **options)  # type: ignore[arg-type]
    assert str(refused.value) == error
