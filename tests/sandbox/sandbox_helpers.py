"""Shared settings for the sandbox tests: tight limits, so bad code stays cheap on a shared machine."""

from __future__ import annotations

import os
import time
from pathlib import Path

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
