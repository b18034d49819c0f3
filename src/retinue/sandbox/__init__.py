"""An OS-isolated, persistent Python sandbox for agent-written code.

    async with Sandbox(host_functions={"get_weather": get_weather}) as sandbox:
        result = await sandbox.run_python("import host_api\\nprint(host_api.get_weather('Paris'))")
        print(result.to_model_text())

Isolation comes from the operating system, not from inspecting the code:
bubblewrap namespaces (no network, own PIDs, read-only system, only the
workspace writable, /root /home and host secrets absent), an unprivileged
uid, a seccomp filter (no user namespaces, mounts, bpf, ptrace, exotic
socket families...), kernel rlimits (CPU, address space, file size, open
files), cgroups bounding the memory and processes of the whole sandbox where
the host offers them (else seccomp refuses memfds and the host watches the
processes' memory), size- and inode-limited tmpfs mounts, and wall-clock
bounds on each run and on what it leaves running. Without bubblewrap,
``isolation="auto"`` fails with the reason; a plain subprocess (limits only)
must be asked for as ``isolation="subprocess"``, and warns.

Host functions are a module that any Python process in the sandbox can
import (the session, ``python script.py`` run from the shell, subprocesses,
workers); calls travel as JSON lines over a unix socket that only this
sandbox can reach, bound read-only into it, so its code cannot replace it.

Every module here runs on the host, except those in ``guest``: the session
server and the host-API module, which run inside the sandbox.
"""

from .enforcement import LimitEnforcement
from .errors import (
    IsolationUnavailableError,
    NotIsolatedWarning,
    SandboxError,
    SandboxStartError,
    SandboxStateError,
    WorkspacePathError,
)
from .isolation import Isolation, IsolationMode
from .limits import SandboxLimits
from .result import ExecutionResult
from .sandbox import Sandbox
from .workspace import FileInfo

__all__ = [
    "ExecutionResult",
    "FileInfo",
    "Isolation",
    "IsolationMode",
    "IsolationUnavailableError",
    "LimitEnforcement",
    "NotIsolatedWarning",
    "Sandbox",
    "SandboxError",
    "SandboxLimits",
    "SandboxStartError",
    "SandboxStateError",
    "WorkspacePathError",
]
