"""What a tool's parameters look like to the model, beyond plain type hints.

`Annotated[int, pydantic.Field(ge=0, description=...)]` puts constraints and a
description on a parameter: both reach the schema, and the constraints are
enforced before the function runs. Nested parameter types (pydantic models,
dataclasses, TypedDicts) are written out inline, where the parameter is, and
never as `$ref`s into `$defs`, which small models follow badly. Only a type
that contains itself cannot be: a tool refuses it, an output type keeps it in
`$defs`.
"""

import dataclasses
import enum
import json
from typing import Annotated, Any, Literal, NotRequired

import pydantic
import pytest
from typing_extensions import TypedDict  # pydantic needs it on Python < 3.12

from retinue import Agent, RunContext, tool
from retinue.errors import ToolDefinitionError
from retinue.testing import ScriptedModel, call


def no_references_in(schema: dict[str, Any]) -> bool:
    text = json.dumps(schema)
    return "$ref" not in text and "$defs" not in text


# --- Annotated[..., Field(...)] -------------------------------------------------------------------


def test_annotated_constraints_and_description_reach_the_schema() -> None:
    @tool
    def reserve(seats: Annotated[int, pydantic.Field(ge=1, le=9, description="How many seats, 1 to 9.")]) -> str:
        """Reserve seats."""
        return ""

    assert reserve.schema.parameters["properties"]["seats"] == {
        "description": "How many seats, 1 to 9.",
        "maximum": 9,
        "minimum": 1,
        "type": "integer",
    }


def test_the_docstring_describes_a_parameter_whose_annotation_only_constrains_it() -> None:
    @tool
    def pay(amount: Annotated[float, pydantic.Field(gt=0)], note: str = "") -> str:
        """Pay.

        Args:
            amount: Dollars to pay.
            note: Shown on the receipt.
        """
        return ""

    amount = pay.schema.parameters["properties"]["amount"]
    assert amount == {"description": "Dollars to pay.", "exclusiveMinimum": 0, "type": "number"}


def test_the_annotations_description_wins_over_the_docstrings() -> None:
    @tool
    def pay(amount: Annotated[float, pydantic.Field(description="Dollars, before tax.")]) -> str:
        """Pay.

        Args:
            amount: Dollars.
        """
        return ""

    assert pay.schema.parameters["properties"]["amount"]["description"] == "Dollars, before tax."


def test_annotated_constraints_inside_containers_reach_the_schema() -> None:
    @tool
    def rate(scores: Annotated[list[Annotated[int, pydantic.Field(ge=1, le=5)]], pydantic.Field(max_length=3)]) -> str:
        return ""

    assert rate.schema.parameters["properties"]["scores"] == {
        "items": {"maximum": 5, "minimum": 1, "type": "integer"},
        "maxItems": 3,
        "type": "array",
    }


async def test_annotated_constraints_are_enforced_and_the_model_can_fix_the_call() -> None:
    reserved: list[int] = []

    @tool
    def reserve(seats: Annotated[int, pydantic.Field(ge=1, le=9)]) -> str:
        reserved.append(seats)
        return f"{seats} seats reserved"

    model = ScriptedModel([call("reserve", seats=0), call("reserve", seats=2), "done"])
    await Agent("a", model=model, tools=[reserve]).run("go")

    refused, accepted = (request.messages[-1].results[0] for request in model.requests[1:])  # type: ignore[union-attr]
    assert refused.is_error
    assert refused.content.startswith("Error: invalid arguments for 'reserve': seats: Input should be greater than")
    assert accepted.content == "2 seats reserved"
    assert reserved == [2], "the function never saw the value its annotation forbids"


def test_an_annotated_run_context_is_still_hidden_and_injected() -> None:
    @tool
    def whoami(ctx: Annotated[RunContext, "the run"], shout: bool = False) -> str:
        return ctx.agent.name

    assert whoami.context_parameter == "ctx"
    assert list(whoami.schema.parameters["properties"]) == ["shout"]


# --- nested types, inline ---------------------------------------------------------------------------


class Seat(enum.Enum):
    AISLE = "aisle"
    WINDOW = "window"


class Passenger(TypedDict):
    name: str
    seat: Seat
    frequent_flyer: NotRequired[str]


@dataclasses.dataclass
class Card:
    number: str
    expiry: str


class Payment(pydantic.BaseModel):
    """How the booking is paid."""

    card: Card
    amount: float = pydantic.Field(gt=0, description="In dollars.")


