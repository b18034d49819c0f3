"""Defining tools: what the model is shown, and what retinue refuses to build.

A tool is a typed Python function. Its JSON schema comes from the type hints
(through pydantic) and its docstring; `RunContext` parameters are hidden from
the model and filled in by the loop.
"""

import enum
from typing import Any, Literal

import pydantic
import pytest

from retinue import Agent, RunContext, Tool, ToolCall, tool
from retinue.errors import ConfigurationError, ToolDefinitionError
from retinue.testing.scripted import ScriptedModel, call
from retinue.tools import as_tool, parse_docstring


class Address(pydantic.BaseModel):
    street: str
    city: str = pydantic.Field(description="The city, in English.")


class Unit(enum.Enum):
    CELSIUS = "celsius"
    FAHRENHEIT = "fahrenheit"


def all_property_dicts(schema: Any) -> list[dict[str, Any]]:
    """Every property schema anywhere in `schema`, nested ones included."""
    found: list[dict[str, Any]] = []
    if isinstance(schema, dict):
        for key, value in schema.items():
            if key == "properties" and isinstance(value, dict):
                found.extend(v for v in value.values() if isinstance(v, dict))
            found.extend(all_property_dicts(value))
    elif isinstance(schema, list):
        for item in schema:
            found.extend(all_property_dicts(item))
    return found


# --- the schema the model sees ---------------------------------------------------------------


def test_google_docstring_gives_the_description_and_parameter_descriptions() -> None:
    @tool
    def get_weather(city: str, days: int = 3) -> str:
        """Get the weather forecast for a city.

        Args:
            city: The city name, e.g. "Paris".
            days (int): How many days to forecast,
                counting today. Format: a whole number.

        Returns:
            The forecast as text.
        """
        return ""

    assert get_weather.name == "get_weather"
    assert get_weather.description == "Get the weather forecast for a city."
    properties = get_weather.schema.parameters["properties"]
    assert properties["city"] == {"type": "string", "description": 'The city name, e.g. "Paris".'}
    # A continuation line joins the description, even when it contains a colon.
    assert properties["days"]["description"] == "How many days to forecast, counting today. Format: a whole number."
    assert properties["days"]["default"] == 3
    assert properties["days"]["type"] == "integer"
    assert get_weather.schema.parameters["required"] == ["city"]
    # The Returns section is not part of any description.
    assert "forecast as text" not in str(get_weather.schema)


def test_sphinx_docstring_gives_parameter_descriptions() -> None:
    @tool
    def convert(amount: float, currency: str) -> float:
        """Convert an amount to euros.

        :param amount: How much money.
        :param str currency: ISO 4217 code of the amount's currency.
        """
        return amount

    assert convert.description == "Convert an amount to euros."
    properties = convert.schema.parameters["properties"]
    assert properties["amount"]["description"] == "How much money."
    assert properties["currency"]["description"] == "ISO 4217 code of the amount's currency."


def test_sphinx_returns_and_type_fields_do_not_leak_into_the_last_parameter() -> None:
    # A Sphinx field that is not :param (:type, :returns, :rtype, :raises) ends the description before it.
    summary, params = parse_docstring(
        "Convert an amount to euros.\n"
        "\n"
        ":param amount: How much money.\n"
        ":type amount: float\n"
        ":param currency: ISO 4217 code.\n"
        ":returns: The amount in euros.\n"
        ":rtype: float\n"
        ":raises ValueError: for an unknown currency.\n"
    )
    assert summary == "Convert an amount to euros."
    assert params == {"amount": "How much money.", "currency": "ISO 4217 code."}


def test_a_tool_without_docstring_has_an_empty_description_and_plain_parameters() -> None:
    @tool
    def add(a: int, b: int) -> int:
        return a + b

    assert add.description == ""
    assert add.schema.parameters == {
        "type": "object",
        "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
        "required": ["a", "b"],
    }


def test_name_and_description_can_be_given_explicitly() -> None:
    @tool(name="weather-lookup", description="Look up the weather.")
    def get_weather(city: str) -> str:
        """This docstring is not used as the description."""
        return city

    assert get_weather.schema.name == "weather-lookup"
    assert get_weather.schema.description == "Look up the weather."


def test_optional_parameters_literals_enums_models_and_lists() -> None:
    @tool
    def ship(
        to: Address,
        items: list[str],
        speed: Literal["standard", "express"] = "standard",
        unit: Unit = Unit.CELSIUS,
        note: str | None = None,
        stops: list[Address] | None = None,
    ) -> str:
        """Ship items.

        Args:
            to: Where to.
            items: What to send.
        """
        return ""

    parameters = ship.schema.parameters
    properties = parameters["properties"]
    assert parameters["required"] == ["to", "items"]
    assert properties["items"] == {"type": "array", "items": {"type": "string"}, "description": "What to send."}
    assert properties["speed"]["enum"] == ["standard", "express"]
    assert properties["speed"]["default"] == "standard"
    assert properties["unit"]["default"] == "celsius"
    assert properties["unit"]["enum"] == ["celsius", "fahrenheit"]  # nested types are inline, never $refs
    assert properties["note"]["default"] is None
    assert {"type": "null"} in properties["note"]["anyOf"]
    assert properties["to"]["description"] == "Where to."
    address = properties["to"]
    assert address["required"] == ["street", "city"]
    assert address["properties"]["city"]["description"] == "The city, in English."


