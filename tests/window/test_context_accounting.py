"""Token accounting: estimates per provider, calibrated by reported usage, exact counts when asked."""

from __future__ import annotations

from context_helpers import GOAL, exchange, fetch, record

from retinue import Agent
from retinue.events import Event, Notice
from retinue.messages import Message, ModelRequest, ModelResponse, ModelSettings, UserMessage
from retinue.models.base import TextSink
from retinue.testing.scripted import ScriptedModel, call
from retinue.tokens import estimate_request_tokens
from retinue.window import DropToolOutputs, NoCompaction, Summarize, TokenCounter, TokenEstimator, family_factor
from retinue.window.budget import ContextLimit, output_reserve


class CountingModel(ScriptedModel):
    """A scripted model whose provider counts 30% more tokens than the chars/4 estimate, when asked."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.counted = 0

    async def count_tokens(self, request: ModelRequest) -> int:
        self.counted += 1
        return round(1.3 * estimate_request_tokens(request))


class OverReportingModel(ScriptedModel):
    """Reports 1.5 times the chars/4 estimate as input tokens, like a tokenizer that splits finer."""

    async def request(self, request: ModelRequest, on_text: TextSink | None = None) -> ModelResponse:
        response = await super().request(request, on_text)
        response.usage.input_tokens = round(1.5 * estimate_request_tokens(request))
        return response


def conversation(exchanges: int) -> list[Message]:
    messages: list[Message] = [UserMessage(GOAL)]
    for n in range(1, exchanges + 1):
        messages += exchange(n, record(n))
    return messages


def test_provider_families_start_from_different_factors() -> None:
    assert family_factor("anthropic:claude-sonnet-4-5") > family_factor("openai:gpt-4.1") == 1.0
    assert family_factor("scripted:test") == 1.0
    request = ModelRequest("x" * 4_000, [], [])
    assert TokenEstimator("anthropic:claude-sonnet-4-5").request(request) > TokenEstimator("openai:gpt-4o").request(
        request
    )


def test_the_estimator_moves_towards_what_the_provider_reports() -> None:
    estimator = TokenEstimator("openai:gpt-4.1")
    for _ in range(8):
        estimator.observe(1_000, 1_300)
    assert 1.29 < estimator.factor <= 1.3
    estimator.observe(100, 10_000)  # too small to tell the tokenizer from fixed overhead: ignored
    assert estimator.factor <= 1.3
    estimator.observe(1_000, 1_000_000)  # absurd reports are clamped
    assert estimator.factor <= 4.0


def test_a_run_calibrates_its_estimates_from_reported_usage() -> None:
    model = OverReportingModel([call("fetch", n=n) for n in range(1, 6)] + ["done"])
    policy = NoCompaction(window=1_000_000)
    agent = Agent("a", model=model, tools=[fetch], context_policy=policy)
    contexts = []
    original_new_context = agent.new_context

    def capture(**kwargs: object) -> object:
        context = original_new_context(**kwargs)  # type: ignore[arg-type]
        contexts.append(context)
        return context

    object.__setattr__(agent, "new_context", capture)
    assert agent.run_sync(GOAL).completed
    assert 1.4 < policy.estimator_for(contexts[0]).factor <= 1.5


def first_compaction_turn(*, exact: bool) -> tuple[int, CountingModel]:
    model = CountingModel([call("fetch", n=n) for n in range(1, 25)] + ["done"])
    events: list[Event] = []
    policy = DropToolOutputs(window=12_000, reserve_output_tokens=0, exact_token_counts=exact)
    result = Agent("a", model=model, tools=[fetch], context_policy=policy).run_sync(GOAL, on_event=events.append)
    assert result.completed
    [first, *_] = [e for e in events if isinstance(e, Notice) and e.kind == "compaction"]
    assert first.data["before_tokens"] > first.data["trigger_tokens"] == 9_600
    return int(first.data["turn"]), model


def test_exact_counts_are_fetched_near_the_threshold_and_decide_when_to_compact() -> None:
    estimated_turn, estimating = first_compaction_turn(exact=False)
    counted_turn, counting = first_compaction_turn(exact=True)

    assert isinstance(counting, TokenCounter)
    assert estimating.counted == 0
    assert 0 < counting.counted < len(counting.requests)  # only near the threshold: each count is a round trip
    assert counted_turn < estimated_turn


def test_asking_for_exact_counts_from_a_model_that_cannot_count_says_so_once() -> None:
    events: list[Event] = []
    agent = Agent(
        "a",
        model=ScriptedModel([call("fetch", n=n) for n in range(1, 8)] + ["done"]),
        tools=[fetch],
        context_policy=Summarize(window=5_000, exact_token_counts=True, summarizer=ScriptedModel(lambda r: "s")),
    )
    agent.run_sync(GOAL, on_event=events.append)
    assert [e.kind for e in events if isinstance(e, Notice) and e.kind == "token_count"] == ["token_count"]


def test_the_limit_reserves_room_for_the_answer() -> None:
    assert output_reserve(ModelSettings(), None) == 1_024
    assert output_reserve(ModelSettings(max_tokens=300), None) == 300
    assert output_reserve(ModelSettings(thinking_budget_tokens=2_000), None) == 3_024
    assert output_reserve(ModelSettings(max_tokens=300), 50) == 50
    assert ContextLimit(window=8_000, reserve=1_000, budget=None).max_input_tokens == 7_000
    assert ContextLimit(window=8_000, reserve=1_000, budget=5_000).max_input_tokens == 5_000
    assert ContextLimit(window=None, reserve=1_000, budget=None).max_input_tokens is None
    assert "budget of 5,000" in ContextLimit(window=8_000, reserve=1_000, budget=5_000).describe()
