"""`retinue runs` and `retinue show` on a run whose process was killed while it waited for approval."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from retinue import cli
from retinue.store import RunStore
from store.interrupted_run import WaitingRun, kill_hard, reap, start_run_waiting_for_approval


@pytest.fixture
def waiting_run(tmp_path: Path) -> Iterator[WaitingRun]:
    with RunStore(tmp_path / "runs.sqlite") as store:
        run = start_run_waiting_for_approval(store.path, store)
    yield run
    reap(run)


def _status_in_runs(capsys: Any, path: Path) -> str:
    assert cli.main(["runs", "--db", str(path)]) == 0
    _header, row = capsys.readouterr().out.splitlines()
    return row.split()[2]


def test_runs_lists_a_killed_run_as_interrupted(tmp_path: Path, waiting_run: WaitingRun, capsys: Any) -> None:
    path = tmp_path / "runs.sqlite"
    assert _status_in_runs(capsys, path) == "running"
    kill_hard(waiting_run)
    assert _status_in_runs(capsys, path) == "interrupted"


def test_show_marks_a_killed_run_and_its_unanswered_approval_interrupted(
    tmp_path: Path, waiting_run: WaitingRun, capsys: Any
) -> None:
    kill_hard(waiting_run)
    assert cli.main(["show", waiting_run.run_id[:8], "--db", str(tmp_path / "runs.sqlite")]) == 0
    out = capsys.readouterr().out
    assert f"▶ booker · run {waiting_run.run_id[:8]} · scripted:booker · interrupted · 1 turn" in out
    assert "approval: interrupted" in out
    assert "… interrupted" in out and "… running" not in out
    assert "interrupted: the process recording this run ended before the run finished" in out
