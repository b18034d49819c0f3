"""The host-API module as sandboxed code imports it (``import host_api``).

This file is a template: the host copies it, with one ``_install(...)`` line
appended, into a read-only directory on the sandbox's PYTHONPATH, under the
sandbox's module name. Any Python process in the sandbox (the session, a
``python script.py`` from the shell, a subprocess, a forked worker) can then
import it. Each call is one JSON line to the host's unix socket and one JSON
line back; the connection is made on the first call.

Rules for this file, because it runs inside the sandbox as someone else's
module: standard library only, and cheap to import (``_socket``, not
``socket``, which costs milliseconds); every module-level name starts with an
underscore, because the public names belong to the host functions and
``__getattr__`` answers for those that do not exist; no ``typing`` import and
no ``from __future__``, which would leave names like ``annotations`` on the
module.
"""

import _socket
import builtins as _builtins
import itertools as _itertools
import json as _json
import os as _os
import threading as _threading
import time as _time

# Filled in by the line the host appends.
_MODULE = __name__
_SOCKET_PATH = ""
_MAX_REQUEST_BYTES = 0
# Connections one process opens at most (told by the host); more threads
# calling at once wait for one. Between calls it keeps one open: the host
# caps the connections of the whole sandbox, and idle ones must not hold
# back another process.
_MAX_CONNECTIONS = 1
_MAX_IDLE_CONNECTIONS = 1
# The host closes a connection idle this long (told by the host); one idle
# for half of it is replaced rather than reused, so a call never races the host closing it.
_IDLE_TIMEOUT_SECONDS = 60.0
_AVAILABLE = "(none)"
_RECEIVE_BYTES = 65536


class HostError(Exception):
    """A host function failed with an exception that has no built-in equivalent here."""


class _Connection:
    """One socket to the host, used by one thread at a time for one call at a time."""

    def __init__(self) -> None:
        self.sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        try:
            self.sock.connect(_SOCKET_PATH)
        except OSError as exc:
            self.sock.close()
            raise ConnectionError(f"{_MODULE}: cannot reach the host at {_SOCKET_PATH}: {exc.strerror}") from None
        self.pending = b""
        self.idle_since = 0.0

    def exchange(self, line: bytes, call_id: int) -> dict[str, object]:
        self.sock.sendall(line)
        chunks = [self.pending]
        while b"\n" not in chunks[-1]:
            chunk = self.sock.recv(_RECEIVE_BYTES)
            if not chunk:
                raise ConnectionError(f"{_MODULE}: the host closed the connection")
            chunks.append(chunk)
        line, _, self.pending = b"".join(chunks).partition(b"\n")
        reply = _json.loads(line)
        if not isinstance(reply, dict):
            raise ConnectionError(f"{_MODULE}: the host sent an unexpected reply")
        if reply.get("id") != call_id:
            # The host answers a request it could not accept with id null, then hangs up.
            error = reply.get("error")
            message = error.get("message") if isinstance(error, dict) else None
            raise ConnectionError(f"{_MODULE}: {message or 'the host sent a reply to another call'}")
        return reply

    def close(self) -> None:
        self.sock.close()


class _Pool:
    """The connections of this process: an idle one is reused, so a warm call costs one round trip."""

    def __init__(self) -> None:
        self.available = _threading.Condition(_threading.Lock())
        self.idle: list[_Connection] = []
        self.open = 0

    def take(self) -> _Connection:
        stale = None
        with self.available:
            while not self.idle and self.open >= _MAX_CONNECTIONS:
                self.available.wait()
            if self.idle:
                connection = self.idle.pop()
                if _time.monotonic() - connection.idle_since < _IDLE_TIMEOUT_SECONDS / 2:
                    return connection
                # Replaced below by a new one, which takes over its place in `open`.
                stale = connection
            else:
                self.open += 1
        if stale is not None:
            stale.close()
        try:
            return _Connection()
        except BaseException:
            self.give_back(None)
            raise

    def give_back(self, connection: _Connection | None) -> None:
        """Return a connection for reuse, or None for one that was closed or never opened."""
        surplus = None
        with self.available:
            if connection is not None and len(self.idle) < _MAX_IDLE_CONNECTIONS:
                connection.idle_since = _time.monotonic()
                self.idle.append(connection)
            else:
                surplus = connection
                self.open -= 1
            self.available.notify()
        if surplus is not None:
            surplus.close()


