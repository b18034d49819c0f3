"""AnthropicModel against the fake Messages server."""

from __future__ import annotations

from typing import Any

import pytest

from retinue.errors import AuthenticationError, BadRequestError
from retinue.messages import (
    AssistantMessage,
    ModelRequest,
    ModelSettings,
    Reasoning,
    ToolCall,
    ToolResult,
    ToolResultsMessage,
    ToolSchema,
    UserMessage,
)
from retinue.models.anthropic import AnthropicModel
from retinue.testing import FakeAnthropicServer, FakeToolCall, Reply

WEATHER_TOOL = ToolSchema(
    name="get_weather",
    description="Current weather for a city.",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)

TWO_CALLS = Reply(
    text="Let me check.",
    tool_calls=[
        FakeToolCall("get_weather", {"city": "Paris"}, id="toolu_paris"),
        FakeToolCall("get_weather", {"city": "Rome"}, id="toolu_rome"),
    ],
)
EPHEMERAL = {"type": "ephemeral"}


def model_for(server: FakeAnthropicServer, **options: Any) -> AnthropicModel:
    return AnthropicModel("claude-sonnet-4-5", base_url=server.base_url, api_key="test-key", **options)


def breakpoints(body: dict[str, Any]) -> list[str]:
    """Where cache_control markers sit, as readable paths."""
    found = [f"tools[{i}]" for i, tool in enumerate(body.get("tools", [])) if "cache_control" in tool]
    found += [f"system[{i}]" for i, block in enumerate(body.get("system", [])) if "cache_control" in block]
    for m, message in enumerate(body["messages"]):
        content = message["content"]
        if isinstance(content, list):
            found += [f"messages[{m}][{b}]" for b, block in enumerate(content) if "cache_control" in block]
    return found


async def test_plain_text(weather_request: ModelRequest) -> None:
    async with FakeAnthropicServer(["Sunny in both."]) as server:
        response = await model_for(server).request(weather_request)
    assert response.message.text == "Sunny in both."
    assert response.stop_reason == "end_turn"
    assert response.model == "anthropic:claude-sonnet-4-5"
    assert response.response_id and response.response_id.startswith("msg_")
    sent = server.requests[0]
    assert sent.headers["x-api-key"] == "test-key"
    assert sent.headers["anthropic-version"] == "2023-06-01"
    assert sent.body["max_tokens"] == 4096
    assert sent.body["system"] == [{"type": "text", "text": "You are a weather assistant.", "cache_control": EPHEMERAL}]
    assert sent.body["tools"] == [
        {
            "name": "get_weather",
            "description": "Current weather for a city.",
            "input_schema": WEATHER_TOOL.parameters,
            "cache_control": EPHEMERAL,
        }
    ]


@pytest.mark.parametrize("stream", [False, True])
async def test_tool_calls(weather_request: ModelRequest, stream: bool) -> None:
    pieces: list[str] = []
    async with FakeAnthropicServer([TWO_CALLS], stream_chunk_chars=3) as server:
        response = await model_for(server).request(weather_request, on_text=pieces.append if stream else None)
    assert response.stop_reason == "tool_use"
    assert response.message.text == "Let me check."
    assert response.message.tool_calls == [
        ToolCall("toolu_paris", "get_weather", {"city": "Paris"}),
        ToolCall("toolu_rome", "get_weather", {"city": "Rome"}),
    ]
    if stream:
        assert len(pieces) > 1 and "".join(pieces) == "Let me check."


async def test_cache_breakpoints_sit_on_the_stable_prefix_and_the_newest_message() -> None:
    request = ModelRequest(
        instructions="Be brief.",
        messages=[
            UserMessage("Weather?"),
            AssistantMessage(text="Checking.", tool_calls=[ToolCall("toolu_1", "get_weather", {"city": "Paris"})]),
            ToolResultsMessage([ToolResult("toolu_1", "get_weather", "sunny")]),
        ],
        tools=[WEATHER_TOOL, ToolSchema("get_time", "Local time.", {"type": "object"})],
    )
    async with FakeAnthropicServer(["ok"]) as server:
        await model_for(server).request(request)
    assert breakpoints(server.requests[0].body) == ["tools[1]", "system[0]", "messages[2][0]"]


async def test_cache_prompt_false_sends_no_breakpoints(weather_request: ModelRequest) -> None:
    async with FakeAnthropicServer(["ok"]) as server:
        await model_for(server, cache_prompt=False).request(weather_request)
    assert breakpoints(server.requests[0].body) == []


