"""What durable runs cost on each journal backend: size per turn, resume time, CPU per step; SQLite and Postgres.

The workload is one agent whose every turn calls a write tool returning 2 KB (so each step awaits three
committed appends: the response, the call's start, its output), with an instant scripted model, so that
the journal's cost is not hidden behind a model's latency.

- size per turn: the journal's bytes on disk after a 50- and a 200-turn run, divided by the turns (SQLite:
  the file, checkpointed; Postgres: the journal's tables with their indexes and TOAST). Linear in the run
  when the two agree; the issue's figure is 80 turns under 1 MB, 12.8 KB a turn.
- resume to the next model call: a run cut off just before its final answer (cancelled, so its lease is
  released: on Postgres a kill -9 would first wait for the lease to run out), resumed from a new journal
  object; the time from opening the journal until the resumed run makes its first live model call.
- CPU per step: the same 20-step run with and without a journal, the difference per step, of this
  process (all its threads); for Postgres also the server's processes' CPU, read from /proc.

The Postgres server is a throwaway cluster (`retinue.testing.postgres_cluster`), with fsync on as a real
one; its rows are left out, with a note, where initdb or psycopg is missing.

Run: `PYTHONPATH=src python benchmarks/bench_journal.py [--quick]`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gc
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from bench_common import postgres_cluster_if_installed
from retinue import Agent, Limits, tool
from retinue.journal import Journal, SQLiteJournal
from retinue.messages import ModelRequest, ToolCall
from retinue.testing.scripted import Reply, ScriptedModel

SIZE_TARGET_KB = 1024 / 80  # 80 turns with 2 KB tool results under 1 MB
RESUME_TARGET_MS = 200.0  # a killed 50-turn run, to its next model call
SQLITE_CPU_TARGET_MS = 0.15  # journal CPU overhead per step

# Random letters, which compress hardly at all: Postgres compresses large values, SQLite does not, and a
# result of one letter repeated would flatter the one that compresses.
RESULT = base64.b64encode(random.Random(2048).randbytes(1536)).decode()


@tool(run_in_thread=False)
def fetch(page: int) -> str:
    """Fetch a page of the reference.

    Args:
        page: Which page.
    """
    return f"page {page}: {RESULT}"


def _tool_turns(request: ModelRequest) -> int:
    return sum(1 for message in request.messages if message.role == "tool")


def _script(turns: int, final_answer: Callable[[], Reply] | None = None) -> Any:
    """`turns` turns calling `fetch`, then an answer (from `final_answer`, when given)."""

    def reply(request: ModelRequest) -> Reply:
        done = _tool_turns(request)
        if done < turns:
            return ToolCall(f"call_{done}", "fetch", {"page": done})
        return final_answer() if final_answer is not None else f"read {done} pages"

    return reply


def _agent(turns: int, final_answer: Callable[[], Reply] | None = None) -> Agent[str]:
    model = ScriptedModel(_script(turns, final_answer))
    limits = Limits(max_turns=turns + 1)
    return Agent("bench", instructions="Read the reference.", model=model, tools=[fetch], limits=limits)


class Backend:
    """Where the journals of one backend live: `fresh()` is a new, empty store; `open` a journal on it."""

    name: str

    def fresh(self) -> str | Path:
        raise NotImplementedError

    def open(self, location: str | Path) -> Journal:
        raise NotImplementedError

    def size(self, location: str | Path) -> int:
        raise NotImplementedError

    def server_cpu(self) -> float:
        return 0.0


class SQLiteBackend(Backend):
    name = "SQLite"

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.count = 0

    def fresh(self) -> Path:
        self.count += 1
        return self.directory / f"journal-{self.count}.sqlite"

    def open(self, location: str | Path) -> Journal:
        return SQLiteJournal(location)

    def size(self, location: str | Path) -> int:
        wal = Path(f"{location}-wal")
        return Path(location).stat().st_size + (wal.stat().st_size if wal.exists() else 0)


class PostgresBackend(Backend):
    name = "Postgres"

    def __init__(self, cluster: Any) -> None:
        self.cluster = cluster
        self.count = 0

    def fresh(self) -> str:
        self.count += 1
        return str(self.cluster.create_database(f"bench_{self.count}"))

    def open(self, location: str | Path) -> Journal:
        from retinue.journal import PostgresJournal

        return PostgresJournal(str(location))

    def size(self, location: str | Path) -> int:
        import psycopg

        with psycopg.connect(str(location), autocommit=True) as connection:
            connection.execute("VACUUM retinue.entries, retinue.runs, retinue.states")  # settled, as it would be
            row = connection.execute(
                "SELECT sum(pg_total_relation_size(table_name)) FROM unnest(ARRAY"
                "['retinue.entries', 'retinue.runs', 'retinue.states']::regclass[]) AS table_name"
            ).fetchone()
        return int(row[0]) if row else 0

    def server_cpu(self) -> float:
        """Seconds of CPU the server's processes have used (the postmaster and its children, live now)."""
        ticks = os.sysconf("SC_CLK_TCK")
        total = 0
        for pid in self.cluster.server_pids():
            with contextlib.suppress(OSError):
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])  # utime, stime
        return total / ticks


