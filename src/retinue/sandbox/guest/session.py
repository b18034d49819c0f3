"""The REPL server that runs *inside* the sandbox.

The host starts it as ``python -I -S session.py CONFIG_JSON``. It sets the
rlimits, gives up root if it has it (and, without bubblewrap to do it, loads
the seccomp filter), then serves requests that arrive as JSON
lines on a unix socket inherited as a file descriptor: run Python in one
persistent ``__main__`` namespace, or run a shell command. Output goes to the
process's real stdout and stderr, which the host reads; after each run the
server writes an end marker on both so the host knows where this run's
output ends.

Host-API calls do not travel here: the host's module is a file in a
read-only directory that this script puts on sys.path, and it talks to the
host over a socket of its own (see host_client), the same way from this
session as from any other Python process in the sandbox.

Standard library only, and everything this file does before the first
request is paid on every cold start, so it imports as little as it can (the
socket is read as a plain fd, for one: the socket module costs milliseconds).
"""

from __future__ import annotations

import _ast
import builtins
import contextlib
import importlib
import io
import json
import os
import resource
import sys
import types

# Not `from typing import ...`: importing typing would add milliseconds to every
# cold start; mypy treats this name as true all the same.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import traceback
    from typing import Any

_THIS_FILE = os.path.abspath(__file__)
# Frames of these files are plumbing, not the user's code: hidden from tracebacks.
_HIDDEN_FILES = {_THIS_FILE}


class _Channel:
    """JSON lines over the control socket: requests from the host in, ready and done out."""

    def __init__(self, fd: int) -> None:
        self._reader = open(fd, "rb", closefd=False)  # noqa: SIM115 - lives as long as the process
        self._writer = open(fd, "wb", closefd=False)  # noqa: SIM115 - lives as long as the process

    def send(self, message: dict[str, Any]) -> None:
        self._writer.write(json.dumps(message).encode() + b"\n")
        self._writer.flush()

    def receive(self) -> dict[str, Any] | None:
        """The next request, or None once the host has closed the socket."""
        line = self._reader.readline()
        if not line:
            return None
        message = json.loads(line)
        return message if isinstance(message, dict) else None


