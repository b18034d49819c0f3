"""Each sandbox has a process limit of its own: one that forks until refused leaves the others working.

Every sandbox runs as the same uid, and RLIMIT_NPROC counts the processes of
a uid: a shared budget. A pids cgroup per session gives each its own.
"""

from __future__ import annotations

import pytest

from retinue.sandbox import Sandbox, SandboxLimits

pytestmark = pytest.mark.asyncio

LIMITS = SandboxLimits(processes=24, memory_mb=256, timeout_seconds=10.0)

# Children sleep, so they hold their slot; the parent forks until the kernel refuses.
FORK_UNTIL_REFUSED = """
import os, time
forks = 0
try:
    while True:
        if os.fork() == 0:
            time.sleep(30)
            os._exit(0)
        forks += 1
except OSError as error:
    print(forks, type(error).__name__)
"""


async def test_a_sandbox_that_forks_until_refused_leaves_another_sandbox_working() -> None:
    async with Sandbox(isolation="bubblewrap", limits=LIMITS) as greedy:
        bomb = await greedy.run_python(FORK_UNTIL_REFUSED)
        async with Sandbox(isolation="bubblewrap", limits=LIMITS) as neighbour:
            printed = await neighbour.run_python("print(1)")
            forked = await neighbour.run_shell("echo from a shell")
            threads = await neighbour.run_python(
                "import threading\nworker = threading.Thread(target=print, args=('from a thread',))\n"
                "worker.start(); worker.join()"
            )
    forks, refusal = bomb.stdout.split()
    # The session itself is one of the processes the limit counts.
    assert (int(forks), refusal) == (LIMITS.processes - 1, "BlockingIOError")
    assert printed.stdout == "1\n", printed.error
    assert forked.stdout == "from a shell\n", forked.error
    assert threads.stdout == "from a thread\n", threads.error
