"""An improvement run's record for the UI tests, written by `retinue improve`'s own `save_run_record`."""

from __future__ import annotations

from pathlib import Path

from retinue.evals import EvalTask, split_tasks
from retinue.improve import ImprovementResult
from retinue.improve.patch import Patch
from retinue.improve.run_record import save_run_record
from retinue.improve.search_log import CandidateRecord, IterationRecord

OLD_INSTRUCTIONS = "You plan trips. Give every price in dollars."
NEW_INSTRUCTIONS = "You plan trips. Give every price in euros, as the booking tools do."
OLD_WEATHER = "The weather."
NEW_WEATHER = "The weather forecast for a city, by day."
TASKS = ["paris", "lisbon", "rome", "oslo", "madrid", "berlin"]


def save_improvement(directory: Path, *, run_id: str = "3f2a9c1b7d4e", accept: bool = True) -> str:
    """A run of four iterations: two new candidates, one rejected on the minibatch, one without a proposal.

    Candidate 2 beats the seed on the held-out tasks and is accepted when `accept`; its id (the file's stem).
    """
    split = split_tasks([EvalTask(task, f"Plan {task}.") for task in TASKS], held_out=0.34, seed=7)
    texts = {"travel-lead.instructions": OLD_INSTRUCTIONS, "travel-lead.tools.get_weather": OLD_WEATHER}
    seed = CandidateRecord(0, 0, [], texts, train=0.25, train_by_task={}, held_out=0.0, held_out_pass1=0.5, gate="seed")
    first = CandidateRecord(1, 1, [0], texts, train=0.5, train_by_task={}, held_out=0.0, gate="rejected: no better")
    better = {"travel-lead.instructions": NEW_INSTRUCTIONS, "travel-lead.tools.get_weather": NEW_WEATHER}
    second = CandidateRecord(
        2, 3, [1], better, train=0.75, train_by_task={}, held_out=0.5, gate="accepted" if accept else "rejected"
    )
    iterations = [
        IterationRecord(1, 0, ["travel-lead.instructions"], 0.33, 0.67, "new candidate", 1),
        IterationRecord(2, 1, ["travel-lead.tools.get_weather"], 0.33, 0.33, "rejected on the minibatch", None),
        IterationRecord(
            3, 1, ["travel-lead.instructions", "travel-lead.tools.get_weather"], 0.33, 1.0, "new candidate", 2
        ),
        IterationRecord(4, 2),
    ]
    result = ImprovementResult(
        run_id=run_id,
        app="travel",
        architecture="lead",
        model="local",
        reflection_model="local",
        split=split,
        k=2,
        seed=seed,
        candidates=[first, second],
        iterations=iterations,
        accepted=second if accept else None,
        patch=Patch.between("travel", "lead", texts, better) if accept else None,
        rollouts=40,
        model_calls=212,
        reflections=3,
        cost_usd=0.0,
        seconds=95.5,
        stop_reason="the budget of 40 episodes is used up (40 run)",
        started_at="2026-05-01T12:00:00Z",
        budget=40,
        max_cost_usd=None,
    )
    return save_run_record(result, directory).stem
