"""What compaction keeps, what it hands the summarizer, and what it tells people."""

from __future__ import annotations

import pytest
from context_helpers import GOAL, exchange, fetch, record

from retinue import Agent, Limits
from retinue.events import Event, Notice
from retinue.messages import AssistantMessage, Message, ModelRequest, ToolResultsMessage, UserMessage
from retinue.testing.scripted import ScriptedModel
from retinue.window import (
    CompactingPolicy,
    CompactionJob,
    ContextWindowExceeded,
    DropToolOutputs,
    NoCompaction,
    Summarize,
)

SUMMARY = "Fetched records 1-9; all fine. Decision: keep fetching in order. Open: none."


def conversation(exchanges: int, *, reasoning_on_last: bool = False) -> list[Message]:
    messages: list[Message] = [UserMessage(GOAL)]
    for n in range(1, exchanges + 1):
        last = n == exchanges
        messages += exchange(
            n, record(n), reasoning="I should fetch the next record." if last and reasoning_on_last else None
        )
    return messages


async def before_request(
    policy: CompactingPolicy, messages: list[Message], model: ScriptedModel | None = None
) -> tuple[list[Message], list[Event]]:
    """Run the policy's pre-call step on `messages` as the loop would, returning the new conversation and events."""
    events: list[Event] = []
    agent_model = model or ScriptedModel(["unused"])
    agent = Agent("fetcher", instructions="Fetch records.", model=agent_model, tools=[fetch], context_policy=policy)
    context = agent.new_context(on_event=events.append)
    context.messages.extend(messages)
    await policy.before_request(context, agent_model)
    return context.messages, events


async def test_the_summarizer_receives_the_dropped_turns_and_its_summary_replaces_them() -> None:
    summarizer = ScriptedModel([SUMMARY], name="cheap")
    original = conversation(10)
    compacted, events = await before_request(Summarize(window=5_000, summarizer=summarizer), list(original))

    [sent] = summarizer.requests
    assert sent.tools == []
    prompt = sent.messages[0]
    assert isinstance(prompt, UserMessage)
    kept_from = compacted.index(next(m for m in compacted[2:]))
    assert compacted[0] is original[0]
    note = compacted[1]
    assert isinstance(note, UserMessage) and note.content.startswith("[Context summary]") and SUMMARY in note.content
    dropped = original[1 : original.index(compacted[2])]
    assert dropped, "some exchanges must have been summarized"
    for message in dropped:
        if isinstance(message, ToolResultsMessage):
            assert message.results[0].content in prompt.content
    for message in compacted[kept_from:]:
        assert any(message is kept for kept in original)
    assert compacted[-2:] == original[-2:]
    [notice] = [e for e in events if isinstance(e, Notice)]
    assert notice.kind == "compaction"
    assert notice.data["before_tokens"] > notice.data["after_tokens"]
    assert notice.data["strategy"] == "summarize"


async def test_without_a_summarizer_the_agents_own_model_summarizes_and_its_usage_is_charged() -> None:
    model = ScriptedModel([SUMMARY])
    agent = Agent("fetcher", model=model, tools=[fetch], context_policy=Summarize(window=5_000))
    context = agent.new_context()
    context.messages.extend(conversation(10))
    await agent.context_policy.before_request(context, model)  # type: ignore[union-attr]

    assert len(model.requests) == 1
    assert context.budget.own_usage.requests == 1
    assert context.budget.own_usage.input_tokens > 0


async def test_the_summary_keeps_a_pointer_to_the_full_text_of_what_it_replaced() -> None:
    summarizer = ScriptedModel([SUMMARY, "done"], name="cheap")
    policy = Summarize(window=5_000, summarizer=summarizer)
    compacted, _ = await before_request(policy, conversation(10))
    note = compacted[1]
    assert isinstance(note, UserMessage)
    assert "read_tool_output(handle='ctx_" in note.content
    assert "fetch ×" in note.content


async def test_the_goal_and_the_unfinished_exchange_with_its_reasoning_are_never_touched() -> None:
    original = conversation(12, reasoning_on_last=True)
    last_assistant = original[-2]
    assert isinstance(last_assistant, AssistantMessage)
    reasoning_before = [(r.text, r.signature) for r in last_assistant.reasoning]

    for policy in (Summarize(window=5_000, summarizer=ScriptedModel([SUMMARY])), DropToolOutputs(window=5_000)):
        compacted, _ = await before_request(policy, list(original))
        assert compacted[0] is original[0]
        assert compacted[-2] is last_assistant and compacted[-1] is original[-1]
        assert [(r.text, r.signature) for r in last_assistant.reasoning] == reasoning_before


async def test_dropping_tool_outputs_leaves_placeholders_that_say_where_the_output_went() -> None:
    original = conversation(10)
    compacted, events = await before_request(DropToolOutputs(window=6_000), list(original))

    assert len(compacted) == len(original)
    outputs = [m.results[0].content for m in compacted if isinstance(m, ToolResultsMessage)]
    placeholders = [text for text in outputs if text.startswith("[Dropped")]
    assert placeholders
    assert all("2,000 characters" in text and "read_tool_output(handle='ctx_" in text for text in placeholders)
    # Oldest first: the dropped outputs are a prefix of the exchanges.
    dropped_flags = [text.startswith("[Dropped") for text in outputs]
    assert dropped_flags == sorted(dropped_flags, reverse=True)
    # The originals were not edited in place: earlier events still hold them.
    originals = [m.results[0].content for m in original if isinstance(m, ToolResultsMessage)]
    assert originals == [record(n) for n in range(1, 11)]
    assert [e.data["strategy"] for e in events if isinstance(e, Notice)] == ["drop_tool_outputs"]


