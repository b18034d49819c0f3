"""What the embedded model is shown and kept from, so that a small model calls tools sensibly.

These run without the weights: they check the prompt text and the guards that decide what the grammar offers.
"""

from __future__ import annotations

from retinue.messages import AssistantMessage, ToolCall, ToolResult, ToolResultsMessage, ToolSchema, UserMessage
from retinue.models.local import _JsonEnvelope, _overused_tool, _ParsedReply

SEARCH = ToolSchema(
    name="search_flights",
    description="Find flights.",
    parameters={
        "type": "object",
        "properties": {
            "origin": {"type": "string", "description": "City or airport code"},
            "passengers": {"type": "integer", "description": "Number of seats needed"},
        },
        "required": ["origin"],
    },
)


def test_the_example_call_fills_in_only_the_required_arguments_and_names_the_optional_ones() -> None:
    described = _JsonEnvelope().describe([SEARCH], required=False)

    assert '{"tool": "search_flights", "arguments": {"origin": "<City or airport code>"}}' in described
    assert '"passengers"' not in described
    assert "optional arguments, only when the request asks for them: passengers (Number of seats needed)" in described


def turn_calling(name: str, n: int) -> list[AssistantMessage | ToolResultsMessage]:
    call = ToolCall(f"call_{n}", name, {"topic": "return date", "value": f"2026-12-{15 + n}"})
    return [AssistantMessage(tool_calls=[call]), ToolResultsMessage([ToolResult(call.id, name, "Recorded.")])]


def reply_calling(name: str) -> _ParsedReply:
    return _ParsedReply(tool_calls=[ToolCall("call_next", name, {"topic": "return date", "value": "2026-12-30"})])


def test_a_tool_called_on_each_of_the_last_three_turns_is_taken_away_for_the_next() -> None:
    history = [UserMessage("Plan a trip."), *turn_calling("record_decision", 1), *turn_calling("record_decision", 2)]
    assert _overused_tool(reply_calling("record_decision"), history) is None

    history += turn_calling("record_decision", 3)
    assert _overused_tool(reply_calling("record_decision"), history) == "record_decision"


def test_a_streak_is_broken_by_a_turn_that_used_another_tool() -> None:
    history = [
        UserMessage("Plan a trip."),
        *turn_calling("record_decision", 1),
        *turn_calling("ask_flights", 2),
        *turn_calling("record_decision", 3),
        *turn_calling("record_decision", 4),
    ]
    assert _overused_tool(reply_calling("record_decision"), history) is None
    assert _overused_tool(reply_calling("ask_hotels"), history) is None
