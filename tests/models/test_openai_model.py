"""OpenAIModel against the fake Chat Completions server."""

from __future__ import annotations

import json
from typing import Any

import pytest

from retinue.errors import BadRequestError
from retinue.messages import (
    AssistantMessage,
    ModelRequest,
    ModelSettings,
    ToolCall,
    ToolResult,
    ToolResultsMessage,
    ToolSchema,
    UserMessage,
)
from retinue.models.openai import OpenAIModel
from retinue.models.pricing import Price
from retinue.testing import FakeOpenAIServer, FakeToolCall, HttpFault, Reply

WEATHER_TOOL = ToolSchema(
    name="get_weather",
    description="Current weather for a city.",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)

PARALLEL_CALLS = Reply(
    tool_calls=[
        FakeToolCall("get_weather", {"city": "Paris"}, id="call_paris"),
        FakeToolCall("get_weather", {"city": "Rome"}, id="call_rome"),
        FakeToolCall("get_weather", '{"city": "Ber', id="call_broken"),
    ]
)


def model_for(server: FakeOpenAIServer, **options: Any) -> OpenAIModel:
    return OpenAIModel("gpt-4.1-mini", base_url=server.base_url, api_key="test-key", **options)


async def test_plain_text(weather_request: ModelRequest) -> None:
    async with FakeOpenAIServer(["Sunny in both."]) as server:
        response = await model_for(server).request(weather_request)
    assert response.message.text == "Sunny in both."
    assert response.message.tool_calls == []
    assert response.stop_reason == "end_turn"
    assert response.model == "openai:gpt-4.1-mini"
    assert response.response_id and response.response_id.startswith("chatcmpl-")
    assert response.usage.requests == 1 and response.usage.input_tokens > 0


async def test_request_body_follows_chat_completions(weather_request: ModelRequest) -> None:
    weather_request.settings = ModelSettings(
        temperature=0.2,
        max_tokens=300,
        top_p=0.9,
        tool_choice="required",
        parallel_tool_calls=False,
        extra={"seed": 7, "reasoning_effort": "low"},
    )
    async with FakeOpenAIServer(["ok"]) as server:
        await model_for(server).request(weather_request)
    sent = server.requests[0]
    assert sent.path == "/v1/chat/completions"
    assert sent.headers["Authorization"] == "Bearer test-key"
    assert sent.body == {
        "model": "gpt-4.1-mini",
        "messages": [
            {"role": "system", "content": "You are a weather assistant."},
            {"role": "user", "content": "What's the weather in Paris and Rome?"},
        ],
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "get_weather",
                    "description": "Current weather for a city.",
                    "parameters": WEATHER_TOOL.parameters,
                },
            }
        ],
        "tool_choice": "required",
        "parallel_tool_calls": False,
        # A compatible server (the fake is not api.openai.com) gets the older name.
        "max_tokens": 300,
        "temperature": 0.2,
        "top_p": 0.9,
        "seed": 7,
        "reasoning_effort": "low",
    }


def test_openai_itself_gets_max_completion_tokens(weather_request: ModelRequest) -> None:
    weather_request.settings = ModelSettings(max_tokens=300)
    body = OpenAIModel("gpt-5", api_key="k")._body(weather_request)
    assert body["max_completion_tokens"] == 300 and "max_tokens" not in body


async def test_parallel_tool_calls_and_malformed_arguments(weather_request: ModelRequest) -> None:
    async with FakeOpenAIServer([PARALLEL_CALLS]) as server:
        response = await model_for(server).request(weather_request)
    assert response.stop_reason == "tool_use"
    assert response.message.tool_calls == [
        ToolCall("call_paris", "get_weather", {"city": "Paris"}),
        ToolCall("call_rome", "get_weather", {"city": "Rome"}),
        ToolCall("call_broken", "get_weather", {}, invalid_arguments='{"city": "Ber'),
    ]


async def test_streamed_text_arrives_in_pieces(weather_request: ModelRequest) -> None:
    pieces: list[str] = []
    async with FakeOpenAIServer([Reply(text="A long and sunny answer.", output_tokens=6)]) as server:
        response = await model_for(server).request(weather_request, on_text=pieces.append)
    assert len(pieces) > 1
    assert "".join(pieces) == response.message.text == "A long and sunny answer."
    assert response.usage.output_tokens == 6  # from the final usage chunk
    assert server.requests[0].body["stream"] is True
    assert server.requests[0].body["stream_options"] == {"include_usage": True}


async def test_streamed_tool_calls_are_assembled_by_index(weather_request: ModelRequest) -> None:
    pieces: list[str] = []
    async with FakeOpenAIServer([PARALLEL_CALLS], stream_chunk_chars=3) as server:
        response = await model_for(server).request(weather_request, on_text=pieces.append)
    assert pieces == []
    assert response.stop_reason == "tool_use"
    assert [(call.id, call.arguments, call.invalid_arguments) for call in response.message.tool_calls] == [
        ("call_paris", {"city": "Paris"}, None),
        ("call_rome", {"city": "Rome"}, None),
        ("call_broken", {}, '{"city": "Ber'),
    ]


async def test_a_whole_tool_use_conversation_is_encoded_correctly() -> None:
    calls = [ToolCall("call_1", "get_weather", {"city": "Paris"}), ToolCall("call_2", "get_weather", {"city": "Rome"})]
    request = ModelRequest(
        instructions="Be brief.",
        messages=[
            UserMessage("Weather?"),
            AssistantMessage(text="Checking.", tool_calls=calls),
            ToolResultsMessage(
                [
                    ToolResult("call_1", "get_weather", "sunny"),
                    ToolResult("call_2", "get_weather", "city not found", is_error=True),
                ]
            ),
        ],
        tools=[WEATHER_TOOL],
    )
    async with FakeOpenAIServer(["Paris is sunny."]) as server:
        response = await model_for(server).request(request)
    assert response.message.text == "Paris is sunny."
    messages = server.requests[0].body["messages"]
    assert messages[2] == {
        "role": "assistant",
        "content": "Checking.",
        "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}},
            {"id": "call_2", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Rome"}'}},
        ],
    }
    assert messages[3:] == [
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
        {"role": "tool", "tool_call_id": "call_2", "content": "city not found"},
    ]


