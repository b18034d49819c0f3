"""Tools: typed Python functions the model can call.

`@tool` turns a function into a `Tool`. The JSON schema the model sees comes
from the type hints (through pydantic) and the docstring: the text before its
first section is the description, its `Args:` section (or Sphinx `:param x:`
fields) describes the parameters, and `Annotated[int, pydantic.Field(ge=0,
description=...)]` adds constraints and descriptions of its own. Nested types
(models, dataclasses, TypedDicts) are written out inline, never as `$ref`s.
Arguments are validated before the function runs; every failure becomes a
message the model can act on, never a crash of the run (see
`loop.execute_tool_call`).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import inspect
import re
import threading
import time
import typing
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
FAST_CALL_SECONDS = 0.001
"""A sync tool call shorter than this is fast enough to run on the event loop (see `tool`)."""
TIMED_CALLS_IN_THREAD = 3
"""How many calls of a sync tool run in a thread, timed, before its fast calls may run on the event loop."""
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


@dataclass(slots=True)
class SyncCallTiming:
    """How long the calls of a sync tool take, which decides where its next call runs.

    A tool runs on the event loop once its last calls were all fast (each under `FAST_CALL_SECONDS`): there a
    thread's start would cost more than the call. Until then its calls run in threads, timed. The first
    `TIMED_CALLS_IN_THREAD` calls must be fast; a slow call sends the tool back to threads, where it must
    prove fast again over four times as many calls as the last time. So a tool that blocks from the start
    never stalls the loop, one that turns slow stalls it once and stays in threads while it is slow, and one
    that was slow by accident (a busy machine preempted it) comes back to the loop after a few calls.
    """

    fast_in_a_row: int = 0
    slow_calls: int = 0

    def proven_fast(self) -> bool:
        needed = TIMED_CALLS_IN_THREAD << 2 * min(self.slow_calls, 16)  # four times as many per slow call
        return self.fast_in_a_row >= needed

    def timed(self, function: Callable[..., Any]) -> Callable[..., Any]:
        def run(**kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return function(**kwargs)
            finally:
                # Plain stores from any thread: a count lost to a race only delays the choice by a call.
                if time.perf_counter() - started > FAST_CALL_SECONDS:
                    self.slow_calls += 1
                    self.fast_in_a_row = 0
                else:
                    self.fast_in_a_row += 1

        return run


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

    `strict` (see `validate`) and `run_in_thread` (see `tool`) left at None follow the agent and the default.
    A `Tool` can be called as the function it wraps: `get_weather("Paris", "2026-12-12")` runs the function
    directly, with no validation, approval or timeout (an async function gives its coroutine).
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
    run_in_thread: bool | None = None
    effect: ToolEffect = "write"
    idempotent: bool = False
    key_parameter: str | None = None
    replay: ReplayHook | None = None
    strict: bool | None = None
    schema: ToolSchema = field(init=False)
    _timing: SyncCallTiming = field(init=False, repr=False, default_factory=SyncCallTiming)

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
        self.schema = ToolSchema(self.name, self.description, inline_schema(self.args_model))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """The wrapped function itself, called directly (no validation, approval or timeout)."""
        return self.function(*args, **kwargs)

    @property
    def runs_in_thread(self) -> bool:
        """Whether a call may run in a thread, which a timeout or cancellation cannot stop."""
        return self.run_in_thread is not False and not inspect.iscoroutinefunction(self.function)

    def validate(self, arguments: dict[str, Any], *, strict: bool = False) -> pydantic.BaseModel:
        """The call's arguments, checked. Raises pydantic.ValidationError.

        `strict` is the agent's choice; the tool's own `strict`, when set, wins. By default values are
        converted where pydantic can ("250" becomes 250 for an `int`, 250 becomes 250.0 for a `float`, keys
        a TypedDict does not name are dropped). Strict validation converts nothing: a value of the wrong JSON
        type and a key no type names are errors the model reads and can fix, and a value that passes reaches
        the function as it was sent (an int stays an int where a `float` is annotated, a dict keeps its key
        order). JSON forms of richer types are still read: an enum's value, an ISO date, a nested object.
        """
        if not (self.strict if self.strict is not None else strict):
            return self.args_model.model_validate(arguments)
        # JSON mode, because the arguments are JSON: strict Python mode would refuse "celsius" for an enum.
        validated = self.args_model.model_validate_json(pydantic_core.to_json(arguments), strict=True, extra="forbid")
        fields = type(validated).model_fields
        sent = {name: _as_sent(getattr(validated, name), value) for name, value in arguments.items() if name in fields}
        return validated.model_copy(update=sent)

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
        if self.run_in_thread is False:
            result = self.function(**kwargs)
        elif self.run_in_thread or not self._timing.proven_fast():
            # A sync tool may block (file or network I/O); a thread keeps the other agents moving.
            function = self.function if self.run_in_thread else self._timing.timed(self.function)
            result = await run_in_daemon_thread(function, kwargs, name=f"retinue-tool-{self.name}")
        else:
            # A thread costs more than a fast call itself; the copied context keeps it as isolated as one.
            result = contextvars.copy_context().run(self._timing.timed(self.function), **kwargs)
        if inspect.isawaitable(result):  # a sync wrapper around an async function
            return await result
        return result


def _as_sent(validated: Any, sent: Any) -> Any:
    """`validated` as the model sent it, where it is the same value in another form: an int read as a
    float (which PEP 484 lets an int be), a dict whose keys validation reordered. Otherwise `validated`."""
    if type(validated) is float and type(sent) is int:
        return sent
    if type(validated) is dict and type(sent) is dict and validated.keys() == sent.keys():
        return {key: _as_sent(validated[key], value) for key, value in sent.items()}
    if type(validated) is list and type(sent) is list and len(validated) == len(sent):
        return [_as_sent(item, original) for item, original in zip(validated, sent, strict=True)]
    return validated


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
    run_in_thread: bool | None = None,
    effect: ToolEffect = "write",
    idempotent: bool = False,
    strict: bool | None = None,
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
    run_in_thread: bool | None = None,
    effect: ToolEffect = "write",
    idempotent: bool = False,
    strict: bool | None = None,
) -> Tool | Callable[[ToolFunction], Tool]:
    """Make a tool from a typed function, sync or async. Use as `@tool` or `@tool(...)`.

    `requires_approval` marks a consequential action (booking, paying, deleting):
    the run asks its approver before calling it. `effect` ("read", "write" or
    "local", default "write") and `idempotent` say what a resumed run may do
    with a call cut off mid-way (see `Tool`); a parameter annotated
    `IdempotencyKey` receives the call's stable key. `strict=True` validates
    the arguments without converting them (see `Tool.validate`); None follows
    the agent's `strict_tool_arguments`.

    Where a sync function runs: a thread keeps a blocking call (file or network
    I/O) from stalling every other agent on the event loop, but starting one
    costs more than a fast call itself. So by default (`run_in_thread=None`) a
    sync tool's first calls run in a thread and are timed; once they have all
    been fast (under a millisecond), its calls run on the event loop, until one
    is slow, which sends the tool back to threads until it has been fast again
    for longer each time (see `SyncCallTiming`). The price: a tool that was
    fast and then blocks stalls the loop for that one call.
    `run_in_thread=True` always uses a thread: say so for a function that is
    sometimes slow, or that must not run in the event loop's thread (one that
    calls `asyncio.run`, or waits on a coroutine it submitted to the running
    loop). `run_in_thread=False` always runs on the loop, for functions known
    not to block. Async functions always run on the loop.
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
            strict=strict,
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
    run_in_thread: bool | None = None,
    effect: ToolEffect = "write",
    idempotent: bool = False,
    strict: bool | None = None,
) -> Tool:
    from .run_context import RunContext

    tool_name = name or fn.__name__
    summary, param_docs = parse_docstring(inspect.getdoc(fn) or "")
    try:
        hints = get_type_hints(fn, include_extras=True)  # extras: Annotated[..., Field(...)] keeps its metadata
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
        injected = _unannotated(hint)
        if injected is RunContext:
            context_parameter = param.name
            continue
        if injected is ToolCall:
            call_parameter = param.name
            continue
        if injected is IdempotencyKey:
            key_parameter = param.name
            continue
        default = ... if param.default is param.empty else param.default
        # A description in the annotation wins; the docstring's fills in where it has none.
        doc = None if _annotated_description(hint) else param_docs.get(param.name)
        field_info = pydantic.Field(default) if doc is None else pydantic.Field(default, description=doc)
        fields[param.name] = (hint, field_info)
    try:
        args_model = pydantic.create_model(f"{tool_name}_arguments", **fields)
    except (pydantic.PydanticUserError, pydantic.PydanticSchemaGenerationError, NameError, TypeError) as exc:
        raise ToolDefinitionError(f"Tool {tool_name!r}: the parameters cannot be described to a model: {exc}") from exc
    made = Tool(
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
        strict=strict,
    )
    recursive = list(made.schema.parameters.get("$defs", ()))
    if recursive:
        names = " and ".join(map(repr, recursive))
        raise ToolDefinitionError(
            f"Tool {tool_name!r}: the type {names} contains itself, so its schema cannot be written out for the "
            "model; use a type that does not refer to itself (a fixed number of levels, or a flat list of items "
            "that name their parent)."
        )
    return made


