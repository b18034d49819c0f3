"""Shared settings for the sandbox tests: tight limits, so bad code stays cheap on a shared machine."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

import pytest

from retinue.sandbox import SandboxLimits

TIGHT_LIMITS = SandboxLimits(
    cpu_seconds=10,
    memory_mb=512,
    file_size_mb=16,
    open_files=64,
    processes=64,
    disk_mb=64,
    timeout_seconds=2.0,
    max_output_chars=2_000,
)

SANDBOX_UID = 65534


def processes_of_uid(uid: int) -> list[int]:
    """Host pids whose real uid is ``uid``."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("Uid:") and int(line.split()[1]) == uid:
                pids.append(int(entry.name))
    return pids


def wait_until_no_processes_of(uid: int, timeout: float = 3.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while (left := processes_of_uid(uid)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


def host_is_root() -> bool:
    return os.geteuid() == 0


def read_host_text(path: Path) -> str:
    return path.read_text(errors="replace")


def host_path_exists(path: Path) -> bool:
    return os.path.lexists(path)


def without_cgroups(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make sandboxes started in this test behave as on a host that offers no writable cgroup."""
    from retinue.sandbox import sandbox as sandbox_module

    monkeypatch.setattr(sandbox_module, "host_cgroups", lambda: None)


def own_session_cgroups() -> list[Path]:
    """The session cgroups this test process has now, in every hierarchy that holds them."""
    from retinue.sandbox.cgroups import host_cgroups
    from retinue.sandbox.state_dirs import owned_name

    host = host_cgroups()
    assert host is not None, "these tests need a host that offers cgroups"
    parents = {parent for parent in (host.memory, host.pids, host.cpu) if parent is not None}
    prefix = owned_name("session")
    return sorted(group for parent in parents for group in parent.iterdir() if group.name.startswith(prefix))


# Child processes must import this checkout's retinue, whatever the working directory.
_ENV_WITH_RETINUE = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2] / "src")}


async def start_host_holding_a_sandbox(code_in_the_sandbox: str = "") -> tuple[asyncio.subprocess.Process, str]:
    """A separate host process that starts a sandbox, runs `code_in_the_sandbox` in it and then waits.

    Returns the process, once its sandbox is up, and the sandbox's workspace: a test kills the
    process to see what a host that dies without cleaning up leaves behind.
    """
    host_script = (
        "import asyncio\n"
        "from retinue.sandbox import Sandbox\n"
        "async def main():\n"
        "    sandbox = Sandbox(isolation='bubblewrap')\n"
        "    await sandbox.start()\n"
        f"    await sandbox.run_python({code_in_the_sandbox!r})\n"
        "    print(sandbox.workspace, flush=True)\n"
        "    await asyncio.sleep(60)\n"
        "asyncio.run(main())\n"
    )
    host = await asyncio.create_subprocess_exec(
        sys.executable, "-c", host_script, stdout=asyncio.subprocess.PIPE, env=_ENV_WITH_RETINUE
    )
    assert host.stdout is not None
    workspace = (await asyncio.wait_for(host.stdout.readline(), 30)).decode().strip()
    return host, workspace


async def start_and_close_a_sandbox_elsewhere() -> int:
    """Start and close one sandbox in a fresh host process (which sweeps what dead hosts left); its exit status."""
    sweeper = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "import asyncio\nfrom retinue.sandbox import Sandbox\n"
        "async def main():\n    async with Sandbox(isolation='bubblewrap'): pass\nasyncio.run(main())",
        env=_ENV_WITH_RETINUE,
    )
    return await sweeper.wait()
