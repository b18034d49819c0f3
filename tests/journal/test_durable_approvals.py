"""Durable approvals: a run that needs a person's decision suspends, and goes on once it is recorded.

In one process on both backends first: suspending, deciding, denying, expiring, a specialist's approval, a
worker. Then kill -9: the run of durable_scenarios.py's "approval" scenario in child processes killed at
seeded points, decided from this process (once through `retinue approve`), and compared with a run never
killed: every approved payment made exactly once, no model call the journal had paid twice.
"""

from __future__ import annotations

import asyncio
import collections
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from retinue import Agent, tool
from retinue.approvals import Approval, ApprovalRequest, arguments_digest, decide_later
from retinue.architectures import lead_agent
from retinue.errors import JournalError
from retinue.journal import durable_run, resume_pending, submit_run, work
from retinue.journal.journal import Journal
from retinue.messages import ModelRequest, ToolCall, ToolResultsMessage
from retinue.result import RunResult
from retinue.testing.postgres_cluster import PostgresCluster
from retinue.testing.scripted import Reply, ScriptedModel, call

from .conftest import Backend
from .durable_scenarios import PROMPT, RUN_ID, SCENARIOS, World, read_lines, world_for
from .kill_sweep import AtKill, Child
from .test_journal import Gate, cut_off_inside


def paying_agent(paid: list[str], script: list[Reply] | None = None) -> Agent[Any]:
    @tool(requires_approval=True)
    def pay(item: str) -> str:
        """Pay for an item.

        Args:
            item: What to pay for.
        """
        paid.append(item)
        return f"paid {item}"

    replies = script if script is not None else [call("pay", item="flight"), "done"]
    return Agent("payer", model=ScriptedModel(replies), tools=[pay])


def tool_results(result: RunResult[Any]) -> list[str]:
    return [
        item.content
        for message in result.messages
        if isinstance(message, ToolResultsMessage)
        for item in message.results
    ]


# -- in one process, on both backends ----------------------------------------------------------------


async def test_a_run_that_needs_a_decision_suspends_and_runs_the_call_once_it_is_approved(backend: Backend) -> None:
    paid: list[str] = []
    with backend.open() as journal:
        waiting = await paying_agent(paid).start("go", journal=journal, run_id="r", approver=decide_later())
        assert waiting.status == "waiting" and paid == []
        (pending,) = waiting.pending_approvals
        assert (pending.tool, pending.arguments, pending.approved) == ("pay", {"item": "flight"}, None)
        assert pending.arguments_digest == arguments_digest({"item": "flight"})
        run = journal.get_run("r")
        assert run is not None and (run.status, run.lease_owner) == ("waiting", None)  # the process may exit
        assert f"waiting for a decision on pay (approval {pending.approval_id})" in waiting.describe()

    with backend.open() as other:  # another process decides
        decided = await other.decide("r", pending.approval_id, approved=True, reason="fine", by="ana")
        assert (decided.approved, decided.decided_by) == (True, "ana")
        assert getattr(other.get_run("r"), "status", None) == "decided"

    resumed_model = ScriptedModel(["done"])
    with backend.open() as journal:
        result = await paying_agent(paid).override(model=resumed_model).resume("r", journal=journal)
        again = await paying_agent(paid).override(model=ScriptedModel([])).resume("r", journal=journal)
    assert result.completed and paid == ["flight"]
    assert tool_results(result) == ["paid flight"]
    assert len(resumed_model.requests) == 1 and result.replayed_usage.requests == 1
    assert again.completed and paid == ["flight"], "replayed, not run again"


async def test_a_denied_call_is_not_run_and_the_model_hears_why(backend: Backend) -> None:
    paid: list[str] = []
    with backend.open() as journal:
        waiting = await paying_agent(paid).start("go", journal=journal, run_id="r", approver=decide_later())
        await journal.decide("r", waiting.pending_approvals[0].approval_id, approved=False, reason="too dear")
        result = await paying_agent(paid).override(model=ScriptedModel(["done"])).resume("r", journal=journal)
    assert result.completed and paid == []
    (denied,) = tool_results(result)
    assert "was not approved (too dear)" in denied


