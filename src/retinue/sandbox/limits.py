"""Resource limits of a sandbox, and how they map onto kernel rlimits."""

from __future__ import annotations

import resource
from dataclasses import dataclass

_MIB = 1024 * 1024


@dataclass(frozen=True)
class SandboxLimits:
    """Ceilings applied to everything that runs in one sandbox.

    ``file_size_mb`` and ``open_files`` are per-process kernel rlimits.
    ``cpu_seconds`` bounds each process (RLIMIT_CPU) and all the processes
    of a session together (measured by the host); the persistent interpreter
    is one process, so its CPU time adds up across runs, and reaching either
    bound restarts the session. ``memory_mb`` bounds each process's address
    space (RLIMIT_AS: an allocation beyond it raises MemoryError) and the
    memory all the sandbox's processes hold together, files in its tmpfs
    mounts and memfds included, where the host offers a memory cgroup (else
    the host measures the processes, and memfd_create and SysV shared memory
    are refused); beyond it the session is restarted. ``processes`` caps the
    processes and threads of this sandbox (a pids cgroup; without one,
    RLIMIT_NPROC of the sandbox user, which every sandbox shares).
    ``disk_mb`` caps the workspace (and, separately, /tmp and /dev/shm
    together), ``disk_files`` the files and directories in each.
    ``background_seconds`` is how long a process may keep running after the
    run that left it behind ended; past it the session is restarted.
    ``timeout_seconds`` is the default wall-clock limit of one run.
    ``max_output_chars`` caps each of stdout, stderr and the error text kept
    for the result; the middle of longer output is cut.
    """

    cpu_seconds: int = 60
    memory_mb: int = 1024
    file_size_mb: int = 64
    open_files: int = 256
    processes: int = 64
    disk_mb: int = 256
    disk_files: int = 20_000
    timeout_seconds: float = 30.0
    background_seconds: float = 300.0
    max_output_chars: int = 20_000

    def __post_init__(self) -> None:
        for name in ("cpu_seconds", "memory_mb", "file_size_mb", "open_files", "processes", "disk_mb", "disk_files"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"SandboxLimits.{name} must be a positive int, got {value!r}")
        for name in ("timeout_seconds", "background_seconds"):
            value = getattr(self, name)
            # `not value > 0` so that NaN is refused too.
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0 or value == float("inf"):
                raise ValueError(f"SandboxLimits.{name} must be a positive, finite number of seconds, got {value!r}")
        if self.max_output_chars < 100:
            raise ValueError(f"SandboxLimits.max_output_chars must be at least 100, got {self.max_output_chars!r}")
        # Below this the interpreter itself cannot start (it maps ~30 MB of
        # shared libraries before running a line).
        if self.memory_mb < 64:
            raise ValueError(f"SandboxLimits.memory_mb must be at least 64, got {self.memory_mb!r}")
        # The interpreter and a few pipes need descriptors of their own.
        if self.open_files < 16:
            raise ValueError(f"SandboxLimits.open_files must be at least 16, got {self.open_files!r}")

    @property
    def disk_bytes(self) -> int:
        return self.disk_mb * _MIB

    @property
    def memory_bytes(self) -> int:
        return self.memory_mb * _MIB

    def rlimits(self, *, count_processes_per_uid: bool) -> dict[int, int]:
        """Kernel rlimits to set, soft and hard alike, in the sandboxed process.

        ``count_processes_per_uid`` sets RLIMIT_NPROC, for when no pids cgroup
        counts this sandbox's processes: the kernel then counts every process
        of the uid, in all sandboxes together.
        """
        rlimits = {
            resource.RLIMIT_CPU: self.cpu_seconds,
            resource.RLIMIT_AS: self.memory_mb * _MIB,
            resource.RLIMIT_FSIZE: self.file_size_mb * _MIB,
            resource.RLIMIT_NOFILE: self.open_files,
            # A crashing process must not dump a core the size of its memory into the workspace.
            resource.RLIMIT_CORE: 0,
        }
        if count_processes_per_uid:
            rlimits[resource.RLIMIT_NPROC] = self.processes
        return rlimits

    def describe(self) -> str:
        """One line for the model: what it is allowed to use."""
        return (
            f"{self.timeout_seconds:g} s wall clock per run, {self.cpu_seconds} s CPU per process and in all, "
            f"{self.memory_mb} MB memory, {self.processes} processes, "
            f"{self.file_size_mb} MB per file, {self.disk_mb} MB and {self.disk_files} files of workspace disk, "
            f"background processes stopped {self.background_seconds:g} s after their run"
        )
