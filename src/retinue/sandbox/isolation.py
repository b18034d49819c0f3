"""Which isolation a sandbox gets, and the loud warning when it gets none.

Running without OS isolation is never a fallback: ``"auto"`` is bubblewrap
or an error saying why it cannot be, and ``"subprocess"`` must be asked for
by name.
"""

from __future__ import annotations

import os
import shutil
import sys
import warnings
from typing import Literal

from .errors import IsolationUnavailableError, NotIsolatedWarning

Isolation = Literal["auto", "bubblewrap", "subprocess"]
"""What the caller asks for: ``auto`` is bubblewrap, kept for callers that name no isolation."""

IsolationMode = Literal["bubblewrap", "subprocess"]
"""What a started sandbox actually uses."""

INSTALL_HINT = "install it with `apt-get install bubblewrap` (Debian/Ubuntu) or `dnf install bubblewrap` (Fedora)"


def find_bubblewrap() -> str | None:
    """Path of the bwrap binary, or None when it is not installed."""
    found = shutil.which("bwrap")
    if found is None and os.access("/usr/bin/bwrap", os.X_OK):
        found = "/usr/bin/bwrap"
    return found


def choose_isolation(requested: Isolation) -> IsolationMode:
    if requested not in ("auto", "bubblewrap", "subprocess"):
        raise ValueError(f"isolation must be 'auto', 'bubblewrap' or 'subprocess', got {requested!r}")
    if requested == "subprocess":
        return "subprocess"
    if not sys.platform.startswith("linux") or find_bubblewrap() is None:
        raise IsolationUnavailableError(
            f"isolation={requested!r} needs the bubblewrap sandbox (the `bwrap` binary, Linux only), "
            f"which was not found: {INSTALL_HINT}. Or pass isolation='subprocess' to run "
            "without OS isolation (resource limits and the seccomp filter only)."
        )
    return "bubblewrap"


def warn_not_isolated(reason: str) -> None:
    warnings.warn(
        f"retinue.sandbox: agent code will run WITHOUT isolation ({reason}). It can read and write "
        "what its user can, use the network and signal that user's processes; only resource limits, "
        "the seccomp filter and (on a root host) an unprivileged uid apply. "
        f"For real isolation {INSTALL_HINT}.",
        NotIsolatedWarning,
        stacklevel=4,
    )