async def test_multi_turn_conversation_reads_the_previous_turn_from_cache() -> None:
    instructions = "You are a meticulous weather assistant. " * 200  # over Sonnet's 1024-token minimum
    messages: list[Any] = [UserMessage("Weather in Paris?")]
    request = ModelRequest(instructions=instructions, messages=messages, tools=[WEATHER_TOOL])
    call = FakeToolCall("get_weather", {"city": "Paris"}, id="toolu_1")
    async with FakeAnthropicServer([Reply(tool_calls=[call]), "Sunny."]) as server:
        model = model_for(server)
        first = await model.request(request)
        messages += [first.message, ToolResultsMessage([ToolResult("toolu_1", "get_weather", "sunny, 24C")])]
        second = await model.request(request)
    assert first.usage.cache_read_tokens == 0 and first.usage.cache_write_tokens > 1024
    # The whole first prompt is read back; only the new turn is written.
    assert second.usage.cache_read_tokens == first.usage.cache_write_tokens
    assert 0 < second.usage.cache_write_tokens < 100
    assert second.usage.cost_usd is not None and first.usage.cost_usd is not None
    assert second.usage.cost_usd < first.usage.cost_usd / 3


async def test_tool_results_share_one_user_message_with_is_error() -> None:
    calls = [ToolCall("toolu_1", "get_weather", {"city": "Paris"}), ToolCall("toolu_2", "get_weather", {"city": "X"})]
    request = ModelRequest(
        instructions="",
        messages=[
            UserMessage("Weather?"),
            AssistantMessage(tool_calls=calls),
            ToolResultsMessage(
                [
                    ToolResult("toolu_1", "get_weather", "sunny"),
                    ToolResult("toolu_2", "get_weather", "no such city", is_error=True),
                ]
            ),
            UserMessage("Also, be brief."),
        ],
        tools=[WEATHER_TOOL],
    )
    async with FakeAnthropicServer(["ok"]) as server:
        await model_for(server).request(request)
    messages = server.requests[0].body["messages"]
    assert "system" not in server.requests[0].body
    assert [message["role"] for message in messages] == ["user", "assistant", "user"]
    assert messages[1]["content"] == [
        {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
        {"type": "tool_use", "id": "toolu_2", "name": "get_weather", "input": {"city": "X"}},
    ]
    assert messages[2]["content"] == [
        {"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"},
        {"type": "tool_result", "tool_use_id": "toolu_2", "content": "no such city", "is_error": True},
        {"type": "text", "text": "Also, be brief.", "cache_control": EPHEMERAL},
    ]


@pytest.mark.parametrize("stream", [False, True])
async def test_thinking_round_trip(weather_request: ModelRequest, stream: bool) -> None:
    weather_request.settings = ModelSettings(thinking_budget_tokens=2048)
    thinking = Reply(
        reasoning="The user wants two cities; call the tool for each.",
        redacted_thinking="EuYBCkQYAiJA-opaque-redacted-data",
        tool_calls=[FakeToolCall("get_weather", {"city": "Paris"}, id="toolu_1")],
    )
    on_text = (lambda _: None) if stream else None
    async with FakeAnthropicServer([thinking, "Sunny."]) as server:
        model = model_for(server)
        first = await model.request(weather_request, on_text=on_text)
        reasoning = first.message.reasoning
        assert [r.text for r in reasoning] == ["The user wants two cities; call the tool for each.", ""]
        assert reasoning[0].signature  # signed, so it can go back
        assert reasoning[1].redacted_data == "EuYBCkQYAiJA-opaque-redacted-data"
        weather_request.messages += [
            first.message,
            ToolResultsMessage([ToolResult("toolu_1", "get_weather", "sunny")]),
        ]
        second = await model.request(weather_request, on_text=on_text)
    assert second.message.text == "Sunny."
    body = server.requests[1].body
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    assert body["max_tokens"] == 4096 + 2048  # max_tokens must exceed the budget
    assert body["messages"][1]["content"][:2] == [
        {"type": "thinking", "thinking": reasoning[0].text, "signature": reasoning[0].signature},
        {"type": "redacted_thinking", "data": "EuYBCkQYAiJA-opaque-redacted-data"},
    ]


async def test_tampered_thinking_is_refused_like_the_real_api(weather_request: ModelRequest) -> None:
    weather_request.settings = ModelSettings(thinking_budget_tokens=1024)
    weather_request.messages += [
        AssistantMessage(
            tool_calls=[ToolCall("toolu_1", "get_weather", {"city": "Paris"})],
            reasoning=[Reasoning(text="edited thoughts", signature="not-the-real-signature")],
        ),
        ToolResultsMessage([ToolResult("toolu_1", "get_weather", "sunny")]),
    ]
    async with FakeAnthropicServer(["unused"]) as server:
        with pytest.raises(BadRequestError, match="signature"):
            await model_for(server).request(weather_request)


async def test_reasoning_without_a_signature_is_not_sent(weather_request: ModelRequest) -> None:
    # Reasoning from another provider (no signature) cannot go to Anthropic.
    weather_request.messages += [
        AssistantMessage(text="Hi.", reasoning=[Reasoning(text="thoughts from a local model")]),
        UserMessage("And now?"),
    ]
    async with FakeAnthropicServer(["ok"]) as server:
        await model_for(server).request(weather_request)
    assert server.requests[0].body["messages"][1]["content"] == [{"type": "text", "text": "Hi."}]


@pytest.mark.parametrize("stream", [False, True])
async def test_usage_is_normalised_to_include_cached_tokens(weather_request: ModelRequest, stream: bool) -> None:
    reply = Reply(text="ok", input_tokens=100, cache_read_tokens=900, cache_write_tokens=50, output_tokens=20)
    async with FakeAnthropicServer([reply]) as server:
        response = await model_for(server).request(weather_request, on_text=(lambda _: None) if stream else None)
    usage = response.usage
    assert (usage.input_tokens, usage.cache_read_tokens, usage.cache_write_tokens) == (1050, 900, 50)
    assert usage.output_tokens == 20
    # claude-sonnet-4-5: $3 input, $0.30 cache read, $3.75 cache write, $15 output per million.
    assert usage.cost_usd == pytest.approx((100 * 3 + 900 * 0.3 + 50 * 3.75 + 20 * 15) / 1e6)


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        (ModelSettings(tool_choice="required"), {"type": "any"}),
        (ModelSettings(tool_choice="none"), {"type": "none"}),
        (ModelSettings(parallel_tool_calls=False), {"type": "auto", "disable_parallel_tool_use": True}),
        (ModelSettings(), None),
    ],
)
async def test_tool_choice(weather_request: ModelRequest, settings: ModelSettings, expected: Any) -> None:
    weather_request.settings = settings
    async with FakeAnthropicServer(["ok"]) as server:
        await model_for(server).request(weather_request)
    assert server.requests[0].body.get("tool_choice") == expected


