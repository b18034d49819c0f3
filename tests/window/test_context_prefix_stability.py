"""Requests only grow at the end, so nearly all of each is the previous one: what prompt caches reuse."""

from __future__ import annotations

from context_helpers import GOAL, fetch, fetching_model

from retinue import Agent, Limits
from retinue.messages import ModelRequest, ToolSchema, UserMessage
from retinue.observe.prefix_stability import PrefixStabilityMeter, prefix_share, serialize_request, shared_prefix_bytes
from retinue.testing.scripted import ScriptedModel
from retinue.window import Summarize

INSTRUCTIONS = (
    "You are a careful research assistant. Fetch each record with the fetch tool, one per turn, "
    "check it for errors and keep going until every record is fetched. " * 4
)


def test_a_request_that_only_appends_has_the_previous_one_as_its_prefix() -> None:
    tools = [ToolSchema("fetch", "Fetch one record.", {"type": "object"})]
    first = ModelRequest(INSTRUCTIONS, [UserMessage("a")], tools)
    second = ModelRequest(INSTRUCTIONS, [UserMessage("a"), UserMessage("b")], tools)
    before, after = serialize_request(first), serialize_request(second)

    assert after.startswith(before)
    assert prefix_share(first, second) == len(before) / len(after)
    assert prefix_share(second, second) == 1.0


def test_changed_instructions_share_nothing_after_the_change() -> None:
    tools = [ToolSchema("fetch", "Fetch one record.", {"type": "object"})]
    first = ModelRequest("Be brief.", [UserMessage("a")], tools)
    second = ModelRequest("Be thorough.", [UserMessage("a")], tools)

    assert shared_prefix_bytes(serialize_request(first), serialize_request(second)) == len('{"instructions":"Be ')


def test_shared_prefix_bytes_finds_the_first_difference_anywhere() -> None:
    text = bytes(range(256)) * 40
    for cut in (0, 1, 255, 5_000, len(text) - 1):
        changed = text[:cut] + b"\xff\xfe" + text[cut + 2 :]
        expected = cut + (1 if text[cut] == 0xFF else 0)
        assert shared_prefix_bytes(text, changed) == expected
    assert shared_prefix_bytes(text, text + b"more") == len(text)


def test_a_50_turn_run_reuses_at_least_90_percent_of_each_request() -> None:
    meter = PrefixStabilityMeter()
    agent = Agent(
        "fetcher",
        instructions=INSTRUCTIONS,
        model=fetching_model(49),
        tools=[fetch],
        context_policy=Summarize(window=200_000),
    )
    result = agent.run_sync(GOAL, on_event=meter)

    assert result.completed and result.turns == 50
    report = meter.report()
    assert len(report.requests) == 49  # the first request has nothing before it
    assert all(request.extends_previous for request in report.requests)
    assert report.mean >= 0.90
    assert report.weighted >= 0.95
    assert report.compaction_turns == []


def test_compaction_lowers_the_shared_prefix_only_at_the_compaction_turn() -> None:
    meter = PrefixStabilityMeter()
    summarizer = ScriptedModel(lambda request: "Records fetched so far are fine; fetch the next.", name="cheap")
    agent = Agent(
        "fetcher",
        instructions=INSTRUCTIONS,
        model=fetching_model(99),
        tools=[fetch],
        context_policy=Summarize(window=12_000, summarizer=summarizer),
        limits=Limits(max_turns=None),
    )
    result = agent.run_sync(GOAL, on_event=meter)

    assert result.completed
    report = meter.report()
    compacted = set(report.compaction_turns)
    assert compacted, "the window is small enough that the run must compact"
    for request in report.requests:
        if request.turn in compacted:
            # Only instructions, tools, the goal (and at most the old summary's header) still match.
            assert not request.extends_previous
            assert request.share < 0.5
        else:
            assert request.extends_previous, f"turn {request.turn} rewrote the conversation without compacting"
    shares = {request.turn: request.share for request in report.requests}
    uncompacted = [share for turn, share in shares.items() if turn not in compacted]
    assert min(uncompacted) > max(shares[turn] for turn in compacted)


def test_the_meter_measures_each_run_against_its_own_previous_request() -> None:
    meter = PrefixStabilityMeter()
    agent = Agent("fetcher", instructions=INSTRUCTIONS, model=fetching_model(3), tools=[fetch])
    agent.run_sync("first", on_event=meter)
    agent.override(model=fetching_model(2)).run_sync("second", on_event=meter)

    reports = meter.reports()
    assert [len(report.requests) for report in reports.values()] == [3, 2]
    assert all(request.extends_previous for report in reports.values() for request in report.requests)
