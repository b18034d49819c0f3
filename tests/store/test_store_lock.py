"""Another connection holding the store's write lock delays the trace; it never silently loses it.

Each test holds an exclusive transaction on the file from a second
connection for longer than the store's busy timeout (made short, so the tests
are quick), which is what a long transaction in another process does.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from retinue import Agent
from retinue.events import Event, Notice, TextDelta
from retinue.store import RunStore, ToolCallRecord
from retinue.store import writer as writer_module
from retinue.testing.scripted import ScriptedModel

from .trace_samples import SampleRun

BUSY_TIMEOUT = 0.2


@pytest.fixture
def lock_holder(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    """A second connection to the store's file, ready to take its write lock (the store is created first)."""
    RunStore(tmp_path / "runs.sqlite").close()
    holder = sqlite3.connect(tmp_path / "runs.sqlite", isolation_level=None)
    yield holder
    if holder.in_transaction:
        holder.execute("ROLLBACK")
    holder.close()


def _logged(caplog: Any, *fragments: str) -> bool:
    return any(all(fragment in record.getMessage() for fragment in fragments) for record in caplog.records)


def _wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "gave up waiting"
        time.sleep(0.02)


def test_a_run_recorded_while_the_store_is_locked_is_stored_whole_once_the_lock_is_released(
    tmp_path: Path, lock_holder: sqlite3.Connection, caplog: Any
) -> None:
    with RunStore(tmp_path / "runs.sqlite", busy_timeout=BUSY_TIMEOUT) as store:
        lock_holder.execute("BEGIN EXCLUSIVE")
        result = SampleRun().lead.run_sync(
            "Plan a trip to Paris in June.", on_event=store.recorder(), approver=lambda request: True
        )
        # Several busy timeouts pass: nothing can be written yet, and the log says the events are kept.
        assert not store.flush(timeout=8 * BUSY_TIMEOUT)
        assert _logged(caplog, "could not write", "trace events", "keeping them and trying again")
        assert store.get_run(result.run_id) is None

        lock_holder.execute("ROLLBACK")
        assert store.flush(timeout=10)
        tree = store.get_run_tree(result.run_id)
    assert tree is not None
    assert tree.run.status == "completed" and tree.run.turns == 4
    assert [step.kind for step in tree.steps] == ["model_call", "tool_call"] * 3 + ["model_call"]
    (researcher,) = tree.children
    assert researcher.run.status == "completed" and len(researcher.steps) == 1
    booking = tree.steps[5]
    assert isinstance(booking, ToolCallRecord) and booking.approval is not None
    assert booking.approval.status == "approved"
    assert _logged(caplog, "writable again")


def test_closing_a_store_that_stays_locked_gives_up_and_says_how_many_events_were_not_written(
    tmp_path: Path, lock_holder: sqlite3.Connection, caplog: Any
) -> None:
    events: list[Event] = []
    store = RunStore(tmp_path / "runs.sqlite", busy_timeout=BUSY_TIMEOUT)
    recorder = store.recorder()

    def record(event: Event) -> None:
        events.append(event)
        recorder(event)

    lock_holder.execute("BEGIN EXCLUSIVE")
    Agent("quick", model=ScriptedModel(["done"])).run_sync("go", on_event=record)
    started = time.monotonic()
    store.close()
    assert time.monotonic() - started < 10  # it does not wait for the lock forever
    recorded = [event for event in events if not isinstance(event, TextDelta)]
    assert _logged(caplog, "gave up closing", f"{len(recorded)} trace events were not written")


def test_while_locked_at_most_max_unwritten_events_are_kept_and_the_log_counts_the_dropped(
    tmp_path: Path, lock_holder: sqlite3.Connection, caplog: Any, monkeypatch: Any
) -> None:
    monkeypatch.setattr(writer_module, "MAX_UNWRITTEN", 5)
    with RunStore(tmp_path / "runs.sqlite", busy_timeout=BUSY_TIMEOUT) as store:
        result = Agent("noted", model=ScriptedModel(["done"])).run_sync("go", on_event=store.recorder())
        store.flush()
        sink = store.recorder()

        def note(number: int) -> None:
            sink(Notice(run_id=result.run_id, agent="noted", kind="note", message=f"note {number}"))

        lock_holder.execute("BEGIN EXCLUSIVE")
        note(0)
        _wait_until(lambda: _logged(caplog, "could not write 1 trace events"))
        for number in range(1, 21):
            note(number)
        _wait_until(lambda: _logged(caplog, "dropped"))
        lock_holder.execute("ROLLBACK")
        assert store.flush(timeout=10)
        tree = store.get_run_tree(result.run_id)
    assert tree is not None
    assert [notice.message for notice in tree.notices] == [f"note {number}" for number in range(5)]
    assert _logged(caplog, "writable again", "(16 were dropped)")
