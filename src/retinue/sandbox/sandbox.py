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
from . import tmpfs
from .bubblewrap import (
    HOST_API_INSIDE,
    HOST_API_SOCKET_INSIDE,
    SYSTEM_DIRECTORIES,
    WORKSPACE_INSIDE,
    bubblewrap_command,
    read_child_pid,
    sandbox_environment,
)
from .cgroups import SessionCgroup, host_cgroups
from .disk_usage import measure
from .enforcement import LimitEnforcement
from .errors import IsolationUnavailableError, SandboxStartError, SandboxStateError
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
from .unprivileged_python import open_roots, unreachable_roots
from .workspace import CopyReport, FileInfo, Workspace

DEFAULT_LIMITS = SandboxLimits()
_SESSION_SCRIPT = Path(__file__).with_name("guest") / "session.py"
_HOST_API_SOCKET = "api.sock"
_DISK_POLL_SECONDS = 0.25
# Between runs only background processes write: look less often.
_IDLE_DISK_POLL_SECONDS = 1.0
_SCRATCH = "scratch"
# How long bubblewrap may take to set up the namespace and start the session, and how often to look.
_SESSION_FORK_SECONDS = 10.0
_SESSION_FORK_POLL_SECONDS = 0.002
_SANDBOX_NICENESS = 10
# A killed namespace empties in milliseconds; this only bounds a wedged kernel.
_STOP_WAIT_SECONDS = 5.0
# run_shell enforces its timeout inside the sandbox, keeping the session; the
# host steps in only if that fails, this much later.
_SHELL_TIMEOUT_SLACK_SECONDS = 2.0


def _seccomp_pipe(*, refuse_uncounted_memory: bool) -> int | None:
    """A readable fd holding the seccomp program, for bubblewrap's --seccomp."""
    program = seccomp_program(refuse_uncounted_memory=refuse_uncounted_memory)
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


def _host_is_root() -> bool:
    return os.geteuid() == 0


class _LaunchPlan(NamedTuple):
    """How to start one session process."""

    argv: list[str]
    config: dict[str, Any]
    env: dict[str, str]
    cwd: str
    host_api: HostApiServer
    pass_fds: tuple[int, ...] = ()
    # Where bubblewrap reports its child's pid; the host's end, closed by the caller.
    info_fd: int | None = None


