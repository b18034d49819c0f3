"""Hostile or broken code: each case is contained, explained to the model, and leaves the host unharmed."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
from sandbox_helpers import (
    SANDBOX_UID,
    TIGHT_LIMITS,
    host_is_root,
    host_path_exists,
    processes_of_uid,
    read_host_text,
    start_and_close_a_sandbox_elsewhere,
    start_host_holding_a_sandbox,
    wait_until_no_processes_of,
)

from retinue.sandbox import Sandbox, SandboxLimits

pytestmark = pytest.mark.asyncio

# Child host processes must import this same retinue, installed or not.


async def test_infinite_loop_times_out_and_restarts_the_session() -> None:
    async with Sandbox(isolation="bubblewrap", limits=TIGHT_LIMITS) as sandbox:
        await sandbox.run_python("state = 'lost on restart'")
        result = await sandbox.run_python("print('spinning', flush=True)\nwhile True:\n    pass")
        after = await sandbox.run_python("print('state' in globals())")
    assert result.timed_out and result.exit_code is None
    assert 1.9 < result.duration_seconds < 6
    assert result.stdout == "spinning\n"
    text = result.to_model_text()
    assert "Timed out: the run was stopped after 2 s" in text
    assert "restarted because the previous run timed out after 2 s" in text
    assert after.stdout == "False\n"


async def test_fork_bomb_is_capped_by_the_process_limit_and_cleaned_up() -> None:
    assert processes_of_uid(SANDBOX_UID) == []
    async with Sandbox(isolation="bubblewrap", limits=TIGHT_LIMITS) as sandbox:
        # A measurable bomb first: children sleep, the parent forks until the kernel refuses.
        counted = await sandbox.run_python(
            "import os, time\nforks = 0\n"
            "try:\n"
            "    while True:\n"
            "        if os.fork() == 0:\n"
            "            time.sleep(60)\n"
            "            os._exit(0)\n"
            "        forks += 1\n"
            "except OSError as error:\n"
            "    print(forks, type(error).__name__)\n"
        )
        # Then the classic one: every process forks forever.
        bomb = await sandbox.run_python(
            "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass"
        )
        after = await sandbox.run_python("print('alive')")
        assert len(processes_of_uid(SANDBOX_UID)) <= 2
    forks, error_name = counted.stdout.split()
    assert error_name == "BlockingIOError"
    assert 0 < int(forks) < TIGHT_LIMITS.processes
    assert bomb.timed_out and bomb.session_restarted
    assert after.stdout == "alive\n"
    # Killing the session took every forked process with it.
    assert wait_until_no_processes_of(SANDBOX_UID) == []


async def test_memory_bomb_hits_the_memory_limit() -> None:
    async with Sandbox(isolation="bubblewrap", limits=TIGHT_LIMITS) as sandbox:
        one_block = await sandbox.run_python("hog = bytearray(4 * 1024 ** 3)")
        # Touching ~500 MB takes a moment on a loaded machine; the timeout is not what is tested here.
        growing = await sandbox.run_python(
            "chunks = []\nwhile True:\n    chunks.append(bytearray(16 * 1024 * 1024))", timeout=20
        )
        usage = await sandbox.run_python("print(len(chunks) * 16 < 512)\ndel chunks\nprint('recovered')")
    assert one_block.error is not None and "MemoryError" in one_block.error
    assert growing.error is not None and "MemoryError" in growing.error
    assert not growing.timed_out
    assert usage.stdout == "True\nrecovered\n"


async def test_huge_output_is_truncated_and_does_not_flood_the_host() -> None:
    async with Sandbox(isolation="bubblewrap", limits=TIGHT_LIMITS) as sandbox:
        burst = await sandbox.run_python(
            "import sys\nsys.stdout.write('x' * 100_000_000)\nprint('\\ndone')", timeout=20
        )
        endless = await sandbox.run_python("while True:\n    print('spam ' * 200)")
    assert burst.error is None
    assert burst.truncated_chars == 100_000_006 - TIGHT_LIMITS.max_output_chars
    assert len(burst.stdout) < TIGHT_LIMITS.max_output_chars + 100
    assert burst.stdout.endswith("done\n")
    assert endless.timed_out
    assert endless.truncated_chars > 1_000_000
    assert len(endless.stdout) < TIGHT_LIMITS.max_output_chars + 100
    assert "characters were cut" in endless.to_model_text()


async def test_network_connections_fail() -> None:
    code = (
        "import socket\n"
        "print(socket.if_nameindex())\n"
        "for target in [('1.1.1.1', 53), ('10.0.0.1', 80)]:\n"
        "    try:\n"
        "        socket.create_connection(target, timeout=1)\n"
        "        print('CONNECTED', target)\n"
        "    except OSError as error:\n"
        "        print('refused', error.errno)\n"
        "try:\n"
        "    socket.getaddrinfo('example.com', 443)\n"
        "    print('RESOLVED')\n"
        "except OSError:\n"
        "    print('no dns')\n"
    )
    async with Sandbox(isolation="bubblewrap", limits=TIGHT_LIMITS) as sandbox:
        result = await sandbox.run_python(code)
    assert result.error is None, result.error
    assert result.stdout.splitlines() == ["[(1, 'lo')]", "refused 101", "refused 101", "no dns"]


async def test_host_files_are_not_readable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = tmp_path / "host-secret.txt"
    secret.write_text("the host's secret")
    monkeypatch.setenv("RETINUE_TEST_SECRET", "api-key-123")
    code = (
        "import os\n"
        f"paths = ['/etc/shadow', '/root/.bashrc', {str(secret)!r}, '/home', '/proc/1/root/etc/shadow']\n"
        "for path in paths:\n"
        "    try:\n"
        "        open(path).read()\n"
        "        print('READ', path)\n"
        "    except OSError as error:\n"
        "        print(type(error).__name__)\n"
        "try:\n"
        "    print(os.listdir('/root'))\n"
        "except PermissionError:\n"
        "    print('root hidden')\n"
        "print(sorted(os.listdir('/etc')))\n"
        "print('api-key-123' in repr(dict(os.environ)))\n"
    )
    async with Sandbox(isolation="bubblewrap", limits=TIGHT_LIMITS) as sandbox:
        result = await sandbox.run_python(code)
    assert result.error is None, result.error
    lines = result.stdout.splitlines()
    assert lines[:5] == [
        "FileNotFoundError",
        "FileNotFoundError",
        "FileNotFoundError",
        "FileNotFoundError",
        "PermissionError",
    ]
    assert lines[5] == "root hidden"
    assert "shadow" not in lines[6] and "passwd" in lines[6]
    assert lines[7] == "False"


async def test_writes_outside_the_workspace_fail_or_stay_private(tmp_path: Path) -> None:
    target = tmp_path / "host-file.txt"
    target.write_text("original")
    marker = f"retinue-{uuid.uuid4().hex}"
    code = (
        f"targets = ['/usr/evil', '/etc/passwd', '/evil', {str(target)!r}, '/proc/sys/kernel/hostname']\n"
        "for path in targets:\n"
        "    try:\n"
        "        open(path, 'a').write('pwned')\n"
        "        print('WROTE', path)\n"
        "    except OSError as error:\n"
        "        print(type(error).__name__)\n"
        f"open('/tmp/{marker}', 'w').write('private')\n"
        f"print(open('/tmp/{marker}').read())\n"
    )
    async with Sandbox(isolation="bubblewrap", limits=TIGHT_LIMITS) as sandbox:
        result = await sandbox.run_python(code)
    assert result.error is None, result.error
    lines = result.stdout.splitlines()
    assert all(line in {"OSError", "PermissionError", "FileNotFoundError"} for line in lines[:5]), lines
    assert lines[5] == "private"
    assert read_host_text(target) == "original"
    assert not host_path_exists(Path(f"/tmp/{marker}"))


async def test_killing_the_parent_or_everything_only_ends_the_session() -> None:
    host_pid = os.getpid()
    async with Sandbox(isolation="bubblewrap", limits=TIGHT_LIMITS) as sandbox:
        await sandbox.run_python("x = 1")
        parent = await sandbox.run_python(
            "import os, signal\n"
            "for pid in (os.getppid(), 1):\n"
            "    try:\n"
            "        os.kill(pid, signal.SIGKILL)\n"
            "    except OSError as error:\n"
            "        print(pid, type(error).__name__)\n"
            f"try:\n    os.kill({host_pid}, signal.SIGKILL)\n"
            "except OSError as error:\n    print('host', type(error).__name__)\n"
        )
        # kill(-1) reaches every process of the sandbox user except the caller: here the child.
        everything = await sandbox.run_python(
            "import subprocess\nchild = subprocess.Popen(['sleep', '30'])\nos.kill(-1, 9)\nprint(child.wait())"
        )
        # From a shell, the session itself is among the victims.
        shell = await sandbox.run_shell("kill -9 -1")
        after = await sandbox.run_python("print('x' in globals())")
    assert parent.error is None, parent.error
    assert parent.stdout == "1 PermissionError\n1 PermissionError\nhost ProcessLookupError\n"
    assert everything.stdout == "-9\n" and not everything.session_restarted
    assert shell.session_restarted
    assert shell.error is not None and "SIGKILL" in shell.error
    assert after.stdout == "False\n"
    assert os.getpid() == host_pid


async def test_filling_the_disk_stops_at_the_quota() -> None:
    async with Sandbox(isolation="bubblewrap", limits=TIGHT_LIMITS) as sandbox:
        assert sandbox.disk_quota_enforced_by_kernel == host_is_root()
        one_file = await sandbox.run_python("open('big.bin', 'wb').write(b'0' * (32 * 1024 * 1024))")
        many_files = await sandbox.run_python(
            "written = 0\n"
            "try:\n"
            "    for i in range(1000):\n"
            "        with open(f'fill_{i}.bin', 'wb') as f:\n"
            "            f.write(b'0' * (8 * 1024 * 1024))\n"
            "        written += 8\n"
            "except OSError as error:\n"
            "    print(written, error.strerror)\n"
        )
        tmp = await sandbox.run_python(
            "try:\n"
            "    with open('/tmp/fill', 'wb') as f:\n"
            "        for _ in range(100):\n"
            "            f.write(b'0' * (1024 * 1024))\n"
            "except OSError as error:\n"
            "    print(error.strerror)\n"
        )
        used = sum(info.size for info in sandbox.list_files())
        await sandbox.run_shell("rm -f fill_*.bin")
        recovered = await sandbox.run_python("open('small.txt', 'w').write('fits again')")
    assert one_file.error is not None and "File too large" in one_file.error
    written, reason = many_files.stdout.split(" ", 1)
    assert reason.strip() == "No space left on device"
    assert int(written) <= TIGHT_LIMITS.disk_mb
    assert used <= TIGHT_LIMITS.disk_bytes
    assert tmp.stdout.strip() in {"File too large", "No space left on device"}
    assert recovered.error is None


async def test_disk_quota_of_a_given_workspace_is_polled(tmp_path: Path) -> None:
    limits = SandboxLimits(disk_mb=8, file_size_mb=4, timeout_seconds=10.0, memory_mb=512, processes=64)
    async with Sandbox(tmp_path / "work", isolation="bubblewrap", limits=limits) as sandbox:
        assert not sandbox.disk_quota_enforced_by_kernel
        result = await sandbox.run_python(
            "import time\nfor i in range(100):\n"
            "    open(f'part_{i}.bin', 'wb').write(b'0' * (1024 * 1024))\n"
            "    time.sleep(0.02)\n"
        )
        left = sum(info.size for info in sandbox.list_files())
    assert result.session_restarted and not result.timed_out
    assert result.error is not None and "disk quota" in result.error
    assert "delete files" in result.to_model_text()
    assert left < 20 * 1024 * 1024


async def test_forged_control_messages_end_the_session_not_the_host() -> None:
    reach_control = "import json, os, sys\nfd = json.loads(sys.argv[1])['control_fd']\n"
    async with Sandbox(isolation="bubblewrap", limits=TIGHT_LIMITS, host_functions={"ping": lambda: "pong"}) as sandbox:
        garbage = await sandbox.run_python(reach_control + "os.write(fd, b'not json\\n')\nimport time\ntime.sleep(5)")
        nested = await sandbox.run_python(
            reach_control + "os.write(fd, b'[' * 200_000 + b'\\n')\nimport time\ntime.sleep(5)"
        )
        # Host-API calls travel over their own socket, never the control channel.
        forged_call = b'{"type": "call", "id": 1, "name": "ping"}\n'
        call_on_control = await sandbox.run_python(
            reach_control + f"os.write(fd, {forged_call!r})\nimport time\ntime.sleep(5)"
        )
        # On the host-API socket, a name the host does not expose is answered with an error, never run.
        unknown = await sandbox.run_python(
            "import json, socket\n"
            "client = socket.socket(socket.AF_UNIX)\n"
            "client.connect('/run/retinue/api.sock')\n"
            'client.sendall(b\'{"type": "call", "id": 7, "name": "__import__", "args": ["os"], "kwargs": {}}\\n\')\n'
            "print(json.loads(client.makefile().readline()))\n"
        )
        after = await sandbox.run_python("import host_api\nprint(host_api.ping())")
    for result in (garbage, nested, call_on_control):
        assert result.session_restarted and not result.timed_out
        assert result.error is not None and "broke the host protocol" in result.error
    assert unknown.error is None, unknown.error
    assert unknown.stdout.startswith("{'type': 'reply', 'id': 7, 'ok': False, 'error': {'type': 'AttributeError'")
    assert "has no function '__import__'; available: ping" in unknown.stdout
    assert after.stdout == "pong\n"


async def test_namespaces_and_mounts_are_refused_by_the_seccomp_filter() -> None:
    code = (
        "import ctypes, os, threading\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "CLONE_NEWUSER, CLONE_NEWNS = 0x10000000, 0x00020000\n"
        "print(libc.unshare(CLONE_NEWUSER), os.strerror(ctypes.get_errno()))\n"
        "print(libc.unshare(CLONE_NEWNS), os.strerror(ctypes.get_errno()))\n"
        "print(libc.mount(b'none', b'/tmp', b'tmpfs', 0, None), os.strerror(ctypes.get_errno()))\n"
        "results = []\n"
        "worker = threading.Thread(target=results.append, args=('threads still work',))\n"
        "worker.start(); worker.join(); print(results[0])\n"
    )
    async with Sandbox(isolation="bubblewrap", limits=TIGHT_LIMITS) as sandbox:
        result = await sandbox.run_python(code)
        shell = await sandbox.run_shell("unshare --user --map-root-user id")
    assert result.error is None, result.error
    assert result.stdout.splitlines() == [
        "-1 Operation not permitted",
        "-1 Operation not permitted",
        "-1 Operation not permitted",
        "threads still work",
    ]
    assert shell.exit_code != 0 and "Operation not permitted" in shell.stderr


async def test_memory_spread_over_many_processes_is_caught_too() -> None:
    # Each child stays under the per-process limit (RLIMIT_AS); together they are far over it.
    code = (
        "import os, time\n"
        "for _ in range(6):\n"
        "    if os.fork() == 0:\n"
        "        block = bytearray(200 * 1024 * 1024)\n"
        "        time.sleep(30)\n"
        "        os._exit(0)\n"
        "time.sleep(30)\n"
    )
    async with Sandbox(isolation="bubblewrap", limits=TIGHT_LIMITS) as sandbox:
        result = await sandbox.run_python(code, timeout=20)
        after = await sandbox.run_python("print('fresh')")
    assert result.session_restarted and not result.timed_out
    assert result.error is not None
    assert "its processes together used more than the memory limit" in result.error
    assert "512 MB allowed" in result.error
    assert result.duration_seconds < 10
    assert after.stdout == "fresh\n"
    assert wait_until_no_processes_of(SANDBOX_UID) == []


async def test_a_killed_host_takes_its_sandbox_along_and_leftovers_are_swept() -> None:
    host, workspace = await start_host_holding_a_sandbox('import subprocess; subprocess.Popen(["sleep", "60"])')
    assert processes_of_uid(SANDBOX_UID), "the sandbox should be running"
    host.kill()
    await host.wait()
    # --die-with-parent: the sandbox and what it started die with the host.
    assert wait_until_no_processes_of(SANDBOX_UID) == []
    # The dead host could not clean up; the next sandbox started anywhere sweeps its directory (and tmpfs).
    assert await start_and_close_a_sandbox_elsewhere() == 0
    assert not host_path_exists(Path(workspace).parent)
