"""Host side of the host API: the functions the sandbox may call, and the module that calls them.

Everything that arrives from the sandbox is untrusted: the request is checked
field by field, only registered functions can be reached, and values travel
as JSON (never pickle, which would let the sandbox run code on the host).
Nothing the host keeps secret travels the other way: signatures are shown
without their default values, and known secrets are masked in the host's
error messages (see ``retinue.redact``).

JSON that is large or made of many values is decoded and encoded on a
worker thread (see host_socket), and with care for the GIL, which a worker
thread still shares with the event loop. The standard library's C codec
holds the GIL for a whole document, ~50 ms for 1 MB of numbers, so a
document of many values goes through its pure-Python twin instead, which
is slower but lets go of the GIL every few hundred values: left to the
interpreter, a busy thread hands it over only every 5 ms, and each of the
several steps of another sandbox's call would wait that long.
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
import json.scanner
import keyword
import marshal
import sys
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from pathlib import Path, PurePath
from typing import Any
from urllib.parse import quote, quote_plus

from ..redact import Redactor, secret_values
from .errors import SandboxError
from .host_limits import DEFAULT_HOST_API_LIMITS

_CLIENT_TEMPLATE = Path(__file__).with_name("guest") / "host_client.py"


# JSON this small (in bytes, and in values: a comma or an opening bracket
# each start one at most) costs the loop less to decode or encode than a
# hand-off to a thread (~60 us).
_INLINE_MAX_CHARS = 64 * 1024
_INLINE_MAX_VALUES = 64
# Up to this many values the C codec holds the GIL for about a millisecond;
# past it, the pure-Python codec, which lets go of it as it goes.
_C_CODEC_MAX_VALUES = 5_000
# The pure-Python codec lets go of the GIL after this many values (~0.3 ms of work).
_VALUES_PER_GIL_RELEASE = 200


class ProtocolError(ValueError):
    """A request that is not a well-formed call; its connection is dropped."""


class _Optional:
    """Stands for a default value in a signature shown to the sandbox: ``api_key: str = ...``."""

    def __repr__(self) -> str:
        return "..."


_OPTIONAL = _Optional()


def without_secrets(text: str) -> str:
    """``text`` with every known secret masked: as written, JSON-escaped, and URL-encoded (a key in a query)."""
    secrets = secret_values()
    url_encoded = {quote(secret, safe="") for secret in secrets} | {quote_plus(secret) for secret in secrets}
    return Redactor(secrets | url_encoded)(text)


def public_signature(function: Callable[..., Any]) -> str:
    """``function``'s signature as the sandbox and the model see it: names, kinds and annotations, no defaults.

    A default value is whatever the host configured, an API key say, so each
    one is shown as ``...``: the parameter is optional, its value stays on the host.
    """
    for evaluate in (True, False):
        # Evaluated first, so string annotations read `city: str`, not `city: 'str'`.
        try:
            signature = inspect.signature(function, eval_str=evaluate)
            break
        except (TypeError, ValueError, NameError):
            continue
    else:
        return "(*args, **kwargs)"
    parameters = [
        parameter if parameter.default is parameter.empty else parameter.replace(default=_OPTIONAL)
        for parameter in signature.parameters.values()
    ]
    # Annotations are shown as written; one could still name a secret.
    return without_secrets(str(signature.replace(parameters=parameters)))


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


def _most_values(line: bytes) -> int:
    # Every JSON value but the first of a container follows a comma, and the
    # first follows an opening bracket; commas inside strings only overcount.
    return line.count(b",") + line.count(b"[") + line.count(b"{")


def decodes_quickly(line: bytes) -> bool:
    """Whether ``parse_call(line)`` costs less than handing it to a thread: so few values and bytes."""
    return len(line) <= _INLINE_MAX_CHARS and _most_values(line) <= _INLINE_MAX_VALUES


class _GilReleaser:
    """Counts values as a codec goes, and lets go of the GIL every ``_VALUES_PER_GIL_RELEASE``."""

    __slots__ = ("_values",)

    def __init__(self) -> None:
        self._values = 0

    def count(self) -> None:
        self._values += 1
        if self._values % _VALUES_PER_GIL_RELEASE == 0:
            # Releases the GIL, so a thread waiting for it (the event loop) takes it now.
            time.sleep(0)

    def counting(self, parse: Callable[..., Any]) -> Callable[..., Any]:
        def counted(*args: Any) -> Any:
            self.count()
            return parse(*args)

        return counted


def _decode_json(line: bytes) -> Any:
    text = line.decode("utf-8")
    if _most_values(line) <= _C_CODEC_MAX_VALUES:
        return json.loads(text)
    # A decoder of its own per document: its scanner keeps a memo while it runs.
    decoder = json.JSONDecoder()
    releaser = _GilReleaser()
    # Every value but true, false and null goes through one of these.
    for parser in ("parse_float", "parse_int", "parse_string", "parse_array", "parse_object"):
        setattr(decoder, parser, releaser.counting(getattr(decoder, parser)))
    decoder.scan_once = json.scanner.py_make_scanner(decoder)  # type: ignore[attr-defined]
    return decoder.decode(text)


def parse_call(line: bytes) -> dict[str, Any]:
    """A call request from one JSON line, or ProtocolError; the arguments are checked by ``answer``.

    Costs up to ~0.5 s for 1 MB of small values: call it on the loop only when ``decodes_quickly``.
    """
    try:
        request = _decode_json(line)
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


def _exceeds(value: Any, max_values: int, max_chars: int) -> bool:
    """Whether ``value`` as JSON would hold more than ``max_values`` values or ``max_chars`` characters of strings.

    Stops as soon as it knows, so it costs little however large ``value`` is.
    """
    pending = [value]
    values, chars = 1, 0
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            chars += len(item)
            if chars > max_chars:
                return True
        elif isinstance(item, list | tuple | dict):
            values += 2 * len(item) if isinstance(item, dict) else len(item)
            if values > max_values:
                return True
            pending.extend(item)
            if isinstance(item, dict):
                pending.extend(item.values())
        elif not (item is None or isinstance(item, bool | int | float)):
            # A dataclass, a pydantic model...: its size is unknown until `_jsonable` converts it.
            return True
    return False


def encodes_quickly(value: Any) -> bool:
    """Whether ``reply_line`` for ``value`` costs less than handing it to a thread."""
    return not _exceeds(value, _INLINE_MAX_VALUES, _INLINE_MAX_CHARS)


def reply_line(call_id: int, value: Any) -> bytes:
    """A successful call's reply as a JSON line; TypeError or ValueError if ``value`` is not JSON.

    Costs up to ~0.5 s for 1 MB of small values: call it on the loop only when ``encodes_quickly``.
    """
    reply = {"type": "reply", "id": call_id, "ok": True, "value": value}
    encoder = json.JSONEncoder(default=_jsonable)
    if not _exceeds(value, _C_CODEC_MAX_VALUES, sys.maxsize):
        return encoder.encode(reply).encode() + b"\n"
    # Not one-shot: the pure-Python encoder, a piece (about a value) at a time.
    releaser = _GilReleaser()
    pieces = []
    for piece in encoder.iterencode(reply):
        pieces.append(piece)
        releaser.count()
    return "".join(pieces).encode() + b"\n"


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
        """Name, signature (without default values) and docstring of each function, for the module in the sandbox."""
        return [
            {
                "name": name,
                "signature": public_signature(function),
                "doc": without_secrets(inspect.getdoc(function) or ""),
            }
            for name, function in self._functions.items()
        ]

    def module_source(
        self,
        socket_path: str,
        *,
        max_request_bytes: int,
        max_connections: int,
        idle_timeout_seconds: float = DEFAULT_HOST_API_LIMITS.idle_timeout_seconds,
    ) -> str:
        """Source of the importable module: the client template plus this sandbox's functions and socket.

        The limits are the server's, so the module refuses an oversized call
        with a clear error, never opens more connections than a process may,
        and never reuses a connection the host is about to close as idle.
        """
        spec = {
            "socket": socket_path,
            "max_request_bytes": max_request_bytes,
            "max_connections": max_connections,
            "idle_timeout_seconds": idle_timeout_seconds,
            "functions": self.describe(),
        }
        # repr() of the JSON text is a plain string literal: nothing in a
        # docstring or signature can turn into code.
        return f"{_client_template()}\n_install({json.dumps(spec)!r})\ndel _install\n"

    async def answer(
        self, request: Mapping[str, Any], executor: Executor | None = None, codec: Executor | None = None
    ) -> bytes:
        """Run one call request (from ``parse_call``) and return the reply as a JSON line.

        Blocking functions run on ``executor``, and a reply too large to
        encode on the loop is encoded on ``codec`` (the loop's default
        executor if None). An error's message reaches the sandbox with known
        secrets masked: a host exception often quotes a URL with its key.
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
            return error_line(call_id, type(exc).__name__, without_secrets(str(exc)))
        try:
            if encodes_quickly(value):
                return reply_line(call_id, value)
            return await asyncio.get_running_loop().run_in_executor(codec, reply_line, call_id, value)
        except (TypeError, ValueError, RecursionError) as exc:
            return error_line(
                call_id,
                "TypeError",
                without_secrets(f"{self.module_name}.{name}() returned a value that is not JSON: {exc}"),
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
