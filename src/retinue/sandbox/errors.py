"""The sandbox's exceptions and its one warning.

They subclass ``SandboxError`` so callers can catch everything the sandbox
raises in one place, and ``SandboxError`` is a ``RetinueError`` like every other error retinue raises.
"""

from __future__ import annotations

from ..errors import RetinueError


class SandboxError(RetinueError):
    """Base class of every error raised by ``retinue.sandbox``."""


class IsolationUnavailableError(SandboxError):
    """The requested isolation cannot be provided on this machine."""


class SandboxStartError(SandboxError):
    """The sandboxed interpreter did not come up; the message carries its stderr."""


class SandboxStateError(SandboxError):
    """A method was called while the sandbox was not running (before start or after close)."""


class WorkspacePathError(SandboxError):
    """A path given by the caller points outside the workspace or through a symlink."""


class NotIsolatedWarning(RuntimeWarning):
    """Code will run in a plain subprocess: resource limits only, no OS isolation."""
