"""Control groups that bound one session's processes together: memory, process count, CPU time.

Per-process rlimits let a script multiply them by forking, and memory held
outside every address space (a memfd, files in a tmpfs, SysV shared memory)
escapes both RLIMIT_AS and any watch of the processes' own memory. A memory
cgroup charges all of it, the kernel's memory for inodes included, and a
pids cgroup counts this sandbox's processes alone, where RLIMIT_NPROC counts
every process of the uid that all sandboxes share.

The host creates the groups of a session and moves the session into them
while its interpreter starts up, and before it sends the first request:
everything the code starts is inside. (Moving a process into a cgroup v1
group waits for an RCU grace period, milliseconds; done by the session it
would add them to every start.)

What the host offers is found once per process, by creating a probe group:
cgroup v2 where this process's cgroup, or its parent, is a delegated subtree
(writable, with memory and pids in ``cgroup.subtree_control``); else cgroup
v1 where the memory and pids hierarchies are writable at this process's
place in them (root usually can). Groups are named after the owning process,
so the first probe also removes those of dead hosts.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import re
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from .errors import SandboxStartError
from .limits import SandboxLimits
from .state_dirs import owned_name, owner_is_dead

# v1's accounting-only CPU controller; v2 reports CPU time in every group, no controller needed.
_V1_CONTROLLERS = ("memory", "pids", "cpuacct")
_V2_CONTROLLERS = {"memory", "pids"}
_REMOVE_ATTEMPTS = 50
_REMOVE_PAUSE_SECONDS = 0.01


@dataclass(frozen=True)
class CgroupHost:
    """Where this process can create cgroups: a parent directory per controller, None where it cannot."""

    version: int
    memory: Path | None
    pids: Path | None
    cpu: Path | None

    @property
    def name(self) -> str:
        return f"cgroup v{self.version}"


@dataclass(frozen=True)
class CgroupMount:
    """A line of /proc/self/mountinfo: where a filesystem is mounted, from which of its directories, of what type."""

    point: Path
    root: str
    fstype: str
    options: frozenset[str]


_OCTAL_ESCAPE = re.compile(r"\\([0-7]{3})")


def _unescape(field: str) -> str:
    # mountinfo writes spaces, tabs, newlines and backslashes in paths as octal escapes.
    return _OCTAL_ESCAPE.sub(lambda match: chr(int(match.group(1), 8)), field)


def _mounts() -> list[CgroupMount]:
    mounts = []
    with open("/proc/self/mountinfo") as table:
        for line in table:
            before, _, after = line.partition(" - ")
            fields, tail = before.split(), after.split()
            if len(fields) < 5 or len(tail) < 3:
                continue
            options = frozenset(tail[2].split(","))
            mounts.append(CgroupMount(Path(_unescape(fields[4])), _unescape(fields[3]), tail[0], options))
    return mounts


def _own_cgroups() -> dict[str, str]:
    """This process's cgroup path per v1 controller, and under "" its v2 path."""
    paths: dict[str, str] = {}
    with open("/proc/self/cgroup") as listing:
        for line in listing:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            for controller in controllers.split(",") if controllers else [""]:
                paths[controller] = path
    return paths


def _place(mount: CgroupMount, path: str) -> Path | None:
    """Where cgroup ``path`` lies under ``mount``, or None when the mount does not show it."""
    root = mount.root.rstrip("/")
    if path != root and not path.startswith(f"{root}/"):
        return None
    return mount.point / path[len(root) :].lstrip("/")


def _can_create_in(parent: Path) -> bool:
    probe = parent / f"{owned_name('probe')}{time.monotonic_ns()}"
    try:
        probe.mkdir()
    except OSError:
        return False
    _remove_group(probe)
    _remove_leftovers(parent)
    return True


def delegated_cgroup2(mounts: list[CgroupMount], own: dict[str, str]) -> CgroupHost | None:
    """This process's cgroup v2 group, or its parent, if delegated to it with memory and pids enabled."""
    if "" not in own:
        return None
    for mount in mounts:
        if mount.fstype != "cgroup2":
            continue
        place = _place(mount, own[""])
        if place is None:
            continue
        for candidate in (place, place.parent):
            if not candidate.is_relative_to(mount.point):
                break
            try:
                enabled = set((candidate / "cgroup.subtree_control").read_text().split())
            except OSError:
                continue
            # Moving the session into a child needs write access to the common ancestor's cgroup.procs.
            movable = os.access(candidate / "cgroup.procs", os.W_OK)
            if enabled >= _V2_CONTROLLERS and movable and _can_create_in(candidate):
                return CgroupHost(2, memory=candidate, pids=candidate, cpu=candidate)
    return None


def _writable_v1(mounts: list[CgroupMount], own: dict[str, str]) -> CgroupHost | None:
    parents: dict[str, Path] = {}
    for controller in _V1_CONTROLLERS:
        if controller not in own:
            continue
        for mount in mounts:
            if mount.fstype != "cgroup" or controller not in mount.options:
                continue
            place = _place(mount, own[controller])
            if place is not None and _can_create_in(place):
                parents[controller] = place
            break
    if "memory" not in parents and "pids" not in parents:
        return None
    return CgroupHost(1, memory=parents.get("memory"), pids=parents.get("pids"), cpu=parents.get("cpuacct"))


