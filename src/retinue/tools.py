"""Tools: typed Python functions the model can call.

`@tool` turns a function into a `Tool`. The JSON schema the model sees comes
from the type hints (through pydantic) and the docstring: the text before its
first section is the description, its `Args:` section (or Sphinx `:param x:`
fields) describes the parameters. Arguments
are validated before the function runs; every failure becomes a message the
model can act on, never a crash of the run (see `loop.execute_tool_call`).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import inspect
import re
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, NewType, TypeAlias, get_type_hints, overload

import pydantic
import pydantic_core

from .errors import ToolDefinitionError, ToolOutputError
from .messages import ToolCall, ToolSchema

if TYPE_CHECKING:
    from .run_context import RunContext

DEFAULT_MAX_OUTPUT_CHARS = 20_000
_NAME_PATTERN = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")

ToolEffect: TypeAlias = Literal["read", "write", "local"]
"""What a tool does to the world, which decides what a resumed run does with its calls (see `Tool`)."""

TOOL_EFFECTS: tuple[ToolEffect, ...] = ("read", "write", "local")

ReplayHook: TypeAlias = "Callable[[RunContext, ToolCall, str], None]"
"""Called with (context, call, idempotency key) when a resumed run reuses a call's recorded output."""

IdempotencyKey = NewType("IdempotencyKey", str)
"""Annotate a tool parameter with this to receive the call's idempotency key (hidden from the model).

The key is the same every time this call runs: when a resumed run runs it again, and when the tool retries
inside one run. Pass it to the service the tool writes to (an `Idempotency-Key` header, a unique column), so
that a call repeated after a crash takes effect once.
"""


@dataclass(slots=True, eq=False)
class Tool:
    """A callable the model can use, with the schema it is shown.

    `function` receives validated keyword arguments, plus the `RunContext`
    under `context_parameter` and the `ToolCall` under `call_parameter` when
    it asked for them (by annotating a parameter with that type), and the call's `IdempotencyKey` under
    `key_parameter`. Architectures build tools directly with a hand-made `args_model`; most users only ever
    write `@tool`.

    `effect` says what a call does to the world, for a run that is resumed from its journal:
    - "read" only looks (a search, a lookup). Its recorded result is reused; a call cut off before its
      result was recorded is simply run again.
    - "write" changes something outside the process (books, pays, sends, writes a file). Its recorded
      result is reused; a call cut off mid-way may have taken effect, so it is run again only when the tool is
      `idempotent` (with the same idempotency key), and otherwise the run's approver is asked.
    - "local" changes nothing but this process's memory, and is run again on every resume to rebuild that
      memory (pure functions, counters, tools that only start sub-agents, whose runs journal themselves).
    The default is "write": a tool that says nothing about its effects is never run twice without asking.

    `replay`, if set, is called when a resumed run reuses a recorded output of this tool instead of running
    it, with the call and its idempotency key: for a tool that also keeps something in memory, to rebuild it.
    """

    name: str
    description: str
    function: Callable[..., Any]
    args_model: type[pydantic.BaseModel]
    context_parameter: str | None = None
    call_parameter: str | None = None
    timeout: float | None = None
    requires_approval: bool = False
    max_output_chars: int | None = None
    run_in_thread: bool = True
    effect: ToolEffect = "write"
    idempotent: bool = False
    key_parameter: str | None = None
    replay: ReplayHook | None = None
    schema: ToolSchema = field(init=False)

    def __post_init__(self) -> None:
        if not _NAME_PATTERN.match(self.name):
            raise ToolDefinitionError(
                f"Tool name {self.name!r} is not allowed: providers accept 1-64 letters, digits, '_' or '-'. "
                "Pass name=... to @tool."
            )
        if self.effect not in TOOL_EFFECTS:
            raise ToolDefinitionError(
                f"Tool {self.name!r}: effect={self.effect!r}; give one of {', '.join(map(repr, TOOL_EFFECTS))}."
            )
        if self.idempotent and self.effect != "write":
            raise ToolDefinitionError(
                f"Tool {self.name!r}: idempotent=True is for effect='write' tools (a {self.effect!r} tool is "
                "already safe to run again); drop it or declare effect='write'."
            )
        self.schema = ToolSchema(self.name, self.description, _compact_schema(self.args_model))

    @property
    def runs_in_thread(self) -> bool:
        """Whether a call runs in a thread, which a timeout or cancellation cannot stop."""
        return self.run_in_thread and not inspect.iscoroutinefunction(self.function)

    def validate(self, arguments: dict[str, Any]) -> pydantic.BaseModel:
        """The call's arguments, checked and converted. Raises pydantic.ValidationError."""
        return self.args_model.model_validate(arguments)

    async def call(
        self, arguments: pydantic.BaseModel, call: ToolCall, context: RunContext, key: str | None = None
    ) -> Any:
        """Run the function on validated arguments. `key` is the call's idempotency key, when it asked for one."""
        kwargs = {name: getattr(arguments, name) for name in type(arguments).model_fields}
        if self.context_parameter is not None:
            kwargs[self.context_parameter] = context
        if self.call_parameter is not None:
            kwargs[self.call_parameter] = call
        if self.key_parameter is not None:
            kwargs[self.key_parameter] = key
        if inspect.iscoroutinefunction(self.function):
            return await self.function(**kwargs)
        if self.run_in_thread:
            # A sync tool may block (file or network I/O); a thread keeps the other agents moving.
            result = await run_in_daemon_thread(self.function, kwargs, name=f"retinue-tool-{self.name}")
        else:
            result = self.function(**kwargs)
        if inspect.isawaitable(result):  # a sync wrapper around an async function
            return await result
        return result


