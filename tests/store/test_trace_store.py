"""The trace store records runs as trees, with exact requests, costs per node and per agent."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

from retinue import Agent, Limits, tool
from retinue.approvals import ApprovalRequest
from retinue.events import Notice
from retinue.messages import ModelRequest, ToolCall, UserMessage
from retinue.store import ModelCallRecord, RunStore, ToolCallRecord, default_store_path, schema
from retinue.store import writer as writer_module
from retinue.testing.scripted import Reply, ScriptedModel, call

from .trace_samples import LEAD_COST_PER_CALL, RESEARCHER_COST_PER_CALL, SampleRun


@pytest.fixture
def store(tmp_path: Path) -> Any:
    with RunStore(tmp_path / "runs.sqlite") as store:
        yield store


async def test_a_multi_agent_run_is_recorded_as_one_tree(store: RunStore) -> None:
    sample = SampleRun()
    result = await sample.run(store.recorder())
    assert store.flush()

    tree = store.get_run_tree(result.run_id)
    assert tree is not None
    assert tree.run.agent == "lead" and tree.run.status == "completed" and tree.run.turns == 4
    assert tree.run.output == "Booked: Paris in June, sunny. Confirmation ZX81."
    kinds = [(step.kind, getattr(step, "name", None)) for step in tree.steps]
    assert kinds == [
        ("model_call", None),
        ("tool_call", "get_weather"),
        ("model_call", None),
        ("tool_call", "consult"),
        ("model_call", None),
        ("tool_call", "book_flight"),
        ("model_call", None),
    ]
    weather = tree.steps[1]
    assert isinstance(weather, ToolCallRecord)
    assert weather.arguments == {"city": "Paris"}
    assert weather.result == "Sunny and 24°C in Paris."
    assert weather.is_error is False and weather.duration_seconds is not None

    (child,) = tree.children
    consult = tree.steps[3]
    assert isinstance(consult, ToolCallRecord)
    assert consult.child_run_ids == [child.run.run_id]
    assert child.run.agent == "researcher" and child.run.kind == "specialist"
    assert child.run.parent_run_id == result.run_id and child.run.root_run_id == result.run_id
    assert child.run.depth == 1

    booking = tree.steps[5]
    assert isinstance(booking, ToolCallRecord) and booking.approval is not None
    assert booking.approval.status == "approved" and booking.approval.tool == "book_flight"


async def test_tokens_and_dollars_are_kept_per_node_and_rolled_up_per_agent(store: RunStore) -> None:
    sample = SampleRun()
    result = await sample.run(store.recorder())
    store.flush()
    tree = store.get_run_tree(result.run_id)
    assert tree is not None

    calls = [step for node in tree.walk() for step in node.steps if isinstance(step, ModelCallRecord)]
    assert all(c.usage is not None and c.duration_seconds is not None for c in calls)
    assert tree.run.usage.cost_usd == pytest.approx(4 * LEAD_COST_PER_CALL)
    assert tree.run.total_usage.cost_usd == pytest.approx(4 * LEAD_COST_PER_CALL + RESEARCHER_COST_PER_CALL)
    assert tree.run.total_usage.input_tokens == result.total_usage.input_tokens
    assert tree.run.total_usage.output_tokens == result.total_usage.output_tokens

    per_agent = {entry.agent: entry for entry in store.usage_by_agent(result.run_id)}
    assert per_agent["lead"].model_calls == 4 and per_agent["lead"].tool_calls == 3
    assert per_agent["lead"].usage.cost_usd == pytest.approx(0.04)
    assert per_agent["researcher"].model_calls == 1 and per_agent["researcher"].runs == 1
    assert per_agent["researcher"].usage.input_tokens == result.total_usage.input_tokens - result.usage.input_tokens

    (listed,) = store.list_runs()
    assert listed.run_id == result.run_id
    assert listed.total_usage.cost_usd == pytest.approx(0.042)
    assert listed.total_usage.requests == 5


async def test_a_recorded_request_comes_back_exactly_as_it_was_sent(store: RunStore) -> None:
    sample = SampleRun()
    result = await sample.run(store.recorder())
    store.flush()
    tree = store.get_run_tree(result.run_id)
    assert tree is not None
    lead_calls = [step for step in tree.steps if isinstance(step, ModelCallRecord)]
    assert len(lead_calls) == len(sample.lead_model.requests) == 4
    for record, sent in zip(lead_calls, sample.lead_model.requests, strict=True):
        call_record = store.get_model_call(record.id)
        assert call_record is not None
        assert call_record.request == sent
        assert call_record.response == record.response
    researcher_call = tree.children[0].steps[0]
    loaded = store.get_model_call(researcher_call.id)
    assert loaded is not None and loaded.request == sample.researcher_model.requests[0]
    assert store.get_model_call(10_000) is None


async def test_each_message_is_stored_once_however_long_the_run(store: RunStore) -> None:
    steps = 40

    def reply(request: ModelRequest) -> Reply:
        done = sum(1 for message in request.messages if message.role == "tool")
        return f"done after {done}" if done >= steps else call("get_weather", city=f"city {done}")

    @tool
    def get_weather(city: str) -> str:
        """Weather."""
        return f"sunny in {city}"

    model = ScriptedModel(reply)
    agent = Agent("long", model=model, tools=[get_weather], limits=Limits(max_turns=steps + 1))
    result = await agent.run("go", on_event=store.recorder())
    store.flush()
    assert result.turns == steps + 1

    connection = sqlite3.connect(store.path)
    try:
        (stored_messages,) = connection.execute("SELECT count(*) FROM messages").fetchone()
        (stored_prefixes,) = connection.execute("SELECT count(*) FROM request_prefixes").fetchone()
    finally:
        connection.close()
    # The prompt, then an assistant turn and a tool result per step: linear, where whole requests would be quadratic.
    assert stored_messages == 1 + 2 * steps
    assert stored_prefixes == 1
    last = store.get_model_call(steps + 1)
    assert last is not None and last.request == model.requests[-1]


async def test_a_running_run_is_listed_with_what_it_has_spent_so_far(store: RunStore) -> None:
    release = asyncio.Event()

    async def reply(request: ModelRequest) -> Reply:
        if len(request.messages) > 1:
            await release.wait()
            return "finished"
        return call("get_weather", city="Oslo")

    @tool
    def get_weather(city: str) -> str:
        """Weather."""
        return "rain"

    agent = Agent("slow", model=ScriptedModel(reply, cost_per_call=0.5), tools=[get_weather])
    task = asyncio.create_task(agent.run("go", on_event=store.recorder()))
    record = None
    for _ in range(200):
        await asyncio.sleep(0.01)
        await asyncio.to_thread(store.flush)
        listed = store.list_runs()
        record = listed[0] if listed else None
        if record is not None and record.total_usage.requests == 1 and record.turns == 2:
            break
    assert record is not None
    assert record.status == "running"
    assert record.total_usage.cost_usd == pytest.approx(0.5)
    tree = store.get_run_tree(record.run_id)
    assert tree is not None
    waiting = tree.steps[-1]
    assert isinstance(waiting, ModelCallRecord) and waiting.response is None and waiting.error is None

    release.set()
    result = await task
    store.flush()
    finished = store.get_run(result.run_id)
    assert finished is not None and finished.status == "completed"
    assert finished.total_usage.cost_usd == pytest.approx(1.0)


async def test_a_failed_run_records_the_error_on_the_run_and_on_the_call_that_failed(store: RunStore) -> None:
    agent = Agent("fragile", model=ScriptedModel([RuntimeError("provider exploded")]))
    result = await agent.run("go", on_event=store.recorder())
    store.flush()
    tree = store.get_run_tree(result.run_id)
    assert tree is not None
    assert tree.run.status == "error"
    assert tree.run.error is not None and "provider exploded" in tree.run.error
    (failed,) = tree.steps
    assert isinstance(failed, ModelCallRecord)
    assert failed.response is None and failed.error is not None and "provider exploded" in failed.error


async def test_notices_are_recorded_with_their_run(store: RunStore) -> None:
    sink = store.recorder()
    agent = Agent("noisy", model=ScriptedModel(["ok"]))

    def with_notice(event: Any) -> None:
        sink(event)
        if type(event).__name__ == "RunStarted":
            sink(Notice(run_id=event.run_id, agent=event.agent, kind="compaction", message="trimmed 3 messages"))

    result = await agent.run("go", on_event=with_notice)
    store.flush()
    tree = store.get_run_tree(result.run_id)
    assert tree is not None
    (notice,) = tree.notices
    assert (notice.kind, notice.message) == ("compaction", "trimmed 3 messages")


async def test_the_recorder_does_no_database_work_on_the_event_loop(tmp_path: Path, monkeypatch: Any) -> None:
    threads_that_ran_sql: set[str] = set()
    original_connect = schema.connect

    def traced_connect(path: Path, **kwargs: Any) -> sqlite3.Connection:
        connection = original_connect(path, **kwargs)
        connection.set_trace_callback(lambda _statement: threads_that_ran_sql.add(threading.current_thread().name))
        return connection

    monkeypatch.setattr(writer_module, "connect", traced_connect)
    with RunStore(tmp_path / "runs.sqlite") as store:
        result = await SampleRun().run(store.recorder())
        store.flush()
        assert store.get_run(result.run_id) is not None
    assert threads_that_ran_sql == {"retinue-trace-writer"}


def test_runs_are_listed_newest_first_and_sub_agents_only_on_request(tmp_path: Path) -> None:
    with RunStore(tmp_path / "runs.sqlite") as store:
        first = SampleRun().lead.run_sync("first", on_event=store.recorder(), approver=lambda request: True)
        second = SampleRun().lead.run_sync("second", on_event=store.recorder(), approver=lambda request: True)
        store.flush()
        assert [run.run_id for run in store.list_runs()] == [second.run_id, first.run_id]
        everything = store.list_runs(include_children=True)
        assert len(everything) == 4
        researcher = next(run for run in everything if run.agent == "researcher")
        assert researcher.total_usage.cost_usd == pytest.approx(RESEARCHER_COST_PER_CALL)
        assert store.list_runs(limit=1)[0].run_id == second.run_id
        assert store.resolve_run_id(second.run_id[:10]) == second.run_id
        assert store.resolve_run_id("") is None  # ambiguous
        assert store.resolve_run_id("zzzz") is None


def test_a_store_reopened_later_still_has_its_runs(tmp_path: Path) -> None:
    path = tmp_path / "runs.sqlite"
    with RunStore(path) as store:
        result = SampleRun().lead.run_sync("again", on_event=store.recorder(), approver=lambda request: True)
    # close() wrote everything without an explicit flush.
    with RunStore(path) as reopened:
        tree = reopened.get_run_tree(result.run_id)
        assert tree is not None and len(tree.children) == 1


def test_the_default_store_lives_in_retinue_home(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setenv("RETINUE_HOME", str(tmp_path / "home"))
    assert default_store_path() == tmp_path / "home" / "runs.sqlite"
    with RunStore() as store:
        assert store.path == tmp_path / "home" / "runs.sqlite"
        # Traces hold prompts and tool outputs: only their owner may read them.
        assert store.path.stat().st_mode & 0o777 == 0o600
        assert store.path.parent.stat().st_mode & 0o777 == 0o700
    monkeypatch.delenv("RETINUE_HOME")
    assert default_store_path() == Path.home() / ".retinue" / "runs.sqlite"


def test_an_approval_is_decided_once_and_a_new_request_with_the_same_id_starts_over(store: RunStore) -> None:
    request = ApprovalRequest("lead", "book_flight", {"destination": "Oslo"}, "run-1", "call-1")
    store.record_approval_request(request)
    store.flush()
    (pending,) = store.pending_approvals()
    assert (pending.tool, pending.arguments, pending.status) == ("book_flight", {"destination": "Oslo"}, "pending")
    assert store.approval_decision("run-1", "call-1") is None

    assert store.decide_approval("run-1", "call-1", True, "looks fine")
    assert not store.decide_approval("run-1", "call-1", False, "second click")
    assert store.approval_decision("run-1", "call-1") == (True, "looks fine")
    # The approver recording the same request again keeps the decision already made.
    store.record_approval_request(request)
    store.flush()
    assert store.approval_decision("run-1", "call-1") == (True, "looks fine")

    store.record_approval_resolution("run-1", "call-1", True, "looks fine")
    store.flush()
    assert store.pending_approvals() == []
    # A model reusing a call id must not inherit the old answer.
    store.record_approval_request(request)
    store.flush()
    assert store.approval_decision("run-1", "call-1") is None
    assert not store.decide_approval("run-2", "call-1", True)


def test_an_event_that_cannot_be_stored_loses_only_itself(store: RunStore, caplog: Any) -> None:
    class Unencodable:
        def __repr__(self) -> str:
            raise ValueError("no repr either")

    sink = store.recorder()

    def with_bad_notice(event: Any) -> None:
        sink(event)
        if type(event).__name__ == "RunStarted":
            sink(Notice(run_id=event.run_id, agent=event.agent, kind="odd", message="?", data={"x": Unencodable()}))

    result = Agent("odd", model=ScriptedModel(["ok"])).run_sync("go", on_event=with_bad_notice)
    store.flush()
    tree = store.get_run_tree(result.run_id)
    assert tree is not None and tree.run.status == "completed" and len(tree.steps) == 1
    assert tree.notices == []
    assert any("could not write" in record.getMessage() for record in caplog.records)


def test_tool_calls_with_the_same_id_in_one_run_are_kept_apart(store: RunStore) -> None:
    @tool
    def step(n: int) -> str:
        """A step."""
        return f"step {n}"

    # Some local models number their tool calls from zero every turn.
    script: list[Reply] = [ToolCall("call_0", "step", {"n": 1}), ToolCall("call_0", "step", {"n": 2}), "done"]
    result = Agent("local", model=ScriptedModel(script), tools=[step]).run_sync("go", on_event=store.recorder())
    store.flush()
    tree = store.get_run_tree(result.run_id)
    assert tree is not None
    results = [s.result for s in tree.steps if isinstance(s, ToolCallRecord)]
    assert results == ["step 1", "step 2"]


async def test_a_conversation_rewritten_between_requests_is_still_recorded_exactly(store: RunStore) -> None:
    class Compactor:
        """Replaces everything but the latest turn with a summary once the conversation grows."""

        def tools(self) -> list[Any]:
            return []

        async def before_request(self, context: Any, model: Any) -> None:
            messages = context.messages
            if len(messages) >= 5:
                messages[:] = [UserMessage(f"Summary of {len(messages) - 2} earlier messages."), *messages[-2:]]

        async def on_tool_result(self, result: Any, context: Any) -> Any:
            return result

    @tool
    def step(n: int) -> str:
        """A step."""
        return f"step {n} done"

    script: list[Reply] = [*(call("step", n=n) for n in range(5)), "all done"]
    model = ScriptedModel(script)
    agent = Agent("compacting", model=model, tools=[step], context_policy=Compactor())
    result = await agent.run("go", on_event=store.recorder())
    store.flush()
    assert result.completed
    assert any(m.role == "user" and m.content.startswith("Summary") for m in model.requests[-1].messages)
    tree = store.get_run_tree(result.run_id)
    assert tree is not None
    recorded = [store.get_model_call(step.id) for step in tree.steps if isinstance(step, ModelCallRecord)]
    assert [call.request for call in recorded if call is not None] == model.requests
