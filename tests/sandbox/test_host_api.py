"""The host API from every Python process in the sandbox: scripts, subprocesses, workers, and hostile clients."""

from __future__ import annotations

import asyncio
import os
import stat
import subprocess
import threading
import time

import pytest
from sandbox_helpers import SANDBOX_UID, TIGHT_LIMITS, host_is_root

from retinue.sandbox import NotIsolatedWarning, Sandbox, SandboxLimits

pytestmark = pytest.mark.asyncio

SOCKET_INSIDE = "/run/retinue/api.sock"


def get_weather(city: str) -> str:
    """Forecast for a city."""
    if city == "Atlantis":
        raise ValueError(f"no forecast for {city}")
    return f"{city}: snow"


class QuotaExceeded(Exception):
    pass


def search_hotels(city: str) -> list[str]:
    raise QuotaExceeded(f"daily quota used up before {city}")


SOLVER = """
import sys
import travel
for city in sys.argv[1:]:
    print(travel.get_weather(city))
"""


async def test_a_script_run_from_the_shell_calls_the_host() -> None:
    functions = {"get_weather": get_weather}
    async with Sandbox(
        isolation="bubblewrap", host_functions=functions, host_module="travel", limits=TIGHT_LIMITS
    ) as sandbox:
        sandbox.write_file("custom_travel_solver.py", SOLVER)
        script = await sandbox.run_shell("python custom_travel_solver.py Paris Oslo")
        pipeline = await sandbox.run_shell(
            "echo Rome | python3 -c 'import travel; print(travel.get_weather(input()))' | tr a-z A-Z"
        )
        # The session is killed; the next one serves the host API all the same.
        await sandbox.run_python("import os\nos._exit(1)")
        after_restart = await sandbox.run_shell("python custom_travel_solver.py Lima")
    assert script.error is None, script.stderr
    assert script.stdout == "Paris: snow\nOslo: snow\n"
    assert pipeline.stdout == "ROME: SNOW\n", pipeline.stderr
    assert after_restart.stdout == "Lima: snow\n", after_restart.stderr


async def test_subprocesses_and_worker_pools_of_the_session_call_the_host() -> None:
    code = """
import multiprocessing, subprocess, sys
import host_api
print(host_api.get_weather("Paris"))
child = subprocess.run([sys.executable, "-c", "import host_api; print(host_api.get_weather('Oslo'))"],
                       capture_output=True, text=True)
print(child.stdout.strip() or child.stderr)
from worker import forecast
for method in ("fork", "spawn"):
    with multiprocessing.get_context(method).Pool(2) as pool:
        print(method, pool.map(forecast, ["Rome", "Lima", "Kyiv"]))
"""
    worker = "def forecast(city):\n    import host_api\n    return host_api.get_weather(city)\n"
    async with Sandbox(isolation="bubblewrap", host_functions={"get_weather": get_weather}, limits=TIGHT_LIMITS) as sb:
        sb.write_file("worker.py", worker)
        result = await sb.run_python(code, timeout=20)
    assert result.error is None, result.error
    weather = "['Rome: snow', 'Lima: snow', 'Kyiv: snow']"
    assert result.stdout.splitlines() == ["Paris: snow", "Oslo: snow", f"fork {weather}", f"spawn {weather}"]


