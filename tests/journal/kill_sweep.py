"""kill -9 a durable run at seeded points, resume it, compare it with a run never killed.

The machinery of the random-kill tests (tests/journal/test_random_kills.py, a seeded sample in CI) and of
the full sweep (benchmarks/bench_kill_sweep.py). A trial starts the run of a scenario of
`durable_scenarios.py` in a child process, kills the child with SIGKILL after a seeded delay, and resumes
the run in this process; the resumed run is then checked against the uninterrupted one. Each check has a
name, and a trial's failed checks are collected rather than raised one at a time, so that a sweep counts
its failures by kind and goes on to its next trial.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import random
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from retinue.approvals import Approval, ApprovalRequest, Approver
from retinue.errors import RunLeasedError
from retinue.result import RunResult

from .durable_scenarios import PROMPT, RUN_ID, SCENARIOS, World, read_lines, start, world_for

CHILD = Path(__file__).with_name("durable_scenarios.py")


@dataclass
class Baseline:
    """The uninterrupted run: its output, its effects, the model calls it paid, how long its child would run."""

    output: str
    effects: list[str]
    served: int
    seconds: float


def refuse_uncertain(requests: list[ApprovalRequest]) -> Approver:
    """An approver saying no to everything, noting what it was asked (the scenarios have nothing else to ask)."""

    def approver(request: ApprovalRequest) -> Approval:
        requests.append(request)
        return Approval(False, "refused by the test")

    return approver


def approve_unless_uncertain(requests: list[ApprovalRequest]) -> Approver:
    """A person at the run: yes to what is asked, no to running an uncertain call again (it may have paid)."""

    def approver(request: ApprovalRequest) -> Approval:
        requests.append(request)
        return Approval(not request.uncertain, "decided by the test")

    return approver


def approver_for(scenario: str, requests: list[ApprovalRequest]) -> Approver:
    """Who decides in the process that resumes `scenario`: in "approval", what the child left waiting too."""
    return approve_unless_uncertain(requests) if scenario == "approval" else refuse_uncertain(requests)


async def baseline(scenario: str, workdir: Path, journal_url: str | None = None) -> Baseline:
    world = world_for(scenario, workdir, journal_url)
    world.workdir.mkdir(parents=True, exist_ok=True)
    journal = world.open_journal()  # opened first, as the child opens it before the kill points start
    started = time.perf_counter()
    result = await start(scenario, world, journal)  # as the child runs it
    seconds = time.perf_counter() - started  # the span of the child's run, which the kill points cover
    asked: list[ApprovalRequest] = []
    if result.status == "waiting":  # "approval": the child ends here; the run goes on once someone decides
        result = await resume(scenario, world, asked)
    assert result.completed, result.describe()
    assert not any(request.uncertain for request in asked), "an uninterrupted run had an uncertain call"
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
    with contextlib.closing(world.open_journal()) as journal:
        while True:
            try:
                return await agent.start(
                    PROMPT, journal=journal, run_id=RUN_ID, deps=world, approver=approver_for(scenario, asked)
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
            with contextlib.closing(world.open_journal()) as journal:
                journalled = journal.entry_count(slot_prefix="model:")
        return cls(journalled, len(read_lines(world.served)))


@dataclass
class Resumed:
    """A killed run, resumed: its result, what its tools did, what the child left, what the approver was asked."""

    result: RunResult[Any]
    world: World
    at_kill: AtKill
    asked: list[ApprovalRequest]

    @property
    def uncertain_tools(self) -> set[str]:
        return {call.tool for call in self.result.uncertain_calls}


def uncertain_calls_reported(resumed: Resumed, expected: Baseline) -> None:
    """Every uncertain call was put to the approver as such, and none was run again without a yes."""
    asked = [request.tool_call_id for request in resumed.asked if request.uncertain]
    reported = [call.tool_call_id for call in resumed.result.uncertain_calls]
    assert asked == reported, f"the approver was asked about uncertain calls {asked}, the run reports {reported}"
    assert all(not call.rerun for call in resumed.result.uncertain_calls), "an uncertain call was run again"


def same_output(resumed: Resumed, expected: Baseline) -> None:
    """The same output, except for the results of calls reported uncertain."""
    output_lines, expected_lines = str(resumed.result.output).splitlines(), expected.output.splitlines()
    assert len(output_lines) == len(expected_lines), (resumed.result.output, expected.output)
    for line, expected_line in zip(output_lines, expected_lines, strict=True):
        if line != expected_line:
            tool_name = line.split(":")[0]
            assert tool_name in resumed.uncertain_tools and "Not done again" in line, (line, expected_line)


def no_effect_twice(resumed: Resumed, expected: Baseline) -> None:
    effects = collections.Counter(read_lines(resumed.world.effects))
    assert max(effects.values(), default=1) == 1, f"an effect happened twice: {effects}"


def no_effect_lost_or_added(resumed: Resumed, expected: Baseline) -> None:
    """The uninterrupted run's effects, less only those of calls reported uncertain."""
    effects = collections.Counter(read_lines(resumed.world.effects))
    expected_effects = collections.Counter(expected.effects)
    assert not effects - expected_effects, "an effect the uninterrupted run does not have"
    for missing in expected_effects - effects:
        assert missing.split()[0] in resumed.uncertain_tools, (
            f"{missing!r} was lost, and no call was reported uncertain"
        )


