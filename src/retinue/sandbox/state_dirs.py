"""Private host directories of sandboxes, and the cleanup of those left by dead processes.

Each host process removes its own directories when sandboxes close or the
interpreter exits. A process killed outright cannot, and as root it would
leave a tmpfs mounted too, so the first sandbox a process starts sweeps up
after dead predecessors: the owner's pid is part of each directory's name.
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


def new_state_dir(kind: str) -> Path:
    """A fresh private (0700) directory named after this process."""
    _remove_leftovers_once()
    return Path(tempfile.mkdtemp(prefix=f"{_PREFIX}{os.getpid()}-{kind}-"))


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
        match = _NAME.match(entry.name)
        if match is None or _process_exists(int(match.group(1))):
            continue
        try:
            if entry.is_symlink() or entry.stat().st_uid != os.geteuid():
                continue
            workspace = entry / "workspace"
            if workspace.is_mount():
                tmpfs.unmount(workspace)
        except OSError:
            continue
        shutil.rmtree(entry, ignore_errors=True)
