"""The sandbox's processes as /proc shows them: the tree, their memory and CPU time together.

For hosts that offer no cgroup (see cgroups). RLIMIT_AS bounds each
process, but a script may fork up to the process limit and fill each child
to that bound, so the host watches the sum instead: the proportional set
size of every process under the sandbox's root process, so pages shared by
forked children are counted once, not once per child. Memory outside every
address space is invisible here; the seccomp filter refuses the ways to
hold it that no quota bounds (memfd, SysV shared memory).
"""

from __future__ import annotations

import os

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def process_tree(root_pid: int) -> list[int]:
    """``root_pid`` and all its descendants that are still alive."""
    found = [root_pid]
    index = 0
    while index < len(found):
        pid = found[index]
        index += 1
        try:
            threads = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for thread in threads:
            try:
                with open(f"/proc/{pid}/task/{thread}/children") as children:
                    found.extend(int(child) for child in children.read().split())
            except OSError:
                continue
    return found


def _proportional_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as rollup:
            for line in rollup:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


def tree_memory_bytes(root_pid: int) -> int:
    """Memory in use by ``root_pid`` and its descendants (sum of PSS)."""
    return sum(_proportional_bytes(pid) for pid in process_tree(root_pid))


def _cpu_seconds(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rpartition(")")[2].split()
    except OSError:
        return 0.0
    # utime, stime, and the same for children it has reaped (fields 14 to 17, counted from the pid).
    try:
        return sum(int(value) for value in fields[11:15]) / _CLOCK_TICKS
    except (ValueError, IndexError):
        return 0.0


def tree_cpu_seconds(root_pid: int) -> float:
    """CPU time of ``root_pid``, its live descendants, and the children they have reaped."""
    return sum(_cpu_seconds(pid) for pid in process_tree(root_pid))


def can_measure() -> bool:
    return os.path.exists(f"/proc/{os.getpid()}/smaps_rollup") and os.path.exists(
        f"/proc/{os.getpid()}/task/{os.getpid()}/children"
    )