async def test_an_approval_undecided_past_its_expiry_is_a_recorded_denial(backend: Backend) -> None:
    paid: list[str] = []
    agent = paying_agent(paid, [call("pay", item="flight"), "done"])
    with backend.open() as journal:
        waiting = await agent.start("go", journal=journal, run_id="r", approver=decide_later(expires_in=0.2))
        (pending,) = waiting.pending_approvals
        assert pending.expires_at is not None and pending.expires_at == pytest.approx(pending.asked_at + 0.2)
        assert journal.pending_runs() == [], "waiting, not for a worker to take yet"
    await asyncio.sleep(0.3)
    results = await resume_pending(backend.location, [agent.override(model=ScriptedModel(["done"]))])
    assert results["r"].completed and paid == []
    assert "nobody decided before it expired" in tool_results(results["r"])[0]
    with backend.open() as journal:
        (record,) = journal.approvals("r")
        assert (record.approved, record.decided_by) == (False, "expiry")
        with pytest.raises(JournalError, match="already denied by expiry"):
            await journal.decide("r", record.approval_id, approved=True)


async def test_a_decision_is_refused_for_other_arguments_an_unknown_approval_or_a_change_of_mind(
    backend: Backend,
) -> None:
    with backend.open() as journal:
        waiting = await paying_agent([]).start("go", journal=journal, run_id="r", approver=decide_later())
        approval_id = waiting.pending_approvals[0].approval_id
        with pytest.raises(JournalError, match="other arguments"):
            await journal.decide("r", approval_id, approved=True, arguments_digest=arguments_digest({"item": "yacht"}))
        with pytest.raises(JournalError, match="has no approval nope"):
            await journal.decide("r", "nope", approved=True)
        digest = arguments_digest({"item": "flight"})
        await journal.decide("r", approval_id, approved=True, arguments_digest=digest)
        await journal.decide("r", approval_id, approved=True)  # the same decision again changes nothing
        with pytest.raises(JournalError, match="already approved"):
            await journal.decide("r", approval_id, approved=False)


async def test_a_yes_to_a_call_is_no_yes_to_running_it_again_after_it_was_cut_off(backend: Backend) -> None:
    gate = Gate()
    paid: list[str] = []

    @tool(requires_approval=True)
    async def pay(item: str) -> str:
        """Pay for an item (not idempotent).

        Args:
            item: What to pay for.
        """
        paid.append(item)
        await gate.pass_through()
        return f"paid {item}"

    agent = Agent("payer", model=ScriptedModel([call("pay", item="flight"), "done"]), tools=[pay])
    with backend.open() as journal:
        waiting = await agent.start("go", journal=journal, run_id="r", approver=decide_later())
        await journal.decide("r", waiting.pending_approvals[0].approval_id, approved=True)
        await cut_off_inside(gate, agent.resume("r", journal=journal))  # paid, its output not recorded
        gate.release.set()
        again = await agent.resume("r", journal=journal, approver=decide_later())
        (uncertain,) = again.pending_approvals
        assert again.status == "waiting" and uncertain.uncertain and paid == ["flight"]
        assert uncertain.approval_id != waiting.pending_approvals[0].approval_id
        await journal.decide("r", uncertain.approval_id, approved=False, reason="it may have paid")
        result = await agent.override(model=ScriptedModel(["done"])).resume("r", journal=journal)
    assert result.completed and paid == ["flight"]
    assert [(call.tool, call.rerun) for call in result.uncertain_calls] == [("pay", False)]


async def test_the_approver_of_a_resumed_run_may_decide_what_waits(backend: Backend) -> None:
    paid: list[str] = []
    with backend.open() as journal:
        await paying_agent(paid).start("go", journal=journal, run_id="r", approver=decide_later())
        still = await paying_agent(paid).resume("r", journal=journal, approver=decide_later())
        assert still.status == "waiting" and paid == []

        def approve(request: ApprovalRequest) -> Approval:
            return Approval(True, "approved at the terminal")

        result = await paying_agent(paid, ["done"]).resume("r", journal=journal, approver=approve)
        (record,) = journal.approvals("r")
    assert result.completed and paid == ["flight"]
    assert (record.approved, record.reason, record.decided_by) == (
        True,
        "approved at the terminal",
        "the run's approver",
    )


