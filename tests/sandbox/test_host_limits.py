"""What one sandbox may ask of the host API: a budget of calls and bytes, idle connections closed, JSON off the loop.

These run the host's server and the very module a sandbox imports, in this
process: what they check lives on the host side, isolation or not.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import tempfile
import threading
import time
import types
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from retinue.sandbox import host_bridge, host_socket
from retinue.sandbox.host_bridge import HostBridge
from retinue.sandbox.host_limits import DEFAULT_HOST_API_LIMITS, MAX_REQUEST_BYTES, HostApiBudget, HostApiLimits
from retinue.sandbox.host_socket import MAX_CONNECTIONS_PER_PROCESS, HostApiServer


def echo(value: object) -> object:
    return value


@contextlib.asynccontextmanager
async def host_api(limits: HostApiLimits = DEFAULT_HOST_API_LIMITS) -> AsyncIterator[tuple[types.ModuleType, Path]]:
    """A host-API server answering `echo`, and the module a sandbox would import to call it."""
    # A short directory: a unix socket's path must fit in 108 bytes.
    with tempfile.TemporaryDirectory(prefix="host-api-") as directory:
        path = Path(directory) / "api.sock"
        bridge = HostBridge({"echo": echo}, "host_api")
        server = HostApiServer(bridge, path, limits=limits)
        await server.start()
        source = bridge.module_source(
            str(path),
            max_request_bytes=MAX_REQUEST_BYTES,
            max_connections=MAX_CONNECTIONS_PER_PROCESS,
            idle_timeout_seconds=limits.idle_timeout_seconds,
        )
        module = types.ModuleType("host_api")
        exec(compile(source, "host_api.py", "exec"), module.__dict__)
        try:
            yield module, path
        finally:
            server.close()
            await server.wait_closed()


async def call(module: types.ModuleType, value: object) -> object:
    """`module.echo(value)` as sandboxed code makes it: a blocking call, here in a thread."""
    return await asyncio.to_thread(module.echo, value)


def connect(path: Path) -> socket.socket:
    client = socket.socket(socket.AF_UNIX)
    client.settimeout(5)
    client.connect(str(path))
    return client


def test_a_budget_covers_a_burst_then_refills_at_its_rate() -> None:
    now = 0.0
    budget = HostApiBudget(HostApiLimits(calls_per_second=10, call_burst=2), clock=lambda: now)
    assert budget.draw(100) and budget.draw(100)
    # Charged even though refused: the host read it all the same.
    assert not budget.draw(100)
    assert budget.seconds_until_covered(100) == pytest.approx(0.2)
    now = 0.2
    assert budget.draw(100)
    assert not budget.draw(100)


def test_a_budget_counts_request_bytes_too() -> None:
    now = 0.0
    limits = HostApiLimits(request_bytes_per_second=1_000_000, request_bytes_burst=MAX_REQUEST_BYTES)
    budget = HostApiBudget(limits, clock=lambda: now)
    assert budget.draw(MAX_REQUEST_BYTES - 10)
    assert not budget.draw(600_000)
    # The debt is repaid, and then there is room for the request that was refused.
    assert budget.seconds_until_covered(600_000) == pytest.approx((600_000 - 10 + 600_000) / 1_000_000)


def test_limits_that_could_never_serve_a_request_are_refused() -> None:
    with pytest.raises(ValueError, match="request_bytes_burst must be at least one request"):
        HostApiLimits(request_bytes_burst=1000)
    with pytest.raises(ValueError, match="calls_per_second must be a positive, finite number"):
        HostApiLimits(calls_per_second=float("nan"))
    with pytest.raises(ValueError, match="call_burst must be a positive int"):
        HostApiLimits(call_burst=0)


async def test_a_sandbox_over_its_budget_is_told_why_and_served_again_once_it_refills() -> None:
    # A burst of three calls, then four a second.
    limits = HostApiLimits(calls_per_second=4, call_burst=3)
    async with host_api(limits) as (module, _):
        served = [await call(module, n) for n in range(3)]
        started = time.monotonic()
        with pytest.raises(ConnectionError) as refused:
            await call(module, 3)
        held = time.monotonic() - started
        after = await call(module, "within budget again")
    assert served == [0, 1, 2]
    assert str(refused.value) == (
        "host_api: the host closed this connection: this sandbox went over its host-API budget (at most 4 calls "
        "and 8 MiB of requests a second, in bursts of up to 3 calls and 64 MiB), so this call was not run; it was "
        "held until the budget had room for it again and may be retried now. Fewer or smaller calls stay within "
        "the budget"
    )
    # Held until the budget could cover it again (one call into debt, one to spend: half a second),
    # so a retry at once is served.
    assert held > 0.3
    assert after == "within budget again"


async def test_one_sandbox_spending_its_budget_leaves_another_sandboxs_whole() -> None:
    limits = HostApiLimits(calls_per_second=4, call_burst=2)
    async with host_api(limits) as (spender, _), host_api(limits) as (neighbour, _):
        await call(spender, 1)
        await call(spender, 2)
        refusal = asyncio.ensure_future(call(spender, 3))
        # While the spender's refusal is still held, the neighbour spends its own budget.
        answers = [await call(neighbour, 1), await call(neighbour, 2)]
        with pytest.raises(ConnectionError, match="went over its host-API budget"):
            await refusal
    assert answers == [1, 2]


async def test_an_idle_connection_is_told_why_and_closed() -> None:
    async with host_api(HostApiLimits(idle_timeout_seconds=0.2)) as (_, path):
        silent = connect(path)
        # One that starts a request and never finishes it is idle too.
        stalled = connect(path)
        stalled.sendall(b'{"type": "call", "id": 1, "name": "echo", "ar')
        started = time.monotonic()
        lines = await asyncio.to_thread(lambda: [client.makefile("rb").readlines() for client in (silent, stalled)])
        waited = time.monotonic() - started
    for received in lines:
        (line,) = received
        assert json.loads(line)["error"]["message"] == (
            "the host closed this connection: no request in 0.2 s; connect again to call"
        )
    assert 0.15 < waited < 3


async def test_the_module_never_reuses_a_connection_the_host_closed_as_idle() -> None:
    async with host_api(HostApiLimits(idle_timeout_seconds=0.3)) as (module, _):
        first = await call(module, "before")
        # The host has closed the connection the module kept for its next call.
        await asyncio.sleep(0.5)
        second = await call(module, "after")
    assert (first, second) == ("before", "after")


async def test_large_requests_and_replies_are_decoded_and_encoded_off_the_event_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    threads: dict[str, list[str]] = {"decoded": [], "encoded": []}

    def recording(kind: str, codec: Callable[..., Any]) -> Callable[..., Any]:
        def recorded(*args: Any) -> Any:
            threads[kind].append(threading.current_thread().name)
            return codec(*args)

        return recorded

    monkeypatch.setattr(host_socket, "parse_call", recording("decoded", host_bridge.parse_call))
    monkeypatch.setattr(host_bridge, "reply_line", recording("encoded", host_bridge.reply_line))
    async with host_api() as (module, _):
        await call(module, "small")
        await call(module, "x" * 200_000)
        await call(module, list(range(1_000)))
    loop_thread = threading.current_thread().name
    codec_thread = "retinue-host-api-codec_0"
    # Small JSON costs less than the hand-off to a thread; large, or made of many values, goes to the sandbox's own.
    assert threads == {"decoded": [loop_thread, codec_thread, codec_thread], "encoded": threads["decoded"]}


def test_a_document_of_many_values_lets_go_of_the_gil_as_it_is_decoded_and_encoded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Each time.sleep(0) hands the GIL to a waiting thread, the event loop say.
    releases: list[float] = []
    monkeypatch.setattr(host_bridge, "time", types.SimpleNamespace(sleep=releases.append))
    numbers = [1.5] * 100_000
    line = json.dumps({"type": "call", "id": 7, "name": "echo", "args": [numbers]}).encode()
    request = host_bridge.parse_call(line)
    decoding_releases = len(releases)
    reply = host_bridge.reply_line(7, request["args"][0])
    assert decoding_releases >= 100_000 // 200
    assert len(releases) - decoding_releases >= 100_000 // 200
    assert set(releases) == {0}
    assert request == json.loads(line)
    assert reply == json.dumps({"type": "reply", "id": 7, "ok": True, "value": numbers}).encode() + b"\n"


@pytest.mark.parametrize(
    "value",
    [
        [
            {"name": f"city {n}", "rank": n, "score": n / 7, "tags": ["a", "b\u00e9\n"], "open": n % 2 == 0, "x": None}
            for n in range(3_000)
        ],
        [[[]] * 4, [{}] * 4] * 2_000,
        ["\u2603 snow", 12345678901234567890, -0.0, 1e300] * 5_000,
    ],
    ids=["records", "empty containers", "scalars"],
)
def test_the_slow_codec_for_many_values_gives_exactly_what_json_does(value: list[Any]) -> None:
    line = json.dumps({"type": "call", "id": 1, "name": "echo", "args": [value], "kwargs": {}}).encode()
    assert host_bridge.parse_call(line) == json.loads(line)
    expected = json.dumps({"type": "reply", "id": 1, "ok": True, "value": value}).encode() + b"\n"
    assert host_bridge.reply_line(1, value) == expected
