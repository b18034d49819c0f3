"""Grading an episode: facts found however they are written, the end state's differences, tool calls, the verdict."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from retinue import Agent, RunContext, tool
from retinue.evals import (
    Episode,
    EvalTask,
    ScriptedUser,
    ToolCallRecord,
    contains_fact,
    diff_states,
    normalise,
    run_episode,
)
from retinue.testing.scripted import ScriptedModel, call

# -- facts ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("said", "fact"),
    [
        ("The total is 23553 dollars.", "$23,553"),
        ("The total is $23,553.", "23553"),
        ("Total: USD 23,553.00", "$23,553"),
        ("Price: €1 234", "1 234"),  # a no-break space between thousands
        ("flight NS120 to  New   York", "new york"),
        ("Your code is hx-1.", "HX-1"),
    ],
)
def test_facts_match_whatever_the_currency_case_spacing_and_separators(said: str, fact: str) -> None:
    assert contains_fact(said, fact)


@pytest.mark.parametrize(("said", "fact"), [("It costs $120.", "$12"), ("Order 1463 shipped.", "463"), ("", "HX-1")])
def test_a_number_is_not_found_inside_a_longer_one(said: str, fact: str) -> None:
    assert not contains_fact(said, fact)


def test_normalise_is_one_documented_rule() -> None:
    assert normalise("  Total:\n$23,553.00 ") == "total: 23553"


def test_an_empty_fact_is_refused_with_a_clear_error() -> None:
    with pytest.raises(ValueError, match="empty once normalised"):
        contains_fact("anything", "$")
    with pytest.raises(ValueError, match="non-empty strings"):
        EvalTask(id="t", instruction="x", required_facts=("",))
    with pytest.raises(ValueError, match="one string"):
        EvalTask(id="t", instruction="x", required_facts="HX-1")  # type: ignore[arg-type]


async def test_an_episode_finds_a_price_written_differently_and_can_replace_the_rule() -> None:
    task = EvalTask(id="price", instruction="x", required_facts=("$23,553",))

    def assistant() -> Agent[str]:
        return Agent(name="assistant", model=ScriptedModel(["It comes to 23553 USD."]))

    found = await run_episode(task, Episode(assistant(), list), ScriptedUser(["How much?"]))
    strict = await run_episode(task, Episode(assistant(), list, normalise=str), ScriptedUser(["How much?"]))

    assert found.passed and found.missing_facts == []
    assert strict.missing_facts == ["$23,553"]


# -- the end state -------------------------------------------------------------------------------------------


def booking(**changes: object) -> dict[str, object]:
    return {"traveller": "T1", "kind": "flight", "item": "NS120", "cabin": "economy", "price": 120, **changes}


def test_a_row_with_a_wrong_field_is_shown_as_that_field() -> None:
    expected = {"bookings": [booking(cabin="business", price=300)], "balances": {"card": 700}}
    actual = {"bookings": [booking()], "balances": {"card": 880}}

    assert diff_states(expected, actual) == [
        'bookings: row {"traveller": "T1", "kind": "flight", "item": "NS120"} differs: '
        'cabin: expected "business", got "economy"; price: expected 300, got 120',
        "balances.card: expected 700, got 880",
    ]


def test_missing_and_unexpected_rows_and_keys_are_named() -> None:
    expected = {"bookings": [booking(), booking(kind="hotel", item="H1", cabin=None, traveller="T2")], "note": "x"}
    actual = {"bookings": [booking(), {"kind": "car"}], "extra": 1}

    lines = diff_states(expected, actual)

    assert lines == [
        'bookings: missing row {"traveller": "T2", "kind": "hotel", "item": "H1", "cabin": null, "price": 120}',
        'bookings: unexpected row {"kind": "car"}',
        'note: missing (expected "x")',
        "extra: unexpected (got 1)",
    ]


def test_equal_rows_in_another_order_say_so_and_long_diffs_are_cut() -> None:
    assert diff_states([1, 2], [2, 1]) == ["state: the same 2 rows, in a different order"]
    many = diff_states({f"k{i}": i for i in range(30)}, {f"k{i}": -i for i in range(1, 31)}, max_lines=5)
    assert len(many) == 5 and many[-1] == "... and 27 more differences"


# -- tool calls and the verdict ------------------------------------------------------------------------------


@tool
def cancel_booking(context: RunContext, booking_id: str) -> str:
    """Cancel a booking."""
    if booking_id != "BK1":
        raise ValueError(f"no booking {booking_id}")
    context.deps.remove("BK1")
    return "Cancelled BK1."


def never_cancels(calls: Sequence[ToolCallRecord]) -> list[str]:
    return [f"cancel_booking was called ({call.arguments}) on a non-refundable ticket" for call in calls if call.ok]


async def test_every_tool_call_is_kept_with_its_result_and_the_runs_are_kept_in_memory() -> None:
    bookings = ["BK1"]
    model = ScriptedModel([call("cancel_booking", booking_id="BK9"), call("cancel_booking", booking_id="BK1"), "Done"])
    task = EvalTask(id="cancel", instruction="x", expected_state=[])

    result = await run_episode(
        task,
        Episode(Agent(name="a", model=model, tools=[cancel_booking]), lambda: bookings, deps=bookings),
        ScriptedUser(["Cancel"]),
    )

    assert result.passed
    assert [(c.user_turn, c.agent, c.name, c.arguments, c.ok) for c in result.tool_calls] == [
        (1, "a", "cancel_booking", {"booking_id": "BK9"}, False),
        (1, "a", "cancel_booking", {"booking_id": "BK1"}, True),
    ]
    assert "no booking BK9" in result.tool_calls[0].result
    assert result.tool_calls[1].result == "Cancelled BK1."
    [run] = result.runs
    assert run.completed and run.turns == 3


async def test_a_tool_call_check_fails_the_trial_and_the_verdict_says_everything_that_went_wrong() -> None:
    bookings = ["BK1"]
    model = ScriptedModel([call("cancel_booking", booking_id="BK9"), call("cancel_booking", booking_id="BK1"), "Done"])
    task = EvalTask(id="refuse", instruction="x", expected_state=["BK1"], required_facts=("non-refundable",))
    episode = Episode(
        Agent(name="a", model=model, tools=[cancel_booking]),
        lambda: bookings,
        deps=bookings,
        check_tool_calls=never_cancels,
    )

    result = await run_episode(task, episode, ScriptedUser(["Cancel my ticket"]))

    assert not result.passed
    assert result.tool_call_problems == ["cancel_booking was called ({'booking_id': 'BK1'}) on a non-refundable ticket"]
    assert result.verdict == "\n".join(
        [
            "FAILED: task 'refuse', trial 0: the user ended the conversation after 1 user message(s) and 3 assistant "
            "step(s).",
            "The end state differs from the expected state:",
            "  - state: expected 1 row, found 0",
            '  - state: missing row "BK1"',
            "Missing facts (not found in anything the assistant said): 'non-refundable'",
            "The tool calls broke the task's rules:",
            "  - cancel_booking was called ({'booking_id': 'BK1'}) on a non-refundable ticket",
            "Failing tool calls (1 of 2 calls):",
            '  - user message 1, a: cancel_booking({"booking_id": "BK9"}) -> Error: \'cancel_booking\' failed with '
            "ValueError: no booking BK9",
            "The assistant's last message: 'Done'",
        ]
    )


async def test_a_failed_run_is_in_the_verdict_and_a_passed_trial_says_passed() -> None:
    task = EvalTask(id="t", instruction="x")
    broken = Agent(name="a", model=ScriptedModel([]))
    fine = Agent(name="a", model=ScriptedModel(["Hello"]))

    failed = await run_episode(task, Episode(broken, list), ScriptedUser(["Hi"]))
    passed = await run_episode(task, Episode(fine, list), ScriptedUser(["Hi"]))

    assert failed.ending == "assistant_failed"
    assert "Error: the assistant's run did not complete: a: error: ScriptedModel" in failed.verdict
    assert failed.transcript[-1][0] == "note", "the error is not something the assistant said"
    assert passed.verdict == "passed"