async def test_a_specialists_approval_suspends_the_whole_tree_and_its_sibling_is_not_run_again(
    backend: Backend,
) -> None:
    paid: list[str] = []
    searched: list[str] = []

    @tool(effect="read")
    def search(city: str) -> str:
        """Search hotels.

        Args:
            city: Where.
        """
        searched.append(city)
        return f"hotel in {city}"

    def specialists(paid_model: list[Reply], hotel_model: list[Reply]) -> list[Agent[Any]]:
        return [
            paying_agent(paid, paid_model).override(name="flights", description="Books flights."),
            Agent("hotels", model=ScriptedModel(hotel_model), tools=[search], description="Finds hotels."),
        ]

    lead_turn = [
        ToolCall("q0", "ask_flights", {"question": "Book it."}),
        ToolCall("q1", "ask_hotels", {"question": "?"}),
    ]
    lead = lead_agent(
        "lead",
        specialists=specialists([call("pay", item="flight"), "flight booked"], [call("search", city="Lyon"), "Lyon"]),
        model=ScriptedModel([lead_turn, "all done"]),
    )
    with backend.open() as journal:
        waiting = await lead.start("go", journal=journal, run_id="r", approver=decide_later())
        (pending,) = waiting.pending_approvals
        assert waiting.status == "waiting" and pending.agent == "flights" and pending.run_id != "r"
        assert searched == ["Lyon"] and paid == []
        await journal.decide("r", pending.approval_id, approved=True)
    resumed = lead_agent("lead", specialists=specialists(["flight booked"], []), model=ScriptedModel(["all done"]))
    with backend.open() as journal:
        result = await resumed.resume("r", journal=journal)
    assert result.completed and result.output == "all done"
    assert paid == ["flight"] and searched == ["Lyon"], "the hotels specialist's answer was replayed"


async def test_a_worker_leaves_a_waiting_run_and_takes_it_again_once_decided(backend: Backend) -> None:
    paid: list[str] = []

    def answer(request: ModelRequest) -> Reply:
        return "done" if request.messages[-1].role == "tool" else call("pay", item="car")

    agent = paying_agent(paid).override(model=ScriptedModel(answer))
    with backend.open() as journal:
        await submit_run(journal, agent, "go", run_id="r")
    ended: dict[str, str] = {}

    def on_done(run_id: str, result: RunResult[Any]) -> None:
        ended[run_id] = result.status

    assert await work(backend.location, agent, drain=True, on_done=on_done, approver=decide_later()) == 1
    assert ended == {"r": "waiting"} and paid == []
    with backend.open() as journal:
        view = durable_run(journal, "r")
        assert view is not None and view.state == "waiting"
        await journal.decide("r", view.pending_approvals[0].approval_id, approved=True)
    assert await work(backend.location, agent, drain=True, on_done=on_done, approver=decide_later()) == 1
    assert ended == {"r": "completed"} and paid == ["car"]


async def test_a_run_without_a_journal_cannot_wait_and_says_so() -> None:
    paid: list[str] = []
    result = await paying_agent(paid).run("go", approver=decide_later())
    assert result.completed and paid == []
    assert "has no journal to wait in" in tool_results(result)[0]


def test_an_expiry_must_be_a_positive_number_of_seconds() -> None:
    with pytest.raises(ValueError, match="greater than 0"):
        decide_later(expires_in=0)


# -- kill -9 ------------------------------------------------------------------------------------------

LEGS = 2  # child processes per trial, each killed at a seeded point (or done by itself, waiting)
TRIALS = 4
POSTGRES_TRIALS = 2


async def decide_what_waits(world: World, *, with_the_cli: bool = False) -> int:
    """Decide every approval the run waits for from here, as a person would: yes, but no to an uncertain call
    (it may have paid already). With `with_the_cli`, through `retinue approve` in a process of its own."""
    with world.open_journal() as journal:
        waiting = [record for record in journal.approvals(RUN_ID) if not record.decided]
        for record in waiting:
            if with_the_cli:
                location = world.journal_url or str(world.journal)
                answer = "--no" if record.uncertain else "--yes"
                command = ["-m", "retinue", "approve", RUN_ID, record.approval_id, answer, "--journal", location]
                await asyncio.to_thread(subprocess.run, [sys.executable, *command], check=True, capture_output=True)
            else:
                await journal.decide(RUN_ID, record.approval_id, approved=not record.uncertain, by="the test")
    return len(waiting)


