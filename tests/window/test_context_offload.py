"""Large tool outputs are stored; the model sees a preview and reads the rest page by page."""

from __future__ import annotations

import re
from pathlib import Path

from retinue import Agent, ToolResultsMessage, tool
from retinue.messages import ModelRequest, ToolCall
from retinue.testing.scripted import ScriptedModel, call
from retinue.window import READ_TOOL_NAME, NoCompaction, Summarize

BIG = "".join(f"line {n:05d}: {'abcdefghij' * 5}\n" for n in range(400))  # 400 lines of 63 characters
HANDLE = re.compile(r"read_tool_output\(handle='([^']+)', page=1\) \(pages 1-(\d+) ")
PAGE = re.compile(
    r"^\[[^\]]+, page (\d+) of (\d+), characters [^\]]+\]\n(.*)\n\[(?:Next: [^\]]+|End of output)\]$", re.S
)


@tool(max_output_chars=100_000)
def dump() -> str:
    """Dump the whole log."""
    return BIG


def last_results(request: ModelRequest) -> ToolResultsMessage:
    message = request.messages[-1]
    assert isinstance(message, ToolResultsMessage)
    return message


def reading_model(pages_read: list[str]) -> ScriptedModel:
    """Calls dump, then reads every page of the stored output in turn, then answers."""
    state: dict[str, object] = {}

    def script(request: ModelRequest) -> ToolCall | str:
        if len(request.messages) == 1:
            return call("dump")
        content = last_results(request).results[0].content
        if "handle" not in state:
            found = HANDLE.search(content)
            assert found, content[-300:]
            state["handle"], state["pages"] = found.group(1), int(found.group(2))
        else:
            pages_read.append(content)
        if len(pages_read) < int(state["pages"]):  # type: ignore[call-overload]
            return call(READ_TOOL_NAME, handle=state["handle"], page=len(pages_read) + 1)
        return "read it all"

    return ScriptedModel(script)


def test_a_large_output_becomes_a_preview_and_reads_back_page_by_page() -> None:
    pages: list[str] = []
    model = reading_model(pages)
    policy = Summarize(window=100_000, offload_over_chars=8_000, preview_chars=1_000, page_chars=5_000)
    agent = Agent("reader", model=model, tools=[dump], context_policy=policy)
    result = agent.run_sync("Read the log.")

    assert result.completed, result.describe()
    shown = last_results(model.requests[1]).results[0].content
    whole_lines = BIG[:1_000].rfind("\n")  # the preview ends on the last whole line
    assert shown.startswith(BIG[:whole_lines] + "\n[Output truncated")
    assert f"showing {whole_lines} of 25,200 characters (400 lines)" in shown
    assert "(pages 1-6 of 5,000 characters)" in shown
    assert len(pages) == 6
    text = ""
    for number, content in enumerate(pages, start=1):
        parsed = PAGE.match(content)
        assert parsed, content[:200]
        assert (int(parsed.group(1)), int(parsed.group(2))) == (number, 6)
        text += parsed.group(3)
    assert text == BIG


def test_small_outputs_and_pages_themselves_are_never_offloaded() -> None:
    @tool
    def small() -> str:
        """A short answer."""
        return "x" * 100

    model = ScriptedModel([call("small"), "ok"])
    agent = Agent("a", model=model, tools=[small], context_policy=NoCompaction(window=100_000, offload_over_chars=500))
    agent.run_sync("go")
    assert last_results(model.requests[1]).results[0].content == "x" * 100


def test_unknown_handles_and_missing_pages_are_errors_the_model_can_act_on() -> None:
    model = ScriptedModel(
        [
            call("dump"),
            call(READ_TOOL_NAME, handle="out_00000000_9"),
            call(READ_TOOL_NAME, handle="../../etc/passwd"),
            "done",
        ]
    )
    agent = Agent("a", model=model, tools=[dump], context_policy=NoCompaction(window=100_000))
    agent.run_sync("go")

    missing = last_results(model.requests[2]).results[0]
    assert missing.is_error and "no stored output 'out_00000000_9'" in missing.content
    escaped = last_results(model.requests[3]).results[0]
    assert escaped.is_error and "no stored output" in escaped.content


def test_a_page_past_the_end_says_how_many_pages_there_are() -> None:
    handles: list[str] = []

    def script(request: ModelRequest) -> ToolCall | str:
        if len(request.messages) == 1:
            return call("dump")
        if not handles:
            found = HANDLE.search(last_results(request).results[0].content)
            assert found
            handles.append(found.group(1))
            return call(READ_TOOL_NAME, handle=handles[0], page=99)
        return "done"

    model = ScriptedModel(script)
    agent = Agent("a", model=model, tools=[dump], context_policy=NoCompaction(window=100_000))
    agent.run_sync("go")
    error = last_results(model.requests[2]).results[0]
    assert error.is_error and "has pages 1 to 7; page 99 does not exist" in error.content


def test_a_workspace_the_user_gives_keeps_the_stored_outputs(tmp_path: Path) -> None:
    agent = Agent(
        "a",
        model=ScriptedModel([call("dump"), "done"]),
        tools=[dump],
        context_policy=NoCompaction(window=100_000, workspace=tmp_path / "ws"),
    )
    result = agent.run_sync("go")

    results = result.messages[2]
    assert isinstance(results, ToolResultsMessage)
    found = HANDLE.search(results.results[0].content)
    assert found
    assert (tmp_path / "ws" / f"{found.group(1)}.txt").read_text() == BIG
