"""Workers: claiming pending runs, resuming them, waiting for more; many workers on one Postgres journal.

The in-process tests run on both backends. The process tests start real `retinue worker` processes on a
Postgres journal, running the agent of worker_agents.py, whose effects and model calls are counted in files.
"""

from __future__ import annotations

import asyncio
import collections
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from retinue import Agent
from retinue.cli import main
from retinue.errors import JournalError
from retinue.journal import submit_run, work
from retinue.result import RunResult
from retinue.testing.scripted import ScriptedModel, call

from .conftest import Backend
from .durable_scenarios import read_lines
from .test_journal import Gate, cut_off_inside, gated

HERE = Path(__file__).parent


# -- in one process ----------------------------------------------------------------------------------


async def test_a_worker_resumes_cut_off_and_submitted_runs_of_its_agents_and_drains(backend: Backend) -> None:
    gate, other_gate = Gate(), Gate()
    with backend.open() as journal:
        cut_off = Agent("a", model=ScriptedModel([call("pay", item="x"), "ok"]), tools=[gated(gate, idempotent=True)])
        await cut_off_inside(gate, cut_off.start("go", journal=journal, run_id="cut-off"))
        assert await submit_run(journal, "a", "a new one", run_id="queued") == "queued"
        other = Agent("b", model=ScriptedModel([call("pay", item="x"), "ok"]), tools=[gated(other_gate)])
        await cut_off_inside(other_gate, other.start("go", journal=journal, run_id="of-another-agent"))
    gate.release.set()

    def answer(request: Any) -> str:
        return f"answered {request.messages[0].content}"

    agent = Agent("a", model=ScriptedModel(answer), tools=[gated(gate, idempotent=True)])
    ended: dict[str, RunResult[Any]] = {}
    count = await work(
        backend.location, [agent], drain=True, on_done=lambda run_id, result: ended.setdefault(run_id, result)
    )
    assert count == 2
    assert {run_id: result.output for run_id, result in ended.items()} == {
        "cut-off": "answered go",
        "queued": "answered a new one",
    }
    with backend.open() as journal:
        assert [run.run_id for run in journal.pending_runs()] == ["of-another-agent"]  # not this worker's


async def test_a_submitted_run_is_queued_once_and_a_different_one_under_its_id_is_refused(backend: Backend) -> None:
    with backend.open() as journal:
        await submit_run(journal, "a", "go", run_id="r")
        await submit_run(journal, "a", "go", run_id="r")
        assert [(run.run_id, run.lease_owner) for run in journal.pending_runs()] == [("r", None)]
        with pytest.raises(JournalError, match="different prompt"):
            await submit_run(journal, "a", "something else", run_id="r")


async def test_owners_claiming_at_once_never_take_the_same_run(backend: Backend) -> None:
    with backend.open() as journal:
        for n in range(12):
            await submit_run(journal, "a", "go", run_id=f"r{n:02}")
    owners = [backend.open() for _ in range(3)]
    try:

        async def claim_all(journal: Any) -> list[str]:
            claimed = []
            while (run := await journal.claim_pending(["a"])) is not None:
                claimed.append(run.run_id)
            return claimed

        claims = await asyncio.gather(*(claim_all(owner) for owner in owners))
    finally:
        for owner in owners:
            owner.close()
    every_claim = [run_id for claimed in claims for run_id in claimed]
    assert sorted(every_claim) == [f"r{n:02}" for n in range(12)]  # each once, none left out
    with backend.open() as journal:
        assert await journal.claim_pending(["a"]) is None, "every run is leased"
        assert await journal.claim_pending(["b"]) is None


async def test_a_worker_stopped_mid_run_leaves_it_pending_and_released(backend: Backend) -> None:
    gate = Gate()
    agent = Agent("a", model=ScriptedModel([call("pay", item="x"), "ok"]), tools=[gated(gate, idempotent=True)])
    with backend.open() as journal:
        await submit_run(journal, agent, "go", run_id="r")
    worker = asyncio.ensure_future(work(backend.location, agent))
    await gate.entered.wait()
    worker.cancel()
    with pytest.raises(asyncio.CancelledError):
        await worker
    with backend.open() as journal:
        (run,) = journal.pending_runs()
        assert (run.run_id, run.status, run.lease_owner) == ("r", "cancelled", None)


def test_the_worker_command_says_what_is_wrong_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    agent = "worker_agents:booker"
    assert main(["worker", "--agent", agent, "--concurrency", "0"]) == 1
    assert "--concurrency 0: give 1 or more" in capsys.readouterr().err
    monkeypatch.syspath_prepend(str(HERE))
    monkeypatch.setenv("JOURNAL_TEST_WORKDIR", str(tmp_path))
    unreachable = "postgresql://someone:secret@127.0.0.1:1/nothing"
    assert main(["worker", "--agent", agent, "--journal", unreachable]) == 1
    error = capsys.readouterr().err
    assert "cannot connect to the Postgres journal at postgresql://someone@127.0.0.1:1/nothing" in error
    assert "secret" not in error


