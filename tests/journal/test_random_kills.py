"""kill -9 a durable run at seeded random points, resume it in another process, compare with a run never killed.

On SQLite and, with a few seeds, on Postgres (where the resume first waits for the dead child's lease).

Each trial starts the run in a child process (`durable_scenarios.py`), waits a seeded random delay within
the run's length, kills the child with SIGKILL, and resumes the run here. Then, against an uninterrupted
run of the same scenario:
- the output is the same, except for the results of calls reported uncertain;
- no effect happened twice, and an effect is missing only where its call was reported uncertain;
- the resumed process paid exactly for the model calls the journal had not recorded: none completed
  before the kill was paid again.
"""

from __future__ import annotations

import asyncio
import collections
import random
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from retinue.approvals import Approval, ApprovalRequest
from retinue.errors import RunLeasedError
from retinue.result import RunResult
from retinue.testing.postgres_cluster import PostgresCluster

from .durable_scenarios import PROMPT, RUN_ID, SCENARIOS, World, read_lines, start, world_for

CHILD = Path(__file__).with_name("durable_scenarios.py")
TRIALS = 20  # per scenario, seeded: the same kill points in every CI run
POSTGRES_TRIALS = 4  # each waits for a lease to run out: a few seeds, to keep CI short


@dataclass
class Baseline:
    output: str
    effects: list[str]
    served: int
    seconds: float


def refuse_uncertain(requests: list[ApprovalRequest]) -> Any:
    def approver(request: ApprovalRequest) -> Approval:
        requests.append(request)
        return Approval(False, "refused by the test")

    return approver


async def baseline(scenario: str, workdir: Path, journal_url: str | None = None) -> Baseline:
    world = world_for(scenario, workdir, journal_url)
    world.workdir.mkdir(parents=True, exist_ok=True)
    journal = world.open_journal()  # opened first, as the child opens it before the kill points start
    started = time.perf_counter()
    result = await start(scenario, world, journal)
    seconds = time.perf_counter() - started
    assert result.completed, result.describe()
    assert isinstance(result.output, str)
    return Baseline(result.output, read_lines(world.effects), len(read_lines(world.served)), seconds)


