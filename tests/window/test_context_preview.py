"""`preview_request` shows exactly what the next call sends, with sizes and the window."""

from __future__ import annotations

from context_helpers import GOAL, exchange, fetch, record

from retinue import Agent
from retinue.inspect_request import preview_request
from retinue.messages import Message, UserMessage
from retinue.testing.scripted import ScriptedModel
from retinue.tokens import estimate_request_tokens
from retinue.window import NoCompaction, Summarize


def agent(policy: Summarize | NoCompaction | None = None) -> Agent[str]:
    return Agent(
        "fetcher",
        instructions="Fetch records carefully.",
        model=ScriptedModel(["unused"]),
        tools=[fetch],
        context_policy=policy,
    )


def test_a_new_prompt_shows_instructions_tools_and_the_goal_with_sizes() -> None:
    text = preview_request(agent(Summarize(window=8_000)), "Fetch record 7.")

    assert text.splitlines()[0] == "Next request of agent 'fetcher' to scripted:test"
    assert "window 8,000 tokens; input limit 6,976" in text
    assert "summarize compacts above 5,580" in text
    assert "== Instructions · ~6 tokens ==\n    Fetch records carefully." in text
    assert "== Tools (2) ·" in text and "- fetch · ~" in text and "- read_tool_output · ~" in text
    assert '"n": {' in text  # the parameter schema, as sent
    assert "#1 user · ~" in text and "    Fetch record 7." in text
    assert "== Total: ~" in text and "of 6,976 input tokens" in text


def test_a_conversation_shows_calls_results_and_thinking_and_the_total_matches_the_estimate() -> None:
    messages: list[Message] = [UserMessage(GOAL), *exchange(1, record(1), reasoning="Start with record one.")]
    subject = agent(NoCompaction(window=200_000))
    text = preview_request(subject, messages)

    assert "(thinking, signed) Start with record one." in text
    assert '-> fetch({"n": 1})  [c1]' in text
    assert "<- fetch [c1]:" in text and record(1).splitlines()[0] in text


def test_the_total_is_the_estimate_of_the_request_the_loop_would_send() -> None:
    model = ScriptedModel(["done"])
    subject = Agent(
        "fetcher", instructions="Fetch.", model=model, tools=[fetch], context_policy=NoCompaction(window=9_000)
    )
    text = preview_request(subject, "Fetch record 7.")
    subject.run_sync("Fetch record 7.")

    total = estimate_request_tokens(model.requests[0])
    assert f"== Total: ~{total:,} of 7,976 input tokens" in text


def test_an_oversized_conversation_is_flagged() -> None:
    messages: list[Message] = [UserMessage(GOAL)]
    for n in range(1, 15):
        messages += exchange(n, record(n))
    text = preview_request(agent(Summarize(window=8_000)), messages)
    assert "This request does not fit" in text
    assert "The summarize policy would compact the conversation before sending this request." in text


def test_long_parts_can_be_cut_and_agents_without_a_policy_use_the_table() -> None:
    text = preview_request(agent(None), [UserMessage("x" * 500)], model=ScriptedModel(["-"]), max_part_chars=50)
    assert "x" * 50 + "... [450 more characters]" in text
    assert "window unknown; no context policy" in text
    assert "(window unknown)" in text
