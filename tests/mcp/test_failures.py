"""What the model sees when the MCP side fails, and how a server's lifetime follows the run.

The reference servers cannot crash or send protocol errors on demand, so these
tests use failing_server.py, a small server of ours built on the MCP SDK.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest
from mcp_helpers import SRC

from retinue import Agent, Message, ModelRequest, ToolResult, ToolResultsMessage, UserMessage
from retinue.errors import MissingDependencyError
from retinue.mcp import MCPServer, mcp_tools
from retinue.testing.scripted import Reply, ScriptedModel, call

FailingServer = tuple[str, list[str], Path]


def results(messages: Sequence[Message]) -> list[ToolResult]:
    return [result for m in messages if isinstance(m, ToolResultsMessage) for result in m.results]


def pid_is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie has exited; only its exit status is left to collect.
    status = Path(f"/proc/{pid}/status")
    return not (status.exists() and "State:\tZ" in status.read_text())


async def test_a_crashed_server_is_an_error_result_then_restarted(failing_server_args: FailingServer) -> None:
    command, args, pid_file = failing_server_args
    server = MCPServer.stdio(command, args, name="flaky", max_restarts=1)
    model = ScriptedModel(
        [
            call("echo", text="before"),
            call("crash"),
            call("echo", text="after the restart"),
            call("crash"),
            call("echo", text="too late"),
            "The server keeps crashing.",
        ]
    )
    async with mcp_tools(server) as tools:
        first_pid = int(pid_file.read_text())
        result = await Agent("user", model=model, tools=tools, tool_timeout=20).run("Try the server.")
        second_pid = int(pid_file.read_text())

    assert result.completed, result.describe()
    before, crash, after, crash_again, too_late = results(result.messages)
    assert (before.content, before.is_error) == ("before", False)
    assert crash.is_error
    assert "MCP server 'flaky' stopped while handling 'crash'" in crash.content
    assert "started again on the next call" in crash.content
    assert "failing_server: crashing on purpose" in crash.content  # the server's stderr, for the model and the logs
    assert (after.content, after.is_error) == ("after the restart", False)
    assert second_pid != first_pid  # a new process answered
    assert crash_again.is_error and "will not be started again" in crash_again.content
    assert too_late.is_error and "do not call its tools again" in too_late.content
    assert not pid_is_alive(first_pid) and not pid_is_alive(second_pid)


async def test_error_results_protocol_errors_and_timeouts_reach_the_model(failing_server_args: FailingServer) -> None:
    command, args, pid_file = failing_server_args
    server = MCPServer.stdio(command, args, name="failing")
    model = ScriptedModel(
        [
            [call("raise_error"), call("protocol_error")],
            call("slow", seconds=30),
            call("echo", text="still alive"),
            call("picture"),
            "Done.",
        ]
    )
    async with mcp_tools(server) as tools:
        slow = next(t for t in tools if t.name == "slow")
        slow.timeout = 0.5
        result = await Agent("user", model=model, tools=tools).run("Try everything.")
        pid = int(pid_file.read_text())
        assert pid_is_alive(pid)
    assert not pid_is_alive(pid)

    assert result.completed, result.describe()
    tool_error, protocol_error, timed_out, alive, picture = results(result.messages)
    assert (tool_error.content, tool_error.is_error) == ("Error: the widget is broken", True)
    assert protocol_error.is_error
    assert protocol_error.content == (
        "Error: MCP server 'failing' rejected the call to 'protocol_error': "
        "protocol_error always refuses (MCP error -32602)."
    )
    assert timed_out.is_error and "did not finish within 0.5 seconds" in timed_out.content
    # A call cancelled by its timeout leaves the session usable.
    assert (alive.content, alive.is_error) == ("still alive", False)
    assert picture.content == "[image (image/png, 6 bytes) not shown]\na picture"


async def test_two_runs_share_one_open_server(failing_server_args: FailingServer) -> None:
    command, args, pid_file = failing_server_args
    server = MCPServer.stdio(command, args)
    async with server:
        tools = await server.list_tools()
        pid = int(pid_file.read_text())
        async with mcp_tools(server) as same_tools:  # entering again shares the process
            assert int(pid_file.read_text()) == pid
            assert [t.name for t in same_tools] == [t.name for t in tools]
        assert server.is_open and pid_is_alive(pid)
        agent = Agent("user", model=ScriptedModel(echo_once), tools=tools)
        first, second = [await agent.run(f"say {word}") for word in ("one", "two")]
    assert not server.is_open and not pid_is_alive(pid)
    assert (first.output, second.output) == ("said: say one", "said: say two")


def echo_once(request: ModelRequest) -> Reply:
    last = request.messages[-1]
    if isinstance(last, UserMessage):
        return call("echo", text=last.content)
    assert isinstance(last, ToolResultsMessage)
    return f"said: {last.results[0].content}"


async def test_a_server_that_never_answers_times_out_on_start(tmp_path: Path) -> None:
    from retinue.mcp import MCPServerError

    silent = tmp_path / "silent.py"
    silent.write_text("import time\ntime.sleep(60)\n")
    server = MCPServer.stdio(sys.executable, [str(silent)], name="silent", connect_timeout=1.0)
    with pytest.raises(MCPServerError, match=r"'silent' \(.*\) did not answer within 1 seconds"):
        async with server:
            pass


def test_without_the_mcp_package_a_clear_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    # None in sys.modules makes an import fail as if the package were not installed.
    for name in [n for n in sys.modules if n == "mcp" or n.startswith("mcp.")] or ["mcp"]:
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(MissingDependencyError) as raised:
        MCPServer.stdio("anything")
    assert raised.value.extra == "mcp" and raised.value.module == "mcp"
    assert "pip install 'retinue[mcp]'" in str(raised.value)

    from retinue.mcp import agent_mcp_server

    with pytest.raises(MissingDependencyError):
        agent_mcp_server(Agent("a", model=ScriptedModel(["x"])))


def test_importing_retinue_and_retinue_mcp_does_not_import_the_sdk() -> None:
    code = "import sys, retinue, retinue.mcp; print('mcp' in sys.modules, 'mcp.types' in sys.modules)"
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert done.stdout.split() == ["False", "False"]


def test_mcp_tool_names_are_made_safe_for_model_providers() -> None:
    from mcp.types import Tool as ListedTool

    server = MCPServer.stdio("unused", tool_prefix="my.")
    schema = {"type": "object", "properties": {"q": {"type": "string", "title": "Query"}}, "required": ["q"]}
    listed = [ListedTool(name=name, input_schema=schema) for name in ("files/read", "files.read", "x" * 100)]
    tools = server._build_tools(listed)
    assert [t.name for t in tools] == ["my_files_read", "my_files_read_2", "my_" + "x" * 61]
    assert [t.mcp_name for t in tools] == ["files/read", "files.read", "x" * 100]
    assert tools[0].schema.parameters == schema  # titles and all: the model sees what the server published