class Child:
    """The run of `scenario` in a child process, killed with SIGKILL after `delay` seconds of running."""

    def __init__(self, scenario: str, world: World) -> None:
        postgres = [] if world.journal_url is None else [world.journal_url]
        self.process = subprocess.Popen(
            [sys.executable, str(CHILD), scenario, str(world.workdir), *postgres],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert self.process.stdout is not None
        ready = self.process.stdout.readline()
        assert ready == b"ready\n", self.failure(ready)

    def failure(self, output: bytes) -> str:
        assert self.process.stderr is not None
        self.process.kill()
        return f"the child failed: {output!r} {self.process.stderr.read().decode()}"

    def kill_after(self, delay: float) -> None:
        time.sleep(delay)
        self.process.kill()
        self.process.wait()
        for stream in (self.process.stdout, self.process.stderr):
            assert stream is not None
            stream.close()

    def kill_when(self, world: World, effect: str, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while effect not in " ".join(read_lines(world.effects)):
            assert time.monotonic() < deadline, f"the child never got to {effect!r}"
            assert self.process.poll() is None, self.failure(b"")
            time.sleep(0.002)
        self.kill_after(0.0)


async def resume(scenario: str, world: World, asked: list[ApprovalRequest]) -> RunResult[Any]:
    # Started again, not resumed: a start is idempotent on the run id, and the kill may have come before the
    # run was journalled at all.
    agent = SCENARIOS[scenario](world)
    with world.open_journal() as journal:
        while True:
            try:
                return await agent.start(
                    PROMPT, journal=journal, run_id=RUN_ID, deps=world, approver=refuse_uncertain(asked)
                )
            except RunLeasedError as held:  # on Postgres, until the killed child's lease has run out
                await asyncio.sleep(max(0.0, held.expires_at - time.time()) + 0.01)


@dataclass
class AtKill:
    """What the killed child left: the model calls its journal holds, the requests its model served."""

    journalled: int
    served: int

    @classmethod
    def of(cls, world: World) -> AtKill:
        journalled = 0
        if world.journal_url is not None or world.journal.exists():
            with world.open_journal() as journal:
                journalled = journal.entry_count(slot_prefix="model:")
        return cls(journalled, len(read_lines(world.served)))


def check_against_baseline(
    result: RunResult[Any], world: World, expected: Baseline, at_kill: AtKill, asked: list[ApprovalRequest]
) -> None:
    assert result.completed, result.describe()
    uncertain = result.uncertain_calls
    # Every uncertain call was put to the approver as such, and none was run again without a yes.
    assert [request.tool_call_id for request in asked if request.uncertain] == [c.tool_call_id for c in uncertain]
    assert all(not call.rerun for call in uncertain)
    uncertain_tools = {call.tool for call in uncertain}

    output_lines, expected_lines = str(result.output).splitlines(), expected.output.splitlines()
    assert len(output_lines) == len(expected_lines)
    for line, expected_line in zip(output_lines, expected_lines, strict=True):
        if line != expected_line:
            tool_name = line.split(":")[0]
            assert tool_name in uncertain_tools and "Not done again" in line, (line, expected_line)

    effects = collections.Counter(read_lines(world.effects))
    assert max(effects.values(), default=1) == 1, f"an effect happened twice: {effects}"
    assert not effects - collections.Counter(expected.effects), "an effect the uninterrupted run does not have"
    for missing in collections.Counter(expected.effects) - effects:
        assert missing.split()[0] in uncertain_tools, f"{missing!r} was lost, and no call was reported uncertain"

    served_after_kill = len(read_lines(world.served)) - at_kill.served
    assert served_after_kill == expected.served - at_kill.journalled, "a model call the journal had was paid again"
    assert result.replayed_usage.requests == at_kill.journalled


def kill_points(scenario: str, seconds: float, trials: int) -> Iterator[tuple[int, float]]:
    chooser = random.Random(f"{scenario}-kills")
    for trial in range(trials):
        yield trial, chooser.uniform(0.0, seconds * 1.1)


async def kill_and_resume(
    scenario: str, tmp_path: Path, trials: int, journal_url_for: Callable[[str], str | None]
) -> collections.Counter[str]:
    """Run `trials` seeded kill trials of `scenario`, each journalled at `journal_url_for(name)` (None: SQLite)."""
    expected = await baseline(scenario, tmp_path / "baseline", journal_url_for("baseline"))
    outcomes = collections.Counter[str]()
    for trial, delay in kill_points(scenario, expected.seconds, trials):
        world = world_for(scenario, tmp_path / f"trial-{trial}", journal_url_for(f"trial_{trial}"))
        world.workdir.mkdir()
        Child(scenario, world).kill_after(delay)
        at_kill = AtKill.of(world)
        asked: list[ApprovalRequest] = []
        result = await resume(scenario, world, asked)
        check_against_baseline(result, world, expected, at_kill, asked)
        outcomes["uncertain" if result.uncertain_calls else "replayed" if at_kill.journalled else "not begun"] += 1
    return outcomes


@pytest.mark.parametrize("scenario", ["single", "team"])
async def test_killed_at_random_points_the_resumed_run_ends_as_if_never_killed(scenario: str, tmp_path: Path) -> None:
    outcomes = await kill_and_resume(scenario, tmp_path, TRIALS, lambda name: None)
    # The seeded points do land mid-run: some trials resume a run that had made progress.
    assert outcomes["replayed"] + outcomes["uncertain"] > TRIALS // 2, outcomes


@pytest.mark.parametrize("scenario", ["single", "team"])
async def test_killed_at_random_points_on_postgres_the_resumed_run_ends_as_if_never_killed(
    scenario: str, tmp_path: Path, postgres_cluster: PostgresCluster
) -> None:
    def database(name: str) -> str:  # one per trial: each starts the same run id afresh
        return postgres_cluster.create_database(f"kills_{scenario}_{name}")

    outcomes = await kill_and_resume(scenario, tmp_path, POSTGRES_TRIALS, database)
    assert outcomes["replayed"] + outcomes["uncertain"] >= POSTGRES_TRIALS // 2, outcomes


@pytest.mark.parametrize(("tool_name", "idempotent"), [("book", True), ("charge", False)])
async def test_a_write_killed_mid_call_runs_again_only_if_idempotent(
    tool_name: str, idempotent: bool, tmp_path: Path
) -> None:
    expected = await baseline("cut-off", tmp_path / "baseline")
    world = world_for("cut-off", tmp_path / "killed")
    world.workdir.mkdir()
    Child("cut-off", world).kill_when(world, f"{tool_name} car")
    at_kill = AtKill.of(world)
    asked: list[ApprovalRequest] = []
    result = await resume("cut-off", world, asked)
    check_against_baseline(result, world, expected, at_kill, asked)
    assert read_lines(world.effects).count(next(e for e in expected.effects if e.startswith(tool_name))) == 1
    if idempotent:
        assert result.uncertain_calls == ()
        assert result.output == expected.output
    else:
        (uncertain,) = result.uncertain_calls
        assert (uncertain.tool, uncertain.arguments, uncertain.rerun) == ("charge", {"item": "car"}, False)
        assert asked[0].uncertain and "may already have taken effect" in asked[0].describe()
