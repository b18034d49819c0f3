"""`improve`: GEPA over an app's eval tasks finds a broken instruction, and the held-out gate keeps it honest.

The shop (refund_shop.py) starts with instructions that make its scripted assistant refund in dollars instead of
cents. Scripted reflection models stand in for the real one: one repairs the text when the verdicts show the
wrong amounts, one memorises the train tasks' answers.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from refund_shop import (
    BROKEN_INSTRUCTIONS,
    FIXED_INSTRUCTIONS,
    LOOKUP_DESCRIPTION,
    MISLEADING_LOOKUP,
    RefundShop,
    fixing_reflector,
    memorising_reflector,
    obedient_assistant,
    reflection_prompt,
)

from retinue.errors import ConfigurationError
from retinue.evals import run_episode
from retinue.evals.users import ScriptedUser
from retinue.events import Event, ModelRequestSent
from retinue.improve import TextChange, improve
from retinue.improve.run_record import load_run_record
from retinue.testing.scripted import ScriptedModel

pytest.importorskip("gepa")


async def test_a_broken_instruction_is_found_and_repaired_from_the_verdicts(tmp_path: Path) -> None:
    app = RefundShop()
    reflector = ScriptedModel(fixing_reflector, name="reflector")

    result = await improve(
        app,
        model=ScriptedModel(obedient_assistant),
        reflection_model=reflector,
        user_model="scripted",
        budget=60,
        record_dir=tmp_path,
    )

    assert result.seed.train == 0.0 and result.seed.held_out == 0.0
    assert result.accepted is not None
    assert (result.accepted.train, result.accepted.held_out, result.accepted.gate) == (1.0, 1.0, "accepted")
    assert result.patch is not None
    assert result.patch.changes == (TextChange("shop.instructions", BROKEN_INSTRUCTIONS, FIXED_INSTRUCTIONS),)
    assert result.stop_reason == "a candidate passes every train task"
    # What the reflection model read: the task, the grader's verdict with the state difference, the tool calls.
    first = reflection_prompt(reflector.requests[0])
    assert "You bought order" in first
    assert "amount_cents: expected" in first and ", got " in first
    assert 'refund({"order_id":' in first
    # The split is fixed by its seed, and the held-out tasks were never trained on.
    assert result.split.seed == 0 and len(result.split.held_out) == 2
    held_out = {task.id for task in result.split.held_out}
    assert held_out.isdisjoint(result.accepted.train_by_task)


async def test_a_misleading_tool_description_is_blamed_for_the_failing_calls_and_repaired() -> None:
    app = RefundShop(instructions=FIXED_INSTRUCTIONS, lookup=MISLEADING_LOOKUP)
    reflector = ScriptedModel(fixing_reflector)

    result = await improve(
        app, model=ScriptedModel(obedient_assistant), reflection_model=reflector, user_model="scripted"
    )

    assert result.patch is not None
    assert result.patch.changes == (TextChange("shop.tool.lookup_order", MISLEADING_LOOKUP, LOOKUP_DESCRIPTION),)
    # Every failing call pointed at the tool's description: it was the first text rewritten.
    assert result.iterations[0].paths == ["shop.tool.lookup_order"]
    assert "the tool `lookup_order`" in reflection_prompt(reflector.requests[0])


async def test_nothing_changes_until_the_patch_is_applied() -> None:
    app = RefundShop()
    result = await improve(
        app,
        model=ScriptedModel(obedient_assistant),
        reflection_model=ScriptedModel(fixing_reflector),
        user_model="scripted",
    )
    assert result.patch is not None
    task = app.eval_tasks()[0]

    untouched = app.episode("single", ScriptedModel(obedient_assistant), task)
    patched = app.episode("single", ScriptedModel(obedient_assistant), task)
    patched.assistant = result.patch.apply(patched.assistant)

    assert untouched.assistant.instructions == BROKEN_INSTRUCTIONS
    assert not (await run_episode(task, untouched, ScriptedUser([task.opening or ""]))).passed
    assert (await run_episode(task, patched, ScriptedUser([task.opening or ""]))).passed


async def test_the_held_out_gate_rejects_a_candidate_that_only_fits_the_train_tasks() -> None:
    result = await improve(
        RefundShop(),
        model=ScriptedModel(obedient_assistant),
        reflection_model=ScriptedModel(memorising_reflector),
        user_model="scripted",
        budget=60,
    )

    best = max(result.candidates, key=lambda candidate: candidate.train)
    assert best.train == 1.0  # it fits every train task...
    assert best.held_out == 0.0  # ...and none of the others
    assert best.gate.startswith("rejected: held-out pass^2 0.000")
    assert result.accepted is None and result.patch is None
    assert "No candidate beat the seed" in result.describe()


async def test_max_cost_stops_the_optimisation_before_it_spends_more() -> None:
    # Unlimited, the memorising reflector needs two iterations and 36 episodes (the test above).
    cost_per_call = 0.01  # an episode is 3 calls: 3 cents
    result = await improve(
        RefundShop(),
        model=ScriptedModel(obedient_assistant, cost_per_call=cost_per_call),
        reflection_model=ScriptedModel(memorising_reflector, cost_per_call=cost_per_call),
        user_model="scripted",
        budget=60,
        max_cost=0.60,
    )

    assert result.stop_reason.startswith("the cost limit of $0.6000 is reached")
    assert [iteration.outcome for iteration in result.iterations] == ["new candidate"]  # then no second one
    assert result.rollouts == 22  # the seed (4 + 4), one iteration (3 + 3 + 4), the gate of its candidate (4)
    assert result.cost_usd is not None
    assert result.cost_usd == pytest.approx(0.67)  # 22 episodes and a reflection: past the limit by the last batch
    assert result.cost_usd < 0.60 + 4 * 3 * cost_per_call


async def test_every_model_call_is_traced_and_priced() -> None:
    events: list[Event] = []
    assistant = ScriptedModel(obedient_assistant, cost_per_call=0.001)
    reflector = ScriptedModel(fixing_reflector, cost_per_call=0.002)

    result = await improve(
        RefundShop(),
        model=assistant,
        reflection_model=reflector,
        user_model="scripted",
        on_event=events.append,
    )

    sent = [event for event in events if isinstance(event, ModelRequestSent)]
    assert len(sent) == len(assistant.requests) + len(reflector.requests) == result.model_calls
    assert {event.agent for event in sent} == {"shop", "improve-reflector"}
    assert result.reflections == len(reflector.requests) >= 1
    expected = 0.001 * len(assistant.requests) + 0.002 * len(reflector.requests)
    assert result.cost_usd == pytest.approx(expected)


async def test_the_run_record_holds_scores_per_iteration_and_the_accepted_diff(tmp_path: Path) -> None:
    result = await improve(
        RefundShop(),
        model=ScriptedModel(obedient_assistant),
        reflection_model=ScriptedModel(fixing_reflector),
        user_model="scripted",
        record_dir=tmp_path,
    )

    assert result.record_path is not None and result.record_path.parent == tmp_path
    record = load_run_record(result.record_path)
    assert record["split"]["held_out"] == [task.id for task in result.split.held_out]
    assert [c["gate"] for c in record["candidates"]] == ["seed", "accepted"]
    first = record["iterations"][0]
    assert first["paths"] == ["shop.instructions"]
    assert (first["minibatch_before"], first["minibatch_after"]) == (0.0, 1.0)
    assert (first["outcome"], first["train"], first["held_out"]) == ("new candidate", 1.0, 1.0)
    assert record["accepted"]["changes"] == [
        {"path": "shop.instructions", "old": BROKEN_INSTRUCTIONS, "new": FIXED_INSTRUCTIONS}
    ]
    json.dumps(record)  # JSON all the way down


async def test_a_budget_too_small_for_one_round_is_refused_with_the_number_needed() -> None:
    with pytest.raises(ConfigurationError, match="give --budget 22 or more"):
        await improve(RefundShop(), model=ScriptedModel(obedient_assistant), user_model="scripted", budget=10)


async def test_k_below_two_and_unknown_text_paths_are_refused() -> None:
    model = ScriptedModel(obedient_assistant)
    with pytest.raises(ConfigurationError, match="k must be a whole number of at least 2"):
        await improve(RefundShop(), model=model, user_model="scripted", k=1)
    with pytest.raises(ConfigurationError, match=r"no text path matches 'lead\.\*'; the paths are: shop\.instructions"):
        await improve(RefundShop(), model=model, user_model="scripted", only=["lead.*"])