def test_nested_models_dataclasses_typeddicts_and_enums_are_written_out_inline() -> None:
    @tool
    def book(passengers: list[Passenger], payment: Payment) -> str:
        """Book a flight.

        Args:
            passengers: Who flies.
            payment: The payment.
        """
        return ""

    parameters = book.schema.parameters
    assert no_references_in(parameters)
    passengers = parameters["properties"]["passengers"]
    assert passengers["description"] == "Who flies."
    assert passengers["items"] == {
        "properties": {
            "name": {"type": "string"},
            "seat": {"enum": ["aisle", "window"], "type": "string"},
            "frequent_flyer": {"type": "string"},
        },
        "required": ["name", "seat"],
        "type": "object",
    }
    payment = parameters["properties"]["payment"]
    assert payment["description"] == "The payment.", "the parameter's description wins over the class docstring"
    assert payment["required"] == ["card", "amount"]
    assert payment["properties"]["card"]["properties"] == {"number": {"type": "string"}, "expiry": {"type": "string"}}
    assert payment["properties"]["amount"] == {"description": "In dollars.", "exclusiveMinimum": 0, "type": "number"}


def test_a_property_named_title_survives_the_removal_of_schema_titles() -> None:
    class Book(pydantic.BaseModel):
        title: str
        author: str

    @tool
    def shelve(book: Book) -> str:
        return ""

    book = shelve.schema.parameters["properties"]["book"]
    assert book["properties"] == {"title": {"type": "string"}, "author": {"type": "string"}}
    assert "title" not in book, "the class name is not repeated to the model"


def test_a_discriminated_union_is_inline_and_its_discriminator_names_no_definitions() -> None:
    class Flight(pydantic.BaseModel):
        kind: Literal["flight"]
        number: str

    class Train(pydantic.BaseModel):
        kind: Literal["train"]
        line: str

    @tool
    def cancel(trip: Annotated[Flight | Train, pydantic.Field(discriminator="kind")]) -> str:
        return ""

    trip = cancel.schema.parameters["properties"]["trip"]
    assert no_references_in(cancel.schema.parameters)
    assert trip["discriminator"] == {"propertyName": "kind"}
    assert [option["properties"]["kind"]["const"] for option in trip["oneOf"]] == ["flight", "train"]


def test_a_parameter_type_that_contains_itself_is_refused_with_a_clear_error() -> None:
    def archive(folder: Folder) -> str:
        return ""

    with pytest.raises(ToolDefinitionError, match=r"Tool 'archive': the type 'Folder' contains itself"):
        tool(archive)


class Folder(pydantic.BaseModel):
    name: str
    children: list["Folder"] = []


async def test_a_recursive_output_type_keeps_only_its_own_definition_in_defs_and_still_works() -> None:
    # A final answer may be a tree: what cannot be written out inline is referred to, and nothing else.
    model = ScriptedModel([call("final_result", name="root", children=[{"name": "leaf"}])])
    agent = Agent("a", model=model, output_type=Folder)
    parameters = agent.tools_for_run()[-1].schema.parameters

    assert set(parameters["$defs"]) == {"Folder"}
    assert parameters["properties"]["children"]["items"] == {"$ref": "#/$defs/Folder"}
    result = await agent.run("list the folders")
    assert result.output == Folder(name="root", children=[Folder(name="leaf")])


def test_a_type_used_twice_is_not_mistaken_for_a_recursive_one() -> None:
    @tool
    def transfer(source: Card, target: Card) -> str:
        return ""

    properties = transfer.schema.parameters["properties"]
    assert properties["source"] == properties["target"]
    assert properties["source"]["required"] == ["number", "expiry"]


# --- a tool is still its function --------------------------------------------------------------------


def test_a_tool_can_be_called_as_the_function_it_wraps() -> None:
    @tool
    def get_weather(city: str, date: str) -> str:
        """The forecast for a city on a day."""
        return f"{city} on {date}: 12°C, light rain"

    assert get_weather("Paris", "2026-01-01") == "Paris on 2026-01-01: 12°C, light rain"
    assert get_weather(city="Rome", date="2026-01-02") == "Rome on 2026-01-02: 12°C, light rain"


async def test_an_async_tool_called_as_its_function_gives_its_coroutine() -> None:
    @tool
    async def get_weather(city: str) -> str:
        return f"sunny in {city}"

    coroutine = get_weather("Paris")
    assert await coroutine == "sunny in Paris"
