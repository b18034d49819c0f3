"""retinue agents using the reference MCP servers from the npm registry, over stdio.

The servers (@modelcontextprotocol/server-filesystem and server-memory) are
not ours: they show the client works with MCP as others implement it. The
model is scripted, so each test knows exactly which calls the agent makes.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Sequence
from pathlib import Path

import pytest
from mcp_helpers import processes_mentioning

from retinue import Agent, Message, ToolResult, ToolResultsMessage
from retinue.mcp import MCPServer, MCPServerError, MCPTool, mcp_tools
from retinue.testing.scripted import ScriptedModel, call


def filesystem(server_bin: Path, allowed_dir: Path, **options: object) -> MCPServer:
    return MCPServer.stdio(str(server_bin / "mcp-server-filesystem"), [str(allowed_dir)], **options)  # type: ignore[arg-type]


def tool_results(messages: Sequence[Message]) -> list[ToolResult]:
    return [result for m in messages if isinstance(m, ToolResultsMessage) for result in m.results]


async def test_agent_writes_and_reads_a_file_through_the_filesystem_server(server_bin: Path, allowed_dir: Path) -> None:
    note = allowed_dir / "note.txt"
    model = ScriptedModel(
        [
            call("write_file", path=str(note), content="MCP says hello\nsecond line"),
            call("read_text_file", path=str(note), head=1),
            "The first line is: MCP says hello",
        ]
    )
    async with mcp_tools(filesystem(server_bin, allowed_dir)) as tools:
        result = await Agent("clerk", model=model, tools=tools).run("Write a note, then read its first line.")

    assert result.completed, result.describe()
    assert note.read_text() == "MCP says hello\nsecond line"  # the server really wrote it
    written, read = tool_results(result.messages)
    assert not written.is_error and str(note) in written.content
    assert (read.content, read.is_error) == ("MCP says hello", False)  # `head` reached the server
    # The model was shown the server's tools next to each other, as ordinary tool schemas.
    shown = {schema.name for schema in model.requests[0].tools}
    assert {"write_file", "read_text_file", "list_directory", "edit_file"} <= shown


async def test_tool_schemas_are_the_servers_json_schemas_verbatim(server_bin: Path, allowed_dir: Path) -> None:
    from mcp.client.client import Client
    from mcp.client.stdio import StdioServerParameters

    parameters = StdioServerParameters(command=str(server_bin / "mcp-server-filesystem"), args=[str(allowed_dir)])
    async with Client(parameters) as client:
        listed = {t.name: t for t in (await client.list_tools()).tools}

    async with filesystem(server_bin, allowed_dir) as server:
        tools = await server.list_tools()

    assert {t.name for t in tools} == set(listed)
    for tool in tools:
        assert isinstance(tool, MCPTool) and tool.mcp_name == tool.name
        assert tool.schema.parameters == listed[tool.name].input_schema
        assert tool.description == listed[tool.name].description
        assert tool.args_model.model_json_schema() == listed[tool.name].input_schema


async def test_path_outside_the_allowed_directory_is_an_error_result_the_model_reads(
    server_bin: Path, allowed_dir: Path, tmp_path: Path
) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("do not read")
    model = ScriptedModel(
        [
            call("read_text_file", path=str(secret)),
            call("list_allowed_directories"),
            "I may only read files in the allowed directory.",
        ]
    )
    async with mcp_tools(filesystem(server_bin, allowed_dir)) as tools:
        result = await Agent("clerk", model=model, tools=tools).run("Read the secret.")

    assert result.completed
    denied, allowed = tool_results(result.messages)
    assert denied.is_error and denied.content.startswith("Error: ")
    assert "Access denied" in denied.content and "do not read" not in denied.content
    assert not allowed.is_error and str(allowed_dir) in allowed.content
    # The error reached the model in its next request, so it could act on it.
    assert model.requests[1].messages[-1] == ToolResultsMessage([denied])


async def test_missing_required_arguments_are_caught_before_the_server_is_asked(
    server_bin: Path, allowed_dir: Path
) -> None:
    model = ScriptedModel([call("write_file", path=str(allowed_dir / "x.txt")), "I forgot the content."])
    async with mcp_tools(filesystem(server_bin, allowed_dir)) as tools:
        result = await Agent("clerk", model=model, tools=tools).run("Write x.")

    (problem,) = tool_results(result.messages)
    assert problem.is_error
    assert "missing required argument(s): content" in problem.content
    assert "Parameters: path, content" in problem.content
    assert not (allowed_dir / "x.txt").exists()


async def test_concurrent_calls_in_one_turn_share_the_server(server_bin: Path, allowed_dir: Path) -> None:
    names = [f"file{i}.txt" for i in range(5)]
    model = ScriptedModel(
        [
            [call("write_file", path=str(allowed_dir / name), content=name.upper()) for name in names],
            call("list_directory", path=str(allowed_dir)),
            "done",
        ]
    )
    async with mcp_tools(filesystem(server_bin, allowed_dir)) as tools:
        result = await Agent("clerk", model=model, tools=tools).run("Write five files.")

    assert result.completed
    assert sorted(os.listdir(allowed_dir)) == names
    assert all((allowed_dir / name).read_text() == name.upper() for name in names)
    listing = tool_results(result.messages)[-1].content
    assert all(f"[FILE] {name}" in listing for name in names)


async def test_agent_builds_and_reads_a_knowledge_graph_with_the_memory_server(
    server_bin: Path, tmp_path: Path
) -> None:
    memory_file = tmp_path / "memory.jsonl"
    memory = MCPServer.stdio(str(server_bin / "mcp-server-memory"), env={"MEMORY_FILE_PATH": str(memory_file)})
    model = ScriptedModel(
        [
            call(
                "create_entities",
                entities=[
                    {"name": "Ada Lovelace", "entityType": "person", "observations": ["wrote the first program"]},
                    {"name": "Analytical Engine", "entityType": "machine", "observations": ["designed by Babbage"]},
                ],
            ),
            call(
                "create_relations",
                relations=[{"from": "Ada Lovelace", "to": "Analytical Engine", "relationType": "programmed"}],
            ),
            call("read_graph"),
            call("search_nodes", query="first program"),
            "Ada Lovelace programmed the Analytical Engine.",
        ]
    )
    async with mcp_tools(memory) as tools:
        result = await Agent("archivist", model=model, tools=tools).run("Remember Ada.")

    assert result.completed, result.describe()
    created, related, graph, found = tool_results(result.messages)
    assert not any(r.is_error for r in (created, related, graph, found))
    read = json.loads(graph.content)
    assert {e["name"] for e in read["entities"]} == {"Ada Lovelace", "Analytical Engine"}
    assert read["relations"] == [{"from": "Ada Lovelace", "to": "Analytical Engine", "relationType": "programmed"}]
    assert [e["name"] for e in json.loads(found.content)["entities"]] == ["Ada Lovelace"]
    # `env` reached the server: it kept the graph where we told it to.
    assert "Ada Lovelace" in memory_file.read_text()


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="needs /proc to find the server process")
async def test_the_server_process_lives_exactly_as_long_as_the_block(server_bin: Path, allowed_dir: Path) -> None:
    marker = str(allowed_dir)
    assert processes_mentioning(marker) == []
    async with mcp_tools(filesystem(server_bin, allowed_dir)) as tools:
        assert len(processes_mentioning(marker)) == 1
        await Agent("clerk", model=ScriptedModel(["nothing to do"]), tools=tools).run("hi")
        assert len(processes_mentioning(marker)) == 1
    assert processes_mentioning(marker) == []


async def test_tools_used_after_the_block_say_the_server_is_not_running(server_bin: Path, allowed_dir: Path) -> None:
    async with mcp_tools(filesystem(server_bin, allowed_dir)) as tools:
        pass
    model = ScriptedModel([call("list_allowed_directories"), "The server is gone."])
    result = await Agent("clerk", model=model, tools=tools).run("List.")
    (late,) = tool_results(result.messages)
    assert late.is_error and "is not running" in late.content


async def test_prefix_and_allowed_tools_shape_what_the_model_sees(server_bin: Path, allowed_dir: Path) -> None:
    server = filesystem(
        server_bin,
        allowed_dir,
        tool_prefix="fs_",
        allowed_tools=["read_text_file", "write_file"],
        requires_approval=["write_file"],
    )
    async with server:
        tools = {t.name: t for t in await server.list_tools()}
    assert set(tools) == {"fs_read_text_file", "fs_write_file"}
    assert tools["fs_write_file"].mcp_name == "write_file"
    assert tools["fs_write_file"].requires_approval and not tools["fs_read_text_file"].requires_approval


async def test_a_denied_approval_keeps_the_call_from_reaching_the_server(server_bin: Path, allowed_dir: Path) -> None:
    target = allowed_dir / "denied.txt"
    model = ScriptedModel([call("write_file", path=str(target), content="x"), "Not allowed."])
    server = filesystem(server_bin, allowed_dir, requires_approval=True)
    async with mcp_tools(server) as tools:
        result = await Agent("clerk", model=model, tools=tools).run("Write.")
    (refused,) = tool_results(result.messages)
    assert refused.is_error and "not approved" in refused.content
    assert not target.exists()


async def test_a_server_that_cannot_start_raises_with_its_own_words(server_bin: Path, tmp_path: Path) -> None:
    server = filesystem(server_bin, tmp_path / "does-not-exist", name="files")
    with pytest.raises(MCPServerError) as raised:
        async with mcp_tools(server):
            pass
    message = str(raised.value)
    assert "MCP server 'files'" in message and "could not be started" in message
    assert "None of the specified directories are accessible" in message  # the server's stderr, quoted
    assert not server.is_open


async def test_naming_a_tool_the_server_lacks_is_a_clear_error(server_bin: Path, allowed_dir: Path) -> None:
    server = filesystem(server_bin, allowed_dir, allowed_tools=["read_text_file", "delete_everything"])
    with pytest.raises(MCPServerError, match="has no tool named delete_everything"):
        async with mcp_tools(server):
            pass
    assert not server.is_open


def test_one_server_object_serves_runs_in_separate_event_loops(server_bin: Path, allowed_dir: Path) -> None:
    server = filesystem(server_bin, allowed_dir)

    async def one_run(word: str) -> str:
        model = ScriptedModel([call("write_file", path=str(allowed_dir / f"{word}.txt"), content=word), "ok"])
        async with mcp_tools(server) as tools:
            result = await Agent("clerk", model=model, tools=tools).run("Write.")
        return tool_results(result.messages)[0].content

    # As with run_sync in a script: each asyncio.run is a new event loop.
    assert [asyncio.run(one_run(word)) for word in ("first", "second")] == [
        f"Successfully wrote to {allowed_dir / 'first.txt'}",
        f"Successfully wrote to {allowed_dir / 'second.txt'}",
    ]
    assert not server.is_open