def _enter_bubblewrapped(cgroup: SessionCgroup, info_fd: int) -> None:
    """Move the session, once bubblewrap's init has started it, into ``cgroup``.

    Not earlier: moving a process into a cgroup v1 group stops every fork on
    the host for an RCU grace period, and bubblewrap's own forks would wait.
    Once the session exists it forks nothing until its first request, so the
    move overlaps the interpreter's start-up instead of delaying it.
    """
    init = read_child_pid(info_fd)
    deadline = time.monotonic() + _SESSION_FORK_SECONDS
    while not (children := _children(init)):
        if time.monotonic() > deadline or not os.path.exists(f"/proc/{init}"):
            raise OSError(f"bubblewrap's init (pid {init}) did not start the session")
        time.sleep(_SESSION_FORK_POLL_SECONDS)
    for pid in children:
        cgroup.enter(pid)


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
    host directory. ``"auto"`` is bubblewrap, failing with the reason where
    it is missing or cannot start. ``"subprocess"``, which must be asked for
    by name, runs the code as a plain process with the resource limits, the
    seccomp filter and a clean environment, as an unprivileged user when the
    host is root, and warns (``NotIsolatedWarning``): it can read what that
    user can read and use the network.

    Memory, processes and CPU time are bounded for all the sandbox's
    processes together, by cgroups where the host offers them (see
    ``limit_enforcement`` for what holds each limit on this host).

    ``host_functions`` become the module ``host_module`` inside the sandbox,
    importable by the session and by any Python process started in it (a
    ``python script.py`` from the shell, a subprocess, a forked worker);
    calls travel as JSON over a unix socket to the host, which runs them
    (sync functions in a worker thread, async ones on the event loop) and
    sends back the result or the exception's type and message.

    ``workspace`` None is a fresh directory (a size- and inode-limited tmpfs
    when the host is root) removed on close. A given directory is kept; when
    the host is root it is handed, recursively, to the sandbox user (uid
    65534) so the code can write it: give a directory dedicated to the
    sandbox. ``files`` maps workspace paths to host files or directories (a
    Path or path string) or to literal bytes, copied in at start.
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
        self._disk_watch: asyncio.Task[None] | None = None
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
            isolation_choice.warn_not_isolated("isolation='subprocess' was requested")
            self._refuse_unreachable_workspace()
        self._workspace = Workspace(
            self._requested_workspace,
            disk_bytes=self.limits.disk_bytes,
            owner=(SANDBOX_UID, SANDBOX_GID) if _host_is_root() else None,
            inside=WORKSPACE_INSIDE if mode == "bubblewrap" else None,
        )
        try:
            if self._workspace.quota_enforced:
                tmpfs.limit_files(self._workspace.root, self.limits.disk_files)
            if mode == "subprocess" and _host_is_root():
                # Searchable, not listable: the sandbox user, no longer root,
                # must pass through to the workspace and the host-API socket.
                self._workspace.state_dir.chmod(0o711)
            self._workspace.stage(self._files)
            self._workspace.mark_baseline()
            self._mode = mode
            try:
                self._process = await self._spawn()
            except SandboxStartError as exc:
                if self.isolation != "auto":
                    raise
                raise IsolationUnavailableError(
                    f"isolation='auto': bubblewrap ({isolation_choice.find_bubblewrap()}) is installed but could "
                    f"not start the sandbox, so no code was run. {exc} Fix bubblewrap (it needs to create "
                    "namespaces), or pass isolation='subprocess' to run the code without OS isolation."
                ) from exc
        except BaseException:
            self._unmount_scratch()
            self._workspace.cleanup()
            self._workspace = None
            self._mode = None
            raise

    def _refuse_unreachable_workspace(self) -> None:
        """Without bubblewrap on a root host, the code runs as the sandbox user: the workspace must be in its reach."""
        if not _host_is_root() or self._requested_workspace is None:
            return
        requested = self._requested_workspace.expanduser().resolve()
        if unreachable_roots([requested], SANDBOX_UID, SANDBOX_GID):
            raise IsolationUnavailableError(
                f"isolation='subprocess' runs the code as uid {SANDBOX_UID} (the host is root), which cannot "
                f"reach the workspace {requested}: a directory on the way denies it search. Give a workspace "
                "that user can reach (or none, for a fresh one), or use isolation='bubblewrap'."
            )

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
        await self._end_session()
        if inner:
            await asyncio.to_thread(_wait_until_dead, inner, _STOP_WAIT_SECONDS)
        self._unmount_scratch()

    async def close(self) -> None:
        """Stop the session and remove the temporary workspace (a given workspace is kept)."""
        if self._closed:
            return
        self._closed = True
        self._stopped = True
        await self._end_session()
        self._unmount_scratch()
        if self._workspace is not None:
            self._workspace.cleanup()

    async def _end_session(self) -> None:
        if self._disk_watch is not None:
            self._disk_watch.cancel()
            self._disk_watch = None
        if self._process is not None:
            await self._process.close()
            self._process = None

    async def _spawn(self) -> SessionProcess:
        cgroup_host = host_cgroups()
        bubblewrapped = self._mode == "bubblewrap"
        cgroup = None if cgroup_host is None else SessionCgroup(cgroup_host, self.limits)
        try:
            plan = self._launch_plan(cgroup)
        except BaseException:
            if cgroup is not None:
                cgroup.remove()
            raise
        enter_cgroup = None
        if cgroup is not None:
            info_fd = plan.info_fd
            enter_cgroup = cgroup.enter if info_fd is None else lambda _: _enter_bubblewrapped(cgroup, info_fd)
        try:
            process = await SessionProcess.spawn(
                plan.argv,
                plan.config,
                limits=self.limits,
                env=plan.env,
                cwd=plan.cwd,
                via_bubblewrap=bubblewrapped,
                cgroup=cgroup,
                enter_cgroup=enter_cgroup,
                pass_fds=plan.pass_fds,
                host_api=plan.host_api,
            )
        finally:
            for fd in plan.pass_fds:
                os.close(fd)
            if plan.info_fd is not None:
                os.close(plan.info_fd)
        if not self._require_workspace().quota_enforced:
            self._disk_watch = asyncio.create_task(self._watch_disk(process))
        return process

    def _host_api(self, socket_inside: str | None) -> tuple[Path, HostApiServer]:
        """The directory holding the host-API module, and the server for its socket.

        The socket is created in the sandbox's state directory, so no other
        host user can reach it; bubblewrap binds it read-only at
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
        owner = (SANDBOX_UID, SANDBOX_GID) if _host_is_root() else None
        return directory, HostApiServer(self._bridge, socket_path, owner=owner)

    def _mount_scratch(self) -> Path | None:
        """A fresh tmpfs for /tmp and /dev/shm, size- and inode-limited; None where the host cannot mount."""
        scratch = self._require_workspace().state_dir / _SCRATCH
        self._unmount_scratch()
        scratch.mkdir(exist_ok=True)
        if not tmpfs.mount_tmpfs(scratch, self.limits.disk_bytes, 0, 0, max_files=self.limits.disk_files):
            return None
        for name in ("tmp", "shm"):
            (scratch / name).mkdir()
            (scratch / name).chmod(0o1777)
        return scratch

    def _unmount_scratch(self) -> None:
        if self._workspace is not None and (self._workspace.state_dir / _SCRATCH).is_mount():
            tmpfs.unmount(self._workspace.state_dir / _SCRATCH)

    def _launch_plan(self, cgroup: SessionCgroup | None) -> _LaunchPlan:
        python = os.path.realpath(sys.executable)
        memory_counted = cgroup is not None and cgroup.memory is not None
        pass_fds: list[int] = []
        config: dict[str, Any] = {
            "rlimits": [
                [which, value]
                for which, value in self.limits.rlimits(
                    count_processes_per_uid=cgroup is None or cgroup.pids is None
                ).items()
            ],
            "max_error_chars": self.limits.max_output_chars,
            "uid": SANDBOX_UID,
            "gid": SANDBOX_GID,
            "nice": _SANDBOX_NICENESS,
            "drop_privileges": _host_is_root(),
        }
        try:
            if self._mode == "bubblewrap":
                return self._bubblewrap_plan(
                    config, pass_fds, python, refuse_uncounted_memory=not memory_counted, report_pid=cgroup is not None
                )
            return self._subprocess_plan(config, pass_fds, python, refuse_uncounted_memory=not memory_counted)
        except BaseException:
            for fd in pass_fds:
                os.close(fd)
            raise

    def _bubblewrap_plan(
        self,
        config: dict[str, Any],
        pass_fds: list[int],
        python: str,
        *,
        refuse_uncounted_memory: bool,
        report_pid: bool,
    ) -> _LaunchPlan:
        bwrap = isolation_choice.find_bubblewrap()
        if bwrap is None:
            raise SandboxStartError(f"bubblewrap disappeared; {isolation_choice.INSTALL_HINT}")
        roots = _python_roots()
        host_api_dir, host_api = self._host_api(HOST_API_SOCKET_INSIDE)
        seccomp_fd = _seccomp_pipe(refuse_uncounted_memory=refuse_uncounted_memory)
        if seccomp_fd is not None:
            pass_fds.append(seccomp_fd)
        info_read, info_write = os.pipe() if report_pid else (None, None)
        if info_write is not None:
            pass_fds.append(info_write)
        try:
            argv = self._bubblewrap_argv(bwrap, python, roots, host_api_dir, host_api, seccomp_fd, info_write)
        except BaseException:
            if info_read is not None:
                os.close(info_read)
            raise
        config.update(
            sys_path=_visible_sys_path(tuple(roots)),
            cwd=WORKSPACE_INSIDE,
            host_api_dir=HOST_API_INSIDE,
            host_api_file=f"{HOST_API_INSIDE}/{self._bridge.module_name}.py",
        )
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        return _LaunchPlan(argv, config, env, "/", host_api, tuple(pass_fds), info_read)

    def _bubblewrap_argv(
        self,
        bwrap: str,
        python: str,
        roots: list[Path],
        host_api_dir: Path,
        host_api: HostApiServer,
        seccomp_fd: int | None,
        info_fd: int | None,
    ) -> list[str]:
        return bubblewrap_command(
            bwrap,
            python=python,
            python_roots=roots,
            session_script=_SESSION_SCRIPT,
            host_api_dir=host_api_dir,
            host_api_socket=host_api.path,
            workspace=self._require_workspace().root,
            etc_dir=sandbox_etc_directory(),
            limits=self.limits,
            host_is_root=_host_is_root(),
            seccomp_fd=seccomp_fd,
            scratch=self._mount_scratch(),
            info_fd=info_fd,
        )

    def _subprocess_plan(
        self, config: dict[str, Any], pass_fds: list[int], python: str, *, refuse_uncounted_memory: bool
    ) -> _LaunchPlan:
        workspace = self._require_workspace()
        home = workspace.state_dir / "home"
        home.mkdir(exist_ok=True)
        if _host_is_root():
            os.chown(home, SANDBOX_UID, SANDBOX_GID)
            reach_through = open_roots(_python_roots(), SANDBOX_UID, SANDBOX_GID)
            pass_fds += reach_through.values()
            config["reach_through"] = reach_through
        host_api_dir, host_api = self._host_api(None)
        program = seccomp_program(refuse_uncounted_memory=refuse_uncounted_memory)
        config.update(
            sys_path=[entry for entry in sys.path if entry and os.path.isdir(entry)],
            cwd=str(workspace.root),
            host_api_dir=str(host_api_dir),
            host_api_file=str(host_api_dir / f"{self._bridge.module_name}.py"),
            seccomp=None if program is None else program.hex(),
        )
        env = sandbox_environment(
            home=str(home),
            python_bin=os.path.dirname(python),
            python_path=str(host_api_dir),
            path=os.environ.get("PATH", "/usr/bin:/bin"),
        )
        argv = [python, "-I", "-S", str(_SESSION_SCRIPT)]
        return _LaunchPlan(argv, config, env, str(workspace.root), host_api, tuple(pass_fds))

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
            outcome = await process.request(message, seconds)
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
        await self._end_session()
        self._process = await self._spawn()
        return self._process

    async def _watch_disk(self, process: SessionProcess) -> None:
        """Polled quota for workspaces the kernel cannot bound (a caller's directory, or no root), runs or not."""
        workspace = self._require_workspace()
        while True:
            await asyncio.sleep(_DISK_POLL_SECONDS if self._lock.locked() else _IDLE_DISK_POLL_SECONDS)
            usage = await asyncio.to_thread(measure, workspace.root)
            if usage.bytes > self.limits.disk_bytes:
                reason = (
                    f"the workspace went over its disk quota ({usage.bytes / 2**20:.0f} MB used, "
                    f"{self.limits.disk_mb} MB allowed; delete files before writing more)"
                )
            elif usage.entries > self.limits.disk_files:
                reason = (
                    f"the workspace went over its limit of files ({usage.entries} files and directories, "
                    f"{self.limits.disk_files} allowed; delete some before creating more)"
                )
            else:
                continue
            await process.stop_because(reason)
            return

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

    @property
    def limit_enforcement(self) -> LimitEnforcement:
        """What holds each limit on this host: cgroups, or the fallbacks (rlimits, seccomp, the host's watch)."""
        return LimitEnforcement.decide(
            host_cgroups(), disk_by_kernel=self._require_workspace().quota_enforced, sandbox_uid=SANDBOX_UID
        )

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
            f"Enforced by: {self.limit_enforcement.describe()}.",
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
