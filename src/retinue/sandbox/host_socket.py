"""The unix socket on which the host answers host-API calls from any process in the sandbox.

The session, a ``python script.py`` started from the shell, its subprocesses
and forked workers all import the same generated module (guest/host_client), which
connects here. The socket lives in the sandbox's private (0700) state
directory and bubblewrap binds that one file read-only into the sandbox:
only that sandbox can reach it, and none of its code can remove or replace
it. It is not network: the sandbox's network namespace still holds only
loopback.

Every client is untrusted and may be hostile, so each connection is
contained. A request is one JSON line of at most ``MAX_REQUEST_BYTES``;
anything malformed gets one error line and that connection is closed, which
no other connection notices; so does a connection that sends no request
for ``idle_timeout_seconds``. A connection has one call in progress at a
time, and reading from it pauses meanwhile, so whatever it pipelines waits
in the kernel's socket buffer, not in host memory. Calls across the sandbox
are capped, and so are open connections: past the cap the host stops
accepting, and new clients wait in the listen queue (their calls are late,
never wrong) instead of costing host descriptors. One process may hold only
``2 * MAX_CONNECTIONS_PER_PROCESS`` of them (the module itself keeps to
half that), so one runaway client cannot take them all. Blocking host
functions run on a thread pool of their own, so a sandbox calling slow
functions cannot starve the event loop's default pool that the rest of the
host uses.

The event loop is shared with every other sandbox and with the agents, so
a sandbox must not be able to buy its time. Only small requests and replies
are decoded and encoded on the loop; larger ones go to one codec thread per
sandbox, so a flood of them queues behind itself there, not in front of
another sandbox's calls on the loop. And each sandbox draws on a budget of
calls and request bytes (see host_limits): the request that overdraws it is
held until the budget could cover it again, then refused with a line saying
why, and its connection closed (the request was never decoded, so it has no
id to answer). Held connections read nothing, so a flooding sandbox costs
the host at most its budget's rate, and its other calls are served again as
soon as the budget allows.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import socket
import struct
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .errors import SandboxStartError
from .host_bridge import HostBridge, ProtocolError, decodes_quickly, error_line, parse_call
from .host_limits import DEFAULT_HOST_API_LIMITS, MAX_REQUEST_BYTES, HostApiBudget, HostApiLimits

__all__ = ["MAX_CONNECTIONS_PER_PROCESS", "MAX_REQUEST_BYTES", "HostApiServer"]

# Told to the module in the sandbox, which never opens more per process.
MAX_CONNECTIONS_PER_PROCESS = 8
# Twice what the module opens: a connection it just closed may still count
# here for a moment, and that must never get a well-behaved process refused.
_CONNECTIONS_PER_PROCESS_REFUSED_ABOVE = 2 * MAX_CONNECTIONS_PER_PROCESS
# Open connections per sandbox: the host descriptors and buffers it may cost.
_MAX_CONNECTIONS = 64
_MAX_CONCURRENT_CALLS = 16
_LISTEN_BACKLOG = 64
# After the host itself ran out of descriptors, a pause before accepting again.
_ACCEPT_RETRY_SECONDS = 0.1
_PEER_CREDENTIALS = struct.Struct("3i")


def _peer_pid(connection: socket.socket) -> int | None:
    """The pid of the connecting process (as the host sees it), where the OS tells."""
    option = getattr(socket, "SO_PEERCRED", None)
    if option is None:
        return None
    try:
        pid, _, _ = _PEER_CREDENTIALS.unpack(connection.getsockopt(socket.SOL_SOCKET, option, _PEER_CREDENTIALS.size))
    except (OSError, struct.error):
        return None
    return int(pid)


class HostApiServer:
    """Listens on ``path`` and answers calls with ``bridge`` until closed, within ``limits``.

    The module in the sandbox must be told the same idle timeout
    (``HostBridge.module_source``), or it may reuse a connection this server closed.
    """

    def __init__(
        self,
        bridge: HostBridge,
        path: Path,
        owner: tuple[int, int] | None = None,
        limits: HostApiLimits = DEFAULT_HOST_API_LIMITS,
    ) -> None:
        self.path = path
        self.limits = limits
        self._bridge = bridge
        self._owner = owner
        self._budget = HostApiBudget(limits)
        self._listener: socket.socket | None = None
        self._accepting: asyncio.Task[None] | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._connection_slots = asyncio.Semaphore(_MAX_CONNECTIONS)
        self._per_process: collections.Counter[int] = collections.Counter()
        self._call_slots = asyncio.Semaphore(_MAX_CONCURRENT_CALLS)
        self._executor = ThreadPoolExecutor(max_workers=_MAX_CONCURRENT_CALLS, thread_name_prefix="retinue-host-api")
        # One thread: however many requests this sandbox sends, it keeps at
        # most one thread contending with the loop for the GIL.
        self._codec = ThreadPoolExecutor(max_workers=1, thread_name_prefix="retinue-host-api-codec")
        self._closed = False

    async def start(self) -> None:
        # A socket left by the previous session of this sandbox; the directory is ours alone.
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            listener.bind(str(self.path))
            # Owner-only: the directory already keeps other host users out;
            # inside, the sandbox user is the owner (mapped, or chowned to).
            if self._owner is not None:
                os.chown(self.path, *self._owner)
            os.chmod(self.path, 0o600)
            listener.listen(_LISTEN_BACKLOG)
            listener.setblocking(False)
        except OSError as exc:
            listener.close()
            raise SandboxStartError(
                f"cannot listen for host-API calls on {self.path}: {exc} (a shorter TMPDIR helps "
                "if the path is too long for a unix socket)"
            ) from exc
        self._listener = listener
        self._accepting = asyncio.create_task(self._accept_forever(listener))

    def close(self) -> None:
        """Stop listening and drop every connection; calls in progress are cancelled. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._accepting is not None:
            self._accepting.cancel()
        if self._listener is not None:
            self._listener.close()
        for task in self._connections:
            task.cancel()
        # Threads already running a host function finish it; nothing waits for them.
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._codec.shutdown(wait=False, cancel_futures=True)
        with contextlib.suppress(OSError):
            self.path.unlink()

    async def wait_closed(self) -> None:
        pending = [*self._connections, *([self._accepting] if self._accepting is not None else [])]
        await asyncio.gather(*pending, return_exceptions=True)

    async def _accept_forever(self, listener: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        while True:
            # At the cap, connections wait in the kernel's listen queue, and
            # past that the clients' connect() blocks: backpressure that costs the host nothing.
            await self._connection_slots.acquire()
            try:
                connection, _ = await loop.sock_accept(listener)
            except OSError:
                # Out of descriptors on the host, most likely: try again shortly.
                self._connection_slots.release()
                await asyncio.sleep(_ACCEPT_RETRY_SECONDS)
                continue
            except BaseException:
                self._connection_slots.release()
                raise
            task = asyncio.create_task(self._serve(connection))
            self._connections.add(task)
            task.add_done_callback(self._connection_ended)

    def _connection_ended(self, task: asyncio.Task[None]) -> None:
        self._connections.discard(task)
        self._connection_slots.release()

    async def _serve(self, connection: socket.socket) -> None:
        pid = _peer_pid(connection)
        try:
            reader, writer = await asyncio.open_unix_connection(sock=connection, limit=MAX_REQUEST_BYTES)
        except BaseException:
            connection.close()
            raise
        try:
            if pid is not None and self._per_process[pid] >= _CONNECTIONS_PER_PROCESS_REFUSED_ABOVE:
                await self._refuse(
                    writer,
                    f"one process may keep at most {_CONNECTIONS_PER_PROCESS_REFUSED_ABOVE} connections "
                    "to the host API open",
                )
                return
            if pid is not None:
                self._per_process[pid] += 1
            try:
                await self._answer_calls(reader, writer)
            finally:
                if pid is not None:
                    self._per_process[pid] -= 1
                    if not self._per_process[pid]:
                        del self._per_process[pid]
        except OSError:
            # The client went away mid-reply: its problem alone.
            pass
        finally:
            writer.close()

    async def _answer_calls(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        transport = writer.transport
        assert isinstance(transport, asyncio.Transport)
        idle_timeout = self.limits.idle_timeout_seconds
        while True:
            try:
                async with asyncio.timeout(idle_timeout):
                    line = await reader.readline()
            except TimeoutError:
                await self._refuse(writer, f"no request in {idle_timeout:g} s; connect again to call")
                return
            except ValueError:
                # The reader dropped what it read: about the limit, charged as such.
                if await self._draw_or_refuse(writer, MAX_REQUEST_BYTES):
                    await self._refuse(writer, f"a request longer than {MAX_REQUEST_BYTES:,} bytes")
                return
            if not line:
                return
            transport.pause_reading()
            if not await self._draw_or_refuse(writer, len(line)) or not line.endswith(b"\n"):
                # Over budget, or end of stream in the middle of a line: nothing to answer.
                return
            try:
                request = (
                    parse_call(line)
                    if decodes_quickly(line)
                    else await asyncio.get_running_loop().run_in_executor(self._codec, parse_call, line)
                )
                async with self._call_slots:
                    reply = await self._bridge.answer(request, self._executor, self._codec)
            except ProtocolError as exc:
                await self._refuse(writer, str(exc))
                return
            writer.write(reply)
            await writer.drain()
            transport.resume_reading()

    async def _draw_or_refuse(self, writer: asyncio.StreamWriter, request_bytes: int) -> bool:
        """Charge a request to the budget; if it overdrew it, hold, refuse, and return False."""
        if self._budget.draw(request_bytes):
            return True
        # Held rather than refused at once: a refused client that retries at
        # once would cost the host as much as one that is served.
        await asyncio.sleep(self._budget.seconds_until_covered(request_bytes))
        await self._refuse(writer, self._budget.refusal())
        return False

    @staticmethod
    async def _refuse(writer: asyncio.StreamWriter, reason: str) -> None:
        """Tell the client why (id null: it answers no call) and hang up."""
        with contextlib.suppress(OSError):
            writer.write(error_line(None, "ConnectionError", f"the host closed this connection: {reason}"))
            await writer.drain()
        writer.close()
