"""A retinue agent served over MCP, for the tests that drive it with the MCP SDK's own client.

    python agent_server.py stdio
    python agent_server.py streamable-http PORT

The agent's model is scripted: it counts the words of the prompt with a tool,
then answers "echo: <prompt> (<n> words)". A prompt containing "explode" makes
the model raise, so the run fails and the client must get an isError result.
"""

from __future__ import annotations

import asyncio
import sys

from retinue import Agent, ModelRequest, ToolResultsMessage, UserMessage, tool
from retinue.mcp import serve_agent_over_mcp
from retinue.testing.scripted import Reply, ScriptedModel, call


@tool
def count_words(text: str) -> int:
    """Count the words in a text."""
    return len(text.split())


def reply(request: ModelRequest) -> Reply:
    prompt = next(m.content for m in request.messages if isinstance(m, UserMessage))
    if "explode" in prompt:
        return RuntimeError("the scripted model exploded")
    last = request.messages[-1]
    if isinstance(last, ToolResultsMessage):
        return f"echo: {prompt} ({last.results[0].content} words)"
    return call("count_words", text=prompt)


def build_agent() -> Agent[str]:
    return Agent(
        "Echo Agent",
        description="Repeats the request and counts its words.",
        model=ScriptedModel(reply),
        tools=[count_words],
    )


if __name__ == "__main__":
    transport = sys.argv[1]
    if transport == "stdio":
        asyncio.run(serve_agent_over_mcp(build_agent()))
    else:
        asyncio.run(serve_agent_over_mcp(build_agent(), "streamable-http", port=int(sys.argv[2])))
