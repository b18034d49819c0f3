"""Serve a retinue agent as an MCP server, so any MCP client can call it as a tool.

    asyncio.run(serve_agent_over_mcp(agent))                       # stdio, for IDEs and desktop apps
    asyncio.run(serve_agent_over_mcp(agent, "streamable-http", port=8000))   # http://127.0.0.1:8000/mcp

The server has one tool, named after the agent, that takes a `prompt` string
and answers with the agent's final answer as text. A run that does not
complete (an error, a limit) comes back as an `isError` result saying why, so
the calling model can act on it. Every call is a fresh, independent run.
"""

from __future__ import annotations

import asyncio
import re
from typing import TYPE_CHECKING, Any, Literal

from ..approvals import Approver
from ..limits import Limits
from ..tools import render_tool_output
from ._deps import missing_mcp

if TYPE_CHECKING:
    import mcp.types
    from mcp.server.context import ServerRequestContext
    from mcp.server.lowlevel import Server

    from ..agent import Agent

Transport = Literal["stdio", "streamable-http"]

_PROMPT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "prompt": {
            "type": "string",
            "description": "The whole request, with every detail the agent needs: it sees nothing else.",
        }
    },
    "required": ["prompt"],
}


def agent_mcp_server(
    agent: Agent[Any],
    *,
    tool_name: str | None = None,
    description: str | None = None,
    deps: Any = None,
    approver: Approver | None = None,
    limits: Limits | None = None,
) -> Server[Any]:
    """The MCP SDK's low-level `Server` for `agent`, to run on a transport of your choosing.

    Args:
        agent: The agent every call runs.
        tool_name: The tool's name (default: the agent's name, made safe for MCP).
        description: What the tool is for (default: the agent's description).
        deps: Passed to every run as `run(deps=...)`.
        approver: Decides the agent's consequential actions; with None they are refused,
            since nobody is at this end to ask.
        limits: Limits for every run (default: the agent's own).
    """
    try:
        from mcp.server.lowlevel import Server
        from mcp.shared.exceptions import MCPError
        from mcp.types import INVALID_PARAMS, CallToolRequestParams, CallToolResult, ListToolsResult, TextContent, Tool
    except ImportError as exc:
        raise missing_mcp() from exc

    name = tool_name or _mcp_tool_name(agent.name)
    about = description or agent.description or f"Ask the '{agent.name}' agent and get its answer as text."
    listed = Tool(name=name, description=about, input_schema=_PROMPT_SCHEMA)

    async def list_tools(
        ctx: ServerRequestContext[Any], params: mcp.types.PaginatedRequestParams | None
    ) -> ListToolsResult:
        return ListToolsResult(tools=[listed])

    async def call_tool(ctx: ServerRequestContext[Any], params: CallToolRequestParams) -> CallToolResult:
        if params.name != name:
            # The spec keeps unknown tools a protocol error; isError is for the tool's own failures.
            raise MCPError(INVALID_PARAMS, f"Unknown tool '{params.name}'; this server has one tool, '{name}'.")
        prompt = (params.arguments or {}).get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            return _error(f"'{name}' needs a non-empty string argument 'prompt' with the request for the agent.")
        try:
            result = await agent.run(prompt, deps=deps, approver=approver, limits=limits)
        except Exception as exc:  # noqa: BLE001 - a run should not raise, but the client must get an answer anyway
            return _error(f"The agent '{agent.name}' failed: {type(exc).__name__}: {exc}")
        if result.completed:
            return CallToolResult(content=[TextContent(text=render_tool_output(result.output))])
        if result.limit is not None:
            return _error(f"The agent '{agent.name}' stopped before answering: {result.limit.describe()}.")
        if result.error is not None:
            return _error(f"The agent '{agent.name}' failed: {type(result.error).__name__}: {result.error}")
        return _error(f"The agent '{agent.name}' did not answer ({result.status}).")

    return Server(
        agent.name,
        version=_version(),
        instructions=agent.description or None,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
    )


async def serve_agent_over_mcp(
    agent: Agent[Any],
    transport: Transport = "stdio",
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    path: str = "/mcp",
    tool_name: str | None = None,
    description: str | None = None,
    deps: Any = None,
    approver: Approver | None = None,
    limits: Limits | None = None,
    log_level: str = "warning",
) -> None:
    """Serve `agent` as an MCP server until the client hangs up (stdio) or the task is cancelled (HTTP).

    Over stdio, stdout belongs to the protocol: nothing else in the process may print to it.
    Over streamable HTTP the endpoint is `http://{host}:{port}{path}`; on a loopback host,
    requests whose Host or Origin header is not local are refused (DNS-rebinding protection).
    The other arguments are those of `agent_mcp_server`.
    """
    server = agent_mcp_server(
        agent, tool_name=tool_name, description=description, deps=deps, approver=approver, limits=limits
    )
    if transport == "stdio":
        from mcp.server.stdio import stdio_server

        async with stdio_server() as (read_stream, write_stream):
            await server.run(read_stream, write_stream, server.create_initialization_options())
        return
    if transport == "streamable-http":
        import uvicorn

        app = server.streamable_http_app(streamable_http_path=path, host=host)
        config = uvicorn.Config(
            app, host=host, port=port, log_level=log_level, lifespan="on", timeout_graceful_shutdown=5
        )
        http_server = uvicorn.Server(config)
        serving = asyncio.ensure_future(http_server.serve())
        try:
            await asyncio.shield(serving)
        except asyncio.CancelledError:
            # Cancelling uvicorn outright skips its shutdown (sockets, the session manager's lifespan).
            http_server.should_exit = True
            await serving
            raise
        return
    raise ValueError(f"Unknown MCP transport {transport!r}; use 'stdio' or 'streamable-http'.")


def _error(text: str) -> mcp.types.CallToolResult:
    from mcp.types import CallToolResult, TextContent

    return CallToolResult(content=[TextContent(text=text)], is_error=True)


def _mcp_tool_name(name: str) -> str:
    # MCP tool names are 1-128 of [A-Za-z0-9_.-]; agent names are free text.
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_")[:128] or "agent"


def _version() -> str:
    from .. import __version__

    return __version__