# -- worker processes on Postgres ----------------------------------------------------------------------


class WorkerProcess:
    """`retinue worker` in a process of its own, running worker_agents:booker on `url`."""

    def __init__(self, url: str, workdir: Path, *options: str, book_seconds: float = 0.05) -> None:
        environment = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
            "JOURNAL_TEST_WORKDIR": str(workdir),
            "JOURNAL_TEST_BOOK_SECONDS": str(book_seconds),
        }
        command = [sys.executable, "-m", "retinue", "worker", "--journal", url, "--agent", "worker_agents:booker"]
        self.process = subprocess.Popen(
            [*command, *options], env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        assert self.process.stderr is not None
        banner = self.process.stderr.readline()
        assert "retinue worker" in banner and "running the runs of booker" in banner, self.failure(banner)

    def failure(self, output: str) -> str:
        self.process.kill()
        _, stderr = self.process.communicate()
        return f"the worker failed: {output!r} {stderr}"

    def stop(self) -> tuple[list[str], str]:
        """SIGTERM, as a service manager stops it: the run ids it ended (its stdout), and its stderr."""
        self.process.send_signal(signal.SIGTERM)
        stdout, stderr = self.process.communicate(timeout=30)
        assert self.process.returncode == 0, stderr
        return [line.split()[0] for line in stdout.splitlines() if line.endswith(" completed")], stderr

    def kill(self) -> None:
        self.process.kill()
        self.process.communicate()


async def wait_until(condition: Any, within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


async def test_two_worker_processes_share_the_pending_runs_and_each_run_ends_exactly_once(
    postgres_url: str, tmp_path: Path
) -> None:
    from retinue.journal import PostgresJournal

    workers = [WorkerProcess(postgres_url, tmp_path) for _ in range(2)]
    run_ids = [f"run-{n}" for n in range(10)]
    with PostgresJournal(postgres_url) as journal:
        for n, run_id in enumerate(run_ids):  # queued while both wait: each submit wakes them (NOTIFY)
            await submit_run(journal, "booker", f"book item-{n}", run_id=run_id)

        def all_completed() -> bool:
            return all(run.status == "completed" for run in map(journal.get_run, run_ids) if run is not None)

        await wait_until(all_completed, 60, "every run to complete")
    ended = [worker.stop()[0] for worker in workers]
    ended_anywhere = collections.Counter(run_id for each in ended for run_id in each)
    assert ended_anywhere == collections.Counter(run_ids), "each run ended exactly once, in one worker"
    assert all(ended), f"both workers took runs: {ended}"
    effects = read_lines(tmp_path / "effects.log")
    assert sorted(line.split()[1] for line in effects) == sorted(f"item-{n}" for n in range(10))  # none twice
    served = collections.Counter(read_lines(tmp_path / "served.log"))
    assert served == collections.Counter(f"book item-{n} {turn}" for n in range(10) for turn in (0, 1))


async def test_a_run_whose_worker_was_killed_is_taken_over_when_its_lease_expires_not_before(
    postgres_url: str, tmp_path: Path
) -> None:
    from retinue.journal import PostgresJournal

    lease = 2.0
    victim = WorkerProcess(postgres_url, tmp_path, "--lease-seconds", str(lease), book_seconds=60)
    with PostgresJournal(postgres_url) as journal:
        await submit_run(journal, "booker", "book car", run_id="r")
        await wait_until(lambda: read_lines(tmp_path / "effects.log"), 30, "the victim to be inside its booking")
        held = journal.get_run("r")
        assert held is not None and held.lease_owner is not None
        survivor = WorkerProcess(postgres_url, tmp_path, "--lease-seconds", str(lease))
        victim.kill()
        run = journal.get_run("r")
        assert run is not None and run.lease_expires_at is not None
        expires_at = run.lease_expires_at  # the last heartbeat's, by the server's clock (this machine's)

        def taken_over() -> bool:
            now = journal.get_run("r")
            return now is not None and now.lease_owner != held.lease_owner

        await wait_until(taken_over, lease + 10, "the survivor to take the run over")
        taken_at = time.time()
        await wait_until(lambda: getattr(journal.get_run("r"), "status", None) == "completed", 30, "the run to end")
    ended, _ = survivor.stop()
    assert ended == ["r"]
    assert taken_at >= expires_at - 0.05, f"taken over {expires_at - taken_at:.2f} s before the lease expired"
    assert taken_at <= expires_at + 1.5, f"taken over only {taken_at - expires_at:.2f} s after the lease expired"
    (booking,) = read_lines(tmp_path / "effects.log")  # booked again with its key, after the takeover: no effect
    assert booking.startswith("book car ")
    assert read_lines(tmp_path / "served.log") == ["book car 0", "book car 1"], "no model call paid twice"
