"""The memory limit holds for every way code can hold memory, and the sandbox says what enforces it.

With a memory cgroup (this host: root, cgroup v1) the kernel charges the
whole sandbox: anonymous memory of all its processes, memfds, files in /tmp
and /dev/shm. Each of those routes, taken alone, goes past 128 MB here.
Without a writable cgroup the seccomp filter refuses the ways to hold memory
that no quota counts.
"""

from __future__ import annotations

import pytest
from sandbox_helpers import without_cgroups

from retinue.sandbox import Sandbox, SandboxLimits

pytestmark = pytest.mark.asyncio

# Room on disk (the tmpfs mounts) for twice the memory: only the memory limit can stop these.
LIMITS = SandboxLimits(memory_mb=128, disk_mb=512, file_size_mb=64, processes=16, timeout_seconds=15.0)
MB = 1024 * 1024

ANONYMOUS_IN_FOUR_PROCESSES = """
import os, time
for _ in range(4):
    if os.fork() == 0:
        block = bytearray(48 * 1024 * 1024)  # touched: bytearray zero-fills
        time.sleep(30)
        os._exit(0)
time.sleep(30)
"""
FOUR_MEMFDS = """
held = []
for _ in range(4):
    fd = os.memfd_create('hidden')
    for _ in range(48):
        os.write(fd, bytes(1024 * 1024))
    held.append(fd)
print('held', len(held) * 48, 'MB')
"""
FILES_IN = """
for index in range(4):
    with open(f'{directory}/block-{{index}}', 'wb') as block:
        for _ in range(48):
            block.write(bytes(1024 * 1024))
print('wrote 192 MB')
"""


def killed_for_memory_by_the_kernel(result_error: str | None) -> bool:
    return result_error is not None and (
        "its processes together used more than the memory limit (128 MB allowed" in result_error
        and "enforced by the kernel's cgroup" in result_error
    )


@pytest.mark.parametrize(
    "code",
    [
        pytest.param(ANONYMOUS_IN_FOUR_PROCESSES, id="anonymous memory of four processes"),
        pytest.param("import os\n" + FOUR_MEMFDS, id="memfds"),
        pytest.param(FILES_IN.format(directory="/tmp"), id="files in /tmp"),
        pytest.param(FILES_IN.format(directory="/dev/shm"), id="files in /dev/shm"),
    ],
)
async def test_each_way_of_holding_memory_is_stopped_by_the_kernel_at_the_limit(code: str) -> None:
    async with Sandbox(isolation="bubblewrap", limits=LIMITS) as sandbox:
        within = await sandbox.run_python(
            "import os\nfd = os.memfd_create('small')\nos.write(fd, bytes(32 * 1024 * 1024))\n"
            "open('/dev/shm/small', 'wb').write(bytes(32 * 1024 * 1024))\nprint('fine')"
        )
        result = await sandbox.run_python(code)
        after = await sandbox.run_python("print('fresh')")
    assert within.stdout == "fine\n" and not within.session_restarted, within.error
    assert not result.timed_out and result.session_restarted
    assert "192 MB" not in result.stdout
    assert killed_for_memory_by_the_kernel(result.error), result.error
    assert "enforced by the kernel's cgroup" in result.to_model_text()
    assert after.stdout == "fresh\n"


async def test_without_a_cgroup_memory_no_quota_counts_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    without_cgroups(monkeypatch)
    code = (
        "import ctypes, os\n"
        "try:\n    os.memfd_create('hidden')\nexcept OSError as error:\n    print('memfd', error.strerror)\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "IPC_PRIVATE, IPC_CREAT = 0, 0o1000\n"
        "print('shmget', libc.shmget(IPC_PRIVATE, 64 * 1024 * 1024, IPC_CREAT | 0o600), "
        "os.strerror(ctypes.get_errno()))\n"
    )
    async with Sandbox(isolation="bubblewrap", limits=LIMITS) as sandbox:
        result = await sandbox.run_python(code)
        enforcement = sandbox.limit_enforcement
    assert result.stdout.splitlines() == ["memfd Operation not permitted", "shmget -1 Operation not permitted"]
    assert "memfd_create and SysV shared memory are refused" in enforcement.memory
    assert "RLIMIT_NPROC" in enforcement.processes