async def test_concurrent_callers_each_get_their_own_reply() -> None:
    in_progress = 0
    most_at_once = 0
    lock = threading.Lock()

    def slow_double(label: str, value: int) -> str:
        nonlocal in_progress, most_at_once
        with lock:
            in_progress += 1
            most_at_once = max(most_at_once, in_progress)
        time.sleep(0.5)
        with lock:
            in_progress -= 1
        return f"{label}={2 * value}"

    script = "import sys, host_api\nprint(host_api.slow_double(sys.argv[1], int(sys.argv[2])))\n"
    threads = (
        "from concurrent.futures import ThreadPoolExecutor\nimport host_api\n"
        "with ThreadPoolExecutor(4) as pool:\n"
        "    print(list(pool.map(lambda n: host_api.slow_double(f't{n}', n), range(4))))\n"
    )
    async with Sandbox(
        isolation="bubblewrap", host_functions={"slow_double": slow_double}, limits=TIGHT_LIMITS
    ) as sandbox:
        sandbox.write_file("ask.py", script)
        shells = await sandbox.run_shell(
            "for n in 1 2 3 4; do python ask.py script$n $n > out$n.txt & done; wait; cat out?.txt",
            timeout=10,
        )
        scripts_at_once = most_at_once
        from_threads = await sandbox.run_python(threads, timeout=10)
    assert shells.error is None, shells.stderr
    assert shells.stdout.splitlines() == ["script1=2", "script2=4", "script3=6", "script4=8"]
    # Run one after another, four half-second calls would take two seconds.
    assert scripts_at_once == 4 and shells.duration_seconds < 1.8
    assert from_threads.stdout == "['t0=0', 't1=2', 't2=4', 't3=6']\n", from_threads.error
    assert from_threads.duration_seconds < 1.8


async def test_a_crowd_of_callers_waits_its_turn_and_is_never_refused() -> None:
    # Nine processes of eight threads want 72 connections at once, more than
    # the host keeps open (64): the rest wait to be accepted, none fails.
    worker = (
        "import os, threading, host_api\n"
        "wrong = []\n"
        "def work(thread):\n"
        "    for call in range(5):\n"
        "        key = f'{os.getpid()}-{thread}-{call}'\n"
        "        if host_api.echo(key) != key:\n"
        "            wrong.append(key)\n"
        "threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]\n"
        "for thread in threads: thread.start()\n"
        "for thread in threads: thread.join()\n"
        "print('wrong', len(wrong))\n"
    )

    def slow_echo(value: str) -> str:
        # Slow enough that every thread is mid-call at once.
        time.sleep(0.05)
        return value

    limits = SandboxLimits(processes=256, open_files=256, timeout_seconds=20, max_output_chars=2_000)
    async with Sandbox(isolation="bubblewrap", host_functions={"echo": slow_echo}, limits=limits) as sb:
        sb.write_file("worker.py", worker)
        result = await sb.run_shell("for n in $(seq 9); do python worker.py & done; wait")
    assert result.error is None, result.stderr
    assert result.stderr == ""
    assert result.stdout == "wrong 0\n" * 9


async def test_a_host_exception_arrives_in_the_script_with_its_message() -> None:
    script = (
        "import host_api\n"
        "try:\n"
        "    host_api.search_hotels('Rome')\n"
        "except host_api.HostError as error:\n"
        "    print('caught', error)\n"
        "host_api.get_weather('Atlantis')\n"
    )
    functions = {"get_weather": get_weather, "search_hotels": search_hotels}
    async with Sandbox(isolation="bubblewrap", host_functions=functions, limits=TIGHT_LIMITS) as sandbox:
        sandbox.write_file("plan.py", script)
        result = await sandbox.run_shell("python plan.py")
        typed = await sandbox.run_shell(
            'python -c \'import host_api\ntry:\n    host_api.get_weather("Atlantis")\nexcept ValueError as e:\n'
            "    print(type(e).__name__, e)'"
        )
        missing = await sandbox.run_shell("python -c 'import host_api; host_api.book_flight()'")
    assert result.exit_code == 1
    assert result.stdout == "caught QuotaExceeded: daily quota used up before Rome\n"
    assert 'File "/workspace/plan.py", line 6, in <module>' in result.stderr
    assert result.stderr.rstrip().endswith("ValueError: no forecast for Atlantis")
    assert typed.stdout == "ValueError no forecast for Atlantis\n"
    assert "has no function 'book_flight'; available: get_weather, search_hotels" in missing.stderr


