"""Kernel resources no per-process rlimit bounds: inodes, CPU time of many processes, time left running, sockets.

Each has a bound of its own, and reaching one is explained to the model.
"""

from __future__ import annotations

import asyncio
import errno
from pathlib import Path

import pytest

from retinue.sandbox import Sandbox, SandboxLimits

pytestmark = pytest.mark.asyncio

CREATE_EMPTY_FILES = """
import os
os.makedirs('{directory}', exist_ok=True)
created = 0
try:
    for created in range(100_000):
        open(f'{directory}/{{created}}', 'w').close()
except OSError as error:
    print(created, error.errno)
"""


async def test_empty_files_stop_at_the_file_limit_in_every_tmpfs() -> None:
    limits = SandboxLimits(disk_files=300, memory_mb=256, timeout_seconds=10.0)
    async with Sandbox(isolation="bubblewrap", limits=limits) as sandbox:
        assert sandbox.disk_quota_enforced_by_kernel
        places = {}
        for directory in ("/workspace/many", "/tmp/many", "/dev/shm/many"):
            result = await sandbox.run_python(CREATE_EMPTY_FILES.format(directory=directory))
            places[directory] = result.stdout.split()
            await sandbox.run_shell(f"rm -rf {directory}")
        after = await sandbox.run_python("open('/workspace/one-more', 'w').close()\nprint('room again')")
    for directory, (created, error_number) in places.items():
        # The mount's root, the directory and the session's own files take a few inodes.
        assert 250 < int(created) < 300, directory
        assert int(error_number) == errno.ENOSPC, directory
    assert after.stdout == "room again\n"


async def test_a_polled_workspace_counts_files_not_only_bytes(tmp_path: Path) -> None:
    limits = SandboxLimits(disk_files=200, memory_mb=256, timeout_seconds=10.0)
    async with Sandbox(tmp_path / "work", isolation="bubblewrap", limits=limits) as sandbox:
        assert not sandbox.disk_quota_enforced_by_kernel
        result = await sandbox.run_python(
            "import os, time\nos.mkdir('empty')\nfor i in range(2000):\n"
            "    open(f'empty/{i}', 'w').close()\n    time.sleep(0.001)\n"
        )
    assert result.session_restarted and not result.timed_out
    assert result.error is not None and "limit of files" in result.error
    assert "200 allowed" in result.to_model_text()


async def test_a_polled_workspace_is_watched_between_runs_too(tmp_path: Path) -> None:
    limits = SandboxLimits(disk_mb=8, file_size_mb=4, memory_mb=256, timeout_seconds=10.0)
    # Started in the background, it writes 1 MB every 20 ms after the run has returned.
    writer = (
        "import time\nfor i in range(100):\n    open(f'part_{i}', 'wb').write(bytes(2**20))\n    time.sleep(0.02)\n"
    )
    async with Sandbox(tmp_path / "work", isolation="bubblewrap", limits=limits) as sandbox:
        sandbox.write_file("writer.py", writer)
        started = await sandbox.run_python("import subprocess, sys\nsubprocess.Popen([sys.executable, 'writer.py'])")
        await asyncio.sleep(1.5)
        later = await sandbox.run_python("print('next run')")
        left = sum(info.size for info in sandbox.list_files())
    assert started.error is None and not started.session_restarted
    assert later.session_restarted and later.stdout == "next run\n"
    assert later.restart_reason is not None and "disk quota" in later.restart_reason
    assert left < 20 * 2**20