_pool = _Pool()
# Ids only need to be unique per connection; one counter for the process is simplest.
_call_ids = _itertools.count(1)


def _forget_connections_after_fork() -> None:
    # A forked child shares its parent's sockets: a reply could reach the
    # wrong process. It closes its copies (the parent's stay open) and
    # connects afresh; the lock may have been held by a thread that the
    # fork did not copy, so everything is new.
    global _pool
    for connection in _pool.idle:
        connection.close()
    _pool = _Pool()


_os.register_at_fork(after_in_child=_forget_connections_after_fork)


def _rebuild_error(type_name: str, message: str) -> Exception:
    # Built-in exception types come back as themselves so `except ValueError`
    # works in the sandbox; anything else becomes HostError naming the type.
    builtin = getattr(_builtins, type_name, None)
    if isinstance(builtin, type) and issubclass(builtin, Exception):
        try:
            return builtin(message)
        except TypeError:
            pass
    return HostError(f"{type_name}: {message}")


def _call(name: str, args: list[object], kwargs: dict[str, object]) -> tuple[object, Exception | None]:
    """The host function's result, or the exception to raise in the caller's frame."""
    call_id = next(_call_ids)
    try:
        line = _json.dumps({"type": "call", "id": call_id, "name": name, "args": args, "kwargs": kwargs}).encode()
    except (TypeError, ValueError) as exc:
        return None, TypeError(
            f"{_MODULE}.{name}() takes only JSON-serializable arguments "
            f"(str, int, float, bool, None, list, dict): {exc}"
        )
    if len(line) >= _MAX_REQUEST_BYTES:
        return None, ValueError(
            f"{_MODULE}.{name}(): the arguments are {len(line):,} bytes as JSON; at most {_MAX_REQUEST_BYTES:,} "
            "can be sent to the host"
        )
    pool = _pool
    connection = pool.take()
    try:
        reply = connection.exchange(line + b"\n", call_id)
    except BaseException:
        # Interrupted or broken mid-call, the connection's state is unknown: never reuse it.
        connection.close()
        pool.give_back(None)
        raise
    pool.give_back(connection)
    if reply.get("ok") is True:
        return reply.get("value"), None
    error = reply.get("error")
    if not isinstance(error, dict):
        error = {}
    return None, _rebuild_error(str(error.get("type", "Exception")), str(error.get("message", "")))


def _make_function(name: str, signature: str, doc: str) -> object:
    def host_function(*args: object, **kwargs: object) -> object:
        value, error = _call(name, list(args), kwargs)
        if error is not None:
            raise error
        return value

    host_function.__name__ = name
    host_function.__qualname__ = name
    host_function.__module__ = _MODULE
    host_function.__doc__ = f"{name}{signature}\n\n{doc}".rstrip()
    return host_function


def __getattr__(attribute: str) -> object:
    raise AttributeError(f"module {_MODULE!r} has no function {attribute!r}; available: {_AVAILABLE}")


def _install(spec_json: str) -> None:
    """Define the host functions of this sandbox; called by the line the host appends."""
    global _SOCKET_PATH, _MAX_REQUEST_BYTES, _MAX_CONNECTIONS, _IDLE_TIMEOUT_SECONDS, _AVAILABLE
    spec = _json.loads(spec_json)
    _SOCKET_PATH = spec["socket"]
    _MAX_REQUEST_BYTES = spec["max_request_bytes"]
    _MAX_CONNECTIONS = spec["max_connections"]
    _IDLE_TIMEOUT_SECONDS = spec["idle_timeout_seconds"]
    functions = spec["functions"]
    names = [function["name"] for function in functions]
    namespace = globals()
    for function in functions:
        namespace[function["name"]] = _make_function(function["name"], function["signature"], function["doc"])
    listing = "\n".join(f"  {function['name']}{function['signature']}" for function in functions)
    namespace["__doc__"] = f"Functions the host runs for you; arguments and results travel as JSON.\n\n{listing}\n"
    namespace["__all__"] = [*names, "HostError"]
    _AVAILABLE = ", ".join(names) or "(none)"
