"""A retinue agent served over MCP, called by the MCP SDK's own client (and by a retinue agent).

agent_server.py builds the served agent: its scripted model counts the prompt's
words with a tool and answers "echo: <prompt> (<n> words)"; "explode" in the
prompt makes the model raise, so the run fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sys
from collections.abc import AsyncIterator

import pytest
from agent_server import build_agent
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp.types import CallToolResult, TextContent
from mcp_helpers import HERE, python_env

from retinue import Agent, ModelRequest, ToolResultsMessage, UserMessage
from retinue.mcp import MCPServer, MCPServerError, agent_mcp_server, mcp_tools, serve_agent_over_mcp
from retinue.testing.scripted import Reply, ScriptedModel, call


def text_of(result: CallToolResult) -> str:
    assert len(result.content) == 1 and isinstance(result.content[0], TextContent)
    return result.content[0].text


async def check_served_agent(session: ClientSession) -> None:
    """What any MCP client sees of the served agent, whatever the transport."""
    listed = (await session.list_tools()).tools
    assert [t.name for t in listed] == ["Echo_Agent"]
    assert listed[0].description == "Repeats the request and counts its words."
    assert listed[0].input_schema["required"] == ["prompt"]
    assert listed[0].input_schema["properties"]["prompt"]["type"] == "string"

    answer = await session.call_tool("Echo_Agent", {"prompt": "three little words"})
    assert (text_of(answer), answer.is_error) == ("echo: three little words (3 words)", False)

    failed = await session.call_tool("Echo_Agent", {"prompt": "please explode"})
    assert failed.is_error
    assert text_of(failed) == "The agent 'Echo Agent' failed: RuntimeError: the scripted model exploded"

    no_prompt = await session.call_tool("Echo_Agent", {"question": "where is the prompt?"})
    assert no_prompt.is_error and "non-empty string argument 'prompt'" in text_of(no_prompt)

    with pytest.raises(MCPError) as unknown:
        await session.call_tool("Other_Agent", {"prompt": "hi"})
    assert "Unknown tool 'Other_Agent'" in unknown.value.message


async def test_sdk_client_calls_the_agent_over_stdio() -> None:
    parameters = StdioServerParameters(
        command=sys.executable, args=[str(HERE / "agent_server.py"), "stdio"], env=python_env()
    )
    async with stdio_client(parameters) as (read, write), ClientSession(read, write) as session:
        initialized = await session.initialize()
        assert initialized.server_info.name == "Echo Agent"
        assert initialized.capabilities.tools is not None
        await check_served_agent(session)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextlib.asynccontextmanager
async def served_over_http(agent: Agent[str], port: int) -> AsyncIterator[str]:
    task = asyncio.create_task(serve_agent_over_mcp(agent, "streamable-http", port=port))
    try:
        for _ in range(200):
            if task.done():
                task.result()  # a failed start raises here
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                await asyncio.sleep(0.025)
                continue
            writer.close()
            await writer.wait_closed()
            break
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_sdk_client_calls_the_agent_over_streamable_http() -> None:
    agent = build_agent()
    async with (
        served_over_http(agent, free_port()) as url,
        streamable_http_client(url) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        await check_served_agent(session)
    # Each call was a real run of the agent, tool round trip included.
    model = agent.model
    assert isinstance(model, ScriptedModel)
    asked, counted = model.requests[:2]
    assert asked.messages == [UserMessage("three little words")]
    word_count = counted.messages[-1]
    assert isinstance(word_count, ToolResultsMessage) and word_count.results[0].content == "3"


async def test_a_retinue_agent_uses_another_over_mcp_http_and_survives_its_restart() -> None:
    port = free_port()
    remote = MCPServer.http(f"http://127.0.0.1:{port}/mcp", name="echo")
    async with contextlib.AsyncExitStack() as first_server, contextlib.AsyncExitStack() as second_server:

        async def script(request: ModelRequest) -> Reply:
            # The caller's model takes the remote server down and up again between its turns.
            done = [r for m in request.messages if isinstance(m, ToolResultsMessage) for r in m.results]
            if not done:
                return call("Echo_Agent", prompt="hello over http")
            if len(done) == 1:
                await first_server.aclose()
                return call("Echo_Agent", prompt="is anyone there")
            if len(done) == 2:
                await second_server.enter_async_context(served_over_http(build_agent(), port))
                return call("Echo_Agent", prompt="back again")
            return "All done."

        url = await first_server.enter_async_context(served_over_http(build_agent(), port))
        assert remote.target == url
        async with mcp_tools(remote) as tools:
            result = await Agent("caller", model=ScriptedModel(script), tools=tools).run("Talk to the echo agent.")

    assert result.completed, result.describe()
    hello, gone, back = [r for m in result.messages if isinstance(m, ToolResultsMessage) for r in m.results]
    assert (hello.content, hello.is_error) == ("echo: hello over http (3 words)", False)
    assert gone.is_error and "MCP server 'echo' dropped the connection while handling 'Echo_Agent'" in gone.content
    assert (back.content, back.is_error) == ("echo: back again (2 words)", False)


async def test_the_tool_is_named_after_the_agent_in_a_form_mcp_accepts() -> None:
    from mcp.client.client import Client

    agent = Agent("Travel planner (EU)", model=ScriptedModel(["Go to Lisbon."]))
    # The SDK's client can also talk to a server object in-process, without a transport.
    async with Client(agent_mcp_server(agent, description="Plans trips.")) as client:
        assert client.server_info is not None and client.server_info.name == "Travel planner (EU)"
        (listed,) = (await client.list_tools()).tools
        answer = await client.call_tool(listed.name, {"prompt": "Where to?"})
    assert (listed.name, listed.description) == ("Travel_planner_EU", "Plans trips.")
    assert (text_of(answer), answer.is_error) == ("Go to Lisbon.", False)


async def test_http_headers_are_sent_and_a_broken_endpoint_fails_the_start() -> None:
    seen: list[bytes] = []

    async def not_mcp(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await reader.readuntil(b"\r\n\r\n"))
        writer.write(b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 4\r\nconnection: close\r\n\r\noops")
        await writer.drain()
        writer.close()

    listener = await asyncio.start_server(not_mcp, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    remote = MCPServer.http(f"http://127.0.0.1:{port}/mcp", headers={"Authorization": "Bearer t0ken"})
    async with listener:
        with pytest.raises(MCPServerError) as raised:
            async with remote:
                pass
    assert seen and all(b"\r\nauthorization: bearer t0ken\r\n" in request.lower() for request in seen)
    assert f"MCP server '127.0.0.1' (http://127.0.0.1:{port}/mcp) could not be reached" in str(raised.value)


def test_credentials_in_a_url_stay_out_of_messages() -> None:
    remote = MCPServer.http("https://bot:s3cret@mcp.example.com:8443/mcp?x=1")
    assert remote.target == "https://mcp.example.com:8443/mcp?x=1"
    assert remote.name == "mcp.example.com"


async def test_a_run_stopped_by_a_limit_is_an_error_result_that_says_which() -> None:
    from mcp.client.client import Client

    from retinue import Limits, tool

    @tool
    def look_again() -> str:
        """Look once more."""
        return "nothing yet"

    restless = Agent("seeker", model=ScriptedModel(lambda request: call("look_again")), tools=[look_again])
    async with Client(agent_mcp_server(restless, limits=Limits(max_turns=2))) as client:
        stopped = await client.call_tool("seeker", {"prompt": "Find it."})
    assert stopped.is_error
    assert text_of(stopped) == (
        "The agent 'seeker' stopped before answering: max_turns of agent 'seeker' reached (2 used, limit 2)."
    )