async def test_other_socket_families_are_refused_and_the_usual_ones_work() -> None:
    code = (
        "import socket\n"
        "cases = [\n"
        "    ('vsock', socket.AF_VSOCK, socket.SOCK_STREAM, 0),\n"
        "    ('netlink uevent', socket.AF_NETLINK, socket.SOCK_DGRAM, 15),\n"
        "    ('netlink audit', socket.AF_NETLINK, socket.SOCK_RAW, 9),\n"
        "    ('netlink sock_diag', socket.AF_NETLINK, socket.SOCK_DGRAM, 4),\n"
        "    ('packet', socket.AF_PACKET, socket.SOCK_DGRAM, 0),\n"
        "    ('alg', socket.AF_ALG, socket.SOCK_SEQPACKET, 0),\n"
        "    ('unix', socket.AF_UNIX, socket.SOCK_STREAM, 0),\n"
        "    ('inet', socket.AF_INET, socket.SOCK_STREAM, 0),\n"
        "    ('inet6', socket.AF_INET6, socket.SOCK_DGRAM, 0),\n"
        "    ('netlink route', socket.AF_NETLINK, socket.SOCK_DGRAM, 0),\n"
        "]\n"
        "for name, family, kind, protocol in cases:\n"
        "    try:\n"
        "        socket.socket(family, kind, protocol).close()\n"
        "        print(name, 'opened')\n"
        "    except OSError as error:\n"
        "        print(name, error.strerror)\n"
        "print(socket.if_nameindex())\n"
    )
    async with Sandbox(isolation="bubblewrap", limits=SandboxLimits(memory_mb=256)) as sandbox:
        result = await sandbox.run_python(code)
    refused = "Address family not supported by protocol"
    assert result.stdout.splitlines() == [
        f"vsock {refused}",
        f"netlink uevent {refused}",
        f"netlink audit {refused}",
        f"netlink sock_diag {refused}",
        f"packet {refused}",
        f"alg {refused}",
        "unix opened",
        "inet opened",
        "inet6 opened",
        "netlink route opened",
        "[(1, 'lo')]",
    ], result.error


async def test_processes_together_cannot_use_more_cpu_than_one_may() -> None:
    # Each child stays under the per-process CPU limit; together they pass it.
    limits = SandboxLimits(cpu_seconds=2, memory_mb=256, timeout_seconds=20.0)
    code = (
        "import os, time\n"
        "children = []\n"
        "for _ in range(3):\n"
        "    pid = os.fork()\n"
        "    if pid == 0:\n"
        "        end = time.process_time() + 1.5\n"
        "        while time.process_time() < end:\n"
        "            pass\n"
        "        os._exit(0)\n"
        "    children.append(pid)\n"
        "for pid in children:\n"
        "    os.waitpid(pid, 0)\n"
        "print('all finished')\n"
    )
    async with Sandbox(isolation="bubblewrap", limits=limits) as sandbox:
        result = await sandbox.run_python(code)
        after = await sandbox.run_python("print('fresh')")
    assert result.session_restarted and not result.timed_out
    assert result.stdout == ""
    assert result.error is not None and "its processes together used up the CPU time limit" in result.error
    assert "2 s of CPU allowed in all" in result.error
    assert after.stdout == "fresh\n"


async def test_a_process_left_running_after_its_run_is_stopped_after_background_seconds() -> None:
    limits = SandboxLimits(background_seconds=0.5, memory_mb=256, timeout_seconds=10.0)
    async with Sandbox(isolation="bubblewrap", limits=limits) as sandbox:
        await sandbox.run_python("state = 'kept while nothing lingers'")
        # A child that runs past the background limit but within its run is the run's business.
        within_run = await sandbox.run_python("import subprocess\nsubprocess.run(['sleep', '0.8'])\nprint('waited')")
        short = await sandbox.run_shell("sleep 0.2 &")
        await asyncio.sleep(1)
        kept = await sandbox.run_python("print(state)")
        await sandbox.run_python("import subprocess\nforgotten = subprocess.Popen(['sleep', '60'])")
        await asyncio.sleep(1.6)
        after = await sandbox.run_python("print('state' in globals())")
    assert within_run.stdout == "waited\n" and not within_run.session_restarted
    assert short.error is None
    assert kept.stdout == "kept while nothing lingers\n" and not kept.session_restarted
    assert after.session_restarted and after.stdout == "False\n"
    assert after.restart_reason is not None
    assert "was still running 0.5 s after the run that started it ended" in after.restart_reason


@pytest.mark.parametrize(
    ("setting", "value"),
    [("disk_files", 0), ("disk_files", 2.5), ("background_seconds", 0), ("background_seconds", float("nan"))],
)
async def test_the_new_bounds_refuse_values_that_bound_nothing(setting: str, value: float) -> None:
    with pytest.raises(ValueError, match=f"SandboxLimits.{setting} must be"):
        SandboxLimits(**{setting: value})  # type: ignore[arg-type]
