"""How code running as the unprivileged sandbox user reaches an interpreter installed where that user cannot.

Without bubblewrap (``isolation="subprocess"``) on a root host, the session
starts as root and drops to the sandbox uid before it runs any code. An
interpreter under a private directory (pyenv in a 0700 /root, say) then
stays loaded, but its standard library, its packages and ``python`` for the
shell are out of the user's reach. So the host opens each such directory
(O_PATH) and hands the descriptor down, and the session reaches it as
``/proc/PID/fd/N``: that path leads into the directory without passing
through its parents, which stay closed (``..`` from it still needs search
permission on them), so the rest of /root is as unreadable as before.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Sequence
from pathlib import Path

from .errors import IsolationUnavailableError


def _can_search(info: os.stat_result, uid: int, gid: int) -> bool:
    if info.st_uid == uid:
        return bool(info.st_mode & stat.S_IXUSR)
    if info.st_gid == gid:
        return bool(info.st_mode & stat.S_IXGRP)
    return bool(info.st_mode & stat.S_IXOTH)


def unreachable_roots(roots: Sequence[Path], uid: int, gid: int) -> list[Path]:
    """The directories of ``roots`` that uid:gid cannot reach by path: a parent on the way denies it search.

    Directories not made yet are no obstacle: root creates them searchable (0755 under a usual umask).
    """
    unreachable = []
    for root in roots:
        for directory in (*reversed(root.parents), root):
            try:
                searchable = _can_search(os.stat(directory), uid, gid)
            except FileNotFoundError:
                break
            if not searchable:
                unreachable.append(root)
                break
    return unreachable


def open_roots(roots: Sequence[Path], uid: int, gid: int) -> dict[str, int]:
    """Path-only descriptors of the ``roots`` uid:gid cannot reach, by path, for the session's ``reach_through``.

    The caller passes them to the session and closes them after the start.
    """
    unreachable = unreachable_roots(roots, uid, gid)
    if unreachable and sys.prefix != sys.base_prefix:
        raise IsolationUnavailableError(
            f"isolation='subprocess' runs the code as uid {uid}, which cannot reach this virtual environment's "
            f"base interpreter under {', '.join(map(str, unreachable))}. Create the environment from a Python "
            "installed where other users can read it, or use isolation='bubblewrap'."
        )
    return {str(root): os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC) for root in unreachable}
