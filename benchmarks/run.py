"""retinue's benchmark suite: the framework's own cost, where it shows at scale.

    python benchmarks/run.py            # the full suite, a few minutes
    python benchmarks/run.py --quick    # a short run that checks the suite works (CI)
    python benchmarks/run.py --only S1,S3

Model traffic goes to a fake OpenAI-compatible server in its own process
(benchmarks/fake_server.py), so the client's CPU and memory are measured
alone. Each figure is a median over repetitions in one invocation, or a ratio
to a lower bound or a baseline measured in the same run: the machine is
shared and noisy, absolute numbers from different runs do not compare.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_common import markdown_table  # noqa: E402
from retinue import Agent, tool  # noqa: E402
from retinue.architectures import lead_agent  # noqa: E402
from retinue.events import EventSink  # noqa: E402
from retinue.models.http import close_sessions, shared_session  # noqa: E402
from retinue.models.openai import OpenAIModel  # noqa: E402


@dataclass
class Row:
    scenario: str
    what: str
    value: float
    unit: str
    target: str
    passed: bool | None

    def cells(self) -> list[str]:
        verdict = {True: "yes", False: "NO", None: ""}[self.passed]
        return [self.scenario, self.what, f"{self.value:.3g} {self.unit}".strip(), self.target, verdict]


@tool(run_in_thread=False)
async def lookup(key: str) -> str:
    """Look up a key."""
    return f"value of {key}"


@tool(name="lookup")
def readme_lookup(key: str) -> str:
    """Look up a key (the same tool as a sync function with the README's defaults, for S1)."""
    return f"value of {key}"


def process_cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds of another process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


SERVER_PIDS: dict[str, int] = {}


@contextlib.contextmanager
def fake_server(policy: str, steps: int, latency_ms: float) -> Iterator[str]:
    process = subprocess.Popen(
        [
            *(sys.executable, str(HERE / "fake_server.py")),
            *("--policy", policy, "--steps", str(steps), "--latency-ms", str(latency_ms)),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        port = int(process.stdout.readline())
        url = f"http://127.0.0.1:{port}/v1"
        SERVER_PIDS[url] = process.pid
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


@contextlib.contextmanager
def trace_store() -> Iterator[EventSink]:
    """A fresh trace store in a temporary directory, yielding its recorder."""
    from retinue.store import RunStore

    with tempfile.TemporaryDirectory() as directory:
        store = RunStore(Path(directory) / "runs.sqlite")
        try:
            yield store.recorder()
        finally:
            store.close()


def model(base_url: str) -> OpenAIModel:
    return OpenAIModel("bench-model", base_url=base_url, api_key="unused", max_retries=0)


def step_agent(base_url: str, name: str = "bench") -> Agent:
    return Agent(name=name, instructions="Look things up.", model=model(base_url), tools=[lookup])


async def bare_conversation(session: aiohttp.ClientSession, base_url: str, requests: int) -> None:
    """The baseline: the same conversation with nothing but aiohttp and json."""
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": "Look things up."},
        {"role": "user", "content": "go"},
    ]
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]
    for _ in range(requests):
        body = {"model": "bench-model", "messages": messages, "tools": tools}
        async with session.post(f"{base_url}/chat/completions", json=body) as response:
            reply = await response.json()
        message = reply["choices"][0]["message"]
        messages.append(message)
        for tool_call in message.get("tool_calls") or ():
            messages.append({"role": "tool", "tool_call_id": tool_call["id"], "content": "value of k"})


def s1_step_overhead(quick: bool) -> list[Row]:
    steps, runs, repetitions = (20, 2, 3) if quick else (20, 5, 21)

    async def measure() -> tuple[float, float, float]:
        ours: list[float] = []
        traced: list[float] = []
        bare: list[float] = []
        with fake_server("steps", steps, 0) as base_url, trace_store() as recorder:
            agent = step_agent(base_url).override(tools=[readme_lookup])

            async def cpu_per_step(on_event: EventSink | None) -> float:
                gc.collect()  # a collection falling inside one batch would swamp the difference measured
                started = time.process_time()
                for _ in range(runs):
                    result = await agent.run("go", on_event=on_event)
                    assert result.completed and result.turns == steps + 1, result.describe()
                return (time.process_time() - started) / (runs * (steps + 1))

            async with aiohttp.ClientSession() as session:

                async def bare_cpu_per_step() -> float:
                    gc.collect()
                    started = time.process_time()
                    for _ in range(runs):
                        await bare_conversation(session, base_url, steps + 1)
                    return (time.process_time() - started) / (runs * (steps + 1))

                await agent.run("go")  # warm up the connection pool and caches
                await bare_conversation(session, base_url, steps + 1)
                measurements: list[tuple[list[float], Callable[[], Awaitable[float]]]] = [
                    (ours, lambda: cpu_per_step(None)),
                    (traced, lambda: cpu_per_step(recorder)),
                    (bare, bare_cpu_per_step),
                ]
                for repetition in range(repetitions):
                    # Rotate the order: whichever batch runs first after another pays for its garbage.
                    shift = repetition % len(measurements)
                    for samples, measure_once in measurements[shift:] + measurements[:shift]:
                        samples.append(await measure_once())
            await close_sessions()
        return statistics.median(ours), statistics.median(bare), statistics.median(traced)

    ours, bare, traced = asyncio.run(measure())
    return [
        Row("S1", "client CPU per step (20 tool steps, 0 ms)", ours * 1000, "ms", "<= 1.0 ms", ours <= 0.001),
        Row("S1", "same, bare aiohttp loop (baseline)", bare * 1000, "ms", "", None),
        Row("S1", "CPU per step, retinue / bare aiohttp loop", ours / bare, "x", "<= 1.3", ours / bare <= 1.3),
        Row(
            "tracing",
            "S1 CPU per step, trace store on / off (writer thread included)",
            traced / ours,
            "x",
            "<= 1.10",
            traced / ours <= 1.10,
        ),
    ]


def journal_overhead(quick: bool) -> list[Row]:
    """S1 again, durable: every step awaits its committed journal appends (response, tool start, tool output)."""
    from retinue.journal import SQLiteJournal

    steps, runs, repetitions = (20, 2, 3) if quick else (20, 5, 21)

    async def measure() -> tuple[float, float, float, float]:
        plain_cpu: list[float] = []
        plain_wall: list[float] = []
        durable_cpu: list[float] = []
        durable_wall: list[float] = []
        with (
            fake_server("steps", steps, 0) as base_url,
            tempfile.TemporaryDirectory() as directory,
            SQLiteJournal(Path(directory) / "journal.sqlite") as journal,
        ):
            agent = step_agent(base_url)
            run_ids = (f"bench-{n}" for n in range(1_000_000))

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
            await per_step(True)  # warm up: connections, caches, the journal's writer thread
            for repetition in range(repetitions):
                order = (False, True) if repetition % 2 else (True, False)
                for durable in order:
                    cpu, wall = await per_step(durable)
                    (durable_cpu if durable else plain_cpu).append(cpu)
                    (durable_wall if durable else plain_wall).append(wall)
            await close_sessions()
        median = statistics.median
        return median(plain_cpu), median(durable_cpu), median(plain_wall), median(durable_wall)

    plain_cpu, durable_cpu, plain_wall, durable_wall = asyncio.run(measure())
    cpu_overhead, wall_overhead = (durable_cpu - plain_cpu) * 1000, (durable_wall - plain_wall) * 1000
    return [
        Row("journal", "S1 CPU per step without a journal", plain_cpu * 1000, "ms", "", None),
        Row(
            "journal", "S1 CPU per step, SQLite journal (all its threads included)", durable_cpu * 1000, "ms", "", None
        ),
        Row("journal", "S1 CPU per step, journal / none", durable_cpu / plain_cpu, "x", "", None),
        Row("journal", "journal CPU overhead per step", cpu_overhead, "ms", "<= 0.15 ms", cpu_overhead <= 0.15),
        Row("journal", "journal wall overhead per step", wall_overhead, "ms", "<= 0.3 ms", wall_overhead <= 0.3),
    ]


S2_SERIES = (100, 1000, 5000, 10000)
S2_QUICK_SERIES = (100, 200)
S2_TRACED_AT = 1000  # the tracing row's N (the first N with --quick)


@dataclass
class S2Point:
    agents: int
    ours: float  # wall seconds, medians
    bare: float
    kb_per_agent: float
    bare_kb_per_agent: float


def s2_concurrency(quick: bool) -> list[Row]:
    """N agents at once, each 3 tool steps on a 300 ms model, against the bare aiohttp loop at the same N.

    Both post through one aiohttp session, so both find the same pool of warm connections (two pools of
    10,000 would pass the open-files limit of many machines).
    """
    series = S2_QUICK_SERIES if quick else S2_SERIES
    traced_at = series[0] if quick else S2_TRACED_AT
    steps, latency = 3, 0.3
    lower_bound = (steps + 1) * latency
    _allow_open_files(max(series) + 1000)

    async def timed(make: Callable[[], Awaitable[Any]]) -> float:
        gc.collect()
        started = time.perf_counter()
        await make()
        return time.perf_counter() - started

    async def peak_kb_per_agent(make: Callable[[], Awaitable[Any]], agents: int) -> float:
        gc.collect()
        tracemalloc.start()
        baseline = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        await make()
        peak = tracemalloc.get_traced_memory()[1] - baseline
        tracemalloc.stop()
        return peak / agents / 1024

    async def measure() -> tuple[list[S2Point], float, float]:
        points: list[S2Point] = []
        server_share = traced_ratio = 0.0
        with fake_server("steps", steps, latency * 1000) as base_url, trace_store() as recorder:
            server_pid = SERVER_PIDS[base_url]
            agent = step_agent(base_url)
            session = shared_session()
            for agents in series:

                async def run_all(on_event: EventSink | None = None, agents: int = agents) -> None:
                    results = await asyncio.gather(*(agent.run("go", on_event=on_event) for _ in range(agents)))
                    assert all(r.completed for r in results), [r.describe() for r in results if not r.completed][:3]

                async def run_all_traced() -> None:
                    await run_all(recorder)

                async def bare_all(agents: int = agents) -> None:
                    await asyncio.gather(*(bare_conversation(session, base_url, steps + 1) for _ in range(agents)))

                # 10,000 agents take half a minute a run on two cores: one run of each is what fits.
                repetitions = 1 if quick else 3 if agents <= 1000 else 2 if agents <= 5000 else 1
                ours: list[float] = []
                bare: list[float] = []
                traced: list[float] = []
                await run_all()  # warm-up: the pool holds a connection for each agent from now on
                for repetition in range(repetitions):
                    # Alternate which goes first: the one after the other pays for the other's garbage.
                    for variant in ("ours", "bare") if repetition % 2 == 0 else ("bare", "ours"):
                        if variant == "bare":
                            bare.append(await timed(bare_all))
                        else:
                            server_cpu = process_cpu_seconds(server_pid)
                            ours.append(await timed(run_all))
                            share = (process_cpu_seconds(server_pid) - server_cpu) / ours[-1]
                            server_share = max(server_share, share)
                    if agents == traced_at:
                        traced.append(await timed(run_all_traced))
                median = statistics.median
                if traced:
                    traced_ratio = median(traced) / median(ours)
                points.append(
                    S2Point(
                        agents,
                        median(ours),
                        median(bare),
                        await peak_kb_per_agent(run_all, agents),
                        await peak_kb_per_agent(bare_all, agents),
                    )
                )
            await close_sessions()
        return points, server_share, traced_ratio

    points, server_share, traced_ratio = asyncio.run(measure())
    rows: list[Row] = []
    for point in points:
        n, ratio = point.agents, point.ours / point.bare
        rows += [
            Row("S2", f"{n} agents x 3 steps, 300 ms: wall / bare aiohttp loop", ratio, "x", "<= 1.10", ratio <= 1.10),
            Row("S2", f"{n} agents: wall / {lower_bound:g} s bound (bare loop: {point.bare / lower_bound:.2f})",
                point.ours / lower_bound, "x", "", None),
            Row("S2", f"{n} agents: memory per agent, tracemalloc peak (bare loop: {point.bare_kb_per_agent:.1f} KB)",
                point.kb_per_agent, "KB", "<= 28 KB", point.kb_per_agent <= 28),
        ]  # fmt: skip
    first, last = points[0], points[-1]
    ns = ", ".join(str(point.agents) for point in points)
    walls = " -> ".join(f"{point.ours / point.bare:.2f}" for point in points)
    kbs = " -> ".join(f"{point.kb_per_agent:.1f}" for point in points)
    rows += [
        Row(
            "S2",
            f"growth with N ({ns}): wall / bare {walls}; KB per agent {kbs}; shown: the last N's wall / bare over "
            "the first's",
            (last.ours / last.bare) / (first.ours / first.bare),
            "x",
            "",
            None,
        ),
        Row(
            "S2",
            "fake server's CPU busy share during a run, at most (not the bottleneck)",
            server_share * 100,
            "%",
            "< 50 %",
            server_share < 0.5,
        ),
        Row(
            "tracing",
            f"S2 wall time at {traced_at} agents, trace store on / off",
            traced_ratio,
            "x",
            "<= 1.10",
            traced_ratio <= 1.10,
        ),
    ]  # fmt: skip
    return rows


def _allow_open_files(needed: int) -> None:
    """Raise this process's open-files limit to `needed` (a connection per agent), or say why it cannot."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= needed:
        return
    if hard != resource.RLIM_INFINITY and hard < needed:
        raise SystemExit(f"S2 needs {needed} open files (a connection per agent) and this machine allows {hard}.")
    resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


def s3_parallel_delegation(quick: bool) -> list[Row]:
    repetitions = 1 if quick else 5
    lower_bound = 1.5  # lead turn, 3 specialist turns (2 tool steps and an answer), lead answer: 5 x 300 ms

    async def measure() -> float:
        times: list[float] = []
        with fake_server("delegation", 2, 300) as base_url:
            specialists = [
                Agent(name=domain, model=model(base_url), tools=[lookup], description=f"Knows {domain}.")
                for domain in ("flights", "hotels", "cars", "weather")
            ]
            lead = lead_agent("lead", specialists=specialists, model=model(base_url), share_decisions=False)
            await lead.run("Plan a trip.")
            for _ in range(repetitions):
                started = time.perf_counter()
                result = await lead.run("Plan a trip.")
                times.append(time.perf_counter() - started)
                assert result.completed and result.total_usage.requests == 2 + 4 * 3, result.describe()
            await close_sessions()
        return statistics.median(times)

    wall = asyncio.run(measure())
    return [
        Row(
            "S3",
            "lead + 4 specialists in one turn: wall / 1.5 s bound",
            wall / lower_bound,
            "x",
            "<= 1.05",
            wall / lower_bound <= 1.05,
        )
    ]


class RecordingModel:
    """Keeps the first request an agent sends, and answers at once."""

    def __init__(self) -> None:
        self.first: Any = None

    @property
    def model_id(self) -> str:
        return "scripted:recording"

    async def request(self, request: Any, on_text: Any = None) -> Any:
        from retinue.testing.scripted import ScriptedModel

        self.first = self.first or request
        return await ScriptedModel(["ok"]).request(request)


def s4_prompt_overhead(quick: bool) -> list[Row]:
    """Text the framework adds to the first request beyond what the user wrote."""
    instructions, prompt = "You plan trips.", "Plan a trip to Paris."

    def added_chars(agent: Agent, user_tool_text: int) -> int:
        recorder = RecordingModel()
        asyncio.run(agent.override(model=recorder).run(prompt))
        request = recorder.first
        body = OpenAIModel("x", base_url="http://127.0.0.1:9/v1", api_key="x")._body(request)
        text = sum(len(m.get("content") or "") for m in body["messages"])
        text += sum(_schema_text(t["function"]) for t in body.get("tools", []))
        return text - len(instructions) - len(prompt) - user_tool_text

    plain = Agent(name="plain", instructions=instructions, tools=[lookup])
    lookup_text = _schema_text(
        {"name": lookup.name, "description": lookup.description, "parameters": lookup.schema.parameters}
    )
    specialists = [Agent(name=d, description=f"Knows {d}.") for d in ("flights", "hotels", "cars", "weather")]
    lead = lead_agent("lead", specialists=specialists, instructions=instructions)
    user_lead_text = sum(len(f"ask_{d}") + len(f"Knows {d}.") for d in ("flights", "hotels", "cars", "weather"))
    plain_added = added_chars(plain, lookup_text)
    lead_added = added_chars(lead, user_lead_text)
    return [
        Row(
            "S4", "characters added to a plain agent's first request", plain_added, "chars", "<= 40", plain_added <= 40
        ),
        Row(
            "S4",
            "same, lead with 4 specialists and the decision record (tool schemas)",
            lead_added,
            "chars",
            "<= 150",
            lead_added <= 150,
        ),
    ]


def _schema_text(function: dict[str, Any]) -> int:
    """Characters of names and descriptions in a tool schema (JSON punctuation not counted)."""
    total = len(function.get("name", "")) + len(function.get("description", ""))
    for name, prop in function.get("parameters", {}).get("properties", {}).items():
        total += len(name) + len(prop.get("description", ""))
    return total


def import_time(quick: bool) -> list[Row]:
    code = "import time; t = time.perf_counter(); import retinue; print(time.perf_counter() - t)"
    times = []
    for _ in range(3 if quick else 7):
        output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        times.append(float(output.stdout))
    median = statistics.median(times)
    return [Row("import", "import retinue", median * 1000, "ms", "<= 250 ms", median <= 0.25)]


def sandbox(quick: bool) -> list[Row]:
    import bench_sandbox

    return [_row_from_helper("sandbox", row) for row in bench_sandbox.run(quick)]


def tracing(quick: bool) -> list[Row]:
    import bench_tracing

    return [_row_from_helper("tracing", row) for row in bench_tracing.run(quick)]


def kill_sweep(quick: bool) -> list[Row]:
    import bench_kill_sweep

    return [_row_from_helper("kill sweep", row) for row in bench_kill_sweep.run(quick)]


def _row_from_helper(scenario: str, row: dict[str, Any]) -> Row:
    """A row from benchmarks/bench_*.py, whose numeric target is an upper bound."""
    target, value = row.get("target"), float(row["value"])
    passed = row.get("passed")
    if not isinstance(passed, bool):
        passed = value <= target if isinstance(target, int | float) else None
    shown = f"<= {target:g} {row['unit']}" if isinstance(target, int | float) else ""
    what = row["scenario"].removeprefix(f"{scenario}: ").removeprefix(f"{scenario} ")
    return Row(scenario, what, value, row["unit"], shown, passed)


SCENARIOS: dict[str, Callable[[bool], list[Row]]] = {
    "S1": s1_step_overhead,
    "S2": s2_concurrency,
    "S3": s3_parallel_delegation,
    "S4": s4_prompt_overhead,
    "import": import_time,
    "sandbox": sandbox,
    "tracing": tracing,
    "journal": journal_overhead,
    "kill-sweep": kill_sweep,
}


def render(rows: list[Row]) -> str:
    return markdown_table(["scenario", "what", "measured", "target", "met"], [row.cells() for row in rows])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes, to check the suite works")
    parser.add_argument("--only", help="comma-separated scenarios: " + ",".join(SCENARIOS))
    parser.add_argument("--json", type=Path, default=HERE / "results" / "latest.json")
    args = parser.parse_args()
    os.environ.setdefault("RETINUE_HOME", str(HERE / "results" / "home"))
    chosen = args.only.split(",") if args.only else list(SCENARIOS)
    unknown = set(chosen) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    rows: list[Row] = []
    for name in chosen:
        print(f"running {name} ...", file=sys.stderr, flush=True)
        rows.extend(SCENARIOS[name](args.quick))
    print(render(rows))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps([row.__dict__ for row in rows], indent=2))


if __name__ == "__main__":
    main()
