"""MCP (Model Context Protocol) in both directions.

Use tools from MCP servers (`MCPServer.stdio`, `MCPServer.http`, `mcp_tools`),
and serve any agent as an MCP server (`serve_agent_over_mcp`). Both need the
optional `mcp` extra (`pip install 'retinue[mcp]'`); it is imported only when a
server is started or served, so importing this module stays cheap.
"""

from .client import MCPServer, MCPServerError, MCPTool, mcp_tools
from .server import agent_mcp_server, serve_agent_over_mcp

__all__ = [
    "MCPServer",
    "MCPServerError",
    "MCPTool",
    "agent_mcp_server",
    "mcp_tools",
    "serve_agent_over_mcp",
]
