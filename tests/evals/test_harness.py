"""The eval harness: conversations between a user and an assistant, graded on end state and facts."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from retinue import Agent, RunContext, tool
from retinue.evals import STOP, Episode, EvalReport, EvalTask, ScriptedUser, SimulatedUser, run_episode, run_eval
from retinue.messages import ModelRequest, ToolResultsMessage, UserMessage
from retinue.testing.scripted import ScriptedModel, call


@tool(requires_approval=True)
def book_room(context: RunContext, room: str) -> str:
    """Book a hotel room."""
    context.deps.append(room)
    return f"Booked {room}, confirmation HX-1."


def room_booker(script: object) -> tuple[Agent, list[str]]:
    bookings: list[str] = []
    agent = Agent(name="assistant", model=ScriptedModel(script), tools=[book_room])  # type: ignore[arg-type]
    return agent, bookings


task = EvalTask(
    id="book-101",
    instruction="You are Ada. Book room 101.",
    expected_state=["101"],
    required_facts=("HX-1",),
    opening="Please book room 101.",
)


async def test_a_correct_episode_passes_on_state_and_facts() -> None:
    agent, bookings = room_booker([call("book_room", room="101"), "Done: confirmation HX-1."])
    user = ScriptedUser(["Please book room 101."])

    result = await run_episode(task, Episode(agent, lambda: bookings, deps=bookings), user)

    assert result.passed and result.state_matches and result.missing_facts == []
    assert result.user_turns == 1
    assert user.heard == [None, "Done: confirmation HX-1."]


async def test_a_wrong_booking_fails_on_state_and_a_missing_fact_is_named() -> None:
    agent, bookings = room_booker([call("book_room", room="102"), "Booked."])

    result = await run_episode(task, Episode(agent, lambda: bookings, deps=bookings), ScriptedUser(["Book 101"]))

    assert not result.passed
    assert not result.state_matches
    assert result.missing_facts == ["HX-1"]


async def test_without_approval_nothing_is_booked() -> None:
    agent, bookings = room_booker([call("book_room", room="101"), "Could not book."])
    episode = Episode(agent, lambda: bookings, deps=bookings, approver=None)

    result = await run_episode(task, episode, ScriptedUser(["Book 101"]))

    assert bookings == [] and not result.passed


async def test_pass_hat_k_is_the_chance_that_k_trials_all_succeed() -> None:
    outcomes = itertools.cycle(["101", "101", "999"])  # 2 of 3 trials book the right room

    def episodes(task: EvalTask) -> Episode:
        agent, bookings = room_booker([call("book_room", room=next(outcomes)), "Confirmation HX-1."])
        return Episode(agent, lambda: bookings, deps=bookings)

    report = await run_eval([task], episodes, lambda t: ScriptedUser(["Book 101"]), trials=3, concurrency=1)

    assert report.pass_hat(1) == pytest.approx(2 / 3)
    assert report.pass_hat(2) == pytest.approx(1 / 3)
    assert report.pass_hat(3) == 0.0
    with pytest.raises(ValueError, match="needs at least 4 trials"):
        report.pass_hat(4)


async def test_reports_round_trip_through_a_file(tmp_path: Path) -> None:
    agent, bookings = room_booker([call("book_room", room="101"), "HX-1"])
    report = await run_eval(
        [task], lambda t: Episode(agent, lambda: bookings, deps=bookings), lambda t: ScriptedUser(["Book 101"])
    )
    report.save(tmp_path / "r.json")

    loaded = EvalReport.load(tmp_path / "r.json")

    assert loaded.summary_row() == report.summary_row()
    assert loaded.results[0].transcript == report.results[0].transcript


async def test_the_simulated_user_plays_the_hidden_instruction_and_can_stop() -> None:
    def user_script(request: ModelRequest) -> str:
        assert "You are Ada. Book room 101." in request.instructions
        last = next(m.content for m in reversed(request.messages) if isinstance(m, UserMessage))
        return STOP if "HX-1" in last else "Hi, I need room 101 please."

    user = SimulatedUser(EvalTask(id="t", instruction="You are Ada. Book room 101."), ScriptedModel(user_script))
    agent, bookings = room_booker(
        lambda request: (
            "Confirmation HX-1."
            if any(isinstance(m, ToolResultsMessage) for m in request.messages)
            else call("book_room", room="101")
        )
    )

    result = await run_episode(
        EvalTask(id="t", instruction="You are Ada. Book room 101.", expected_state=["101"]),
        Episode(agent, lambda: bookings, deps=bookings),
        user,
    )

    assert result.passed
    assert [role for role, _ in result.transcript] == ["user", "assistant"]


async def test_a_conversation_stops_at_the_task_turn_limit() -> None:
    agent, bookings = room_booker(lambda request: "What room?")
    short = EvalTask(id="s", instruction="x", max_turns=2)

    result = await run_episode(short, Episode(agent, lambda: bookings), ScriptedUser(["a", "b", "c", "d"]))

    assert result.user_turns == 2
