"""Host side of the host-API channel: runs the functions the sandbox may call.

Everything that arrives from the sandbox is untrusted: the request is checked
field by field, only registered functions can be reached, and values travel
as JSON (never pickle, which would let the sandbox run code on the host).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import inspect
import json
import keyword
import sys
from collections.abc import Callable, Mapping
from pathlib import PurePath
from typing import Any

from .errors import SandboxError


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


def _error_line(call_id: int, type_name: str, message: str) -> bytes:
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

    async def answer(self, request: Mapping[str, Any]) -> bytes:
        """Run one ``call`` request and return the reply as a JSON line."""
        call_id = request.get("id")
        if not isinstance(call_id, int) or isinstance(call_id, bool):
            raise ValueError("call request without an integer id")
        name = request.get("name")
        args = request.get("args", [])
        kwargs = request.get("kwargs", {})
        if not isinstance(args, list) or not isinstance(kwargs, dict) or not all(isinstance(k, str) for k in kwargs):
            return _error_line(call_id, "TypeError", "malformed call: args must be a list and kwargs a dict")
        function = self._functions.get(name) if isinstance(name, str) else None
        if function is None:
            available = ", ".join(self._functions) or "(none)"
            return _error_line(
                call_id, "AttributeError", f"{self.module_name} has no function {name!r}; available: {available}"
            )
        try:
            value = await self._invoke(function, args, kwargs)
        except Exception as exc:  # noqa: BLE001 - every failure goes back to the sandbox as an exception
            return _error_line(call_id, type(exc).__name__, str(exc))
        try:
            return (
                json.dumps({"type": "reply", "id": call_id, "ok": True, "value": value}, default=_jsonable).encode()
                + b"\n"
            )
        except (TypeError, ValueError) as exc:
            return _error_line(
                call_id, "TypeError", f"{self.module_name}.{name}() returned a value that is not JSON: {exc}"
            )

    @staticmethod
    async def _invoke(function: Callable[..., Any], args: list[Any], kwargs: dict[str, Any]) -> Any:
        if inspect.iscoroutinefunction(function):
            return await function(*args, **kwargs)
        # Blocking host functions run in a worker thread so the event loop
        # keeps enforcing the run's timeout meanwhile.
        result = await asyncio.to_thread(function, *args, **kwargs)
        if inspect.isawaitable(result):
            result = await result
        return result
