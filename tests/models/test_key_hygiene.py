"""API keys go only where they belong, and never show up in what retinue prints or logs.

The rules these tests pin down:

- ANTHROPIC_API_KEY, like OPENAI_API_KEY, is sent only to its provider's own
  host; a compatible server at another base URL gets ANTHROPIC_COMPATIBLE_API_KEY
  (or an explicit `api_key`).
- A key passed in code is masked everywhere, exactly like one from the environment.
- A provider that echoes a key (in an error body, an in-stream error, a broken
  event) does not get it into an exception message or a retry log line.
- `retinue run` masks secrets in the prompt and the answer it prints.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest

from retinue import Agent, cli
from retinue.apps import AppSession
from retinue.errors import ModelError
from retinue.messages import AssistantMessage, ModelRequest, UserMessage
from retinue.models.anthropic import AnthropicModel
from retinue.models.base import Model
from retinue.models.openai import OpenAIModel
from retinue.redact import MASK, redact
from retinue.testing import FakeAnthropicServer, FakeOpenAIServer, HttpFault, MalformedBody, MidStreamError
from retinue.testing.fake_server_base import FakeServer
from retinue.testing.scripted import ScriptedModel

# Not shaped like any well-known key, so only registration (or the endpoint itself) can mask it.
CODE_KEY = "plain-code-key-7f3a9c2e1b"

ModelFactory = Callable[[FakeServer, str], Model]
RETRY_ONCE: dict[str, Any] = {"max_retries": 1, "retry_backoff": 0.0}

PROVIDERS: list[tuple[type[FakeServer], ModelFactory]] = [
    (
        FakeOpenAIServer,
        lambda server, key: OpenAIModel("gpt-4.1-mini", base_url=server.base_url, api_key=key, **RETRY_ONCE),
    ),
    (
        FakeAnthropicServer,
        lambda server, key: AnthropicModel("claude-sonnet-4-5", base_url=server.base_url, api_key=key, **RETRY_ONCE),
    ),
]
PROVIDER_IDS = ["openai", "anthropic"]


@pytest.fixture
def hello() -> ModelRequest:
    return ModelRequest(instructions="Be brief.", messages=[UserMessage("Hello?")], tools=[])


# --- Where keys are sent ------------------------------------------------------


async def test_the_anthropic_key_is_never_sent_to_another_server(
    hello: ModelRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-real-key-0123456789abcdef")
    monkeypatch.delenv("ANTHROPIC_COMPATIBLE_API_KEY", raising=False)
    async with FakeAnthropicServer(["Hello."], api_key=None) as server:
        await AnthropicModel("claude-sonnet-4-5", base_url=server.base_url).request(hello)
    assert "sk-ant-real-key" not in str(server.requests[0].headers)


async def test_an_anthropic_compatible_server_gets_its_own_key(
    hello: ModelRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-real-key-0123456789abcdef")
    monkeypatch.setenv("ANTHROPIC_COMPATIBLE_API_KEY", "test-key")
    async with FakeAnthropicServer(["Hello."]) as server:
        response = await AnthropicModel("claude-sonnet-4-5", base_url=server.base_url).request(hello)
    assert response.message.text == "Hello."
    assert server.requests[0].headers["x-api-key"] == "test-key"


def test_the_official_anthropic_host_still_gets_the_standard_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-real-key-0123456789abcdef")
    monkeypatch.setenv("ANTHROPIC_COMPATIBLE_API_KEY", "not-for-anthropic")
    model = AnthropicModel("claude-sonnet-4-5")
    assert model._api.endpoint.headers["x-api-key"] == "sk-ant-real-key-0123456789abcdef"


# --- Keys passed in code --------------------------------------------------------


@pytest.mark.parametrize("make", [OpenAIModel, AnthropicModel], ids=PROVIDER_IDS)
def test_a_key_passed_in_code_is_masked_like_one_from_the_environment(make: Callable[..., Model]) -> None:
    key = f"{CODE_KEY}-{make.__name__}"
    make("some-model", api_key=key)
    assert redact(f"the key is {key}") == f"the key is {MASK}"


# --- Keys a provider echoes back -------------------------------------------------


@pytest.mark.parametrize(("server_type", "make"), PROVIDERS, ids=PROVIDER_IDS)
async def test_a_key_echoed_in_a_stream_error_stays_out_of_the_error_and_the_retry_log(
    server_type: type[FakeServer], make: ModelFactory, hello: ModelRequest, caplog: pytest.LogCaptureFixture
) -> None:
    echo = MidStreamError(message=f"Overloaded; your key {CODE_KEY} is fine")
    async with server_type([echo, echo], api_key=None) as server:
        model = make(server, CODE_KEY)
        with caplog.at_level(logging.INFO, logger="retinue.models"), pytest.raises(ModelError) as raised:
            await model.request(hello, on_text=lambda _: None)
    assert "Overloaded" in str(raised.value)
    assert CODE_KEY not in str(raised.value)
    assert "retry 1 of 1" in caplog.text
    assert CODE_KEY not in caplog.text


@pytest.mark.parametrize(("server_type", "make"), PROVIDERS, ids=PROVIDER_IDS)
async def test_a_key_echoed_in_a_malformed_event_stays_out_of_the_error(
    server_type: type[FakeServer], make: ModelFactory, hello: ModelRequest
) -> None:
    broken = MalformedBody(body=f'{{"echo": "{CODE_KEY}')
    async with server_type([broken], api_key=None) as server:
        with pytest.raises(ModelError) as raised:
            await make(server, CODE_KEY).request(hello, on_text=lambda _: None)
    assert "event" in str(raised.value)
    assert CODE_KEY not in str(raised.value)


@pytest.mark.parametrize(("server_type", "make"), PROVIDERS, ids=PROVIDER_IDS)
async def test_another_secret_echoed_in_an_error_body_is_masked_too(
    server_type: type[FakeServer], make: ModelFactory, hello: ModelRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A gateway quoting its own upstream token back, say: not this model's key, but still a secret.
    monkeypatch.setenv("UPSTREAM_GATEWAY_TOKEN", "gateway-token-5d8e1a4c")
    fault = HttpFault(400, message="upstream rejected token gateway-token-5d8e1a4c")
    async with server_type([fault], api_key=None) as server:
        with pytest.raises(ModelError) as raised:
            await make(server, CODE_KEY).request(hello)
    assert "upstream rejected token" in str(raised.value)
    assert "gateway-token-5d8e1a4c" not in str(raised.value)


# --- What `retinue run` prints ----------------------------------------------------


class _EchoApp:
    """The smallest application `retinue run` can load: one agent that repeats the prompt back."""

    name = "echo"
    description = "Repeats the prompt."
    architectures = ("single",)
    example_prompt = "Hello"

    def session(self, architecture: str, model: Any, approver: Any, traveller: str | None = None) -> AppSession:
        def echo(request: ModelRequest) -> AssistantMessage:
            prompt = request.messages[-1]
            assert isinstance(prompt, UserMessage)
            return AssistantMessage(text=f"You said: {prompt.content}")

        return AppSession(agent=Agent("echo", model=ScriptedModel(echo)))


def test_retinue_run_masks_secrets_in_the_prompt_and_the_answer(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MY_SERVICE_TOKEN", "service-token-9b2f6d0e")
    monkeypatch.setattr("retinue.apps.load_app", lambda name: _EchoApp())
    code = cli.main(["run", "echo", "use service-token-9b2f6d0e to log in", "--no-trace", "--approve", "all"])
    out, err = capsys.readouterr()
    assert code == 0
    assert "You said: use [REDACTED] to log in" in out
    assert "use [REDACTED] to log in" in err
    assert "service-token-9b2f6d0e" not in out + err
