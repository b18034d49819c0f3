"""Eval tasks: a graded, varied set whose reference solutions and facts hold in the data."""

from __future__ import annotations

from collections import Counter

import pytest

from retinue.errors import ToolError
from retinue_travel.snapshot import diff_snapshots, snapshot_delta
from retinue_travel.tasks import (
    Task,
    answer_contains,
    expected_snapshot,
    get_task,
    load_tasks,
    missing_facts,
    reference_solve,
)
from retinue_travel.tools import all_tools
from retinue_travel.world import TravelWorld

TASKS = load_tasks()


def test_the_task_set_is_large_graded_and_varied() -> None:
    assert len(TASKS) >= 30
    assert len({task.id for task in TASKS}) == len(TASKS)
    difficulties = Counter(task.difficulty for task in TASKS)
    assert all(difficulties[level] >= 8 for level in ("easy", "medium", "hard"))
    kinds = Counter(task.kind for task in TASKS)
    assert kinds["refusal"] >= 6 and kinds["booking"] >= 20
    tags = Counter(tag for task in TASKS for tag in task.tags)
    assert tags["two-domains"] >= 5 and tags["changes-mind"] >= 4
    assert all(task.forbidden_actions for task in TASKS if task.kind == "refusal")


def test_instructions_identify_the_user_and_hide_the_answer() -> None:
    world = TravelWorld()
    for task in TASKS:
        traveller = world.get_traveller(task.traveller_id)
        assert traveller.name in task.user_instruction and task.traveller_id in task.user_instruction
        for action in task.expected_actions:
            if action.tool.startswith("book_"):
                item = next(
                    action.arguments[key] for key in ("flight_number", "hotel_id", "car_id") if key in action.arguments
                )
                assert item not in task.user_instruction, f"{task.id} gives away {item}"


@pytest.mark.parametrize("task", TASKS, ids=lambda task: task.id)
def test_reference_solution_changes_exactly_what_the_task_kind_says(task: Task) -> None:
    world = TravelWorld(seed=task.seed)
    start = world.snapshot()
    transcript = reference_solve(task, world)
    end = world.snapshot()
    if task.kind == "booking":
        assert end != start
        assert snapshot_delta(start, end)["added"]
    else:
        assert end == start
    assert end == expected_snapshot(task), "replaying the expected actions must be deterministic"
    assert missing_facts(task, "\n".join(transcript)) == [], "every fact must be visible in what the tools showed"


@pytest.mark.parametrize("task", [task for task in TASKS if task.forbidden_actions], ids=lambda task: task.id)
def test_forbidden_actions_are_refused_by_the_world(task: Task) -> None:
    world = TravelWorld(seed=task.seed)
    reference_solve(task, world)
    before = world.snapshot()
    tools = {tool.name: tool for tool in all_tools(world)}
    for action in task.forbidden_actions:
        with pytest.raises(ToolError):
            tools[action.tool].function(**action.arguments)
    assert world.snapshot() == before


def test_tasks_round_trip_through_json() -> None:
    for task in TASKS:
        assert Task.model_validate_json(task.model_dump_json()) == task
    assert get_task("cancel-whole-trip").difficulty == "hard"
    with pytest.raises(KeyError, match="no task"):
        get_task("no-such-task")


def test_tasks_build_for_another_seed_too() -> None:
    other = load_tasks(seed=1)
    assert [task.id for task in other] == [task.id for task in TASKS]
    assert other != TASKS


def test_answer_contains_forgives_formatting_but_not_wrong_numbers() -> None:
    assert answer_contains("The fare is $1,234.", "1234")
    assert not answer_contains("The fare is $11,234.", "1234")
    assert answer_contains("Your flight NS 120 leaves at 06:45", "NS120")
    assert answer_contains("This fare is non refundable.", "non-refundable")
    assert answer_contains(
        "You'll stay at the Juniper Hotel Saint-Germain-des-Prés", "juniper hotel saint germain des pres"
    )
    assert not answer_contains("It will be sunny", "rain")


def test_snapshot_diffs_name_what_is_wrong() -> None:
    task = get_task("upgrade-after-booking")
    expected = expected_snapshot(task)
    untouched = TravelWorld(seed=task.seed).snapshot()
    differences = diff_snapshots(expected, untouched)
    assert any(line.startswith("missing: confirmed flight") and "premium_economy" in line for line in differences)
    assert any(line.startswith("balance of pm-T1011-card") for line in differences)
    assert diff_snapshots(expected, expected) == []
