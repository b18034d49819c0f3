"""How an episode ends: the user's stop signal, a failed user, a tool that ends it, the episode's step budget."""

from __future__ import annotations

from retinue import Agent, RunContext, tool
from retinue.architectures import clone_tool, lead_agent
from retinue.errors import ModelError
from retinue.evals import STOP, EndEpisode, Episode, EvalTask, ScriptedUser, SimulatedUser, run_episode
from retinue.events import Event, ModelResponseReceived
from retinue.limits import Limits
from retinue.messages import ModelRequest, ToolResultsMessage, UserMessage
from retinue.testing.scripted import ScriptedModel, call


@tool
def transfer_to_human(context: RunContext, summary: str) -> str:
    """Hand the customer over to a human agent, with a summary of the case."""
    context.deps.append(summary)
    raise EndEpisode(f"handed to a human: {summary}")


@tool
def note(context: RunContext, text: str) -> str:
    """Write a note in the case file."""
    context.deps.append(text)
    return "Noted."


refund = EvalTask(id="refund", instruction="You want a refund a human must approve.", expected_state=["refund"])


# -- the user ------------------------------------------------------------------------------------------------


async def test_a_user_whose_model_fails_fails_the_episode_instead_of_passing_it() -> None:
    # A "must refuse" task: doing nothing is right, so a silent user used to pass it with no message exchanged.
    must_refuse = EvalTask(id="refuse", instruction="Ask to cancel a non-refundable ticket.", expected_state=[])
    user = SimulatedUser(must_refuse, ScriptedModel([ModelError("the user's model is down", provider="fake")]))
    assistant = ScriptedModel(["I cannot cancel that ticket."])

    result = await run_episode(must_refuse, Episode(Agent(name="assistant", model=assistant), list), user)

    assert not result.passed
    assert result.ending == "user_failed"
    assert result.error is not None and result.error.startswith("the user failed: the simulated user's run")
    assert "the user's model is down" in result.error
    assert result.user_turns == 0 and assistant.requests == []
    assert "the user could not reply" in result.verdict


async def test_a_user_whose_model_writes_nothing_fails_the_episode() -> None:
    user = SimulatedUser(refund, ScriptedModel(["   "]))

    result = await run_episode(refund, Episode(Agent(name="assistant", model=ScriptedModel([])), list), user)

    assert not result.passed and result.ending == "user_failed"
    assert result.error is not None and "empty message" in result.error


async def test_a_user_that_fails_mid_conversation_fails_the_episode_after_what_was_said() -> None:
    user_model = ScriptedModel(["I want a refund.", ModelError("rate limited", provider="fake")])
    assistant = Agent(name="assistant", model=ScriptedModel(["Which order?"]))

    result = await run_episode(refund, Episode(assistant, list), SimulatedUser(refund, user_model))

    assert result.ending == "user_failed" and not result.passed
    assert result.transcript == [("user", "I want a refund."), ("assistant", "Which order?")]


async def test_the_simulated_users_calls_are_traced_and_counted_apart_from_the_assistants() -> None:
    user_model = ScriptedModel(["I want a refund.", f"Thanks. {STOP}"], cost_per_call=0.01)
    assistant = Agent(name="assistant", model=ScriptedModel(["Refund requested."], cost_per_call=0.5))
    seen: list[str] = []

    def record(event: Event) -> None:
        if isinstance(event, ModelResponseReceived):
            seen.append(event.agent)

    result = await run_episode(refund, Episode(assistant, list), SimulatedUser(refund, user_model, on_event=record))

    assert seen == ["simulated-user", "simulated-user"]
    assert result.cost_usd == 0.5
    assert result.user_cost_usd == 0.02 and result.user_tokens > 0


async def test_a_stop_signal_after_a_sentence_ends_the_conversation_and_the_sentence_is_not_a_new_turn() -> None:
    assistant = ScriptedModel(["Refund requested."])
    user = ScriptedUser(["Please refund order 7.", f"Thanks, that's all. {STOP}"])

    result = await run_episode(refund, Episode(Agent(name="assistant", model=assistant), list), user)

    assert result.ending == "user" and result.error is None
    assert result.user_turns == 1 and len(assistant.requests) == 1
    assert result.transcript == [
        ("user", "Please refund order 7."),
        ("assistant", "Refund requested."),
        ("user", "Thanks, that's all."),
    ]


async def test_the_simulated_users_last_words_before_the_signal_reach_the_transcript_only() -> None:
    def user_script(request: ModelRequest) -> str:
        last = next(m.content for m in reversed(request.messages) if isinstance(m, UserMessage))
        return "great, thanks! ###stop###" if "done" in last else "Refund order 7, please."

    assistant = ScriptedModel(["Refund done."])
    user = SimulatedUser(refund, ScriptedModel(user_script))

    result = await run_episode(refund, Episode(Agent(name="assistant", model=assistant), list), user)

    assert [text for role, text in result.transcript if role == "user"] == ["Refund order 7, please.", "great, thanks!"]
    assert len(assistant.requests) == 1


