"""When the trace writer works: in the quiet after a burst of events, never during it, and never too late.

The writer shares the GIL with the agents' event loop, so while events keep
arriving it leaves them queued, unread, and counts them only; it reads and
writes them once they stop, or once the oldest has waited `MAX_DELAY_SECONDS`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from retinue.events import RunStarted
from retinue.store import RunStore
from retinue.store import writer as writer_module


def run_started(n: int) -> RunStarted:
    return RunStarted(
        run_id=f"run-{n}", agent="a", prompt="go", model_id="m", parent_run_id=None, parent_tool_call_id=None, depth=0
    )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[RunStore]:
    with RunStore(tmp_path / "runs.sqlite") as store:
        store.recorder()  # starts the writer
        yield store


def test_events_arriving_without_a_pause_stay_unread_until_the_burst_ends(
    store: RunStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A quiet moment is 1 s here, and events come every 20 ms: a burst the writer must not read into.
    monkeypatch.setattr(writer_module, "QUIET_SECONDS", 1.0)
    monkeypatch.setattr(writer_module, "MAX_DELAY_SECONDS", 30.0)
    monkeypatch.setattr(writer_module, "IDLE_POLL_SECONDS", 0.01)
    record = store.recorder()
    for n in range(20):
        record(run_started(n))
        time.sleep(0.02)
    assert store._queue.qsize() == 20  # all still queued: none was read while they kept coming
    assert store.list_runs() == []
    store.flush()
    assert len(store.list_runs()) == 20


def test_a_burst_that_never_pauses_is_written_within_the_longest_delay(
    store: RunStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(writer_module, "QUIET_SECONDS", 1.0)
    monkeypatch.setattr(writer_module, "MAX_DELAY_SECONDS", 0.2)
    monkeypatch.setattr(writer_module, "IDLE_POLL_SECONDS", 0.01)
    record = store.recorder()
    started = time.monotonic()
    written = 0
    n = 0
    while not written and time.monotonic() - started < 10:  # far past the delay, for a loaded machine
        record(run_started(n))
        n += 1
        time.sleep(0.02)
        written = len(store.list_runs(limit=10_000))
    assert written  # while events still kept coming
    store.flush()
    assert len(store.list_runs(limit=10_000)) == n
