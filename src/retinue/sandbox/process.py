"""One running sandboxed interpreter, seen from the host.

Owns the child process, the control socket (JSON lines: run requests out;
ready and done in), the captures of stdout and stderr, and what lives and
dies with the session: its host-API server (see host_socket), its cgroups
(see cgroups) and the watch over its processes (see session_watch).
Everything read from the child is untrusted: a malformed message ends the
session rather than being guessed at.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import signal
import socket
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .cgroups import SessionCgroup
from .errors import SandboxStartError
from .host_socket import HostApiServer
from .limits import SandboxLimits
from .output import StreamCapture
from .session_watch import SessionWatch

# A "done" message carries the run's error text, capped by max_output_chars; bigger is an attack or a bug.
_MAX_MESSAGE_BYTES = 16 * 1024 * 1024
_HAS_PROC = os.path.isdir("/proc/self")
# How often the sandbox's processes together are checked (see SessionWatch).
_WATCH_POLL_SECONDS = 0.1
_IDLE_WATCH_POLL_SECONDS = 0.5
# After "done", how long the host waits for the end markers on stdout/stderr.
_OUTPUT_GRACE_SECONDS = 2.0
# After a crash, how long to collect the last output before giving up on it.
_CRASH_OUTPUT_SECONDS = 0.3


@dataclass
class RunOutcome:
    """What one request produced, before it is turned into an ExecutionResult."""

    stdout: str
    stderr: str
    truncated_chars: int
    error: str | None
    exit_code: int | None
    timed_out: bool
    # Set when the session process is gone after this request (crash, timeout, abort).
    lost_because: str | None


def describe_exit(returncode: int | None, *, via_bubblewrap: bool, cpu_seconds: int) -> str:
    """Why the process ended, as the end of "the session was restarted because ..."."""
    if returncode is None:
        return "its process stopped responding"
    signal_number = -returncode if returncode < 0 else 0
    if via_bubblewrap and 128 < returncode <= 128 + signal.SIGRTMAX:
        # bubblewrap reports a child killed by signal N as exit status 128 + N
        # (and one that stopped without dying, as 255: no signal to name).
        signal_number = returncode - 128
    if signal_number == signal.SIGXCPU:
        return f"it used up its CPU time limit ({cpu_seconds} s of CPU per process)"
    if signal_number == signal.SIGKILL:
        return "its process was killed (SIGKILL)"
    if signal_number:
        try:
            name = signal.Signals(signal_number).name
        except ValueError:
            name = f"signal {signal_number}"
        return f"its process died from {name}"
    return f"its process exited with status {returncode}"


class SessionProcess:
    """A started interpreter; use ``spawn`` to create one."""

    def __init__(
        self,
        process: asyncio.subprocess.Process,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        host_api: HostApiServer | None,
        limits: SandboxLimits,
        *,
        via_bubblewrap: bool,
        cgroup: SessionCgroup | None,
    ) -> None:
        self._process = process
        self._writer = writer
        self._host_api = host_api
        self._limits = limits
        self._via_bubblewrap = via_bubblewrap
        self._cgroup = cgroup
        self.watch = SessionWatch(limits, cgroup, process.pid)
        self.stdout = StreamCapture(limits.max_output_chars)
        self.stderr = StreamCapture(limits.max_output_chars)
        loop = asyncio.get_running_loop()
        self._ready: asyncio.Future[dict[str, Any]] = loop.create_future()
        self._done: asyncio.Future[dict[str, Any]] | None = None
        self._done_id = 0
        # Why the host stopped the process itself (protocol abuse, memory), if it did.
        self._stopped_because: str | None = None
        self._lost_because: str | None = None
        assert process.stdout is not None and process.stderr is not None
        self._tasks = [
            asyncio.create_task(self._pump(process.stdout, self.stdout)),
            asyncio.create_task(self._pump(process.stderr, self.stderr)),
            asyncio.create_task(self._read_control(reader)),
        ]
        self._exited = asyncio.create_task(process.wait())

    @classmethod
    async def spawn(
        cls,
        argv: Sequence[str],
        config: dict[str, Any],
        *,
        host_api: HostApiServer | None,
        limits: SandboxLimits,
        env: Mapping[str, str],
        cwd: str | None,
        via_bubblewrap: bool,
        cgroup: SessionCgroup | None = None,
        enter_cgroup: Callable[[int], None] | None = None,
        pass_fds: Sequence[int] = (),
        startup_timeout: float = 10.0,
    ) -> SessionProcess:
        """Start the interpreter and wait until the session script reports ready.

        ``host_api`` is started first, so the sandbox finds the socket from its
        first line of code; the session owns it from then on and closes it,
        and ``cgroup`` too, which it removes. ``enter_cgroup``, given the
        started process's pid, moves the session into ``cgroup``: it runs in a
        thread while the interpreter starts, and is done before this returns,
        so before any request (the session starts nothing until one arrives).
        """

        def release() -> None:
            if host_api is not None:
                host_api.close()
            if cgroup is not None:
                cgroup.remove()

        try:
            if host_api is not None:
                await host_api.start()
            host_end, child_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        except BaseException:
            release()
            raise
        try:
            config = {**config, "control_fd": child_end.fileno()}
            process = await asyncio.create_subprocess_exec(
                *argv,
                json.dumps(config),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                pass_fds=(child_end.fileno(), *pass_fds),
                env=dict(env),
                cwd=cwd,
                # Its own process group, so a kill reaches whatever it forked.
                start_new_session=True,
            )
        except BaseException:
            host_end.close()
            release()
            raise
        finally:
            child_end.close()
        entering = None if enter_cgroup is None else asyncio.ensure_future(asyncio.to_thread(enter_cgroup, process.pid))
        if entering is not None:
            # Retrieved here if the start fails before it is awaited.
            entering.add_done_callback(lambda task: task.cancelled() or task.exception())
        try:
            reader, writer = await asyncio.open_unix_connection(sock=host_end, limit=_MAX_MESSAGE_BYTES)
        except BaseException:
            host_end.close()
            process.kill()
            release()
            raise
        session = cls(process, reader, writer, host_api, limits, via_bubblewrap=via_bubblewrap, cgroup=cgroup)
        try:
            await session._wait_ready(startup_timeout)
            if entering is not None:
                await session._await_cgroup_entry(entering)
        except BaseException:
            # Cancelled mid-start, say: nothing must be left running.
            session._abandon()
            raise
        # Not earlier: during startup there is nothing to guard, and the
        # polling would only compete with the interpreter for the CPU.
        session.watch.begin()
        session._tasks.append(asyncio.create_task(session._watch_processes()))
        return session

    async def _wait_ready(self, seconds: float) -> None:
        waiting: set[asyncio.Future[Any]] = {self._ready, self._exited}
        finished, _ = await asyncio.wait(waiting, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        if self._ready in finished:
            return
        await self.kill()
        self.stderr.feed_eof()
        await self.stderr.wait_end(_CRASH_OUTPUT_SECONDS)
        stderr, _ = self.stderr.take()
        why = "did not report ready in time" if not finished else f"exited with status {self._process.returncode}"
        raise SandboxStartError(f"the sandboxed Python session {why}; its stderr was:\n{stderr.strip() or '(empty)'}")

    async def _await_cgroup_entry(self, entering: asyncio.Future[None]) -> None:
        try:
            await asyncio.shield(entering)
        except OSError as exc:
            await self.kill()
            raise SandboxStartError(f"could not move the sandboxed session into its cgroup: {exc}") from exc

    @property
    def alive(self) -> bool:
        if self._process.returncode is not None or self._stopped_because is not None or self._lost_because is not None:
            return False
        if not _HAS_PROC:
            return True
        # The event loop learns of the exit only when it next runs its child
        # watcher's callback; the kernel knows already.
        try:
            with open(f"/proc/{self._process.pid}/stat") as stat:
                state = stat.read().rpartition(")")[2].split()[0]
        except (OSError, IndexError):
            return False
        return state not in ("Z", "X")

    def reason_lost_between_runs(self) -> str:
        if self._lost_because is not None:
            return self._lost_because
        return f"{self.exit_reason()} after the previous run"

    def exit_reason(self) -> str:
        if self._stopped_because is not None:
            return self._stopped_because
        # The kernel may have killed the session itself for the memory of the whole group.
        memory = self.watch.memory_reason()
        if memory is not None:
            return memory
        return describe_exit(
            self._process.returncode, via_bubblewrap=self._via_bubblewrap, cpu_seconds=self._limits.cpu_seconds
        )

    async def _pump(self, stream: asyncio.StreamReader, capture: StreamCapture) -> None:
        while data := await stream.read(65536):
            capture.feed(data)
        capture.feed_eof()

    async def _read_control(self, reader: asyncio.StreamReader) -> None:
        try:
            while line := await reader.readline():
                message = json.loads(line)
                if not isinstance(message, dict):
                    raise ValueError("a control message is not a JSON object")
                kind = message.get("type")
                if kind == "ready" and not self._ready.done():
                    self._ready.set_result(message)
                elif kind == "done":
                    if self._done is not None and not self._done.done() and message.get("id") == self._done_id:
                        self._done.set_result(message)
                else:
                    raise ValueError(f"unexpected control message type {kind!r}")
        except (ValueError, RecursionError) as exc:
            # ValueError covers bad JSON and lines over the size limit;
            # RecursionError, JSON nested deep enough to exhaust the stack.
            await self.stop_because(f"it broke the host protocol ({str(exc)[:200]})")

    async def request(self, message: dict[str, Any], seconds: float) -> RunOutcome:
        """Send one run request and wait for its end, the timeout, or the end of the process."""
        marker = f"\x00retinue-end-{secrets.token_hex(8)}\x00"
        self._done_id += 1
        done: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._done = done
        self.stdout.expect(marker)
        self.stderr.expect(marker)
        self._writer.write(json.dumps({**message, "id": self._done_id, "marker": marker}).encode() + b"\n")
        waiting: set[asyncio.Future[Any]] = {done, self._exited}
        try:
            with contextlib.suppress(ConnectionError):
                await self._writer.drain()
            finished, _ = await asyncio.wait(waiting, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            # The caller gave up (its own timeout, say) while the code still
            # runs: stop it now, the next run starts a fresh session.
            self._lost_because = "the previous run was cancelled by the host"
            self._kill_now()
            raise
        finally:
            self._done = None
        if done in finished:
            reply = done.result()
            await asyncio.gather(
                self.stdout.wait_end(_OUTPUT_GRACE_SECONDS), self.stderr.wait_end(_OUTPUT_GRACE_SECONDS)
            )
            error = reply.get("error")
            exit_code = reply.get("exit_code")
            return self._outcome(
                error=error if isinstance(error, str) else None,
                exit_code=exit_code if isinstance(exit_code, int) and not isinstance(exit_code, bool) else None,
                timed_out=reply.get("timed_out") is True,
                lost_because=None,
            )
        if self._exited in finished or not self.alive:
            reason = self.exit_reason()
            await self.kill()
            return await self._outcome_after_loss(
                error=f"The Python process ended: {reason}.", timed_out=False, lost_because=reason
            )
        await self.kill()
        return await self._outcome_after_loss(
            error=f"Timed out: the run was stopped after {seconds:g} s (its wall-clock limit).",
            timed_out=True,
            lost_because=f"the previous run timed out after {seconds:g} s",
        )

    async def _outcome_after_loss(self, *, error: str, timed_out: bool, lost_because: str) -> RunOutcome:
        await asyncio.gather(self.stdout.wait_end(_CRASH_OUTPUT_SECONDS), self.stderr.wait_end(_CRASH_OUTPUT_SECONDS))
        return self._outcome(error=error, exit_code=None, timed_out=timed_out, lost_because=lost_because)

    def _outcome(
        self, *, error: str | None, exit_code: int | None, timed_out: bool, lost_because: str | None
    ) -> RunOutcome:
        stdout, stdout_cut = self.stdout.take()
        stderr, stderr_cut = self.stderr.take()
        return RunOutcome(
            stdout=stdout,
            stderr=stderr,
            truncated_chars=stdout_cut + stderr_cut,
            error=error,
            exit_code=exit_code,
            timed_out=timed_out,
            lost_because=lost_because,
        )

    async def stop_because(self, reason: str) -> None:
        """Kill the session for ``reason``, which the run in progress, or else the next, reports."""
        if self._stopped_because is None:
            self._stopped_because = reason
        await self.kill()

    async def _watch_processes(self) -> None:
        """Stop the session when its processes together pass a limit (see SessionWatch)."""
        while self._process.returncode is None:
            running = self._done is not None
            # Between runs only background processes can grow: look less often.
            await asyncio.sleep(_WATCH_POLL_SECONDS if running else _IDLE_WATCH_POLL_SECONDS)
            reason = await asyncio.to_thread(self.watch.check, idle=self._done is None)
            if reason is not None:
                await self.stop_because(reason)
                return

    def _kill_now(self) -> None:
        # The group outlives its leader while members remain, and the kernel
        # does not hand a pid in use as a group id to a new process. Plain
        # os.kill, not Process.kill: that one polls, reaping the child
        # behind the back of asyncio's child watcher.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._process.pid, signal.SIGKILL)
        if self._process.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(self._process.pid, signal.SIGKILL)

    async def kill(self) -> None:
        """Stop the process and everything it started; idempotent."""
        self._kill_now()
        # Calls still running belong to processes that are gone or going.
        if self._host_api is not None:
            self._host_api.close()
        await self._exited
        self._writer.close()
        if self._cgroup is not None:
            # The group's counters go with it: keep what they say about this death.
            if self._stopped_because is None:
                self._stopped_because = self.watch.memory_reason()
            cgroup, self._cgroup = self._cgroup, None
            # Blocking: it waits, briefly, for the last members of the group to
            # finish exiting. Shielded: a caller cancelled meanwhile (a watch
            # that stopped this session, say) must not leave the group behind.
            await asyncio.shield(asyncio.to_thread(cgroup.remove))

    def _abandon(self) -> None:
        """Kill and let go without waiting: for when awaiting is no longer possible."""
        self._kill_now()
        if self._host_api is not None:
            self._host_api.close()
        for task in self._tasks:
            task.cancel()
        self._writer.close()
        if self._cgroup is not None:
            cgroup, self._cgroup = self._cgroup, None
            cgroup.remove()

    async def close(self) -> None:
        await self.kill()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._host_api is not None:
            await self._host_api.wait_closed()
