"""The fake servers themselves: their checks, policies and standalone process."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest

from retinue.errors import BadRequestError
from retinue.messages import AssistantMessage, ModelRequest, ToolCall, ToolResult, ToolResultsMessage, UserMessage
from retinue.models.anthropic import AnthropicModel
from retinue.models.base import Model
from retinue.models.openai import OpenAIModel
from retinue.testing import FakeAnthropicServer, FakeOpenAIServer, ToolThenAnswer


async def converse(model: Model, request: ModelRequest, max_turns: int = 10) -> list[AssistantMessage]:
    """Play the tool loop: answer every tool call with a result until the model answers."""
    turns: list[AssistantMessage] = []
    for _ in range(max_turns):
        response = await model.request(request)
        turns.append(response.message)
        request.messages.append(response.message)
        if not response.message.tool_calls:
            return turns
        request.messages.append(
            ToolResultsMessage([ToolResult(call.id, call.name, "result") for call in response.message.tool_calls])
        )
    raise AssertionError("the policy never answered")


@pytest.mark.parametrize("server_class", [FakeOpenAIServer, FakeAnthropicServer])
async def test_tool_then_answer_policy(
    server_class: type[FakeOpenAIServer] | type[FakeAnthropicServer], weather_request: ModelRequest
) -> None:
    policy = ToolThenAnswer("get_weather", 3, parallel=2, arguments={"city": "Paris"}, answer="All done.")
    async with server_class(policy) as server:
        model: Model = (
            OpenAIModel("m", base_url=server.base_url, api_key="test-key")
            if server_class is FakeOpenAIServer
            else AnthropicModel("m", base_url=server.base_url, api_key="test-key")
        )
        turns = await converse(model, weather_request)
    assert [len(turn.tool_calls) for turn in turns] == [2, 1, 0]
    assert turns[0].tool_calls[0].arguments == {"city": "Paris"}
    assert turns[-1].text == "All done."


async def test_an_exhausted_script_fails_clearly(weather_request: ModelRequest) -> None:
    async with FakeOpenAIServer(["only one"]) as server:
        model = OpenAIModel("m", base_url=server.base_url, api_key="test-key")
        await model.request(weather_request)
        with pytest.raises(BadRequestError, match="script exhausted"):
            await model.request(weather_request)


async def test_openai_fake_rejects_unanswered_tool_calls() -> None:
    request = ModelRequest(
        instructions="",
        messages=[
            UserMessage("hi"),
            AssistantMessage(tool_calls=[ToolCall("call_1", "t", {})]),
            UserMessage("no tool result in between"),
        ],
        tools=[],
    )
    async with FakeOpenAIServer(["unused"]) as server:
        with pytest.raises(BadRequestError, match="call_1"):
            await OpenAIModel("m", base_url=server.base_url, api_key="test-key").request(request)


async def test_anthropic_fake_requires_the_version_header() -> None:
    async with (
        FakeAnthropicServer(["unused"]) as server,
        aiohttp.ClientSession() as session,
        session.post(
            f"{server.base_url}/v1/messages",
            json={"model": "m", "max_tokens": 5, "messages": []},
            headers={"x-api-key": "test-key"},
        ) as response,
    ):
        body = await response.json()
    assert response.status == 400
    assert body["error"] == {"type": "invalid_request_error", "message": "anthropic-version: header is required"}


async def test_latency_is_applied(weather_request: ModelRequest) -> None:
    async with FakeOpenAIServer(["a"], latency_ms=100) as server:
        started = time.perf_counter()
        await OpenAIModel("m", base_url=server.base_url, api_key="test-key").request(weather_request)
    assert time.perf_counter() - started >= 0.1


@pytest.fixture
async def standalone_anthropic() -> AsyncIterator[str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "retinue.testing.fake_anthropic",
        "--port",
        "0",
        "--latency-ms",
        "50",
        "--reply",
        "tool-then-answer",
        "--tool-name",
        "get_weather",
        "--tool-calls",
        "2",
        "--tool-args",
        '{"city": "Oslo"}',
        "--answer",
        "Cold.",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert process.stdout is not None
    try:
        port = int((await asyncio.wait_for(process.stdout.readline(), timeout=10)).decode())
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        assert await asyncio.wait_for(process.wait(), timeout=10) == 0


async def test_standalone_process(standalone_anthropic: str, weather_request: ModelRequest) -> None:
    model = AnthropicModel("claude-sonnet-4-5", base_url=standalone_anthropic, api_key="test-key")
    started = time.perf_counter()
    turns = await converse(model, weather_request)
    assert time.perf_counter() - started >= 3 * 0.05
    assert [call.arguments for turn in turns for call in turn.tool_calls] == [{"city": "Oslo"}, {"city": "Oslo"}]
    assert turns[-1].text == "Cold."
