"""Over random conversations and windows: compaction never splits a tool call from its result.

Nor does it move or touch the goal or the unfinished last exchange (reasoning
included), edit a message in place, or reorder what it keeps.
"""

from __future__ import annotations

import asyncio
import copy
from dataclasses import dataclass

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from retinue import Agent
from retinue.events import Event, Notice
from retinue.messages import (
    AssistantMessage,
    Message,
    Reasoning,
    ToolCall,
    ToolResult,
    ToolResultsMessage,
    UserMessage,
)
from retinue.testing.scripted import ScriptedModel
from retinue.window import CompactingPolicy, ContextWindowExceeded, DropToolOutputs, Summarize, exchanges
from retinue.window.conversation import is_context_note


@dataclass
class ToolTurn:
    outputs: list[int]
    reasoning: bool


@dataclass
class TextTurn:
    answer: int
    reply: int


tool_turns = st.builds(ToolTurn, st.lists(st.integers(0, 3_000), min_size=1, max_size=3), st.booleans())
text_turns = st.builds(TextTurn, st.integers(0, 600), st.integers(1, 300))
turns = st.lists(st.one_of(tool_turns, tool_turns, text_turns), min_size=0, max_size=40)


def build(goal_chars: int, body: list[ToolTurn | TextTurn], last: ToolTurn | None) -> list[Message]:
    messages: list[Message] = [UserMessage("G" * goal_chars)]
    ids = 0
    for turn in [*body, *([last] if last else [])]:
        if isinstance(turn, TextTurn):
            messages += [AssistantMessage(text="a" * turn.answer), UserMessage("u" * turn.reply)]
            continue
        calls, results = [], []
        for size in turn.outputs:
            ids += 1
            calls.append(ToolCall(f"id{ids}", "probe", {"i": ids}))
            results.append(ToolResult(f"id{ids}", "probe", f"{ids}:" + "r" * size))
        reasoning = [Reasoning(f"thinking {ids}", signature=f"sig{ids}")] if turn.reasoning else []
        messages += [AssistantMessage(tool_calls=calls, reasoning=reasoning), ToolResultsMessage(results)]
    return messages


def policies() -> st.SearchStrategy[CompactingPolicy]:
    windows = st.integers(1_500, 12_000)
    reserves = st.integers(0, 600)
    summarize = st.builds(
        lambda window, reserve, size: Summarize(
            window=window,
            reserve_output_tokens=reserve,
            summarizer=ScriptedModel(lambda request: "s" * size, name="summarizer"),
            summary_max_tokens=300,
        ),
        windows,
        reserves,
        st.integers(0, 1_200),
    )
    drop = st.builds(
        lambda window, reserve, whole: DropToolOutputs(
            window=window, reserve_output_tokens=reserve, drop_exchanges=whole
        ),
        windows,
        reserves,
        st.booleans(),
    )
    return st.one_of(summarize, drop)


def assert_pairs_whole(messages: list[Message]) -> None:
    for index, message in enumerate(messages):
        if isinstance(message, AssistantMessage) and message.tool_calls:
            following = messages[index + 1]
            assert isinstance(following, ToolResultsMessage), "a tool call lost its result"
            assert [r.tool_call_id for r in following.results] == [c.id for c in message.tool_calls]
        if isinstance(message, ToolResultsMessage):
            before = messages[index - 1]
            assert isinstance(before, AssistantMessage) and before.tool_calls, "a tool result lost its call"


async def apply(policy: CompactingPolicy, messages: list[Message]) -> tuple[list[Message], list[Event], bool]:
    events: list[Event] = []
    model = ScriptedModel(["unused"])
    agent = Agent("prop", instructions="Probe things.", model=model, context_policy=policy)
    context = agent.new_context(on_event=events.append)
    context.messages.extend(messages)
    try:
        await policy.before_request(context, model)
    except ContextWindowExceeded:
        return context.messages, events, True
    return context.messages, events, False


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    goal_chars=st.integers(1, 2_000),
    body=turns,
    last=st.one_of(st.none(), tool_turns),
    policy=policies(),
)
def test_compaction_never_splits_pairs_nor_touches_the_goal_or_the_unfinished_exchange(
    goal_chars: int, body: list[ToolTurn | TextTurn], last: ToolTurn | None, policy: CompactingPolicy
) -> None:
    original = build(goal_chars, body, last)
    pristine = copy.deepcopy(original)
    last_piece = [original[i] for i in exchanges(original, 1)[-1]] if len(original) > 1 else []

    compacted, events, _ = asyncio.run(apply(policy, list(original)))

    assert_pairs_whole(compacted)
    assert compacted[0] is original[0]
    if last_piece:
        assert all(a is b for a, b in zip(compacted[-len(last_piece) :], last_piece, strict=True))
    assert original == pristine, "a message was edited in place"
    positions = {id(message): index for index, message in enumerate(original)}
    kept = [positions[id(m)] for m in compacted if id(m) in positions]
    assert kept == sorted(kept), "compaction reordered the conversation"
    originals_by_ids = {
        tuple(r.tool_call_id for r in m.results): m for m in original if isinstance(m, ToolResultsMessage)
    }
    for message in compacted:
        if id(message) in positions or is_context_note(message):
            continue
        assert isinstance(message, ToolResultsMessage), f"unexpected new message {message!r}"
        assert tuple(r.tool_call_id for r in message.results) in originals_by_ids
    for notice in events:
        if isinstance(notice, Notice) and notice.kind == "compaction":
            assert notice.data["after_tokens"] < notice.data["before_tokens"]
