"""Structured output: a final answer of a given type.

With `output_type`, the model answers by calling the `final_result` tool, whose
parameters are that type's schema. An invalid answer goes back to the model
with the validation problem, for `output_retries` more tries.
"""

from typing import Any

import pydantic

from retinue import Agent, ToolCall, ToolResultsMessage, UserMessage, tool
from retinue.errors import OutputValidationError
from retinue.messages import ModelRequest
from retinue.testing.scripted import ScriptedModel, call


class Forecast(pydantic.BaseModel):
    city: str
    temperature_c: float = pydantic.Field(description="Temperature in Celsius.")
    summary: str = ""


def forecaster(*script: Any, **options: Any) -> tuple[Agent[Forecast], ScriptedModel]:
    model = ScriptedModel(list(script))
    return Agent("forecaster", model=model, output_type=Forecast, **options), model


def feedback(request: ModelRequest) -> str:
    """The text of the last thing the model was told (a tool result or a user message)."""
    last = request.messages[-1]
    if isinstance(last, ToolResultsMessage):
        return last.results[0].content
    assert isinstance(last, UserMessage)
    return last.content


async def test_the_model_answers_by_calling_final_result() -> None:
    agent, model = forecaster(call("final_result", city="Paris", temperature_c=21.5))
    result = await agent.run("Weather in Paris?")

    assert result.status == "completed"
    assert result.output == Forecast(city="Paris", temperature_c=21.5)
    (schema,) = model.requests[0].tools
    assert schema.name == "final_result"
    assert schema.description == "Give your final answer. Call this once, when you are done."
    assert schema.parameters["required"] == ["city", "temperature_c"]
    assert schema.parameters["properties"]["temperature_c"] == {
        "type": "number",
        "description": "Temperature in Celsius.",
    }
    assert "title" not in schema.parameters


async def test_the_output_tool_comes_after_the_agents_own_tools() -> None:
    @tool
    def lookup(city: str) -> str:
        return "21.5"

    model = ScriptedModel([call("lookup", city="Paris"), call("final_result", city="Paris", temperature_c=21.5)])
    result = await Agent("a", model=model, tools=[lookup], output_type=Forecast).run("go")

    assert result.output == Forecast(city="Paris", temperature_c=21.5)
    assert [t.name for t in model.requests[0].tools] == ["lookup", "final_result"]


async def test_an_invalid_answer_is_sent_back_with_the_problem_and_retried() -> None:
    agent, model = forecaster(
        call("final_result", city="Paris", temperature_c="warm"),
        call("final_result", city="Paris", temperature_c=21.5),
    )
    result = await agent.run("go")

    assert result.status == "completed"
    assert result.output == Forecast(city="Paris", temperature_c=21.5)
    told = feedback(model.requests[1])
    assert told.startswith("Error: the final answer does not match the required format:")
    assert "temperature_c: Input should be a valid number" in told
    assert told.endswith("Fix the arguments and call it again.")
    assert model.requests[1].messages[-1].results[0].is_error  # type: ignore[union-attr]


async def test_final_result_arguments_that_are_not_json_are_sent_back() -> None:
    broken = ToolCall(id="x", name="final_result", arguments={}, invalid_arguments='{"city": ')
    agent, model = forecaster(broken, call("final_result", city="Oslo", temperature_c=-3))
    result = await agent.run("go")

    assert result.output == Forecast(city="Oslo", temperature_c=-3)
    assert "not valid JSON" in feedback(model.requests[1])


async def test_when_retries_run_out_the_run_ends_with_an_output_validation_error() -> None:
    bad = [call("final_result", city="Paris") for _ in range(2)]
    agent, model = forecaster(*bad, output_retries=1)
    result = await agent.run("go")

    assert result.status == "error"
    assert isinstance(result.error, OutputValidationError)
    assert "temperature_c: Field required" in str(result.error)
    assert result.output is None
    assert len(model.requests) == 2, "one try and one retry"
    assert isinstance(result.messages[-1], ToolResultsMessage), "the last problem is in the conversation"


async def test_two_retries_by_default() -> None:
    bad = [call("final_result", city="Paris") for _ in range(3)]
    agent, model = forecaster(*bad, call("final_result", city="Paris", temperature_c=1))
    result = await agent.run("go")

    assert result.status == "error"
    assert len(model.requests) == 3


async def test_a_plain_text_json_answer_is_accepted() -> None:
    agent, _ = forecaster('{"city": "Rome", "temperature_c": 30}')
    result = await agent.run("go")
    assert result.status == "completed"
    assert result.output == Forecast(city="Rome", temperature_c=30)


async def test_a_plain_text_json_answer_in_a_code_fence_is_accepted() -> None:
    agent, _ = forecaster('```json\n{"city": "Rome", "temperature_c": 30}\n```')
    result = await agent.run("go")
    assert result.output == Forecast(city="Rome", temperature_c=30)


async def test_a_plain_text_answer_that_is_not_the_type_is_sent_back() -> None:
    agent, model = forecaster("It is warm in Rome.", call("final_result", city="Rome", temperature_c=30))
    result = await agent.run("go")

    assert result.output == Forecast(city="Rome", temperature_c=30)
    assert (
        feedback(model.requests[1]) == "Give your final answer by calling the 'final_result' tool, not as plain text."
    )


async def test_a_list_output_type_is_wrapped_in_a_result_field() -> None:
    model = ScriptedModel([call("final_result", result=["Paris", "Rome"])])
    result = await Agent("a", model=model, output_type=list[str]).run("Two capitals?")

    assert result.output == ["Paris", "Rome"]
    (schema,) = model.requests[0].tools
    assert schema.parameters["properties"] == {"result": {"type": "array", "items": {"type": "string"}}}
    assert schema.parameters["required"] == ["result"]


async def test_an_int_output_type_is_wrapped_and_validated() -> None:
    model = ScriptedModel([call("final_result", result="many"), call("final_result", result=7)])
    result = await Agent("a", model=model, output_type=int).run("How many?")

    assert result.output == 7
    assert "result: Input should be a valid integer" in feedback(model.requests[1])


async def test_other_tool_calls_in_the_final_result_turn_are_not_run() -> None:
    ran: list[str] = []

    @tool
    def book(city: str) -> str:
        ran.append(city)
        return "booked"

    final = call("final_result", city="Paris", temperature_c=20)
    booking = call("book", city="Paris")
    model = ScriptedModel([[booking, final]])
    result = await Agent("a", model=model, tools=[book], output_type=Forecast).run("go")

    assert result.output == Forecast(city="Paris", temperature_c=20)
    assert ran == [], "the other call was not run"
    results = result.messages[-1].results  # type: ignore[union-attr]
    assert [(r.tool_call_id, r.is_error) for r in results] == [(booking.id, True), (final.id, False)]
    assert results[0].content == "Not run: 'final_result' was called in the same turn."
    assert results[1].content == "Final answer received."


async def test_a_text_agent_has_no_output_tool() -> None:
    model = ScriptedModel([call("final_result", answer="x"), "plain answer"])
    result = await Agent("a", model=model).run("go")

    assert model.requests[0].tools == []
    assert result.output == "plain answer"
    assert "there is no tool named 'final_result'" in feedback(model.requests[1])
