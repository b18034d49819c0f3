"""``Sandbox``: a persistent, OS-isolated Python session for agent-written code."""

from __future__ import annotations

import asyncio
import atexit
import functools
import importlib.util
import os
import shutil
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, NamedTuple

from . import isolation as isolation_choice
from .bubblewrap import (
    HOST_API_INSIDE,
    HOST_API_SOCKET_INSIDE,
    SYSTEM_DIRECTORIES,
    WORKSPACE_INSIDE,
    bubblewrap_command,
    sandbox_environment,
)
from .errors import SandboxStartError, SandboxStateError
from .host_bridge import HostBridge, compiled_module
from .host_socket import MAX_CONNECTIONS_PER_PROCESS, MAX_REQUEST_BYTES, HostApiServer
from .identity import SANDBOX_GID, SANDBOX_UID
from .isolation import Isolation, IsolationMode
from .limits import SandboxLimits
from .process import SessionProcess
from .result import ExecutionResult
from .sandbox_etc import sandbox_etc_directory
from .seccomp import seccomp_program
from .state_dirs import new_state_dir
from .workspace import CopyReport, FileInfo, Workspace

DEFAULT_LIMITS = SandboxLimits()
_SESSION_SCRIPT = Path(__file__).with_name("session.py")
_HOST_API_SOCKET = "api.sock"
_DISK_POLL_SECONDS = 0.25
_SANDBOX_NICENESS = 10
# A killed namespace empties in milliseconds; this only bounds a wedged kernel.
_STOP_WAIT_SECONDS = 5.0
# run_shell enforces its timeout inside the sandbox, keeping the session; the
# host steps in only if that fails, this much later.
_SHELL_TIMEOUT_SLACK_SECONDS = 2.0


def _seccomp_pipe() -> int | None:
    """A readable fd holding the seccomp program, for bubblewrap's --seccomp."""
    program = seccomp_program()
    if program is None:
        return None
    read_end, write_end = os.pipe()
    try:
        # A few hundred bytes: far below the pipe's buffer, so this never blocks.
        os.write(write_end, program)
    finally:
        os.close(write_end)
    return read_end


def _children(pid: int) -> list[int]:
    """The pids of ``pid``'s children (empty where /proc cannot tell)."""
    children: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as listing:
                children += (int(child) for child in listing.read().split())
    except (OSError, ValueError):
        pass
    return children


