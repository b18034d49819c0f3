"""What the sandbox costs an agent: a cold isolated start and a warm run.

`cold start` is `await Sandbox(isolation="bubblewrap").start()`: a fresh
workspace (a tmpfs when running as root), bubblewrap's namespaces and mounts,
the interpreter's startup, up to the session reporting ready. `warm run` is
`run_python("print(1)")` in a started session, round trip included. Host API
calls are timed too, for the record: a run that makes one, one call alone as
timed inside the session (the socket round trip to the host), and a script
run from the shell that makes one (a fresh interpreter that imports the
module and connects). Each figure is a median.

Run: `PYTHONPATH=src python benchmarks/bench_sandbox.py [--quick]`.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from typing import Any

from retinue.sandbox import Sandbox

COLD_START_TARGET_MS = 100.0
WARM_RUN_TARGET_MS = 10.0


async def _cold_starts(repetitions: int) -> list[float]:
    timings = []
    for _ in range(repetitions):
        sandbox = Sandbox(isolation="bubblewrap")
        started = time.perf_counter()
        await sandbox.start()
        timings.append(time.perf_counter() - started)
        await sandbox.close()
    return timings


_TIME_CALLS_INSIDE = """
import statistics, time
timings = []
for _ in range({repetitions}):
    started = time.perf_counter()
    host_api.echo(1)
    timings.append(time.perf_counter() - started)
print(statistics.median(timings))
"""


async def _warm_runs(repetitions: int) -> tuple[list[float], list[float], float, list[float]]:
    prints, calls, scripts = [], [], []
    async with Sandbox(isolation="bubblewrap", host_functions={"echo": lambda value: value}) as sandbox:
        await sandbox.run_python("import host_api")
        for _ in range(repetitions):
            started = time.perf_counter()
            result = await sandbox.run_python("print(1)")
            prints.append(time.perf_counter() - started)
            assert result.stdout == "1\n", result
        for _ in range(repetitions):
            started = time.perf_counter()
            result = await sandbox.run_python("host_api.echo(1)")
            calls.append(time.perf_counter() - started)
            assert result.stdout == "1\n", result
        inside = await sandbox.run_python(_TIME_CALLS_INSIDE.format(repetitions=10 * repetitions))
        assert inside.error is None, inside
        sandbox.write_file("script.py", "import host_api\nprint(host_api.echo(1))\n")
        for _ in range(max(5, repetitions // 10)):
            started = time.perf_counter()
            result = await sandbox.run_shell("python script.py")
            scripts.append(time.perf_counter() - started)
            assert result.stdout == "1\n", result
    return prints, calls, float(inside.stdout), scripts


async def _measure(quick: bool) -> dict[str, float]:
    cold = await _cold_starts(5 if quick else 21)
    prints, calls, call_inside, scripts = await _warm_runs(20 if quick else 201)
    return {
        "cold": statistics.median(cold),
        "warm": statistics.median(prints),
        "call": statistics.median(calls),
        "call_inside": call_inside,
        "script": statistics.median(scripts),
    }


def run(quick: bool) -> list[dict[str, Any]]:
    timings = asyncio.run(_measure(quick))
    return [
        {
            "scenario": "sandbox: cold isolated start (bubblewrap, until ready)",
            "value": timings["cold"] * 1000,
            "unit": "ms",
            "target": COLD_START_TARGET_MS,
        },
        {
            "scenario": "sandbox: warm run_python('print(1)')",
            "value": timings["warm"] * 1000,
            "unit": "ms",
            "target": WARM_RUN_TARGET_MS,
        },
        {
            "scenario": "sandbox: warm run with one host API call",
            "value": timings["call"] * 1000,
            "unit": "ms",
            "target": None,
        },
        {
            "scenario": "sandbox: one warm host API call, timed inside the session",
            "value": timings["call_inside"] * 1000,
            "unit": "ms",
            "target": None,
        },
        {
            "scenario": "sandbox: run_shell('python script.py') making one host API call",
            "value": timings["script"] * 1000,
            "unit": "ms",
            "target": None,
        },
    ]


if __name__ == "__main__":
    for row in run(quick="--quick" in sys.argv):
        target = "" if row["target"] is None else f"  (target <= {row['target']})"
        print(f"{row['scenario']:<65} {row['value']:10.3f} {row['unit']}{target}")