async def test_a_hostile_client_does_not_disturb_a_legitimate_call() -> None:
    def slow_echo(value: str) -> str:
        time.sleep(1.5)
        return value

    attacker = f"""
import json, select, socket, time
def connect():
    client = socket.socket(socket.AF_UNIX)
    client.connect({SOCKET_INSIDE!r})
    return client
def refusal(payload):
    client = connect()
    try:
        client.sendall(payload)
    except OSError:
        pass
    reply = client.makefile("rb").readline()
    return json.loads(reply)["error"]["message"] if reply else "closed"
print(refusal(b"not json\\n"))
print(refusal(b"[" * 100000 + b"\\n"))
print(refusal(b'{{"type": "call", "id": "1", "name": "slow_echo"}}\\n'))
print(refusal(b"x" * (3 * 1024 * 1024)))
held = [connect() for _ in range(20)]
# Refused connections get a line at once; the accepted ones stay silent, held open.
time.sleep(0.5)
ready, _, _ = select.select(held, [], [], 0)
print(len(ready), "refused")
time.sleep(0.5)
"""
    legitimate = "import host_api\nprint('legitimate:', host_api.slow_echo('mine'))\n"
    async with Sandbox(isolation="bubblewrap", host_functions={"slow_echo": slow_echo}, limits=TIGHT_LIMITS) as sandbox:
        sandbox.write_file("attacker.py", attacker)
        sandbox.write_file("legitimate.py", legitimate)
        result = await sandbox.run_shell(
            "python legitimate.py > legitimate.txt & sleep 0.2; python attacker.py; wait; cat legitimate.txt",
            timeout=10,
        )
        after = await sandbox.run_python("import host_api\nhost_api.slow_echo('still served')")
    assert result.error is None, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "the host closed this connection: a request that is not JSON (JSONDecodeError)"
    assert lines[1] == "the host closed this connection: a request that is not JSON (RecursionError)"
    assert lines[2] == "the host closed this connection: a call request needs an integer id"
    assert lines[3] == "the host closed this connection: a request longer than 1,048,576 bytes"
    # One process may keep 16 connections; the other 4 were refused at once.
    assert lines[4] == "4 refused"
    assert lines[5] == "legitimate: mine"
    assert after.stdout == "'still served'\n" and not after.session_restarted


async def test_oversized_arguments_are_refused_in_the_sandbox_with_a_clear_error() -> None:
    code = (
        "import host_api\n"
        "try:\n"
        "    host_api.echo('x' * 2_000_000)\n"
        "except ValueError as error:\n"
        "    print(error)\n"
        "print(len(host_api.echo('y' * 500_000)))\n"
    )
    async with Sandbox(isolation="bubblewrap", host_functions={"echo": lambda value: value}, limits=TIGHT_LIMITS) as sb:
        result = await sb.run_python(code)
    refused, echoed = result.stdout.splitlines()
    assert refused.startswith("host_api.echo(): the arguments are 2,000,0"), result.error
    assert refused.endswith(" bytes as JSON; at most 1,048,576 can be sent to the host")
    assert echoed == "500000"


