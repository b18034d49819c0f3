"""Size-limited tmpfs mounts, the kernel-enforced disk quota of a workspace.

Mounting needs root (CAP_SYS_ADMIN); callers fall back to polling the
workspace size when ``mount_tmpfs`` returns False.
"""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

_MS_NOSUID = 2
_MS_NODEV = 4
_MNT_DETACH = 2


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def mount_tmpfs(target: Path, size_bytes: int, uid: int, gid: int) -> bool:
    """Mount a tmpfs of ``size_bytes`` on ``target``, owned by uid:gid; False if not permitted."""
    if not os.path.isdir(target) or os.geteuid() != 0:
        return False
    options = f"size={size_bytes},uid={uid},gid={gid},mode=0755".encode()
    result = _libc().mount(b"tmpfs", os.fsencode(target), b"tmpfs", _MS_NOSUID | _MS_NODEV, options)
    return bool(result == 0)


def unmount(target: Path) -> None:
    # Lazy: a process still holding a file in it must not keep the mount alive for us.
    _libc().umount2(os.fsencode(target), _MNT_DETACH)