async def _size_per_turn(backend: Backend, turns: int) -> float:
    location = backend.fresh()
    with contextlib.closing(backend.open(location)) as journal:
        result = await _agent(turns).start("go", journal=journal, run_id="sized")
        assert result.completed and result.turns == turns + 1, result.describe()
    return backend.size(location) / turns / 1024


async def _resume_seconds(backend: Backend, turns: int, repetitions: int) -> float:
    """Median seconds from opening the journal to the first live model call of a resumed `turns`-turn run."""
    location = backend.fresh()
    seconds = []
    live_call_at: list[float] = []

    def answer() -> Reply:
        live_call_at.append(time.perf_counter())
        return "resumed"

    for repetition in range(repetitions):  # each a run of its own, in one journal
        run_id = f"cut-off-{repetition}"
        await _cut_off_at_final_answer(backend, location, turns, run_id)
        gc.collect()
        started = time.perf_counter()
        with contextlib.closing(backend.open(location)) as journal:
            result = await _agent(turns, answer).resume(run_id, journal=journal)
        assert result.completed and result.replayed_usage.requests == turns, result.describe()
        seconds.append(live_call_at[-1] - started)
    return statistics.median(seconds)


async def _cut_off_at_final_answer(backend: Backend, location: str | Path, turns: int, run_id: str) -> None:
    """Run `turns` turns, then cancel the run in its final model call, which never answers."""
    asked = asyncio.Event()
    never = asyncio.Event()

    class Stalling(ScriptedModel):
        async def request(self, request: ModelRequest, on_text: Any = None) -> Any:
            if _tool_turns(request) >= turns:
                asked.set()
                await never.wait()
            return await super().request(request, on_text)

    agent = _agent(turns).override(model=Stalling(_script(turns)))
    with contextlib.closing(backend.open(location)) as journal:
        run = asyncio.ensure_future(agent.start("go", journal=journal, run_id=run_id))
        await asyncio.wait({run, asyncio.ensure_future(asked.wait())}, return_when=asyncio.FIRST_COMPLETED)
        run.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await run


