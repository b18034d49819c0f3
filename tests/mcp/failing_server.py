"""A small MCP server that misbehaves on demand, for the failures the reference servers cannot produce.

Run over stdio: `python failing_server.py [PID_FILE]`. It writes its pid to PID_FILE
(so a test can check the process is gone after the run) and serves:
  echo(text)        -> text
  crash()           -> the process exits at once, mid-call
  raise_error()     -> the tool raises (an isError result)
  protocol_error()  -> a JSON-RPC error response instead of a result
  slow(seconds)     -> sleeps, then answers
  picture()         -> an image block and a text block
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

from mcp.server.lowlevel import Server
from mcp.server.stdio import stdio_server
from mcp.shared.exceptions import MCPError
from mcp.types import (
    INVALID_PARAMS,
    CallToolRequestParams,
    CallToolResult,
    ImageContent,
    ListToolsResult,
    PaginatedRequestParams,
    TextContent,
    Tool,
)

_TOOLS = [
    Tool(
        name="echo",
        description="Repeat the text.",
        input_schema={"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]},
    ),
    Tool(name="crash", description="Exit the server process.", input_schema={"type": "object", "properties": {}}),
    Tool(name="raise_error", description="Fail.", input_schema={"type": "object", "properties": {}}),
    Tool(name="protocol_error", description="Answer with a JSON-RPC error.", input_schema={"type": "object"}),
    Tool(
        name="slow",
        description="Sleep, then answer.",
        input_schema={"type": "object", "properties": {"seconds": {"type": "number"}}, "required": ["seconds"]},
    ),
    Tool(name="picture", description="Return an image.", input_schema={"type": "object"}),
]


async def list_tools(ctx: Any, params: PaginatedRequestParams | None) -> ListToolsResult:
    return ListToolsResult(tools=_TOOLS)


async def call_tool(ctx: Any, params: CallToolRequestParams) -> CallToolResult:
    arguments = params.arguments or {}
    if params.name == "echo":
        return CallToolResult(content=[TextContent(text=str(arguments["text"]))])
    if params.name == "crash":
        sys.stderr.write("failing_server: crashing on purpose\n")
        sys.stderr.flush()
        os._exit(3)
    if params.name == "raise_error":
        return CallToolResult(content=[TextContent(text="the widget is broken")], is_error=True)
    if params.name == "protocol_error":
        raise MCPError(INVALID_PARAMS, "protocol_error always refuses")
    if params.name == "slow":
        await asyncio.sleep(float(arguments["seconds"]))
        return CallToolResult(content=[TextContent(text="finally")])
    if params.name == "picture":
        return CallToolResult(
            content=[ImageContent(data="aGVsbG8=", mime_type="image/png"), TextContent(text="a picture")]
        )
    raise MCPError(INVALID_PARAMS, f"no tool {params.name}")


async def main() -> None:
    if len(sys.argv) > 1:
        Path(sys.argv[1]).write_text(str(os.getpid()))  # noqa: ASYNC240 - before serving, nothing else waits
    server = Server("failing-server", on_list_tools=list_tools, on_call_tool=call_tool)
    async with stdio_server() as (read_stream, write_stream):
        await server.run(read_stream, write_stream, server.create_initialization_options())


if __name__ == "__main__":
    asyncio.run(main())