@functools.cache
def host_cgroups() -> CgroupHost | None:
    """What this host lets this process do with cgroups; None when nothing (then rlimits and seccomp bound alone)."""
    try:
        mounts, own = _mounts(), _own_cgroups()
    except (OSError, ValueError):
        return None
    return delegated_cgroup2(mounts, own) or _writable_v1(mounts, own)


def _kill_members(group: Path) -> None:
    kill_file = group / "cgroup.kill"
    if kill_file.exists():
        with contextlib.suppress(OSError):
            kill_file.write_text("1")
        return
    try:
        pids = [int(pid) for pid in (group / "cgroup.procs").read_text().split()]
    except (OSError, ValueError):
        return
    for pid in pids:
        # Through a pidfd, checked against the group once held: a pid that
        # exited and was reused by an unrelated process is never signalled.
        try:
            pidfd = os.pidfd_open(pid)
        except OSError:
            continue
        try:
            if str(pid) in (group / "cgroup.procs").read_text().split():
                signal.pidfd_send_signal(pidfd, signal.SIGKILL)
        except OSError:
            pass
        finally:
            os.close(pidfd)


def _remove_group(group: Path) -> bool:
    """Kill what is left in ``group`` and remove it; False if it is still busy after a short wait."""
    for _ in range(_REMOVE_ATTEMPTS):
        try:
            group.rmdir()
            return True
        except FileNotFoundError:
            return True
        except OSError as exc:
            if exc.errno != errno.EBUSY:
                return False
        _kill_members(group)
        # Killed processes leave the group once the kernel has finished their exit.
        time.sleep(_REMOVE_PAUSE_SECONDS)
    return False


def _remove_leftovers(parent: Path) -> None:
    try:
        entries = list(parent.iterdir())
    except OSError:
        return
    for entry in entries:
        if entry.is_dir() and owner_is_dead(entry.name):
            _remove_group(entry)


class SessionCgroup:
    """The cgroups of one session process: one directory in v2, one per controller hierarchy in v1."""

    def __init__(self, host: CgroupHost, limits: SandboxLimits) -> None:
        self.host = host
        name = f"{owned_name('session')}{time.monotonic_ns()}"
        self.memory = None if host.memory is None else host.memory / name
        self.pids = None if host.pids is None else host.pids / name
        self.cpu = None if host.cpu is None else host.cpu / name
        self._groups = list(dict.fromkeys(group for group in (self.memory, self.pids, self.cpu) if group is not None))
        try:
            for group in self._groups:
                group.mkdir()
            self._apply(limits)
        except OSError as exc:
            self.remove()
            raise SandboxStartError(
                f"could not set up the sandbox's {host.name} groups under {', '.join(map(str, self._groups))}: {exc}"
            ) from exc

    def _apply(self, limits: SandboxLimits) -> None:
        if self.memory is not None:
            if self.host.version == 2:
                (self.memory / "memory.max").write_text(str(limits.memory_bytes))
                swap = self.memory / "memory.swap.max"
            else:
                (self.memory / "memory.limit_in_bytes").write_text(str(limits.memory_bytes))
                # Memory and swap together; without it pages swapped out would not count.
                swap = self.memory / "memory.memsw.limit_in_bytes"
            if swap.exists():
                swap.write_text("0" if self.host.version == 2 else str(limits.memory_bytes))
        if self.pids is not None:
            (self.pids / "pids.max").write_text(str(limits.processes))

    def enter(self, pid: int) -> None:
        """Move process ``pid`` into every group; what it starts afterwards is born inside."""
        for group in self._groups:
            (group / "cgroup.procs").write_text(str(pid))

    def oom_kills(self) -> int:
        """How many processes the kernel killed in this group for going over the memory limit."""
        if self.memory is None:
            return 0
        name = "memory.events" if self.host.version == 2 else "memory.oom_control"
        try:
            with open(self.memory / name) as counters:
                for line in counters:
                    key, _, value = line.partition(" ")
                    if key == "oom_kill":
                        return int(value)
        except (OSError, ValueError):
            pass
        return 0

    def cpu_seconds(self) -> float | None:
        """CPU time used by every process that was ever in the group; None where it is not accounted."""
        if self.cpu is None:
            return None
        try:
            if self.host.version == 1:
                return int((self.cpu / "cpuacct.usage").read_text()) / 1e9
            with open(self.cpu / "cpu.stat") as counters:
                for line in counters:
                    key, _, value = line.partition(" ")
                    if key == "usage_usec":
                        return int(value) / 1e6
        except (OSError, ValueError):
            pass
        return None

    def members(self) -> list[int]:
        """Host pids of the processes in the group (the pids group, which every sandboxed process joins)."""
        try:
            return [int(pid) for pid in (self._groups[0] / "cgroup.procs").read_text().split()]
        except (OSError, ValueError):
            return []

    def remove(self) -> bool:
        """Kill what is left and remove every group; blocking (up to half a second), False if one stays."""
        removed = [_remove_group(group) for group in self._groups]
        return all(removed)
