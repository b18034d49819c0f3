"""The context-policy hook: how context engineering plugs into the loop.

A `ContextPolicy` is called before every model request (to rewrite the
conversation in place) and on every tool result (to replace what the model
reads), and may add tools of its own. This file's tiny policy records its calls
to show exactly when the loop makes them.
"""

from collections.abc import Sequence
from typing import Any

from retinue import Agent, Tool, ToolResult, ToolResultsMessage, UserMessage, tool
from retinue.models.base import Model
from retinue.run_context import RunContext
from retinue.testing.scripted import ScriptedModel, call
from retinue.window.policy import ContextPolicy


@tool
def fetch(url: str) -> str:
    """Fetch a page."""
    return "<html>" + "x" * 5000 + "</html>"


class RecordingPolicy:
    """Offloads every tool output, keeping a short preview; `read_page` gives it back."""

    def __init__(self, model: ScriptedModel) -> None:
        self.model = model
        self.calls: list[tuple[str, Any]] = []
        self.stored: dict[str, str] = {}

        @tool
        def read_page(tool_call_id: str) -> str:
            """Read an offloaded tool output in full."""
            return self.stored[tool_call_id]

        self._tools = [read_page]

    def tools(self) -> Sequence[Tool]:
        return self._tools

    async def before_request(self, context: RunContext, model: Model) -> None:
        # Record how many requests the model had already received: the hook runs before each one.
        self.calls.append(("before_request", len(self.model.requests)))
        if len(context.messages) > 3:
            # Rewrite the conversation in place: keep the prompt and the latest turn.
            context.messages[1:-2] = [UserMessage("[earlier turns compacted]")]

    async def on_tool_result(self, result: ToolResult, context: RunContext) -> ToolResult:
        self.calls.append(("on_tool_result", result.name))
        if result.name == "read_page":
            return result
        self.stored[result.tool_call_id] = result.content
        preview = f"{result.content[:10]}... [{len(result.content)} characters; read_page('{result.tool_call_id}')]"
        return ToolResult(result.tool_call_id, result.name, preview, result.is_error)


async def test_the_policy_is_called_before_each_request_and_on_each_tool_result() -> None:
    first, second = call("fetch", url="https://a.example"), call("fetch", url="https://b.example")
    model = ScriptedModel([[first, second], call("read_page", tool_call_id=first.id), "summary"])
    policy = RecordingPolicy(model)
    assert isinstance(policy, ContextPolicy)
    result = await Agent("reader", model=model, tools=[fetch], context_policy=policy).run("Summarise both pages")

    assert result.output == "summary"
    assert policy.calls == [
        ("before_request", 0),
        ("on_tool_result", "fetch"),
        ("on_tool_result", "fetch"),
        ("before_request", 1),
        ("on_tool_result", "read_page"),
        ("before_request", 2),
    ]


async def test_the_model_reads_the_rewritten_tool_result() -> None:
    first = call("fetch", url="https://a.example")
    model = ScriptedModel([first, call("read_page", tool_call_id=first.id), "summary"])
    policy = RecordingPolicy(model)
    result = await Agent("reader", model=model, tools=[fetch], context_policy=policy).run("Summarise")

    preview = model.requests[1].messages[-1]
    assert isinstance(preview, ToolResultsMessage)
    assert preview.results[0].content == f"<html>xxxx... [5013 characters; read_page('{first.id}')]"
    full = result.messages[-2]
    assert isinstance(full, ToolResultsMessage)
    assert full.results[0].content.startswith("<html>xxxxxxxx")
    assert len(full.results[0].content) == 5013


async def test_the_policys_tools_are_added_to_the_agents() -> None:
    model = ScriptedModel(["nothing to do"])
    agent = Agent("reader", model=model, tools=[fetch], context_policy=RecordingPolicy(model))
    await agent.run("hi")
    assert [schema.name for schema in model.requests[0].tools] == ["fetch", "read_page"]
    assert [t.name for t in agent.tools] == ["fetch"], "agent.tools stays the agent's own"


async def test_before_request_can_rewrite_the_conversation_the_model_sees() -> None:
    model = ScriptedModel([call("fetch", url="a"), call("fetch", url="b"), "done"])
    policy = RecordingPolicy(model)
    await Agent("reader", model=model, tools=[fetch], context_policy=policy).run("Read two pages")

    third = model.requests[2].messages
    assert third[0] == UserMessage("Read two pages")
    assert third[1] == UserMessage("[earlier turns compacted]")
    assert len(third) == 4
