"""The agentic loop: how a run goes and how it ends.

`Agent.run` calls the model until it answers; a failed run does not raise, its
`RunResult` says how it ended and keeps the conversation so far. An `Agent` is
only a definition: one can serve any number of concurrent runs.
"""

import asyncio
import random

import pytest

from retinue import Agent, AssistantMessage, Limits, RunContext, SendBack, ToolResultsMessage, UserMessage, tool
from retinue.errors import ModelError, ScriptExhaustedError
from retinue.events import Event, RunFinished
from retinue.messages import ModelRequest
from retinue.testing.scripted import ScriptedModel, call


@tool
def lookup(key: str) -> str:
    """Look a key up."""
    return f"value of {key}"


# --- how a run ends ----------------------------------------------------------------------------


async def test_a_final_answer_completes_the_run() -> None:
    model = ScriptedModel(["Paris."])
    agent = Agent("geo", instructions="Answer in one word.", model=model)
    result = await agent.run("Capital of France?")

    assert result.status == "completed"
    assert result.completed
    assert result.stop_reason == "completed"
    assert result.output == "Paris."
    assert result.agent == "geo"
    assert result.turns == 1
    assert result.error is None
    assert result.limit is None
    assert result.messages == [UserMessage("Capital of France?"), AssistantMessage(text="Paris.")]
    (request,) = model.requests
    assert request.instructions == "Answer in one word."
    assert request.messages == [UserMessage("Capital of France?")]
    assert request.tools == []


async def test_a_tool_call_then_an_answer() -> None:
    model = ScriptedModel([call("lookup", key="k"), "The value is known."])
    result = await Agent("a", model=model, tools=[lookup]).run("What is k?")

    assert result.output == "The value is known."
    assert result.turns == 2
    user, assistant, tool_results, answer = result.messages
    assert user == UserMessage("What is k?")
    assert isinstance(assistant, AssistantMessage)
    assert assistant.tool_calls[0].name == "lookup"
    assert isinstance(tool_results, ToolResultsMessage)
    assert tool_results.results[0].content == "value of k"
    assert tool_results.results[0].tool_call_id == assistant.tool_calls[0].id
    assert answer == AssistantMessage(text="The value is known.")
    # Each request carries the whole conversation so far.
    assert model.requests[1].messages == result.messages[:3]


async def test_a_model_error_ends_the_run_with_status_error_and_keeps_the_messages() -> None:
    failure = ModelError("the provider is down", status=503, provider="test")
    model = ScriptedModel([call("lookup", key="k"), failure])
    result = await Agent("a", model=model, tools=[lookup]).run("go")

    assert result.status == "error"
    assert result.stop_reason == "error"
    assert result.error is failure
    assert result.output is None
    assert len(result.messages) == 3, "the prompt, the tool call and its result are kept"
    assert result.usage.requests == 1
    assert "error: the provider is down" in result.describe()


async def test_a_script_that_runs_out_says_so() -> None:
    result = await Agent("a", model=ScriptedModel([call("lookup", key="k")], name="short"), tools=[lookup]).run("go")

    assert result.status == "error"
    assert isinstance(result.error, ScriptExhaustedError)
    assert str(result.error) == (
        "ScriptedModel 'short' was asked for reply 2 but its script has 1. "
        "Add replies to the script, or check why the agent made an extra call."
    )


async def test_a_model_raising_a_bare_timeout_error_is_reported_as_an_error() -> None:
    # Only the run's own deadline is a wall-time stop; a TimeoutError the model raises is the model's failure,
    # and `run` reports it rather than raising.
    result = await Agent("a", model=ScriptedModel([TimeoutError("read timed out")])).run("go")
    assert result.status == "error"
    assert isinstance(result.error, TimeoutError)


async def test_a_model_timeout_error_is_not_mistaken_for_the_wall_time_limit() -> None:
    # The deadline (60 s) is far away when the model times out, so the run failed; no limit was reached.
    agent = Agent("a", model=ScriptedModel([TimeoutError("read timed out")]), limits=Limits(max_wall_seconds=60))
    result = await agent.run("go")
    assert result.limit is None
    assert result.status == "error"


async def test_cancelling_a_run_raises_cancelled_error_and_reports_a_cancelled_run() -> None:
    events: list[Event] = []
    agent = Agent("a", model=ScriptedModel(["too late"], latency=5))
    task = asyncio.create_task(agent.run("go", on_event=events.append))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    finished = events[-1]
    assert isinstance(finished, RunFinished)
    assert finished.result.status == "cancelled"
    assert finished.result.messages == [UserMessage("go")]


# --- conversations -----------------------------------------------------------------------------


async def test_history_continues_a_conversation() -> None:
    model = ScriptedModel(["Nice to meet you, Ann.", "Your name is Ann."])
    agent = Agent("a", model=model)
    first = await agent.run("My name is Ann.")
    second = await agent.run("What is my name?", history=first.messages)

    assert second.output == "Your name is Ann."
    assert model.requests[1].messages == [
        UserMessage("My name is Ann."),
        AssistantMessage(text="Nice to meet you, Ann."),
        UserMessage("What is my name?"),
    ]
    assert second.messages == [*model.requests[1].messages, AssistantMessage(text="Your name is Ann.")]
    assert len(first.messages) == 2, "the earlier result is not changed by continuing it"


