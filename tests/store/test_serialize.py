"""Requests and responses survive a trip through JSON unchanged."""

from __future__ import annotations

import json

import pytest

from retinue.messages import (
    AssistantMessage,
    ModelRequest,
    ModelResponse,
    ModelSettings,
    Reasoning,
    ToolCall,
    ToolResult,
    ToolResultsMessage,
    ToolSchema,
    UserMessage,
)
from retinue.store import request_from_json, request_to_json, response_from_json, response_to_json
from retinue.store.serialize import DecodeError
from retinue.usage import Usage


def _request() -> ModelRequest:
    return ModelRequest(
        instructions="Plan trips.\nBe brief — and précis.",
        messages=[
            UserMessage("Book Paris"),
            AssistantMessage(
                text="Checking.",
                tool_calls=[
                    # A dict argument with its own "type" key must come back as a dict, not a dataclass.
                    ToolCall("c1", "search", {"type": "ToolCall", "filters": {"type": "object", "n": [1, 2.5, None]}}),
                    ToolCall("c2", "broken", {}, invalid_arguments='{"city": '),
                ],
                reasoning=[Reasoning("thinking…", signature="sig"), Reasoning(redacted_data="opaque")],
            ),
            ToolResultsMessage([ToolResult("c1", "search", "found 3"), ToolResult("c2", "broken", "bad", True)]),
        ],
        tools=[
            ToolSchema(
                "search",
                "Search flights.",
                {"type": "object", "properties": {"type": {"type": "string"}}, "required": ["type"]},
            )
        ],
        settings=ModelSettings(temperature=0.2, tool_choice="auto", extra={"reasoning_effort": "low"}),
    )


def test_a_request_round_trips_exactly() -> None:
    request = _request()
    text = request_to_json(request)
    assert json.loads(text)["type"] == "ModelRequest"
    assert request_from_json(text) == request


def test_a_response_round_trips_exactly() -> None:
    response = ModelResponse(
        message=AssistantMessage(text="Done", tool_calls=[ToolCall("c9", "book", {"seat": "12A"})]),
        usage=Usage(input_tokens=120, output_tokens=8, cache_read_tokens=100, requests=1, cost_usd=None),
        model="anthropic:claude-sonnet-4-5",
        stop_reason="tool_use",
        response_id="msg_1",
    )
    assert response_from_json(response_to_json(response)) == response


def test_the_json_is_tagged_for_people_and_other_tools_to_read() -> None:
    data = json.loads(request_to_json(_request()))
    assert [message["type"] for message in data["messages"]] == [
        "UserMessage",
        "AssistantMessage",
        "ToolResultsMessage",
    ]
    assert data["messages"][1]["tool_calls"][0] == {
        "type": "ToolCall",
        "id": "c1",
        "name": "search",
        "arguments": {"type": "ToolCall", "filters": {"type": "object", "n": [1, 2.5, None]}},
        "invalid_arguments": None,
    }


def test_json_of_the_wrong_shape_is_refused() -> None:
    with pytest.raises(DecodeError):
        request_from_json('{"type": "ModelRequest", "instructions": "x", "messages": [{"type": "Usage"}], "tools": []}')
    with pytest.raises(DecodeError):
        request_from_json('{"type": "ModelRequest", "instructions": "x", "messages": {}, "tools": []}')
