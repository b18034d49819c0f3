"""Private host directories of sandboxes, and the cleanup of those left by dead processes.

Each host process removes its own directories when sandboxes close or the
interpreter exits. A process killed outright cannot, and as root it would
leave tmpfs mounts behind too, so the first sandbox a process starts sweeps
up after dead predecessors: the owner's pid is part of each directory's name
(cgroups are named the same way, see ``owned_name``, and swept by cgroups).
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import tempfile
from pathlib import Path

from . import tmpfs

_PREFIX = "retinue-sandbox-"
_NAME = re.compile(rf"^{_PREFIX}(\d+)-")


# Mount points a state directory may hold (see Workspace and the sandbox's scratch space).
_MOUNT_POINTS = ("workspace", "scratch")


def new_state_dir(kind: str) -> Path:
    """A fresh private (0700) directory named after this process."""
    _remove_leftovers_once()
    return Path(tempfile.mkdtemp(prefix=owned_name(kind)))


def owned_name(kind: str) -> str:
    """The start of a name that says this process owns what it names, for ``owner_is_dead``."""
    return f"{_PREFIX}{os.getpid()}-{kind}-"


def owner_is_dead(name: str) -> bool:
    """True when ``name`` was made by ``owned_name`` in a process that no longer exists."""
    match = _NAME.match(name)
    return match is not None and not _process_exists(int(match.group(1)))


def _process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@functools.cache
def _remove_leftovers_once() -> None:
    temporary = Path(tempfile.gettempdir())
    try:
        entries = list(temporary.iterdir())
    except OSError:
        return
    for entry in entries:
        if not owner_is_dead(entry.name):
            continue
        try:
            if entry.is_symlink() or entry.stat().st_uid != os.geteuid():
                continue
            for name in _MOUNT_POINTS:
                if (entry / name).is_mount():
                    tmpfs.unmount(entry / name)
        except OSError:
            continue
        shutil.rmtree(entry, ignore_errors=True)
