"""What the embedded model is shown and kept from, so that a small model calls tools sensibly.

These run without the weights: they check the prompt text and the guards that decide what the grammar offers.
"""

from __future__ import annotations

from retinue.messages import AssistantMessage, ToolCall, ToolResult, ToolResultsMessage, ToolSchema, UserMessage
from retinue.models.local import _overused_tool
from retinue.models.local_engine import end_of_first_copy
from retinue.models.local_replies import JsonEnvelope, ParsedReply

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
    described = JsonEnvelope().describe([SEARCH], required=False)

    assert '{"tool": "search_flights", "arguments": {"origin": "<City or airport code>"}}' in described
    assert '"passengers"' not in described
    assert "optional arguments, only when the request asks for them: passengers (Number of seats needed)" in described


def turn_calling(name: str, n: int) -> list[AssistantMessage | ToolResultsMessage]:
    call = ToolCall(f"call_{n}", name, {"topic": "return date", "value": f"2026-12-{15 + n}"})
    return [AssistantMessage(tool_calls=[call]), ToolResultsMessage([ToolResult(call.id, name, "Recorded.")])]


def reply_calling(name: str) -> ParsedReply:
    return ParsedReply(tool_calls=[ToolCall("call_next", name, {"topic": "return date", "value": "2026-12-30"})])


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


PLAN = "The flight is NS120 (Northstar Airlines) and the hotel is H-JFK-02 Nimbus Suites Lower Manhattan. "


def test_a_reply_that_repeats_a_passage_three_times_ends_after_the_first_copy() -> None:
    # What Qwen2.5-Coder-1.5B wrote as a travel lead, twenty times over, until its token limit.
    opening = '{"answer": "The trip costs $1,388. '
    assert end_of_first_copy(opening + PLAN * 2) is None  # twice may be meant
    looping = opening + PLAN * 3 + PLAN[:17]  # checked every few tokens: the end falls anywhere in a copy
    end = end_of_first_copy(looping)
    assert end is not None
    # The opening and one copy of the plan (where a copy starts is ambiguous by the ". " both end with).
    kept = looping[:end]
    assert kept.count("NS120") == 1 and kept.rstrip(". ") == (opening + PLAN).rstrip(". ")


def test_short_repeats_and_rules_are_not_loops() -> None:
    assert end_of_first_copy("ok. " * 50) is None  # shorter than a sentence worth cutting
    assert end_of_first_copy("| a | b |\n" + "-" * 300) is None  # a rule, not a repeated passage