def _unannotated(hint: Any) -> Any:
    """`hint` without its `Annotated[...]` wrapper, if it has one."""
    return hint.__origin__ if typing.get_origin(hint) is typing.Annotated else hint


def _annotated_description(hint: Any) -> bool:
    """Whether `hint` is `Annotated[..., Field(description=...)]`."""
    if typing.get_origin(hint) is not typing.Annotated:
        return False
    return any(isinstance(extra, pydantic.fields.FieldInfo) and extra.description for extra in hint.__metadata__)


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


def inline_schema(args_model: type[pydantic.BaseModel]) -> dict[str, Any]:
    """The JSON schema of `args_model` as the model reads it: every `$ref` written out in place, no titles.

    Small models follow an inline schema better than one that sends them to `$defs`, and titles only repeat
    the names. A type that contains itself cannot be written out: its definition stays in `$defs`, referred
    to where it recurs. `tool` refuses such parameter types; an output type or an MCP server's schema may
    still have one.
    """
    schema = args_model.model_json_schema()
    inliner = _Inliner(schema.pop("$defs", {}))
    inlined: dict[str, Any] = inliner.inline(schema, ())
    if inliner.recursive:
        inlined["$defs"] = inliner.recursive_definitions()
    return inlined


# The keywords whose values are schemas, by shape; every other keyword holds data (enum, default, ...).
_SUBSCHEMA = ("items", "additionalProperties", "not", "contains", "propertyNames", "if", "then", "else")
_SUBSCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
_SUBSCHEMA_MAPPINGS = ("properties", "patternProperties", "dependentSchemas")
_DEFINITION_PREFIX = "#/$defs/"


