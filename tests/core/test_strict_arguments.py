"""Strict argument validation: reject what does not fit, never convert it.

By default pydantic converts what it can: "250" becomes 250 for an `int`, 250
becomes 250.0 for a `float`, keys a TypedDict does not name are dropped and the
rest come back in the TypedDict's order. A grader comparing what a tool
received with what the model sent then sees values the model never sent.
`Agent(strict_tool_arguments=True)` or `@tool(strict=True)` makes each such
mismatch an error the model reads and can fix, and passes what fits through
as it was sent.
"""

import enum
from typing import Any

import pydantic
from typing_extensions import TypedDict

from retinue import Agent, Tool, ToolResult, tool
from retinue.messages import ToolResultsMessage
from retinue.testing import ScriptedModel, call


class Cabin(enum.Enum):
    ECONOMY = "economy"
    BUSINESS = "business"


class Traveller(TypedDict):
    name: str
    age: int


class Address(pydantic.BaseModel):
    city: str


def booking_tool(received: list[dict[str, Any]], *, strict: bool | None = None) -> Tool:
    def book(count: int, price: float, traveller: Traveller, cabin: Cabin, address: Address) -> str:
        received.append({"count": count, "price": price, "traveller": traveller, "cabin": cabin, "address": address})
        return "booked"

    return tool(strict=strict)(book)


GOOD = {
    "count": 2,
    "price": 250,
    "traveller": {"age": 40, "name": "Ada"},
    "cabin": "business",
    "address": {"city": "Paris"},
}


async def tool_results(agent: Agent[Any], *calls: Any) -> list[ToolResult]:
    """Run `agent` on one call per turn, then an answer; the result the model read for each call."""
    model = ScriptedModel([*calls, "done"])
    result = await agent.override(model=model).run("book it")
    assert result.status == "completed", result.error
    results = []
    for request in model.requests[1:]:
        last = request.messages[-1]
        assert isinstance(last, ToolResultsMessage)
        results.append(last.results[0])
    return results


async def test_by_default_values_are_converted_and_unknown_keys_dropped() -> None:
    received: list[dict[str, Any]] = []
    sloppy = {**GOOD, "count": "2", "traveller": {"age": 40, "name": "Ada", "nickname": "A"}}
    [result] = await tool_results(Agent("a", tools=[booking_tool(received)]), call("book", **sloppy))

    assert not result.is_error
    [arguments] = received
    assert arguments["count"] == 2
    assert arguments["price"] == 250.0 and type(arguments["price"]) is float
    assert list(arguments["traveller"]) == ["name", "age"], "reordered, the nickname dropped"


async def test_strict_validation_rejects_a_string_for_an_int_and_the_model_can_fix_it() -> None:
    received: list[dict[str, Any]] = []
    agent = Agent("a", tools=[booking_tool(received)], strict_tool_arguments=True)
    refused, accepted = await tool_results(agent, call("book", **{**GOOD, "count": "2"}), call("book", **GOOD))

    assert refused.is_error
    assert refused.content.startswith("Error: invalid arguments for 'book': count: Input should be a valid integer")
    assert refused.content.endswith("Parameters: count, price, traveller, cabin, address.")
    assert not accepted.is_error
    assert len(received) == 1, "the function ran only for the call that fits"


async def test_strict_validation_rejects_keys_no_type_names_at_any_depth() -> None:
    received: list[dict[str, Any]] = []
    agent = Agent("a", tools=[booking_tool(received)], strict_tool_arguments=True)
    extra_everywhere = {
        **GOOD,
        "traveller": {"name": "Ada", "age": 40, "nickname": "A"},
        "address": {"city": "Paris", "zip": "75001"},
        "loyalty": "gold",
    }
    [result] = await tool_results(agent, call("book", **extra_everywhere))

    assert result.is_error
    for where in ("traveller.nickname", "address.zip", "loyalty"):
        assert f"{where}: Extra inputs are not permitted" in result.content
    assert received == []


async def test_strict_validation_rejects_a_missing_typeddict_key() -> None:
    received: list[dict[str, Any]] = []
    agent = Agent("a", tools=[booking_tool(received)], strict_tool_arguments=True)
    [result] = await tool_results(agent, call("book", **{**GOOD, "traveller": {"name": "Ada"}}))

    assert result.is_error
    assert "traveller.age: Field required" in result.content


async def test_what_passes_strict_validation_reaches_the_tool_as_it_was_sent() -> None:
    received: list[dict[str, Any]] = []
    agent = Agent("a", tools=[booking_tool(received)], strict_tool_arguments=True)
    [result] = await tool_results(agent, call("book", **GOOD))

    assert not result.is_error
    [arguments] = received
    assert arguments["price"] == 250 and type(arguments["price"]) is int, "an int is a valid float (PEP 484)"
    assert list(arguments["traveller"]) == ["age", "name"], "the keys in the order the model sent them"
    # JSON forms of richer types are still read: strict is about JSON types, not about Python objects.
    assert arguments["cabin"] is Cabin.BUSINESS
    assert arguments["address"] == Address(city="Paris")


async def test_strict_validation_keeps_ints_inside_containers() -> None:
    received: list[list[float]] = []

    @tool(strict=True)
    def average(values: list[float], weights: dict[str, float]) -> str:
        received.append(values)
        received.append(list(weights.values()))
        return "ok"

    [result] = await tool_results(Agent("a", tools=[average]), call("average", values=[1, 2.5], weights={"a": 3}))

    assert not result.is_error
    assert [[type(value) for value in values] for values in received] == [[int, float], [int]]


async def test_strict_validation_rejects_a_number_for_a_bool_and_a_fraction_for_an_int() -> None:
    @tool(strict=True)
    def configure(verbose: bool, retries: int) -> str:
        return "ok"

    [result] = await tool_results(Agent("a", tools=[configure]), call("configure", verbose=1, retries=2.5))

    assert result.is_error
    assert "verbose: Input should be a valid boolean" in result.content
    assert "retries: Input should be a valid integer" in result.content


async def test_a_tools_own_strict_setting_wins_over_the_agents() -> None:
    received: list[dict[str, Any]] = []
    sloppy = {**GOOD, "count": "2"}

    lenient = Agent("a", tools=[booking_tool(received, strict=False)], strict_tool_arguments=True)
    [result] = await tool_results(lenient, call("book", **sloppy))
    assert not result.is_error, "strict=False on the tool wins over the agent's strict_tool_arguments=True"

    strict = Agent("b", tools=[booking_tool(received, strict=True)])
    [result] = await tool_results(strict, call("book", **sloppy))
    assert result.is_error, "strict=True on the tool applies under an agent that is not strict"