async def run_to_the_end(world: World) -> RunResult[Any]:
    """Resume here, deciding whatever the run comes to wait for, until it ends."""
    agent = SCENARIOS["approval"](world)
    for _ in range(10):
        with world.open_journal() as journal:
            await wait_for_the_lease(journal)
            result = await agent.start(PROMPT, journal=journal, run_id=RUN_ID, deps=world, approver=decide_later())
        if result.status != "waiting":
            return result
        await decide_what_waits(world)
    raise AssertionError("the run kept waiting")


async def wait_for_the_lease(journal: Journal) -> None:
    """On Postgres, until a killed child's lease has run out (SQLite sees at once that the child is gone)."""
    while (run := journal.get_run(RUN_ID)) is not None and journal.lease_is_live(run):  # noqa: ASYNC110 - no event
        await asyncio.sleep(0.05)


async def approval_trials(tmp_path: Path, trials: int, journal_url_for: Any) -> collections.Counter[str]:
    baseline_world = world_for("approval", tmp_path / "baseline", journal_url_for("baseline"))
    baseline_world.workdir.mkdir()
    started = time.perf_counter()
    expected = await run_to_the_end(baseline_world)
    seconds = time.perf_counter() - started
    expected_effects = read_lines(baseline_world.effects)
    expected_served = len(read_lines(baseline_world.served))
    assert expected.completed and [line.split()[:2] for line in expected_effects] == [
        ["pay", "flight"],
        ["book", "hotel"],
        ["pay", "hotel"],
    ]
    chooser = random.Random("approval-kills")
    outcomes = collections.Counter[str]()
    for trial in range(trials):
        world = world_for("approval", tmp_path / f"trial-{trial}", journal_url_for(f"trial_{trial}"))
        world.workdir.mkdir()
        repaid_at_kills = 0
        for leg in range(LEGS):
            if leg:
                with world.open_journal() as journal:
                    await wait_for_the_lease(journal)
            Child("approval", world).kill_after(chooser.uniform(0.0, seconds * 0.6))
            at_kill = AtKill.of(world)
            # Served and not journalled when a child was killed, over every kill so far: paid again, rightly.
            repaid_at_kills = at_kill.served - at_kill.journalled
            outcomes["decided"] += await decide_what_waits(world, with_the_cli=trial == 0 and leg == 0)
        result = await run_to_the_end(world)

        assert result.completed, result.describe()
        with world.open_journal() as journal:
            uncertain = {record.tool for record in journal.approvals(RUN_ID) if record.uncertain}
        effects = collections.Counter(read_lines(world.effects))
        assert max(effects.values()) == 1, f"an effect happened twice: {effects}"
        assert not effects - collections.Counter(expected_effects), "an effect the uninterrupted run does not have"
        for missing in collections.Counter(expected_effects) - effects:
            assert missing.split()[0] in uncertain, f"{missing!r} was lost, and no call was reported uncertain"
        served = len(read_lines(world.served))
        assert served == expected_served + repaid_at_kills, "a model call the journal had was paid again"
        outcomes["uncertain" if uncertain else "exact"] += 1
    return outcomes


async def test_killed_while_asking_or_after_a_decision_every_approved_call_is_made_once(tmp_path: Path) -> None:
    outcomes = await approval_trials(tmp_path, TRIALS, lambda name: None)
    assert outcomes["decided"] >= TRIALS, outcomes  # the kills did leave runs waiting for decisions


async def test_killed_while_asking_or_after_a_decision_on_postgres_every_approved_call_is_made_once(
    tmp_path: Path, postgres_cluster: PostgresCluster
) -> None:
    def database(name: str) -> str:
        return postgres_cluster.create_database(f"approvals_{name}")

    outcomes = await approval_trials(tmp_path, POSTGRES_TRIALS, database)
    assert outcomes["decided"] >= POSTGRES_TRIALS, outcomes