# -- a tool that ends the episode ----------------------------------------------------------------------------


async def test_a_tool_raising_end_episode_stops_the_assistant_at_once_and_the_episode_is_graded() -> None:
    case_file: list[str] = []
    assistant = ScriptedModel([call("transfer_to_human", summary="refund"), "never said", "never said either"])
    user = ScriptedUser(["I want a refund.", "Hello?"])
    agent = Agent(name="assistant", model=assistant, tools=[transfer_to_human])

    result = await run_episode(refund, Episode(agent, lambda: case_file, deps=case_file), user)

    assert assistant.remaining == 2, "no model call after the tool"
    assert user.heard == [None], "the user is not asked for more"
    assert result.passed and result.ending == "tool" and result.error is None
    assert ("note", "['transfer_to_human' ended the conversation: handed to a human: refund]") in result.transcript
    [record] = result.tool_calls
    assert record.ok and record.name == "transfer_to_human"
    assert record.result == "ended the conversation: handed to a human: refund"


async def test_a_specialist_calling_an_ending_tool_stops_the_lead_too() -> None:
    case_file: list[str] = []
    desk_model = ScriptedModel([call("transfer_to_human", summary="refund"), "never said"])
    desk = Agent(name="desk", description="Handles refunds.", model=desk_model, tools=[transfer_to_human])
    lead_model = ScriptedModel([call("ask_desk", question="Refund order 7"), "never said"])
    lead = lead_agent("lead", specialists=[desk], model=lead_model, share_decisions=False)

    result = await run_episode(refund, Episode(lead, lambda: case_file, deps=case_file), ScriptedUser(["Refund"]))

    assert desk_model.remaining == 1 and lead_model.remaining == 1
    assert result.passed and result.ending == "tool"
    assert [(call.agent, call.name, call.ok) for call in result.tool_calls] == [
        ("desk", "transfer_to_human", True),
        ("lead", "ask_desk", True),
    ]


async def test_a_clone_calling_an_ending_tool_stops_its_master() -> None:
    case_file: list[str] = []

    def master_script(request: ModelRequest) -> object:
        if request.messages[0].content.startswith("Refund"):  # the master's own conversation
            return call("spawn_clone", task="hand the refund to a human")
        return call("transfer_to_human", summary="refund")  # the clone's

    model = ScriptedModel(master_script)
    master = Agent(name="master", model=model, tools=[transfer_to_human, clone_tool()])

    result = await run_episode(refund, Episode(master, lambda: case_file, deps=case_file), ScriptedUser(["Refund"]))

    assert len(model.requests) == 2, "one call by the master, one by its clone, then nothing"
    assert result.passed and result.ending == "tool" and case_file == ["refund"]


# -- the step budget -----------------------------------------------------------------------------------------


async def test_the_step_budget_counts_model_calls_over_every_user_message() -> None:
    # Each user message costs the assistant two steps (a note, then an answer); four steps cover two messages.
    def assistant_script(request: ModelRequest) -> object:
        if isinstance(request.messages[-1], ToolResultsMessage):
            return "Noted it."
        return call("note", text=request.messages[-1].content)

    case_file: list[str] = []
    agent = Agent(name="assistant", model=ScriptedModel(assistant_script), tools=[note])
    user = ScriptedUser(["one", "two", "three"])
    task = EvalTask(id="notes", instruction="x", expected_state=["one", "two", "three"])

    result = await run_episode(task, Episode(agent, lambda: case_file, deps=case_file, max_steps=4), user)

    assert not result.passed and result.ending == "max_steps"
    assert result.steps == 4 and result.user_turns == 2
    assert result.error is not None
    assert result.error.startswith("the episode's step budget ran out: 4 of 4 assistant steps")


async def test_a_run_cut_short_by_the_step_budget_fails_with_the_budget_as_the_reason() -> None:
    agent = Agent(name="assistant", model=ScriptedModel(lambda request: call("note", text="again")), tools=[note])
    episode = Episode(agent, list, deps=[], max_steps=3, limits=Limits(max_turns=10))

    result = await run_episode(refund, episode, ScriptedUser(["Take notes."]))

    assert result.ending == "max_steps" and result.steps == 3
    assert result.error is not None and "step budget ran out: 3 of 3" in result.error
    assert len(result.tool_calls) == 3


async def test_within_the_step_budget_an_episode_passes() -> None:
    agent = Agent(name="assistant", model=ScriptedModel([call("note", text="refund"), "Done."]), tools=[note])
    case_file: list[str] = []

    result = await run_episode(
        refund, Episode(agent, lambda: case_file, deps=case_file, max_steps=2), ScriptedUser(["x"])
    )

    assert result.passed and result.steps == 2 and result.ending == "user"
