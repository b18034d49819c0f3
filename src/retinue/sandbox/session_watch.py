"""The host's watch over all the processes of one session: memory, CPU time, and processes that outlive their run.

Rlimits bound each process alone, and a process started in the background
runs on after the run that started it: without a watch over all of them
together, forking multiplies every limit and a forgotten process keeps
running forever. With cgroups (see cgroups) the kernel enforces memory and
counts CPU time and members; the host only notices and names what happened.
Without, the host measures the process tree in /proc (see memory_guard).
"""

from __future__ import annotations

import time

from .cgroups import SessionCgroup
from .limits import SandboxLimits
from .memory_guard import can_measure, process_tree, tree_cpu_seconds, tree_memory_bytes


class SessionWatch:
    """Why a session must be stopped, asked for again and again while it runs; ``begin`` once it is ready."""

    def __init__(self, limits: SandboxLimits, cgroup: SessionCgroup | None, root_pid: int) -> None:
        self._limits = limits
        self._cgroup = cgroup
        self._root_pid = root_pid
        self._measure_tree = can_measure()
        # The session itself and the processes that wrap it: not background processes.
        self._baseline: set[int] = set()
        self._background_deadlines: dict[int, float] = {}

    @property
    def memory_enforced_by_cgroup(self) -> bool:
        return self._cgroup is not None and self._cgroup.memory is not None

    def begin(self) -> None:
        """Take the processes running now, before any code, as the session's own."""
        self._baseline = set(self._members())

    def _members(self) -> list[int]:
        if self._cgroup is not None:
            return self._cgroup.members()
        return process_tree(self._root_pid) if self._measure_tree else []

    def memory_reason(self) -> str | None:
        """Why, if the kernel killed a process of the session for the memory it used; cheap, never blocks long."""
        if self._cgroup is None or not self.memory_enforced_by_cgroup or self._cgroup.oom_kills() == 0:
            return None
        return (
            f"its processes together used more than the memory limit ({self._limits.memory_mb} MB allowed, "
            f"files kept in memory included; enforced by the kernel's {self._cgroup.host.name} memory controller)"
        )

    def check(self, *, idle: bool) -> str | None:
        """Why the session must stop now, or None; blocking (it reads /proc or the cgroup files).

        ``idle`` says no run is in progress: processes alive then were left
        behind by a run, and get ``background_seconds`` from now.
        """
        reason = self.memory_reason()
        if reason is not None:
            return reason
        if not self.memory_enforced_by_cgroup and self._measure_tree:
            used = tree_memory_bytes(self._root_pid)
            if used > self._limits.memory_bytes:
                return (
                    f"its processes together used more than the memory limit ({used / 2**20:.0f} MB, "
                    f"{self._limits.memory_mb} MB allowed; measured by the host)"
                )
        cpu = self._cpu_seconds()
        if cpu is not None and cpu > self._limits.cpu_seconds:
            return (
                f"its processes together used up the CPU time limit "
                f"({cpu:.1f} s, {self._limits.cpu_seconds} s of CPU allowed in all)"
            )
        return self._background_reason(idle)

    def _cpu_seconds(self) -> float | None:
        counted = None if self._cgroup is None else self._cgroup.cpu_seconds()
        if counted is not None:
            return counted
        return tree_cpu_seconds(self._root_pid) if self._measure_tree else None

    def _background_reason(self, idle: bool) -> str | None:
        now = time.monotonic()
        alive = set(self._members()) - self._baseline
        self._background_deadlines = {
            pid: deadline for pid, deadline in self._background_deadlines.items() if pid in alive
        }
        if idle:
            for pid in alive:
                self._background_deadlines.setdefault(pid, now + self._limits.background_seconds)
        if any(deadline <= now for deadline in self._background_deadlines.values()):
            return (
                f"a process it left running was still running {self._limits.background_seconds:g} s after "
                "the run that started it ended (the limit for background processes)"
            )
        return None
