"""The travel eval end to end, with scripted models: a correct assistant passes, a careless one fails."""

from __future__ import annotations

import re

from retinue.evals import EvalTask, ScriptedUser, run_eval
from retinue.messages import ModelRequest, ToolResultsMessage
from retinue.testing.scripted import ScriptedModel, call
from retinue_travel import get_task
from retinue_travel.app import APP

CHOSEN = ["flight-nonstop-cheapest", "upgrade-after-booking", "car-only-if-rain", "refuse-cancel-basic-economy"]


def results(request: ModelRequest) -> list[str]:
    return [r.content for m in request.messages if isinstance(m, ToolResultsMessage) for r in m.results]


def oracle(task_id: str) -> ScriptedModel:
    """An assistant that makes the task's reference tool calls in order, then states the facts."""
    task = get_task(task_id)

    def reply(request: ModelRequest) -> object:
        seen = results(request)
        if len(seen) < len(task.expected_actions):
            action = task.expected_actions[len(seen)]
            arguments = {key: _resolve(value, seen) for key, value in action.arguments.items()}
            return call(action.tool, **arguments)
        return "Done: " + ", ".join(task.facts)

    return ScriptedModel(reply)


def _resolve(value: object, seen: list[str]) -> object:
    # "$N": the booking made by action N, whose id the tool's confirmation names.
    if isinstance(value, str) and value.startswith("$"):
        match = re.search(r"\bBK\d+\b", seen[int(value[1:])])
        assert match, seen[int(value[1:])]
        return match.group(0)
    return value


def tasks() -> list[EvalTask]:
    return [task for task in APP.eval_tasks() if task.id in CHOSEN]


async def test_an_assistant_that_does_the_right_things_passes_every_task() -> None:
    report = await run_eval(
        tasks(),
        lambda task: APP.episode("clones", oracle(task.id), task),
        lambda task: ScriptedUser([task.instruction]),
    )

    failures = [(r.task_id, r.missing_facts, r.state_matches, r.error) for r in report.results if not r.passed]
    assert failures == []
    assert report.pass_hat(1) == 1.0
    by_id = {result.task_id: result for result in report.results}
    assert [(c.name, c.ok) for c in by_id["car-only-if-rain"].tool_calls] == [
        ("get_weather", True),
        ("search_cars", True),
        ("book_car", True),
    ]
    assert {result.verdict for result in report.results} == {"passed"}


async def test_an_assistant_that_books_nothing_fails_the_booking_tasks_on_state() -> None:
    report = await run_eval(
        tasks(),
        lambda task: APP.episode("lead", ScriptedModel(lambda request: "I cannot help with that."), task),
        lambda task: ScriptedUser([task.instruction]),
    )

    by_id = {result.task_id: result for result in report.results}
    for booking_task in ("flight-nonstop-cheapest", "upgrade-after-booking", "car-only-if-rain"):
        assert not by_id[booking_task].state_matches
    # Refusing is right for the refusal task: the state is unchanged; only the explanation is missing.
    assert by_id["refuse-cancel-basic-economy"].state_matches
    assert by_id["refuse-cancel-basic-economy"].missing_facts == ["non-refundable"]
    assert report.pass_hat(1) == 0.0
    # The verdict names the booking that should exist, field by field, and what was never said.
    verdict = by_id["flight-nonstop-cheapest"].verdict
    assert (
        '  - bookings: missing row {"traveller": "T1008", "booked_by": "T1008", "kind": "flight", "item": "NS154"'
        in (verdict)
    )
    assert '"status": "confirmed"}' in verdict
    assert "  - balances.pm-T1008-card: expected 2102, got 2300" in verdict
    assert "Missing facts (not found in anything the assistant said): 'NS154', '198'" in verdict
    assert "The assistant made no tool calls." in verdict


async def test_every_task_maps_to_an_eval_task_with_its_expected_state() -> None:
    eval_tasks = APP.eval_tasks()
    assert len(eval_tasks) >= 30
    assert {task.difficulty for task in eval_tasks} == {"easy", "medium", "hard"}
    tags = {tag for task in eval_tasks for tag in task.tags}
    assert {"two-domains", "changes-mind", "refusal"} <= tags
    assert all(isinstance(task.expected_state, dict) for task in eval_tasks)