@pytest.mark.parametrize(
    ("wire", "ours"),
    [
        ("end_turn", "end_turn"),
        ("stop_sequence", "end_turn"),
        ("max_tokens", "max_tokens"),
        ("refusal", "content_filter"),
        ("pause_turn", "other"),
    ],
)
async def test_stop_reasons(weather_request: ModelRequest, wire: str, ours: str) -> None:
    async with FakeAnthropicServer([Reply(text="x", stop_reason=wire)]) as server:
        response = await model_for(server).request(weather_request)
    assert response.stop_reason == ours


async def test_settings_are_sent(weather_request: ModelRequest) -> None:
    weather_request.settings = ModelSettings(temperature=0.3, max_tokens=512, extra={"metadata": {"user_id": "u1"}})
    async with FakeAnthropicServer(["ok"]) as server:
        await model_for(server, headers={"anthropic-beta": "some-beta"}).request(weather_request)
    sent = server.requests[0]
    assert sent.body["temperature"] == 0.3
    assert sent.body["max_tokens"] == 512
    assert sent.body["metadata"] == {"user_id": "u1"}
    assert sent.headers["anthropic-beta"] == "some-beta"


async def test_a_gateway_at_another_base_url_may_need_no_key(
    weather_request: ModelRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.delenv("ANTHROPIC_COMPATIBLE_API_KEY", raising=False)
    async with FakeAnthropicServer(["ok"], api_key=None) as server:
        response = await AnthropicModel("claude-haiku-4-5", base_url=server.base_url).request(weather_request)
    assert response.message.text == "ok"
    assert "x-api-key" not in server.requests[0].headers


async def test_exact_token_counts_come_from_the_counting_endpoint(weather_request: ModelRequest) -> None:
    from retinue.window import TokenCounter

    async with FakeAnthropicServer([]) as server:
        model = model_for(server)
        counted = await model.count_tokens(weather_request)

    assert isinstance(model, TokenCounter)  # so context policies with exact_token_counts=True can use it
    [sent] = server.requests
    assert sent.path == "/v1/messages/count_tokens"
    assert "max_tokens" not in sent.body and sent.body["tools"][0]["name"] == "get_weather"
    assert counted > 0


async def test_counting_tokens_with_a_bad_key_is_an_authentication_error(weather_request: ModelRequest) -> None:
    async with FakeAnthropicServer([]) as server:
        # A server at another base URL takes its key from its own variable, which the message names.
        with pytest.raises(AuthenticationError, match="ANTHROPIC_COMPATIBLE_API_KEY"):
            model = AnthropicModel("claude-sonnet-4-5", base_url=server.base_url, api_key="wrong-key")
            await model.count_tokens(weather_request)
