"""kill -9 a durable run at seeded random points, resume it in another process, compare with a run never killed.

On SQLite and, with a few seeds, on Postgres (where the resume first waits for the dead child's lease).

Each trial starts the run in a child process (`durable_scenarios.py`), waits a seeded random delay within
the run's length, kills the child with SIGKILL, and resumes the run here. Then, against an uninterrupted
run of the same scenario:
- the output is the same, except for the results of calls reported uncertain;
- no effect happened twice, and an effect is missing only where its call was reported uncertain;
- the resumed process paid exactly for the model calls the journal had not recorded: none completed
  before the kill was paid again.
The trials and checks are in `kill_sweep.py`; these are a seeded sample of the full sweep that
benchmarks/bench_kill_sweep.py runs (its first kill points are these).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from retinue.approvals import ApprovalRequest
from retinue.testing.postgres_cluster import PostgresCluster

from .durable_scenarios import read_lines, world_for
from .kill_sweep import AtKill, Child, baseline, check_against_baseline, kill_and_resume, resume

TRIALS = 20  # per scenario, seeded: the same kill points in every CI run
POSTGRES_TRIALS = 4  # each waits for a lease to run out: a few seeds, to keep CI short


@pytest.mark.parametrize("scenario", ["single", "team"])
async def test_killed_at_random_points_the_resumed_run_ends_as_if_never_killed(scenario: str, tmp_path: Path) -> None:
    sweep = await kill_and_resume(scenario, tmp_path, TRIALS, lambda name: None)
    assert [failure.describe() for failure in sweep.failures] == []
    # The seeded points do land mid-run: some trials resume a run that had made progress.
    assert sweep.outcomes["replayed"] + sweep.outcomes["uncertain"] > TRIALS // 2, sweep.outcomes


@pytest.mark.parametrize("scenario", ["single", "team"])
async def test_killed_at_random_points_on_postgres_the_resumed_run_ends_as_if_never_killed(
    scenario: str, tmp_path: Path, postgres_cluster: PostgresCluster
) -> None:
    def database(name: str) -> str:  # one per trial: each starts the same run id afresh
        return postgres_cluster.create_database(f"kills_{scenario}_{name}")

    sweep = await kill_and_resume(scenario, tmp_path, POSTGRES_TRIALS, database)
    assert [failure.describe() for failure in sweep.failures] == []
    assert sweep.outcomes["replayed"] + sweep.outcomes["uncertain"] >= POSTGRES_TRIALS // 2, sweep.outcomes


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
