"""Usage and cost: tokens and dollars, per call and per run.

A run's usage is the sum of its model calls. An unknown price is never
reported as free: one unknown part makes the total cost unknown (None).
"""

import pytest

from retinue import Agent, Usage, tool
from retinue.events import Event, ModelResponseReceived
from retinue.models.pricing import Price, cost_of, price_for
from retinue.testing.scripted import ScriptedModel, call


@tool
def lookup(key: str) -> str:
    return "x" * 200


async def test_run_usage_is_the_sum_of_its_model_calls() -> None:
    events: list[Event] = []
    model = ScriptedModel([call("lookup", key="a"), call("lookup", key="b"), "done"], cost_per_call=0.002)
    result = await Agent("a", model=model, tools=[lookup]).run("go", on_event=events.append)

    per_call = [e.response.usage for e in events if isinstance(e, ModelResponseReceived)]
    assert len(per_call) == 3
    assert all(u.input_tokens > 0 and u.output_tokens > 0 for u in per_call)
    assert per_call[2].input_tokens > per_call[0].input_tokens, "the conversation grows"
    usage = result.usage
    assert usage.input_tokens == sum(u.input_tokens for u in per_call)
    assert usage.output_tokens == sum(u.output_tokens for u in per_call)
    assert usage.requests == 3
    assert usage.cost_usd == pytest.approx(0.006)
    assert result.total_usage == usage, "no sub-agents, so the total is the run's own"
    assert "3 requests" in result.describe()
    assert "$0.0060" in result.describe()


def test_usage_add_sums_every_field() -> None:
    total = Usage(10, 5, 2, 1, 3, 1, 0.5)
    total.add(Usage(1, 2, 3, 4, 5, 6, 0.25))
    assert total == Usage(11, 7, 5, 5, 8, 7, 0.75)
    assert total.total_tokens == 18


def test_one_unknown_cost_makes_the_total_unknown() -> None:
    total = Usage(input_tokens=10, cost_usd=1.0)
    total.add(Usage(input_tokens=10, cost_usd=None))
    assert total.cost_usd is None
    total.add(Usage(input_tokens=10, cost_usd=2.0))
    assert total.cost_usd is None, "it stays unknown"
    assert total.input_tokens == 30
    assert "unknown cost" in total.describe()


def test_adding_with_plus_leaves_both_sides_unchanged() -> None:
    a, b = Usage(input_tokens=1, cost_usd=0.1), Usage(input_tokens=2, cost_usd=None)
    total = a + b
    assert (total.input_tokens, total.cost_usd) == (3, None)
    assert a == Usage(input_tokens=1, cost_usd=0.1)
    assert b == Usage(input_tokens=2, cost_usd=None)


def test_copy_is_independent() -> None:
    usage = Usage(input_tokens=1)
    copy = usage.copy()
    copy.add(Usage(input_tokens=1))
    assert usage.input_tokens == 1


@pytest.mark.parametrize(
    ("model_id", "expected"),
    [
        ("anthropic:claude-sonnet-4-5", Price(3.0, 15.0, 0.3, 3.75)),
        ("anthropic:claude-sonnet-4-5-20250929", Price(3.0, 15.0, 0.3, 3.75)),
        ("openai:gpt-4o", Price(2.5, 10.0, 1.25)),
        ("openai:gpt-4o-2024-08-06", Price(2.5, 10.0, 1.25)),
        ("openai:gpt-4.1", Price(2.0, 8.0, 0.5)),
    ],
)
def test_listed_models_and_their_dated_snapshots_have_a_price(model_id: str, expected: Price) -> None:
    assert price_for(model_id) == expected


def test_a_snapshot_of_one_model_does_not_take_another_models_price() -> None:
    assert price_for("openai:gpt-4o-mini-2024-07-18") == price_for("openai:gpt-4o-mini")
    assert price_for("openai:gpt-4o-mini") != price_for("openai:gpt-4o")


@pytest.mark.parametrize(
    "model_id", ["openai:some-unpriced-model", "anthropic:claude-unknown-9", "mystery:gpt-4o", "gpt-4o"]
)
def test_unknown_models_have_no_price(model_id: str) -> None:
    assert price_for(model_id) is None
    assert cost_of(model_id, Usage(input_tokens=1000)) is None


@pytest.mark.parametrize("model_id", ["local", "local:gemma", "scripted:test"])
def test_models_on_your_own_machine_are_free(model_id: str) -> None:
    assert cost_of(model_id, Usage(input_tokens=1_000_000, output_tokens=1_000_000)) == 0.0


def test_cost_prices_input_output_and_cache_tokens_separately() -> None:
    price = Price(input=3.0, output=15.0, cache_read=0.3, cache_write=3.75)
    # input_tokens counts every prompt token; 600 of them came from the cache and 200 filled it.
    usage = Usage(input_tokens=1000, output_tokens=100, cache_read_tokens=600, cache_write_tokens=200)
    expected = (200 * 3.0 + 600 * 0.3 + 200 * 3.75 + 100 * 15.0) / 1_000_000
    assert price.cost(usage) == pytest.approx(expected)
    assert expected == pytest.approx(0.00303)


def test_cache_tokens_cost_the_input_price_when_no_cache_price_is_listed() -> None:
    price = Price(input=2.0, output=8.0)
    usage = Usage(input_tokens=1000, cache_read_tokens=500, cache_write_tokens=100)
    assert price.cost(usage) == pytest.approx(1000 * 2.0 / 1_000_000)


def test_one_million_tokens_cost_the_listed_price() -> None:
    assert cost_of("anthropic:claude-sonnet-4-5", Usage(input_tokens=1_000_000)) == pytest.approx(3.0)
    assert cost_of("anthropic:claude-sonnet-4-5", Usage(output_tokens=1_000_000)) == pytest.approx(15.0)


def test_the_headline_is_what_the_ui_and_notices_show_and_keeps_an_unknown_cost_unknown() -> None:
    assert Usage(10, 5, 2, 1, 3, 1, 0.5).headline() == {
        "requests": 1,
        "input_tokens": 10,
        "output_tokens": 5,
        "cost_usd": 0.5,
    }
    assert Usage(input_tokens=7, cost_usd=None).headline()["cost_usd"] is None