async def test_malformed_arguments_go_back_as_valid_json_to_compatible_servers() -> None:
    broken = ToolCall("call_1", "get_weather", {}, invalid_arguments='{"city": ')
    request = ModelRequest(
        instructions="",
        messages=[
            UserMessage("Weather?"),
            AssistantMessage(tool_calls=[broken]),
            ToolResultsMessage([ToolResult("call_1", "get_weather", "invalid JSON", is_error=True)]),
        ],
        tools=[WEATHER_TOOL],
    )
    async with FakeOpenAIServer(["ok"]) as server:
        await model_for(server).request(request)
    sent = server.requests[0].body["messages"][1]
    assert sent["content"] == ""  # a string: llama.cpp's server refuses null here
    assert json.loads(sent["tool_calls"][0]["function"]["arguments"]) == {}
    # OpenAI itself takes the model's own text back.
    assert (
        OpenAIModel("gpt-4.1", api_key="k")._body(request)["messages"][1]["tool_calls"][0]["function"]["arguments"]
        == '{"city": '
    )


@pytest.mark.parametrize("stream", [False, True])
async def test_reasoning_content_from_compatible_servers(weather_request: ModelRequest, stream: bool) -> None:
    reply = Reply(text="42.", reasoning="Let me think about the weather first.")
    async with FakeOpenAIServer([reply], api_key=None) as server:
        model = OpenAIModel("qwen3", base_url=server.base_url)  # no key needed for a local server
        response = await model.request(weather_request, on_text=(lambda _: None) if stream else None)
    assert response.message.text == "42."
    assert [r.text for r in response.message.reasoning] == ["Let me think about the weather first."]
    assert "Authorization" not in server.requests[0].headers


@pytest.mark.parametrize("stream", [False, True])
async def test_usage_and_cost_with_cached_and_reasoning_tokens(weather_request: ModelRequest, stream: bool) -> None:
    reply = Reply(text="ok", reasoning="x" * 80, input_tokens=2000, cache_read_tokens=1536, output_tokens=100)
    async with FakeOpenAIServer([reply]) as server:
        response = await model_for(server).request(weather_request, on_text=(lambda _: None) if stream else None)
    usage = response.usage
    assert (usage.input_tokens, usage.cache_read_tokens, usage.output_tokens) == (2000, 1536, 100)
    assert usage.reasoning_tokens == 20  # completion_tokens_details.reasoning_tokens
    # gpt-4.1-mini: $0.40 / M input, $0.10 / M cached, $1.60 / M output.
    assert usage.cost_usd == pytest.approx((464 * 0.4 + 1536 * 0.1 + 100 * 1.6) / 1e6)


async def test_simulated_automatic_prompt_cache(weather_request: ModelRequest) -> None:
    weather_request.instructions = "You are a weather assistant. " * 300  # well over 1024 tokens
    async with FakeOpenAIServer(["one", "two"]) as server:
        model = model_for(server)
        first = await model.request(weather_request)
        second = await model.request(weather_request)
    assert first.usage.cache_read_tokens == 0
    assert second.usage.cache_read_tokens >= 1024
    assert second.usage.cache_read_tokens % 128 == 0
    assert second.usage.cost_usd is not None and first.usage.cost_usd is not None
    assert second.usage.cost_usd < first.usage.cost_usd


async def test_price_override_prices_a_self_hosted_model(weather_request: ModelRequest) -> None:
    reply = Reply(text="ok", input_tokens=1000, output_tokens=1000)
    async with FakeOpenAIServer([reply, reply]) as server:
        unpriced = await OpenAIModel("my-llama", base_url=server.base_url, api_key="test-key").request(weather_request)
        priced = await OpenAIModel(
            "my-llama", base_url=server.base_url, api_key="test-key", price=Price(input=1.0, output=2.0)
        ).request(weather_request)
    assert unpriced.usage.cost_usd is None  # unknown, never "free"
    assert priced.usage.cost_usd == pytest.approx(0.003)


@pytest.mark.parametrize(
    ("finish_reason", "stop_reason"),
    [("stop", "end_turn"), ("length", "max_tokens"), ("content_filter", "content_filter"), ("weird", "other")],
)
async def test_finish_reasons(weather_request: ModelRequest, finish_reason: str, stop_reason: str) -> None:
    async with FakeOpenAIServer([Reply(text="x", stop_reason=finish_reason)]) as server:
        response = await model_for(server).request(weather_request)
    assert response.stop_reason == stop_reason


async def test_extra_headers_are_sent(weather_request: ModelRequest) -> None:
    async with FakeOpenAIServer(["ok"]) as server:
        await model_for(server, headers={"OpenAI-Organization": "org-123"}).request(weather_request)
    assert server.requests[0].headers["OpenAI-Organization"] == "org-123"


async def test_errors_from_a_compatible_server_name_it(weather_request: ModelRequest) -> None:
    async with FakeOpenAIServer([HttpFault(400, message="context length exceeded")], api_key=None) as server:
        with pytest.raises(BadRequestError) as raised:
            await OpenAIModel("qwen", base_url=server.base_url).request(weather_request)
    assert f"OpenAI-compatible server 127.0.0.1:{server.port}" in str(raised.value)
    assert "context length exceeded" in str(raised.value)
