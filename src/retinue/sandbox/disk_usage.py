"""What a workspace the kernel does not bound holds: bytes on disk and entries, counted by the host.

Every entry counts, directories, symlinks and empty files included: each
costs the host an inode whatever its size. The walk goes through directory
descriptors and never follows a symlink, so a directory swapped for one
while it runs cannot lead it outside the workspace.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class DiskUsage:
    bytes: int
    entries: int


def measure(root: Path) -> DiskUsage:
    """Blocks in use (as bytes) and entries under ``root``; what vanishes while it walks is not counted."""
    used = entries = 0
    for _, directories, files, directory_fd in os.fwalk(root, follow_symlinks=False):
        for name in directories + files:
            entries += 1
            try:
                used += os.stat(name, dir_fd=directory_fd, follow_symlinks=False).st_blocks * 512
            except OSError:
                continue
    return DiskUsage(used, entries)