async def run_in_daemon_thread(function: Callable[..., Any], kwargs: dict[str, Any], *, name: str) -> Any:
    """`function(**kwargs)` in a new daemon thread, with the caller's context variables.

    Unlike `asyncio.to_thread`, nothing waits for the thread: a thread cannot be
    killed, so a call that timed out or was cancelled is abandoned (it may still
    finish in the background), and neither `asyncio.run` nor the interpreter's
    exit waits for it, as they would for the default executor's threads.
    """
    loop = asyncio.get_running_loop()
    done: asyncio.Future[Any] = loop.create_future()
    context = contextvars.copy_context()

    def settle(value: Any, error: BaseException | None) -> None:
        if done.done():  # the caller stopped waiting
            return
        if error is None:
            done.set_result(value)
        else:
            done.set_exception(error)

    def work() -> None:
        value: Any = None
        error: BaseException | None = None
        try:
            value = context.run(function, **kwargs)
        except BaseException as exc:  # noqa: BLE001 - SystemExit and the like are the caller's to judge
            error = exc
        with contextlib.suppress(RuntimeError):  # the loop has closed: an abandoned call nobody waits for
            loop.call_soon_threadsafe(settle, value, error)

    threading.Thread(target=work, name=name, daemon=True).start()
    return await done


ToolFunction = Callable[..., Any] | Callable[..., Awaitable[Any]]


@overload
def tool(function: ToolFunction, /) -> Tool: ...


@overload
def tool(
    *,
    name: str | None = None,
    description: str | None = None,
    timeout: float | None = None,
    requires_approval: bool = False,
    max_output_chars: int | None = None,
    run_in_thread: bool = True,
    effect: ToolEffect = "write",
    idempotent: bool = False,
) -> Callable[[ToolFunction], Tool]: ...


def tool(
    function: ToolFunction | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    timeout: float | None = None,
    requires_approval: bool = False,
    max_output_chars: int | None = None,
    run_in_thread: bool = True,
    effect: ToolEffect = "write",
    idempotent: bool = False,
) -> Tool | Callable[[ToolFunction], Tool]:
    """Make a tool from a typed function, sync or async. Use as `@tool` or `@tool(...)`.

    `requires_approval` marks a consequential action (booking, paying, deleting):
    the run asks its approver before calling it. `run_in_thread=False` runs a
    sync function directly on the event loop, for functions known not to block.
    `effect` ("read", "write" or "local", default "write") and `idempotent` say
    what a resumed run may do with a call cut off mid-way (see `Tool`); a
    parameter annotated `IdempotencyKey` receives the call's stable key.
    """

    def build(fn: ToolFunction) -> Tool:
        return tool_from_function(
            fn,
            name=name,
            description=description,
            timeout=timeout,
            requires_approval=requires_approval,
            max_output_chars=max_output_chars,
            run_in_thread=run_in_thread,
            effect=effect,
            idempotent=idempotent,
        )

    return build(function) if function is not None else build


def tool_from_function(
    fn: ToolFunction,
    *,
    name: str | None = None,
    description: str | None = None,
    timeout: float | None = None,
    requires_approval: bool = False,
    max_output_chars: int | None = None,
    run_in_thread: bool = True,
    effect: ToolEffect = "write",
    idempotent: bool = False,
) -> Tool:
    from .run_context import RunContext

    tool_name = name or fn.__name__
    summary, param_docs = parse_docstring(inspect.getdoc(fn) or "")
    try:
        hints = get_type_hints(fn)
    except NameError as exc:
        raise ToolDefinitionError(f"Tool {tool_name!r}: a type hint cannot be resolved ({exc}).") from exc
    fields: dict[str, Any] = {}
    context_parameter: str | None = None
    call_parameter: str | None = None
    key_parameter: str | None = None
    for param in inspect.signature(fn).parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise ToolDefinitionError(
                f"Tool {tool_name!r}: *{param.name} / **{param.name} cannot be described to a model; "
                "list the parameters explicitly."
            )
        hint = hints.get(param.name)
        if hint is None:
            raise ToolDefinitionError(
                f"Tool {tool_name!r}: parameter {param.name!r} has no type hint; "
                "add one so the model knows what to send."
            )
        if hint is RunContext:
            context_parameter = param.name
            continue
        if hint is ToolCall:
            call_parameter = param.name
            continue
        if hint is IdempotencyKey:
            key_parameter = param.name
            continue
        default = ... if param.default is param.empty else param.default
        fields[param.name] = (hint, pydantic.Field(default, description=param_docs.get(param.name)))
    try:
        args_model = pydantic.create_model(f"{tool_name}_arguments", **fields)
    except (pydantic.PydanticUserError, pydantic.PydanticSchemaGenerationError, NameError, TypeError) as exc:
        raise ToolDefinitionError(f"Tool {tool_name!r}: the parameters cannot be described to a model: {exc}") from exc
    return Tool(
        name=tool_name,
        description=description if description is not None else summary,
        function=fn,
        args_model=args_model,
        context_parameter=context_parameter,
        call_parameter=call_parameter,
        timeout=timeout,
        requires_approval=requires_approval,
        max_output_chars=max_output_chars,
        run_in_thread=run_in_thread,
        effect=effect,
        idempotent=idempotent,
        key_parameter=key_parameter,
    )


