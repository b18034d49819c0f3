"""Tool testing: a (scripted) tester exercises one travel tool, its failures are collected, and a patch proposed."""

from __future__ import annotations

from pathlib import Path

import pytest

from retinue.errors import ConfigurationError
from retinue.improve import exercise_tool
from retinue.messages import ModelRequest
from retinue.testing.scripted import ScriptedModel, call
from retinue_travel.app import APP

NEW_DESCRIPTION = "Find flights on one day. date must be YYYY-MM-DD between 2026-12-01 and 2027-01-29."
REVIEW = {
    "problems": [
        {"call": 'search_flights(date="next friday")', "problem": "the date format is not in the description"}
    ],
    "description": NEW_DESCRIPTION,
    "error_messages": [
        {"when": "a missing destination", "current": "Field required", "suggested": "Give destination: a city."}
    ],
}


def scripted_tester() -> list[object]:
    return [
        [
            call("search_flights", origin="Seattle", destination="San Francisco", date="next friday"),
            call("search_flights", origin="SEA"),
        ],
        call("search_flights", origin="SEA", destination="SFO", date="2026-12-12"),
        call("final_result", **REVIEW),
    ]


async def test_the_tester_exercises_one_tool_and_its_failures_become_a_patch(tmp_path: Path) -> None:
    tester = ScriptedModel(scripted_tester())  # type: ignore[arg-type]

    result = await exercise_tool(APP, tool="search_flights", architecture="lead", model=tester, calls=3)

    assert result.path == "travel-lead/flights.tool.search_flights"
    by_date = {call.arguments.get("date"): call for call in result.calls}
    assert len(result.calls) == 3 and [call.ok for call in result.failures] == [False, False]
    assert "next friday" in by_date["next friday"].result  # the tool's own error, as the model read it
    assert "destination: Field required" in by_date[None].result  # the validation error names what is missing
    assert by_date["2026-12-12"].ok
    first: ModelRequest = tester.requests[0]
    assert "Make at least 3 calls" in first.instructions
    assert [schema.name for schema in first.tools] == ["search_flights", "final_result"]
    assert result.patch is not None
    [change] = result.patch.changes
    assert (change.path, change.new) == ("travel-lead/flights.tool.search_flights", NEW_DESCRIPTION)
    assert change.old.startswith("Find flights on one day between two cities or airports")
    [suggestion] = result.patch.suggestions
    assert suggestion.suggestion == "Give destination: a city." and "Field required" in suggestion.about
    assert "3 calls, 2 failed" in result.describe()
    result.patch.save(tmp_path / "tool.patch.json")  # a patch like any other: reviewable, applied only on request


async def test_a_tool_name_that_is_not_there_or_is_ambiguous_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="no tool 'teleport'; its tools: ask_cars, ask_flights"):
        await exercise_tool(APP, tool="teleport", architecture="lead", model=ScriptedModel([]))
    # In the lead tree each tool has one owner; a path names one precisely, as it does when names repeat.
    path = "travel-lead/flights.tool.flight_details"
    result = await exercise_tool(
        APP, tool=path, architecture="lead", model=ScriptedModel([call("final_result", **REVIEW)]), calls=1
    )
    assert result.path == path and result.calls == []
