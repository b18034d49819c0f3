"""The journal in one process: identities, leases, limits across restarts, effects, the file itself.

A restart is played here by cancelling the run's task (its journal then says "cancelled") and resuming
from a second journal object on the same file, which is another owner, as another process would be.
The kill -9 tests, with real processes, are in test_random_kills.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import stat
import time
from pathlib import Path
from typing import Any

import pytest

from retinue import Agent, IdempotencyKey, Limits, RunContext, tool
from retinue.approvals import Approval, ApprovalRequest
from retinue.architectures import clone_tool, lead_agent
from retinue.errors import JournalError, LeaseLostError, RunLeasedError, ToolDefinitionError
from retinue.events import Event, SubAgentStarted
from retinue.journal import SQLiteJournal, resume_pending
from retinue.messages import ModelRequest, ToolCall
from retinue.run_context import idempotency_key, sub_run_id
from retinue.testing.scripted import Reply, ScriptedModel, call

from .conftest import Backend


class Gate:
    """Where a tool waits on its `block_at`-th call, so the test can cut the run off inside it."""

    def __init__(self, block_at: int = 1) -> None:
        self.block_at = block_at
        self.calls = 0
        self.entered = asyncio.Event()
        self.release = asyncio.Event()

    async def pass_through(self) -> None:
        self.calls += 1
        if self.calls == self.block_at:
            self.entered.set()
            await self.release.wait()


def gated(gate: Gate, *, idempotent: bool = False, log: list[tuple[str, str]] | None = None) -> Any:
    effects = log if log is not None else []

    @tool(effect="write", idempotent=idempotent)
    async def pay(item: str, key: IdempotencyKey) -> str:
        """Pay for an item.

        Args:
            item: What to pay for.
        """
        effects.append((item, key))
        await gate.pass_through()
        return f"paid {item}"

    return pay


async def cut_off_inside(gate: Gate, run: Any) -> None:
    """Start `run`, wait until its tool is running, and cancel it there: the call has no recorded output."""
    task = asyncio.ensure_future(run)
    await gate.entered.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):  # the caller's cancellation goes on past the run
        await task


def journal_at(tmp_path: Path, **options: Any) -> SQLiteJournal:
    return SQLiteJournal(tmp_path / "journal.sqlite", **options)


# -- identities ------------------------------------------------------------------------------------


def test_sub_run_ids_derive_from_the_parent_the_turn_and_the_call() -> None:
    assert sub_run_id("lead", 1, "call_1") == sub_run_id("lead", 1, "call_1")
    different = {
        sub_run_id("lead", 1, "call_1"),
        sub_run_id("lead", 2, "call_1"),  # the same call id in another turn
        sub_run_id("lead", 1, "call_2"),
        sub_run_id("lead", 1, "call_1", 1),  # the second sub-run of one call
        sub_run_id("other", 1, "call_1"),
        sub_run_id("lead/1", 1, "call_1"),
    }
    assert len(different) == 6
    assert len(sub_run_id("lead", 1, "call_1")) == 32


async def test_concurrent_specialists_get_their_ids_from_the_leads_run_and_their_calls() -> None:
    def specialist_model(request: ModelRequest) -> Reply:
        return "done"

    flights = Agent("flights", model=ScriptedModel(specialist_model), description="Flights.")
    hotels = Agent("hotels", model=ScriptedModel(specialist_model), description="Hotels.")
    lead_script = [[ToolCall("q", "ask_flights", {"question": "?"}), ToolCall("r", "ask_hotels", {"question": "?"})]]
    lead = lead_agent("lead", specialists=[flights, hotels], model=ScriptedModel([*lead_script, "ok"]))
    started: list[SubAgentStarted] = []

    def on_event(event: Event) -> None:
        if isinstance(event, SubAgentStarted):
            started.append(event)

    result = await lead.run("go", on_event=on_event)
    assert result.completed
    ids = {event.tool_call_id: event.child_run_id for event in started}
    assert ids == {"q": sub_run_id(result.run_id, 1, "q"), "r": sub_run_id(result.run_id, 1, "r")}


def test_idempotency_keys_are_stable_and_per_call() -> None:
    assert idempotency_key("run", 1, "c") == idempotency_key("run", 1, "c")
    assert len({idempotency_key("run", 1, "c"), idempotency_key("run", 2, "c"), idempotency_key("run", 1, "d")}) == 3


def test_tool_effects_are_declared_and_checked() -> None:
    @tool
    def unknown(x: int) -> int:
        """Do something."""
        return x

    assert (unknown.effect, unknown.idempotent) == ("write", False)  # never re-run without asking
    with pytest.raises(ToolDefinitionError, match="idempotent=True is for effect='write'"):

        @tool(effect="read", idempotent=True)
        def look(x: int) -> int:
            """Look."""
            return x

    @tool(effect="write", idempotent=True)
    def send(text: str, key: IdempotencyKey) -> str:
        """Send."""
        return key

    assert send.key_parameter == "key"
    assert "key" not in send.schema.parameters["properties"]  # hidden from the model


# -- the file ----------------------------------------------------------------------------------------


def test_the_journal_file_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    with journal_at(tmp_path):
        pass
    assert stat.S_IMODE(os.stat(tmp_path / "journal.sqlite").st_mode) == 0o600
    loose = tmp_path / "loose.sqlite"
    loose.touch(mode=0o644)
    os.chmod(loose, 0o644)
    with SQLiteJournal(loose):
        pass
    assert stat.S_IMODE(os.stat(loose).st_mode) == 0o600


async def test_a_write_that_finds_the_file_locked_waits_on_the_writer_thread_in_order(tmp_path: Path) -> None:
    agent = Agent("a", model=ScriptedModel([call("pay", item="a"), "done"]), tools=[gated(Gate(block_at=0))])
    with journal_at(tmp_path) as journal, contextlib.closing(sqlite3.connect(tmp_path / "journal.sqlite")) as other:
        other.isolation_level = None
        other.execute("BEGIN IMMEDIATE")  # another process writing: the file is locked
        running = asyncio.ensure_future(agent.start("go", journal=journal, run_id="r"))
        await asyncio.sleep(0.05)
        assert not running.done()  # waiting for the lock, off the event loop (this sleep returned)
        other.execute("COMMIT")
        result = await running
        assert result.completed
        assert journal.entry_count("r") == 4  # two responses, the call's start and its output


@pytest.mark.parametrize("synchronous", ["normal", "full"])
async def test_both_durabilities_replay_the_same_run(tmp_path: Path, synchronous: Any) -> None:
    agent = Agent("a", model=ScriptedModel([call("pay", item="a"), "done"]), tools=[gated(Gate(block_at=0))])
    with journal_at(tmp_path, synchronous=synchronous) as journal:
        first = await agent.start("go", journal=journal, run_id="r")
    with journal_at(tmp_path, synchronous=synchronous) as journal:
        again = await agent.override(model=ScriptedModel([])).start("go", journal=journal, run_id="r")
    assert again.messages == first.messages and again.replayed_usage.requests == 2


async def test_a_journal_of_an_older_schema_is_upgraded_in_place(tmp_path: Path) -> None:
    agent = Agent("a", model=ScriptedModel([call("pay", item="a"), "done"]), tools=[gated(Gate(block_at=0))])
    with journal_at(tmp_path) as journal:
        first = await agent.start("go", journal=journal, run_id="r")
    with contextlib.closing(sqlite3.connect(tmp_path / "journal.sqlite")) as connection, connection:
        # Back to version 1, which had no elapsed times, approvals, pinned definitions nor replay counts.
        connection.execute("ALTER TABLE runs DROP COLUMN elapsed")
        connection.execute("ALTER TABLE entries DROP COLUMN elapsed")
        for column in ("requests", "input_tokens", "output_tokens", "cost_usd"):
            connection.execute(f"ALTER TABLE runs DROP COLUMN replayed_{column}")
        connection.execute("DROP TABLE approvals")
        connection.execute("DROP TABLE definitions")
        connection.execute("UPDATE meta SET value = '1' WHERE key = 'schema_version'")
    with journal_at(tmp_path) as journal:
        again = await agent.override(model=ScriptedModel([])).start("go", journal=journal, run_id="r")
        assert journal.entry_count("r") == 4
        assert journal.pinned_definition("r") is not None, "pinned by its first opening since the upgrade"
        assert journal.run_usage("r").replayed.requests == 2
    assert again.messages == first.messages and again.replayed_usage.requests == 2
    with contextlib.closing(sqlite3.connect(tmp_path / "journal.sqlite")) as connection:
        assert connection.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == ("3",)


def test_a_file_that_is_not_a_journal_is_refused_with_what_to_do(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage"
    garbage.write_bytes(b"not a database" * 100)
    with pytest.raises(JournalError, match="not a usable journal"):
        SQLiteJournal(garbage)


async def test_payloads_are_kept_exactly_not_redacted(backend: Backend) -> None:
    secret = "sk-ant-api03-" + "x" * 40

    @tool(effect="read")
    def read_key() -> str:
        """Read the key."""
        return secret

    agent = Agent("a", model=ScriptedModel([call("read_key"), "ok"]), tools=[read_key])
    with backend.open() as journal:
        await agent.start("go", journal=journal, run_id="r")
    assert any(secret in body for body in backend.entry_bodies())


# -- start, resume, replay ---------------------------------------------------------------------------


async def test_starting_a_finished_run_again_replays_it_without_calling_anything(backend: Backend) -> None:
    runs: list[str] = []

    @tool(effect="read")
    def look(key: str) -> str:
        """Look."""
        runs.append(key)
        return key.upper()

    agent = Agent("a", model=ScriptedModel([call("look", key="x"), "done"]), tools=[look])
    with backend.open() as journal:
        first = await agent.start("go", journal=journal, run_id="r")
        again = await agent.override(model=ScriptedModel([])).start("go", journal=journal, run_id="r")
        with pytest.raises(JournalError, match="different prompt"):
            await agent.start("something else", journal=journal, run_id="r")
    assert (first.output, again.output) == ("done", "done")
    assert runs == ["x"]
    assert again.replayed_usage.requests == 2 and again.total_usage.requests == 2
    assert first.replayed_usage.requests == 0
    assert again.messages == first.messages


async def test_a_run_cut_off_mid_tool_resumes_from_its_first_unrecorded_point(backend: Backend) -> None:
    gate = Gate(block_at=2)
    paid: list[tuple[str, str]] = []
    model = ScriptedModel([call("pay", item="a"), call("pay", item="b"), "done"])
    agent = Agent("a", model=model, tools=[gated(gate, idempotent=True, log=paid)])
    with backend.open() as journal:
        await cut_off_inside(gate, agent.start("go", journal=journal, run_id="r"))
    gate.release.set()
    resumed_model = ScriptedModel(["done"])
    with backend.open() as journal:
        result = await agent.override(model=resumed_model).resume("r", journal=journal)
    assert result.output == "done"
    # The first call's output was replayed; the idempotent second ran again with the same key.
    assert [item for item, _ in paid] == ["a", "b", "b"]
    second_call = result.messages[3].tool_calls[0]  # type: ignore[union-attr]
    assert paid[1][1] == paid[2][1] == idempotency_key("r", 2, second_call.id)
    assert len(resumed_model.requests) == 1  # only the answer, which the journal did not have
    assert result.uncertain_calls == ()


@pytest.mark.parametrize("approved", [True, False])
async def test_a_cut_off_write_that_is_not_idempotent_is_put_to_the_approver(backend: Backend, approved: bool) -> None:
    gate = Gate()
    paid: list[tuple[str, str]] = []
    agent = Agent("a", model=ScriptedModel([call("pay", item="a"), "done"]), tools=[gated(gate, log=paid)])
    with backend.open() as journal:
        await cut_off_inside(gate, agent.start("go", journal=journal, run_id="r"))
    gate.release.set()
    asked: list[ApprovalRequest] = []

    def approver(request: ApprovalRequest) -> Approval:
        asked.append(request)
        return Approval(approved, "the test says so")

    with backend.open() as journal:
        result = await agent.override(model=ScriptedModel(["done"])).resume("r", journal=journal, approver=approver)
    assert [request.uncertain for request in asked] == [True]
    (uncertain,) = result.uncertain_calls
    assert (uncertain.tool, uncertain.rerun, uncertain.reason) == ("pay", approved, "the test says so")
    assert len(paid) == (2 if approved else 1)
    tool_result = result.messages[2].results[0]  # type: ignore[union-attr]
    assert tool_result.is_error is not approved
    if not approved:
        assert "may or may not have taken effect" in tool_result.content


async def test_a_cut_off_write_is_refused_without_an_approver(backend: Backend) -> None:
    gate = Gate()
    paid: list[tuple[str, str]] = []
    agent = Agent("a", model=ScriptedModel([call("pay", item="a"), "done"]), tools=[gated(gate, log=paid)])
    with backend.open() as journal:
        await cut_off_inside(gate, agent.start("go", journal=journal, run_id="r"))
        result = await agent.override(model=ScriptedModel(["done"])).resume("r", journal=journal)
    assert len(paid) == 1 and not result.uncertain_calls[0].rerun


async def test_resume_refuses_a_run_it_does_not_know_or_of_another_agent(backend: Backend) -> None:
    agent = Agent("a", model=ScriptedModel(["done"]))
    with backend.open() as journal:
        with pytest.raises(JournalError, match="no run nope"):
            await agent.resume("nope", journal=journal)
        await agent.start("go", journal=journal, run_id="r")
        with pytest.raises(JournalError, match="run of agent 'a'"):
            await Agent("b", model=ScriptedModel([])).resume("r", journal=journal)


async def test_resume_pending_resumes_every_run_cut_off_and_leaves_finished_ones(backend: Backend) -> None:
    gates = [Gate(), Gate()]
    with backend.open() as journal:
        await Agent("done-already", model=ScriptedModel(["ok"])).start("go", journal=journal, run_id="finished")
        for index, gate in enumerate(gates):
            agent = Agent(
                f"a{index}", model=ScriptedModel([call("pay", item="x"), "ok"]), tools=[gated(gate, idempotent=True)]
            )
            await cut_off_inside(gate, agent.start("go", journal=journal, run_id=f"r{index}"))
        assert [run.run_id for run in journal.pending_runs()] == ["r0", "r1"]
    for gate in gates:
        gate.release.set()
    agents = [
        Agent(f"a{index}", model=ScriptedModel(["resumed"]), tools=[gated(gate, idempotent=True)])
        for index, gate in enumerate(gates)
    ]
    results = await resume_pending(backend.location, agents)
    assert {run_id: result.output for run_id, result in results.items()} == {"r0": "resumed", "r1": "resumed"}
    with backend.open() as journal:
        assert journal.pending_runs() == []


# -- leases ------------------------------------------------------------------------------------------


async def test_a_run_held_by_another_owner_is_refused_until_it_is_released(backend: Backend) -> None:
    gate = Gate()
    agent = Agent("a", model=ScriptedModel([call("pay", item="a"), "done"]), tools=[gated(gate, idempotent=True)])
    with backend.open() as holder, backend.open() as other:
        running = asyncio.ensure_future(agent.start("go", journal=holder, run_id="r"))
        await gate.entered.wait()
        with pytest.raises(RunLeasedError, match="held by another process") as refused:
            await agent.resume("r", journal=other)
        assert refused.value.run_id == "r" and refused.value.expires_at > 0
        with pytest.raises(RunLeasedError, match="already running in this process"):
            await agent.start("go", journal=holder, run_id="r")
        gate.release.set()
        assert (await running).completed
        assert (await agent.override(model=ScriptedModel([])).resume("r", journal=other)).completed


async def test_a_holder_whose_lease_was_taken_over_cannot_write_any_more(backend: Backend) -> None:
    gate = Gate()
    agent = Agent("a", model=ScriptedModel([call("pay", item="a"), "done"]), tools=[gated(gate, idempotent=True)])
    with backend.open() as holder, backend.open() as other:
        running = asyncio.ensure_future(agent.start("go", journal=holder, run_id="r"))
        await gate.entered.wait()
        backend.expire_lease("r")  # the holder stalled past its lease (a frozen VM, say): another may take over
        took_over = asyncio.ensure_future(agent.override(model=ScriptedModel(["done"])).resume("r", journal=other))
        while backend.lease_holder("r") != other.owner and not took_over.done():  # noqa: ASYNC110 - no event for it
            await asyncio.sleep(0.001)
        gate.release.set()
        stale, fresh = await running, await took_over
    assert stale.status == "error" and isinstance(stale.error, LeaseLostError)
    assert fresh.completed


# -- limits and state across restarts ----------------------------------------------------------------


def never_answers(request: ModelRequest) -> Reply:
    return call("pay", item=str(len(request.messages)))


async def reached_by_the_third_call(limit_name: str) -> Limits:
    """A limit of `limit_name` that an agent replying `never_answers` reaches with its third model call."""
    if limit_name == "max_turns":
        return Limits(max_turns=3)
    if limit_name == "max_cost_usd":
        return Limits(max_cost_usd=0.025)  # 0.01 a call
    probe = await Agent("probe", model=ScriptedModel(never_answers), limits=Limits(max_turns=1)).run("go")
    return Limits(max_output_tokens=2 * probe.total_usage.output_tokens + 1)


@pytest.mark.parametrize("limit_name", ["max_turns", "max_output_tokens", "max_cost_usd"])
async def test_limits_hold_across_a_restart(backend: Backend, limit_name: str) -> None:
    limits = await reached_by_the_third_call(limit_name)
    gate = Gate(block_at=2)  # two turns taken, the run cut off in the second one's tool
    agent = Agent(
        "a", model=ScriptedModel(never_answers, cost_per_call=0.01), tools=[gated(gate, idempotent=True)], limits=limits
    )
    with backend.open() as journal:
        await cut_off_inside(gate, agent.start("go", journal=journal, run_id="r"))
    gate.release.set()
    resumed_model = ScriptedModel(never_answers, cost_per_call=0.01)
    with backend.open() as journal:
        result = await agent.override(model=resumed_model).resume("r", journal=journal)
    assert result.status == "limit" and result.limit is not None and result.limit.limit == limit_name
    assert result.turns == 3, "the turns before the restart count"
    assert len(resumed_model.requests) == 1, "only the third turn was paid for again"
    assert result.replayed_usage.requests == 2


def slow_pay(gate: Gate, seconds: float) -> Any:
    @tool(effect="write", idempotent=True)
    async def pay(item: str, key: IdempotencyKey) -> str:
        """Pay for an item, slowly.

        Args:
            item: What to pay for.
        """
        await asyncio.sleep(seconds)
        await gate.pass_through()
        return f"paid {item}"

    return pay


async def test_wall_time_spent_before_a_restart_counts_against_the_limit(backend: Backend) -> None:
    gate = Gate(block_at=3)  # two calls of 0.3 s each, then the run is cut off in the third
    agent = Agent("a", model=ScriptedModel(never_answers), tools=[slow_pay(gate, 0.3)])
    with backend.open() as journal:
        await cut_off_inside(gate, agent.start("go", journal=journal, run_id="r"))
    gate.release.set()
    with backend.open() as journal:
        started = time.monotonic()
        result = await agent.resume("r", journal=journal, limits=Limits(max_wall_seconds=1.0))
        resumed_for = time.monotonic() - started
    assert result.status == "limit" and result.limit is not None and result.limit.limit == "max_wall_seconds"
    assert result.limit.used >= 1.0
    # About 0.4 s were left of the second, not the whole second again.
    assert resumed_for < 0.8, f"the resumed run went on for {resumed_for:.2f} s of a 1 s limit after 0.6 s"


async def test_the_heartbeat_counts_the_time_of_a_long_call_cut_off_before_its_output(backend: Backend) -> None:
    gate = Gate()
    agent = Agent("a", model=ScriptedModel([call("pay", item="a"), "done"]), tools=[slow_pay(gate, 0.0)])
    with backend.open(lease_seconds=0.3) as journal:  # renewed, with the time so far, every 0.1 s
        running = asyncio.ensure_future(agent.start("go", journal=journal, run_id="r"))
        await gate.entered.wait()
        await asyncio.sleep(0.8)  # no entry is written while the call runs; only the heartbeat
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running
    gate.release.set()
    with backend.open() as journal:
        result = await agent.override(model=ScriptedModel(["done"])).resume(
            "r", journal=journal, limits=Limits(max_wall_seconds=0.5)
        )
    assert result.status == "limit", "the 0.8 s the call had run before the restart were not counted"


async def test_a_specialists_spending_counts_after_a_restart_that_does_not_rerun_it(backend: Backend) -> None:
    specialist = Agent("helper", model=ScriptedModel(lambda request: "helped", cost_per_call=0.01), description="H.")
    lead_model = ScriptedModel([call("ask_helper", question="?"), "done"], cost_per_call=0.01)
    lead = lead_agent("lead", specialists=[specialist], model=lead_model, limits=Limits(max_cost_usd=1.0))
    with backend.open() as journal:
        first = await lead.start("go", journal=journal, run_id="r")
        again = await lead.override(model=ScriptedModel([])).start("go", journal=journal, run_id="r")
    assert first.total_usage.requests == again.total_usage.requests == 3
    assert again.replayed_usage.cost_usd == pytest.approx(0.03)


async def test_clones_are_re_entered_and_their_summary_call_is_journalled_with_its_purpose(backend: Backend) -> None:
    def script(request: ModelRequest) -> Reply:
        if request.instructions.startswith("Summarise"):
            return "the summary"
        if any(getattr(m, "tool_calls", None) for m in request.messages):
            return "all done"
        if "Your task" in str(request.messages[0]):
            return "clone result"
        return [ToolCall("c1", "spawn_clone", {"task": "one"}), ToolCall("c2", "spawn_clone", {"task": "two"})]

    master = Agent("master", model=ScriptedModel(script), tools=[clone_tool(inherit="summary", max_clones=2)])
    with backend.open() as journal:
        first = await master.start("go", journal=journal, run_id="r")
        assert journal.entry_count("r", slot_prefix="model:summary:") == 1
        replay_model = ScriptedModel([])
        again = await master.override(model=replay_model).start("go", journal=journal, run_id="r")
    assert first.completed and again.completed and again.output == first.output == "all done"
    assert again.messages == first.messages
    # The clone count was rebuilt by running spawn_clone again: a third clone would still be refused.
    assert again.total_usage.requests == first.total_usage.requests == again.replayed_usage.requests


async def test_the_decision_record_is_restored_on_resume(backend: Backend) -> None:
    from retinue.architectures.decisions import DecisionRecord

    gate = Gate()
    seen: list[str] = []

    @tool(effect="read")
    async def look(context: RunContext) -> str:
        """Look at the record."""
        seen.append(DecisionRecord.of(context).render())
        gate.entered.set()
        await gate.release.wait()
        return "looked"

    script = [call("record_decision", topic="city", value="Paris"), call("look"), "done"]
    lead = lead_agent("lead", specialists=[], tools=[look], model=ScriptedModel(script))
    with backend.open() as journal:
        await cut_off_inside(gate, lead.start("go", journal=journal, run_id="r"))
    gate.release.set()
    with backend.open() as journal:
        result = await lead.override(model=ScriptedModel(["done"])).resume("r", journal=journal)
    assert result.completed
    assert seen == ["- city: Paris [decided by lead]"] * 2  # record_decision was replayed, not run again


def test_a_decision_proposed_again_with_its_key_changes_nothing() -> None:
    from retinue.architectures.decisions import Decision, DecisionRecord

    record = DecisionRecord()
    assert record.propose(Decision("city", "Paris", "a"), key="k1") is None
    conflict = record.propose(Decision("city", "Lyon", "b"), key="k2")
    assert conflict is not None
    assert record.propose(Decision("city", "Lyon", "b"), key="k2") is conflict
    assert len(record.conflicts) == 1
    restored = DecisionRecord.from_json(record.to_json())
    assert restored.render() == record.render() and restored.conflicts == []
    assert restored.raise_again("k2") == conflict and len(restored.conflicts) == 1
