"""Resource limits of a sandbox, and how they map onto kernel rlimits."""

from __future__ import annotations

import resource
from dataclasses import dataclass

_MIB = 1024 * 1024


@dataclass(frozen=True)
class SandboxLimits:
    """Ceilings applied to everything that runs in one sandbox.

    ``cpu_seconds``, ``file_size_mb``, ``open_files`` are per-process kernel
    rlimits. The persistent interpreter is one process, so its CPU time adds
    up across runs; reaching the limit restarts the session. ``memory_mb``
    bounds each process's address space (RLIMIT_AS: an allocation beyond it
    raises MemoryError) and, measured by the host, the memory all the
    sandbox's processes use together (beyond it the session is restarted).
    ``processes`` caps processes and threads of the sandbox user.
    ``disk_mb`` caps the workspace (and, separately, the private /tmp).
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
    timeout_seconds: float = 30.0
    max_output_chars: int = 20_000

    def __post_init__(self) -> None:
        for name in ("cpu_seconds", "memory_mb", "file_size_mb", "open_files", "processes", "disk_mb"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"SandboxLimits.{name} must be a positive int, got {value!r}")
        if self.timeout_seconds <= 0:
            raise ValueError(f"SandboxLimits.timeout_seconds must be positive, got {self.timeout_seconds!r}")
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

    def rlimits(self) -> dict[int, int]:
        """Kernel rlimits to set, soft and hard alike, in the sandboxed process."""
        return {
            resource.RLIMIT_CPU: self.cpu_seconds,
            resource.RLIMIT_AS: self.memory_mb * _MIB,
            resource.RLIMIT_FSIZE: self.file_size_mb * _MIB,
            resource.RLIMIT_NOFILE: self.open_files,
            resource.RLIMIT_NPROC: self.processes,
            # A crashing process must not dump a core the size of its memory into the workspace.
            resource.RLIMIT_CORE: 0,
        }

    def describe(self) -> str:
        """One line for the model: what it is allowed to use."""
        return (
            f"{self.timeout_seconds:g} s wall clock per run, {self.cpu_seconds} s CPU per process, "
            f"{self.memory_mb} MB memory per process, {self.processes} processes, "
            f"{self.file_size_mb} MB per file, {self.disk_mb} MB workspace disk"
        )
