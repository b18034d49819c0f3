"""Which mechanism holds each limit of a running sandbox: a kernel one the code cannot avoid, or a fallback.

The routes differ from host to host (a cgroup where one is writable, rlimits
and seccomp where not), so callers and the model are told which applies.
"""

from __future__ import annotations

from dataclasses import dataclass

from .cgroups import CgroupHost


@dataclass(frozen=True)
class LimitEnforcement:
    """One line per limit, naming what enforces it."""

    memory: str
    processes: str
    cpu: str
    disk: str

    @classmethod
    def decide(cls, cgroup_host: CgroupHost | None, *, disk_by_kernel: bool, sandbox_uid: int) -> LimitEnforcement:
        memory_group = cgroup_host is not None and cgroup_host.memory is not None
        pids_group = cgroup_host is not None and cgroup_host.pids is not None
        cpu_group = cgroup_host is not None and cgroup_host.cpu is not None
        name = "" if cgroup_host is None else cgroup_host.name
        return cls(
            memory=(
                f"the kernel's {name} memory controller, for all the sandbox's memory together "
                "(memfds and files in its tmpfs mounts included), and RLIMIT_AS per process"
                if memory_group
                else "RLIMIT_AS per process and the host's watch over all the processes' memory; "
                "memfd_create and SysV shared memory are refused, and files in memory count against the disk quota"
            ),
            processes=(
                f"the kernel's {name} pids controller, for this sandbox alone"
                if pids_group
                else f"RLIMIT_NPROC of uid {sandbox_uid}, shared by every sandbox running as that uid"
            ),
            cpu=(
                f"RLIMIT_CPU per process, and the {name} CPU accounting of all processes together"
                if cpu_group
                else "RLIMIT_CPU per process, and the host's measure of all processes together from /proc"
            ),
            disk=(
                "the kernel: the workspace is a size- and inode-limited tmpfs"
                if disk_by_kernel
                else "the host, polling the workspace's bytes and entries while the session lives"
            ),
        )

    def describe(self) -> str:
        return f"memory by {self.memory}; processes by {self.processes}; CPU by {self.cpu}; disk by {self.disk}"
