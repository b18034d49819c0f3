"""The official SDKs and our providers read the same answers from the fake servers.

This is what keeps the fakes honest: if a fake drifted from the real wire
format, the SDK (built from the providers' own API specs) would disagree.
"""

from __future__ import annotations

import json
from typing import Any

import anthropic
import openai
import pytest

from retinue.messages import ModelRequest, ModelResponse
from retinue.models.anthropic import AnthropicModel
from retinue.models.openai import OpenAIModel
from retinue.testing import FakeAnthropicServer, FakeOpenAIServer, FakeToolCall, Reply

REPLIES = {
    "text": Reply(text="Paris is sunny, Rome is cloudy.", input_tokens=1200, cache_read_tokens=1024, output_tokens=9),
    "tools": Reply(
        text="Checking both.",
        tool_calls=[
            FakeToolCall("get_weather", {"city": "Paris"}, id="call_1"),
            FakeToolCall("get_weather", {"city": "Rome", "units": ["C", "F"]}, id="call_2"),
        ],
        input_tokens=300,
        cache_read_tokens=0,
        cache_write_tokens=0,
        output_tokens=40,
    ),
}


def summary(text: str, calls: list[tuple[str, str, Any]], usage: tuple[int, ...]) -> dict[str, Any]:
    return {"text": text, "calls": calls, "usage": usage}


def ours(response: ModelResponse) -> dict[str, Any]:
    usage = response.usage
    return summary(
        response.message.text,
        [(call.id, call.name, call.arguments) for call in response.message.tool_calls],
        (usage.input_tokens, usage.cache_read_tokens, usage.cache_write_tokens, usage.output_tokens),
    )


@pytest.mark.parametrize("kind", list(REPLIES))
@pytest.mark.parametrize("stream", [False, True])
async def test_openai_sdk_parity(weather_request: ModelRequest, kind: str, stream: bool) -> None:
    async with FakeOpenAIServer([REPLIES[kind], REPLIES[kind]]) as server:
        model = OpenAIModel("gpt-4.1-mini", base_url=server.base_url, api_key="test-key")
        mine = ours(await model.request(weather_request, on_text=(lambda _: None) if stream else None))
        client = openai.AsyncOpenAI(base_url=server.base_url, api_key="test-key", max_retries=0)
        try:
            arguments: dict[str, Any] = {
                "model": "gpt-4.1-mini",
                "messages": server.requests[0].body["messages"],
                "tools": server.requests[0].body["tools"],
            }
            if stream:
                async with client.chat.completions.stream(
                    **arguments, stream_options={"include_usage": True}
                ) as events:
                    completion: Any = await events.get_final_completion()
            else:
                completion = await client.chat.completions.create(**arguments)
        finally:
            await client.close()
    message = completion.choices[0].message
    usage = completion.usage
    theirs = summary(
        message.content or "",
        [(call.id, call.function.name, json.loads(call.function.arguments)) for call in message.tool_calls or ()],
        (usage.prompt_tokens, usage.prompt_tokens_details.cached_tokens, 0, usage.completion_tokens),
    )
    assert mine == theirs
    assert completion.choices[0].finish_reason == ("tool_calls" if kind == "tools" else "stop")


@pytest.mark.parametrize("kind", list(REPLIES))
@pytest.mark.parametrize("stream", [False, True])
async def test_anthropic_sdk_parity(weather_request: ModelRequest, kind: str, stream: bool) -> None:
    reply = REPLIES[kind]
    async with FakeAnthropicServer([reply, reply]) as server:
        model = AnthropicModel("claude-haiku-4-5", base_url=server.base_url, api_key="test-key")
        mine = ours(await model.request(weather_request, on_text=(lambda _: None) if stream else None))
        client = anthropic.AsyncAnthropic(base_url=server.base_url, api_key="test-key", max_retries=0)
        try:
            sent = server.requests[0].body
            arguments: dict[str, Any] = {
                "model": "claude-haiku-4-5",
                "max_tokens": 1024,
                "system": sent["system"],
                "messages": sent["messages"],
                "tools": sent["tools"],
            }
            if stream:
                async with client.messages.stream(**arguments) as events:
                    message: Any = await events.get_final_message()
            else:
                message = await client.messages.create(**arguments)
        finally:
            await client.close()
    usage = message.usage
    read = usage.cache_read_input_tokens or 0
    write = usage.cache_creation_input_tokens or 0
    theirs = summary(
        "".join(block.text for block in message.content if block.type == "text"),
        [(block.id, block.name, block.input) for block in message.content if block.type == "tool_use"],
        (usage.input_tokens + read + write, read, write, usage.output_tokens),
    )
    assert mine == theirs
    assert message.stop_reason == ("tool_use" if kind == "tools" else "end_turn")


async def test_anthropic_sdk_reads_thinking_like_we_do(weather_request: ModelRequest) -> None:
    reply = Reply(reasoning="Two cities, two calls.", tool_calls=[FakeToolCall("get_weather", {"city": "Paris"})])
    async with FakeAnthropicServer([reply, reply]) as server:
        model = AnthropicModel("claude-haiku-4-5", base_url=server.base_url, api_key="test-key")
        mine = await model.request(weather_request, on_text=lambda _: None)
        client = anthropic.AsyncAnthropic(base_url=server.base_url, api_key="test-key", max_retries=0)
        try:
            async with client.messages.stream(
                model="claude-haiku-4-5",
                max_tokens=4096,
                thinking={"type": "enabled", "budget_tokens": 2048},
                messages=[{"role": "user", "content": "Weather?"}],
            ) as events:
                message: Any = await events.get_final_message()
        finally:
            await client.close()
    thinking = message.content[0]
    assert thinking.type == "thinking"
    assert (thinking.thinking, thinking.signature) == (
        mine.message.reasoning[0].text,
        mine.message.reasoning[0].signature,
    )


async def test_sdk_errors_match_ours(weather_request: ModelRequest) -> None:
    async with FakeOpenAIServer(["unused"]) as server:
        client = openai.AsyncOpenAI(base_url=server.base_url, api_key="wrong-key-1234", max_retries=0)
        try:
            with pytest.raises(openai.AuthenticationError) as raised:
                await client.chat.completions.create(model="gpt-4.1-mini", messages=[{"role": "user", "content": "x"}])
        finally:
            await client.close()
    assert raised.value.status_code == 401
    assert raised.value.code == "invalid_api_key"
