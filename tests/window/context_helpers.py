"""Shared builders for the context tests: a fetch tool, a 'fetch N times then answer' script, conversations."""

from __future__ import annotations

from retinue.messages import (
    AssistantMessage,
    Message,
    ModelRequest,
    Reasoning,
    ToolCall,
    ToolResult,
    ToolResultsMessage,
)
from retinue.testing.scripted import ScriptedModel, call
from retinue.tools import tool

GOAL = "Fetch every record from 1 to 299, then say done."
RECORD_CHARS = 2_000


def record(n: int) -> str:
    """A distinct ~2,000-character record, so dropped and kept outputs are told apart."""
    line = f"record {n}: the quick brown fox {n} jumps over the lazy dog.\n"
    return (line * (RECORD_CHARS // len(line) + 1))[:RECORD_CHARS]


@tool
def fetch(n: int) -> str:
    """Fetch one record.

    Args:
        n: The record number.
    """
    return record(n)


def fetching_model(calls: int, *, answer: str = "done") -> ScriptedModel:
    """A model that calls `fetch` `calls` times (1, 2, ...) and then answers, whatever its context says."""
    made = 0

    def script(request: ModelRequest) -> ToolCall | str:
        nonlocal made
        if made < calls:
            made += 1
            return call("fetch", n=made)
        return answer

    return ScriptedModel(script)


def exchange(index: int, output: str, *, reasoning: str | None = None) -> list[Message]:
    call_id = f"c{index}"
    assistant = AssistantMessage(
        tool_calls=[ToolCall(call_id, "fetch", {"n": index})],
        reasoning=[Reasoning(reasoning, signature=f"sig-{index}")] if reasoning else [],
    )
    return [assistant, ToolResultsMessage([ToolResult(call_id, "fetch", output)])]
