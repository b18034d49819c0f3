"""A run whose process died is "interrupted", not "running" forever, and its approval can no longer be given."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from retinue import Agent
from retinue.messages import ModelRequest
from retinue.store import InterruptedRunError, RunStore, ToolCallRecord
from retinue.store import liveness as liveness_module
from retinue.store import writer as writer_module
from retinue.testing.scripted import Reply, ScriptedModel

from .interrupted_run import WaitingRun, kill_hard, reap, start_run_waiting_for_approval


@pytest.fixture
def store(tmp_path: Path) -> Iterator[RunStore]:
    with RunStore(tmp_path / "runs.sqlite") as store:
        yield store


@pytest.fixture
def waiting_run(store: RunStore) -> Iterator[WaitingRun]:
    run = start_run_waiting_for_approval(store.path, store)
    yield run
    reap(run)


def test_a_run_whose_process_is_killed_is_interrupted_and_its_approval_cannot_be_given(
    store: RunStore, waiting_run: WaitingRun
) -> None:
    run_id, call_id = waiting_run.run_id, waiting_run.tool_call_id
    alive = store.get_run(run_id)
    assert alive is not None and alive.status == "running"

    kill_hard(waiting_run)

    killed = store.get_run(run_id)
    assert killed is not None and killed.status == "interrupted" and not killed.running
    assert [run.status for run in store.list_runs()] == ["interrupted"]
    assert store.pending_approvals() == []
    tree = store.get_run_tree(run_id)
    assert tree is not None and tree.pending_approvals() == []
    booking = tree.steps[-1]
    assert isinstance(booking, ToolCallRecord) and booking.approval is not None
    assert booking.approval.status == "interrupted"
    with pytest.raises(InterruptedRunError, match="no longer running"):
        store.decide_approval(run_id, call_id, True)
    assert store.approval_decision(run_id, call_id) is None  # nothing was written

    reap(waiting_run)  # once the dead process is collected, its pid is free: still interrupted
    reaped = store.get_run(run_id)
    assert reaped is not None and reaped.status == "interrupted"


def test_a_live_run_waiting_in_another_process_stays_running_and_can_be_approved(
    store: RunStore, waiting_run: WaitingRun
) -> None:
    time.sleep(0.5)
    (pending,) = store.pending_approvals()
    assert pending.status == "pending"
    assert store.decide_approval(waiting_run.run_id, waiting_run.tool_call_id, True)
    assert waiting_run.process.wait(timeout=30) == 0
    finished = store.get_run(waiting_run.run_id)
    assert finished is not None and finished.status == "completed"


async def test_a_run_left_unfinished_when_its_store_is_closed_is_interrupted(tmp_path: Path) -> None:
    path = tmp_path / "runs.sqlite"
    release = asyncio.Event()

    async def never_answers(request: ModelRequest) -> Reply:
        await release.wait()
        return "too late"

    recording = RunStore(path)
    task = asyncio.create_task(
        Agent("slow", model=ScriptedModel(never_answers)).run("go", on_event=recording.recorder())
    )
    while not recording.list_runs():
        await asyncio.sleep(0.01)
        await asyncio.to_thread(recording.flush)
    assert recording.list_runs()[0].status == "running"
    recording.close()
    with RunStore(path) as reader:
        (abandoned,) = reader.list_runs()
        assert abandoned.status == "interrupted"
    release.set()
    await task


def _record_owner_elsewhere(path: Path, heartbeat_age: float) -> None:
    """A run recorded by a process on another machine (or in another container) sharing the store file."""
    connection = sqlite3.connect(path)
    with connection:
        connection.execute(
            "INSERT INTO owners(id, pid, process_started, pid_space, host, heartbeat_at) "
            "VALUES (7, 1, '1', 'another-boot pid:[1]', 'elsewhere', ?)",
            (time.time() - heartbeat_age,),
        )
        connection.execute(
            "INSERT INTO runs(run_id, root_run_id, agent, started_at, owner_id) VALUES ('far', 'far', 'remote', ?, 7)",
            (time.time(),),
        )
    connection.close()


def test_a_run_recorded_elsewhere_is_running_while_its_heartbeat_is_fresh(store: RunStore) -> None:
    _record_owner_elsewhere(store.path, heartbeat_age=5.0)
    remote = store.get_run("far")
    assert remote is not None and remote.status == "running"


def test_a_run_recorded_elsewhere_is_interrupted_once_its_heartbeat_stops(store: RunStore) -> None:
    _record_owner_elsewhere(store.path, heartbeat_age=liveness_module.HEARTBEAT_STALE_SECONDS + 1)
    remote = store.get_run("far")
    assert remote is not None and remote.status == "interrupted"


async def test_a_writer_with_nothing_to_write_still_beats(store: RunStore, monkeypatch: Any) -> None:
    monkeypatch.setattr(writer_module, "HEARTBEAT_SECONDS", 0.05)
    release = asyncio.Event()

    async def waits(request: ModelRequest) -> Reply:
        await release.wait()
        return "done"

    task = asyncio.create_task(Agent("idle", model=ScriptedModel(waits)).run("go", on_event=store.recorder()))
    await asyncio.to_thread(store.flush)
    beats = []
    for _ in range(3):
        await asyncio.sleep(0.4)
        connection = sqlite3.connect(store.path)
        beats.append(connection.execute("SELECT heartbeat_at FROM owners").fetchone()[0])
        connection.close()
    assert beats[0] < beats[1] < beats[2]
    release.set()
    await task