class _Inliner:
    def __init__(self, definitions: dict[str, Any]) -> None:
        self.definitions = definitions
        self.recursive: list[str] = []  # the types met inside themselves, kept in $defs

    def inline(self, node: Any, expanding: tuple[str, ...]) -> Any:
        """`node` with its references written out; `expanding` are the definitions it is inside of."""
        if not isinstance(node, dict):
            return node  # `true`/`false` schemas
        ref = node.get("$ref")
        name = ref.removeprefix(_DEFINITION_PREFIX) if isinstance(ref, str) else None
        if name is not None and name in self.definitions:
            siblings = self.inline({key: value for key, value in node.items() if key != "$ref"}, expanding)
            if name in expanding:
                if name not in self.recursive:
                    self.recursive.append(name)
                return {"$ref": ref, **siblings}
            # The siblings (a parameter's own description) win over the definition's.
            return {**self.inline(self.definitions[name], (*expanding, name)), **siblings}
        inlined: dict[str, Any] = {}
        for key, value in node.items():
            if key == "title":
                continue
            if key in _SUBSCHEMA:
                value = self.inline(value, expanding)
            elif key in _SUBSCHEMA_LISTS and isinstance(value, list):
                value = [self.inline(item, expanding) for item in value]
            elif key in _SUBSCHEMA_MAPPINGS and isinstance(value, dict):
                value = {prop: self.inline(item, expanding) for prop, item in value.items()}
            elif key == "discriminator" and isinstance(value, dict):
                value = {word: item for word, item in value.items() if word != "mapping"}  # its targets were $refs
            inlined[key] = value
        return inlined

    def recursive_definitions(self) -> dict[str, Any]:
        kept: dict[str, Any] = {}
        for name in self.recursive:  # grows while it is read: a kept definition may meet another recursive type
            kept[name] = self.inline(self.definitions[name], (name,))
        return kept


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