async def test_when_placeholders_are_not_enough_the_oldest_exchanges_go_behind_one_note() -> None:
    original = conversation(40)
    compacted, _ = await before_request(DropToolOutputs(window=3_000, reserve_output_tokens=0), list(original))

    assert compacted[0] is original[0]
    note = compacted[1]
    assert isinstance(note, UserMessage) and note.content.startswith("[Context note]")
    assert "earlier messages were removed" in note.content and "read_tool_output(handle='ctx_" in note.content
    assert len(compacted) < len(original)


async def test_a_request_that_cannot_be_made_to_fit_stops_the_run_with_the_reason() -> None:
    agent = Agent(
        "verbose",
        instructions="Rules. " * 3_000,
        model=ScriptedModel(["never sent"]),
        context_policy=Summarize(window=4_000, summarizer=ScriptedModel([SUMMARY])),
    )
    result = await agent.run("hello")

    assert result.status == "error"
    assert isinstance(result.error, ContextWindowExceeded)
    assert "instructions and tool schemas take about" in str(result.error)
    assert agent.resolved_model().requests == []  # type: ignore[attr-defined]


async def test_an_explicit_token_budget_compacts_below_the_window() -> None:
    summarizer = ScriptedModel([SUMMARY])
    _, events = await before_request(
        Summarize(window=1_000_000, token_budget=4_000, summarizer=summarizer), conversation(10)
    )
    [notice] = [e for e in events if isinstance(e, Notice)]
    assert notice.data["limit_tokens"] == 4_000
    assert notice.data["after_tokens"] <= 4_000 * 0.8


async def test_an_unknown_window_is_reported_once_and_nothing_is_compacted() -> None:
    model = ScriptedModel(["a", "b"])
    events: list[Event] = []
    agent = Agent("a", model=model, context_policy=Summarize())
    result = await agent.run("hi", on_event=events.append)
    await agent.run("again", history=result.messages, on_event=events.append)
    notices = [e for e in events if isinstance(e, Notice)]
    assert [n.kind for n in notices] == ["context_window_unknown", "context_window_unknown"]  # once per run
    assert "pass window=" in notices[0].message


async def test_a_custom_strategy_only_writes_the_compaction() -> None:
    class KeepGoalAndLast(CompactingPolicy):
        strategy = "keep_goal_and_last"

        async def compact(self, job: CompactionJob) -> list[Message] | None:
            return [job.messages[0], *job.messages[-2:]]

    model = ScriptedModel(["unused"])
    compacted, events = await before_request(KeepGoalAndLast(window=5_000), conversation(10), model)
    assert len(compacted) == 3
    assert [e.data["strategy"] for e in events if isinstance(e, Notice)] == ["keep_goal_and_last"]


async def test_no_compaction_still_offers_nothing_it_cannot_use() -> None:
    assert NoCompaction(offload_over_chars=None).tools() == ()
    assert [t.name for t in NoCompaction().tools()] == ["read_tool_output"]
    assert [t.name for t in Summarize(offload_over_chars=None).tools()] == ["read_tool_output"]


def test_settings_that_cannot_work_are_refused() -> None:
    from retinue.errors import ConfigurationError

    with pytest.raises(ConfigurationError):
        Summarize(compact_at=0.5, compact_to=0.6)
    with pytest.raises(ConfigurationError):
        Summarize(window=0)


async def test_the_loop_compacts_a_real_run_and_keeps_going() -> None:
    summarizer = ScriptedModel(lambda request: SUMMARY, name="cheap")
    made = 0

    def script(request: ModelRequest) -> object:
        nonlocal made
        made += 1
        from retinue.testing.scripted import call

        return call("fetch", n=made) if made < 30 else "done"

    agent = Agent(
        "fetcher",
        model=ScriptedModel(script),  # type: ignore[arg-type]
        tools=[fetch],
        context_policy=Summarize(window=6_000, summarizer=summarizer),
        limits=Limits(max_turns=None),
    )
    result = await agent.run(GOAL)
    assert result.completed
    assert result.messages[0] == UserMessage(GOAL)
    assert any(isinstance(m, UserMessage) and SUMMARY in m.content for m in result.messages)


async def test_a_summarizer_with_a_small_window_reads_the_dropped_turns_in_parts() -> None:
    class SmallSummarizer(ScriptedModel):
        context_window = 3_000

    summarizer = SmallSummarizer(lambda request: f"summary {len(summarizer.requests)}", name="small")
    policy = Summarize(window=200_000, token_budget=12_000, summarizer=summarizer, summary_max_tokens=300)
    compacted, _ = await before_request(policy, conversation(22))

    assert len(summarizer.requests) > 2
    for number, request in enumerate(summarizer.requests, start=1):
        text = request.messages[0].content  # type: ignore[union-attr]
        assert GOAL in text
        assert (f"summary {number - 1}" in text) == (number > 1)  # each part folds in the summary so far
    note = compacted[1]
    assert isinstance(note, UserMessage) and note.content.endswith(f"summary {len(summarizer.requests)}")


async def test_the_policy_reports_how_full_the_window_was_at_the_latest_call() -> None:
    model = ScriptedModel(["unused"])
    policy = NoCompaction(window=10_000, reserve_output_tokens=0)
    agent = Agent("a", model=model, tools=[fetch], context_policy=policy)
    context = agent.new_context()
    assert policy.status(context) is None
    context.messages.extend(conversation(4))
    await policy.before_request(context, model)

    status = policy.status(context)
    assert status is not None and status.limit.max_input_tokens == 10_000
    assert status.trigger_tokens == 8_000 and status.compactions == 0
    assert status.share_of_limit is not None and 0.2 < status.share_of_limit < 0.25