def no_model_call_paid_again(resumed: Resumed, expected: Baseline) -> None:
    """The resumed process paid exactly for the model calls the journal had not recorded."""
    served_after_kill = len(read_lines(resumed.world.served)) - resumed.at_kill.served
    assert served_after_kill == expected.served - resumed.at_kill.journalled, (
        "a model call the journal had was paid again"
    )
    assert resumed.result.replayed_usage.requests == resumed.at_kill.journalled, (
        f"{resumed.result.replayed_usage.requests} model calls replayed, the journal had {resumed.at_kill.journalled}"
    )


Check = Callable[[Resumed, Baseline], None]

# By what a failure means, as the sweep counts them.
CHECKS: dict[str, Check] = {
    "uncertain calls unreported": uncertain_calls_reported,
    "output differs": same_output,
    "duplicate effects": no_effect_twice,
    "effects lost or added": no_effect_lost_or_added,
    "model calls re-paid": no_model_call_paid_again,
}


def failed_checks(resumed: Resumed, expected: Baseline) -> dict[str, str]:
    """The checks the resumed run fails, by name, each with what went wrong; empty if it ended as if never killed."""
    if not resumed.result.completed:
        return {"not completed": resumed.result.describe()}
    failures: dict[str, str] = {}
    for name, check in CHECKS.items():
        try:
            check(resumed, expected)
        except AssertionError as failure:
            failures[name] = str(failure)
    return failures


def check_against_baseline(
    result: RunResult[Any], world: World, expected: Baseline, at_kill: AtKill, asked: list[ApprovalRequest]
) -> None:
    failures = failed_checks(Resumed(result, world, at_kill, asked), expected)
    assert not failures, failures


def kill_points(scenario: str, seconds: float, trials: int) -> Iterator[tuple[int, float]]:
    """Seeded delays over the child's run and a little past it: the same points in every sweep, the first
    `trials` of a longer sweep's."""
    chooser = random.Random(f"{scenario}-kills")
    for trial in range(trials):
        yield trial, chooser.uniform(0.0, seconds * 1.1)


@dataclass(frozen=True)
class TrialFailure:
    trial: int
    kill_point: str
    checks: dict[str, str]
    """The failed checks (see `CHECKS`), or "error" with the traceback of a trial that could not be checked."""

    def describe(self) -> str:
        problems = "; ".join(f"{name}: {message.strip().splitlines()[-1]}" for name, message in self.checks.items())
        return f"trial {self.trial} (killed {self.kill_point}): {problems}"


@dataclass
class Sweep:
    """What the seeded trials of one scenario came to."""

    outcomes: collections.Counter[str] = field(default_factory=collections.Counter)
    """Trials by what the resume found: "not begun", "replayed", "uncertain" (a call was cut off)."""
    failures: list[TrialFailure] = field(default_factory=list)

    @property
    def trials(self) -> int:
        return self.outcomes.total()


def outcome_of(result: RunResult[Any], at_kill: AtKill) -> str:
    return "uncertain" if result.uncertain_calls else "replayed" if at_kill.journalled else "not begun"


async def kill_and_resume(
    scenario: str, tmp_path: Path, trials: int, journal_url_for: Callable[[str], str | None]
) -> Sweep:
    """Run `trials` seeded kill trials of `scenario`, each journalled at `journal_url_for(name)` (None: SQLite)."""
    expected = await baseline(scenario, tmp_path / "baseline", journal_url_for("baseline"))
    sweep = Sweep()
    for trial, delay in kill_points(scenario, expected.seconds, trials):
        world = world_for(scenario, tmp_path / f"trial-{trial}", journal_url_for(f"trial_{trial}"))
        kill_point = f"after {delay * 1000:.1f} ms"
        try:
            world.workdir.mkdir()
            Child(scenario, world).kill_after(delay)
            at_kill = AtKill.of(world)
            asked: list[ApprovalRequest] = []
            result = await resume(scenario, world, asked)
            failures = failed_checks(Resumed(result, world, at_kill, asked), expected)
        except Exception:  # noqa: BLE001 - counted as a failed trial: the sweep goes on to the next one
            sweep.outcomes["error"] += 1
            sweep.failures.append(TrialFailure(trial, kill_point, {"error": traceback.format_exc()}))
            continue
        sweep.outcomes[outcome_of(result, at_kill)] += 1
        if failures:
            sweep.failures.append(TrialFailure(trial, kill_point, failures))
    return sweep