async def test_the_socket_and_module_cannot_be_removed_or_replaced_from_inside() -> None:
    code = f"""
import os, socket
for attempt in (
    lambda: os.unlink({SOCKET_INSIDE!r}),
    lambda: os.rename({SOCKET_INSIDE!r}, "/run/retinue/moved.sock"),
    lambda: socket.socket(socket.AF_UNIX).bind({SOCKET_INSIDE!r}),
    lambda: socket.socket(socket.AF_UNIX).bind("/run/retinue/host/api.sock"),
    lambda: open("/run/retinue/host/host_api.py", "a"),
    lambda: os.mkdir("/run/retinue/evil"),
):
    try:
        attempt()
        print("ALLOWED")
    except OSError as error:
        print(error.strerror)
print(sorted(os.listdir("/run/retinue")), sorted(os.listdir("/run/retinue/host")), os.listdir("/workspace"))
import host_api
print(host_api.get_weather("Paris"), host_api.__file__)
"""
    async with Sandbox(isolation="bubblewrap", host_functions={"get_weather": get_weather}, limits=TIGHT_LIMITS) as sb:
        result = await sb.run_python(code)
        shell = await sb.run_shell(f"rm -f {SOCKET_INSIDE}; echo status $?")
        host_socket = sb.workspace.parent / "api.sock"
        assert stat.S_ISSOCK(host_socket.lstat().st_mode)
        # Private on the host: the state directory keeps every other user out.
        assert stat.S_IMODE(host_socket.parent.stat().st_mode) == 0o700
        assert stat.S_IMODE(host_socket.lstat().st_mode) == 0o600
        if host_is_root():
            assert host_socket.lstat().st_uid == SANDBOX_UID
    assert result.error is None, result.error
    lines = result.stdout.splitlines()
    # Every attempt is refused; which check the kernel makes first varies by operation.
    refusals = {"Read-only file system", "Permission denied", "Address already in use", "Device or resource busy"}
    assert all(line in refusals for line in lines[:6]), lines
    assert lines[6] == "['api.sock', 'host', 'session.py'] ['__pycache__', 'host_api.py'] []"
    assert lines[7] == "Paris: snow /run/retinue/host/host_api.py"
    assert "Read-only file system" in shell.stderr and shell.stdout == "status 1\n"


@pytest.mark.skipif(not host_is_root() or not os.path.exists("/usr/bin/python3"), reason="needs root to switch users")
async def test_other_host_users_cannot_reach_the_socket() -> None:
    async with Sandbox(isolation="bubblewrap", host_functions={"get_weather": get_weather}, limits=TIGHT_LIMITS) as sb:
        host_socket = sb.workspace.parent / "api.sock"
        probe = (
            "import socket, sys\n"
            "try:\n"
            "    socket.socket(socket.AF_UNIX).connect(sys.argv[1])\n"
            "    print('CONNECTED')\n"
            "except OSError as error:\n"
            "    print(error.strerror)\n"
        )
        outsider = await asyncio.to_thread(
            subprocess.run,
            ["/usr/bin/python3", "-c", probe, str(host_socket)],
            capture_output=True,
            text=True,
            user=SANDBOX_UID,
            group=SANDBOX_UID,
            extra_groups=[],
            cwd="/",
        )
    # The very uid the sandbox runs as, but outside it: the 0700 state directory stops it.
    assert outsider.stdout == "Permission denied\n", outsider.stderr


async def test_the_network_is_still_absent_while_the_host_api_works() -> None:
    code = """
import socket, host_api
print(socket.if_nameindex())
try:
    socket.create_connection(("1.1.1.1", 53), timeout=1)
    print("CONNECTED")
except OSError as error:
    print("refused", error.errno)
print(host_api.get_weather("Paris"))
"""
    async with Sandbox(isolation="bubblewrap", host_functions={"get_weather": get_weather}, limits=TIGHT_LIMITS) as sb:
        sb.write_file("net.py", code)
        result = await sb.run_shell("python net.py")
    assert result.stdout.splitlines() == ["[(1, 'lo')]", "refused 101", "Paris: snow"], result.stderr


async def test_scripts_reach_the_host_without_isolation_too() -> None:
    with pytest.warns(NotIsolatedWarning):
        sandbox = Sandbox(
            isolation="subprocess",
            host_functions={"get_weather": get_weather},
            host_module="travel",
            limits=TIGHT_LIMITS,
        )
        await sandbox.start()
    try:
        sandbox.write_file("custom_travel_solver.py", SOLVER)
        script = await sandbox.run_shell("python custom_travel_solver.py Paris")
        session = await sandbox.run_python("import travel\ntravel.get_weather('Oslo')")
    finally:
        await sandbox.close()
    assert script.stdout == "Paris: snow\n", script.stderr
    assert session.stdout == "'Oslo: snow'\n", session.error
