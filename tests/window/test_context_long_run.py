"""A 300-turn run in an 8,000-token window: compaction keeps it going; without compaction it stops cleanly."""

from __future__ import annotations

from context_helpers import GOAL, fetch, fetching_model

from retinue import Agent, Limits, RunResult
from retinue.events import Event, ModelRequestSent, Notice
from retinue.messages import ModelRequest, UserMessage
from retinue.testing.scripted import ScriptedModel
from retinue.tokens import estimate_request_tokens
from retinue.window import ContextWindowExceeded, DropToolOutputs, NoCompaction, Summarize

WINDOW = 8_000
INPUT_LIMIT = WINDOW - 1_024  # the default reserve for the answer


def run_300_turns(policy: Summarize | DropToolOutputs | NoCompaction) -> tuple[RunResult[str], list[Event]]:
    events: list[Event] = []
    agent = Agent(
        "fetcher",
        instructions="You fetch records with the fetch tool, one per turn.",
        model=fetching_model(299),
        tools=[fetch],
        context_policy=policy,
        limits=Limits(max_turns=None),
    )
    result = agent.run_sync(GOAL, on_event=events.append)
    return result, events


def sent(events: list[Event], purpose: str = "turn") -> list[ModelRequest]:
    """The requests the run sent: its own turns by default, or those made for `purpose` ("compaction")."""
    return [event.request for event in events if isinstance(event, ModelRequestSent) and event.purpose == purpose]


def compactions(events: list[Event]) -> list[Notice]:
    return [event for event in events if isinstance(event, Notice) and event.kind == "compaction"]


def test_summarizing_keeps_a_300_turn_run_inside_an_8000_token_window() -> None:
    summarizer = ScriptedModel(lambda request: "Fetched the records listed; next: fetch the next one.", name="cheap")
    result, events = run_300_turns(Summarize(window=WINDOW, summarizer=summarizer))

    assert result.completed, result.describe()
    requests = sent(events)
    assert len(requests) == 300
    peak = max(estimate_request_tokens(request) for request in requests)
    assert peak <= INPUT_LIMIT
    notices = compactions(events)
    assert 20 <= len(notices) <= 80
    assert len(summarizer.requests) == len(notices)
    assert sent(events, "compaction") == summarizer.requests  # every summarizer call is traced too
    for notice in notices:
        assert notice.data["after_tokens"] < notice.data["before_tokens"]
        assert notice.data["before_tokens"] > notice.data["trigger_tokens"]
    # The goal opens every request, verbatim.
    assert all(request.messages[0] == UserMessage(GOAL) for request in requests)


def test_dropping_tool_outputs_also_keeps_the_300_turn_run_inside_the_window() -> None:
    result, events = run_300_turns(DropToolOutputs(window=WINDOW))

    assert result.completed, result.describe()
    requests = sent(events)
    assert max(estimate_request_tokens(request) for request in requests) <= INPUT_LIMIT
    assert compactions(events)
    assert all(request.messages[0] == UserMessage(GOAL) for request in requests)


def test_without_compaction_the_run_stops_with_a_clear_error_before_sending_an_oversized_request() -> None:
    result, events = run_300_turns(NoCompaction(window=WINDOW))

    assert result.status == "error"
    error = result.error
    assert isinstance(error, ContextWindowExceeded)
    assert error.limit_tokens == INPUT_LIMIT
    assert error.estimated_tokens > INPUT_LIMIT
    assert "NoCompaction" in str(error) and "8,000-token context window" in str(error)
    requests = sent(events)
    assert 5 < len(requests) < 20
    assert max(estimate_request_tokens(request) for request in requests) <= INPUT_LIMIT
    assert not compactions(events)
