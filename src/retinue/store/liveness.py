"""Is the process that recorded a run still there? How a run whose process died is told from one that waits.

A run's row says "running" until its `RunFinished` is written, which never
happens when its process is killed. So every writer records who it is (an
`owners` row: pid, when the OS started that process, where the pid is
meaningful, the host) and refreshes a heartbeat while it lives; readers judge
a "running" run by its owner:

- on the same Linux machine and pid namespace, the OS answers for certain: the
  owner is gone when no process has its pid any more, or the process that has
  it started at another time (the pid was reused), or is a zombie;
- anywhere else (another machine or container sharing the file, systems
  without /proc), the owner is gone when its heartbeat has stopped.
"""

from __future__ import annotations

import functools
import os
import socket
from dataclasses import dataclass

HEARTBEAT_SECONDS = 15.0
"""How often a live writer refreshes its heartbeat (one small UPDATE)."""

HEARTBEAT_STALE_SECONDS = 90.0
"""A heartbeat older than this means its owner is gone, where the OS cannot be asked. Generous, because a
writer waiting on another connection's lock cannot refresh it either."""


@dataclass(frozen=True, slots=True)
class ProcessIdentity:
    """A process, precisely enough to tell it from a later one that got the same pid."""

    pid: int
    started: str | None
    """When the OS started it (on Linux, clock ticks after boot); None where that cannot be read."""
    pid_space: str | None
    """The boot and pid namespace its pid belongs to (Linux); None elsewhere."""
    host: str


def current_process() -> ProcessIdentity:
    pid = os.getpid()
    return ProcessIdentity(pid, _process_start(pid), _pid_space(), socket.gethostname())


def owner_is_gone(owner: ProcessIdentity, *, heartbeat_at: float, stopped_at: float | None, now: float) -> bool:
    """Whether the writer described by an `owners` row will never write again."""
    if stopped_at is not None:
        return True  # its store was closed
    here_space = _pid_space()
    if owner.pid_space is not None and owner.pid_space == here_space:
        return _process_start(owner.pid) != owner.started
    same_host_without_proc = owner.pid_space is None and here_space is None and owner.host == socket.gethostname()
    if same_host_without_proc and not _pid_exists(owner.pid):
        return True
    return now - heartbeat_at > HEARTBEAT_STALE_SECONDS


def _process_start(pid: int) -> str | None:
    """The start time of a live process, from /proc; None when there is no such process (or no /proc)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as file:
            stat = file.read()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses; the fields after its last ")" do not.
    fields = stat[stat.rfind(")") + 2 :].split()
    if len(fields) < 20 or fields[0] in ("Z", "X"):
        return None  # killed, and only waiting for its parent to collect the exit status
    return fields[19]


@functools.cache
def _pid_space() -> str | None:
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as file:
            boot_id = file.read().strip()
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        return None
    return f"{boot_id} {namespace}"


def _pid_exists(pid: int) -> bool:
    if os.name == "nt":
        return True  # os.kill would terminate it there; the heartbeat decides
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    return True
