"""Size- and inode-limited tmpfs mounts, the kernel-enforced disk quota of a workspace.

A tmpfs without ``nr_inodes`` lets code create files until the kernel's
memory for their inodes runs out: hundreds of thousands of empty files cost
hundreds of MB and no byte of the size limit. Mounting needs root
(CAP_SYS_ADMIN); callers fall back to polling the workspace when
``mount_tmpfs`` returns False.
"""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

_MS_NOSUID = 2
_MS_NODEV = 4
_MS_REMOUNT = 32
_MNT_DETACH = 2


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def mount_tmpfs(target: Path, size_bytes: int, uid: int, gid: int, *, max_files: int | None = None) -> bool:
    """Mount a tmpfs of ``size_bytes`` (and at most ``max_files`` inodes) on ``target``, owned by uid:gid.

    False if not permitted; OSError for any other failure.
    """
    if not os.path.isdir(target) or os.geteuid() != 0:
        return False
    options = f"size={size_bytes},uid={uid},gid={gid},mode=0755"
    if max_files is not None:
        options += f",nr_inodes={max_files}"
    if _libc().mount(b"tmpfs", os.fsencode(target), b"tmpfs", _MS_NOSUID | _MS_NODEV, options.encode()) != 0:
        error = ctypes.get_errno()
        if error == 1:  # EPERM: no CAP_SYS_ADMIN, in a container say
            return False
        raise OSError(error, f"could not mount a tmpfs on {target}: {os.strerror(error)}")
    return True


def limit_files(target: Path, max_files: int) -> None:
    """Cap the inodes of the tmpfs mounted on ``target`` at ``max_files`` (its root directory is one)."""
    # A remount changes only the options it names; the flags are restated because it replaces them.
    options = f"nr_inodes={max_files}".encode()
    flags = _MS_REMOUNT | _MS_NOSUID | _MS_NODEV
    if _libc().mount(b"tmpfs", os.fsencode(target), b"tmpfs", flags, options) != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"could not limit the files of the tmpfs on {target}: {os.strerror(error)}")


def unmount(target: Path) -> None:
    # Lazy: a process still holding a file in it must not keep the mount alive for us.
    _libc().umount2(os.fsencode(target), _MNT_DETACH)