async def _cpu_per_step(backend: Backend, steps: int, runs: int, repetitions: int) -> dict[str, float]:
    """Median CPU and wall per step without and with the journal, and the server's CPU per journalled step."""
    agent = _agent(steps)
    plain_cpu: list[float] = []
    plain_wall: list[float] = []
    durable_cpu: list[float] = []
    durable_wall: list[float] = []
    server_seconds = 0.0
    durable_steps = 0
    run_ids: Iterator[str] = (f"bench-{n}" for n in range(1_000_000))
    with contextlib.closing(backend.open(backend.fresh())) as journal:

        async def per_step(durable: bool) -> tuple[float, float]:
            gc.collect()
            cpu, wall = time.process_time(), time.perf_counter()  # process time: the journal's threads too
            for _ in range(runs):
                if durable:
                    result = await agent.start("go", journal=journal, run_id=next(run_ids))
                else:
                    result = await agent.run("go")
                assert result.completed and result.turns == steps + 1, result.describe()
            done = runs * (steps + 1)
            return (time.process_time() - cpu) / done, (time.perf_counter() - wall) / done

        await per_step(False)
        await per_step(True)  # warm up: connections, prepared statements, the writer thread
        for repetition in range(repetitions):
            order = (False, True) if repetition % 2 else (True, False)  # alternated: the machine is shared
            for durable in order:
                server_before = backend.server_cpu()
                cpu, wall = await per_step(durable)
                if durable:
                    server_seconds += backend.server_cpu() - server_before
                    durable_steps += runs * (steps + 1)
                (durable_cpu if durable else plain_cpu).append(cpu)
                (durable_wall if durable else plain_wall).append(wall)
    median = statistics.median
    return {
        "cpu": (median(durable_cpu) - median(plain_cpu)) * 1000,
        "wall": (median(durable_wall) - median(plain_wall)) * 1000,
        "plain_cpu": median(plain_cpu) * 1000,
        "server_cpu": server_seconds / durable_steps * 1000,
    }


def _rows_of(backend: Backend, quick: bool) -> list[dict[str, Any]]:
    repetitions = 3 if quick else 11
    label = f"journal {backend.name}"

    async def measure() -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        sizes = {turns: await _size_per_turn(backend, turns) for turns in (50, 200)}
        for turns, per_turn in sizes.items():
            rows.append({"scenario": f"{label}: size per turn, {turns} turns with 2 KB tool results",
                         "value": per_turn, "unit": "KB", "target": round(SIZE_TARGET_KB, 1)})  # fmt: skip
        rows.append({"scenario": f"{label}: size per turn, 200 turns / 50 turns (1: linear)",
                     "value": sizes[200] / sizes[50], "unit": "ratio", "target": 1.1})  # fmt: skip
        for turns in (50, 200):
            seconds = await _resume_seconds(backend, turns, 2 if quick else 5)
            rows.append({"scenario": f"{label}: resume of a {turns}-turn run cut off, to its next model call",
                         "value": seconds * 1000, "unit": "ms",
                         "target": RESUME_TARGET_MS if turns == 50 else None})  # fmt: skip
        cost = await _cpu_per_step(backend, 20, 2 if quick else 5, repetitions)
        rows += [
            {"scenario": f"{label}: CPU per step without a journal", "value": cost["plain_cpu"], "unit": "ms",
             "target": None},
            {"scenario": f"{label}: journal CPU overhead per step (this process)", "value": cost["cpu"],
             "unit": "ms", "target": None},
            {"scenario": f"{label}: journal wall overhead per step", "value": cost["wall"], "unit": "ms",
             "target": None},
        ]  # fmt: skip
        if backend.name == "Postgres":
            rows.append({"scenario": f"{label}: server CPU per journalled step", "value": cost["server_cpu"],
                         "unit": "ms", "target": None})  # fmt: skip
        return rows

    return asyncio.run(measure())


@contextlib.contextmanager
def _postgres() -> Iterator[PostgresBackend | None]:
    with postgres_cluster_if_installed("bench_journal", durable=True) as cluster:
        yield None if cluster is None else PostgresBackend(cluster)


def run(quick: bool) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory() as directory:
        rows = _rows_of(SQLiteBackend(Path(directory)), quick)
    with _postgres() as postgres:
        if postgres is not None:
            rows += _rows_of(postgres, quick)
    return rows


if __name__ == "__main__":
    for row in run(quick="--quick" in sys.argv):
        target = "" if row["target"] is None else f"  (target <= {row['target']})"
        print(f"{row['scenario']:<80} {row['value']:10.3f} {row['unit']}{target}")
