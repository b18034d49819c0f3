"""What the sandbox costs an agent: a cold isolated start and a warm run.

`cold start` is `await Sandbox(isolation="bubblewrap").start()`: a fresh
workspace (a tmpfs when running as root), bubblewrap's namespaces and mounts,
the interpreter's startup, up to the session reporting ready. `warm run` is
`run_python("print(1)")` in a started session, round trip included. Host API
calls are timed too, for the record: a run that makes one, one call alone as
timed inside the session (the socket round trip to the host), and a script
run from the shell that makes one (a fresh interpreter that imports the
module and connects). Each figure is a median.

`neighbour` is isolation between sandboxes sharing the host's event loop:
one sandbox floods the host API from many connections with ~1 MB requests
(a long string, then a list of numbers, the costliest JSON to parse per
byte) while another times small host calls; the flood may add at most
50 ms to the neighbour's 95th-percentile call.

Run: `PYTHONPATH=src python benchmarks/bench_sandbox.py [--quick]`.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from typing import Any

from retinue.sandbox import Sandbox, SandboxLimits

COLD_START_TARGET_MS = 100.0
WARM_RUN_TARGET_MS = 10.0
FLOOD_ADDED_LATENCY_TARGET_MS = 50.0


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


# Raw sockets, not the module: a hostile flooder skips the client's checks
# and keeps a request in flight on every connection it may hold.
_FLOOD = """
import json, socket, threading, time
payload = {payload}
line = json.dumps({{"type": "call", "id": 1, "name": "echo", "args": [payload]}}).encode() + b"\\n"
deadline = time.monotonic() + {seconds}
def flood():
    while time.monotonic() < deadline:
        try:
            with socket.socket(socket.AF_UNIX) as client:
                # Replies held back by the host must not keep the flood past its deadline.
                client.settimeout(0.5)
                client.connect("/run/retinue/api.sock")
                replies = client.makefile("rb")
                while time.monotonic() < deadline:
                    client.sendall(line)
                    if not replies.readline():
                        break
        except OSError:
            pass
threads = [threading.Thread(target=flood) for _ in range(8)]
for thread in threads: thread.start()
for thread in threads: thread.join()
"""

_FLOOD_PAYLOADS = {"a 1 MB string": "'x' * 1_000_000", "1 MB of numbers": "[1.5] * 200_000"}

_TIME_NEIGHBOUR_CALLS = """
import time
timings = []
deadline = time.monotonic() + {seconds}
while time.monotonic() < deadline:
    started = time.perf_counter()
    host_api.echo(1)
    timings.append(time.perf_counter() - started)
    time.sleep(0.005)
timings.sort()
print(timings[int(0.95 * len(timings))])
"""


async def _neighbour_latency(seconds: float) -> dict[str, float]:
    """The neighbour's 95th-percentile host-call latency, alone and during each flood."""
    limits = SandboxLimits(timeout_seconds=4 * seconds + 10, processes=128, open_files=256)
    echo = {"echo": lambda value: value}
    measured: dict[str, float] = {}
    async with Sandbox(isolation="bubblewrap", host_functions=echo, limits=limits) as neighbour:
        await neighbour.run_python("import host_api; host_api.echo(1)")

        async def neighbour_calls() -> float:
            result = await neighbour.run_python(_TIME_NEIGHBOUR_CALLS.format(seconds=seconds))
            assert result.error is None, result
            return float(result.stdout)

        measured["alone"] = await neighbour_calls()
        for name, payload in _FLOOD_PAYLOADS.items():
            # A fresh flooder each time, with its whole budget.
            async with Sandbox(isolation="bubblewrap", host_functions=echo, limits=limits) as flooder:
                flooder.write_file("flood.py", _FLOOD.format(payload=payload, seconds=seconds))
                # Four processes of eight connections: half of what the host lets one sandbox keep open.
                # Started together, so the neighbour's calls see the flood's first burst too.
                flood = asyncio.create_task(
                    flooder.run_shell("for n in 1 2 3 4; do python flood.py & done; wait", timeout=seconds + 10)
                )
                measured[name] = await neighbour_calls()
                flooded = await flood
                assert flooded.error is None, flooded
    return measured


async def _measure(quick: bool) -> tuple[dict[str, float], dict[str, float]]:
    cold = await _cold_starts(5 if quick else 21)
    prints, calls, call_inside, scripts = await _warm_runs(20 if quick else 201)
    timings = {
        "cold": statistics.median(cold),
        "warm": statistics.median(prints),
        "call": statistics.median(calls),
        "call_inside": call_inside,
        "script": statistics.median(scripts),
    }
    return timings, await _neighbour_latency(1.0 if quick else 3.0)


def _neighbour_rows(neighbour: dict[str, float]) -> list[dict[str, Any]]:
    alone = neighbour["alone"]
    rows: list[dict[str, Any]] = [
        {
            "scenario": "sandbox: neighbour's host call, no flood (95th percentile)",
            "value": alone * 1000,
            "unit": "ms",
            "target": None,
        }
    ]
    for name in _FLOOD_PAYLOADS:
        flooded = neighbour[name]
        rows += [
            {
                "scenario": f"sandbox: neighbour's host call, another sandbox flooding {name} (95th percentile)",
                "value": flooded * 1000,
                "unit": "ms",
                "target": None,
            },
            {
                "scenario": f"sandbox: latency the flood of {name} adds to the neighbour's call (95th percentile)",
                "value": (flooded - alone) * 1000,
                "unit": "ms",
                "target": FLOOD_ADDED_LATENCY_TARGET_MS,
            },
        ]
    return rows


def run(quick: bool) -> list[dict[str, Any]]:
    timings, neighbour = asyncio.run(_measure(quick))
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
        *_neighbour_rows(neighbour),
    ]


if __name__ == "__main__":
    for row in run(quick="--quick" in sys.argv):
        target = "" if row["target"] is None else f"  (target <= {row['target']})"
        print(f"{row['scenario']:<65} {row['value']:10.3f} {row['unit']}{target}")
