"""Tools from MCP servers, shown to the model like any other tool.

    fs = MCPServer.stdio("npx", ["-y", "@modelcontextprotocol/server-filesystem", "/data"])
    async with mcp_tools(fs) as tools:
        result = await Agent("clerk", model=..., tools=tools).run("Summarise /data/notes.txt")

Each MCP tool becomes an `MCPTool` whose schema is the server's JSON schema,
unchanged; arguments are checked only for required keys, because the server
validates them anyway and knows its own rules best. Whatever goes wrong on the
MCP side (an `isError` result, a JSON-RPC error, a server that crashed or hung
up) becomes an error tool result the model can act on, never a failed run. A
server that stops is started again on the next call to one of its tools, up to
`max_restarts` times per `async with`.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import os
import re
import shlex
import tempfile
import urllib.parse
from collections.abc import AsyncIterator, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any, ClassVar

import pydantic
import pydantic_core

from ..errors import ConfigurationError, RetinueError, ToolError
from ..messages import ToolSchema
from ..tools import Tool
from ._deps import require_mcp

if TYPE_CHECKING:
    from types import TracebackType

    import mcp.types
    from mcp.client.client import Client

DEFAULT_CONNECT_TIMEOUT = 30.0
_STDERR_TAIL_CHARS = 800
_MAX_LIST_PAGES = 100
_TOOL_NAME_CHARS = re.compile(r"[^a-zA-Z0-9_-]")


class MCPServerError(RetinueError):
    """An MCP server could not be started, reached or listed: what the caller must fix.

    Failures during a run never raise this; they reach the model as tool results.
    """


class MCPArguments(pydantic.BaseModel):
    """The arguments of an MCP tool: any JSON object that has the schema's required keys.

    The whole object reaches the tool function as `arguments`, untouched; the
    server validates the rest. Subclasses set `input_schema`, which
    `model_json_schema` returns unchanged, so anything reading a tool's
    `args_model` sees what the server published.
    """

    input_schema: ClassVar[dict[str, Any]] = {"type": "object"}
    arguments: dict[str, Any]

    @pydantic.model_validator(mode="before")
    @classmethod
    def _wrap(cls, data: Any) -> Any:
        required = cls.input_schema.get("required")
        if isinstance(data, dict) and isinstance(required, list):
            missing = [str(key) for key in required if key not in data]
            if missing:
                raise pydantic_core.PydanticCustomError(
                    "missing_argument", "missing required argument(s): {names}", {"names": ", ".join(missing)}
                )
        # Wrapped in one field, so Tool.invoke passes the object through whole, whatever its keys are.
        return {"arguments": data}

    @classmethod
    def model_json_schema(cls, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return copy.deepcopy(cls.input_schema)


@dataclass(slots=True, eq=False)
class MCPTool(Tool):
    """A tool of an MCP server. `name` is what the model sees; `mcp_name` is what the server calls it."""

    mcp_name: str = ""
    server: MCPServer | None = None

    def __post_init__(self) -> None:
        # Zero-argument super() does not work in a slots dataclass (the class is rebuilt).
        Tool.__post_init__(self)
        # The server's schema verbatim: Tool's own would drop its "title" keys.
        self.schema = ToolSchema(self.name, self.description, self.args_model.model_json_schema())


class MCPServer:
    """An MCP server whose tools an agent can use. Build one with `MCPServer.stdio` or `MCPServer.http`.

    `async with server:` starts the server (or connects to it) and stops it at
    the end; entering it again while it is open shares the one connection, so
    concurrent runs can use the same server. `await server.list_tools()` gives
    the `Tool` objects to hand to an `Agent`; `mcp_tools(...)` does both.
    """

    def __init__(
        self,
        *,
        name: str,
        target: str,
        open_client: Callable[[IO[str] | None], contextlib.AbstractAsyncContextManager[Client]],
        spawns_process: bool,
        captures_stderr: bool = False,
        tool_prefix: str = "",
        allowed_tools: Collection[str] | None = None,
        requires_approval: bool | Collection[str] = False,
        tool_timeout: float | None = None,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        max_restarts: int = 1,
    ) -> None:
        """Most code wants `MCPServer.stdio(...)` or `MCPServer.http(...)`; see there for the options."""
        require_mcp()
        if max_restarts < 0:
            raise ConfigurationError("max_restarts must be 0 or more.")
        self.name = name
        self.target = target
        self.tool_prefix = tool_prefix
        self.allowed_tools = frozenset(allowed_tools) if allowed_tools is not None else None
        self.requires_approval = (
            requires_approval if isinstance(requires_approval, bool) else frozenset(requires_approval)
        )
        self.tool_timeout = tool_timeout
        self.connect_timeout = connect_timeout
        self.max_restarts = max_restarts
        self._open_client = open_client
        self._captures_stderr = spawns_process and captures_stderr
        # Over HTTP nothing is started or stopped, so the messages speak of reaching and reconnecting.
        self._failed_start = "could not be started" if spawns_process else "could not be reached"
        self._stopped = "stopped" if spawns_process else "dropped the connection"
        self._again = "started again" if spawns_process else "reconnected"
        self._stderr: IO[str] | None = None
        self._stderr_mark = 0
        self._connection: _Connection | None = None
        self._users = 0
        self._restarts_left = max_restarts
        self._lock: asyncio.Lock | None = None
        self._lock_loop: asyncio.AbstractEventLoop | None = None
        self._restarting: asyncio.Task[_Connection] | None = None
        self._tools: list[MCPTool] | None = None

    @classmethod
    def stdio(
        cls,
        command: str,
        args: Sequence[str] = (),
        *,
        env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        stderr: IO[str] | None = None,
        name: str | None = None,
        tool_prefix: str = "",
        allowed_tools: Collection[str] | None = None,
        requires_approval: bool | Collection[str] = False,
        tool_timeout: float | None = None,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        max_restarts: int = 1,
    ) -> MCPServer:
        """A server started as a subprocess and spoken to over its stdin and stdout.

        Args:
            command: The program, e.g. "npx", "uvx", "node" or a path.
            args: Its arguments.
            env: Variables added to the few the MCP SDK passes on (HOME, PATH, USER, ...);
                the rest of this process's environment, API keys included, is not inherited.
            cwd: The working directory of the server.
            stderr: Where the server's stderr goes (a file with a file descriptor). By
                default it is kept in a temporary file and its end is quoted in errors.
            name: How the server is named in errors; defaults to the command.
            tool_prefix: Put before every tool name (e.g. "fs_"), to keep two servers' tools apart.
            allowed_tools: Only these tools (by their MCP names) are offered; None offers all.
            requires_approval: True, or the MCP names of the tools the run must get approved.
            tool_timeout: Seconds one call may take (default: the agent's `tool_timeout`).
            connect_timeout: Seconds the server has to start and answer the handshake.
            max_restarts: How often a server that stopped is started again, per `async with`.
        """
        argv = [command, *args]

        @contextlib.asynccontextmanager
        async def open_client(errlog: IO[str] | None) -> AsyncIterator[Client]:
            import sys

            from mcp.client.client import Client
            from mcp.client.stdio import StdioServerParameters, stdio_client

            parameters = StdioServerParameters(
                command=command,
                args=list(args),
                env=dict(env) if env is not None else None,
                cwd=os.fspath(cwd) if cwd is not None else None,
            )
            # The SDK types errlog as TextIO; any text file with a descriptor does for a child's stderr.
            transport = stdio_client(parameters, errlog=errlog or stderr or sys.stderr)  # type: ignore[arg-type]
            async with Client(transport, cache=None, client_info=_client_info()) as client:
                yield client

        return cls(
            name=name or os.path.basename(command),
            target=shlex.join(argv),
            open_client=open_client,
            spawns_process=True,
            captures_stderr=stderr is None,
            tool_prefix=tool_prefix,
            allowed_tools=allowed_tools,
            requires_approval=requires_approval,
            tool_timeout=tool_timeout,
            connect_timeout=connect_timeout,
            max_restarts=max_restarts,
        )

    @classmethod
    def http(
        cls,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        timeout: float = 30.0,
        name: str | None = None,
        tool_prefix: str = "",
        allowed_tools: Collection[str] | None = None,
        requires_approval: bool | Collection[str] = False,
        tool_timeout: float | None = None,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        max_restarts: int = 1,
    ) -> MCPServer:
        """A server reached over streamable HTTP at `url` (e.g. "http://127.0.0.1:8000/mcp").

        Args:
            url: The MCP endpoint.
            headers: Sent with every request, e.g. {"Authorization": "Bearer ..."}.
            timeout: Seconds to connect and send; a response may stream for up to 300 seconds.
            The other arguments are those of `MCPServer.stdio`; `max_restarts` here means reconnects.
        """
        hostname = urllib.parse.urlsplit(url).hostname

        @contextlib.asynccontextmanager
        async def open_client(errlog: IO[str] | None) -> AsyncIterator[Client]:
            import httpx2
            from mcp.client.client import Client
            from mcp.client.streamable_http import streamable_http_client

            limits = httpx2.Timeout(timeout, read=300.0)
            async with httpx2.AsyncClient(headers=dict(headers or {}), timeout=limits) as http_client:
                transport = streamable_http_client(url, http_client=http_client)
                async with Client(transport, cache=None, client_info=_client_info()) as client:
                    yield client

        return cls(
            name=name or hostname or url,
            target=_without_credentials(url),
            open_client=open_client,
            spawns_process=False,
            tool_prefix=tool_prefix,
            allowed_tools=allowed_tools,
            requires_approval=requires_approval,
            tool_timeout=tool_timeout,
            connect_timeout=connect_timeout,
            max_restarts=max_restarts,
        )

    def __repr__(self) -> str:
        return f"MCPServer(name={self.name!r}, target={self.target!r})"

    def _guard(self) -> asyncio.Lock:
        # A lock belongs to one event loop; a server object may outlive one (run_sync, one asyncio.run per test).
        loop = asyncio.get_running_loop()
        if self._lock is None or self._lock_loop is not loop:
            self._lock, self._lock_loop = asyncio.Lock(), loop
        return self._lock

    @property
    def is_open(self) -> bool:
        return self._users > 0

    async def __aenter__(self) -> MCPServer:
        async with self._guard():
            if self._users == 0:
                self._restarts_left = self.max_restarts
                if self._captures_stderr:
                    self._stderr = tempfile.TemporaryFile(  # noqa: SIM115 - lives as long as the server
                        "w+", encoding="utf-8", errors="replace"
                    )
                try:
                    self._connection = await self._connect()
                except BaseException:
                    self._close_stderr()
                    raise
            self._users += 1
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        async with self._guard():
            self._users -= 1
            if self._users > 0:
                return
            if self._restarting is not None:
                await asyncio.wait([self._restarting])
            connection, self._connection = self._connection, None
            try:
                if connection is not None:
                    await connection.close()
            finally:
                self._close_stderr()

    async def list_tools(self) -> list[MCPTool]:
        """The server's tools, as retinue tools. The server must be open (`async with server:`)."""
        connection = self._connection
        if self._users == 0 or connection is None:
            raise MCPServerError(
                f"MCP server '{self.name}' is not open. Use `async with server:` or `mcp_tools(server)` first."
            )
        listed: list[mcp.types.Tool] = []
        cursor: str | None = None
        try:
            for _ in range(_MAX_LIST_PAGES):
                page = await connection.client().list_tools(cursor=cursor)
                listed.extend(page.tools)
                cursor = page.next_cursor
                if not cursor:
                    break
        except Exception as exc:
            raise MCPServerError(
                f"MCP server '{self.name}' ({self.target}) did not list its tools: {_describe(exc)}."
                f"{self._stderr_tail()}"
            ) from exc
        self._tools = self._build_tools(listed)
        return list(self._tools)

    def tools(self) -> list[MCPTool]:
        """The tools from the last `list_tools()`, without asking the server again."""
        if self._tools is None:
            raise MCPServerError(f"MCP server '{self.name}' has not listed its tools yet; await list_tools() first.")
        return list(self._tools)

    async def call_tool(self, mcp_name: str, arguments: Mapping[str, Any]) -> str:
        """Call a tool by its MCP name and return the text the model reads.

        Raises `ToolError` (which the loop hands to the model) for every failure.
        """
        connection = await self._connection_for_call()
        try:
            result = await connection.client().call_tool(mcp_name, dict(arguments))
        except Exception as exc:  # noqa: BLE001 - every MCP-side failure becomes a message for the model
            raise ToolError(self._call_failure(connection, mcp_name, exc)) from None
        text = render_call_result(result)
        if result.is_error:
            raise ToolError(text or f"'{mcp_name}' failed (the MCP server gave no details).")
        return text

    async def _connect(self) -> _Connection:
        self._stderr_mark = self._stderr_size() or 0
        connection = _Connection(self._open_client, self._stderr)
        try:
            await connection.open(self.connect_timeout)
        except TimeoutError:
            raise MCPServerError(
                f"MCP server '{self.name}' ({self.target}) did not answer within {self.connect_timeout:g} seconds."
                f"{self._stderr_tail()}"
            ) from None
        except Exception as exc:
            raise MCPServerError(
                f"MCP server '{self.name}' ({self.target}) {self._failed_start}: {_describe(exc)}.{self._stderr_tail()}"
            ) from exc
        return connection

    async def _connection_for_call(self) -> _Connection:
        async with self._guard():
            connection = self._connection
            if self._users == 0 or connection is None:
                raise ToolError(
                    f"MCP server '{self.name}' is not running, so its tools cannot be used now. "
                    "Tell the user; do not retry."
                )
            if connection.lost is None:
                return connection
            if self._restarting is None:
                if self._restarts_left <= 0:
                    raise ToolError(
                        f"MCP server '{self.name}' {self._stopped} ({connection.lost}) and will not be {self._again} "
                        "in this run; do not call its tools again."
                    )
                self._restarts_left -= 1
                self._restarting = asyncio.create_task(self._restart(connection))
            restarting = self._restarting
        try:
            # Shielded: a call that times out while the server restarts must not waste the restart.
            return await asyncio.shield(restarting)
        except MCPServerError as exc:
            raise ToolError(f"{exc} Do not call its tools again in this run.") from None

    async def _restart(self, lost: _Connection) -> _Connection:
        try:
            await lost.close()
            self._connection = await self._connect()
            return self._connection
        finally:
            self._restarting = None

    def _call_failure(self, connection: _Connection, mcp_name: str, exc: Exception) -> str:
        from mcp.shared.exceptions import MCPError
        from mcp.types import CONNECTION_CLOSED

        if isinstance(exc, MCPError) and exc.code != CONNECTION_CLOSED:
            return f"MCP server '{self.name}' rejected the call to '{mcp_name}': {exc.message} (MCP error {exc.code})."
        if isinstance(exc, MCPError) or _is_transport_failure(exc):
            connection.lost = _describe(exc)
            then = (
                f"It will be {self._again} on the next call to one of its tools; "
                "anything it held in memory may be lost."
                if self._restarts_left > 0
                else f"It will not be {self._again} in this run."
            )
            return (
                f"MCP server '{self.name}' {self._stopped} while handling '{mcp_name}' ({connection.lost}). {then}"
                f"{self._stderr_tail()}"
            )
        if isinstance(exc, pydantic.ValidationError):
            return (
                f"MCP server '{self.name}' answered '{mcp_name}' with a malformed result "
                f"({exc.error_count()} problem(s)); calling it again is unlikely to help."
            )
        return f"Calling '{mcp_name}' on MCP server '{self.name}' failed: {_describe(exc)}."

    def _build_tools(self, listed: Sequence[mcp.types.Tool]) -> list[MCPTool]:
        names = {listed_tool.name for listed_tool in listed}
        requested = set(self.allowed_tools or ())
        if not isinstance(self.requires_approval, bool):
            requested |= self.requires_approval
        if requested - names:
            raise MCPServerError(
                f"MCP server '{self.name}' has no tool named {', '.join(sorted(requested - names))} "
                f"(see allowed_tools / requires_approval); it has: {', '.join(sorted(names)) or 'none'}."
            )
        tools: list[MCPTool] = []
        used: set[str] = set()
        for listed_tool in listed:
            if self.allowed_tools is not None and listed_tool.name not in self.allowed_tools:
                continue
            name = _unique(_tool_name(self.tool_prefix + listed_tool.name), used)
            used.add(name)
            schema = dict(listed_tool.input_schema)
            arguments_model = type(
                f"{name}_arguments", (MCPArguments,), {"input_schema": schema, "__module__": __name__}
            )
            needs_approval = (
                self.requires_approval
                if isinstance(self.requires_approval, bool)
                else listed_tool.name in self.requires_approval
            )
            tools.append(
                MCPTool(
                    name=name,
                    description=listed_tool.description or listed_tool.title or "",
                    function=self._caller(listed_tool.name),
                    args_model=arguments_model,
                    timeout=self.tool_timeout,
                    requires_approval=needs_approval,
                    run_in_thread=False,
                    mcp_name=listed_tool.name,
                    server=self,
                )
            )
        return tools

    def _caller(self, mcp_name: str) -> Callable[..., Any]:
        async def call(arguments: dict[str, Any]) -> str:
            return await self.call_tool(mcp_name, arguments)

        return call

    def _stderr_tail(self) -> str:
        """The end of what the server wrote to stderr since it was last started, as a paragraph for an error."""
        size = self._stderr_size()
        if self._stderr is None or size is None:
            return ""
        start = max(self._stderr_mark, size - _STDERR_TAIL_CHARS)
        try:
            # pread leaves the shared file offset alone: the server may still be writing through it.
            data = os.pread(self._stderr.fileno(), size - start, start)
        except (OSError, ValueError):
            return ""
        tail = data.decode("utf-8", errors="replace").strip()
        return f"\nThe end of its stderr:\n{tail}" if tail else ""

    def _stderr_size(self) -> int | None:
        if self._stderr is None:
            return None
        try:
            return os.fstat(self._stderr.fileno()).st_size
        except (OSError, ValueError):
            return None

    def _close_stderr(self) -> None:
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None


@contextlib.asynccontextmanager
async def mcp_tools(*servers: MCPServer) -> AsyncIterator[list[Tool]]:
    """Start `servers` (concurrently), yield all their tools, and stop them on exit.

    async with mcp_tools(files, memory) as tools:
        result = await Agent("assistant", model=model, tools=tools).run(prompt)
    """
    async with contextlib.AsyncExitStack() as stack:
        entered = await asyncio.gather(*(server.__aenter__() for server in servers), return_exceptions=True)
        failure: BaseException | None = None
        for server, outcome in zip(servers, entered, strict=True):
            if isinstance(outcome, BaseException):
                failure = failure or outcome
            else:
                stack.push_async_exit(server)
        if failure is not None:
            raise failure
        listed = await asyncio.gather(*(server.list_tools() for server in servers))
        tools: list[Tool] = [tool for server_tools in listed for tool in server_tools]
        yield tools


def render_call_result(result: mcp.types.CallToolResult) -> str:
    """The text a model reads for an MCP tool result (retinue tool results are text)."""
    from mcp.types import EmbeddedResource, ResourceLink, TextContent, TextResourceContents

    parts: list[str] = []
    for block in result.content:
        if isinstance(block, TextContent):
            parts.append(block.text)
        elif isinstance(block, ResourceLink):
            about = f" ({block.description})" if block.description else ""
            parts.append(f"[resource {block.name}: {block.uri}{about}]")
        elif isinstance(block, EmbeddedResource):
            resource = block.resource
            if isinstance(resource, TextResourceContents):
                parts.append(resource.text)
            else:
                parts.append(f"[binary resource {resource.uri} ({resource.mime_type or 'unknown type'}) not shown]")
        else:
            # Images and audio: this loop passes text to the model, so say what was left out.
            parts.append(f"[{block.type} ({block.mime_type}, {len(block.data) * 3 // 4} bytes) not shown]")
    if not parts and result.structured_content is not None:
        parts.append(pydantic_core.to_json(result.structured_content).decode())
    return "\n".join(parts)


class _Connection:
    """One live MCP session, owned by a task of its own.

    The SDK's anyio task groups must be left by the task that entered them,
    while tool calls come from whichever task the loop runs them in (and a
    restart happens inside one of them); a dedicated owner task keeps the
    session's lifetime independent of all of those.
    """

    def __init__(
        self,
        open_client: Callable[[IO[str] | None], contextlib.AbstractAsyncContextManager[Client]],
        errlog: IO[str] | None,
    ) -> None:
        self._open_client = open_client
        self._errlog = errlog
        self._client: Client | None = None
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.lost: str | None = None

    def client(self) -> Client:
        if self._client is None:
            raise MCPServerError("the MCP session is closed")
        return self._client

    async def open(self, within: float) -> None:
        ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._task = asyncio.create_task(self._own(ready), name="retinue-mcp-session")
        try:
            async with asyncio.timeout(within):
                await asyncio.shield(ready)
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        task = self._task
        if task is None or task.done():
            return
        self._stop.set()
        if self._client is None:
            # Still starting: nothing to close politely, so stop the start itself.
            task.cancel()
        await asyncio.wait([task])

    async def _own(self, ready: asyncio.Future[None]) -> None:
        try:
            async with self._open_client(self._errlog) as client:
                self._client = client
                if not ready.done():
                    ready.set_result(None)
                await self._stop.wait()
        except Exception as exc:  # noqa: BLE001 - handed to whoever waits for the start; later, nobody needs it
            if not ready.done():
                ready.set_exception(_unwrap(exc))
        finally:
            self._client = None
            if self.lost is None:
                self.lost = "the session was closed"
            if not ready.done():
                ready.cancel()


def _client_info() -> mcp.types.Implementation:
    from mcp.types import Implementation

    from .. import __version__

    return Implementation(name="retinue", version=__version__)


def _without_credentials(url: str) -> str:
    # Credentials in a URL must not end up in error messages or logs.
    parts = urllib.parse.urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urllib.parse.urlunsplit(parts._replace(netloc=host))


def _tool_name(raw: str) -> str:
    # Providers accept 1-64 of [a-zA-Z0-9_-]; MCP allows more (dots, slashes, 128 characters).
    return _TOOL_NAME_CHARS.sub("_", raw)[:64] or "tool"


def _unique(name: str, used: set[str]) -> str:
    candidate, number = name, 2
    while candidate in used:
        suffix = f"_{number}"
        candidate = name[: 64 - len(suffix)] + suffix
        number += 1
    return candidate


def _unwrap(exc: BaseException) -> BaseException:
    # anyio task groups wrap a single failure in an ExceptionGroup; the inner one is the story.
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


def _describe(exc: BaseException) -> str:
    exc = _unwrap(exc)
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _is_transport_failure(exc: BaseException) -> bool:
    import anyio

    if isinstance(exc, OSError | anyio.ClosedResourceError | anyio.BrokenResourceError | anyio.EndOfStream):
        return True
    if isinstance(exc, MCPServerError):
        return True
    # httpx2's TransportError covers refused connections and dropped streams, without importing httpx2 here.
    return any(base.__name__ == "TransportError" and base.__module__.startswith("httpx") for base in type(exc).__mro__)


__all__ = ["MCPArguments", "MCPServer", "MCPServerError", "MCPTool", "mcp_tools", "render_call_result"]