def _wait_until_dead(pids: list[int], timeout: float) -> None:
    """Block until each pid is gone or a zombie, or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    for pid in pids:
        while time.monotonic() < deadline:
            try:
                with open(f"/proc/{pid}/stat") as status:
                    state = status.read().rpartition(")")[2].split()[0]
            except (OSError, IndexError):
                break
            if state in ("Z", "X"):
                break
            time.sleep(0.01)


def _write_module(directory: Path, name: str, source: str) -> None:
    """Write the host-API module and its bytecode (so no process in the sandbox compiles it)."""
    module = directory / f"{name}.py"
    compiled = Path(importlib.util.cache_from_source(str(module)))
    compiled.parent.mkdir(parents=True, exist_ok=True)
    module.write_text(source, encoding="utf-8")
    compiled.write_bytes(compiled_module(source))
    # Readable by the sandbox user whatever the host's umask; writable by nobody inside.
    for folder in (directory, compiled.parent):
        folder.chmod(0o755)
    for file in (module, compiled):
        file.chmod(0o644)


@functools.cache
def _shared_module_directory(name: str, source: str) -> Path:
    """A directory holding this module, made once per process and shared by every sandbox that needs it.

    With bubblewrap the module's text names only paths inside the sandbox,
    so sandboxes with the same functions share one copy: a start creates
    no files but the socket. One small directory per distinct set of
    functions, removed when the process exits. It sits in a 0700 parent:
    the sandbox must list it, other host users need not.
    """
    parent = new_state_dir("api")
    atexit.register(shutil.rmtree, parent, ignore_errors=True)
    directory = parent / "host"
    directory.mkdir()
    _write_module(directory, name, source)
    return directory


class _LaunchPlan(NamedTuple):
    """How to start one session process."""

    argv: list[str]
    config: dict[str, Any]
    env: dict[str, str]
    cwd: str
    host_api: HostApiServer
    pass_fds: tuple[int, ...] = ()


@functools.cache
def _python_roots() -> list[Path]:
    """Directories the interpreter needs read-only: its install prefix (and a venv's)."""
    roots: list[Path] = []
    for prefix in (sys.base_prefix, sys.base_exec_prefix, sys.prefix, sys.exec_prefix):
        path = Path(os.path.realpath(prefix))
        if path not in roots:
            roots.append(path)
    executable_dir = Path(os.path.realpath(sys.executable)).parent
    if not any(executable_dir.is_relative_to(root) for root in roots):
        roots.append(executable_dir)
    return roots


@functools.cache
def _visible_sys_path(roots: tuple[Path, ...]) -> list[str]:
    visible = [*(Path(directory) for directory in SYSTEM_DIRECTORIES), *roots]
    paths = []
    for entry in sys.path:
        if not entry or not os.path.isdir(entry):
            continue
        real = Path(os.path.realpath(entry))
        if any(real.is_relative_to(root) for root in visible) and str(real) not in paths:
            paths.append(str(real))
    return paths


class Sandbox:
    """A long-lived Python session whose isolation comes from the operating system.

    Variables and imports survive between ``run_python`` calls, as in a
    notebook. With ``isolation="bubblewrap"`` the code runs as an
    unprivileged user in its own mount, PID, network, IPC and UTS namespaces:
    no network, a read-only system, the workspace as the only writable
    host directory. ``"subprocess"`` applies the resource limits only and warns
    (``NotIsolatedWarning``); ``"auto"`` picks bubblewrap when it can.

    ``host_functions`` become the module ``host_module`` inside the sandbox,
    importable by the session and by any Python process started in it (a
    ``python script.py`` from the shell, a subprocess, a forked worker);
    calls travel as JSON over a unix socket to the host, which runs them
    (sync functions in a worker thread, async ones on the event loop) and
    sends back the result or the exception's type and message.

    ``workspace`` None is a fresh directory (a size-limited tmpfs when the
    host is root) removed on close. A given directory is kept; when the host
    is root it is handed, recursively, to the sandbox user (uid 65534) so the
    code can write it: give a directory dedicated to the sandbox. ``files``
    maps workspace paths to host files or directories (a Path or path
    string) or to literal bytes, copied in at start.
    """

    def __init__(
        self,
        workspace: Path | None = None,
        isolation: Isolation = "auto",
        host_functions: Mapping[str, Callable[..., Any]] | None = None,
        host_module: str = "host_api",
        files: Mapping[str, Path | str | bytes] | None = None,
        limits: SandboxLimits = DEFAULT_LIMITS,
    ) -> None:
        if isolation not in ("auto", "bubblewrap", "subprocess"):
            raise ValueError(f"isolation must be 'auto', 'bubblewrap' or 'subprocess', got {isolation!r}")
        self.isolation: Isolation = isolation
        self.limits = limits
        self._requested_workspace = None if workspace is None else Path(workspace)
        self._bridge = HostBridge(host_functions, host_module)
        self._files = dict(files or {})
        self._workspace: Workspace | None = None
        self._process: SessionProcess | None = None
        self._mode: IsolationMode | None = None
        self._closed = False
        self._stopped = False
        self._lock = asyncio.Lock()

    # ----- lifecycle -------------------------------------------------------

    async def __aenter__(self) -> Sandbox:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def start(self) -> None:
        """Prepare the workspace and start the session; calling it again does nothing."""
        if self._closed:
            raise SandboxStateError("this sandbox was closed; create a new Sandbox")
        if self._process is not None:
            return
        mode = isolation_choice.choose_isolation(self.isolation)
        if mode == "subprocess":
            isolation_choice.warn_not_isolated(
                "isolation='subprocess' was requested"
                if self.isolation == "subprocess"
                else "bubblewrap is not installed"
            )
        host_is_root = os.geteuid() == 0
        self._workspace = Workspace(
            self._requested_workspace,
            disk_bytes=self.limits.disk_bytes,
            owner=(SANDBOX_UID, SANDBOX_GID) if host_is_root and mode == "bubblewrap" else None,
            inside=WORKSPACE_INSIDE if mode == "bubblewrap" else None,
        )
        try:
            self._workspace.stage(self._files)
            self._workspace.mark_baseline()
            self._mode = mode
            try:
                self._process = await self._spawn()
            except SandboxStartError as exc:
                if self.isolation != "auto" or mode != "bubblewrap":
                    raise
                # bubblewrap is installed but cannot create namespaces here
                # (a locked-down container, say): auto falls back, loudly.
                isolation_choice.warn_not_isolated(f"bubblewrap failed to start: {exc}")
                self._mode = "subprocess"
                self._workspace.inside = str(self._workspace.root)
                self._process = await self._spawn()
        except BaseException:
            self._workspace.cleanup()
            self._workspace = None
            self._mode = None
            raise

    async def stop(self) -> None:
        """Kill every process of the sandbox but keep the workspace, to read its files in peace; no run after.

        Reading what the code left is safe only once nothing inside can
        change it underneath the host, so this waits for the whole PID
        namespace, not only the session's process group (a shell child runs
        in a session of its own). ``close`` still removes the workspace.
        """
        self._stopped = True
        process = self._process
        if process is None:
            return
        # The namespace's init is the outer bubblewrap's child; once it is
        # gone or a zombie, the kernel has killed and reaped all the rest.
        inner = _children(process._process.pid) if self._mode == "bubblewrap" else []
        await process.close()
        self._process = None
        if inner:
            await asyncio.to_thread(_wait_until_dead, inner, _STOP_WAIT_SECONDS)

    async def close(self) -> None:
        """Stop the session and remove the temporary workspace (a given workspace is kept)."""
        if self._closed:
            return
        self._closed = True
        self._stopped = True
        if self._process is not None:
            await self._process.close()
            self._process = None
        if self._workspace is not None:
            self._workspace.cleanup()

    async def _spawn(self) -> SessionProcess:
        plan = self._launch_plan()
        try:
            return await SessionProcess.spawn(
                plan.argv,
                plan.config,
                limits=self.limits,
                env=plan.env,
                cwd=plan.cwd,
                via_bubblewrap=self._mode == "bubblewrap",
                pass_fds=plan.pass_fds,
                host_api=plan.host_api,
            )
        finally:
            for fd in plan.pass_fds:
                os.close(fd)

    def _host_api(self, socket_inside: str | None) -> tuple[Path, HostApiServer]:
        """The directory holding the host-API module, and the server for its socket.

        The socket is created in the sandbox's 0700 state directory, so no
        other host user can reach it; bubblewrap binds it read-only at
        ``socket_inside``. Without isolation (None) the code sees host paths:
        the module then names the socket's host path, and is written to the
        state directory too.
        """
        state_dir = self._require_workspace().state_dir
        socket_path = state_dir / _HOST_API_SOCKET
        name = self._bridge.module_name
        source = self._bridge.module_source(
            str(socket_path) if socket_inside is None else socket_inside,
            max_request_bytes=MAX_REQUEST_BYTES,
            max_connections=MAX_CONNECTIONS_PER_PROCESS,
        )
        if socket_inside is not None:
            directory = _shared_module_directory(name, source)
        else:
            directory = state_dir / "host"
            _write_module(directory, name, source)
        owner = (SANDBOX_UID, SANDBOX_GID) if os.geteuid() == 0 and self._mode == "bubblewrap" else None
        return directory, HostApiServer(self._bridge, socket_path, owner=owner)

    def _launch_plan(self) -> _LaunchPlan:
        workspace = self._require_workspace()
        python = os.path.realpath(sys.executable)
        config: dict[str, Any] = {
            "rlimits": [[which, value] for which, value in self.limits.rlimits().items()],
            "max_error_chars": self.limits.max_output_chars,
            "uid": SANDBOX_UID,
            "gid": SANDBOX_GID,
            "nice": _SANDBOX_NICENESS,
        }
        if self._mode == "bubblewrap":
            bwrap = isolation_choice.find_bubblewrap()
            if bwrap is None:
                raise SandboxStartError(f"bubblewrap disappeared; {isolation_choice.INSTALL_HINT}")
            roots = _python_roots()
            host_is_root = os.geteuid() == 0
            host_api_dir, host_api = self._host_api(HOST_API_SOCKET_INSIDE)
            seccomp_fd = _seccomp_pipe()
            argv = bubblewrap_command(
                bwrap,
                python=python,
                python_roots=roots,
                session_script=_SESSION_SCRIPT,
                host_api_dir=host_api_dir,
                host_api_socket=host_api.path,
                workspace=workspace.root,
                etc_dir=sandbox_etc_directory(),
                limits=self.limits,
                host_is_root=host_is_root,
                seccomp_fd=seccomp_fd,
            )
            config.update(
                sys_path=_visible_sys_path(tuple(roots)),
                cwd=WORKSPACE_INSIDE,
                drop_privileges=host_is_root,
                host_api_dir=HOST_API_INSIDE,
                host_api_file=f"{HOST_API_INSIDE}/{self._bridge.module_name}.py",
            )
            env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
            return _LaunchPlan(argv, config, env, "/", host_api, () if seccomp_fd is None else (seccomp_fd,))
        home = workspace.state_dir / "home"
        home.mkdir(exist_ok=True)
        host_api_dir, host_api = self._host_api(None)
        paths = [entry for entry in sys.path if entry and os.path.isdir(entry)]
        # No privilege drop here: the interpreter may live under a
        # directory (like /root) that an unprivileged user cannot read.
        config.update(
            sys_path=paths,
            cwd=str(workspace.root),
            drop_privileges=False,
            host_api_dir=str(host_api_dir),
            host_api_file=str(host_api_dir / f"{self._bridge.module_name}.py"),
        )
        env = sandbox_environment(
            home=str(home),
            python_bin=os.path.dirname(python),
            python_path=str(host_api_dir),
            path=os.environ.get("PATH", "/usr/bin:/bin"),
        )
        return _LaunchPlan([python, "-I", "-S", str(_SESSION_SCRIPT)], config, env, str(workspace.root), host_api)

    # ----- running code ----------------------------------------------------

    # The public `timeout` is enforced by killing the sandboxed process, which
    # asyncio.timeout around the call could not do: hence the parameter.
    async def run_python(self, code: str, timeout: float | None = None) -> ExecutionResult:  # noqa: ASYNC109
        """Run ``code`` in the persistent session; a trailing expression's repr is printed, as in a notebook."""
        limit = self.limits.timeout_seconds if timeout is None else timeout
        return await self._run({"type": "run", "code": code}, limit)

    async def run_shell(self, command: str, timeout: float | None = None) -> ExecutionResult:  # noqa: ASYNC109
        """Run ``command`` with /bin/sh in the workspace; the Python session is kept, even on timeout."""
        limit = self.limits.timeout_seconds if timeout is None else timeout
        return await self._run(
            {"type": "shell", "command": command, "timeout": limit}, limit + _SHELL_TIMEOUT_SLACK_SECONDS
        )

    async def _run(self, message: dict[str, Any], seconds: float) -> ExecutionResult:
        if seconds <= 0:
            raise ValueError(f"timeout must be positive, got {seconds!r}")
        async with self._lock:
            self._require_workspace()
            if self._stopped:
                raise SandboxStateError("this sandbox was stopped; create a new Sandbox")
            started = time.monotonic()
            restart_reason: str | None = None
            process = self._process
            if process is None or not process.alive:
                if process is not None:
                    # Reaped first, so the reason can name the exit status or signal.
                    await process.kill()
                restart_reason = (
                    process.reason_lost_between_runs()
                    if process is not None
                    else "the previous run was interrupted while the session restarted"
                )
                process = await self._restart()
            watch = None if self._require_workspace().quota_enforced else asyncio.ensure_future(self._watch_disk())
            try:
                outcome = await process.request(message, seconds, watch)
            finally:
                if watch is not None:
                    watch.cancel()
            if outcome.lost_because is not None:
                restart_reason = outcome.lost_because
                await self._restart()
            return ExecutionResult(
                stdout=outcome.stdout,
                stderr=outcome.stderr,
                error=outcome.error,
                exit_code=outcome.exit_code,
                timed_out=outcome.timed_out,
                session_restarted=restart_reason is not None,
                duration_seconds=time.monotonic() - started,
                truncated_chars=outcome.truncated_chars,
                restart_reason=restart_reason,
            )

    async def _restart(self) -> SessionProcess:
        if self._process is not None:
            await self._process.close()
            self._process = None
        self._process = await self._spawn()
        return self._process

    async def _watch_disk(self) -> str:
        """Polled quota for workspaces the kernel cannot bound (a caller's directory, or no root)."""
        workspace = self._require_workspace()
        while True:
            await asyncio.sleep(_DISK_POLL_SECONDS)
            used = await asyncio.to_thread(workspace.usage_bytes)
            if used > self.limits.disk_bytes:
                return (
                    f"the workspace went over its disk quota ({used / 2**20:.0f} MB used, "
                    f"{self.limits.disk_mb} MB allowed); delete files before writing more"
                )

    # ----- workspace -------------------------------------------------------

    def write_file(self, path: str | os.PathLike[str], content: str | bytes) -> FileInfo:
        """Write a file in the workspace (parents are created); the path must stay inside it."""
        data = content.encode() if isinstance(content, str) else bytes(content)
        relative = self._require_workspace().write_bytes(path, data)
        return FileInfo(relative, len(data))

    def read_file(self, path: str | os.PathLike[str]) -> str:
        """A workspace file as text (invalid UTF-8 replaced)."""
        return self.read_bytes(path).decode("utf-8", errors="replace")

    def read_bytes(self, path: str | os.PathLike[str]) -> bytes:
        return self._require_workspace().read_bytes(path)

    def list_files(self) -> list[FileInfo]:
        """Every regular file in the workspace (symlinks are not followed or listed)."""
        return self._require_workspace().list_files()

    def artifacts(self) -> list[FileInfo]:
        """Files created or changed since the sandbox started (staged files count as the start)."""
        return self._require_workspace().artifacts()

    def copy_artifacts(self, destination: Path, *, max_files: int, max_bytes: int) -> CopyReport:
        """Copy ``artifacts`` to a host directory within the caps (see ``Workspace.copy_out``); blocking.

        Call it after ``stop``: while sandboxed processes live, the files can change as they are read.
        """
        return self._require_workspace().copy_out(destination, max_files=max_files, max_bytes=max_bytes)

    # ----- state -----------------------------------------------------------

    @property
    def isolation_used(self) -> IsolationMode | None:
        """``"bubblewrap"`` or ``"subprocess"`` once started."""
        return self._mode

    @property
    def isolated(self) -> bool:
        """False when the code runs in a plain subprocess, with resource limits only."""
        return self._mode == "bubblewrap"

    @property
    def workspace(self) -> Path:
        """The workspace directory on the host."""
        return self._require_workspace().root

    @property
    def working_directory(self) -> str:
        """The workspace as the sandboxed code sees it (its current directory)."""
        return self._require_workspace().inside

    @property
    def disk_quota_enforced_by_kernel(self) -> bool:
        """True when the workspace is a size-limited tmpfs; otherwise the quota is polled."""
        return self._require_workspace().quota_enforced

    def describe(self) -> str:
        """A few lines telling a model what this sandbox offers and forbids."""
        self._require_workspace()
        isolation = (
            "an isolated sandbox: no network, read-only system, only the working directory is writable"
            if self.isolated
            else "a plain subprocess (NOT isolated)"
        )
        functions = ", ".join(self._bridge.names)
        lines = [
            f"Python {sys.version_info.major}.{sys.version_info.minor} session in {isolation}.",
            f"Working directory: {self.working_directory}. Variables and imports persist between runs.",
            f"Limits: {self.limits.describe()}.",
        ]
        if functions:
            lines.append(
                f"Host functions: `import {self._bridge.module_name}` provides {functions}, "
                "in this session and in any Python program run inside."
            )
        return "\n".join(lines)

    def _require_workspace(self) -> Workspace:
        if self._closed:
            raise SandboxStateError("this sandbox was closed; create a new Sandbox")
        if self._workspace is None:
            raise SandboxStateError(
                "the sandbox is not started: use `async with Sandbox(...)` or `await sandbox.start()`"
            )
        return self._workspace