def as_tool(item: Tool | ToolFunction) -> Tool:
    """Accept a Tool or a plain function wherever tools are listed."""
    if isinstance(item, Tool):
        return item
    if callable(item):
        return tool_from_function(item)
    raise ToolDefinitionError(f"{item!r} is neither a Tool nor a function; decorate it with @tool.")


_SECTION = re.compile(r"^(Args|Arguments|Parameters|Returns|Return|Raises|Yields|Examples?|Notes?):\s*$")
_GOOGLE_PARAM = re.compile(r"^\s+(\*{0,2}\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$")
_SPHINX_PARAM = re.compile(r"^:param\s+(?:[^:]*\s)?(\w+):\s*(.*)$")


def parse_docstring(doc: str) -> tuple[str, dict[str, str]]:
    """Split a docstring into the description and per-parameter descriptions.

    Understands Google style (`Args:` sections) and Sphinx style (`:param x:`).
    """
    description: list[str] = []
    params: dict[str, str] = {}
    section: str | None = None
    current: str | None = None
    for line in doc.splitlines():
        header = _SECTION.match(line.strip())
        if header and not line.startswith((" ", "\t")):
            section, current = header.group(1), None
            continue
        sphinx = _SPHINX_PARAM.match(line.strip())
        if sphinx:
            current = sphinx.group(1)
            params[current] = sphinx.group(2).strip()
            section = "Args"
            continue
        if section is not None and line.strip().startswith(":"):
            # :type x:, :returns:, :rtype:, :raises ...: end the parameter being described.
            section, current = "fields", None
            continue
        if section is None:
            if line.strip().startswith(":"):
                section = "fields"
                continue
            description.append(line)
        elif section in ("Args", "Arguments", "Parameters"):
            google = _GOOGLE_PARAM.match(line)
            if google and (current is None or _indent(line) <= _param_indent(doc)):
                current = google.group(1).lstrip("*")
                params[current] = google.group(2).strip()
            elif current is not None and line.strip():
                params[current] = f"{params[current]} {line.strip()}".strip()
    return "\n".join(description).strip(), params


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _param_indent(doc: str) -> int:
    for line in doc.splitlines():
        if _GOOGLE_PARAM.match(line):
            return _indent(line)
    return 0


def _compact_schema(args_model: type[pydantic.BaseModel]) -> dict[str, Any]:
    # Titles repeat the parameter names; dropping them saves tokens on every request.
    schema = args_model.model_json_schema()
    schema.pop("title", None)
    for prop in schema.get("properties", {}).values():
        if isinstance(prop, dict):
            prop.pop("title", None)
    for definition in schema.get("$defs", {}).values():
        if isinstance(definition, dict):
            for prop in definition.get("properties", {}).values():
                if isinstance(prop, dict):
                    prop.pop("title", None)
    return schema


def render_tool_output(value: Any) -> str:
    """The text a model reads for a tool's return value."""
    if isinstance(value, str):
        return value
    if value is None:
        return "Done (the tool returned no output)."
    if isinstance(value, bytes | bytearray | memoryview):
        # pydantic would raise on bytes that are not UTF-8; say what came back rather than fail.
        data = bytes(value)
        try:
            return data.decode()
        except UnicodeDecodeError as exc:
            raise ToolOutputError(
                f"the tool returned {len(data)} bytes that are not UTF-8 text ({exc.reason} at byte {exc.start})"
            ) from exc
    try:
        return pydantic_core.to_json(value, fallback=str).decode()
    except Exception as exc:  # a __str__ or serializer that raises, a value JSON cannot hold
        raise ToolOutputError(
            f"the tool's return value (a {type(value).__name__}) could not be turned into text: "
            f"{type(exc).__name__}: {exc}"
        ) from exc


def truncate_output(text: str, max_chars: int) -> str:
    """Keep the head and the tail of an over-long output, saying how much was cut."""
    if len(text) <= max_chars:
        return text
    tail = max_chars // 5
    head = max_chars - tail
    cut = len(text) - head - tail
    return (
        f"{text[:head]}\n[... {cut} of {len(text)} characters cut here to fit the output limit ...]\n"
        f"{text[len(text) - tail :] if tail else ''}"
    )