class _Server:
    def __init__(self, channel: _Channel, max_error_chars: int) -> None:
        self.channel = channel
        self.max_error_chars = max_error_chars
        self.pid = os.getpid()
        # Private copies of the output pipes: user code may close or redirect
        # fds 1 and 2, and the next run must still reach the host.
        self.saved_stdout_fd = os.dup(1)
        self.saved_stderr_fd = os.dup(2)
        # The user's code gets a __main__ of its own (this script's module is
        # replaced), so pickle and multiprocessing find what cells define.
        main_module = types.ModuleType("__main__")
        main_module.__builtins__ = builtins  # type: ignore[attr-defined]
        sys.modules["__main__"] = main_module
        self.namespace: dict[str, Any] = main_module.__dict__
        self.cell_count = 0
        self.sources: dict[str, str] = {}
        self.stdout = self._open_stream(1)
        self.stderr = self._open_stream(2)

    @staticmethod
    def _open_stream(fd: int) -> io.TextIOWrapper:
        # Line-buffered so print() and a child process's output keep their order.
        return io.TextIOWrapper(
            io.FileIO(fd, "w", closefd=False), encoding="utf-8", errors="backslashreplace", line_buffering=True
        )

    def _restore_streams(self) -> None:
        os.dup2(self.saved_stdout_fd, 1)
        os.dup2(self.saved_stderr_fd, 2)
        if self.stdout.closed:
            self.stdout = self._open_stream(1)
        if self.stderr.closed:
            self.stderr = self._open_stream(2)
        sys.stdout = self.stdout
        sys.stderr = self.stderr

    def _end_run(self, marker: bytes) -> None:
        for stream in {id(s): s for s in (sys.stdout, sys.stderr, self.stdout, self.stderr)}.values():
            # A broken user stream must not stop the marker.
            with contextlib.suppress(Exception):
                stream.flush()
        if os.getpid() != self.pid:
            # A process forked by user code finished the cell; only the server
            # itself may answer the host.
            os._exit(0)
        os.write(self.saved_stdout_fd, marker)
        os.write(self.saved_stderr_fd, marker)

    def serve(self) -> None:
        while True:
            request = self.channel.receive()
            if request is None or request.get("type") == "exit":
                return
            kind = request.get("type")
            marker = str(request.get("marker", "")).encode()
            self._restore_streams()
            if kind == "run":
                reply = self._run_python(str(request.get("code", "")))
            elif kind == "shell":
                reply = self._run_shell(str(request.get("command", "")), float(request.get("timeout", 30.0)))
            else:
                reply = {"error": f"unknown request type {kind!r}", "exit_code": None, "timed_out": False}
            self._end_run(marker)
            reply.update(type="done", id=request.get("id"))
            self.channel.send(reply)

    def _run_python(self, code: str) -> dict[str, Any]:
        self.cell_count += 1
        # Files written since the last run (by the host or by code) must be importable now.
        importlib.invalidate_caches()
        filename = f"<cell {self.cell_count}>"
        # Kept so tracebacks can show the failing line, even of an earlier cell.
        self.sources[filename] = code
        try:
            tree = compile(code, filename, "exec", _ast.PyCF_ONLY_AST)
            assert isinstance(tree, _ast.Module)
            last_expression: _ast.Expression | None = None
            last_statement = tree.body[-1] if tree.body else None
            if isinstance(last_statement, _ast.Expr):
                tree.body.pop()
                last_expression = _ast.Expression(last_statement.value)
            exec(compile(tree, filename, "exec"), self.namespace)
            if last_expression is not None:
                value = eval(compile(last_expression, filename, "eval"), self.namespace)
                if value is not None:
                    print(repr(value))
        except BaseException as exc:  # noqa: BLE001 - SystemExit and friends are the user's too
            return {"error": self._format_exception(exc), "exit_code": 1, "timed_out": False}
        return {"error": None, "exit_code": 0, "timed_out": False}

    def _format_exception(self, exc: BaseException) -> str:
        import linecache
        import traceback

        for filename, source in self.sources.items():
            linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
        try:
            report = traceback.TracebackException(type(exc), exc, exc.__traceback__, compact=True)
            _hide_server_frames(report)
            text = "".join(report.format())
        except Exception as format_error:  # noqa: BLE001 - a hostile __str__ must not kill the server
            text = f"{type(exc).__name__} (its message could not be formatted: {format_error!r})"
        if len(text) > self.max_error_chars:
            keep = self.max_error_chars // 2
            text = f"{text[:keep]}\n[... {len(text) - 2 * keep} characters cut ...]\n{text[-keep:]}"
        return text

    def _run_shell(self, command: str, timeout: float) -> dict[str, Any]:
        import signal
        import subprocess

        try:
            process = subprocess.Popen(["/bin/sh", "-c", command], stdin=subprocess.DEVNULL, start_new_session=True)
        except OSError as exc:
            return {"error": f"could not start the shell: {exc}", "exit_code": None, "timed_out": False}
        try:
            exit_code = process.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(OSError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            return {
                "error": f"The command timed out after {timeout:g} s and was killed.",
                "exit_code": None,
                "timed_out": True,
            }
        error = None if exit_code == 0 else f"The command exited with status {exit_code}."
        if exit_code < 0:
            error = f"The command was killed by signal {-exit_code}."
        return {"error": error, "exit_code": exit_code, "timed_out": False}


def _hide_server_frames(report: traceback.TracebackException) -> None:
    """Drop this file's frames (exec, host-API plumbing) so the model sees only its own code."""
    import traceback

    seen: set[int] = set()
    pending = [report]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        current.stack = traceback.StackSummary.from_list(
            [frame for frame in current.stack if frame.filename not in _HIDDEN_FILES]
        )
        pending += [linked for linked in (current.__cause__, current.__context__) if linked is not None]


def _apply_limits(rlimits: list[list[int]]) -> None:
    for which, value in rlimits:
        resource.setrlimit(which, (value, value))


def _load_seccomp(program: bytes) -> None:
    """What bubblewrap's --seccomp does, for a session started without it."""
    import ctypes

    pr_set_no_new_privs, pr_set_seccomp, seccomp_mode_filter = 38, 22, 2

    class _Program(ctypes.Structure):
        _fields_ = [("length", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    instructions = ctypes.create_string_buffer(program, len(program))
    filter_program = _Program(len(program) // 8, ctypes.addressof(instructions))
    address = ctypes.addressof(filter_program)
    # No new privileges: what an unprivileged process must promise to load a filter.
    loaded = libc.prctl(pr_set_no_new_privs, 1, 0, 0, 0) == 0 and (
        libc.prctl(pr_set_seccomp, seccomp_mode_filter, address, 0, 0) == 0
    )
    if not loaded:
        raise SystemExit(f"retinue sandbox: could not load the seccomp filter: {os.strerror(ctypes.get_errno())}")


def _drop_privileges(uid: int, gid: int) -> None:
    if os.geteuid() != 0:
        return
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    if 0 in os.getresuid() or 0 in os.getresgid():
        raise SystemExit("retinue sandbox: could not give up root")


def _reach_through(descriptors: dict[str, int]) -> None:
    """Lead every path under these host directories through their descriptors (see the host's unprivileged_python)."""
    import ctypes

    pid = os.getpid()
    replacements = {original: f"/proc/{pid}/fd/{fd}" for original, fd in descriptors.items()}

    def translate(path: str) -> str:
        for original, replacement in replacements.items():
            if path == original or path.startswith(f"{original}/"):
                return replacement + path[len(original) :]
        return path

    # Dumpable again (giving up root made it not), so the processes this
    # session starts, of the same uid, may follow its /proc/PID/fd links.
    pr_set_dumpable = 4
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    if libc.prctl(pr_set_dumpable, 1, 0, 0, 0) != 0:
        raise SystemExit(f"retinue sandbox: could not share its descriptors: {os.strerror(ctypes.get_errno())}")
    sys.path[:] = [translate(entry) for entry in sys.path]
    # Packages imported already look for their submodules in their own __path__.
    for module in list(sys.modules.values()):
        search_path = getattr(module, "__path__", None)
        if isinstance(search_path, list):
            search_path[:] = [translate(entry) for entry in search_path]
    sys.executable = translate(sys.executable)
    for name in ("PATH", "PYTHONPATH"):
        os.environ[name] = ":".join(translate(entry) for entry in os.environ.get(name, "").split(":"))
    home = translate(sys.base_prefix)
    if home != sys.base_prefix:
        # For a `python` started from here: its own idea of its prefix, and of
        # where its shared library is, would name the unreachable path.
        os.environ["PYTHONHOME"] = home
        os.environ["LD_LIBRARY_PATH"] = f"{home}/lib"


def main() -> None:
    config = json.loads(sys.argv[1])
    _apply_limits(config["rlimits"])
    # Before giving up root, which can pass through any directory on the way.
    os.chdir(config["cwd"])
    if config.get("seccomp") or config.get("reach_through"):
        # While the interpreter's own directory is still readable: it may not be after the uid changes.
        import ctypes  # noqa: F401
    if config.get("drop_privileges"):
        _drop_privileges(int(config["uid"]), int(config["gid"]))
    if config.get("seccomp"):
        _load_seccomp(bytes.fromhex(config["seccomp"]))
    # -S skipped site.py (and its .pth hooks, which cost tens of ms); the
    # host tells us where its packages are instead.
    sys.path.extend(path for path in config["sys_path"] if path not in sys.path)
    if config.get("reach_through"):
        _reach_through(config["reach_through"])
    # As in a notebook, modules written to the working directory are
    # importable; then the host-API module, where `python script.py` finds
    # them too (script directory first, PYTHONPATH next).
    sys.path[:0] = [config["cwd"], config["host_api_dir"]]
    _HIDDEN_FILES.add(config["host_api_file"])
    control_fd = int(config["control_fd"])
    os.set_inheritable(control_fd, False)
    channel = _Channel(control_fd)
    server = _Server(channel, int(config["max_error_chars"]))
    # Lower priority than the host: a CPU-hungry script (a fork bomb, say)
    # slows itself down, not the agents and the event loop that supervise it.
    os.nice(int(config["nice"]))
    channel.send({"type": "ready", "pid": os.getpid(), "uid": os.getuid()})
    server.serve()


if __name__ == "__main__":
    main()
