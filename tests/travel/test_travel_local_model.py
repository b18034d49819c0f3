"""A few travel tasks for real, on the embedded local model: the whole stack with no network and no key."""

from __future__ import annotations

import pytest

from retinue import Limits
from retinue.approvals import approve_all
from retinue.evals import Episode, EvalTask, ScriptedUser, run_eval
from retinue_travel.app import APP
from retinue_travel.assistant import build_assistant
from retinue_travel.tasks import answer_contains
from retinue_travel.world import TravelWorld

pytestmark = pytest.mark.local_model

TASKS = ["flight-nonstop-cheapest", "weather-london-packing"]


def episode(architecture: str, task: EvalTask) -> Episode:
    world = TravelWorld(seed=0)
    # A handful of turns is enough to see the loop work end to end, and keeps the test to about a minute.
    agent = build_assistant(architecture, world, model="local", approver=approve_all, limits=Limits(max_turns=4))  # type: ignore[arg-type]
    return Episode(agent, world.snapshot, approver=approve_all, close=world.close, contains=answer_contains)


@pytest.mark.parametrize("architecture", ["lead", "clones"])
async def test_travel_tasks_run_and_are_graded_on_the_embedded_model(architecture: str) -> None:
    tasks = [task for task in APP.eval_tasks() if task.id in TASKS]

    report = await run_eval(
        tasks,
        lambda task: episode(architecture, task),
        lambda task: ScriptedUser([task.instruction]),
        concurrency=1,
    )

    assert [r.task_id for r in report.results] == TASKS
    for result in report.results:
        assert result.user_turns == 1
        assert result.input_tokens > 0 and result.output_tokens > 0  # the model really ran
        assert result.cost_usd == 0.0  # and cost nothing
        assert result.transcript[0] == ("user", next(t.instruction for t in tasks if t.id == result.task_id))
    assert 0.0 <= report.pass_hat(1) <= 1.0
