"""What recording traces costs an agent loop: the same scripted workload with the trace store on and off.

Workloads: many concurrent agents with a few tool steps each, one agent with a
long run (its requests grow with the conversation, which is what the
incremental message storage is for), both with an instant scripted model, and
the many-agents one again with a model that takes 20 ms to answer, closer to
real use. Each is timed with tracing off and on, alternating, and the slowdown
is the ratio of the medians.

`slowdown of the loop` is the figure with a target: how much longer the agents
take to finish while the recorder is attached. The many-agents case with an
instant model is the stress case: the loop does little but emit events there,
so it has the tighter target. For scale, the loop's own cost
of building the events for any sink is measured too, with a sink that ignores
them. The writer defers its work to
the quiet moments after a burst of events (see `retinue.store.writer`), so
with an instant model it mostly runs after the agents are done; `end to end`
also waits for it to commit the last row, and says what that deferred work
costs in total.

Run: `PYTHONPATH=src python benchmarks/bench_tracing.py [--quick]`.
"""

from __future__ import annotations

import asyncio
import gc
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from retinue import Agent, Limits, tool
from retinue.events import Event, EventSink
from retinue.messages import ModelRequest, ToolCall
from retinue.store import RunStore
from retinue.testing.scripted import Reply, ScriptedModel

LOOP_TARGET = 1.10
STRESS_LOOP_TARGET = 1.05  # the stress case (issue 18): with an instant model the loop does little but emit events


@tool(run_in_thread=False)
def lookup(key: str, page: int = 1) -> str:
    """Look a key up in the reference table.

    Args:
        key: What to look up.
        page: Which page of results.
    """
    return f"{key}: value on page {page} " + "x" * 80


def _script(steps: int) -> Any:
    """Replies that call `lookup` `steps` times, then answer; keyed on the conversation so far."""

    def reply(request: ModelRequest) -> Reply:
        done = sum(1 for message in request.messages if message.role == "tool")
        if done >= steps:
            return f"Finished after {done} lookups."
        return ToolCall(id=f"call_{done}", name="lookup", arguments={"key": f"item-{done}", "page": done % 3})

    return reply


def _agent(steps: int, latency: float) -> Agent[str]:
    return Agent(
        "bench",
        instructions="You look things up. " * 20,
        model=ScriptedModel(_script(steps), latency=latency),
        tools=[lookup],
        limits=Limits(max_turns=steps + 1),
    )


def _ignore(event: Event) -> None:
    pass


async def _workload(agents: int, steps: int, latency: float, sink: EventSink | None) -> float:
    """Seconds until every agent finished."""
    agent = _agent(steps, latency)
    started = time.perf_counter()
    results = await asyncio.gather(*(agent.run(f"task {i}", on_event=sink) for i in range(agents)))
    elapsed = time.perf_counter() - started
    assert all(result.completed and result.turns == steps + 1 for result in results)
    return elapsed


async def _traced_workload(agents: int, steps: int, latency: float, store: RunStore) -> tuple[float, float]:
    """Seconds until every agent finished, and until the trace was committed as well."""
    sink = store.recorder()
    await asyncio.sleep(0.05)  # the writer thread has started and opened its connection
    started = time.perf_counter()
    loop_seconds = await _workload(agents, steps, latency, sink)
    await asyncio.to_thread(store.flush)
    return loop_seconds, time.perf_counter() - started


def _measure(agents: int, steps: int, latency: float, repetitions: int, directory: Path) -> dict[str, float]:
    """Median seconds with tracing off, with a sink that ignores every event, and with the trace store."""
    off: list[float] = []
    ignored: list[float] = []
    on_loop: list[float] = []
    on_total: list[float] = []
    asyncio.run(_workload(agents, steps, latency, None))  # warm imports and caches
    for repetition in range(repetitions):
        # Interleaved, so the machine's slow moments spread over every variant alike.
        gc.collect()
        off.append(asyncio.run(_workload(agents, steps, latency, None)))
        gc.collect()
        ignored.append(asyncio.run(_workload(agents, steps, latency, _ignore)))
        with RunStore(directory / f"bench-{agents}x{steps}-{latency}-{repetition}.sqlite") as store:
            gc.collect()
            loop_seconds, total_seconds = asyncio.run(_traced_workload(agents, steps, latency, store))
        on_loop.append(loop_seconds)
        on_total.append(total_seconds)
    return {
        "off": statistics.median(off),
        "ignored": statistics.median(ignored),
        "on_loop": statistics.median(on_loop),
        "on_total": statistics.median(on_total),
    }


SCENARIOS = [
    # (label, concurrent agents, tool steps each, scripted model latency in seconds, target for the loop's slowdown)
    ("200 agents x 5 steps", 200, 5, 0.0, STRESS_LOOP_TARGET),
    ("1 agent x 200 steps", 1, 200, 0.0, LOOP_TARGET),
    ("200 agents x 5 steps, 20 ms model latency", 200, 5, 0.02, LOOP_TARGET),
]


def run(quick: bool) -> list[dict[str, Any]]:
    repetitions = 5 if quick else 15
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as temporary:
        for label, agents, steps, latency, target in SCENARIOS:
            timings = _measure(agents, steps, latency, repetitions, Path(temporary))
            loop_ratio = timings["on_loop"] / timings["off"]
            rows += [
                {"scenario": f"tracing {label}: time, tracing off", "value": timings["off"] * 1000, "unit": "ms",
                 "target": None},
                {"scenario": f"tracing {label}: slowdown from emitting events to a sink that ignores them",
                 "value": timings["ignored"] / timings["off"], "unit": "ratio", "target": None},
                {"scenario": f"tracing {label}: slowdown of the loop", "value": loop_ratio, "unit": "ratio",
                 "target": target, "passed": loop_ratio <= target},
                {"scenario": f"tracing {label}: slowdown end to end (until committed)",
                 "value": timings["on_total"] / timings["off"], "unit": "ratio", "target": None},
            ]  # fmt: skip
    return rows


if __name__ == "__main__":
    for row in run(quick="--quick" in sys.argv):
        target = "" if row["target"] is None else f"  (target <= {row['target']})"
        print(f"{row['scenario']:<65} {row['value']:10.3f} {row['unit']}{target}")