def test_titles_are_stripped_from_every_property() -> None:
    @tool
    def ship(to: Address, stops: list[Address], speed: Literal["a", "b"] = "a", note: str | None = None) -> str:
        return ""

    parameters = ship.schema.parameters
    assert "title" not in parameters
    properties = all_property_dicts(parameters)
    assert len(properties) >= 6  # 4 top-level + Address.street + Address.city
    assert all("title" not in prop for prop in properties)


def test_run_context_parameter_is_hidden_from_the_model() -> None:
    @tool
    def whoami(ctx: RunContext, shout: bool = False) -> str:
        """Say which agent is running."""
        return ctx.agent.name

    assert whoami.context_parameter == "ctx"
    assert list(whoami.schema.parameters["properties"]) == ["shout"]
    assert "ctx" not in str(whoami.schema.parameters)


async def test_arguments_are_validated_and_converted_before_the_function_runs() -> None:
    received: dict[str, Any] = {}

    @tool
    def ship(to: Address, unit: Unit, stops: list[Address]) -> str:
        received.update(to=to, unit=unit, stops=stops)
        return "shipped"

    good = {"to": {"street": "1 Rue", "city": "Paris"}, "unit": "fahrenheit", "stops": [{"street": "x", "city": "y"}]}
    bad = {"to": {"street": "1 Rue"}, "unit": "kelvin", "stops": []}
    model = ScriptedModel([call("ship", **bad), call("ship", **good), "done"])
    result = await Agent("a", model=model, tools=[ship]).run("ship it")

    assert result.output == "done"
    assert received["to"] == Address(street="1 Rue", city="Paris")
    assert received["unit"] is Unit.FAHRENHEIT
    assert received["stops"] == [Address(street="x", city="y")]
    first, second = (request.messages[-1].results[0] for request in model.requests[1:])
    assert first.is_error
    assert "to.city" in first.content
    assert "unit" in first.content
    assert not second.is_error
    assert second.content == "shipped"


async def test_a_tool_call_parameter_is_hidden_and_receives_the_call() -> None:
    seen: list[ToolCall] = []

    @tool
    def remember(note: str, this_call: ToolCall) -> str:
        seen.append(this_call)
        return note

    assert list(remember.schema.parameters["properties"]) == ["note"]
    request = call("remember", note="hi")
    await Agent("a", model=ScriptedModel([request, "ok"]), tools=[remember]).run("go")
    assert seen == [request]


def test_plain_functions_become_tools_when_given_to_an_agent() -> None:
    def lookup(key: str) -> str:
        """Look a key up."""
        return key

    agent = Agent("a", tools=[lookup])
    (made,) = agent.tools
    assert isinstance(made, Tool)
    assert made.name == "lookup"
    assert made.description == "Look a key up."


# --- what cannot be a tool ---------------------------------------------------------------------


def test_a_parameter_without_a_type_hint_is_refused() -> None:
    def search(query, limit: int = 10) -> str:  # type: ignore[no-untyped-def]
        return ""

    with pytest.raises(ToolDefinitionError, match=r"'query' has no type hint"):
        tool(search)


@pytest.mark.parametrize("signature", ["args", "kwargs"])
def test_star_args_and_star_star_kwargs_are_refused(signature: str) -> None:
    def with_args(*args: int) -> int:
        return 0

    def with_kwargs(**kwargs: int) -> int:
        return 0

    function = with_args if signature == "args" else with_kwargs
    with pytest.raises(ToolDefinitionError, match="list the parameters explicitly"):
        tool(function)


@pytest.mark.parametrize("bad_name", ["has space", "dots.not.allowed", "x" * 65])
def test_names_providers_reject_are_refused(bad_name: str) -> None:
    def fine(a: int) -> int:
        return a

    with pytest.raises(ToolDefinitionError, match="not allowed"):
        tool(name=bad_name)(fine)


def test_a_lambda_is_refused_because_its_name_is_not_a_valid_tool_name() -> None:
    with pytest.raises(ToolDefinitionError, match="not allowed"):
        as_tool(lambda: None)


def test_something_that_is_not_callable_is_refused() -> None:
    with pytest.raises(ToolDefinitionError, match="neither a Tool nor a function"):
        Agent("a", tools=["not a tool"])  # type: ignore[list-item]


def test_an_unresolvable_type_hint_is_refused() -> None:
    def broken(x: "NoSuchType") -> str:  # type: ignore[name-defined]  # noqa: F821
        return ""

    with pytest.raises(ToolDefinitionError, match="cannot be resolved"):
        tool(broken)


def test_a_parameter_name_with_a_leading_underscore_is_refused_as_a_tool_definition_error() -> None:
    # Pydantic refuses the name with a NameError of its own; the caller gets a ToolDefinitionError naming the tool.
    def private(_secret: str) -> str:
        return _secret

    with pytest.raises(ToolDefinitionError, match="private"):
        tool(private)


def test_two_tools_with_the_same_name_are_a_configuration_error() -> None:
    def lookup(key: str) -> str:
        return key

    def lookup_again(key: str) -> str:
        return key

    other = tool(name="lookup")(lookup_again)
    with pytest.raises(ConfigurationError, match="two tools named 'lookup'"):
        Agent("a", tools=[lookup, other])


def test_a_tool_named_like_the_output_tool_clashes_with_structured_output() -> None:
    def final_result(answer: str) -> str:
        return answer

    with pytest.raises(ConfigurationError, match="final_result"):
        Agent("a", tools=[final_result], output_type=Address)


def test_max_tool_concurrency_below_one_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="max_tool_concurrency"):
        Agent("a", max_tool_concurrency=0)
