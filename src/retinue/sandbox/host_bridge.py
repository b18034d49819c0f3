"""Host side of the host API: the functions the sandbox may call, and the module that calls them.

Everything that arrives from the sandbox is untrusted: the request is checked
field by field, only registered functions can be reached, and values travel
as JSON (never pickle, which would let the sandbox run code on the host).
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import datetime
import functools
import importlib.util
import inspect
import json
import keyword
import marshal
import sys
from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from pathlib import Path, PurePath
from typing import Any

from .errors import SandboxError

_CLIENT_TEMPLATE = Path(__file__).with_name("host_client.py")


class ProtocolError(ValueError):
    """A request that is not a well-formed call; its connection is dropped."""


@functools.cache
def _client_template() -> str:
    return _CLIENT_TEMPLATE.read_text(encoding="utf-8")


@functools.lru_cache(maxsize=32)
def compiled_module(source: str) -> bytes:
    """``source`` as a .pyc, so each process in the sandbox imports it without compiling it (~2 ms).

    Hash-checked: the importer hashes the source it finds and uses this only
    if it matches, so a stale file can never stand in for the real module.
    Cached, because a sandbox's module is the same at every restart.
    """
    data = source.encode("utf-8")
    # Flags 0b11: hash-based, check the source (PEP 552).
    header = importlib.util.MAGIC_NUMBER + (0b11).to_bytes(4, "little") + importlib.util.source_hash(data)
    return header + marshal.dumps(compile(data, "<host api>", "exec", dont_inherit=True))


def parse_call(line: bytes) -> dict[str, Any]:
    """A call request from one JSON line, or ProtocolError; the arguments are checked by ``answer``."""
    try:
        request = json.loads(line)
    except (ValueError, RecursionError) as exc:
        # ValueError covers bad JSON, bad UTF-8 and integers too long to
        # convert; RecursionError, nesting deep enough to exhaust the stack.
        raise ProtocolError(f"a request that is not JSON ({type(exc).__name__})") from None
    if not isinstance(request, dict) or request.get("type") != "call":
        raise ProtocolError('a request must be a JSON object with "type": "call"')
    call_id = request.get("id")
    if not isinstance(call_id, int) or isinstance(call_id, bool):
        raise ProtocolError("a call request needs an integer id")
    return request


def _jsonable(value: Any) -> Any:
    # Common return types of host APIs that JSON does not know natively.
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, (set, frozenset)):
        return list(value)
    if isinstance(value, PurePath):
        return str(value)
    model_dump = getattr(value, "model_dump", None)
    if callable(model_dump):
        return model_dump(mode="json")
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def error_line(call_id: int | None, type_name: str, message: str) -> bytes:
    """A failed call's reply; id None for a request that could not be read at all."""
    reply = {"type": "reply", "id": call_id, "ok": False, "error": {"type": type_name, "message": message}}
    return json.dumps(reply).encode() + b"\n"


class HostBridge:
    """The functions exposed to the sandbox as one importable module."""

    def __init__(self, functions: Mapping[str, Callable[..., Any]] | None, module_name: str) -> None:
        if not module_name.isidentifier() or keyword.iskeyword(module_name):
            raise SandboxError(f"host_module must be a valid Python module name, got {module_name!r}")
        if module_name in sys.stdlib_module_names:
            raise SandboxError(
                f"host_module {module_name!r} would hide the standard library module of that name; choose another"
            )
        self.module_name = module_name
        self._functions: dict[str, Callable[..., Any]] = {}
        for name, function in (functions or {}).items():
            if not name.isidentifier() or keyword.iskeyword(name) or name.startswith("_") or name == "HostError":
                raise SandboxError(
                    f"host function name {name!r} is not usable: names must be public Python identifiers"
                )
            if not callable(function):
                raise SandboxError(f"host function {name!r} is not callable")
            self._functions[name] = function

    @property
    def names(self) -> list[str]:
        return list(self._functions)

    def describe(self) -> list[dict[str, str]]:
        """Name, signature and docstring of each function, for the module built in the sandbox."""
        described = []
        for name, function in self._functions.items():
            signature = "(*args, **kwargs)"
            for evaluate in (True, False):
                # Evaluated first, so string annotations read `city: str`, not `city: 'str'`.
                try:
                    signature = str(inspect.signature(function, eval_str=evaluate))
                    break
                except (TypeError, ValueError, NameError):
                    continue
            described.append({"name": name, "signature": signature, "doc": inspect.getdoc(function) or ""})
        return described

    def module_source(self, socket_path: str, *, max_request_bytes: int, max_connections: int) -> str:
        """Source of the importable module: the client template plus this sandbox's functions and socket.

        The limits are the server's, so the module refuses an oversized call
        with a clear error and never opens more connections than a process may.
        """
        spec = {
            "socket": socket_path,
            "max_request_bytes": max_request_bytes,
            "max_connections": max_connections,
            "functions": self.describe(),
        }
        # repr() of the JSON text is a plain string literal: nothing in a
        # docstring or signature can turn into code.
        return f"{_client_template()}\n_install({json.dumps(spec)!r})\ndel _install\n"

    async def answer(self, request: Mapping[str, Any], executor: Executor | None = None) -> bytes:
        """Run one call request (from ``parse_call``) and return the reply as a JSON line.

        Blocking functions run on ``executor`` (the loop's default if None).
        """
        call_id = request.get("id")
        if not isinstance(call_id, int) or isinstance(call_id, bool):
            raise ProtocolError("a call request needs an integer id")
        name = request.get("name")
        args = request.get("args", [])
        kwargs = request.get("kwargs", {})
        if not isinstance(args, list) or not isinstance(kwargs, dict) or not all(isinstance(k, str) for k in kwargs):
            return error_line(call_id, "TypeError", "malformed call: args must be a list and kwargs a dict")
        function = self._functions.get(name) if isinstance(name, str) else None
        if function is None:
            available = ", ".join(self._functions) or "(none)"
            return error_line(
                call_id, "AttributeError", f"{self.module_name} has no function {name!r}; available: {available}"
            )
        try:
            value = await self._invoke(function, args, kwargs, executor)
        except Exception as exc:  # noqa: BLE001 - every failure goes back to the sandbox as an exception
            return error_line(call_id, type(exc).__name__, str(exc))
        try:
            return (
                json.dumps({"type": "reply", "id": call_id, "ok": True, "value": value}, default=_jsonable).encode()
                + b"\n"
            )
        except (TypeError, ValueError) as exc:
            return error_line(
                call_id, "TypeError", f"{self.module_name}.{name}() returned a value that is not JSON: {exc}"
            )

    @staticmethod
    async def _invoke(
        function: Callable[..., Any], args: list[Any], kwargs: dict[str, Any], executor: Executor | None
    ) -> Any:
        if inspect.iscoroutinefunction(function):
            return await function(*args, **kwargs)
        # Blocking host functions run in a worker thread so the event loop
        # keeps enforcing the run's timeout meanwhile; in the context of the
        # caller, as asyncio.to_thread would.
        context = contextvars.copy_context()
        call = functools.partial(context.run, function, *args, **kwargs)
        result = await asyncio.get_running_loop().run_in_executor(executor, call)
        if inspect.isawaitable(result):
            result = await result
        return result