async def test_override_gives_a_copy_with_another_model() -> None:
    agent = Agent("a", instructions="Be brief.", model=ScriptedModel(["from the original"]), tools=[lookup])
    stub = ScriptedModel(["from the stub"])
    copy = agent.override(model=stub)

    assert (await copy.run("hi")).output == "from the stub"
    assert stub.requests[0].instructions == "Be brief."
    assert [t.name for t in stub.requests[0].tools] == ["lookup"]
    assert (await agent.run("hi")).output == "from the original", "the original agent is unchanged"


def test_run_sync_works_from_plain_sync_code() -> None:
    result = Agent("a", model=ScriptedModel([call("lookup", key="k"), "done"]), tools=[lookup]).run_sync("go")
    assert result.status == "completed"
    assert result.output == "done"


async def test_one_agent_serves_fifty_concurrent_runs_without_mixing_them() -> None:
    @tool
    async def echo(text: str, ctx: RunContext) -> str:
        await asyncio.sleep(random.uniform(0, 0.02))
        return f"{text} (run {ctx.run_id})"

    def reply(request: ModelRequest) -> object:
        last = request.messages[-1]
        if isinstance(last, UserMessage):
            return call("echo", text=last.content)
        assert isinstance(last, ToolResultsMessage)
        return f"echoed: {last.results[0].content}"

    agent = Agent("echoer", model=ScriptedModel(reply), tools=[echo])
    prompts = [f"prompt {i}" for i in range(50)]
    results = await asyncio.gather(*(agent.run(prompt) for prompt in prompts))

    assert len({result.run_id for result in results}) == 50
    for prompt, result in zip(prompts, results, strict=True):
        assert result.output == f"echoed: {prompt} (run {result.run_id})"
        assert result.messages[0] == UserMessage(prompt)
        assert len(result.messages) == 4
        assert [m.content for m in result.messages if isinstance(m, UserMessage)] == [prompt]


async def test_an_answer_check_sends_an_answer_back_once_and_then_lets_it_stand() -> None:
    def names_a_price(context: RunContext, answer: str) -> str | None:
        return None if "$" in answer else "Give the price in dollars."

    model = ScriptedModel(["It is cheap.", "It costs $12.", "unused"])
    result = await Agent("a", model=model, answer_checks=[names_a_price]).run("How much?")
    assert result.output == "It costs $12."
    # The answer sent back leaves the conversation: the model reads only why.
    assert model.requests[1].messages == [
        UserMessage("How much?"),
        UserMessage("[Answer sent back] Give the price in dollars."),
    ]

    stubborn = ScriptedModel(["Cheap.", "Very cheap.", "Really cheap."])
    result = await Agent("a", model=stubborn, answer_checks=[names_a_price], output_retries=2).run("How much?")
    # Retries spent, the first answer sent back stands: the later ones were written under the note.
    assert result.completed and result.output == "Cheap."
    assert len(stubborn.requests) == 3


async def test_an_answer_that_copies_the_note_does_not_replace_the_answer_sent_back() -> None:
    def names_the_flight(context: RunContext, answer: str) -> str | None:
        return None if "NS120" in answer else "Your plan leaves out the flight NS120."

    # What Qwen2.5-Coder-1.5B did with a note asking for the whole plan: it wrote the note.
    model = ScriptedModel(
        [
            "Two nights at Cedar House, $378.",
            "Your plan leaves out the flight NS120.",
            "Your plan leaves out the flight NS120.",
        ]
    )
    result = await Agent("lead", model=model, answer_checks=[names_the_flight], output_retries=2).run("Plan it.")

    assert result.output == "Two nights at Cedar House, $378."
    # The copy was sent back with the same note, not judged as a plan.
    assert model.requests[2].messages[-1] == UserMessage("[Answer sent back] Your plan leaves out the flight NS120.")


async def test_a_note_that_sent_an_answer_back_is_read_once_and_retries_count_again_after_tools() -> None:
    @tool
    def price_of(item: str) -> str:
        """The price of an item."""
        return f"{item}: $12"

    def names_a_price(context: RunContext, answer: str) -> str | None:
        return None if "$" in answer else "Give the price in dollars."

    model = ScriptedModel(["It is cheap.", call("price_of", item="tea"), "Cheap, I said.", "Tea costs $12."])
    agent = Agent("a", model=model, tools=[price_of], answer_checks=[names_a_price], output_retries=1)
    result = await agent.run("How much is tea?")

    # Once the model has acted on the note, the note leaves the conversation: Qwen2.5-Coder-1.5B copied a note
    # still standing there as its next answer.
    assert [m.content for m in model.requests[2].messages if isinstance(m, UserMessage)] == ["How much is tea?"]
    # One retry in a row: spent before the tool call, and again after it, where a count kept for the whole run
    # would have let "Cheap, I said." stand.
    assert result.output == "Tea costs $12."
    assert len(model.requests) == 4


async def test_an_answer_check_can_ask_for_a_tool_call_and_the_retry_must_make_one() -> None:
    @tool
    def price_of(item: str) -> str:
        """The price of an item."""
        return f"{item}: $12"

    def looked_up(context: RunContext, answer: str) -> SendBack | None:
        called = any(isinstance(m, ToolResultsMessage) for m in context.messages)
        return None if called else SendBack("Look the price up with price_of.", reply_with="a tool call")

    model = ScriptedModel(["I will look it up.", call("price_of", item="tea"), "Tea costs $12."])
    result = await Agent("a", model=model, tools=[price_of], answer_checks=[looked_up]).run("How much is tea?")

    assert result.output == "Tea costs $12."
    assert [request.settings.tool_choice for request in model.requests] == [None, "required", None]
    assert model.requests[1].messages[-1] == UserMessage(
        "[Answer sent back: call a tool] Look the price up with price_of."
    )
